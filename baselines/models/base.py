"""The one model interface of ``baselines``: a batch in, a ModelOutput out, registered by name.

Every model takes a :class:`Batch` (per-modality padded feature sequences and masks; any modality
may be missing) and returns a :class:`ModelOutput`. Model-specific training behaviour (extra
losses, parameter groups) lives in the hooks of :class:`EmotionModel`, so one trainer serves all.

Models are registered by name in :data:`MODELS`, one :class:`sdme.registry.Registry` that imports
every public module of ``baselines.models`` (and the ``sdme.models`` entry-point group) before
its first lookup, so adding a model is adding one file. The shape is timm's
(``timm/models/_registry.py``): :func:`register_model`, :func:`create_model`, :func:`list_models`.
A model class names its options in ``config_class`` (a :class:`ModelConfig` dataclass);
:func:`create_model` builds that config with :func:`sdme.config.from_mapping` (strings from YAML or
the command line parsed to the field types, unknown options refused with a close match) and the
class from it. A registered variant is data, the class plus the options it defaults or fixes::

    register_model("late_fusion", LateFusion)
    register_model("mren-no-rse", MREN, defaults={"rse": False},
                   description="Ablation: MREN without the RSE loss")
    register_model("text_only", UnimodalModel, fixed={"modality": "text"})
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from baselines.search import SpaceSection
from sdme.config import ConfigError, from_mapping
from sdme.registry import Registry
from sdme.schema import MODALITIES

__all__ = ["MODALITIES", "MODELS", "Batch", "EmotionModel", "ModelConfig", "ModelConfigError",
           "ModelFactory", "ModelOutput", "ModelSpec", "create_model", "list_models",
           "prediction_loss", "register_model"]

C = TypeVar("C", bound="ModelConfig")



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


class ModelConfigError(ConfigError, TypeError):
    """A model option that does not exist, or a value of the wrong type; the message names both.

    A :class:`~sdme.config.ConfigError` (so a ``ValueError``) and also a ``TypeError``, what an
    unexpected keyword argument raises, which is what callers of ``create_model`` caught before
    model options went through :mod:`sdme.config`.
    """


@dataclass
class ModelConfig:
    """Configuration shared by all models; models subclass it to add their own fields.

    ``input_dims`` and ``num_classes`` come from the dataset, never hard-coded. The class
    attribute ``search_space`` declares the model's own hyper-parameter ranges, searched by
    ``benchmark tune`` on top of the shared ones (see :mod:`baselines.search`).

    Attributes:
        input_dims: feature size per modality; the modalities the model reads.
        num_classes: number of classes (discrete task).
        task: ``"discrete"`` (class logits) or ``"continuous"`` (one score).
        hidden: model width.
        dropout: dropout probability.
    """

    search_space: ClassVar[SpaceSection] = MappingProxyType({})

    input_dims: dict[str, int] = field(default_factory=dict)
    num_classes: int = 7
    task: Literal["discrete", "continuous"] = "discrete"
    hidden: int = 64
    dropout: float = 0.1

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any], *, what: str | None = None,
                  source: str | os.PathLike | None = None) -> C:
        """The config from option values, through :func:`sdme.config.from_mapping`.

        Args:
            values: option values; strings are parsed to the field's type (``"0.2"`` -> 0.2).
            what: what the options configure, for messages (default: the class name).
            source: where the values came from (a file), prefixed to messages.

        Raises:
            ModelConfigError: an unknown option (with a close match) or a bad value.
        """
        try:
            return from_mapping(cls, values, what=what, source=source)
        except ConfigError as exc:
            raise ModelConfigError(str(exc)) from None

    @property
    def out_dim(self) -> int:
        return self.num_classes if self.task == "discrete" else 1


def prediction_loss(logits: torch.Tensor, labels: torch.Tensor, task: str,
                    reduction: str = "mean") -> torch.Tensor:
    """The task's loss of a prediction: cross-entropy (discrete) or L1 (continuous, as in MMSA).

    Args:
        logits: [B, C] class logits or [B, 1] scores (computed in float32).
        labels: [B] class indices or scores.
        task: ``"discrete"`` or ``"continuous"``.
        reduction: ``"mean"`` or ``"none"`` (one value per sample).
    """
    if task == "discrete":
        return nn.functional.cross_entropy(logits.float(), labels, reduction=reduction)
    return nn.functional.l1_loss(logits.float().squeeze(-1), labels.float(), reduction=reduction)


class EmotionModel(nn.Module, PyTorchModelHubMixin, library_name="sdme",
                   tags=["sdme", "emotion-recognition", "multimodal"],
                   pipeline_tag="video-classification"):
    """Base class: ``forward(batch) -> ModelOutput`` plus training hooks.

    Subclasses set ``config_class`` to their :class:`ModelConfig` subclass; :func:`create_model`
    builds it from the options it is given and passes it to ``__init__``.

    Every model is a ``huggingface_hub.PyTorchModelHubMixin``: ``save_pretrained(folder)``
    writes ``model.safetensors``, ``config.json`` and a model card, ``push_to_hub(repo)``
    uploads the same files, and ``EmotionModel.from_pretrained(folder_or_repo)`` rebuilds the
    registered model (of whatever class) and loads its weights (``baselines.checkpoint``).

    Attributes:
        model_name: The registered name (set by :func:`create_model`).
        task_info: What it was trained to predict, and on what data
            (``baselines.checkpoint.TaskInfo``; set by ``fit`` and ``from_pretrained``).
        fit_summary: The selected epoch, its validation metrics and the train config.
    """

    config_class: type[ModelConfig] = ModelConfig
    model_name: str | None = None
    task_info: Any = None
    fit_summary: dict[str, Any] | None = None

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    # --- Hugging Face format (huggingface_hub's mixin, filled in by baselines.checkpoint) ---

    def save_pretrained(self, save_directory: str | os.PathLike, *,
                        config: dict | None = None, **kwargs: Any) -> str | None:
        """Writes ``model.safetensors``, ``config.json`` (``baselines.checkpoint``) and
        ``README.md`` to ``save_directory`` (the mixin's method; ``config`` defaults to this
        model's checkpoint config)."""
        from baselines.checkpoint import checkpoint_config

        return super().save_pretrained(
            save_directory, config=config if config is not None else checkpoint_config(self),
            **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None,
                         cache_dir: str | os.PathLike | None, force_download: bool,
                         local_files_only: bool, token: str | bool | None,
                         config: dict | None = None, map_location: str = "cpu",
                         strict: bool = True, **model_kwargs: Any) -> EmotionModel:
        from baselines.checkpoint import load_pretrained

        if model_kwargs:
            raise TypeError(f"from_pretrained: unexpected argument(s) {sorted(model_kwargs)}")
        return load_pretrained(cls, model_id, config, map_location=map_location, strict=strict,
                               revision=revision, cache_dir=cache_dir,
                               force_download=force_download,
                               local_files_only=local_files_only, token=token)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> Any:
        """The model card (``baselines.checkpoint.model_card``)."""
        from baselines.checkpoint import model_card

        return model_card(self)

    def forward(self, batch: Batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def task_loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        """The main objective: :func:`prediction_loss` of the output on the clip labels."""
        return prediction_loss(output.logits, batch.labels, self.config.task)

    def extra_losses(self, output: ModelOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """Model-specific auxiliary losses, already weighted; summed by the trainer."""
        return {}

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer parameter groups; override for per-part learning rates."""
        return [{"params": [p for p in self.parameters() if p.requires_grad],
                 "lr": lr, "weight_decay": weight_decay}]

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the trainer before each training epoch."""


# ----------------------------------------------------------------------------- registry

ModelFactory = Callable[..., EmotionModel]

#: Every registered model: name -> a factory ``(**options) -> EmotionModel`` (mostly a
#: :class:`ModelSpec`); metadata ``description`` and ``model_class`` (None for a plain factory).
MODELS: Registry[ModelFactory] = Registry("model", packages=["baselines.models"])


class ModelSpec:
    """A registered model as data: its class and the options it defaults or fixes.

    Calling the spec with options builds the model: the class's ``config_class`` from
    ``{**defaults, **options, **fixed}`` (see :meth:`ModelConfig.from_dict`), then the class.

    Args:
        name: the registered name (for messages).
        model_class: an :class:`EmotionModel` subclass.
        defaults: options that differ from the config class's defaults; callers may override
            them (an ablation switches a part off by default).
        fixed: options the variant is defined by; a caller may repeat them (a checkpoint's
            saved config does) but not change them.
        description: one line for listings (default: the class docstring's first line).
    """

    def __init__(self, name: str, model_class: type[EmotionModel], *,
                 defaults: Mapping[str, Any] | None = None,
                 fixed: Mapping[str, Any] | None = None, description: str | None = None) -> None:
        if not (isinstance(model_class, type) and issubclass(model_class, EmotionModel)):
            raise TypeError(f"model {name!r}: {model_class!r} is not an EmotionModel subclass")
        self.name = name
        self.model_class = model_class
        self.config_class = model_class.config_class
        self.defaults = MappingProxyType(dict(defaults or {}))
        self.fixed = MappingProxyType(dict(fixed or {}))
        self.description = description or _first_line(model_class.__doc__)
        # What the registry compares to accept a reloaded module registering again.
        self.__module__ = model_class.__module__
        self.__qualname__ = f"{model_class.__qualname__}[{name}]"
        self.config()  # an option the config lacks, or a bad value, fails at registration

    def config(self, **options: Any) -> ModelConfig:
        """The resolved config for ``options`` (no model is built).

        Raises:
            ModelConfigError: an unknown option, a bad value, or a fixed option changed.
        """
        for key, value in self.fixed.items():
            if key in options and options[key] != value:
                hint = _alternative(self, key, options[key])
                raise ModelConfigError(f"model {self.name!r}: option {key!r} is fixed to "
                                       f"{value!r}, got {options[key]!r}{hint}")
        return self.config_class.from_dict({**self.defaults, **options, **self.fixed},
                                           what=f"model {self.name!r}")

    def __call__(self, **options: Any) -> EmotionModel:
        """Builds the model from ``options`` (see :meth:`config`)."""
        return self.model_class(self.config(**options))

    def __repr__(self) -> str:
        extra = "".join(f", {k}={dict(v)!r}" for k, v in (("defaults", self.defaults),
                                                          ("fixed", self.fixed)) if v)
        return f"ModelSpec({self.name!r}, {self.model_class.__name__}{extra})"


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()


def _alternative(spec: ModelSpec, key: str, value: Any) -> str:
    """`` (use 'audio_only' instead)`` when another variant of the same class fixes that value."""
    for entry in MODELS.entries():
        other = entry.obj
        if (isinstance(other, ModelSpec) and other.model_class is spec.model_class
                and other.fixed.get(key, object()) == value):
            return f" (use {entry.name!r} instead)"
    return ""


def register_model(name: str, model_class: type[EmotionModel] | None = None, /, *,
                   defaults: Mapping[str, Any] | None = None,
                   fixed: Mapping[str, Any] | None = None,
                   description: str | None = None) -> Any:
    """Registers a model under ``name`` in :data:`MODELS`.

    With a class, registers a :class:`ModelSpec` (see there for ``defaults`` and ``fixed``) and
    returns it. Without one, returns a decorator for a model class (the same) or for a factory
    function ``(**options) -> EmotionModel`` (timm's form, registered as it is)::

        register_model("mren-no-contrastive", MREN, defaults={"contrastive": False})

        @register_model("my_model")
        class MyModel(EmotionModel):
            config_class = MyConfig

    Raises:
        sdme.registry.RegistryError: ``name`` is taken by another model.
        ModelConfigError: ``defaults`` or ``fixed`` names an option the config does not have.
    """
    if model_class is None:
        def decorator(target: Any) -> Any:
            if isinstance(target, type):
                register_model(name, target, defaults=defaults, fixed=fixed,
                               description=description)
            else:
                if defaults or fixed:
                    raise TypeError(f"model {name!r}: defaults and fixed options need a model "
                                    "class, not a factory function")
                MODELS.register(name, target, description=description or _first_line(
                    target.__doc__), model_class=None)
            return target

        return decorator
    spec = ModelSpec(name, model_class, defaults=defaults, fixed=fixed, description=description)
    MODELS.register(name, spec, description=spec.description, model_class=model_class)
    return spec


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return MODELS.names()


def create_model(name: str, **options: Any) -> EmotionModel:
    """Builds the model registered as ``name``; ``options`` override its config's defaults.

    The registered name is kept as ``model.model_name`` (checkpoints record it).

    Raises:
        sdme.registry.RegistryError: an unknown name (a ``KeyError``, with a close match).
        ModelConfigError: an unknown option (with a close match) or a bad value.
    """
    model = MODELS.get(name)(**options)
    model.model_name = name
    return model
