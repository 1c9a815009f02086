"""Local pretrained weights for extractors: finding them, and what their provenance records.

The extractors that run a pretrained network (the ``hf`` text encoder, the speech encoders of
``sdme.features.speech``, the image encoders of ``sdme.features.image``) load it with
``transformers``' ``from_pretrained(..., local_files_only=True)`` from a local folder or from the
Hugging Face cache (https://huggingface.co/docs/huggingface_hub/guides/manage-cache); a build
never downloads. :func:`resolve_local_model` finds the weights, or says which option to set and
how to fetch them on a machine with network.

:func:`model_hashes` is what such an extractor records in its provenance (``ExtractorInfo.params``,
hence its fingerprint and the build's feature cache key): the sha256 of the model's
``config.json`` and of its preprocessing configuration (canonical JSON, without the
``transformers_version`` stamp), of its preprocessing files (tokenizer, feature extractor or
image processor) and of its weight files. In the Hugging Face cache a weight file
is a link to a blob named by its own sha256, so hashing is free there; in a plain folder the files
are read once (about a second per GB).

:class:`LocalModel` is the part those extractors share: the model found and described when the
extractor is made (its config read, nothing heavy loaded), the network and its processor loaded on
first use, and left out when the extractor is pickled for a worker process.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
#: Files that configure a model's input processing (image processor, feature extractor,
#: tokenizer), hashed together as ``preprocessor_sha256``.
PREPROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "tokenizer.json",
                      "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                      "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spiece.model",
                      "spm.model")
_VOLATILE_KEYS = frozenset({"transformers_version", "_name_or_path"})


def missing_model_message(extractor: str, option: str = "model") -> str:
    """The message of an extractor that was given no weights: names the option to set."""
    modality, _, name = extractor.partition("/")
    return (f"the {name!r} {modality} extractor needs local weights: set {option}=<local "
            f"folder or cached Hugging Face id> (sdme build: --param {modality}.{option}=PATH)")


def resolve_local_model(name_or_path: str, revision: str | None = None, *,
                        option: str = "model") -> tuple[str, str | None]:
    """Finds a Hugging Face model locally: a folder, or a snapshot in the hub cache.

    Args:
        name_or_path: A local folder or a Hub id.
        revision: A cached revision of a Hub id (default: the cache's ``main``).
        option: The extractor parameter that names the model (for the message).

    Returns:
        ``(path_or_id, commit)``: what to pass to ``from_pretrained(..., local_files_only=True)``
        and the cached snapshot's commit hash (None for a plain folder).

    Raises:
        FileNotFoundError: The model is not available on this machine; the message says how to
            get it and which option to set.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a Hugging Face model folder (no config.json); "
                                    f"set {option}= to a folder written by save_pretrained")
        return str(path), None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
    except Exception:  # invalid repo id and the like
        cached = None
    if isinstance(cached, str):
        snapshot = Path(cached).parent
        return str(snapshot), snapshot.name
    raise FileNotFoundError(
        f"{name_or_path}: Hugging Face model not found locally (neither a folder nor in the "
        f"Hugging Face cache) and builds never download. On a machine with network run "
        f"`hf download {name_or_path}` (huggingface_hub's CLI; copy ~/.cache/huggingface here "
        f"if needed), or pass a local folder as {option}=..."
    )


def display_name(name_or_path: str) -> str:
    """What provenance shows of a model: a folder's name (machine paths stay out of the
    fingerprint), or the Hub id."""
    path = Path(str(name_or_path)).expanduser()
    return path.name if path.is_dir() else str(name_or_path)


