"""MISA: Modality-Invariant and -Specific Representations.

Hazarika, Zimmermann and Poria, "MISA: Modality-Invariant and -Specific Representations for
Multimodal Sentiment Analysis", ACM Multimedia 2020 (https://arxiv.org/abs/2005.03545).
Reference code: https://github.com/declare-lab/MISA (``src/models.py``, ``src/solver.py``), also
``models/singleTask/MISA.py`` and ``trains/singleTask/MISA.py`` in MMSA
(https://github.com/thuiar/MMSA).

As in the paper and its code:

* each modality's utterance vector (a sequence encoder) is projected to a common width by
  Linear → ReLU → LayerNorm: ``u_m``;
* a *shared* (modality-invariant) encoder, one Linear → Sigmoid applied to every modality,
  gives ``h^c_m``; a *private* (modality-specific) encoder per modality, Linear → Sigmoid,
  gives ``h^p_m``;
* fusion: the ``2 x M`` vectors (privates, then shared) are a sequence of tokens for a one-layer
  Transformer encoder with two heads; its outputs are concatenated and a two-layer network
  (``6H → 3H → out`` for three modalities, dropout, ReLU) predicts;
* the losses, returned by :meth:`MISA.extra_losses` (weights from MMSA's MOSI config):
  similarity = central moment discrepancy (CMD, Zellinger et al., 2017; 5 moments) between
  every pair of shared vectors, averaged over the pairs; difference = soft orthogonality
  ``||H_1^T H_2||_F^2`` (mean-centred, row-normalised, as in the code: the mean of the squared
  entries; the code detaches the row norms, here the gradient flows through them, see
  :func:`difference_loss`) between each modality's private and shared vectors and between
  every pair of private vectors, summed; reconstruction = MSE between a linear decoder of
  ``h^p_m + h^c_m`` and ``u_m``, averaged over the modalities.

SDME's adaptations: the utterance encoders are :class:`blocks.SequenceEncoder` (one GRU by
default; the paper uses two stacked bidirectional LSTMs with LayerNorm in between, and BERT for
text), the fusion Transformer's feed-forward width is ``4 * hidden`` (PyTorch's default 2048 in
the code), the paper's alternative adversarial similarity loss is left out (MMSA runs MISA
with CMD, ``use_cmd_sim: true``), and missing modalities are handled: their private and
shared vectors are zeros, they are masked out of the fusion Transformer's attention, and every
loss term only uses the samples that have the modalities it compares.

Registered: ``misa``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import ClassVar

import torch
from torch import nn

from baselines.models.base import Batch, EmotionModel, ModelOutput, register_model
from baselines.models.blocks import (
    EncoderConfig,
    attendable,
    encode_modalities,
    modality_encoders,
    model_modalities,
    present_mask,
)
from baselines.search import FloatRange, SpaceSection

# ----------------------------------------------------------------------------- configuration


@dataclass
class MISAConfig(EncoderConfig):
    """Options of MISA (``hidden`` is the width of every shared/private vector), and the
    utterance encoders' options of :class:`~baselines.models.blocks.EncoderConfig`.

    Attributes:
        fusion_heads: attention heads of the fusion Transformer (must divide ``hidden``).
        sim_weight: weight of the CMD similarity loss.
        diff_weight: weight of the difference (orthogonality) loss.
        recon_weight: weight of the reconstruction loss. The three defaults are MMSA's
            CMU-MOSI setting (its MOSEI setting: 0.8, 0.3, 1.0).
        cmd_moments: number of moments CMD matches.
    """

    search_space: ClassVar[SpaceSection] = {
        **EncoderConfig.search_space, "sim_weight": FloatRange(0.1, 1.0, log=True),
        "diff_weight": FloatRange(0.03, 0.5, log=True),
        "recon_weight": FloatRange(0.1, 1.0, log=True)}

    fusion_heads: int = 2
    sim_weight: float = 0.3
    diff_weight: float = 0.1
    recon_weight: float = 1.0
    cmd_moments: int = 5


# ----------------------------------------------------------------------------- losses


def _l2(x: torch.Tensor) -> torch.Tensor:
    # The epsilon keeps the gradient finite when the two sides match exactly.
    return (x.pow(2).sum() + 1e-12).sqrt()


def cmd(x1: torch.Tensor, x2: torch.Tensor, moments: int = 5) -> torch.Tensor:
    """Central moment discrepancy between two samples [N1, H] and [N2, H].

    ``||E(x1) - E(x2)|| + sum_{k=2..moments} ||c_k(x1) - c_k(x2)||`` with ``c_k`` the k-th
    central moments per dimension (Zellinger et al., ICLR 2017), as in MISA's code (no bound
    normalisation; the sigmoid outputs lie in [0, 1]).
    """
    m1, m2 = x1.mean(dim=0), x2.mean(dim=0)
    c1, c2 = x1 - m1, x2 - m2
    total = _l2(m1 - m2)
    for k in range(2, moments + 1):
        total = total + _l2(c1.pow(k).mean(dim=0) - c2.pow(k).mean(dim=0))
    return total


def difference_loss(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Soft orthogonality between two sets of row vectors [N, H] (MISA's ``DiffLoss``).

    Both are mean-centred over the rows and row-normalised; the loss is the mean of the
    squared entries of ``x1^T x2``. Unlike the reference code, the gradient flows through the
    norms: with detached norms the loss rewards shrinking the vectors, which in our runs
    collapsed the representations (and, under gradient clipping, starved the task loss).
    """
    x1 = x1 - x1.mean(dim=0, keepdim=True)
    x2 = x2 - x2.mean(dim=0, keepdim=True)
    x1 = x1 / (x1.norm(dim=1, keepdim=True) + 1e-6)
    x2 = x2 / (x2.norm(dim=1, keepdim=True) + 1e-6)
    return (x1.t() @ x2).pow(2).mean()


