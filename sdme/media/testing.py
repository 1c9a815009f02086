"""Tiny real media for tests and benchmarks: mp4 clips with a moving face and a tone.

The faces are real photographs bundled with scikit-image (``skimage.data.astronaut()``, NASA,
public domain; ``skimage.data.lfw_subset()``, Labeled Faces in the Wild, Huang et al., 2007).
Video is H.264 and audio AAC, written with PyAV (https://github.com/PyAV-Org/PyAV, BSD-3-Clause).
Both are optional dependencies (``pip install sdme[sample]``) imported only when called.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def astronaut_face(size: int = 96) -> np.ndarray:
    """Head and shoulders of the astronaut photo, ``[size, size, 3]`` uint8 RGB."""
    from skimage.data import astronaut
    from skimage.transform import resize

    head = astronaut()[0:256, 96:352]
    return (resize(head, (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)


def lfw_face(index: int = 0, size: int = 96) -> np.ndarray:
    """One Labeled-Faces-in-the-Wild face (``lfw_subset`` images 0-99 are faces), upscaled."""
    from skimage.data import lfw_subset
    from skimage.transform import resize

    if not 0 <= index < 100:
        raise ValueError(f"lfw_subset faces are images 0-99, got {index}")
    gray = resize(lfw_subset()[index], (size, size), order=3, anti_aliasing=False).clip(0, 1)
    return np.repeat((gray * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def moving_face_frames(face: np.ndarray | None, num_frames: int, width: int = 192,
                       height: int = 144, step: int = 2, background: int = 170) -> np.ndarray:
    """Frames of ``face`` sliding right by ``step`` pixels per frame over a flat background.

    Args:
        face: ``[h, w, 3]`` uint8 image, or None for frames with no face at all.
        num_frames: Frames to make.
        width: Frame width (even, for H.264).
        height: Frame height (even).
        step: Horizontal motion in pixels per frame.
        background: Grey level of the background.

    Returns:
        ``[num_frames, height, width, 3]`` uint8.
    """
    frames = np.full((num_frames, height, width, 3), background, dtype=np.uint8)
    if face is None:
        return frames
    fh, fw = face.shape[:2]
    top = (height - fh) // 2
    for i in range(num_frames):
        left = min(8 + i * step, width - fw)
        frames[i, top:top + fh, left:left + fw] = face
    return frames


def face_left_edges(num_frames: int, face_width: int, width: int = 192,
                    step: int = 2) -> np.ndarray:
    """Left edge of the face in each frame of ``moving_face_frames`` (for checking tracking)."""
    return np.minimum(8 + np.arange(num_frames) * step, width - face_width)


def tone(duration: float, freq: float = 440.0, amplitude: float = 0.3,
         sample_rate: int = 44_100) -> np.ndarray:
    """A sine tone, ``[samples]`` float32."""
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 25,
              audio: np.ndarray | None = None, sample_rate: int = 44_100) -> Path:
    """Writes H.264 video (and an AAC mono track when ``audio`` is given) to ``path``.

    Args:
        path: Output file.
        frames: ``[N, H, W, 3]`` uint8 RGB frames (H and W even).
        fps: Frame rate.
        audio: Mono samples in [-1, 1], or None for a file with no audio stream.
        sample_rate: Audio sample rate.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = int(frames.shape[2])
        video.height = int(frames.shape[1])
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = np.asarray(audio, dtype=np.float32)
            chunk = 1024
            for start in range(0, len(samples), chunk):
                block = samples[start:start + chunk][None, :]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt",
                                                   layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = 16_000) -> Path:
    """Writes mono 16-bit PCM WAV with the standard library's ``wave`` module."""
    import wave

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(sample_rate)
        fh.writeframes(pcm.tobytes())
    return path


def write_face_clip(path: str | Path, face: np.ndarray | None, seconds: float = 2.0,
                    fps: int = 25, freq: float | None = 440.0, amplitude: float = 0.3,
                    width: int = 192, height: int = 144, step: int = 2) -> Path:
    """A clip of ``face`` moving right with a tone (or no audio stream when ``freq`` is None)."""
    count = int(round(seconds * fps))
    frames = moving_face_frames(face, count, width=width, height=height, step=step)
    audio = None if freq is None else tone(seconds, freq, amplitude)
    return write_mp4(path, frames, fps=fps, audio=audio)
