"""Self-MM: self-supervised multi-task learning of modality-specific representations.

Yu, Xu, Yuan and Wu, "Learning Modality-Specific Representations with Self-Supervised
Multi-Task Learning for Multimodal Sentiment Analysis", AAAI 2021
(https://arxiv.org/abs/2102.04830). Reference code: https://github.com/thuiar/Self-MM
(``models/SELF_MM.py``, ``trains/SELF_MM.py``), also ``models/multiTask/SELF_MM.py`` and
``trains/multiTask/SELF_MM.py`` in MMSA (https://github.com/thuiar/MMSA).

As in the paper and its code:

* one sub-network per modality (the paper: BERT for text, an LSTM plus a linear layer for audio
  and vision) and a late-fusion network: concatenation → dropout → Linear → ReLU (the fusion
  representation ``F_m``) → Linear → ReLU → Linear (the multimodal prediction);
* one unimodal head per modality with the same shape (dropout → Linear → ReLU gives the
  modality representation ``F_s``; two more layers give the unimodal prediction);
* the unimodal label generation module (ULGM): class centres of the representations (positive
  and negative samples) for the fusion and for each modality; for a sample, the relative
  distance ``delta = (d_neg - d_pos) / d_pos`` in each space; the generated unimodal label
  ``y_s = 0.5 * (delta_s / delta_m) * y_m + 0.5 * (y_m + delta_s - delta_m)``, clipped to
  ``[-H, H]``; labels are generated from the second epoch on (the first epoch uses ``y_s = y_m``);
* the unimodal losses, weighted per sample by ``tanh(|y_s - y_m|)``: L1 between the unimodal
  prediction and the generated label, added to the multimodal L1 task loss (the trainer's).

Where SDME departs (documented in ``cards/model_baselines.md``):

* **No per-sample state.** The reference code keeps every training sample's representation
  and generated label in tables indexed by sample, recomputes the centres as means over the
  whole table after each batch and smooths each sample's label over epochs
  (``(n-1)/(n+1)`` old + ``2/(n+1)`` new). A model here must not depend on the data set's
  indexing, so the centres are *momentum buffers* updated from each training batch's
  (detached) representations (``centre <- m * centre + (1 - m) * batch_mean``), labels are
  generated for the batch at hand from the current centres, and the epoch-wise label smoothing
  is dropped. The modality centres group samples by the sign of their generated label (as the
  reference does with its stored labels), or of ``y_m`` before generation starts.
* **Discrete tasks.** Self-MM is defined for regression. For classification the ULGM keeps one
  centre per class in each space; a space's class posterior is
  ``softmax(-d_c / (mean_c d_c * temperature))`` over the classes seen so far (distances
  normalised by their mean, like ``delta``'s normalisation by ``d_pos``); the generated soft
  label is ``one_hot(y) + p_s - p_m`` (clipped at 0, renormalised): the additive half of the
  regression rule, with the class posteriors in place of ``delta``. The multiplicative half
  has no counterpart and is dropped. The per-sample weight is ``tanh`` of the total-variation
  distance between the generated label and ``one_hot(y)``, and the unimodal loss is the
  weighted soft-label cross-entropy. Centres group samples by the argmax of their generated
  label (``y`` for the fusion space).
* Sub-networks are :class:`blocks.SequenceEncoder` followed by a linear layer for every
  modality (no BERT); a modality a sample lacks gives a zero sub-network output, is left out of
  its unimodal loss and of the centre updates.

Registered: ``self_mm``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from baselines.models.base import Batch, EmotionModel, ModelOutput, register_model
from baselines.models.blocks import (
    EncoderConfig,
    encode_modalities,
    modality_encoders,
    model_modalities,
    present_mask,
)
from baselines.search import Choice, FloatRange, SpaceSection

FUSION = "fusion"
_EPS = 1e-8

# ----------------------------------------------------------------------------- configuration


@dataclass
class SelfMMConfig(EncoderConfig):
    """Options of Self-MM (``hidden`` is the encoders' width and each sub-network's output), and
    the encoder options of :class:`~baselines.models.blocks.EncoderConfig`.

    Attributes:
        post_fusion_dim: width of the fusion network (the fusion representation).
        post_modality_dim: width of each unimodal head (the modality representations).
        unimodal_loss_weight: weight of the unimodal losses (1 in the paper).
        center_momentum: momentum of the class-centre buffers.
        label_bound: ``H``, the bound of generated continuous labels (3 for MOSI/MOSEI's
            [-3, 3] scores, 1 for CH-SIMS).
        label_temperature: temperature of the class posteriors (discrete tasks).
        warmup_epochs: epochs during which the generated labels equal the clip label
            (1 in the paper: generation starts with the second epoch).
    """

    search_space: ClassVar[SpaceSection] = {**EncoderConfig.search_space,
                                            "unimodal_loss_weight": FloatRange(0.2, 2.0),
                                            "post_fusion_dim": Choice((32, 64, 128))}

    post_fusion_dim: int = 64
    post_modality_dim: int = 32
    unimodal_loss_weight: float = 1.0
    center_momentum: float = 0.9
    label_bound: float = 3.0
    label_temperature: float = 1.0
    warmup_epochs: int = 1


# ----------------------------------------------------------------------------- building blocks


def _head(in_dim: int, dim: int, out_dim: int, dropout: float) -> nn.ModuleDict:
    """Self-MM's post layers: dropout → Linear → ReLU (the representation), → Linear → ReLU →
    Linear (the prediction)."""
    return nn.ModuleDict({
        "represent": nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, dim), nn.ReLU()),
        "predict": nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out_dim)),
    })


class ClassCenters(nn.Module):
    """Momentum class centres of one representation space (the ULGM's memory).

    ``num_centers`` is 2 for continuous tasks (index 0 negative, 1 positive) and the number of
    classes for discrete ones.

    Args:
        num_centers: number of centres.
        dim: representation size.
        momentum: weight of the old centre in each update.
    """

    def __init__(self, num_centers: int, dim: int, momentum: float) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("centers", torch.zeros(num_centers, dim))
        self.register_buffer("seen", torch.zeros(num_centers, dtype=torch.bool))

    @torch.no_grad()
    def update(self, features: torch.Tensor, assignment: torch.Tensor) -> None:
        """Moves each centre towards the mean of the rows assigned to it."""
        for c in range(self.centers.shape[0]):
            rows = assignment == c
            if not rows.any():
                continue
            mean = features[rows].float().mean(dim=0)
            if self.seen[c]:
                self.centers[c].mul_(self.momentum).add_((1 - self.momentum) * mean)
            else:
                self.centers[c].copy_(mean)
                self.seen[c] = True

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """Euclidean distances [B, num_centers] (inf to centres not yet seen)."""
        d = torch.cdist(features.float(), self.centers)
        return d.masked_fill(~self.seen, float("inf"))


# ----------------------------------------------------------------------------- model


class SelfMM(EmotionModel):
    """Sub-networks → late fusion + unimodal heads, trained with ULGM-generated labels."""

    config_class = SelfMMConfig

    def __init__(self, config: SelfMMConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        h = config.hidden
        self.encoders = modality_encoders(config, self.modalities)
        self.encoder_out = nn.ModuleDict({
            m: nn.Sequential(nn.Dropout(config.dropout), nn.Linear(h, h))
            for m in self.modalities})
        self.fusion = _head(h * len(self.modalities), config.post_fusion_dim, config.out_dim,
                            config.dropout)
        self.heads = nn.ModuleDict({
            m: _head(h, config.post_modality_dim, config.out_dim, config.dropout)
            for m in self.modalities})
        n_centers = config.num_classes if config.task == "discrete" else 2
        self.centers = nn.ModuleDict({
            FUSION: ClassCenters(n_centers, config.post_fusion_dim, config.center_momentum),
            **{m: ClassCenters(n_centers, config.post_modality_dim, config.center_momentum)
               for m in self.modalities}})
        self.register_buffer("epochs_started", torch.zeros((), dtype=torch.long))

    def on_epoch_start(self, epoch: int) -> None:
        """Counts epochs: label generation starts after ``warmup_epochs``."""
        self.epochs_started += 1

    def forward(self, batch: Batch) -> ModelOutput:
        encoded = encode_modalities(self.encoders, batch, self.config.hidden)
        features = {}
        for m in self.modalities:
            keep = present_mask(batch, m).unsqueeze(-1)
            features[m] = self.encoder_out[m](encoded[m]) * keep.to(encoded[m].dtype)
        fusion_repr = self.fusion["represent"](
            torch.cat([features[m] for m in self.modalities], dim=-1))
        embeddings = {m: self.heads[m]["represent"](features[m]) for m in self.modalities}
        modality_logits = {m: self.heads[m]["predict"](embeddings[m]) for m in self.modalities}
        return ModelOutput(logits=self.fusion["predict"](fusion_repr),
                           modality_logits=modality_logits, embeddings=embeddings,
                           aux={"fusion_repr": fusion_repr})

    # -- ULGM ---------------------------------------------------------------------------------

    def _generating(self) -> bool:
        return int(self.epochs_started) > self.config.warmup_epochs

    def _continuous_labels(self, fusion_repr: torch.Tensor, repr_s: torch.Tensor,
                           y_m: torch.Tensor, modality: str) -> torch.Tensor:
        """Self-MM's generated unimodal labels (regression)."""
        def delta(space: str, f: torch.Tensor) -> torch.Tensor:
            d = self.centers[space].distances(f)
            d_neg, d_pos = d[:, 0], d[:, 1]
            return (d_neg - d_pos) / (d_pos + _EPS)

        delta_m = delta(FUSION, fusion_repr)
        delta_s = delta(modality, repr_s)
        # The reference divides by (delta_m + eps); keep the sign so that it is never 0.
        alpha = delta_s / torch.where(delta_m >= 0, delta_m + _EPS, delta_m - _EPS)
        labels = 0.5 * alpha * y_m + 0.5 * (y_m + delta_s - delta_m)
        return labels.clamp(-self.config.label_bound, self.config.label_bound)

    def _posterior(self, space: str, f: torch.Tensor) -> torch.Tensor:
        d = self.centers[space].distances(f)
        seen = self.centers[space].seen
        scale = d[:, seen].mean(dim=1, keepdim=True) * self.config.label_temperature + _EPS
        return torch.softmax(-d / scale, dim=1)  # inf distance → probability 0

    def _discrete_labels(self, fusion_repr: torch.Tensor, repr_s: torch.Tensor,
                         one_hot: torch.Tensor, modality: str) -> torch.Tensor:
        """Generated soft unimodal labels (this project's classification adaptation)."""
        target = one_hot + self._posterior(modality, repr_s) - self._posterior(FUSION, fusion_repr)
        target = target.clamp(min=0)
        return target / target.sum(dim=1, keepdim=True).clamp(min=_EPS)

    def _ready(self, modality: str) -> bool:
        need = 2  # both signs (continuous) or at least two classes (discrete)
        return (int(self.centers[FUSION].seen.sum()) >= need
                and int(self.centers[modality].seen.sum()) >= need)

    def extra_losses(self, output: ModelOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """The weighted unimodal losses on ULGM-generated labels; updates the centres when
        training."""
        if batch.labels is None or self.config.unimodal_loss_weight == 0:
            return {}
        discrete = self.config.task == "discrete"
        fusion_repr = output.aux["fusion_repr"].detach().float()
        y = batch.labels if discrete else batch.labels.float()
        one_hot = F.one_hot(y, self.config.num_classes).float() if discrete else None
        generating = self._generating()
        losses, assignments = [], {}
        for m in self.modalities:
            rows = present_mask(batch, m)
            repr_s = output.embeddings[m].detach().float()
            pred = output.modality_logits[m].float()
            use = generating and self._ready(m)
            with torch.no_grad():
                if discrete:
                    target = (self._discrete_labels(fusion_repr, repr_s, one_hot, m) if use
                              else one_hot)
                    weight = torch.tanh(0.5 * (target - one_hot).abs().sum(dim=1))
                    assignments[m] = target.argmax(dim=1)
                else:
                    target = self._continuous_labels(fusion_repr, repr_s, y, m) if use else y
                    weight = torch.tanh((target - y).abs())
                    assignments[m] = (target >= 0).long()
            if not rows.any():
                continue
            if discrete:
                per_sample = -(target * F.log_softmax(pred, dim=1)).sum(dim=1)
            else:
                per_sample = (pred.squeeze(-1) - target).abs()
            losses.append((weight * per_sample)[rows].mean())
        if self.training:
            self.centers[FUSION].update(fusion_repr, y if discrete else (y >= 0).long())
            for m in self.modalities:
                rows = present_mask(batch, m)
                self.centers[m].update(output.embeddings[m].detach()[rows], assignments[m][rows])
        if not losses:
            return {}
        return {"unimodal": self.config.unimodal_loss_weight * torch.stack(losses).sum()}


# ----------------------------------------------------------------------------- registered models

register_model("self_mm", SelfMM, description="Self-MM with batch-level momentum class centres.")
