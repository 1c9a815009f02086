"""The one model interface of ``baselines``: a batch in, a ModelOutput out, registered by name.

Every model takes a :class:`Batch` (per-modality padded feature sequences and masks; any modality
may be missing) and returns a :class:`ModelOutput`. Model-specific training behaviour (extra
losses, parameter groups) lives in the hooks of :class:`EmotionModel`, so one trainer serves all.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from sdme.schema import MODALITIES



@dataclass
class Batch:
    """A padded batch.

    Attributes:
        features: modality -> float tensor [B, T_m, D_m] (zero-padded). A modality that the
            dataset lacks, or that is dropped for a robustness test, is simply absent.
        masks: modality -> bool tensor [B, T_m], True at real (non-padded) steps. A sample whose
            modality is missing has an all-False row.
        labels: long tensor [B] (discrete tasks) or float tensor [B] (continuous tasks), or None.
        relevance: modality -> float tensor [B] of human relevance in [0, 1] (NaN where unknown),
            present only when the dataset has relevance annotations.
        ids: the clip ids, for per-clip predictions.
        modality_labels: modality -> long tensor [B]: the class that modality m *alone*
            expresses (``label_<m>``, a ClassLabel index of the clip taxonomy; -1 where
            unknown), present only for discrete tasks whose rows carry ``label_<m>``. Like
            ``labels`` and ``relevance``, a training/validation target: the benchmark never
            gives it for test clips, and models read it only in their loss hooks.
    """

    features: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    labels: torch.Tensor | None = None
    relevance: dict[str, torch.Tensor] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    modality_labels: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return next(iter(self.masks.values())).shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def move(d: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v.to(device, non_blocking=non_blocking) for k, v in d.items()}

        labels = self.labels.to(device, non_blocking=non_blocking) if self.labels is not None \
            else None
        return Batch(move(self.features), move(self.masks), labels, move(self.relevance),
                     list(self.ids), move(self.modality_labels))

    def pin_memory(self) -> Batch:
        def pin(d: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v.pin_memory() for k, v in d.items()}

        labels = self.labels.pin_memory() if self.labels is not None else None
        return Batch(pin(self.features), pin(self.masks), labels, pin(self.relevance), self.ids,
                     pin(self.modality_labels))


@dataclass
class ModelOutput:
    """What every model returns.

    Attributes:
        logits: [B, C] class logits (discrete) or [B, 1] score (continuous).
        relevance: modality -> [B] relevance of each modality in [0, 1], for models that
            estimate it: how much the model relies on the modality for this clip (``mren``: the
            probability that the modality expresses the clip's emotion). Each value is on its
            own scale; they need *not* sum to 1 over the modalities, so a model can switch every
            deviating modality off. A modality the sample lacks gets 0.
        modality_logits: modality -> [B, C] per-modality predictions, where the model has them.
        embeddings: modality -> [B, H] per-modality representations (used by contrastive losses).
        aux: anything else a model's loss hook needs (kept out of the trainer's way).
    """

    logits: torch.Tensor
    relevance: dict[str, torch.Tensor] = field(default_factory=dict)
    modality_logits: dict[str, torch.Tensor] = field(default_factory=dict)
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Configuration shared by all models; models subclass it to add their own fields.

    ``input_dims`` and ``num_classes`` come from the dataset, never hard-coded.
    """

    input_dims: dict[str, int] = field(default_factory=dict)
    num_classes: int = 7
    task: str = "discrete"  # or "continuous"
    hidden: int = 64
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"{cls.__name__} has no option(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
        return cls(**values)

    @property
    def out_dim(self) -> int:
        return self.num_classes if self.task == "discrete" else 1


class EmotionModel(nn.Module):
    """Base class: ``forward(batch) -> ModelOutput`` plus training hooks."""

    config_class: type[ModelConfig] = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, batch: Batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def task_loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        """The main objective: cross-entropy (discrete) or L1 (continuous, as in MMSA)."""
        if self.config.task == "discrete":
            return nn.functional.cross_entropy(output.logits.float(), batch.labels)
        return nn.functional.l1_loss(output.logits.float().squeeze(-1), batch.labels.float())

    def extra_losses(self, output: ModelOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """Model-specific auxiliary losses, already weighted; summed by the trainer."""
        return {}

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer parameter groups; override for per-part learning rates."""
        return [{"params": [p for p in self.parameters() if p.requires_grad],
                 "lr": lr, "weight_decay": weight_decay}]

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the trainer before each training epoch."""


ModelFactory = Callable[..., EmotionModel]
_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    def wrap(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return wrap


def registered() -> dict[str, ModelFactory]:
    return _REGISTRY


def unknown_model_error(name: str) -> KeyError:
    hint = difflib.get_close_matches(name, _REGISTRY, n=1)
    extra = f" Did you mean {hint[0]!r}?" if hint else ""
    return KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}.{extra}")
