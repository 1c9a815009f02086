"""Late fusion: one classifier per modality, logits averaged over the modalities present.

Late (decision-level) fusion models each modality on its own and combines the decisions; see
Baltrušaitis, Ahuja and Morency, "Multimodal Machine Learning: A Survey and Taxonomy" (IEEE
TPAMI 2019, https://arxiv.org/abs/1705.09406) and MMSA's late-fusion baseline ``LF_DNN``
(https://github.com/thuiar/MMSA). Here the combination is the plain average of the per-modality
logits (or scores) over the modalities each sample has, so a missing modality simply drops out
of the vote instead of voting with an empty input.

Besides the task loss on the averaged logits, each unimodal classifier is also trained on the
clip label (``unimodal_loss_weight``, over the samples that have the modality), as in classic
late fusion where every unimodal classifier is a classifier in its own right.

Registered: ``late_fusion``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from baselines.models.base import Batch, EmotionModel, ModelOutput, prediction_loss, register_model
from baselines.models.blocks import (
    EncoderConfig,
    encode_modalities,
    mlp,
    modality_encoders,
    model_modalities,
    present_mask,
)
from baselines.search import FloatRange, SpaceSection

# ----------------------------------------------------------------------------- configuration


@dataclass
class LateFusionConfig(EncoderConfig):
    """Options of late fusion (and the encoder options of
    :class:`~baselines.models.blocks.EncoderConfig`).

    Attributes:
        unimodal_loss_weight: weight of the per-modality losses on the clip label (0 trains the
            classifiers only through their average).
    """

    search_space: ClassVar[SpaceSection] = {**EncoderConfig.search_space,
                                            "unimodal_loss_weight": FloatRange(0.0, 2.0)}

    unimodal_loss_weight: float = 1.0


# ----------------------------------------------------------------------------- model


class LateFusion(EmotionModel):
    """Per-modality encoder + head; the output is the mean of the present modalities' logits."""

    config_class = LateFusionConfig

    def __init__(self, config: LateFusionConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        self.encoders = modality_encoders(config, self.modalities)
        self.heads = nn.ModuleDict({m: mlp(config.hidden, config.hidden, config.out_dim,
                                           config.dropout) for m in self.modalities})

    def forward(self, batch: Batch) -> ModelOutput:
        embeddings = encode_modalities(self.encoders, batch, self.config.hidden)
        modality_logits = {m: self.heads[m](embeddings[m]) for m in self.modalities}
        present = torch.stack([present_mask(batch, m) for m in self.modalities], dim=1)
        weights = present.float() / present.sum(dim=1, keepdim=True).clamp(min=1)  # [B, M]
        stacked = torch.stack([modality_logits[m] for m in self.modalities], dim=1)  # [B, M, C]
        logits = (stacked * weights.unsqueeze(-1).to(stacked.dtype)).sum(dim=1)
        return ModelOutput(logits=logits, modality_logits=modality_logits,
                           embeddings=embeddings, aux={"present": present})

    def extra_losses(self, output: ModelOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """Each unimodal classifier's task loss on the clip label (samples with the modality)."""
        if batch.labels is None or self.config.unimodal_loss_weight == 0:
            return {}
        present = output.aux["present"]
        losses = []
        for i, m in enumerate(self.modalities):
            rows = present[:, i]
            if not rows.any():
                continue
            losses.append(prediction_loss(output.modality_logits[m][rows], batch.labels[rows],
                                          self.config.task))
        if not losses:
            return {}
        return {"unimodal": self.config.unimodal_loss_weight * torch.stack(losses).mean()}


# ----------------------------------------------------------------------------- registered models

register_model("late_fusion", LateFusion,
               description="Late fusion by averaging per-modality logits.")
