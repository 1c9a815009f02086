"""Media decoding and detection: video frames, audio, faces.

- ``sdme.media.video``: frames sampled at a fixed rate by random access (``decord.VideoReader``).
- ``sdme.media.audio``: mono waveform resampled to 16 kHz (torchcodec's FFmpeg decoder, the one
  behind ``torchaudio.load`` since torchaudio 2.9, then ``torchaudio.functional.resample``).
- ``sdme.media.faces``: batched face detection with facenet-pytorch's MTCNN (Zhang et al., 2016,
  "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional Networks"; weights
  ship inside the facenet-pytorch wheel) and aligned face crops.

This package holds ``ClipError``, the one error a clip's media raises when it cannot yield a
modality; ``sdme.features`` re-exports it. Submodules import their heavy dependencies (torch,
decord, torchcodec) themselves, so importing this package is cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CLIP_ERROR_REASONS: tuple[str, ...] = ("decode_failed", "no_audio", "no_face", "empty_text")


class ClipError(Exception):
    """A clip that cannot yield a modality's features.

    The build drops such a clip for that modality and records ``reason`` and ``detail`` in
    ``build_info.json``. The message starts with the offending file.

    Attributes:
        path: The media file (or annotations file, for text) that failed.
        reason: One of ``CLIP_ERROR_REASONS``.
        detail: Human-readable explanation (the decoder's message, frame counts, ...).
    """

    def __init__(self, path: str | Path, reason: str, detail: str) -> None:
        if reason not in CLIP_ERROR_REASONS:
            raise ValueError(f"unknown ClipError reason {reason!r}; "
                             f"known: {', '.join(CLIP_ERROR_REASONS)}")
        super().__init__(f"{path}: {reason}: {detail}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the exception picklable across worker processes.
        return (type(self), (self.path, self.reason, self.detail))


__all__ = ["CLIP_ERROR_REASONS", "ClipError"]
