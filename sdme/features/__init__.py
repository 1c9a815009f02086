"""Feature extractors for text, audio and vision, registered by name per modality.

An extractor turns one raw clip into a sequence of float vectors, ``[T, dim]`` float32 with
``T >= 1``, and records its name, version and parameters (``ExtractorInfo``) into the build's
provenance. Create one with ``create_extractor(modality, name, **params)``: the parameters are
checked by ``sdme.config`` against the extractor's parameter dataclass (types; unknown names get
a close-match hint). The registry follows timm's ``register_model`` / ``create_model`` pattern
(https://github.com/huggingface/pytorch-image-models) on ``sdme.registry.Registry``.

Built-in extractors (``list_extractors()``):

- text: ``minilm`` (default; all-MiniLM-L6-v2 token embeddings, 384-d, offline) and ``hf``
  (any Hugging Face encoder available locally, Chinese ones included) — ``sdme.features.text``.
- audio: ``logmel`` (default; Kaldi-compatible log-mel filterbank) and ``egemaps`` (openSMILE
  eGeMAPSv02 low-level descriptors, needs ``pip install sdme[opensmile]``) —
  ``sdme.features.audio``; ``wav2vec2``, ``hubert`` and ``wavlm`` (self-supervised speech
  encoders from local weights, a chosen layer, pooled) — ``sdme.features.speech``.
- vision: ``face`` (default; MTCNN face crops plus landmark geometry) and ``facenet``
  (InceptionResnetV1 embeddings from local weights) — ``sdme.features.vision``; ``clip`` and
  ``vit`` (CLIP / ViT image encoders from local weights on the same MTCNN face crops) —
  ``sdme.features.image``.

Pretrained weights are never downloaded: they are read from a local folder or the Hugging Face
cache (``sdme.features.pretrained``), and their provenance records a hash of the model's
configuration and weights.

**Adding an extractor is adding one file** ``sdme/features/<name>.py`` (found by registry
discovery, or by a third-party package through the ``sdme.extractors`` entry-point group)::

    @dataclass(frozen=True)
    class MyParams:                         # typed parameters, their defaults, their checks
        n_bins: int = 32

    def fixture(workdir: Path) -> dict[str, Any]:
        return {}                           # parameters for an offline run (tiny local weights)

    @register_extractor("audio", "mine", params=MyParams, fixture=fixture)
    class MyExtractor(Extractor):
        def __init__(self, params: MyParams | None = None, device: str = "cpu") -> None:
            ...                             # set self.info = ExtractorInfo(...)
        def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray: ...

The contract test (``tests/test_extractors.py``) then runs it on a real sample clip (shape
``[T, dim]``, float32, finite, ``dim == info.dim``, provenance), skipping it with a reason when
a module it ``requires`` is not installed.

An extractor made by :func:`create_extractor` keeps the parameters it was made with
(``extractor.options``, its parameter dataclass as JSON); ``sdme build`` records them beside
``info`` in ``build_info.json``, and :func:`recreate_extractor` makes the same extractor again
from that record (what a trained model needs to decode a new clip the way its training data was
decoded), checking that the result has the recorded fingerprint.

Models are loaded lazily, once per extractor object, on the first ``extract`` call, or at once
by ``load()`` (what the build's workers do before their first clip, so that loading is timed
apart from extraction); importing this package loads nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdme.config import from_mapping
from sdme.media import CLIP_ERROR_REASONS, ClipError
from sdme.registry import Entry, Registry
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

    Subclasses take ``(params, device="cpu")`` (their registered parameter dataclass; None:
    its defaults), set ``info`` in ``__init__`` and implement ``extract``. Heavy models are
    loaded lazily on first use, so constructing an extractor is cheap and picklable; an
    extractor with models overrides ``load`` to load them on demand.
    """

    info: ExtractorInfo
    device: str = "cpu"
    #: The parameters it was created with, as JSON (set by :func:`create_extractor`).
    options: dict[str, Any] | None = None

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

    def load(self) -> Extractor:
        """Loads the models and imports the libraries ``extract`` needs, now rather than on
        the first clip (default: nothing to load). Idempotent."""
        return self

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
Fixture = Callable[[Path], dict[str, Any]]


@dataclass(frozen=True)
class NoParams:
    """The parameters of an extractor that takes none."""


#: One registry per modality (``EXTRACTORS["audio"].names()``), all discovering this package.
EXTRACTORS: dict[str, Registry[ExtractorFactory]] = {
    m: Registry(f"{m} extractor", packages=[__name__], entry_point_group="sdme.extractors")
    for m in MODALITIES}


def _registry(modality: str) -> Registry[ExtractorFactory]:
    if modality not in EXTRACTORS:
        raise KeyError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
    return EXTRACTORS[modality]


