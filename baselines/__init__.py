"""Baselines for SDME: the relevance-estimation network (``mren``) and fusion baselines.

``list_models()`` names every registered model; ``create_model(name, **options)`` builds one;
``register_model`` adds one (a new file in ``baselines/models/`` is found without other edits).
The registry itself is :data:`MODELS` (see :mod:`baselines.models.base`).
"""

from __future__ import annotations

from baselines.models.base import (
    MODELS,
    Batch,
    EmotionModel,
    ModelConfig,
    ModelConfigError,
    ModelOutput,
    ModelSpec,
    create_model,
    list_models,
    register_model,
)

__all__ = ["MODELS", "Batch", "EmotionModel", "ModelConfig", "ModelConfigError", "ModelOutput",
           "ModelSpec", "create_model", "list_models", "register_model"]