# ----------------------------------------------------------------------------- model


class MISA(EmotionModel):
    """Utterance encoders → shared/private projections → Transformer fusion → MLP."""

    config_class = MISAConfig

    def __init__(self, config: MISAConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        h = config.hidden
        self.encoders = modality_encoders(config, self.modalities)
        self.project = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.LayerNorm(h))
            for m in self.modalities})
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(h, h), nn.Sigmoid())
                                      for m in self.modalities})
        self.shared = nn.Sequential(nn.Linear(h, h), nn.Sigmoid())
        self.recon = nn.ModuleDict({m: nn.Linear(h, h) for m in self.modalities})
        layer = nn.TransformerEncoderLayer(h, config.fusion_heads, dim_feedforward=4 * h,
                                           dropout=config.dropout, batch_first=True)
        self.fusion_transformer = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        n_tokens = 2 * len(self.modalities)
        self.fusion = nn.Sequential(
            nn.Linear(n_tokens * h, n_tokens * h // 2), nn.Dropout(config.dropout), nn.ReLU(),
            nn.Linear(n_tokens * h // 2, config.out_dim))

    def forward(self, batch: Batch) -> ModelOutput:
        utterances = encode_modalities(self.encoders, batch, self.config.hidden)
        aux: dict[str, torch.Tensor] = {}
        privates, shareds, presents = [], [], []
        embeddings = {}
        for m in self.modalities:
            present = present_mask(batch, m)
            keep = present.unsqueeze(-1).to(utterances[m].dtype)
            orig = self.project[m](utterances[m]) * keep
            private = self.private[m](orig) * keep
            shared = self.shared(orig) * keep
            aux[f"orig_{m}"], aux[f"private_{m}"], aux[f"shared_{m}"] = orig, private, shared
            aux[f"recon_{m}"] = self.recon[m](private + shared)
            aux[f"present_{m}"] = present
            embeddings[m] = private + shared
            privates.append(private)
            shareds.append(shared)
            presents.append(present)
        tokens = torch.stack(privates + shareds, dim=1)  # [B, 2M, H]
        token_mask = torch.stack(presents + presents, dim=1)  # [B, 2M]
        fused = self.fusion_transformer(tokens, src_key_padding_mask=~attendable(token_mask))
        fused = fused * token_mask.unsqueeze(-1).to(fused.dtype)
        logits = self.fusion(fused.flatten(1))
        return ModelOutput(logits=logits, embeddings=embeddings, aux=aux)

    def extra_losses(self, output: ModelOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """The weighted similarity (CMD), difference and reconstruction losses."""
        aux = {k: v.float() if v.is_floating_point() else v for k, v in output.aux.items()}
        c = self.config
        sims, diffs, recons = [], [], []
        for m in self.modalities:
            rows = aux[f"present_{m}"]
            if rows.any():
                diffs.append(difference_loss(aux[f"private_{m}"][rows], aux[f"shared_{m}"][rows]))
                recons.append(nn.functional.mse_loss(aux[f"recon_{m}"][rows],
                                                     aux[f"orig_{m}"][rows]))
        for a, b in combinations(self.modalities, 2):
            rows = aux[f"present_{a}"] & aux[f"present_{b}"]
            if rows.any():
                sims.append(cmd(aux[f"shared_{a}"][rows], aux[f"shared_{b}"][rows],
                                c.cmd_moments))
                diffs.append(difference_loss(aux[f"private_{a}"][rows],
                                             aux[f"private_{b}"][rows]))
        losses = {}
        if sims and c.sim_weight:
            losses["similarity"] = c.sim_weight * torch.stack(sims).mean()
        if diffs and c.diff_weight:
            losses["difference"] = c.diff_weight * torch.stack(diffs).sum()
        if recons and c.recon_weight:
            losses["reconstruction"] = c.recon_weight * torch.stack(recons).mean()
        return losses


# ----------------------------------------------------------------------------- registered models

register_model("misa", MISA, description="MISA with CMD similarity, orthogonality difference and "
               "reconstruction losses.")
