"""Audio features from self-supervised speech encoders: wav2vec 2.0, HuBERT and WavLM.

The hidden states of one layer of a pretrained speech encoder, run through ``transformers``
(https://huggingface.co/docs/transformers/model_doc/wav2vec2) on the clip's mono 16 kHz waveform
(``sdme.media.audio``), normalised as the model's own feature extractor says:

- ``wav2vec2``: wav2vec 2.0 (Baevski et al., 2020, NeurIPS; e.g. ``facebook/wav2vec2-base``,
  Apache-2.0), and its conformer variant;
- ``hubert``: HuBERT (Hsu et al., 2021, IEEE/ACM TASLP; e.g. ``facebook/hubert-base-ls960``);
- ``wavlm``: WavLM (Chen et al., 2022, IEEE JSTSP; e.g. ``microsoft/wavlm-base-plus``).

These are the acoustic encoders MERBench (Lian et al., 2024, "MERBench: A Unified Evaluation
Benchmark for Multimodal Emotion Recognition") found to matter more than the fusion model.
Parameters: ``layer`` (which hidden state: 0 is the transformer's input, -1 its last layer; the
middle layers often carry more paralinguistic information than the last), and ``pooling``:
``"frames"`` keeps the sequence (one vector per 20 ms frame, averaged over non-overlapping
windows of ``stride`` frames to shorten it) and ``"utterance"`` averages it into one vector per
clip (MERBench's utterance-level features).

Weights are read from a local folder or the Hugging Face cache only (``model=...``;
``sdme.features.pretrained``); provenance records hashes of the config, the feature-extractor
settings and the weights. The offline fixtures build a tiny randomly initialised model of each
family from a config (:func:`tiny_speech_model`), so the contract test runs the real loading and
extraction code without a download.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sdme.features import ClipError, Extractor, ExtractorInfo, register_extractor
from sdme.features.pretrained import LocalModel
from sdme.schema import RawClip, clip_audio_path

SAMPLE_RATE = 16_000

#: ``config.model_type`` values each registered name takes.
FAMILIES: dict[str, tuple[str, ...]] = {
    "wav2vec2": ("wav2vec2", "wav2vec2-conformer"),
    "hubert": ("hubert",),
    "wavlm": ("wavlm",),
}


@dataclass(frozen=True)
class SpeechParams:
    """Parameters of the speech encoders.

    Attributes:
        model: Local folder or cached Hugging Face id of the encoder (required).
        revision: Cached revision of a Hub id (default: the cache's ``main``).
        layer: Hidden state to take: 0 is the transformer's input (the convolutional features,
            projected), ``k`` the output of layer ``k``; negative values count from the last.
        pooling: ``"frames"``: the frame sequence (pooled by ``stride``); ``"utterance"``: its
            mean, one vector per clip.
        stride: Frames averaged per output step with ``pooling="frames"`` (1: every 20 ms
            frame; 5: 100 ms steps).
    """

    model: str | None = None
    revision: str | None = None
    layer: int = -1
    pooling: Literal["frames", "utterance"] = "frames"
    stride: int = 1

    def __post_init__(self) -> None:
        if self.pooling not in ("frames", "utterance"):
            raise ValueError(f"pooling must be 'frames' or 'utterance', got {self.pooling!r}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")


def tiny_speech_model(folder: str | Path, model_type: str = "wav2vec2",
                      hidden_size: int = 16) -> Path:
    """Writes a tiny randomly initialised speech encoder of ``model_type`` (two layers, the
    real convolutional strides) and its feature extractor to ``folder``, made from a config
    with no download: local weights for tests and benchmarks."""
    import torch
    from transformers import AutoConfig, AutoModel, Wav2Vec2FeatureExtractor

    folder = Path(folder)
    config = AutoConfig.for_model(
        model_type, hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden_size, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, vocab_size=8)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                             do_normalize=True, return_attention_mask=False
                             ).save_pretrained(folder)
    return folder


class SpeechEncoderExtractor(Extractor):
    """One layer of a self-supervised speech encoder, ``[steps, hidden_size]`` (or ``[1, ...]``
    with utterance pooling); subclasses name the family.

    Args:
        params: :class:`SpeechParams`.
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"
    NAME = ""

    def __init__(self, params: SpeechParams | None = None, device: str = "cpu") -> None:
        params = params or SpeechParams()
        self.local = LocalModel(params.model, params.revision, extractor=f"audio/{self.NAME}",
                                model_types=FAMILIES[self.NAME], processor="feature_extractor")
        self.local.to(device)  # loaded there on first use
        config = self.local.config
        layers = int(config.num_hidden_layers) + 1
        if not -layers <= params.layer < layers:
            raise ValueError(f"layer {params.layer} does not exist: {params.model} has hidden "
                             f"states 0..{layers - 1} (or -{layers}..-1)")
        self.layer = int(params.layer) % layers
        self.pooling = params.pooling
        self.stride = int(params.stride) if params.pooling == "frames" else 1
        self.hop = math.prod(int(s) for s in config.conv_stride)  # samples per frame
        self.receptive_field = _receptive_field(config)
        self.device = str(device)
        self.info = ExtractorInfo(
            name=self.NAME, version=self.VERSION, modality="audio",
            dim=int(config.hidden_size),
            params={**self.local.provenance(), "sample_rate": SAMPLE_RATE, "layer": self.layer,
                    "num_layers": layers - 1, "pooling": self.pooling, "stride": self.stride,
                    "frame_ms": 1000.0 * self.hop / SAMPLE_RATE * self.stride},
        )

    def to(self, device: str) -> Extractor:
        self.device = str(device)
        self.local.to(device)
        return self

    def features(self, samples: Any, path: str | Path = "<waveform>") -> np.ndarray:
        """Features of a 16 kHz mono waveform (``[S]`` tensor in [-1, 1])."""
        import torch

        if samples.numel() < self.receptive_field:
            raise ClipError(path, "no_audio",
                            f"{samples.numel()} samples at {SAMPLE_RATE} Hz is shorter than the "
                            f"encoder's first frame ({self.receptive_field} samples)")
        inputs = self.local.processor(samples.numpy(), sampling_rate=SAMPLE_RATE,
                                      return_tensors="pt", return_attention_mask=False)
        model = self.local.model
        with torch.inference_mode():
            out = model(inputs["input_values"].to(self.device), output_hidden_states=True)
        hidden = out.hidden_states[self.layer][0].float()  # [frames, dim]
        if self.pooling == "utterance":
            hidden = hidden.mean(dim=0, keepdim=True)
        elif self.stride > 1:
            frames = hidden.shape[0]
            steps = math.ceil(frames / self.stride)
            pad = steps * self.stride - frames
            padded = torch.nn.functional.pad(hidden, (0, 0, 0, pad))
            counts = torch.full((steps, 1), float(self.stride), device=hidden.device)
            counts[-1] = self.stride - pad
            hidden = padded.view(steps, self.stride, -1).sum(dim=1) / counts
        return hidden.cpu().numpy().astype(np.float32)

    def load(self) -> Extractor:
        self.local.load()
        return self

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        from sdme.media.audio import load_audio

        path = clip_audio_path(raw_dir, clip.clip_id)
        return self.features(load_audio(path, SAMPLE_RATE).samples, path)


