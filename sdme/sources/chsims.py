"""The raw source ``chsims``: CH-SIMS and CH-SIMS v2.0 from their raw release, videos included.

``sdme download chsims --path DIR [--corpus chsims2]`` turns the release as its authors
distribute it into an SDME raw corpus, so that ``sdme build`` extracts features from the real
videos with any registered extractor (``sdme import mmsa`` only reaches MMSA's pre-extracted
features). The release layout, as MMSA-FET reads it (thuiar/MMSA-FET, ``src/MSA_FET/dataset.py``,
``read_label_file``; the MMSA and ch-sims-v2 READMEs link the downloads)::

    <DIR>/
      label.csv                        (CH-SIMS v2.0's meta file may be meta.csv; --labels FILE)
      Raw/<video_id>/<clip_id>.mp4     one clip, video with its audio track

``label.csv`` columns (read as text): ``video_id, clip_id, text, label, label_T, label_A,
label_V, annotation, mode``: ``label`` is the multimodal sentiment score in [-1, 1], ``label_T``,
``label_A``, ``label_V`` the scores annotated from the text, the audio and the muted video
alone, ``annotation`` the 3-class word (``Negative``/``Neutral``/``Positive``; optional here) and
``mode`` the official split (``train``/``valid``/``test``).

The mapping (written into ``sdme.json``):

- **Clips.** ``clips/<clip_id>.mp4`` where SDME's ``clip_id`` is MMSA's id,
  ``<video_id>$_$<clip_id>`` (so rows join with ``sdme import mmsa`` of the same corpus). A clip
  id read as a number without its zero padding (``1`` for ``0001.mp4``) is found by padding it
  to 4 digits, as MMSA-FET does. The clips are **hard links** to the release's files (no extra
  space, and they survive the release folder being moved or deleted); where a hard link cannot
  be made (another file system) or with ``--copy``, they are copied. ``sdme.json`` records each
  clip's sha256, so a release file edited in place later fails ``sdme validate``.
- **Times.** The release gives no positions in the source video: ``start`` is 0 and ``end`` the
  clip's duration (frames / frame rate, read with decord).
- **Speakers.** None are published: ``speaker_id`` is the video id (as ``sdme import mmsa``).
- **Scores and labels.** ``score`` = ``label``, ``score_text/audio/vision`` = ``label_T/A/V``;
  ``label`` = the score discretised by ``sdme.scores``'s ``sims`` rule (MMSA's 3-class bins),
  the rule ``sdme import mmsa`` applies, declared as ``annotation_protocol.score_scale`` =
  ``sims``. ``sdme build`` carries the scores into the built dataset and derives ``label_<m>``,
  ``relevance_<m>`` and ``deviation`` from them (``sdme.scores``). The release's own
  ``annotation`` word is not used; clips where it differs from the rule's class are counted in
  ``sdme.json`` (``extra.release.annotation_disagreements``) and reported.
- **Splits.** ``mode`` (``valid`` becomes ``validation``): the build keeps the official split.
- **Language.** ``zh`` (Mandarin transcripts).

Corpora: CH-SIMS (Yu et al., ACL 2020) and CH-SIMS v2.0 (Liu et al., ICMI 2022), research use
under the authors' terms (https://github.com/thuiar/MMSA, https://github.com/thuiar/ch-sims-v2).
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sdme.fileio import swap_in_dir
from sdme.mmsa import CORPORA, ID_SEPARATOR, SPLIT_NAMES
from sdme.schema import (
    ANNOTATIONS_NAME,
    MANIFEST_NAME,
    CorpusManifest,
    RawClip,
    clip_media_path,
    make_manifest_files,
    sha256_file,
    write_annotations,
)
from sdme.scores import SCALE_KEY, SENTIMENT_TAXONOMY, discretise, get_scale
from sdme.sources import SourceCard, SourceError, register_source

#: Label files looked for in the release folder, in order.
LABEL_FILES: tuple[str, ...] = ("label.csv", "meta.csv")
RAW_DIR = "Raw"
REQUIRED_COLUMNS: tuple[str, ...] = ("video_id", "clip_id", "text", "label", "label_T",
                                     "label_A", "label_V", "mode")
#: The release's score column of each modality.
UNIMODAL_COLUMNS: dict[str, str] = {"text": "label_T", "audio": "label_A", "vision": "label_V"}
SCALE = get_scale("sims")
LANGUAGE = "zh"

CorpusName = Literal["chsims", "chsims2"]


@dataclass(frozen=True)
class CHSIMSOptions:
    """Options of ``sdme download chsims``."""

    path: Path = field(metadata={
        "help": "The release folder: label.csv (or meta.csv) and Raw/<video_id>/<clip_id>.mp4.",
        "exists": True, "path": "dir"})
    corpus: CorpusName = field(default="chsims", metadata={
        "help": "Which corpus the release is: chsims (CH-SIMS) or chsims2 (CH-SIMS v2.0)."})
    labels: Path | None = field(default=None, metadata={
        "help": "The label file, when it is not label.csv or meta.csv in the release folder.",
        "exists": True, "path": "file"})
    copy: bool = field(default=False, metadata={
        "help": "Copy the clips instead of hard-linking them (copies are made anyway where "
                "a hard link is impossible)."})


def _dataset_name(options: Mapping[str, Any]) -> str:
    """<corpus>-raw (chsims-raw or chsims2-raw)."""
    return f"{options.get('corpus', 'chsims')}-raw"


@dataclass(frozen=True)
class _Row:
    """One checked row of the label file."""

    line: int
    video_id: str
    clip_id: str
    text: str
    score: float
    unimodal: dict[str, float]
    split: str
    annotation: str | None
    media: Path


def _number(row: Mapping[str, str], column: str, where: str) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise SourceError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SourceError(f"{where}: {column} {text!r} is not a finite number")
    if not SCALE.low <= value <= SCALE.high:
        raise SourceError(f"{where}: {column} {value:g} is outside [{SCALE.low:g}, "
                          f"{SCALE.high:g}]")
    return value


def _label_file(release: Path, labels: Path | None) -> Path:
    if labels is not None:
        return Path(labels)
    for name in LABEL_FILES:
        if (release / name).is_file():
            return release / name
    raise SourceError(f"{release}: no {' or '.join(LABEL_FILES)}; pass the release folder "
                      "(with the label file and Raw/) or the label file with --labels")


def _media(release: Path, video_id: str, clip_id: str) -> tuple[str, Path | None]:
    """The clip id as the file is named (zero-padded where needed) and the file, if present."""
    candidates = [clip_id]
    if clip_id.isdigit() and len(clip_id) < 4:
        candidates.append(clip_id.zfill(4))
    for cid in candidates:
        path = release / RAW_DIR / video_id / f"{cid}.mp4"
        if path.is_file():
            return cid, path
    return clip_id, None


def read_label_file(release: Path, path: Path) -> list[_Row]:
    """Reads and checks the release's label file; every clip file must exist.

    Raises:
        SourceError: a missing column, a malformed or duplicate row, a score that is not a
            number in [-1, 1], an unknown ``mode``, or clip files missing (naming the file).
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SourceError(f"{path}: missing column(s) {', '.join(missing)}; a CH-SIMS label "
                          f"file has {', '.join(REQUIRED_COLUMNS)} (and annotation)")
    rows: list[_Row] = []
    seen: dict[tuple[str, str], int] = {}
    absent: list[str] = []
    for row in reader:
        line = reader.line_num
        where = f"{path}:{line}"
        if None in row or any(v is None for v in row.values()):
            raise SourceError(f"{where}: malformed row (wrong number of fields)")
        video_id, clip_id = row["video_id"].strip(), row["clip_id"].strip()
        for column, value in (("video_id", video_id), ("clip_id", clip_id)):
            if not value or "/" in value or "\\" in value or value in (".", ".."):
                raise SourceError(f"{where}: {column} {value!r} is empty or not a file name")
        clip_id, media = _media(release, video_id, clip_id)
        if (video_id, clip_id) in seen:
            raise SourceError(f"{where}: clip {video_id}/{clip_id} is listed twice (first on "
                              f"line {seen[video_id, clip_id]})")
        seen[video_id, clip_id] = line
        mode = row["mode"].strip()
        if mode not in SPLIT_NAMES:
            raise SourceError(f"{where}: mode {mode!r} is not one of {', '.join(SPLIT_NAMES)}")
        if media is None:
            absent.append(str(release / RAW_DIR / video_id / f"{clip_id}.mp4"))
            continue
        rows.append(_Row(
            line=line, video_id=video_id, clip_id=clip_id, text=row["text"],
            score=_number(row, "label", where),
            unimodal={m: _number(row, c, where) for m, c in UNIMODAL_COLUMNS.items()},
            split=SPLIT_NAMES[mode], annotation=(row.get("annotation") or "").strip() or None,
            media=media))
    if absent:
        raise SourceError(f"{path}: {len(absent)} listed clip(s) have no file, e.g. "
                          f"{absent[0]}; is --path the release folder that holds {RAW_DIR}/?")
    if not rows:
        raise SourceError(f"{path}: no clips")
    return rows


