"""Audio features: frame-level acoustic descriptors of a clip's sound.

``logmel`` (default): Kaldi-compatible log mel filterbank energies
(``torchaudio.compliance.kaldi.fbank``; Povey et al., 2011, "The Kaldi Speech Recognition
Toolkit") of the mono 16 kHz waveform (``sdme.media.audio``): ``n_mels`` (default 40) bands,
25 ms Povey windows every 10 ms, no dither (deterministic). Per-utterance mean/variance
normalisation is off by default (``normalize=True`` turns it on); the raw log energies keep the
loudness information that carries emotion (arousal), and models normalise over the corpus.

``egemaps``: the 25 eGeMAPSv02 low-level descriptors (Eyben et al., 2016, "The Geneva
Minimalistic Acoustic Parameter Set (GeMAPS) for Voice Research and Affective Computing", IEEE
TAC 7(2)) per 10 ms frame, computed by openSMILE (https://github.com/audeering/opensmile-python).
Needs the optional dependency: ``pip install sdme[opensmile]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdme.features import ClipError, Extractor, ExtractorInfo, NoParams, register_extractor
from sdme.schema import RawClip, clip_audio_path

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class LogMelParams:
    """Parameters of ``logmel``.

    Attributes:
        n_mels: Mel bands.
        frame_ms: Analysis window length in milliseconds.
        hop_ms: Window shift in milliseconds (raise it to shorten sequences).
        normalize: Subtract the clip's mean and divide by its standard deviation per band.
        low_freq: Lowest filterbank frequency in Hz.
        high_freq: Highest frequency in Hz (0: Nyquist; negative: offset below Nyquist).
    """

    n_mels: int = 40
    frame_ms: float = 25.0
    hop_ms: float = 10.0
    normalize: bool = False
    low_freq: float = 20.0
    high_freq: float = 0.0

    def __post_init__(self) -> None:
        if self.n_mels < 1:
            raise ValueError(f"n_mels must be >= 1, got {self.n_mels}")
        if self.frame_ms <= 0 or self.hop_ms <= 0:
            raise ValueError(f"frame_ms and hop_ms must be positive, got {self.frame_ms}, "
                             f"{self.hop_ms}")


@register_extractor("audio", "logmel", params=LogMelParams)
class LogMelExtractor(Extractor):
    """Log mel filterbank energies, ``[frames, n_mels]`` (default).

    Args:
        params: :class:`LogMelParams`.
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"

    def __init__(self, params: LogMelParams | None = None, device: str = "cpu") -> None:
        params = params or LogMelParams()
        self.n_mels = int(params.n_mels)
        self.frame_ms = float(params.frame_ms)
        self.hop_ms = float(params.hop_ms)
        self.normalize = bool(params.normalize)
        self.low_freq = float(params.low_freq)
        self.high_freq = float(params.high_freq)
        self.device = str(device)
        self.info = ExtractorInfo(
            name="logmel", version=self.VERSION, modality="audio", dim=self.n_mels,
            params={"sample_rate": SAMPLE_RATE, "n_mels": self.n_mels,
                    "frame_ms": self.frame_ms, "hop_ms": self.hop_ms,
                    "normalize": self.normalize, "low_freq": self.low_freq,
                    "high_freq": self.high_freq, "window": "povey", "dither": 0.0,
                    "scale": "int16"},
        )

    def load(self) -> LogMelExtractor:
        import torchaudio.compliance.kaldi  # noqa: F401 - imports part of loading
        import torchcodec.decoders  # noqa: F401

        return self

    def features(self, samples: Any, path: str | Path = "<waveform>") -> np.ndarray:
        """Log-mel features of a 16 kHz mono waveform (``[S]`` tensor in [-1, 1])."""
        import torch
        from torchaudio.compliance import kaldi

        min_samples = int(SAMPLE_RATE * self.frame_ms / 1000)
        if samples.numel() < min_samples:
            raise ClipError(path, "no_audio", f"{samples.numel()} samples at {SAMPLE_RATE} Hz "
                            f"is shorter than one {self.frame_ms:g} ms frame")
        # Kaldi's conventions assume 16-bit sample values; energy_floor keeps log() finite on
        # digital silence.
        waveform = (samples.to(self.device, torch.float32) * 32768.0).unsqueeze(0)
        feats = kaldi.fbank(
            waveform, sample_frequency=SAMPLE_RATE, num_mel_bins=self.n_mels,
            frame_length=self.frame_ms, frame_shift=self.hop_ms, dither=0.0,
            window_type="povey", low_freq=self.low_freq, high_freq=self.high_freq,
            energy_floor=1.0, use_energy=False,
        )
        if self.normalize:
            feats = (feats - feats.mean(dim=0)) / feats.std(dim=0, unbiased=False).clamp_min(1e-5)
        return feats.cpu().numpy().astype(np.float32)

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        from sdme.media.audio import load_audio

        path = clip_audio_path(raw_dir, clip.clip_id)
        wave = load_audio(path, SAMPLE_RATE)
        return self.features(wave.samples, path)


@register_extractor("audio", "egemaps", requires=("opensmile",))
class EGeMAPSExtractor(Extractor):
    """openSMILE eGeMAPSv02 low-level descriptors, ``[frames, 25]`` (optional dependency)."""

    VERSION = "1"

    def __init__(self, params: NoParams | None = None, device: str = "cpu") -> None:
        try:
            import opensmile
        except ImportError as exc:
            raise ImportError(
                "the 'egemaps' audio extractor needs openSMILE, which is not installed: "
                "pip install sdme[opensmile]  (or: pip install opensmile)"
            ) from exc
        self._smile = None
        self.device = str(device)
        self.info = ExtractorInfo(
            name="egemaps", version=self.VERSION, modality="audio", dim=25,
            params={"sample_rate": SAMPLE_RATE, "feature_set": "eGeMAPSv02",
                    "feature_level": "LowLevelDescriptors",
                    "opensmile": getattr(opensmile, "__version__", "unknown")},
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_smile"] = None
        return state

    def load(self) -> EGeMAPSExtractor:
        import torchcodec.decoders  # noqa: F401 - imports part of loading

        self.smile  # noqa: B018 - builds the openSMILE pipeline now
        return self

    @property
    def smile(self):  # noqa: ANN201 - opensmile.Smile, imported lazily
        if self._smile is None:
            import opensmile

            self._smile = opensmile.Smile(
                feature_set=opensmile.FeatureSet.eGeMAPSv02,
                feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
            )
        return self._smile

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        from sdme.media.audio import load_audio

        path = clip_audio_path(raw_dir, clip.clip_id)
        wave = load_audio(path, SAMPLE_RATE)
        frame = self.smile.process_signal(wave.samples.numpy(), SAMPLE_RATE)
        values = np.asarray(frame.to_numpy(), dtype=np.float32)
        if values.ndim != 2 or len(values) == 0:
            raise ClipError(path, "no_audio", "openSMILE produced no frames (audio too short)")
        return values