def _receptive_field(config: Any) -> int:
    """Samples the convolutional feature encoder needs for its first frame."""
    field = 1
    for kernel, stride in zip(reversed(config.conv_kernel), reversed(config.conv_stride),
                              strict=True):
        field = (field - 1) * int(stride) + int(kernel)
    return field


def _fixture(model_type: str):  # noqa: ANN202 - the registration's fixture
    def fixture(workdir: Path) -> dict[str, Any]:
        folder = tiny_speech_model(Path(workdir) / f"tiny-{model_type}", model_type)
        return {"model": str(folder), "layer": 1, "stride": 2}

    return fixture


@register_extractor("audio", "wav2vec2", params=SpeechParams, fixture=_fixture("wav2vec2"),
                    requires=("transformers",))
class Wav2Vec2Extractor(SpeechEncoderExtractor):
    """wav2vec 2.0 hidden states (local weights, e.g. facebook/wav2vec2-base)."""

    NAME = "wav2vec2"


@register_extractor("audio", "hubert", params=SpeechParams, fixture=_fixture("hubert"),
                    requires=("transformers",))
class HubertExtractor(SpeechEncoderExtractor):
    """HuBERT hidden states (local weights, e.g. facebook/hubert-base-ls960)."""

    NAME = "hubert"


@register_extractor("audio", "wavlm", params=SpeechParams, fixture=_fixture("wavlm"),
                    requires=("transformers",))
class WavLMExtractor(SpeechEncoderExtractor):
    """WavLM hidden states (local weights, e.g. microsoft/wavlm-base-plus)."""

    NAME = "wavlm"


__all__ = ["FAMILIES", "HubertExtractor", "SpeechEncoderExtractor", "SpeechParams",
           "Wav2Vec2Extractor", "WavLMExtractor", "tiny_speech_model"]
