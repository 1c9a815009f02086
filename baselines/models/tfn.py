"""Tensor Fusion Network (TFN).

Zadeh, Chen, Poria, Cambria and Morency, "Tensor Fusion Network for Multimodal Sentiment
Analysis", EMNLP 2017 (https://aclanthology.org/D17-1115/). Reference code:
https://github.com/A2Zadeh/TensorFusionNetwork, and the widely used re-implementation in MMSA
(https://github.com/thuiar/MMSA, ``models/singleTask/TFN.py``).

As in the paper:

* modality embedding sub-networks: the text sequence goes through a recurrent encoder followed
  by a linear layer (the paper's LSTM "spoken language embedding"); audio and vision are
  averaged over time and go through a three-layer sub-network (:class:`blocks.SubNet`);
* tensor fusion: a constant 1 is appended to each modality vector ``z_m`` and the fusion is the
  outer product ``[1; z_t] ⊗ [1; z_a] ⊗ [1; z_v]`` (flattened), which holds the unimodal,
  bimodal and trimodal interaction terms;
* a post-fusion network: dropout, two ReLU layers of ``post_fusion_dim``, a linear output.

SDME's adaptations: the modalities are whatever ``config.input_dims`` names (one to three; the
outer product runs over all of them), which of them are modelled as sequences is configurable
(``sequence_modalities``), :class:`blocks.SubNet` uses LayerNorm instead of BatchNorm, and the
continuous output is a plain linear score (TFN squashes it into MOSI's [-3, 3] range, which is
corpus-specific). A missing modality's vector is zeros; thanks to the appended 1 the other
modalities' unimodal and bimodal terms survive intact.

The pre-fusion sub-networks (:class:`ModalitySubNets`) are shared with LMF
(:mod:`baselines.models.lmf`), which uses the same ones in its paper.

Registered: ``tfn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from baselines.models.base import Batch, EmotionModel, ModelOutput, register_model
from baselines.models.blocks import (
    EncoderConfig,
    SubNet,
    encode_once,
    masked_mean,
    modality_input,
    model_modalities,
    sequence_encoder,
)
from baselines.search import Choice, SpaceSection

# ----------------------------------------------------------------------------- configuration


@dataclass
class SubNetsConfig(EncoderConfig):
    """Options of :class:`ModalitySubNets`, shared by TFN and LMF (and the encoder options of
    :class:`~baselines.models.blocks.EncoderConfig`, used by the sequence modalities'
    ``hidden``-wide encoders).

    Attributes:
        subnet_dim: size of each modality vector before fusion (TFN's ``text_out``,
            ``audio_hidden``, ``video_hidden``).
        sequence_modalities: modalities encoded as sequences; the others are averaged over time
            and go through a :class:`~baselines.models.blocks.SubNet`.
    """

    search_space: ClassVar[SpaceSection] = {**EncoderConfig.search_space,
                                            "subnet_dim": Choice((8, 16, 32))}

    subnet_dim: int = 16
    sequence_modalities: tuple[str, ...] = ("text",)


@dataclass
class TFNConfig(SubNetsConfig):
    """Options of TFN (and those of :class:`SubNetsConfig`); the fused tensor has
    ``(subnet_dim + 1) ** n_modalities`` entries.

    Attributes:
        post_fusion_dim: width of the post-fusion layers.
    """

    search_space: ClassVar[SpaceSection] = {**SubNetsConfig.search_space,
                                            "post_fusion_dim": Choice((16, 32, 64))}

    post_fusion_dim: int = 32


# ----------------------------------------------------------------------------- building blocks


class ModalitySubNets(nn.Module):
    """TFN's modality embedding sub-networks: a batch → one ``out_dim`` vector per modality.

    Sequence modalities: encoder → dropout → linear (TFN's ``TextSubNet``). The others: masked
    mean over time → :class:`~baselines.models.blocks.SubNet`. A sample missing a modality gets
    a zero vector for it.

    Args:
        config: the model's config: ``input_dims``, ``subnet_dim`` (the size of each vector),
            ``sequence_modalities``, the encoder options and ``dropout``.
    """

    def __init__(self, config: SubNetsConfig) -> None:
        super().__init__()
        self.input_dims = {m: config.input_dims[m] for m in model_modalities(config)}
        self.sequence_modalities = set(config.sequence_modalities)
        nets: dict[str, nn.Module] = {}
        for m, dim in self.input_dims.items():
            if m in self.sequence_modalities:
                nets[m] = sequence_encoder(config, m)
                nets[f"{m}_out"] = nn.Sequential(nn.Dropout(config.dropout),
                                                 nn.Linear(config.hidden, config.subnet_dim))
            else:
                nets[m] = SubNet(dim, config.subnet_dim, config.dropout)
        self.nets = nn.ModuleDict(nets)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """modality -> [B, out_dim]."""
        out = {}
        for m, dim in self.input_dims.items():
            x, mask = modality_input(batch, m, dim)
            out[m] = encode_once(lambda x, mask, m=m: self._encode(m, x, mask), x, mask,
                                 key=self.nets[m])
        return out

    def _encode(self, m: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if m in self.sequence_modalities:
            h = self.nets[f"{m}_out"](self.nets[m](x, mask))
        else:
            h = self.nets[m](masked_mean(x, mask))
        return h * mask.any(dim=-1, keepdim=True).to(h.dtype)


def tensor_fusion(vectors: list[torch.Tensor]) -> torch.Tensor:
    """Flattened outer product of ``[1; z_m]`` over the modality vectors ``z_m`` [B, d_m].

    Returns:
        [B, prod(d_m + 1)].
    """
    fused = None
    for z in vectors:
        z1 = torch.cat([z.new_ones(z.shape[0], 1), z], dim=1)
        fused = z1 if fused is None else (fused.unsqueeze(2) * z1.unsqueeze(1)).flatten(1)
    return fused


# ----------------------------------------------------------------------------- model


class TFN(EmotionModel):
    """Sub-networks → tensor fusion → post-fusion MLP."""

    config_class = TFNConfig

    def __init__(self, config: TFNConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        self.subnets = ModalitySubNets(config)
        fused_dim = (config.subnet_dim + 1) ** len(self.modalities)
        self.post_fusion = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(fused_dim, config.post_fusion_dim), nn.ReLU(),
            nn.Linear(config.post_fusion_dim, config.post_fusion_dim), nn.ReLU(),
            nn.Linear(config.post_fusion_dim, config.out_dim))

    def forward(self, batch: Batch) -> ModelOutput:
        embeddings = self.subnets(batch)
        fused = tensor_fusion([embeddings[m] for m in self.modalities])
        return ModelOutput(logits=self.post_fusion(fused), embeddings=embeddings)


# ----------------------------------------------------------------------------- registered models

register_model("tfn", TFN, description="Tensor Fusion Network.")
