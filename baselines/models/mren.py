"""MREN: multimodal relevance estimation network, re-created from the paper's abstract.

Source: Zhang et al., "Bridging the Emotional Semantic Gap via Multimodal Relevance Estimation",
2023, arXiv:2302.01555. Only the abstract is public; no reference code is available.

What is from the paper (its three ideas, as stated in the abstract):

1. An *attention mechanism* that gives each modality a semantic relevance weight.
2. A *relevant semantic estimation (RSE) loss* that weakly constrains each modality's semantics.
3. *Contrastive learning* on category-level, modality-relevant semantics across modalities, to
   bridge the semantic gap between modalities in feature space.

Everything concrete below is this project's choice:

* Encoders: one :class:`~baselines.models.blocks.SequenceEncoder` per modality (``encoder`` =
  ``"gru"`` by default) to a common size ``hidden``.
* Relevance attention: an additive-attention score (Bahdanau et al., 2015) on the modality's
  representation, its context and their product, ``s_m = v·tanh(W [h_m; c_m; h_m*c_m] + e_m)``,
  where ``c_m`` is the mean of the *other* present modalities and ``e_m`` a learned modality
  embedding, so the score can express agreement with the other modalities; weights are a
  softmax over the *present* modalities only (a missing modality gets weight 0; they sum to 1).
  ``relevance_attention=False`` replaces them by uniform weights (an ablation).
* Fusion: ``sum_m a_m h_m`` plus, if ``residual_mean``, the plain mean of the present
  modalities; a two-layer MLP classifier (regression head with one output for
  ``task="continuous"``). Each modality also has its own head (``modality_logits``).
* RSE loss: each modality's head is trained on the clip label, per sample weighted by the
  model's own *detached* relevance weight, ``sum_m a_m * CE(head_m(h_m), y)`` averaged over the
  batch (L1 for the continuous task). A modality the model finds irrelevant is thus not forced
  towards the clip label (the "weak" constraint).
* Human relevance term (part of the RSE idea, used only when a batch carries
  ``relevance_<m>`` annotations): the human relevance of the present, annotated modalities is
  normalised to a distribution ``q`` and the attention weights, renormalised over the same
  modalities, are pulled towards it with ``KL(q || a)``. Samples with fewer than two such
  modalities, or with all human relevance 0, are skipped. NaN means unknown.
* Contrastive loss: a supervised InfoNCE (SupCon, Khosla et al., 2020) over L2-normalised
  projections of every present (sample, modality) representation. Positives of an anchor are
  keys of the same category from a *different* modality, negatives are keys of other
  categories; same-category keys of the anchor's own modality are left out of the denominator.
  Keys are the batch's embeddings plus, if ``prototypes``, per-(modality, class) centroids kept
  as an exponential moving average of relevance-weighted embeddings (the "category-level"
  semantics; they are buffers, saved in checkpoints). Anchors are weighted by their detached
  relevance weight, so irrelevant modalities are pulled less. For the continuous task the
  categories are bins of the score at ``category_bounds`` (default ``[0.0]``: negative vs.
  non-negative, as in MMSA's binary accuracy).
* Loss weights ``rse_weight``, ``human_relevance_weight``, ``contrastive_weight`` and switches
  ``rse``, ``human_relevance``, ``contrastive`` (ablations); defaults are not tuned.

Registered: ``mren``, and the ablations ``mren-no-rse``, ``mren-no-contrastive``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from baselines.models.base import Batch, EmotionModel, ModelOutput, prediction_loss, register_model
from baselines.models.blocks import (
    EncoderConfig,
    encode_modalities,
    masked_softmax,
    mlp,
    modality_encoders,
    model_modalities,
    present_mask,
)

# ----------------------------------------------------------------------------- configuration


@dataclass
class MRENConfig(EncoderConfig):
    """MREN options (see the module docstring for what each part does), and the encoder options
    of :class:`~baselines.models.blocks.EncoderConfig`.

    Attributes:
        relevance_attention: learn relevance weights (False: uniform over present modalities).
        residual_mean: add the plain mean of the present modalities to the weighted sum.
        proj_dim: size of the contrastive projection.
        rse: use the relevant semantic estimation loss.
        rse_weight: its weight.
        human_relevance: align relevance weights with human relevance when the batch has it.
        human_relevance_weight: its weight.
        contrastive: use the category-level cross-modal contrastive loss.
        contrastive_weight: its weight.
        temperature: InfoNCE temperature.
        prototypes: add EMA class prototypes per modality as contrastive keys.
        prototype_momentum: EMA momentum of the prototypes.
        category_bounds: score bin edges that define categories for the continuous task.
    """

    relevance_attention: bool = True
    residual_mean: bool = True
    proj_dim: int = 32
    rse: bool = True
    rse_weight: float = 0.5
    human_relevance: bool = True
    human_relevance_weight: float = 0.5
    contrastive: bool = True
    contrastive_weight: float = 0.1
    temperature: float = 0.1
    prototypes: bool = True
    prototype_momentum: float = 0.9
    category_bounds: list[float] = field(default_factory=lambda: [0.0])


# ----------------------------------------------------------------------------- building blocks


class RelevanceAttention(nn.Module):
    """Agreement-aware attention giving one relevance weight per modality.

    The score of modality m compares its representation ``h_m`` with the context ``c_m``, the
    mean of the *other* present modalities: ``s_m = v·tanh(W [h_m; c_m; h_m * c_m] + e_m)``,
    with a learned modality embedding ``e_m``. The product term lets the score express
    (dis)agreement with the other modalities, which a purely additive score cannot.

    Args:
        hidden: size of the modality representations.
        num_modalities: number of modalities M.
    """

    def __init__(self, hidden: int, num_modalities: int) -> None:
        super().__init__()
        self.project = nn.Linear(3 * hidden, hidden)
        self.modality = nn.Parameter(torch.zeros(num_modalities, hidden))
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, h: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """h [B, M, H], present [B, M] bool → weights [B, M] (float32, 0 where absent)."""
        share = present.to(h.dtype).unsqueeze(-1)
        total = (h * share).sum(1, keepdim=True)
        others = (share.sum(1, keepdim=True) - share).clamp(min=1.0)
        context = (total - h * share) / others  # leave-one-out mean of the present modalities
        features = torch.cat([h, context, h * context], dim=-1)
        energy = torch.tanh(self.project(features) + self.modality)
        return masked_softmax(self.score(energy).squeeze(-1), present)


# ----------------------------------------------------------------------------- model


class MREN(EmotionModel):
    """Multimodal relevance estimation network (see the module docstring)."""

    config_class = MRENConfig
    config: MRENConfig

    def __init__(self, config: MRENConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        hidden = config.hidden
        self.encoders = modality_encoders(config, self.modalities)
        self.attention = RelevanceAttention(hidden, len(self.modalities))
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = mlp(hidden, hidden, config.out_dim, config.dropout)
        self.modality_heads = nn.ModuleDict({
            m: mlp(hidden, hidden, config.out_dim, config.dropout) for m in self.modalities})
        self.projection = mlp(hidden, hidden, config.proj_dim)
        num_categories = (config.num_classes if config.task == "discrete"
                          else len(config.category_bounds) + 1)
        self.num_categories = num_categories
        self.register_buffer("prototype",
                             torch.zeros(len(self.modalities), num_categories, config.proj_dim))
        self.register_buffer("prototype_ready",
                             torch.zeros(len(self.modalities), num_categories, dtype=torch.bool))

    def forward(self, batch: Batch) -> ModelOutput:
        encoded = encode_modalities(self.encoders, batch, self.config.hidden)
        h = torch.stack([encoded[m] for m in self.modalities], dim=1)  # [B, M, H]
        present = torch.stack([present_mask(batch, m) for m in self.modalities], dim=1)
        if self.config.relevance_attention:
            weights = self.attention(h, present)
        else:
            weights = masked_softmax(torch.zeros_like(present, dtype=torch.float32), present)
        fused = (h * weights.to(h.dtype).unsqueeze(-1)).sum(1)
        if self.config.residual_mean:
            share = present.to(h.dtype).unsqueeze(-1)
            fused = fused + (h * share).sum(1) / share.sum(1).clamp(min=1.0)
        logits = self.classifier(self.dropout(fused))
        return ModelOutput(
            logits=logits,
            relevance={m: weights[:, i] for i, m in enumerate(self.modalities)},
            modality_logits={m: self.modality_heads[m](self.dropout(encoded[m]))
                             for m in self.modalities},
            embeddings={m: F.normalize(self.projection(encoded[m]).float(), dim=-1)
                        for m in self.modalities},
            aux={"present": present, "fused": fused},
        )

    # -- losses -------------------------------------------------------------------------------

    def extra_losses(self, output: ModelOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """RSE, human-relevance and contrastive terms (weighted), as switched on in the config.

        Keys: ``"rse"`` and ``"contrastive"`` when switched on; ``"human_relevance"`` when
        switched on and the batch carries relevance annotations. Nothing without labels.
        """
        if batch.labels is None:
            return {}
        cfg = self.config
        losses: dict[str, torch.Tensor] = {}
        weights = torch.stack([output.relevance[m] for m in self.modalities], dim=1).float()
        present = output.aux["present"]
        if cfg.rse:
            losses["rse"] = cfg.rse_weight * self.rse_loss(output, batch, weights.detach())
        if cfg.human_relevance and batch.relevance:
            losses["human_relevance"] = cfg.human_relevance_weight * self.human_relevance_loss(
                weights, present, batch)
        if cfg.contrastive:
            categories = self.categories(batch.labels)
            losses["contrastive"] = cfg.contrastive_weight * self.contrastive_loss(
                output, categories, weights.detach(), present)
            if self.training:
                self.update_prototypes(output, categories, weights.detach(), present)
        return losses

    def rse_loss(self, output: ModelOutput, batch: Batch, weights: torch.Tensor) -> torch.Tensor:
        """``mean_b sum_m a_bm * loss(head_m, y_b)`` with detached weights ``a``."""
        per_modality = [prediction_loss(output.modality_logits[m], batch.labels, self.config.task,
                                         reduction="none") for m in self.modalities]
        return (torch.stack(per_modality, dim=1) * weights).sum(1).mean()

    def human_relevance_loss(self, weights: torch.Tensor, present: torch.Tensor,
                             batch: Batch) -> torch.Tensor:
        """``KL(q || a)`` between normalised human relevance and renormalised weights."""
        ref = weights.new_full(weights.shape, float("nan"))
        human = torch.stack([batch.relevance.get(m, ref[:, i]).to(weights)
                             for i, m in enumerate(self.modalities)], dim=1)
        known = present & torch.isfinite(human)
        human = torch.where(known, human.clamp(0.0, 1.0), torch.zeros_like(human))
        total = human.sum(1, keepdim=True)
        valid = (known.sum(1) >= 2) & (total.squeeze(1) > 0)
        if not valid.any():
            return weights.sum() * 0.0
        target = human / total.clamp(min=1e-8)
        model = weights * known
        model = model / model.sum(1, keepdim=True).clamp(min=1e-8)
        terms = torch.where(target > 0,
                            target * (torch.log(target.clamp(min=1e-8))
                                      - torch.log(model.clamp(min=1e-6))),
                            torch.zeros_like(target))
        return terms.sum(1)[valid].mean()

    def categories(self, labels: torch.Tensor) -> torch.Tensor:
        """Contrastive categories: the class (discrete) or the score's bin (continuous)."""
        if self.config.task == "discrete":
            return labels.long()
        bounds = torch.tensor(self.config.category_bounds, device=labels.device,
                              dtype=torch.float32)
        return torch.bucketize(labels.float(), bounds, right=True)

    def contrastive_loss(self, output: ModelOutput, categories: torch.Tensor,
                         weights: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Relevance-weighted supervised InfoNCE with cross-modal positives."""
        num_m = len(self.modalities)
        z = torch.stack([output.embeddings[m] for m in self.modalities], dim=1)  # [B, M, P]
        device = z.device
        modality_ids = torch.arange(num_m, device=device).expand(z.shape[0], num_m)
        flat_present = present.reshape(-1)
        anchors = z.reshape(-1, z.shape[-1])[flat_present]
        anchor_cat = categories.unsqueeze(1).expand(-1, num_m).reshape(-1)[flat_present]
        anchor_mod = modality_ids.reshape(-1)[flat_present]
        anchor_w = weights.reshape(-1)[flat_present]
        keys, key_cat, key_mod = anchors, anchor_cat, anchor_mod
        n = anchors.shape[0]
        if self.config.prototypes and bool(self.prototype_ready.any()):
            ready = self.prototype_ready
            mod_idx, cat_idx = ready.nonzero(as_tuple=True)
            keys = torch.cat([keys, self.prototype[ready].to(keys)])
            key_cat = torch.cat([key_cat, cat_idx])
            key_mod = torch.cat([key_mod, mod_idx])
        if n == 0:
            return z.sum() * 0.0
        sim = (anchors @ keys.T).float() / self.config.temperature  # [n, K]
        same_cat = anchor_cat.unsqueeze(1) == key_cat.unsqueeze(0)
        same_mod = anchor_mod.unsqueeze(1) == key_mod.unsqueeze(0)
        positive = same_cat & ~same_mod
        # Same category *and* same modality (the anchor itself included) is neither a positive
        # nor a negative: it is left out of the denominator.
        in_denominator = ~(same_cat & same_mod)
        # A large finite fill (not -inf) keeps rows with an empty denominator NaN-free.
        log_prob = sim - torch.logsumexp(sim.masked_fill(~in_denominator, -1e9), dim=1,
                                         keepdim=True)
        count = positive.sum(1)
        has_positive = count > 0
        if not has_positive.any():
            return z.sum() * 0.0
        mean_log_prob = torch.where(positive, log_prob, 0.0).sum(1) / count.clamp(min=1)
        w = anchor_w * has_positive
        return -(mean_log_prob * w).sum() / w.sum().clamp(min=1e-8)

    @torch.no_grad()
    def update_prototypes(self, output: ModelOutput, categories: torch.Tensor,
                          weights: torch.Tensor, present: torch.Tensor) -> None:
        """EMA of relevance-weighted, normalised embeddings per (modality, category)."""
        if not self.config.prototypes:
            return
        momentum = self.config.prototype_momentum
        one_hot = F.one_hot(categories.clamp(0, self.num_categories - 1),
                            self.num_categories).float()  # [B, K]
        for i, m in enumerate(self.modalities):
            w = (weights[:, i] * present[:, i]).unsqueeze(1) * one_hot  # [B, K]
            mass = w.sum(0)  # [K]
            centroid = w.T @ output.embeddings[m].float()  # [K, P]
            seen = mass > 0
            if not seen.any():
                continue
            centroid = F.normalize(centroid / mass.clamp(min=1e-8).unsqueeze(1), dim=-1)
            old = self.prototype[i]
            ready = self.prototype_ready[i]
            blended = torch.where(ready.unsqueeze(1), momentum * old + (1 - momentum) * centroid,
                                  centroid)
            self.prototype[i] = torch.where(seen.unsqueeze(1), F.normalize(blended, dim=-1),
                                            old)
            self.prototype_ready[i] = ready | seen


# ----------------------------------------------------------------------------- registered models

register_model("mren", MREN, description="MREN with all three parts (relevance attention, RSE "
               "loss, contrastive loss).")
register_model("mren-no-rse", MREN, defaults={"rse": False, "human_relevance": False},
               description="Ablation: MREN without the relevant semantic estimation loss (and "
               "human term).")
register_model("mren-no-contrastive", MREN, defaults={"contrastive": False},
               description="Ablation: MREN without the cross-modal contrastive loss.")
