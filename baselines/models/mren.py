"""MREN: multimodal relevance estimation network, re-created from the paper's abstract.

Source: Zhang et al., "Bridging the Emotional Semantic Gap via Multimodal Relevance Estimation",
2023, arXiv:2302.01555. Only the abstract is public; no reference code is available.

What is from the paper (its three ideas, as stated in the abstract):

1. An *attention mechanism* that gives each modality a semantic relevance weight.
2. A *relevant semantic estimation (RSE) loss* that weakly constrains each modality's semantics.
3. *Contrastive learning* on category-level, modality-relevant semantics across modalities, to
   bridge the semantic gap between modalities in feature space.

Everything concrete below is this project's choice (``cards/model_mren.md`` gives the reasons):

* **Per-modality semantics.** One :class:`~baselines.models.blocks.SequenceEncoder` per
  modality (GRU by default) and a head per modality whose logits ``z_m`` estimate the class
  that modality *alone* expresses, ``e_m`` (what SDME annotates as ``label_<m>``).
* **Relevance estimation and fusion (discrete tasks).** The clip emotion ``y`` and the
  expressed classes are tied by a per-modality channel: modality m expresses ``y`` with
  probability ``rho_m[y]`` (its *relevance gate*, in [0, 1]), else a class drawn from a learned
  deviation table ``D_m[y, :]`` (display rules, mask emotions; it starts uniform). A gate is a
  learned per-(modality, class) bias plus one content logit per modality from a relevance
  estimator that attends across the present modalities (one multi-head attention layer over
  modality tokens built from each encoding and its semantic estimate), so it can depend on the
  modality's own content (e.g. a weak, inexpressive signal) and on what the others show.
  Treating ``softmax(z_m)`` as the modality's posterior, the clip's class
  posterior follows from Bayes' rule with the modalities conditionally independent given
  ``y``::

      logit(y) = b(y) + sum_m log( rho_m[y] L_m(y) + (1 - rho_m[y]) sum_e D_m[y, e] L_m(e) )

  where ``L_m(e) = softmax(z_m)(e) / exp(c_m(e))`` is the modality's likelihood up to a constant
  (``c_m`` a learned log-prior correction) and ``b`` a learned class prior. A gate of 0 leaves
  only what the deviation table knows (nothing while it is uniform: the modality's factor is
  then constant, it is switched off). The reported relevance is the posterior
  probability that the modality expresses the clip's emotion,
  ``r_m = sum_y p(y | x) P(e_m = y | x_m, y)``, a value in [0, 1] per modality (not a share of
  1). ``relevance=False`` (ablation ``mren-no-relevance``) fuses by the unweighted mean of the
  per-modality log-posteriors (a vote) and reports no relevance.
* **RSE loss.** Each modality head is trained with cross-entropy towards the class that
  modality expresses: the human ``label_<m>`` where the batch has it (and ``human`` is on);
  otherwise (unannotated corpora, the ablation ``mren-no-human``) the weak form: the model's own
  posterior of ``e_m`` given the clip label, ``P(e_m | x_m, y) ∝ T_m[y, e] L_m(e)``, detached
  (an EM-style soft target), so a modality the model believes deviates is not pushed to the
  clip label. Without relevance estimation the weak target is the clip label.
* **Human relevance term.** Where the batch has ``relevance_<m>``, the conditional relevance
  ``P(e_m = y | x_m, y)`` at the true label is fitted to it with binary cross-entropy.
* **Contrastive loss.** Supervised InfoNCE (SupCon, Khosla et al., 2020) over L2-normalised
  projections of every present (sample, modality) representation, with *cross-modal*
  positives: keys of the same category from another modality. The category of a
  (sample, modality) is the class that modality expresses (human ``label_<m>``) when known;
  otherwise the clip label, with the anchor weighted by the detached relevance ``r_m`` (weak
  form). Keys also include per-(modality, category) prototypes, EMAs of the embeddings (the
  "category-level" semantics; buffers saved in checkpoints).
* **Continuous tasks** (regression, e.g. MMSA corpora): per-modality score heads, gates
  ``rho_m`` in [0, 1] from the same estimator (one per modality), prediction
  ``sum_m rho_m s_m / sum_m rho_m`` (the plain mean where every gate is 0); RSE is the L1 loss
  of each score head to the clip score weighted by the human relevance where known, else by the
  detached gate; categories for the contrastive loss are score bins at ``category_bounds``.

Registered variants: ``mren``, and one ablation per idea: ``mren-no-relevance``,
``mren-no-rse``, ``mren-no-contrastive``, ``mren-no-human`` (ignores ``label_<m>`` and
``relevance_<m>``; what the model does on corpora without unimodal annotations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from baselines.models.base import Batch, EmotionModel, ModelOutput, register_model
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
class MRENConfig(EncoderConfig):
    """MREN options (see the module docstring for what each part does), and the encoder options
    of :class:`~baselines.models.blocks.EncoderConfig` (``num_heads`` is also the relevance
    estimator's).

    Attributes:
        relevance: estimate per-modality relevance and fuse through it (False: unweighted
            vote of the per-modality posteriors, no relevance output).
        relevance_context: let the relevance estimator attend across modalities (False: each
            gate sees its own modality only).
        gate_init: initial relevance gate (the prior belief that a modality is relevant).
        table_lr_scale: learning-rate multiplier of the fusion's small probability tables
            (class prior, log-prior corrections, deviation tables, gate biases), which are
            statistics of the data rather than features and would barely move from their
            initial values at the network's learning rate in a short training run.
        human: use the human annotations a batch carries (``label_<m>``, ``relevance_<m>``);
            False: the weak forms only.
        rse: use the relevant semantic estimation loss.
        rse_weight: its weight.
        channel_weight: weight of the channel loss (the relevance gates and deviation tables
            fitted to the class each modality shows; discrete tasks).
        human_relevance_weight: weight of the human relevance term.
        contrastive: use the category-level cross-modal contrastive loss.
        contrastive_weight: its weight.
        proj_dim: size of the contrastive projection.
        temperature: InfoNCE temperature.
        prototypes: add EMA class prototypes per modality as contrastive keys.
        prototype_momentum: EMA momentum of the prototypes.
        category_bounds: score bin edges that define categories for the continuous task.
    """

    search_space: ClassVar[SpaceSection] = {
        **EncoderConfig.search_space,
        "rse_weight": FloatRange(0.25, 2.0, log=True),
        "channel_weight": FloatRange(0.25, 2.0, log=True),
        "contrastive_weight": FloatRange(0.01, 0.5, log=True),
        "gate_init": FloatRange(0.5, 0.95),
    }

    relevance: bool = True
    relevance_context: bool = True
    gate_init: float = 0.8
    table_lr_scale: float = 20.0
    human: bool = True
    rse: bool = True
    rse_weight: float = 1.0
    channel_weight: float = 1.0
    human_relevance_weight: float = 0.5
    contrastive: bool = True
    contrastive_weight: float = 0.1
    proj_dim: int = 32
    temperature: float = 0.1
    prototypes: bool = True
    prototype_momentum: float = 0.9
    category_bounds: list[float] = field(default_factory=lambda: [0.0])


# ----------------------------------------------------------------------------- building blocks


class RelevanceEstimator(nn.Module):
    """Relevance gates from attention across the present modalities.

    Each modality is a token: its normalised encoding, a projection of its semantic estimate
    (``softmax(z_m)``) and a learned modality embedding. With ``context``, one multi-head
    attention layer (keys: the present modalities) lets each token read the others; an MLP then
    gives *one* content logit per modality — how reliable the modality is in this clip — which
    is added to a learned per-(modality, class) bias table (how often the modality shows each
    class when the clip has it: display rules are class-specific). The content part is one
    number on purpose: a per-class content output would be a second classifier of the clip's
    class hidden in the gates, and it overfits.

    Args:
        hidden: size of the modality encodings.
        semantic_dim: size of the semantic estimate (classes, or 1).
        num_modalities: number of modalities M.
        out_dim: gate logits per modality (classes, or 1 for the continuous task).
        num_heads: attention heads (must divide ``hidden``).
        context: attend across modalities.
        dropout: dropout inside the estimator.
        gate_init: initial gate value (sets the bias).
    """

    def __init__(self, hidden: int, semantic_dim: int, num_modalities: int, out_dim: int,
                 num_heads: int, context: bool, dropout: float, gate_init: float) -> None:
        super().__init__()
        self.context = context
        self.norm = nn.LayerNorm(hidden)
        self.semantic = nn.Linear(semantic_dim, hidden)
        self.modality = nn.Parameter(torch.zeros(num_modalities, hidden))
        heads = num_heads if hidden % num_heads == 0 else 1
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.out = mlp(hidden, hidden, 1, dropout)
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        gate = min(max(gate_init, 1e-3), 1 - 1e-3)
        self.bias = nn.Parameter(torch.full((num_modalities, out_dim),
                                            math.log(gate / (1 - gate))))

    def forward(self, h: torch.Tensor, semantics: torch.Tensor,
                present: torch.Tensor) -> torch.Tensor:
        """h [B, M, H], semantics [B, M, S], present [B, M] → gate logits [B, M, out_dim]."""
        tokens = self.norm(h) + self.semantic(semantics) + self.modality
        if self.context:
            # A sample without any modality would attend to nothing (NaN): let it see all.
            keys_off = ~present & present.any(1, keepdim=True)
            attended, _ = self.attention(tokens, tokens, tokens, key_padding_mask=keys_off,
                                         need_weights=False)
            tokens = tokens + attended
        return self.out(tokens) + self.bias


# ----------------------------------------------------------------------------- model


class MREN(EmotionModel):
    """Multimodal relevance estimation network (see the module docstring)."""

    config_class = MRENConfig
    config: MRENConfig

    def __init__(self, config: MRENConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        num_m = len(self.modalities)
        hidden = config.hidden
        self.discrete = config.task == "discrete"
        out = config.out_dim
        self.encoders = modality_encoders(config, self.modalities)
        self.dropout = nn.Dropout(config.dropout)
        self.modality_heads = nn.ModuleDict({
            m: mlp(hidden, hidden, out, config.dropout) for m in self.modalities})
        self.estimator = RelevanceEstimator(hidden, out, num_m, out, config.num_heads,
                                            config.relevance_context, config.dropout,
                                            config.gate_init)
        if self.discrete:
            k = config.num_classes
            self.class_prior = nn.Parameter(torch.zeros(k))
            self.log_prior = nn.Parameter(torch.zeros(num_m, k))
            self.deviation_logits = nn.Parameter(torch.zeros(num_m, k, k))
            self.register_buffer("off_diagonal", ~torch.eye(k, dtype=torch.bool),
                                 persistent=False)
        self.projection = mlp(hidden, hidden, config.proj_dim)
        num_categories = (config.num_classes if self.discrete
                          else len(config.category_bounds) + 1)
        self.num_categories = num_categories
        self.register_buffer("prototype", torch.zeros(num_m, num_categories, config.proj_dim))
        self.register_buffer("prototype_ready",
                             torch.zeros(num_m, num_categories, dtype=torch.bool))

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """The network at ``lr``; the fusion's probability tables at ``lr * table_lr_scale``,
        without weight decay (they are log-probabilities, not weights to shrink)."""
        tables = [p for n, p in self.named_parameters()
                  if n in ("class_prior", "log_prior", "deviation_logits", "estimator.bias")]
        ids = {id(p) for p in tables}
        rest = [p for p in self.parameters() if id(p) not in ids and p.requires_grad]
        groups = [{"params": rest, "lr": lr, "weight_decay": weight_decay}]
        if tables:
            groups.append({"params": tables, "lr": lr * self.config.table_lr_scale,
                           "weight_decay": 0.0})
        return groups

    # -- forward ------------------------------------------------------------------------------

    def forward(self, batch: Batch) -> ModelOutput:
        encoded = encode_modalities(self.encoders, batch, self.config.hidden)
        h = torch.stack([encoded[m] for m in self.modalities], dim=1)  # [B, M, H]
        present = torch.stack([present_mask(batch, m) for m in self.modalities], dim=1)
        z = torch.stack([self.modality_heads[m](self.dropout(encoded[m]))
                         for m in self.modalities], dim=1).float()  # [B, M, C]
        aux: dict[str, torch.Tensor] = {"present": present}
        relevance: dict[str, torch.Tensor] = {}
        if not self.config.relevance:
            logits = self._vote(z, present)
        else:
            semantics = torch.softmax(z, -1) if self.discrete else z
            gates = self.estimator(h, semantics.detach(), present).float()  # [B, M, C]
            if self.discrete:
                logits, keep, term = self._channel_fusion(z, gates, present)
                posterior = torch.softmax(logits, -1)
                conditional = torch.exp(keep - term)  # P(e_m = y | x_m, y)  [B, M, K]
                # a probability; exp(keep - term) can round a hair above 1 in float32
                weights = (posterior.unsqueeze(1) * conditional).sum(-1).clamp(0.0, 1.0) * present
                aux.update(keep=keep, term=term, conditional=conditional)
            else:
                rho = torch.sigmoid(gates.squeeze(-1)) * present  # [B, M]
                logits = self._gated_mean(z.squeeze(-1), rho, present).unsqueeze(-1)
                weights = rho
            aux["gates"] = gates
            relevance = {m: weights[:, i] for i, m in enumerate(self.modalities)}
        return ModelOutput(
            logits=logits,
            relevance=relevance,
            modality_logits={m: z[:, i] for i, m in enumerate(self.modalities)},
            embeddings={m: F.normalize(self.projection(encoded[m]).float(), dim=-1)
                        for m in self.modalities},
            aux=aux,
        )

    def _vote(self, z: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Unweighted mean over the present modalities of log-posteriors (or scores)."""
        share = present.float().unsqueeze(-1)
        values = torch.log_softmax(z, -1) if self.discrete else z
        return (values * share).sum(1) / share.sum(1).clamp(min=1.0)

    def channel(self, gates: torch.Tensor) -> torch.Tensor:
        """``log T_m[y, e] = log P(e_m = e | y)`` [B, M, K, K] from the gate logits [B, M, K].

        ``T = rho * I + (1 - rho) * D`` row by row: the modality shows ``y`` with probability
        ``rho[y]`` (its relevance gate), otherwise a class drawn from the learned deviation
        table ``D[y, :]`` (which starts uniform, so that a closed gate starts as "switched
        off": a factor that does not depend on y).
        """
        log_rho = F.logsigmoid(gates).unsqueeze(-1)  # [B, M, K, 1]
        log_rest = F.logsigmoid(-gates).unsqueeze(-1)
        log_dev = torch.log_softmax(self.deviation_logits.float(), -1)  # [M, K, K]
        log_t = log_rest + log_dev
        eye = ~self.off_diagonal
        return torch.where(eye, torch.logaddexp(log_rho, log_t), log_t)

    def _channel_fusion(self, z: torch.Tensor, gates: torch.Tensor, present: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bayes fusion through the per-modality channel (module docstring).

        Returns:
            The class logits [B, K], and per modality and class y the log-mass of "expresses
            y" (``keep``) and the log-likelihood factor (``term``), both [B, M, K].
        """
        log_t = self.channel(gates)  # [B, M, K(y), K(e)]
        lik = torch.log_softmax(z, -1) - self.log_prior.float()  # log L_m(e) + const [B, M, K]
        keep = torch.diagonal(log_t, dim1=-2, dim2=-1) + lik
        term = torch.logsumexp(log_t + lik.unsqueeze(2), dim=-1)
        logits = self.class_prior.float() + (term * present.unsqueeze(-1)).sum(1)
        return logits, keep, term

    @staticmethod
    def _gated_mean(scores: torch.Tensor, rho: torch.Tensor,
                    present: torch.Tensor) -> torch.Tensor:
        """``sum rho s / sum rho``; the plain mean of present modalities where all gates are 0."""
        mass = rho.sum(1)
        plain = (scores * present).sum(1) / present.sum(1).clamp(min=1)
        gated = (scores * rho).sum(1) / mass.clamp(min=1e-6)
        return torch.where(mass > 1e-6, gated, plain)

    # -- losses -------------------------------------------------------------------------------

    def extra_losses(self, output: ModelOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """RSE, human-relevance and contrastive terms (weighted), as switched on in the config.

        Keys: ``"rse"`` and ``"contrastive"`` when switched on; ``"channel"`` with relevance
        estimation (discrete tasks); ``"human_relevance"`` when the batch carries
        ``relevance_<m>`` (and ``human`` and ``relevance`` are on). Nothing without labels.
        """
        if batch.labels is None:
            return {}
        cfg = self.config
        losses: dict[str, torch.Tensor] = {}
        present = output.aux["present"]
        human_labels = self.human_modality_labels(batch, present)
        channel = cfg.relevance and self.discrete and bool(cfg.channel_weight)
        # the weak targets (detached) serve both the RSE and the channel loss: computed once
        weak = self.weak_targets(output, batch) if self.discrete and (cfg.rse or channel) \
            else None
        if cfg.rse:
            losses["rse"] = cfg.rse_weight * self.rse_loss(output, batch, human_labels, weak)
        if channel:
            losses["channel"] = cfg.channel_weight * self.channel_loss(output, batch,
                                                                      human_labels, weak)
        if cfg.relevance and cfg.human and batch.relevance:
            term = self.human_relevance_loss(output, batch)
            if term is not None:
                losses["human_relevance"] = cfg.human_relevance_weight * term
        if cfg.contrastive:
            categories, weights = self.contrastive_targets(output, batch, human_labels)
            losses["contrastive"] = cfg.contrastive_weight * self.contrastive_loss(
                output, categories, weights, present)
            if self.training:
                self.update_prototypes(output, categories, weights, present)
        return losses

    def human_modality_labels(self, batch: Batch, present: torch.Tensor) -> torch.Tensor:
        """[B, M] class index each modality expresses per the annotations; -1 where unknown
        (no annotation, modality missing, ``human`` off or a continuous task)."""
        ref = present.new_full(present.shape, -1, dtype=torch.long)
        if not (self.config.human and self.discrete and batch.modality_labels):
            return ref
        labels = torch.stack([batch.modality_labels.get(m, ref[:, i]).to(ref)
                              for i, m in enumerate(self.modalities)], dim=1)
        if int(labels.max()) >= self.config.num_classes:
            raise ValueError(f"a label_<m> class index ({int(labels.max())}) is outside the "
                             f"{self.config.num_classes} classes of the model")
        return torch.where(present, labels, ref)

    def rse_loss(self, output: ModelOutput, batch: Batch, human_labels: torch.Tensor,
                 weak: torch.Tensor | None = None) -> torch.Tensor:
        """Per-modality semantic loss: human ``label_<m>`` where known, else the weak target
        (``weak``: :meth:`weak_targets`, computed here when not given)."""
        present = output.aux["present"]
        z = torch.stack([output.modality_logits[m] for m in self.modalities], 1).float()
        if not self.discrete:
            target = batch.labels.float().unsqueeze(1).expand_as(present)
            errors = F.l1_loss(z.squeeze(-1), target, reduction="none")
            weights = self._continuous_rse_weights(output, batch, present)
            return (errors * weights).sum() / present.sum().clamp(min=1)
        log_q = torch.log_softmax(z, -1)  # [B, M, K]
        return self._shown_class_nll(log_q, output, batch, human_labels, weak)

    def channel_loss(self, output: ModelOutput, batch: Batch, human_labels: torch.Tensor,
                     weak: torch.Tensor | None = None) -> torch.Tensor:
        """``-log P(e_m | y, x)`` of the class each modality shows, under the channel.

        The shown class is the human ``label_<m>`` where known, else the weak target (the
        model's detached posterior of ``e_m`` given the clip label: an EM step). This fits the
        relevance gates (class biases and the content logit) and the deviation tables directly
        to what the modalities show, which the fused loss alone teaches only slowly.
        """
        log_t = self.channel(output.aux["gates"])  # [B, M, K, K]
        k = log_t.shape[-1]
        index = batch.labels.view(-1, 1, 1, 1).expand(-1, log_t.shape[1], 1, k)
        row = log_t.gather(2, index).squeeze(2)  # log P(e_m = . | y, x)  [B, M, K]
        return self._shown_class_nll(row, output, batch, human_labels, weak)

    def _shown_class_nll(self, log_p: torch.Tensor, output: ModelOutput, batch: Batch,
                         human_labels: torch.Tensor, weak: torch.Tensor | None) -> torch.Tensor:
        """Mean over present (clip, modality) pairs of ``-log p`` [B, M, K] of the class the
        modality shows: the human ``label_<m>`` where known, else the weak soft target."""
        present = output.aux["present"]
        known = human_labels >= 0
        hard = -log_p.gather(-1, human_labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        weak = self.weak_targets(output, batch) if weak is None else weak
        soft = -(weak * log_p).sum(-1)
        per_pair = torch.where(known, hard, soft)
        return (per_pair * present).sum() / present.sum().clamp(min=1)

    def weak_targets(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        """[B, M, K] detached soft targets for ``e_m`` given the clip label (module docstring)."""
        y = batch.labels
        k = self.config.num_classes
        if "gates" not in output.aux:
            return F.one_hot(y, k).float().unsqueeze(1).expand(-1, len(self.modalities), -1)
        with torch.no_grad():
            z = torch.stack([output.modality_logits[m] for m in self.modalities], 1).float()
            log_t = self.channel(output.aux["gates"])  # [B, M, K, K]
            index = y.view(-1, 1, 1, 1).expand(-1, log_t.shape[1], 1, k)
            row = log_t.gather(2, index).squeeze(2)  # log P(e_m = . | y)  [B, M, K]
            lik = torch.log_softmax(z, -1) - self.log_prior.float()
            return torch.softmax(row + lik, -1)

    def _continuous_rse_weights(self, output: ModelOutput, batch: Batch,
                                present: torch.Tensor) -> torch.Tensor:
        weights = present.float()
        if "gates" in output.aux:
            weights = torch.sigmoid(output.aux["gates"].squeeze(-1)).detach() * present
        if self.config.human and batch.relevance:
            ref = weights.new_full(weights.shape, float("nan"))
            human = torch.stack([batch.relevance.get(m, ref[:, i]).to(weights)
                                 for i, m in enumerate(self.modalities)], dim=1)
            weights = torch.where(torch.isfinite(human), human.clamp(0, 1) * present, weights)
        return weights

    def human_relevance_loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor | None:
        """BCE of the model's relevance (at the true label) against human relevance.

        Discrete tasks fit ``P(e_m = y | x_m, y)``, continuous ones the gate ``rho_m``. Pairs
        with the modality missing or the relevance unknown (NaN) are left out; None when no
        pair is left.
        """
        present = output.aux["present"]
        ref = present.new_full(present.shape, float("nan"), dtype=torch.float32)
        human = torch.stack([batch.relevance.get(m, ref[:, i]).to(ref)
                             for i, m in enumerate(self.modalities)], dim=1)
        known = present & torch.isfinite(human)
        if not known.any():
            return None
        if self.discrete:
            index = batch.labels.view(-1, 1, 1).expand(-1, len(self.modalities), 1)
            log_yes = (output.aux["keep"] - output.aux["term"]).gather(-1, index).squeeze(-1)
            # log(1 - p) from log p, stable for p near 1
            log_no = torch.log(-torch.expm1(log_yes.clamp(max=-1e-6)))
        else:
            gates = output.aux["gates"].squeeze(-1)
            log_yes, log_no = F.logsigmoid(gates), F.logsigmoid(-gates)
        target = torch.where(known, human, torch.zeros_like(human)).clamp(0.0, 1.0)
        bce = -(target * log_yes + (1 - target) * log_no)
        return bce[known].mean()

    def contrastive_targets(self, output: ModelOutput, batch: Batch,
                            human_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Category [B, M] and anchor weight [B, M] of each (sample, modality).

        The human ``label_<m>`` with weight 1 where known; otherwise the clip's category
        weighted by the detached relevance (1 without relevance estimation).
        """
        present = output.aux["present"]
        clip = self.categories(batch.labels).unsqueeze(1).expand_as(human_labels)
        if output.relevance:
            relevance = torch.stack([output.relevance[m] for m in self.modalities], 1)
            weak = relevance.detach().float()
        else:
            weak = present.float()
        known = human_labels >= 0
        categories = torch.where(known, human_labels, clip)
        weights = torch.where(known, torch.ones_like(weak), weak) * present
        return categories, weights

    def categories(self, labels: torch.Tensor) -> torch.Tensor:
        """Contrastive categories: the class (discrete) or the score's bin (continuous)."""
        if self.discrete:
            return labels.long()
        bounds = torch.tensor(self.config.category_bounds, device=labels.device,
                              dtype=torch.float32)
        return torch.bucketize(labels.float(), bounds, right=True)

    def contrastive_loss(self, output: ModelOutput, categories: torch.Tensor,
                         weights: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Weighted supervised InfoNCE with cross-modal positives.

        Args:
            output: the model output (its ``embeddings``).
            categories: [B, M] category of each (sample, modality), or [B] (one per sample).
            weights: [B, M] anchor weights.
            present: [B, M] which modalities the samples have.
        """
        num_m = len(self.modalities)
        z = torch.stack([output.embeddings[m] for m in self.modalities], dim=1)  # [B, M, P]
        if categories.dim() == 1:
            categories = categories.unsqueeze(1).expand(-1, num_m)
        modality_ids = torch.arange(num_m, device=z.device).expand(z.shape[0], num_m)
        flat_present = present.reshape(-1)
        anchors = z.reshape(-1, z.shape[-1])[flat_present]
        anchor_cat = categories.reshape(-1)[flat_present]
        anchor_mod = modality_ids.reshape(-1)[flat_present]
        anchor_w = weights.reshape(-1)[flat_present]
        keys, key_cat, key_mod = anchors, anchor_cat, anchor_mod
        if self.config.prototypes and bool(self.prototype_ready.any()):
            ready = self.prototype_ready
            mod_idx, cat_idx = ready.nonzero(as_tuple=True)
            keys = torch.cat([keys, self.prototype[ready].to(keys)])
            key_cat = torch.cat([key_cat, cat_idx])
            key_mod = torch.cat([key_mod, mod_idx])
        if anchors.shape[0] == 0:
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
        """EMA of weighted, normalised embeddings per (modality, category)."""
        if not self.config.prototypes:
            return
        momentum = self.config.prototype_momentum
        if categories.dim() == 1:
            categories = categories.unsqueeze(1).expand(-1, len(self.modalities))
        for i, m in enumerate(self.modalities):
            one_hot = F.one_hot(categories[:, i].clamp(0, self.num_categories - 1),
                                self.num_categories).float()  # [B, K]
            w = (weights[:, i] * present[:, i]).unsqueeze(1) * one_hot  # [B, K]
            mass = w.sum(0)  # [K]
            seen = mass > 0
            if not seen.any():
                continue
            centroid = w.T @ output.embeddings[m].float()  # [K, P]
            centroid = F.normalize(centroid / mass.clamp(min=1e-8).unsqueeze(1), dim=-1)
            old = self.prototype[i]
            ready = self.prototype_ready[i]
            blended = torch.where(ready.unsqueeze(1), momentum * old + (1 - momentum) * centroid,
                                  centroid)
            self.prototype[i] = torch.where(seen.unsqueeze(1), F.normalize(blended, dim=-1),
                                            old)
            self.prototype_ready[i] = ready | seen


# ----------------------------------------------------------------------------- registered models

register_model("mren", MREN, description="MREN with every part on (relevance estimation, RSE, "
               "contrastive, human labels).")
register_model("mren-no-relevance", MREN, defaults={"relevance": False},
               description="Ablation: no relevance estimation; the modalities' posteriors are "
               "fused by a vote.")
register_model("mren-no-rse", MREN, defaults={"rse": False},
               description="Ablation: no relevant semantic estimation loss on the per-modality "
               "heads.")
register_model("mren-no-contrastive", MREN, defaults={"contrastive": False},
               description="Ablation: no category-level cross-modal contrastive loss.")
register_model("mren-no-human", MREN, defaults={"human": False},
               description="Ablation: ignores human per-modality annotations (the weak forms "
               "only).")
