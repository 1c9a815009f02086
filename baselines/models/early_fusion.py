"""Early fusion: concatenate each modality's pooled features, then one MLP classifier.

Early (feature-level) fusion joins the modalities before any modality-specific modelling; see
the survey of Baltrušaitis, Ahuja and Morency, "Multimodal Machine Learning: A Survey and
Taxonomy" (IEEE TPAMI 2019, https://arxiv.org/abs/1705.09406), and MMSA's ``EF_LSTM``
(https://github.com/thuiar/MMSA). MMSA concatenates word-aligned sequences step by step; SDME's
sequences are not aligned (each modality has its own length), so each sequence is first pooled
over its real steps (masked mean) and the pooled vectors are concatenated.

Each pooled vector is layer-normalised (optional, on by default) so that modalities with very
different feature scales (e.g. raw eGeMAPS functionals beside unit-norm sentence embeddings)
start on an equal footing. A missing modality contributes zeros.

Registered: ``early_fusion``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from baselines.models.base import Batch, EmotionModel, ModelConfig, ModelOutput, register_model
from baselines.models.blocks import encode_once, masked_mean, modality_input, model_modalities
from baselines.search import IntRange, SpaceSection

# ----------------------------------------------------------------------------- configuration


@dataclass
class EarlyFusionConfig(ModelConfig):
    """Options of early fusion.

    Attributes:
        num_layers: hidden layers of the MLP (each ``hidden`` wide).
        normalize: layer-normalise each modality's pooled vector before concatenation.
    """

    search_space: ClassVar[SpaceSection] = {"num_layers": IntRange(1, 3)}

    num_layers: int = 2
    normalize: bool = True


# ----------------------------------------------------------------------------- model


class EarlyFusion(EmotionModel):
    """Masked-mean pooling per modality → concatenation → MLP."""

    config_class = EarlyFusionConfig

    def __init__(self, config: EarlyFusionConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        dims = {m: config.input_dims[m] for m in self.modalities}
        self.norms = nn.ModuleDict({m: nn.LayerNorm(d) if config.normalize else nn.Identity()
                                    for m, d in dims.items()})
        layers: list[nn.Module] = []
        width = sum(dims.values())
        for _ in range(config.num_layers):
            layers += [nn.Linear(width, config.hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = config.hidden
        layers.append(nn.Linear(width, config.out_dim))
        self.classifier = nn.Sequential(*layers)

    def pooled(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Normalised masked mean of each modality; zeros where it is missing."""
        out = {}
        for m in self.modalities:
            x, mask = modality_input(batch, m, self.config.input_dims[m])
            out[m] = encode_once(lambda x, mask, m=m: self._pool(m, x, mask), x, mask,
                                 key=self.norms[m])
        return out

    def _pool(self, m: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        vec = self.norms[m](masked_mean(x, mask))
        return vec * mask.any(dim=-1, keepdim=True).to(vec.dtype)

    def forward(self, batch: Batch) -> ModelOutput:
        pooled = self.pooled(batch)
        logits = self.classifier(torch.cat([pooled[m] for m in self.modalities], dim=-1))
        return ModelOutput(logits=logits)


# ----------------------------------------------------------------------------- registered models

register_model("early_fusion", EarlyFusion, description="Early fusion of pooled features.")