def clip_duration(path: Path) -> float:
    """A clip's duration in seconds (frames / average frame rate, decord).

    Raises:
        SourceError: the file does not open as a video, or has no frames.
    """
    import decord

    try:
        reader = decord.VideoReader(str(path), num_threads=1)
        frames, fps = len(reader), float(reader.get_avg_fps())
    except Exception as exc:  # decord raises its own DECORDError and RuntimeError
        raise SourceError(f"{path}: does not open as a video ({type(exc).__name__}: "
                          f"{str(exc)[:120]})") from None
    if frames < 1 or not fps > 0:
        raise SourceError(f"{path}: no frames (or no frame rate) in the video")
    return frames / fps


def _place(source: Path, target: Path, copy: bool) -> bool:
    """Hard-links (or copies) ``source`` to ``target``; True when it was linked."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not copy:
        try:
            os.link(source, target)
            return True
        except OSError:
            pass  # another file system, or links not allowed: copy instead
    shutil.copyfile(source, target)
    return False


def deliver_release(target: Path, release: Path, corpus: str = "chsims",
                    labels: Path | None = None, copy: bool = False, *,
                    progress: bool = False) -> Path:
    """Converts the release at ``release`` into the SDME raw corpus ``target`` (module
    docstring). The corpus is assembled in a staging sibling and swapped in whole.

    Returns:
        ``target``.

    Raises:
        SourceError: an unknown corpus, no or a malformed label file, missing or undecodable
            clips (the message names the file).
    """
    if corpus not in ("chsims", "chsims2"):
        raise SourceError(f"corpus must be chsims or chsims2, got {corpus!r}")
    info = CORPORA[corpus]
    release, target = Path(release).expanduser().resolve(), Path(target)
    label_file = _label_file(release, labels)
    rows = read_label_file(release, label_file)
    label_sha = sha256_file(label_file)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        staging.chmod(0o755)
        clips, linked, disagree = [], 0, 0
        for row in rows:
            clip_id = f"{row.video_id}{ID_SEPARATOR}{row.clip_id}"
            media = clip_media_path(staging, clip_id)
            linked += _place(row.media, media, copy)
            label = discretise(row.score, SCALE)
            if row.annotation is not None and row.annotation.lower() != label:
                disagree += 1
            clips.append(RawClip(
                clip_id=clip_id, video_id=row.video_id, speaker_id=row.video_id, start=0.0,
                end=round(clip_duration(media), 3), text=row.text, language=LANGUAGE,
                label=label, split=row.split, score=row.score,
                **{f"score_{m}": v for m, v in row.unimodal.items()}))
        write_annotations(staging / ANNOTATIONS_NAME, clips)
        release_record = {
            "label_file": label_file.name, "label_file_sha256": label_sha, "clips": len(clips),
            "clip_files": "hard links" if linked == len(clips) else
                          "copies" if not linked else f"{linked} hard links, the rest copies",
            "clip_id": f"<video_id>{ID_SEPARATOR}<clip_id> (MMSA's id)",
            "annotation_disagreements": disagree}
        manifest = CorpusManifest(
            name=corpus, version=f"raw-{label_sha[:12]}", license=info.license,
            taxonomy=SENTIMENT_TAXONOMY,
            annotation_protocol={
                SCALE_KEY: SCALE.name,
                "score": "multimodal sentiment score in [-1, 1] (the release's label)",
                "unimodal": "text, audio and vision scores annotated with the modality "
                            "isolated (label_T, label_A, label_V)",
                "label_rule": SCALE.rule},
            files=make_manifest_files(staging),
            description=(f"{info.title} from its raw release: the clips with the multimodal "
                         "and unimodal sentiment scores and the official split."),
            citation=info.citation,
            extra={"source": "sdme.sources.chsims", "release": release_record})
        (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        swap_in_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if progress:
        splits = ", ".join(f"{s} {n}" for s, n in Counter(c.split for c in clips).items())
        print(f"{info.title}: {len(clips)} clips ({splits}), {release_record['clip_files']}, "
              f"from {label_file}", file=sys.stderr)
        if disagree:
            print(f"  {disagree} clip(s) whose 'annotation' differs from the class of their "
                  f"score by the sims rule ({SCALE.rule}); the rule's class is used",
                  file=sys.stderr)
    return target


# --- the offline fixture ---------------------------------------------------------------------

#: The fixture: (video_id, clip_id, sample clip, text, label, label_T, label_A, label_V, mode).
#: Constructed scores, chosen so that both splits scored hold aligned clips (every unimodal class
#: equals the clip's) and conflicting ones.
FIXTURE_ROWS: tuple[tuple[str, str, str, str, float, float, float, float, str], ...] = (
    ("video_0001", "0001", "vid01_00", "今天的会议十点开始。", 0.8, 0.8, 0.6, 1.0, "train"),
    ("video_0001", "0002", "vid01_01", "这件事让我很失望。", -0.6, -0.8, 0.0, -0.4, "train"),
    ("video_0002", "0001", "vid03_00", "文件放在桌子上了。", 0.0, 0.2, 0.0, -0.2, "train"),
    ("video_0002", "0002", "vid03_01", "我真的很难过。", -0.8, -0.6, -1.0, -0.8, "train"),
    ("video_0003", "0001", "vid05_00", "见到你我很高兴！", 0.6, 0.4, 0.8, 0.6, "valid"),
    ("video_0003", "0002", "vid05_01", "我不喜欢这样。", -0.4, -0.6, 0.2, -0.4, "valid"),
    ("video_0004", "0001", "vid07_00", "这个结果还不错。", 0.4, 0.6, 0.4, 0.8, "test"),
    ("video_0004", "0002", "vid07_01", "我有点担心明天。", -0.2, 0.4, -0.6, -0.2, "test"),
)


def write_fixture_release(folder: Path) -> Path:
    """A tiny release in the documented layout (``label.csv`` + ``Raw/<video>/<clip>.mp4``),
    made of the sample corpus's real clips with constructed Mandarin texts and scores."""
    from sdme.sources.sample import sample_dir

    folder = Path(folder)
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V",
                     "annotation", "mode"])
    for video, clip, sample_clip, text, score, t, a, v, mode in FIXTURE_ROWS:
        media = folder / RAW_DIR / video / f"{clip}.mp4"
        media.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip_media_path(sample_dir(), sample_clip), media)
        word = discretise(score, SCALE).capitalize()
        writer.writerow([video, clip, text, score, t, a, v, word, mode])
    (folder / LABEL_FILES[0]).write_text(lines.getvalue(), encoding="utf-8")
    return folder


