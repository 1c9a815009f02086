"""Trained models in the Hugging Face format: ``model.safetensors``, ``config.json``, ``README.md``.

Every :class:`~baselines.models.base.EmotionModel` is a ``huggingface_hub.PyTorchModelHubMixin``
(https://huggingface.co/docs/huggingface_hub/guides/integrations), so the library writes and reads
a checkpoint folder, and uploads it where a user has network::

    model.save_pretrained("runs/mren")                      # what fit(out_dir=...) writes
    model = EmotionModel.from_pretrained("runs/mren")       # the right class, from the registry
    model.push_to_hub("me/mren-sample")                     # same files, on the Hub

The weights are the model's ``state_dict`` in safetensors (buffers included: MREN's prototypes,
Self-MM's class centres). ``config.json`` is what this module writes and reads:

- ``model_name`` and ``model_config``: the registered name and its resolved options, from which
  ``baselines.create_model`` rebuilds the model before the weights are loaded;
- ``task`` (:class:`TaskInfo`): discrete or continuous, class names, modalities and input sizes,
  the benchmark task where there is one, and ``dataset`` (:class:`DatasetProvenance`): the
  training data's source and, per modality, the extractor records of its ``build_info.json``
  (name, version, resolved parameters, creation options, fingerprint) — what ``python -m
  baselines predict`` re-creates to decode a new clip the way the training clips were decoded;
- ``training``: the selected epoch, its validation metrics and the train config.

The model card (``README.md``) says the same in words, with the YAML metadata the Hub reads.
:func:`save_checkpoint` writes a folder (each file atomically; ``fit`` calls it) and
:func:`load_checkpoint` reads one, or a checkpoint of the earlier format (a ``torch.save``
payload named ``best.pt``, which records no class names or provenance).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdme.built import BuildInfo, ExtractorRecord
from sdme.config import ConfigError, from_mapping, to_dict

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

    from baselines.models.base import EmotionModel

MODEL_FORMAT = "sdme-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
#: The earlier checkpoint format (a ``torch.save`` payload), still read by load_checkpoint.
CHECKPOINT_FORMAT = "sdme-baselines-checkpoint"
CHECKPOINT_VERSION = 1
LEGACY_CHECKPOINT_NAME = "best.pt"


class CheckpointError(ValueError):
    """A checkpoint that is absent, not in the SDME format, or whose weights do not fit."""


# ----------------------------------------------------------------------------- what a model knows


@dataclass
class DatasetProvenance:
    """What a model knows of its training data: where it came from and how it was decoded.

    Attributes:
        name: Corpus name.
        version: Corpus version.
        source_fingerprint: sha256 of the exact input (``build_info.json``'s source).
        sdme_version: Toolkit version that built it.
        extractors: Per modality, the extractor record (``sdme.built.ExtractorRecord``).
        languages: Transcript languages.
        fingerprint: The benchmark's dataset fingerprint, where the model was trained by it.
    """

    name: str
    version: str
    source_fingerprint: str
    sdme_version: str
    extractors: dict[str, ExtractorRecord]
    languages: list[str] = field(default_factory=list)
    fingerprint: str | None = None

    @classmethod
    def from_build_info(cls, info: BuildInfo, fingerprint: str | None = None
                        ) -> DatasetProvenance:
        """The provenance of a built dataset (its ``BuildInfo``)."""
        return cls(name=info.source.name, version=info.source.version,
                   source_fingerprint=info.source.fingerprint, sdme_version=info.sdme_version,
                   extractors=dict(info.extractors), languages=list(info.languages),
                   fingerprint=fingerprint)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> DatasetProvenance:
        """The provenance of the built dataset in ``folder`` (its ``build_info.json``).

        Raises:
            sdme.built.BuildInfoError: No valid ``build_info.json`` there.
        """
        return cls.from_build_info(BuildInfo.load(folder))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["extractors"] = {m: {k: v for k, v in dataclasses.asdict(e).items() if v is not None}
                             for m, e in self.extractors.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetProvenance:
        values = dict(data)
        values["extractors"] = {m: from_mapping(ExtractorRecord, e, what=f"extractors.{m}")
                                for m, e in dict(values.get("extractors") or {}).items()}
        return from_mapping(cls, values, what="dataset")


@dataclass
class TaskInfo:
    """What a trained model predicts and from what.

    Attributes:
        task: ``"discrete"`` (class logits) or ``"continuous"`` (one score).
        modalities: The modalities the model reads, in order.
        input_dims: Feature size per modality.
        class_names: The classes in logit order (discrete; None when not known).
        target: The dataset column it was trained on.
        name: The benchmark task (``name@version``), where it was trained by one.
        dataset: The training data's provenance (None when not known).
    """

    task: str
    modalities: list[str]
    input_dims: dict[str, int]
    class_names: list[str] | None = None
    target: str = "label"
    name: str | None = None
    dataset: DatasetProvenance | None = None

    @classmethod
    def for_model(cls, model: EmotionModel, *, dataset: Any = None,
                  class_names: list[str] | None = None, target: str = "label",
                  name: str | None = None) -> TaskInfo:
        """The task of ``model`` (its config's task, modalities and sizes), trained on
        ``dataset``.

        Args:
            model: The model.
            dataset: A built dataset folder, its ``BuildInfo`` or a :class:`DatasetProvenance`
                (None: unknown); gives the class names when ``class_names`` is None.
            class_names: The classes in logit order.
            target: The column trained on.
            name: The benchmark task.

        Raises:
            ValueError: The class names do not match the model's number of classes.
        """
        if isinstance(dataset, BuildInfo):
            if class_names is None and model.config.task == "discrete":
                class_names = list(dataset.taxonomy)
            dataset = DatasetProvenance.from_build_info(dataset)
        elif dataset is not None and not isinstance(dataset, DatasetProvenance):
            info = BuildInfo.load(dataset)
            if class_names is None and model.config.task == "discrete":
                class_names = list(info.taxonomy)
            dataset = DatasetProvenance.from_build_info(info)
        config = model.config
        if config.task != "discrete":
            class_names = None
        elif class_names is not None and len(class_names) != config.num_classes:
            raise ValueError(f"{len(class_names)} class names for a model with "
                             f"{config.num_classes} classes")
        dims = {m: int(d) for m, d in config.input_dims.items()}
        return cls(task=config.task, modalities=list(dims), input_dims=dims,
                   class_names=list(class_names) if class_names is not None else None,
                   target=target, name=name, dataset=dataset)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["dataset"] = self.dataset.to_dict() if self.dataset is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskInfo:
        values = dict(data)
        if values.get("dataset") is not None:
            values["dataset"] = DatasetProvenance.from_dict(values["dataset"])
        return from_mapping(cls, values, what="task")


# ----------------------------------------------------------------------------- config.json


def checkpoint_config(model: EmotionModel) -> dict[str, Any]:
    """The ``config.json`` of ``model``: see the module docstring.

    Raises:
        ValueError: The model has no registered name (build it with ``create_model``).
    """
    import sdme

    name = getattr(model, "model_name", None)
    if not name:
        raise ValueError("the model has no registered name (model.model_name): build it with "
                         "baselines.create_model so that a checkpoint can rebuild it")
    task = getattr(model, "task_info", None) or TaskInfo.for_model(model)
    return {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
            "sdme_version": sdme.__version__, "model_name": name,
            "model_config": to_dict(model.config), "task": task.to_dict(),
            "training": _jsonable(getattr(model, "fit_summary", None) or {})}


def parse_checkpoint_config(config: Any, source: str) -> tuple[str, dict[str, Any], TaskInfo,
                                                                  dict[str, Any]]:
    """``(model_name, model_config, task, training)`` from a ``config.json``.

    Raises:
        CheckpointError: Not an SDME model config, another format version, or a bad field (the
            message names ``source``).
    """
    if not isinstance(config, Mapping) or config.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{source}: not an SDME model checkpoint (config.json has no "
                              f"'format': {MODEL_FORMAT!r})")
    if config.get("format_version") != MODEL_FORMAT_VERSION:
        raise CheckpointError(f"{source}: checkpoint format version "
                              f"{config.get('format_version')!r} is not supported (expected "
                              f"{MODEL_FORMAT_VERSION}); update sdme")
    try:
        task = TaskInfo.from_dict(config["task"])
        return (str(config["model_name"]), dict(config["model_config"]), task,
                dict(config.get("training") or {}))
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{source}: bad config.json ({exc})") from None


# ----------------------------------------------------------------------------- writing and reading


def write_checkpoint(model: EmotionModel, out_dir: str | os.PathLike) -> Path:
    """Writes ``model.save_pretrained`` into ``out_dir``, each file replaced atomically.

    The files are written to a staging folder inside ``out_dir`` first, so a reader never sees
    a half-written file, and the model card is rewritten each time (``save_pretrained`` keeps
    an existing one).

    Returns:
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as tmp:
        model.save_pretrained(tmp)
        for path in sorted(Path(tmp).iterdir(), key=lambda p: p.name == WEIGHTS_NAME):
            os.replace(path, out_dir / path.name)
    return out_dir


def load_pretrained(cls: type[EmotionModel], model_id: str, config: Any, *,
                    map_location: str = "cpu", strict: bool = True,
                    **hub: Any) -> EmotionModel:
    """What ``EmotionModel.from_pretrained`` does once the mixin has read ``config.json``:
    rebuilds the registered model and loads the safetensors weights with the mixin's loader.

    Args:
        cls: The class ``from_pretrained`` was called on; the model must be one.
        model_id: A local folder or a Hub id.
        config: The parsed ``config.json`` (None when there was none).
        map_location: Device of the loaded weights.
        strict: Every weight must match (on by default: a missing one is an error).
        **hub: ``revision``, ``cache_dir``, ``token``... for ``hf_hub_download``.

    Raises:
        CheckpointError: No or a bad ``config.json``, no weights, weights that do not fit, or a
            model of another class than ``cls``.
    """
    from baselines.models.base import create_model

    if config is None:
        raise CheckpointError(f"{model_id}: no {CONFIG_NAME}: not an SDME model checkpoint")
    name, options, task, training = parse_checkpoint_config(config, model_id)
    try:
        model = create_model(name, **options)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{model_id}: cannot rebuild model {name!r}: {exc}") from None
    if not isinstance(model, cls):
        raise CheckpointError(f"{model_id}: holds a {name!r} model ({type(model).__name__}), "
                              f"not a {cls.__name__}; load it with EmotionModel.from_pretrained")
    if os.path.isdir(model_id):
        weights = os.path.join(model_id, WEIGHTS_NAME)
        if not os.path.isfile(weights):
            raise CheckpointError(f"{model_id}: no {WEIGHTS_NAME} beside config.json")
    else:
        from huggingface_hub import hf_hub_download

        weights = hf_hub_download(repo_id=model_id, filename=WEIGHTS_NAME, **hub)
    try:
        cls._load_as_safetensor(model, weights, map_location, strict)
    except (RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{weights}: the weights do not fit model {name!r} ({first})") \
            from None
    model.model_name = name
    model.task_info = task
    model.fit_summary = training
    return model


# ----------------------------------------------------------------------------- checkpoint files


def save_checkpoint(out_dir: str | os.PathLike, model: EmotionModel,
                    model_name: str | None = None, config: Any = None,
                    epoch: int | None = None, metrics: Mapping[str, float] | None = None,
                    task_info: TaskInfo | None = None) -> Path:
    """Writes ``model`` as a Hugging Face-format checkpoint folder (``model.safetensors``,
    ``config.json``, ``README.md``; see ``baselines.checkpoint``), each file atomically.

    Args:
        out_dir: The checkpoint folder.
        model: The model (its ``model_name`` is used unless ``model_name`` is given).
        model_name: Its registered name.
        config: The train config (``baselines.train.TrainConfig``), recorded with the epoch and
            metrics.
        epoch: The epoch of these weights.
        metrics: Their validation metrics.
        task_info: What it predicts and from what data (default: ``model.task_info``, else what
            its config says).

    Returns:
        ``out_dir``, which ``EmotionModel.from_pretrained`` and :func:`load_checkpoint` read.
    """
    if model_name:
        model.model_name = model_name
    if task_info is not None:
        model.task_info = task_info
    summary: dict[str, object] = {"epoch": epoch, "metrics": dict(metrics or {})}
    if config is not None:
        summary["train_config"] = {k: v for k, v in config.to_dict().items() if k != "out_dir"}
    model.fit_summary = {**(model.fit_summary or {}), **summary}
    return write_checkpoint(model, out_dir)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The raw payload of a checkpoint in the earlier format (``best.pt``, a ``torch.save``
    dict), unpickled weights-only and checked for format.

    Raises:
        ValueError: if the file is not an SDME baselines checkpoint.
    """
    import torch

    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # re-raised with the file name
        raise ValueError(f"{path}: cannot read checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an SDME baselines checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {payload.get('version')} is not supported "
                         f"(expected {CHECKPOINT_VERSION})")
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> EmotionModel:
    """Loads a trained model in eval mode, with its registered name as ``model.model_name``.

    Args:
        path: A Hugging Face-format checkpoint folder (what :func:`fit` and ``benchmark run``
            write; read by ``EmotionModel.from_pretrained``), or a checkpoint of the earlier
            format: a ``best.pt`` file or a folder holding one (rebuilt with
            ``baselines.create_model``; it records no class names or data provenance).
        map_location: Device of the loaded weights.

    Raises:
        FileNotFoundError: No checkpoint at ``path``.
        ValueError: Not an SDME checkpoint, or weights that do not fit (the message names the
            file).
    """
    from baselines.models.base import EmotionModel, create_model

    path = Path(path)
    if path.is_dir():
        if (path / CONFIG_NAME).is_file():
            return EmotionModel.from_pretrained(path, map_location=str(map_location)).eval()
        if not (path / LEGACY_CHECKPOINT_NAME).is_file():
            raise FileNotFoundError(f"{path}: no checkpoint here (neither config.json + "
                                    f"model.safetensors nor {LEGACY_CHECKPOINT_NAME})")
        path = path / LEGACY_CHECKPOINT_NAME
    elif not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file or folder")
    payload = read_checkpoint(path, map_location)
    model = create_model(payload["model_name"], **payload["model_config"])
    model.load_state_dict(payload["state_dict"])
    model.model_name = payload["model_name"]
    model.fit_summary = {"epoch": payload.get("epoch"), "metrics": payload.get("metrics") or {},
                         "train_config": payload.get("train_config")}
    return model.eval()


# ----------------------------------------------------------------------------- the model card


def model_card(model: EmotionModel) -> ModelCard:
    """The model card of ``model`` (``README.md``): YAML metadata for the Hub and a description
    of what it predicts, from what, how it was trained, and how to use it."""
    from huggingface_hub import ModelCard, ModelCardData

    from baselines.models.base import MODELS

    config = checkpoint_config(model)
    name = config["model_name"]
    task = TaskInfo.from_dict(config["task"])
    training = config["training"]
    dataset = task.dataset
    try:
        description = MODELS.meta(name).get("description") or ""
    except KeyError:
        description = ""
    data = ModelCardData(library_name="sdme", pipeline_tag="video-classification",
                         tags=sorted({"sdme", "emotion-recognition", "multimodal", name}),
                         language=(dataset.languages or None) if dataset else None)
    title = f"{name}" + (f" trained on {dataset.name} {dataset.version}" if dataset else "")
    if task.task == "discrete":
        classes = ", ".join(task.class_names) if task.class_names else \
            f"{model.config.num_classes} (names not recorded)"
        what = f"emotion classification; classes: {classes}"
    else:
        what = f"a continuous score ({task.target})"
    lines = [
        f"# {title}", "",
        f"An SDME `{name}` model (the `baselines` package of the SDME toolkit)"
        + (f": {description}" if description else "."),
        "", f"- **Predicts**: {what}.",
        "- **Reads**: " + ", ".join(f"{m} ({task.input_dims[m]}-d)" for m in task.modalities)
        + ".",
    ]
    if task.name:
        lines.append(f"- **Benchmark task**: `{task.name}`.")
    if dataset is not None:
        lines.append(f"- **Training data**: {dataset.name} {dataset.version} (source "
                     f"fingerprint `{dataset.source_fingerprint[:12]}`), built with sdme "
                     f"{dataset.sdme_version}" + (f"; dataset fingerprint "
                                                   f"`{dataset.fingerprint[:12]}`"
                                                   if dataset.fingerprint else "") + ".")
        lines += ["", "## Features", "",
                  "A new clip must be decoded the way the training clips were; `predict` "
                  "re-creates these extractors from this file's `config.json`:", "",
                  "| modality | extractor | dim | fingerprint |", "|---|---|---|---|"]
        lines += [f"| {m} | `{e.name}` v{e.version} | {e.dim} | `{e.fingerprint[:12]}` |"
                  for m, e in dataset.extractors.items()]
    else:
        lines.append("- **Training data**: not recorded (predict needs `--dataset`, the built "
                     "dataset it was trained on).")
    if training:
        lines += ["", "## Training", ""]
        if "epoch" in training:
            lines.append(f"Selected epoch {training['epoch']}"
                         + (f" on validation {training['select_metric']} "
                            f"{training['score']:.4f}" if training.get("score") is not None
                            else "") + ".")
        metrics = training.get("metrics") or {}
        if metrics:
            lines.append("Validation metrics at that epoch: " + ", ".join(
                f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float))) + ".")
        if training.get("train_config"):
            lines += ["", "```json", json.dumps(training["train_config"], indent=1), "```"]
    lines += ["", "## Use", "", "```bash",
              "python -m baselines predict PATH_TO_THIS_FOLDER clip.mp4 --text \"what is said\"",
              "```", "", "```python", "from baselines import EmotionModel", "",
              "model = EmotionModel.from_pretrained(\"PATH_TO_THIS_FOLDER\")", "```", "",
              "## Limitations", "",
              "The model knows only its training data's speakers, recording conditions, "
              "language and label scheme; scores on other data are not known. A model trained "
              "on the bundled SDME sample corpus (synthetic labels) says nothing about emotion "
              "recognition by people.", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _jsonable(value: Any) -> Any:
    """Plain JSON types; non-finite floats (a NaN metric) become None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


__all__ = ["CARD_NAME", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CONFIG_NAME",
           "LEGACY_CHECKPOINT_NAME", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "WEIGHTS_NAME",
           "CheckpointError", "DatasetProvenance", "TaskInfo", "checkpoint_config",
           "load_checkpoint", "load_pretrained", "model_card",
           "parse_checkpoint_config", "read_checkpoint", "save_checkpoint", "write_checkpoint"]
