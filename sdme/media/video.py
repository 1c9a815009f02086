"""Video frames sampled at a fixed rate, decoded by random access with decord.

A clip file (``clips/<clip_id>.mp4``) is the clip itself: its annotation's ``start``/``end`` are
positions in the source video, metadata only. Frames are chosen by index on a regular time grid
(``sample_indices``) and decoded with ``decord.VideoReader.get_batch`` on those indices only, so a
clip is never held whole in memory. decord: https://github.com/dmlc/decord (Apache-2.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sdme.media import ClipError

DEFAULT_FPS = 5.0


@dataclass(frozen=True)
class VideoFrames:
    """Frames sampled from one video.

    Attributes:
        frames: ``[N, H, W, 3]`` uint8 RGB tensor.
        indices: ``[N]`` frame indices in the video.
        times: ``[N]`` timestamps in seconds from the start of the file.
        native_fps: The video's average frame rate.
        num_frames: Frames in the whole video.
    """

    frames: torch.Tensor
    indices: np.ndarray
    times: np.ndarray
    native_fps: float
    num_frames: int

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


def sample_indices(num_frames: int, native_fps: float, fps: float,
                   max_frames: int | None = None) -> np.ndarray:
    """Frame indices on a regular grid of ``fps`` samples per second.

    Sample ``k`` is the frame shown at time ``k / fps``: index ``floor(k * native_fps / fps)``.
    A video shorter than one sampling period yields its first frame; when ``fps`` is at or above
    the native rate every frame is taken once.

    Args:
        num_frames: Frames in the video.
        native_fps: The video's frame rate.
        fps: Wanted samples per second.
        max_frames: Keep at most this many samples, spread evenly over the grid.
    """
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not native_fps or not math.isfinite(native_fps) or native_fps <= 0 or fps >= native_fps:
        indices = np.arange(num_frames, dtype=np.int64)
    else:
        step = native_fps / fps
        count = max(1, math.ceil(num_frames / step - 1e-9))
        indices = np.floor(np.arange(count) * step + 1e-9).astype(np.int64)
        indices = np.unique(np.clip(indices, 0, num_frames - 1))
    if max_frames is not None and len(indices) > max_frames:
        keep = np.linspace(0, len(indices) - 1, max_frames).round().astype(np.int64)
        indices = indices[keep]
    return indices


def read_frames(path: str | Path, fps: float = DEFAULT_FPS, max_frames: int | None = None,
                num_threads: int = 1, max_side: int | None = None) -> VideoFrames:
    """Decodes frames of a video at ``fps`` samples per second.

    Args:
        path: Video file (any container/codec FFmpeg reads).
        fps: Samples per second.
        max_frames: Cap on the number of frames (spread evenly over the clip).
        num_threads: Decoder threads (1 suits one worker process per core; 0 lets FFmpeg pick).
        max_side: Scale frames down (by the decoder, keeping the aspect ratio) so that their
            longer side is at most this many pixels; None keeps the native size.

    Raises:
        ClipError: ``decode_failed`` when the file is missing, unreadable, has no video stream
            or no frames.
    """
    import decord

    path = Path(path)
    if not path.is_file():
        raise ClipError(path, "decode_failed", "file not found")
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
        if max_side is not None and len(reader) > 0:
            height, width = reader[0].shape[:2]
            if max(height, width) > max_side:
                scale = max_side / max(height, width)
                size = {"width": max(2, round(width * scale / 2) * 2),
                        "height": max(2, round(height * scale / 2) * 2)}
                reader = decord.VideoReader(str(path), ctx=decord.cpu(0),
                                            num_threads=num_threads, **size)
        num_frames = len(reader)
        native_fps = float(reader.get_avg_fps())
        indices = sample_indices(num_frames, native_fps, fps, max_frames)
        if len(indices) == 0:
            raise ClipError(path, "decode_failed", "the video has no frames")
        batch = reader.get_batch(indices.tolist()).asnumpy()
    except ClipError:
        raise
    except Exception as exc:  # decord raises bare RuntimeError/DECORDError for any bad input
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClipError(path, "decode_failed", f"decord could not read the video ({message})") \
            from exc
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ClipError(path, "decode_failed", f"unexpected frame array shape {batch.shape}")
    rate = native_fps if native_fps > 0 else fps
    return VideoFrames(
        frames=torch.from_numpy(np.ascontiguousarray(batch)),
        indices=indices,
        times=indices / rate,
        native_fps=native_fps,
        num_frames=num_frames,
    )