def _json_sha256(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in _VOLATILE_KEYS}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    """sha256 of a file; a Hugging Face cache blob's name already is its sha256 (LFS files)."""
    target = path.resolve()
    if path.is_symlink() and target.parent.name == "blobs" and len(target.name) == 64:
        try:
            int(target.name, 16)
            return target.name
        except ValueError:
            pass
    digest = hashlib.sha256()
    with open(target, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_hashes(location: str | Path) -> dict[str, Any]:
    """What identifies a local model: hashes of its configuration, preprocessing and weights.

    Args:
        location: The model folder (a plain folder or a cache snapshot).

    Returns:
        ``config_sha256`` (``config.json``), ``preprocessor_sha256`` (over the
        :data:`PREPROCESSOR_FILES` it has; None when it has none) and ``weights_sha256`` (over
        the weight files' names and sha256; None when it has none).
    """
    folder = Path(location)

    def combined(paths: list[Path]) -> str | None:
        if not paths:
            return None
        digest = hashlib.sha256()
        for path in sorted(paths):
            value = _json_sha256(path) if path.suffix == ".json" else _file_sha256(path)
            digest.update(f"{path.name}\0{value}\n".encode())
        return digest.hexdigest()

    weights = [p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    return {"config_sha256": _json_sha256(folder / "config.json"),
            "preprocessor_sha256": combined([folder / n for n in PREPROCESSOR_FILES
                                             if (folder / n).is_file()]),
            "weights_sha256": combined(weights)}


class LocalModel:
    """A local ``transformers`` model: described now, loaded on first use.

    Args:
        name_or_path: Local folder or cached Hub id (None or empty: an error naming ``option``).
        revision: Cached revision of a Hub id.
        extractor: ``"modality/name"`` of the extractor using it (for messages).
        option: The extractor parameter that names the model.
        model_types: ``config.model_type`` values the extractor takes (None: any).
        processor: ``"feature_extractor"`` (audio), ``"image_processor"`` (images) or None.

    Raises:
        ValueError: No model given, or a model of another type.
        FileNotFoundError: The model is not on this machine (see :func:`resolve_local_model`).
    """

    def __init__(self, name_or_path: str | None, revision: str | None = None, *,
                 extractor: str, option: str = "model",
                 model_types: tuple[str, ...] | None = None,
                 processor: str | None = None) -> None:
        if not name_or_path:
            raise ValueError(missing_model_message(extractor, option))
        from transformers import AutoConfig

        self.location, self.commit = resolve_local_model(str(name_or_path), revision,
                                                         option=option)
        self.config = AutoConfig.from_pretrained(self.location, local_files_only=True)
        if model_types is not None and self.config.model_type not in model_types:
            raise ValueError(f"{name_or_path}: a {self.config.model_type!r} model; the "
                             f"{extractor!r} extractor takes {', '.join(model_types)}")
        if processor is not None and not any((Path(self.location) / name).is_file()
                                             for name in PREPROCESSOR_FILES[:2]):
            raise FileNotFoundError(f"{self.location}: no preprocessor_config.json (the model's "
                                    f"{processor.replace('_', ' ')} settings); save it beside "
                                    f"the weights with its save_pretrained")
        self.name = display_name(str(name_or_path))
        self.hashes = model_hashes(self.location)
        self.processor_kind = processor
        self.device = "cpu"
        self._model: Any = None
        self._processor: Any = None

    def provenance(self) -> dict[str, Any]:
        """What the extractor's ``info.params`` records of the model."""
        return {"model": self.name, "commit": self.commit, "model_type": self.config.model_type,
                **self.hashes}

    @property
    def model(self) -> Any:
        """The network (``AutoModel``), in eval mode on :attr:`device`."""
        if self._model is None:
            from transformers import AutoModel

            self._model = AutoModel.from_pretrained(self.location, local_files_only=True) \
                .eval().to(self.device)
        return self._model

    @property
    def processor(self) -> Any:
        """Its ``AutoFeatureExtractor`` or ``AutoImageProcessor``."""
        if self._processor is None:
            import transformers

            kind = {"feature_extractor": transformers.AutoFeatureExtractor,
                    "image_processor": transformers.AutoImageProcessor}[self.processor_kind]
            self._processor = kind.from_pretrained(self.location, local_files_only=True)
        return self._processor

    def load(self) -> LocalModel:
        """Loads the network and its preprocessor now rather than on first use."""
        self.model  # noqa: B018 - loads it
        if self.processor_kind is not None:
            self.processor  # noqa: B018 - loads it
        return self

    def to(self, device: str) -> LocalModel:
        self.device = str(device)
        if self._model is not None:
            self._model.to(self.device)
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = state["_processor"] = None
        return state


__all__ = ["PREPROCESSOR_FILES", "WEIGHT_SUFFIXES", "LocalModel", "display_name",
           "missing_model_message", "model_hashes", "resolve_local_model"]
