"""SDME: datasets and relevance annotations for multimodal emotion recognition under semantic
deviation (clips whose text, voice and face do not express the same emotion).

``sdme download`` fetches a raw corpus, ``sdme validate`` checks it, ``sdme build`` turns it into
a Hugging Face dataset with per-modality features and relevance fields, and
``sdme.load_dataset`` loads a built dataset.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_dataset"]


def __getattr__(name: str):
    # Lazy: importing sdme must stay cheap (no torch/datasets at import time).
    if name == "load_dataset":
        from sdme.loading import load_dataset

        return load_dataset
    raise AttributeError(f"module 'sdme' has no attribute {name!r}")