@contextmanager
def fixture(workdir: Path) -> Iterator[dict[str, Any]]:
    """Eight of the sample's clips as a CH-SIMS v2.0 release (:func:`write_fixture_release`)."""
    yield {"path": write_fixture_release(Path(workdir) / "ch-sims-v2"), "corpus": "chsims2"}


CARD = SourceCard(
    title="CH-SIMS and CH-SIMS v2.0 from their raw release (videos, multimodal and unimodal "
          "sentiment scores)",
    summary="CH-SIMS or CH-SIMS v2.0 from the authors' raw release (videos + label.csv), "
            "to build with any extractor.",
    homepage="https://github.com/thuiar/MMSA (CH-SIMS), https://github.com/thuiar/ch-sims-v2 "
             "(CH-SIMS v2.0)",
    license="Research use under the authors' terms (no open license; accept them when "
            "requesting the data). SDME's conversion code: the toolkit's license.",
    obtain="Request and download the raw release linked from the MMSA README (CH-SIMS: Raw/ "
           "videos and label.csv) or the ch-sims-v2 README (CH-SIMS v2.0: ch-simsv2s.zip and "
           "its meta file), unpack it, then `sdme download chsims --path DIR [--corpus "
           "chsims2]` and `sdme build chsims-raw` (or chsims2-raw).",
    citation=f"CH-SIMS: {CORPORA['chsims'].citation} CH-SIMS v2.0: "
             f"{CORPORA['chsims2'].citation}")


@register_source("chsims", kind="raw", options=CHSIMSOptions, card=CARD, fixture=fixture,
                 dataset_name=_dataset_name)
def download(target: Path, path: str | os.PathLike, corpus: str = "chsims",
             labels: str | os.PathLike | None = None, copy: bool = False, *,
             progress: bool = False) -> Path:
    """Converts the CH-SIMS release at ``path`` into the raw corpus ``target``
    (:func:`deliver_release`)."""
    return deliver_release(Path(target), Path(path), corpus,
                           Path(labels) if labels is not None else None, copy,
                           progress=progress)


__all__ = ["CARD", "CHSIMSOptions", "FIXTURE_ROWS", "LABEL_FILES", "clip_duration",
           "deliver_release", "download", "read_label_file", "write_fixture_release"]
