"""Feature extractors for text, audio and vision, registered by name.

An extractor turns one raw clip into a sequence of float vectors, ``[T, dim]`` float32 with
``T >= 1``, and records its name, version and parameters (``ExtractorInfo``) into the build's
provenance. Register one with ``@register_extractor(modality, name)`` on a factory
``factory(**params) -> Extractor``; create one with ``create_extractor(modality, name, **params)``.
The registry follows timm's ``register_model`` / ``create_model`` pattern
(https://github.com/huggingface/pytorch-image-models).

Built-in extractors (``list_extractors()``):

- text: ``minilm`` (default; all-MiniLM-L6-v2 token embeddings, 384-d, offline) and ``hf``
  (any Hugging Face encoder available locally) — ``sdme.features.text``.
- audio: ``logmel`` (default; Kaldi-compatible log-mel filterbank) and ``egemaps`` (openSMILE
  eGeMAPSv02 low-level descriptors, needs ``pip install sdme[opensmile]``) —
  ``sdme.features.audio``.
- vision: ``face`` (default; MTCNN face crops plus landmark geometry) and ``facenet``
  (InceptionResnetV1 embeddings from local weights) — ``sdme.features.vision``.

Models are loaded lazily, once per extractor object, on the first ``extract`` call; importing
this package loads nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdme.media import CLIP_ERROR_REASONS, ClipError
from sdme.schema import MODALITIES, RawClip

DEFAULTS: dict[str, str] = {"text": "minilm", "audio": "logmel", "vision": "face"}


@dataclass(frozen=True)
class ExtractorInfo:
    """What produced a feature column: recorded into ``build_info.json``.

    Attributes:
        name: Registered extractor name (e.g. ``"logmel"``).
        version: Extractor version; bumped whenever its output changes for the same input.
        modality: ``"text"``, ``"audio"`` or ``"vision"``.
        dim: Feature vector size (the second axis of ``extract``'s output).
        params: Fully resolved parameters (JSON-serialisable), defaults included.
    """

    name: str
    version: str
    modality: str
    dim: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical JSON of this info: a cache key for extracted features."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Extractor(ABC):
    """One modality's feature extractor.

    Subclasses set ``info`` in ``__init__`` and implement ``extract``. Heavy models are loaded
    lazily on first use, so constructing an extractor is cheap and picklable.
    """

    info: ExtractorInfo
    device: str = "cpu"

    @abstractmethod
    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        """Features of one clip.

        Args:
            raw_dir: The raw corpus folder (media under ``clips/`` or ``audio/``).
            clip: The clip's annotation row.

        Returns:
            ``[T, info.dim]`` float32 array with ``T >= 1``.

        Raises:
            ClipError: The clip cannot yield this modality (decode failure, no audio stream,
                no face in any frame, empty transcript).
        """

    def to(self, device: str) -> Extractor:
        """Moves the extractor's models to ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

        A lazily loaded torch module kept in ``self._model`` (None until first use) is moved
        here; subclasses with other modules extend this.
        """
        self.device = str(device)
        model = getattr(self, "_model", None)
        if model is not None:
            model.to(self.device)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.modality}/{self.info.name}, {self.info.params})"


ExtractorFactory = Callable[..., Extractor]

_REGISTRY: dict[str, dict[str, ExtractorFactory]] = {m: {} for m in MODALITIES}
_BUILTIN_MODULES = ("text", "audio", "vision")


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise KeyError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")


def register_extractor(modality: str, name: str) -> Callable[[ExtractorFactory], ExtractorFactory]:
    """Decorator registering ``factory(**params) -> Extractor`` as ``modality/name``."""
    _check_modality(modality)

    def wrap(factory: ExtractorFactory) -> ExtractorFactory:
        known = _REGISTRY[modality]
        if name in known and known[name] is not factory:
            raise ValueError(f"extractor {modality}/{name!r} is already registered")
        known[name] = factory
        return factory

    return wrap


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")


def list_extractors(modality: str | None = None) -> dict[str, list[str]]:
    """Registered extractor names per modality (one modality when given)."""
    _load_builtins()
    if modality is not None:
        _check_modality(modality)
        return {modality: sorted(_REGISTRY[modality])}
    return {m: sorted(names) for m, names in _REGISTRY.items()}


def create_extractor(modality: str, name: str | None = None, **params: Any) -> Extractor:
    """Builds a registered extractor.

    Args:
        modality: ``"text"``, ``"audio"`` or ``"vision"``.
        name: Registered name; ``None`` picks ``DEFAULTS[modality]``.
        **params: Overrides of the extractor's parameters.

    Raises:
        KeyError: Unknown modality or name (with a close-match suggestion).
        TypeError: A parameter the extractor does not take.
    """
    _check_modality(modality)
    _load_builtins()
    name = name or DEFAULTS[modality]
    known = _REGISTRY[modality]
    if name not in known:
        hint = difflib.get_close_matches(name, known, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise KeyError(f"unknown {modality} extractor {name!r}; "
                       f"known: {', '.join(sorted(known))}.{extra}")
    return known[name](**params)


__all__ = [
    "CLIP_ERROR_REASONS",
    "DEFAULTS",
    "ClipError",
    "Extractor",
    "ExtractorInfo",
    "create_extractor",
    "list_extractors",
    "register_extractor",
]
