"""Unimodal baselines: one modality's sequence encoder and a classifier; the others are ignored.

These are the reference points that every fusion model must beat, and the lower bound that
tells how much each modality alone carries (the unimodal rows of the SDME leaderboard). They
follow the unimodal sub-networks of the fusion papers (e.g. the text LSTM of TFN, Zadeh et al.,
2017, https://github.com/A2Zadeh/TensorFusionNetwork): a recurrent (or Transformer, or
mean-pooling) encoder over the modality's feature sequence, then a two-layer head.

A sample that lacks the modality encodes to zeros, so its prediction is the head's bias, i.e.
the learned prior.

Registered: ``text_only``, ``audio_only``, ``vision_only``.
"""

from __future__ import annotations

from dataclasses import dataclass

from baselines.models.base import Batch, EmotionModel, ModelConfig, ModelOutput, register_model
from baselines.models.blocks import SequenceEncoder, encode_modalities, mlp

# ----------------------------------------------------------------------------- configuration


@dataclass
class UnimodalConfig(ModelConfig):
    """Options of the unimodal baselines.

    Attributes:
        modality: the one modality the model reads.
        encoder: :class:`~baselines.models.blocks.SequenceEncoder` kind.
        num_layers: encoder layers.
        num_heads: attention heads (``encoder="transformer"``).
    """

    modality: str = "text"
    encoder: str = "gru"
    num_layers: int = 1
    num_heads: int = 4


# ----------------------------------------------------------------------------- model


class UnimodalModel(EmotionModel):
    """Sequence encoder + MLP head on a single modality."""

    config_class = UnimodalConfig

    def __init__(self, config: UnimodalConfig) -> None:
        super().__init__(config)
        if config.modality not in config.input_dims:
            raise ValueError(f"unimodal model for {config.modality!r}, but input_dims has only "
                             f"{sorted(config.input_dims) or 'nothing'}")
        self.encoder = SequenceEncoder(
            config.input_dims[config.modality], config.hidden, kind=config.encoder,
            dropout=config.dropout, num_layers=config.num_layers, num_heads=config.num_heads)
        self.head = mlp(config.hidden, config.hidden, config.out_dim, config.dropout)

    def forward(self, batch: Batch) -> ModelOutput:
        m = self.config.modality
        h = encode_modalities({m: self.encoder}, batch, self.config.hidden)[m]
        logits = self.head(h)
        return ModelOutput(logits=logits, modality_logits={m: logits}, embeddings={m: h})


# ----------------------------------------------------------------------------- registry


def _build(modality: str, config: dict[str, object]) -> UnimodalModel:
    given = config.get("modality", modality)
    if given != modality:
        raise ValueError(f"{modality}_only reads {modality!r}; got modality={given!r} "
                         f"(use {given}_only instead)")
    return UnimodalModel(UnimodalConfig.from_dict({**config, "modality": modality}))


@register_model("text_only")
def text_only(**config: object) -> UnimodalModel:
    """Text-only baseline."""
    return _build("text", config)


@register_model("audio_only")
def audio_only(**config: object) -> UnimodalModel:
    """Audio-only baseline."""
    return _build("audio", config)


@register_model("vision_only")
def vision_only(**config: object) -> UnimodalModel:
    """Vision-only baseline."""
    return _build("vision", config)
