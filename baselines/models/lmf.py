"""Low-rank Multimodal Fusion (LMF).

Liu, Shen, Lakshminarasimhan, Liang, Zadeh and Morency, "Efficient Low-rank Multimodal Fusion
with Modality-Specific Factors", ACL 2018 (https://aclanthology.org/P18-1209/). Reference code:
https://github.com/Justin1904/Low-rank-Multimodal-Fusion (also ``models/singleTask/LMF.py`` in
MMSA, https://github.com/thuiar/MMSA).

LMF computes the same function class as TFN's tensor fusion followed by a linear layer, but
with the weight tensor decomposed into ``rank`` modality-specific factors, so the outer product
is never formed. As in the paper and its code:

* the same modality sub-networks as TFN (:class:`baselines.models.tfn.ModalitySubNets`),
  each vector extended with a constant 1: ``z'_m = [1; z_m]``;
* modality-specific factors ``W_m`` of shape ``[rank, d_m + 1, out]``, initialised
  Xavier-normal;
* the output ``sum_r w_r * prod_m (z'_m W_m^(r)) + b`` with learned fusion weights ``w``
  ``[1, rank]`` and bias ``b`` (the reference code's linear combination of the rank terms in
  place of the paper's plain sum).

SDME's adaptations are those of TFN (configurable modalities, LayerNorm sub-networks, a linear
continuous score). A missing modality's vector is zeros, so its factor contributes only through
the constant 1, and the others' terms are kept.

Registered: ``lmf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from baselines.models.base import Batch, EmotionModel, ModelOutput, register_model
from baselines.models.blocks import model_modalities
from baselines.models.tfn import ModalitySubNets, SubNetsConfig
from baselines.search import IntRange, SpaceSection

# ----------------------------------------------------------------------------- configuration


@dataclass
class LMFConfig(SubNetsConfig):
    """Options of LMF (and those of :class:`~baselines.models.tfn.SubNetsConfig`).

    Attributes:
        rank: rank of the decomposition.
    """

    search_space: ClassVar[SpaceSection] = {**SubNetsConfig.search_space,
                                            "rank": IntRange(2, 8)}

    rank: int = 4


# ----------------------------------------------------------------------------- building blocks


class LowRankFusion(nn.Module):
    """``sum_r w_r prod_m ([1; z_m] W_m^(r)) + b``.

    Args:
        dims: size of each modality vector (without the appended 1), in the fusion order.
        out_dim: output size.
        rank: number of rank-1 terms.
    """

    def __init__(self, dims: list[int], out_dim: int, rank: int) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"LMF rank must be >= 1, got {rank}")
        self.factors = nn.ParameterList(
            [nn.Parameter(torch.empty(rank, d + 1, out_dim)) for d in dims])
        self.fusion_weights = nn.Parameter(torch.empty(1, rank))
        self.fusion_bias = nn.Parameter(torch.zeros(1, out_dim))
        for factor in self.factors:
            nn.init.xavier_normal_(factor)
        nn.init.xavier_normal_(self.fusion_weights)

    def forward(self, vectors: list[torch.Tensor]) -> torch.Tensor:
        """Modality vectors [B, d_m] → [B, out_dim]."""
        product = None
        for z, factor in zip(vectors, self.factors, strict=True):
            z1 = torch.cat([z.new_ones(z.shape[0], 1), z], dim=1)
            term = torch.einsum("bd,rdo->rbo", z1, factor.to(z1.dtype))
            product = term if product is None else product * term
        weights = self.fusion_weights.to(product.dtype).squeeze(0)
        return torch.einsum("r,rbo->bo", weights, product) + self.fusion_bias.to(product.dtype)


# ----------------------------------------------------------------------------- model


class LMF(EmotionModel):
    """Sub-networks → low-rank fusion (directly to the output)."""

    config_class = LMFConfig

    def __init__(self, config: LMFConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        self.subnets = ModalitySubNets(config)
        self.fusion = LowRankFusion([config.subnet_dim] * len(self.modalities), config.out_dim,
                                    config.rank)

    def forward(self, batch: Batch) -> ModelOutput:
        embeddings = self.subnets(batch)
        logits = self.fusion([embeddings[m] for m in self.modalities])
        return ModelOutput(logits=logits, embeddings=embeddings)


# ----------------------------------------------------------------------------- registered models

register_model("lmf", LMF, description="Low-rank Multimodal Fusion.")