def register_extractor(modality: str, name: str, *, params: type = NoParams,
                       fixture: Fixture | None = None, requires: Sequence[str] = (),
                       **meta: Any) -> Callable[[ExtractorFactory], ExtractorFactory]:
    """Decorator registering ``factory(params, device="cpu") -> Extractor`` as ``modality/name``.

    Args:
        modality: ``"text"``, ``"audio"`` or ``"vision"``.
        name: Extractor name.
        params: Dataclass of its parameters.
        fixture: ``fixture(workdir) -> params`` for an offline run (e.g. tiny local weights
            written under ``workdir``); default: no parameters.
        requires: Modules it needs beyond sdme's dependencies (the contract test skips it,
            saying so, when one is missing).
        **meta: Anything else to keep with the entry.

    Raises:
        KeyError: Unknown modality.
        sdme.registry.RegistryError: The name is taken by another factory.
    """
    registry = _registry(modality)
    if not dataclasses.is_dataclass(params):
        raise TypeError(f"extractor {modality}/{name}: params must be a dataclass")

    def wrap(factory: ExtractorFactory) -> ExtractorFactory:
        return registry.register(name, factory, modality=modality, params=params,
                                 fixture=fixture or (lambda _workdir: {}),
                                 requires=tuple(requires), **meta)

    return wrap


def list_extractors(modality: str | None = None) -> dict[str, list[str]]:
    """Registered extractor names per modality (one modality when given)."""
    if modality is not None:
        return {modality: _registry(modality).names()}
    return {m: registry.names() for m, registry in EXTRACTORS.items()}


def extractor_entries() -> list[Entry[ExtractorFactory]]:
    """Every registered extractor (``entry.meta["modality"]``, ``entry.name``), by modality."""
    return [entry for registry in EXTRACTORS.values() for entry in registry.entries()]


def create_extractor(modality: str, name: str | None = None, *, device: str = "cpu",
                     **params: Any) -> Extractor:
    """Builds a registered extractor.

    Args:
        modality: ``"text"``, ``"audio"`` or ``"vision"``.
        name: Registered name; ``None`` picks ``DEFAULTS[modality]``.
        device: Where its models run (``"cpu"``, ``"cuda"``, ...).
        **params: The extractor's parameters (its ``params`` dataclass's fields).

    Raises:
        KeyError: Unknown modality or name (``RegistryError``, with a close-match suggestion).
        sdme.config.ConfigError: An unknown parameter (with a close match) or a bad value.
    """
    registry = _registry(modality)
    entry = registry.entry(name or DEFAULTS[modality])
    config = from_mapping(entry.meta["params"], params,
                          what=f"{modality} extractor {entry.name!r}")
    extractor = entry.obj(config, device=device)
    extractor.options = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return extractor


class ProvenanceMismatch(ValueError):
    """A re-created extractor does not have the fingerprint its provenance record names."""


def recreate_extractor(modality: str, record: Any, *, device: str = "cpu",
                       overrides: Mapping[str, Any] | None = None,
                       check: bool = True) -> Extractor:
    """The extractor a provenance record (``sdme.built.ExtractorRecord``) describes, made again.

    The record's ``options`` (the parameters the build created it with) are used when present;
    records written before ``options`` existed give the ``params`` that are also parameters of
    the extractor. ``overrides`` win over both (e.g. a model folder that lives elsewhere on this
    machine).

    Args:
        modality: ``"text"``, ``"audio"`` or ``"vision"``.
        record: An ``ExtractorRecord`` (``name``, ``version``, ``params``, ``fingerprint``,
            ``options``).
        device: Where its models run.
        overrides: Parameters to change.
        check: Raise :class:`ProvenanceMismatch` when the result's fingerprint differs from the
            record's (features would not match the ones the record describes).

    Raises:
        KeyError: The record names no registered extractor (features made outside ``sdme
            build``, e.g. a source's released features).
        sdme.config.ConfigError: A bad parameter.
        ProvenanceMismatch: With ``check``: the version or the resolved parameters differ; the
            message names them.
        FileNotFoundError, ImportError: What creating the extractor raises (weights or a module
            missing).
    """
    from sdme.config import field_hints

    entry = _registry(modality).entry(record.name)
    options = getattr(record, "options", None)
    if options is None:
        known = field_hints(entry.meta["params"])
        options = {k: v for k, v in (record.params or {}).items() if k in known}
    extractor = create_extractor(modality, record.name, device=device,
                                 **{**options, **dict(overrides or {})})
    if check and extractor.info.fingerprint() != record.fingerprint:
        info = extractor.info
        changed = [f"version {record.version} -> {info.version}"] \
            if str(record.version) != str(info.version) else []
        keys = sorted(set(record.params or {}) | set(info.params))
        changed += [f"{k}: {(record.params or {}).get(k)!r} -> {info.params.get(k)!r}"
                    for k in keys if (record.params or {}).get(k) != info.params.get(k)]
        raise ProvenanceMismatch(
            f"the {modality} extractor {record.name!r} made here differs from the recorded one "
            f"({'; '.join(changed) or 'dimension or modality'}): its features would not match")
    return extractor


__all__ = [
    "CLIP_ERROR_REASONS",
    "DEFAULTS",
    "EXTRACTORS",
    "ClipError",
    "Extractor",
    "ExtractorInfo",
    "NoParams",
    "ProvenanceMismatch",
    "create_extractor",
    "extractor_entries",
    "list_extractors",
    "recreate_extractor",
    "register_extractor",
]
