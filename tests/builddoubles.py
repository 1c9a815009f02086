"""Helpers for the build tests: small raw corpora and cheap, deterministic test-double extractors.

The doubles are registered under names starting with ``double`` so they never shadow the real
extractors; their features are a pure function of the clip (and of a marker file's bytes), so a
resumed build must reproduce them exactly. ``INTERRUPT`` makes the next extraction raise after
a number of calls, to simulate a build killed half-way; ``KILL_WORKER_ENV`` makes one Dask worker
process kill itself mid-clip (see ``die_once_in_a_worker``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sdme.features import ClipError, Extractor, ExtractorInfo, register_extractor
from sdme.schema import (
    CLIPS_DIR,
    CorpusManifest,
    RawClip,
    clip_media_path,
    make_manifest_files,
    write_annotations,
)

# A clip's "media" is a small text file naming what the doubles should do with it.
MARKER_OK = b"ok"
MARKER_NO_AUDIO = b"no_audio"
MARKER_NO_FACE = b"no_face"
MARKER_UNDECODABLE = b"garbage"
MARKER_IMAGE = b"image"  # a picture posing as a clip: no audio stream, and no video to decode

INTERRUPT = {"after": None, "calls": 0}

#: A folder; once ``<folder>/armed`` exists, the first Dask worker process to start a vision
#: extraction after finishing a clip writes its pid to ``<folder>/fired`` and SIGKILLs itself.
KILL_WORKER_ENV = "SDME_TEST_KILL_WORKER"
_FINISHED = {"clips": 0}


def die_once_in_a_worker() -> None:
    """Kills this process, mid-clip, if it is an armed Dask worker that has finished a clip and
    no worker died yet (never the test process itself: it is not a Dask worker)."""
    folder = os.environ.get(KILL_WORKER_ENV)
    if not folder or _FINISHED["clips"] < 1 or not os.path.exists(os.path.join(folder, "armed")):
        return
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return
    try:
        fd = os.open(os.path.join(folder, "fired"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def _rng(clip: RawClip, salt: str) -> np.random.Generator:
    seed = int(hashlib.sha256(f"{salt}:{clip.clip_id}:{clip.text}".encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed)


def _marker(raw_dir: Path, clip: RawClip) -> bytes:
    path = clip_media_path(raw_dir, clip.clip_id)
    data = path.read_bytes()
    if data.startswith(MARKER_UNDECODABLE):
        raise ClipError(path, "decode_failed", "not a media file")
    return data


def _tick() -> None:
    if INTERRUPT["after"] is not None:
        INTERRUPT["calls"] += 1
        if INTERRUPT["calls"] > INTERRUPT["after"]:
            raise KeyboardInterrupt("simulated interruption")


@dataclass(frozen=True)
class TextParams:
    dim: int = 6


@dataclass(frozen=True)
class AudioParams:
    dim: int = 4


@dataclass(frozen=True)
class VisionParams:
    dim: int = 5
    fps: float = 5.0


@register_extractor("text", "double", params=TextParams)
class DoubleText(Extractor):
    def __init__(self, params: TextParams | None = None, device: str = "cpu") -> None:
        dim = (params or TextParams()).dim
        self.info = ExtractorInfo("double", "1", "text", dim, {"dim": dim})
        self.device = device

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        _tick()
        words = clip.text.split()
        if not words:
            raise ClipError(raw_dir / "annotations.csv", "empty_text", "empty")
        return _rng(clip, "text").standard_normal((len(words), self.info.dim)).astype(np.float32)


@register_extractor("audio", "double", params=AudioParams)
class DoubleAudio(Extractor):
    def __init__(self, params: AudioParams | None = None, device: str = "cpu") -> None:
        dim = (params or AudioParams()).dim
        self.info = ExtractorInfo("double", "1", "audio", dim, {"dim": dim})
        self.device = device

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        _tick()
        if _marker(raw_dir, clip).startswith((MARKER_NO_AUDIO, MARKER_IMAGE)):
            raise ClipError(clip_media_path(raw_dir, clip.clip_id), "no_audio", "no stream")
        frames = max(1, int(round((clip.end - clip.start) * 10)))
        return _rng(clip, "audio").standard_normal((frames, self.info.dim)).astype(np.float32)


@register_extractor("vision", "double", params=VisionParams)
class DoubleVision(Extractor):
    def __init__(self, params: VisionParams | None = None, device: str = "cpu") -> None:
        params = params or VisionParams()
        dim, fps = params.dim, params.fps
        self.info = ExtractorInfo("double", "1", "vision", dim, {"dim": dim, "fps": fps})
        self.fps = fps
        self.device = device

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        _tick()
        die_once_in_a_worker()
        _FINISHED["clips"] += 1  # vision is a clip's last modality
        marker = _marker(raw_dir, clip)
        if marker.startswith(MARKER_IMAGE):
            raise ClipError(clip_media_path(raw_dir, clip.clip_id), "decode_failed",
                            "an image, not a video")
        if marker.startswith(MARKER_NO_FACE):
            raise ClipError(clip_media_path(raw_dir, clip.clip_id), "no_face", "no face")
        frames = max(1, int(round((clip.end - clip.start) * self.fps)))
        return _rng(clip, "vision").standard_normal((frames, self.info.dim)).astype(np.float32)


DOUBLES = {"text_encoder": "double", "audio_features": "double", "vision_features": "double"}


def write_raw_corpus(raw_dir: Path, clips: Sequence[RawClip], media: dict[str, bytes | Path],
                     *, name: str = "tiny", taxonomy: Sequence[str] | None = None,
                     **manifest_fields: object) -> Path:
    """Writes a raw corpus: ``media[clip_id]`` is the clip's bytes or a file to copy."""
    (raw_dir / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    for clip in clips:
        target = clip_media_path(raw_dir, clip.clip_id)
        source = media[clip.clip_id]
        if isinstance(source, Path):
            shutil.copyfile(source, target)
        else:
            target.write_bytes(source)
    write_annotations(raw_dir / "annotations.csv", clips)
    extra = {} if taxonomy is None else {"taxonomy": tuple(taxonomy)}
    manifest = CorpusManifest(name=name, version="1.0", license="CC-BY-4.0",
                              files=make_manifest_files(raw_dir), **extra, **manifest_fields)
    (raw_dir / "sdme.json").write_text(manifest.to_json(), encoding="utf-8")
    return raw_dir


LABELS = ("neutral", "happiness", "sadness", "anger")


def synthetic_clips(n_speakers: int = 6, clips_per_speaker: int = 4) -> list[RawClip]:
    """Clips of ``n_speakers`` speakers, two videos each, with unimodal votes."""
    clips = []
    for s in range(n_speakers):
        for c in range(clips_per_speaker):
            label = LABELS[(s + c) % len(LABELS)]
            other = LABELS[(s + c + 1) % len(LABELS)]
            clips.append(RawClip(
                clip_id=f"s{s}c{c}", video_id=f"v{s}_{c % 2}", speaker_id=f"spk{s}",
                start=float(c), end=float(c) + 1.0 + 0.1 * c, text=f"clip {c} of speaker {s}",
                language="en", label=label,
                votes_text=(label, label, other), votes_audio=(other, other, label),
                votes_vision=(label,) * 3 if c % 2 else ()))
    return clips


def tiny_corpus(raw_dir: Path, specials: dict[str, bytes] | None = None,
                clips: Sequence[RawClip] | None = None) -> Path:
    """A raw corpus for the doubles; ``specials`` maps clip ids to non-ok markers."""
    clips = list(clips or synthetic_clips())
    media: dict[str, bytes | Path] = {c.clip_id: MARKER_OK + c.clip_id.encode() for c in clips}
    media.update(specials or {})
    return write_raw_corpus(raw_dir, clips, media, taxonomy=LABELS)


def with_text(clips: Sequence[RawClip], clip_id: str, text: str) -> list[RawClip]:
    return [replace(c, text=text) if c.clip_id == clip_id else c for c in clips]
