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

from baselines.models.base import Batch, EmotionModel, ModelOutput, register_model
from baselines.models.blocks import EncoderConfig, encode_modalities, mlp, sequence_encoder

# ----------------------------------------------------------------------------- configuration


@dataclass
class UnimodalConfig(EncoderConfig):
    """Options of the unimodal baselines (and the encoder options of
    :class:`~baselines.models.blocks.EncoderConfig`).

    Attributes:
        modality: the one modality the model reads (fixed by each registered variant).
    """

    modality: str = "text"


# ----------------------------------------------------------------------------- model


class UnimodalModel(EmotionModel):
    """Sequence encoder + MLP head on a single modality."""

    config_class = UnimodalConfig

    def __init__(self, config: UnimodalConfig) -> None:
        super().__init__(config)
        if config.modality not in config.input_dims:
            raise ValueError(f"unimodal model for {config.modality!r}, but input_dims has only "
                             f"{sorted(config.input_dims) or 'nothing'}")
        self.encoder = sequence_encoder(config, config.modality)
        self.head = mlp(config.hidden, config.hidden, config.out_dim, config.dropout)

    def forward(self, batch: Batch) -> ModelOutput:
        m = self.config.modality
        h = encode_modalities({m: self.encoder}, batch, self.config.hidden)[m]
        logits = self.head(h)
        return ModelOutput(logits=logits, modality_logits={m: logits}, embeddings={m: h})


# ----------------------------------------------------------------------------- registered models

register_model("text_only", UnimodalModel, fixed={"modality": "text"},
               description="Text-only baseline.")
register_model("audio_only", UnimodalModel, fixed={"modality": "audio"},
               description="Audio-only baseline.")
register_model("vision_only", UnimodalModel, fixed={"modality": "vision"},
               description="Vision-only baseline.")
