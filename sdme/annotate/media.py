"""Isolated media for per-modality annotation, made once per corpus.

For every clip of a raw corpus (``sdme.schema``), three files under
``<raw>/.annotate/media/`` (hidden, so ``sdme.schema.list_corpus_files`` and the manifest never
see them):

- ``vision/<id>.mp4`` — the clip's first video stream and nothing else: the audio stream is not in
  the file (a muted player, as in Label Studio's ``<Video muted>``, still sends the sound to the
  annotator's browser). Subtitles, data streams, chapters and container metadata are dropped
  too, since a title or comment tag could carry the transcript.
- ``audio/<id>.m4a`` (``.mp3``/``.wav`` when the source is such) — the audio stream alone, from
  ``audio/<id>.wav`` when the corpus has one, else from the clip; no cover art, no metadata.
- ``text/<id>.txt`` — the transcript alone (UTF-8).

Streams are copied (remuxed, packets unchanged) when browsers play the codec: H.264 in 4:2:0
for video; AAC, MP3 or PCM for audio. Anything else is re-encoded (libx264 CRF 18 / AAC
160 kb/s) and the index says so. The work is done by the ``ffmpeg`` program (one run per clip,
both outputs); streams are read with PyAV before (to choose copy or encode) and after (each
output is checked to hold only its modality; a file that does not is never served).

``index.json`` records, per clip, the files and a fingerprint of their sources (size, mtime,
transcript hash); running :func:`prepare_media` again redoes only clips whose sources changed.
FFmpeg: https://ffmpeg.org (LGPL/GPL); PyAV: https://github.com/PyAV-Org/PyAV (BSD-3-Clause).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sdme.annotate import WORK_DIR, AnnotateError
from sdme.fileio import atomic_path, atomic_write_text
from sdme.schema import RawClip, clip_audio_path, clip_media_path

MEDIA_DIR = "media"
INDEX_NAME = "index.json"
INDEX_FORMAT = 1

BROWSER_VIDEO_CODECS = frozenset({"h264"})
BROWSER_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})
# audio codec -> (extension, ffmpeg muxer) of the file it is copied into
BROWSER_AUDIO = {"aac": (".m4a", "mp4"), "mp3": (".mp3", "mp3"),
                 "pcm_s16le": (".wav", "wav"), "pcm_u8": (".wav", "wav")}
MEDIA_TYPES = {".mp4": "video/mp4", ".m4a": "audio/mp4", ".mp3": "audio/mpeg",
               ".wav": "audio/wav", ".txt": "text/plain; charset=utf-8"}
_STRIP = ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact"]


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file, as PyAV reads it."""

    index: int
    kind: str  # video, audio, subtitle, data, attachment
    codec: str
    pix_fmt: str | None = None
    attached_pic: bool = False


@dataclass(frozen=True)
class PreparedClip:
    """The isolated files of one clip (paths relative to the media folder; None: unavailable).

    Attributes:
        notes: Why a modality is missing, or that a stream was re-encoded.
        source: Fingerprint of the sources the files were made from.
    """

    clip_id: str
    vision: str | None = None
    audio: str | None = None
    text: str | None = None
    notes: tuple[str, ...] = ()
    source: dict[str, object] = field(default_factory=dict)

    def file(self, modality: str) -> str | None:
        return getattr(self, modality)


