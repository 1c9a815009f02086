"""Baselines for SDME: the relevance-estimation network (``mren``) and fusion baselines.

``list_models()`` names every registered model; ``create_model(name, **config)`` builds one.
"""

from __future__ import annotations

import importlib
import pkgutil

from baselines.models.base import (
    Batch,
    EmotionModel,
    ModelConfig,
    ModelOutput,
    register_model,
    registered,
    unknown_model_error,
)

__all__ = ["Batch", "EmotionModel", "ModelConfig", "ModelOutput", "create_model",
           "list_models", "register_model"]


def _load_models() -> None:
    from baselines import models

    for info in pkgutil.iter_modules(models.__path__):
        if info.name != "base":
            importlib.import_module(f"baselines.models.{info.name}")


def list_models() -> list[str]:
    _load_models()
    return sorted(registered())


def create_model(name: str, **config: object) -> EmotionModel:
    """Builds a registered model; ``config`` overrides its config class's defaults.

    The registered name is kept as ``model.model_name`` (checkpoints record it).
    """
    _load_models()
    if name not in registered():
        raise unknown_model_error(name)
    model = registered()[name](**config)
    model.model_name = name
    return model
