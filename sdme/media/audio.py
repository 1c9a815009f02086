"""Audio decoding: a clip's sound as a mono waveform at 16 kHz.

Decoding goes through torchcodec's FFmpeg-based ``AudioDecoder``, the decoder behind
``torchaudio.load`` since torchaudio 2.9 (https://github.com/pytorch/torchcodec, BSD-3-Clause;
it needs the system FFmpeg libraries). Using the decoder directly lets a file without an audio
stream be told apart from a file that cannot be read. Channels are averaged to mono and the
signal is resampled with ``torchaudio.functional.resample`` (band-limited sinc interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from sdme.media import ClipError

DEFAULT_SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Waveform:
    """A mono waveform.

    Attributes:
        samples: ``[S]`` float32 tensor, nominally in [-1, 1].
        sample_rate: Samples per second.
        source_rate: The file's own sample rate before resampling.
    """

    samples: torch.Tensor
    sample_rate: int
    source_rate: int

    @property
    def duration(self) -> float:
        return self.samples.numel() / self.sample_rate


def is_missing_stream(exc: Exception) -> bool:
    """Whether torchcodec's ``AudioDecoder`` failed because the file has no audio stream
    (rather than because it cannot be read): the one test, used by decoding and validation."""
    text = str(exc).lower()
    return isinstance(exc, ValueError) and "audio stream" in text


def load_audio(path: str | Path, sample_rate: int = DEFAULT_SAMPLE_RATE) -> Waveform:
    """Decodes a media file's (best) audio stream to mono at ``sample_rate``.

    Args:
        path: An audio file (wav, flac, ...) or a video whose audio track to read.
        sample_rate: Target rate in Hz.

    Raises:
        ClipError: ``no_audio`` when the file has no audio stream or an empty one;
            ``decode_failed`` when the file is missing or cannot be decoded.
    """
    import torchaudio.functional as AF
    from torchcodec.decoders import AudioDecoder

    path = Path(path)
    if not path.is_file():
        raise ClipError(path, "decode_failed", "file not found")
    try:
        decoder = AudioDecoder(str(path))
    except Exception as exc:
        if is_missing_stream(exc):
            raise ClipError(path, "no_audio", "the file has no audio stream") from exc
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ClipError(path, "decode_failed", f"FFmpeg could not open the file ({message})") \
            from exc
    try:
        decoded = decoder.get_all_samples()
    except Exception as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ClipError(path, "decode_failed", f"FFmpeg could not decode the audio ({message})") \
            from exc
    data = decoded.data
    source_rate = int(decoded.sample_rate)
    if data.numel() == 0:
        raise ClipError(path, "no_audio", "the audio stream holds no samples")
    mono = data.float().mean(dim=0)
    if source_rate != sample_rate:
        mono = AF.resample(mono, orig_freq=source_rate, new_freq=sample_rate)
    if not torch.isfinite(mono).all():
        raise ClipError(path, "decode_failed", "the decoded audio holds NaN or infinite values")
    return Waveform(samples=mono.contiguous(), sample_rate=sample_rate, source_rate=source_rate)