@dataclass(frozen=True)
class PreparedMedia:
    """The prepared media of a corpus: the folder and each clip's files."""

    root: Path
    clips: dict[str, PreparedClip]

    def path(self, clip_id: str, modality: str) -> Path | None:
        """The file of ``clip_id`` in ``modality``, guaranteed to lie inside the media folder."""
        clip = self.clips.get(clip_id)
        rel = clip.file(modality) if clip else None
        if rel is None:
            return None
        root = self.root.resolve()
        path = (root / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def read_text(self, clip_id: str) -> str | None:
        path = self.path(clip_id, "text")
        return path.read_text(encoding="utf-8").strip() if path else None


def media_dir(raw_dir: str | Path) -> Path:
    return Path(raw_dir) / WORK_DIR / MEDIA_DIR


def probe_streams(path: str | Path) -> list[StreamInfo]:
    """The streams of a media file (PyAV); raises AnnotateError naming the file if unreadable."""
    import av

    try:
        with av.open(str(path)) as container:
            out = []
            for stream in container.streams:
                ctx = stream.codec_context
                out.append(StreamInfo(
                    index=stream.index, kind=stream.type, codec=ctx.name if ctx else "",
                    pix_fmt=getattr(ctx, "pix_fmt", None) if stream.type == "video" else None,
                    attached_pic=bool(stream.disposition & av.stream.Disposition.attached_pic)))
            return out
    except (av.FFmpegError, OSError) as exc:
        raise AnnotateError(f"{path}: cannot read the media file ({exc})") from exc


def _first(streams: Sequence[StreamInfo], kind: str) -> StreamInfo | None:
    return next((s for s in streams if s.kind == kind and not s.attached_pic), None)


def _fingerprint(clip: RawClip, video: Path, audio: Path) -> dict[str, object]:
    def stat(path: Path) -> list[int] | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return [st.st_size, st.st_mtime_ns]

    return {"video": stat(video), "audio": stat(audio) if audio != video else None,
            "text": hashlib.sha256(clip.text.encode("utf-8")).hexdigest()[:16],
            "format": INDEX_FORMAT}


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AnnotateError("sdme annotate needs the ffmpeg program to isolate the modalities "
                            "(Debian/Ubuntu: apt-get install ffmpeg)")
    return exe


def _check_only(path: Path, kind: str) -> None:
    """Raises AnnotateError unless ``path`` holds ``kind`` streams and nothing else."""
    streams = probe_streams(path)
    others = sorted({s.kind for s in streams if s.kind != kind})
    if not any(s.kind == kind for s in streams) or others:
        raise AnnotateError(f"{path}: isolation check failed: expected only {kind} streams, "
                            f"found {[s.kind for s in streams]}")


def prepare_clip(clip: RawClip, raw_dir: Path, out_root: Path) -> PreparedClip:
    """Writes the isolated files of one clip and returns what was made."""
    video_src = clip_media_path(raw_dir, clip.clip_id)
    audio_src = clip_audio_path(raw_dir, clip.clip_id)
    notes: list[str] = []
    source = _fingerprint(clip, video_src, audio_src)
    text_rel = None
    if clip.text.strip():
        text_rel = f"text/{clip.clip_id}.txt"
        atomic_write_text(out_root / text_rel, clip.text.strip() + "\n")
    else:
        notes.append("text: empty transcript")

    video = audio = None
    if video_src.is_file():
        try:
            streams = probe_streams(video_src)
        except AnnotateError as exc:
            notes.append(f"vision/audio: {exc}")
            streams = []
        video = _first(streams, "video")
        if video is None and streams:
            notes.append("vision: the clip has no video stream")
        if audio_src == video_src:
            audio = _first(streams, "audio")
            if audio is None and streams:
                notes.append("audio: the clip has no audio stream")
    else:
        notes.append(f"vision: {video_src} is missing")
    if audio_src != video_src:
        try:
            audio = _first(probe_streams(audio_src), "audio")
        except AnnotateError as exc:
            notes.append(f"audio: {exc}")
        if audio is None:
            notes.append(f"audio: {audio_src} has no audio stream")

    inputs: list[Path] = []
    plans: list[tuple[str, str, str, list[str]]] = []  # modality, relpath, kind, ffmpeg options
    if video is not None:
        inputs.append(video_src)
        if video.codec in BROWSER_VIDEO_CODECS and video.pix_fmt in BROWSER_PIX_FMTS:
            codec = ["-c:v", "copy"]
        else:
            codec = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
                     "-preset", "veryfast"]
            notes.append(f"vision: re-encoded to H.264 ({video.codec}/{video.pix_fmt} does not "
                         "play in every browser)")
        plans.append(("vision", f"vision/{clip.clip_id}.mp4", "video",
                      ["-map", f"0:{video.index}", *codec, "-an", *_STRIP,
                       "-movflags", "+faststart", "-f", "mp4"]))
    if audio is not None:
        if audio_src != video_src or video is None:
            inputs.append(audio_src)
        if audio.codec in BROWSER_AUDIO:
            ext, muxer = BROWSER_AUDIO[audio.codec]
            codec = ["-c:a", "copy"]
        else:
            ext, muxer = ".m4a", "mp4"
            codec = ["-c:a", "aac", "-b:a", "160k"]
            notes.append(f"audio: re-encoded to AAC ({audio.codec} does not play in every "
                         "browser)")
        extra = ["-movflags", "+faststart"] if muxer == "mp4" else []
        plans.append(("audio", f"audio/{clip.clip_id}{ext}", "audio",
                      ["-map", f"{len(inputs) - 1}:{audio.index}", *codec, "-vn", *_STRIP,
                       *extra, "-f", muxer]))

    made: dict[str, str] = {}
    if plans:
        command = [_ffmpeg(), "-nostdin", "-v", "error", "-y"]
        for path in inputs:
            command += ["-i", str(path)]
        try:
            with ExitStack() as stack:
                temps = {}
                for modality, rel, _, options in plans:
                    temps[modality] = stack.enter_context(atomic_path(out_root / rel))
                    command += [*options, str(temps[modality])]
                run = subprocess.run(command, capture_output=True, text=True)
                if run.returncode != 0:
                    detail = (run.stderr.strip().splitlines() or ["no message"])[-1][:200]
                    raise AnnotateError(f"{video_src}: ffmpeg could not isolate the "
                                        f"modalities ({detail})")
                for modality, _, kind, _ in plans:
                    _check_only(temps[modality], kind)
            made = {modality: rel for modality, rel, _, _ in plans}
        except AnnotateError as exc:  # this clip's vision and audio are not offered
            notes.append(f"vision/audio: {exc}")
            for _, rel, _, _ in plans:
                (out_root / rel).unlink(missing_ok=True)
    return PreparedClip(clip_id=clip.clip_id, vision=made.get("vision"), audio=made.get("audio"),
                        text=text_rel, notes=tuple(notes), source=source)


