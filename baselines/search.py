"""Hyper-parameter search spaces: the shared one of the trainer and each model's own, as data.

A search space has two sections, like a run config (``benchmark run --config``): ``train``
(:class:`~baselines.train.TrainConfig` fields) and ``model`` (fields of the model's config
class). Each entry is a :class:`FloatRange`, :class:`IntRange` or :class:`Choice`. The space a
model is tuned over (:func:`search_space`) is :data:`SHARED_SPACE` (learning rate, weight
decay, batch size, width, dropout: what every model has) updated with the ``search_space``
class attribute of the model's config class, where the model is declared::

    @dataclass
    class LMFConfig(SubNetsConfig):
        search_space: ClassVar[SpaceSection] = {**SubNetsConfig.search_space,
                                                "rank": IntRange(2, 8)}
        rank: int = 4

A model whose config ignores a shared option maps it to None (not searched). An option a
registered variant fixes (``register_model(..., fixed=...)``) is never searched either.
This module only describes spaces; ``benchmark.tune`` searches them with Optuna
(https://optuna.org; ``trial.suggest_float`` / ``suggest_int`` / ``suggest_categorical``, whose
arguments the three classes mirror), on the validation split, with one budget for every model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sdme.config import ConfigError, field_hints


@dataclass(frozen=True)
class FloatRange:
    """A float in ``[low, high]``, sampled on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"FloatRange needs finite low < high, got {self.low}, {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"FloatRange(log=True) needs low > 0, got {self.low}")

    def values(self) -> tuple[Any, ...]:
        """Values to try a space with (its ends)."""
        return (self.low, self.high)

    def describe(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]`` by ``step``, sampled on a log scale when ``log``."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        if self.low >= self.high or self.step < 1:
            raise ValueError(f"IntRange needs low < high and step >= 1, got {self.low}, "
                             f"{self.high}, step {self.step}")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("IntRange(log=True) needs low >= 1 and step 1")

    def values(self) -> tuple[Any, ...]:
        return (self.low, self.high - (self.high - self.low) % self.step)

    def describe(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log,
                "step": self.step}


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (numbers, strings or booleans)."""

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not all(isinstance(o, (bool, int, float, str)) for o in self.options):
            raise ValueError(f"Choice options must be numbers, strings or booleans, got "
                             f"{self.options}")
        if len(self.options) < 2 or len(set(self.options)) != len(self.options):
            raise ValueError(f"Choice needs two or more distinct options, got {self.options}")

    def values(self) -> tuple[Any, ...]:
        return self.options

    def describe(self) -> dict[str, Any]:
        return {"type": "choice", "options": list(self.options)}


Dimension = FloatRange | IntRange | Choice
#: One section of a space: option name -> its range (None: a shared option not searched).
SpaceSection = Mapping[str, Dimension | None]
SECTIONS: tuple[str, ...] = ("train", "model")

#: What every model is searched over: the trainer's optimiser and batch, the model's width and
#: dropout (fields of ``ModelConfig``). Widths are multiples of 8, so attention heads divide
#: them.
SHARED_SPACE: Mapping[str, SpaceSection] = {
    "train": {"lr": FloatRange(1e-4, 3e-3, log=True),
              "weight_decay": FloatRange(1e-6, 1e-2, log=True),
              "batch_size": Choice((16, 32, 64))},
    "model": {"hidden": Choice((32, 64, 128)),
              "dropout": FloatRange(0.0, 0.5)},
}


def search_space(model_name: str) -> dict[str, dict[str, Dimension]]:
    """The space ``model_name`` is tuned over: :data:`SHARED_SPACE` updated with its config
    class's ``search_space``, less the options it maps to None and those the registered
    variant fixes.

    Raises:
        sdme.registry.RegistryError: an unknown model (with a close match).
        ConfigError: the model's space names an option its config does not have, or holds
            something other than a :class:`FloatRange`, :class:`IntRange` or :class:`Choice`.
    """
    from baselines.models.base import MODELS, ModelSpec
    from baselines.train import TrainConfig

    factory = MODELS.get(model_name)
    space = {section: dict(SHARED_SPACE[section]) for section in SECTIONS}
    if not isinstance(factory, ModelSpec):  # a plain factory function: the shared space only
        return space
    own = getattr(factory.config_class, "search_space", {})
    space["model"].update(own)
    for key in [*factory.fixed, *(k for k, v in own.items() if v is None)]:
        space["model"].pop(key, None)
    for section, cls in (("train", TrainConfig), ("model", factory.config_class)):
        known = field_hints(cls)
        for key, dim in space[section].items():
            if key not in known:
                raise ConfigError(f"model {model_name!r}: search space option {key!r} is not an "
                                  f"option of {cls.__name__}")
            if not isinstance(dim, (FloatRange, IntRange, Choice)):
                raise ConfigError(f"model {model_name!r}: search space option {key!r} is "
                                  f"{dim!r}, not a FloatRange, IntRange or Choice")
    return space


def describe_space(space: Mapping[str, SpaceSection]) -> dict[str, dict[str, Any]]:
    """The space as plain JSON (what a tuning record stores)."""
    return {section: {key: dim.describe() for key, dim in sorted(space[section].items())}
            for section in SECTIONS}


__all__ = ["SECTIONS", "SHARED_SPACE", "Choice", "Dimension", "FloatRange", "IntRange",
           "SpaceSection", "describe_space", "search_space"]