def load_prepared(raw_dir: str | Path) -> PreparedMedia | None:
    """The prepared media of a corpus, or None when :func:`prepare_media` has not run."""
    root = media_dir(raw_dir)
    index = root / INDEX_NAME
    if not index.is_file():
        return None
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        clips = {cid: PreparedClip(clip_id=cid, vision=c.get("vision"), audio=c.get("audio"),
                                   text=c.get("text"), notes=tuple(c.get("notes") or ()),
                                   source=dict(c.get("source") or {}))
                 for cid, c in data["clips"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AnnotateError(f"{index}: unreadable media index ({exc}); delete it and run "
                            "`sdme annotate prepare` again") from exc
    return PreparedMedia(root=root, clips=clips)


def _save_index(root: Path, clips: dict[str, PreparedClip]) -> None:
    data = {"format": INDEX_FORMAT,
            "clips": {cid: {k: v for k, v in asdict(c).items() if k != "clip_id"}
                      for cid, c in sorted(clips.items())}}
    atomic_write_text(root / INDEX_NAME, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def prepare_media(raw_dir: str | Path, clips: Sequence[RawClip], *, force: bool = False,
                  workers: int = 2,
                  progress: Callable[[int, int], None] | None = None) -> PreparedMedia:
    """Makes (or brings up to date) the isolated media of ``clips``.

    Clips already prepared from unchanged sources are skipped unless ``force``; files of clips
    no longer in the corpus are removed. The index is saved every few seconds, so an
    interrupted run resumes.

    Args:
        raw_dir: The raw corpus folder.
        clips: The corpus's clips (``sdme.schema.read_annotations``).
        force: Redo every clip.
        workers: ffmpeg processes run at once.
        progress: Called with ``(done, total)`` after each clip that had to be prepared.

    A clip whose media ffmpeg cannot isolate (or whose output fails the isolation check) keeps
    its text item only; the reason is in its ``notes``.

    Raises:
        AnnotateError: the ffmpeg program is missing.
    """
    raw_dir = Path(raw_dir)
    root = media_dir(raw_dir)
    root.mkdir(parents=True, exist_ok=True)
    existing = load_prepared(raw_dir)
    done: dict[str, PreparedClip] = {} if existing is None else dict(existing.clips)
    wanted = {c.clip_id for c in clips}
    for cid in [cid for cid in done if cid not in wanted]:
        for rel in (done[cid].vision, done[cid].audio, done[cid].text):
            if rel:
                (root / rel).unlink(missing_ok=True)
        del done[cid]
    todo = []
    for clip in clips:
        old = done.get(clip.clip_id)
        fresh = _fingerprint(clip, clip_media_path(raw_dir, clip.clip_id),
                             clip_audio_path(raw_dir, clip.clip_id))
        files_ok = old is not None and all((root / rel).is_file()
                                           for rel in (old.vision, old.audio, old.text) if rel)
        if force or old is None or old.source != fresh or not files_ok:
            todo.append(clip)
    last_save = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, prepared in enumerate(pool.map(lambda c: prepare_clip(c, raw_dir, root), todo)):
            done[prepared.clip_id] = prepared
            if progress is not None:
                progress(i + 1, len(todo))
            if time.monotonic() - last_save > 5.0:
                _save_index(root, done)
                last_save = time.monotonic()
    if todo or existing is None:
        _save_index(root, done)
    return PreparedMedia(root=root, clips=done)


__all__ = ["MEDIA_TYPES", "PreparedClip", "PreparedMedia", "StreamInfo", "load_prepared",
           "media_dir", "prepare_clip", "prepare_media", "probe_streams"]
