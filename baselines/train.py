"""The one trainer of ``baselines``: fit, evaluate and predict any registered model.

Model-specific behaviour reaches the trainer only through the hooks of
:class:`~baselines.models.base.EmotionModel` (``task_loss``, ``extra_losses``, ``param_groups``,
``on_epoch_start``); the trainer never looks at a model's name.

Data is any of: a Hugging Face ``datasets.Dataset`` / ``IterableDataset`` (read with
``with_format("numpy")`` through a ``DataLoader``, so rows stream from Arrow rather than being
loaded into memory), a torch ``Dataset``/``IterableDataset`` or list of rows, or a re-iterable of
rows; rows are collated by :class:`baselines.data.Collator` (see ``baselines.data`` for the row
format). A ``DataLoader`` whose ``collate_fn`` yields :class:`Batch` is used as given.

Checkpoint selection and early stopping use the validation split only, on ``select_metric``
(``accuracy``, ``macro_f1``, ``weighted_f1`` or ``loss`` for discrete tasks; ``mae``, ``corr`` or
``loss`` for continuous ones). On CUDA the trainer uses autocast (bf16 where supported, else fp16
with a gradient scaler), pinned memory and non-blocking copies; on CPU it runs in float32 with
deterministic algorithms, so the same seed gives the same numbers. Progress is tqdm bars on a
terminal and one line per epoch otherwise (``TrainConfig.progress``).

:func:`predict_variants` predicts several variants of each batch from one read of the data (the
benchmark's robustness conditions). The module is over 600 lines because it is the one trainer:
options, loaders, selection metrics, prediction, checkpoints and the loop are kept together.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, IterableDataset

from baselines.checkpoint import (  # noqa: F401 - checkpoints are read and written from here too
    TaskInfo,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    write_checkpoint,
)
from baselines.data import Collator
from baselines.models.base import Batch, EmotionModel
from baselines.models.blocks import reuse_encodings
from sdme.config import ConfigError, from_mapping, read_yaml_mapping, to_dict
from sdme.device import resolve_device
from sdme.fileio import atomic_write_text
from sdme.loading import Ahead
from sdme.metrics import metric_info

CONFIG_NAME = "config.yaml"
HISTORY_NAME = "history.json"

#: metric name -> True when higher is better.
SELECT_METRICS: dict[str, dict[str, bool]] = {
    "discrete": {"accuracy": True, "macro_f1": True, "weighted_f1": True, "loss": False},
    "continuous": {"mae": False, "corr": True, "loss": False},
}
DEFAULT_METRIC = {"discrete": "accuracy", "continuous": "mae"}


# ----------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Training options (all have defaults; YAML files and overrides set a subset).

    Attributes:
        lr: learning rate (AdamW).
        weight_decay: AdamW weight decay.
        epochs: maximum training epochs.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size (default: ``batch_size``).
        patience: stop after this many epochs without a validation improvement (0: never).
        seed: seed of torch, numpy and random, and of the shuffling order.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: mixed precision: ``"auto"`` (bf16 on CUDA if supported, else fp16; off on CPU),
            ``"bf16"``, ``"fp16"`` (CUDA only) or ``"off"``.
        grad_clip: max gradient norm (0: no clipping).
        num_workers: DataLoader worker processes.
        select_metric: validation metric for checkpoint selection and early stopping;
            ``"auto"``: accuracy (discrete) or MAE (continuous).
        max_len: truncate each feature sequence to this many steps (None: keep all).
        out_dir: where to write the checkpoint, resolved config and history (None: nothing is
            written; the best weights are kept in memory).
        progress: show progress: tqdm bars when stderr is a terminal, else one line per epoch
            on stderr (epoch, train loss, validation score, seconds), for logs, nohup and CI.
    """

    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 30
    batch_size: int = 32
    eval_batch_size: int | None = None
    patience: int = 5
    seed: int = 0
    device: str = "auto"
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    grad_clip: float = 1.0
    num_workers: int = 0
    select_metric: str = "auto"
    max_len: int | None = None
    out_dir: str | None = None
    progress: bool = True

    def to_dict(self) -> dict[str, object]:
        return to_dict(self)


def make_config(values: Mapping[str, object] | None = None, **overrides: object) -> TrainConfig:
    """A :class:`TrainConfig` from a mapping plus keyword overrides (strings are parsed to the
    field's type, as :func:`sdme.config.from_mapping` does).

    Raises:
        ConfigError: (a ``ValueError``) an unknown option (with a close-match hint) or a value
            of the wrong type.
    """
    return _train_config({**(values or {}), **overrides})


def load_config(path: str | os.PathLike | None = None, **overrides: object) -> TrainConfig:
    """Reads a YAML train config (a mapping of :class:`TrainConfig` fields) and applies overrides.

    A file written by :func:`fit` (with ``train``, ``model`` and ``model_config`` sections) is
    accepted too; its ``train`` section is used.

    Raises:
        ConfigError: (a ``ValueError``) the file is unreadable or not a YAML mapping, or an
            unknown option or a bad value; the message names the file.
    """
    if path is None:
        return make_config(None, **overrides)
    loaded = read_yaml_mapping(path)
    values = loaded.get("train", loaded) if "model_config" in loaded else loaded
    if not isinstance(values, Mapping):
        raise ConfigError(f"{path}: section 'train' must be a mapping")
    return _train_config({**values, **overrides}, source=path)


def _train_config(values: Mapping[str, object],
                  source: str | os.PathLike | None = None) -> TrainConfig:
    return from_mapping(TrainConfig, values, what="train config",
                        source=source)


def save_config(path: str | os.PathLike, config: TrainConfig, model: EmotionModel | None = None,
                model_name: str | None = None) -> None:
    """Writes the resolved train config (and the model's name and config) as YAML, atomically."""
    doc: dict[str, object] = {"train": config.to_dict()}
    if model is not None:
        doc = {"model": model_name, "model_config": to_dict(model.config), **doc}
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False))


# ----------------------------------------------------------------------------- environment


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """Turns on ``torch.use_deterministic_algorithms`` for the block, then restores it."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(enabled or before)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for full precision."""
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("amp='fp16' needs a CUDA device; use 'bf16' or 'off' on CPU")
        return torch.float16
    raise ValueError(f"unknown amp setting {amp!r}; expected auto, bf16, fp16 or off")


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# ----------------------------------------------------------------------------- data


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class _Rows(IterableDataset):
    """A re-iterable of rows as a torch IterableDataset."""

    def __init__(self, rows: Iterable[Mapping[str, object]]) -> None:
        self.rows = rows

    def __iter__(self) -> Iterator[Mapping[str, object]]:
        return iter(self.rows)


def data_class_names(data: object) -> tuple[str, ...] | None:
    """The taxonomy of ``data``, which maps ``label_<m>`` class names to indices.

    Read from a ``class_names`` attribute (``benchmark.protocol.StreamedRows`` has one), else
    from the ``label`` ClassLabel of a Hugging Face dataset; None when neither is there.
    """
    names = getattr(data, "class_names", None)
    if names is None:
        features = getattr(data, "features", None)
        label = features.get("label") if isinstance(features, Mapping) else None
        names = getattr(label, "names", None)
    return tuple(str(n) for n in names) if names else None


def make_loader(data: object, model: EmotionModel, config: TrainConfig, train: bool,
                device: torch.device | None = None) -> Iterable[Batch]:
    """A DataLoader of :class:`Batch` over ``data`` for ``model`` (see the module docstring).

    Training loaders over map-style data shuffle with a generator seeded from ``config.seed``.
    """
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Batch):
        return [data]
    class_names = data_class_names(data)
    if class_names is None:  # a trained model knows its task's taxonomy
        info = getattr(model, "task_info", None)
        class_names = tuple(info.class_names) if getattr(info, "class_names", None) else None
    if hasattr(data, "with_format") and callable(data.with_format):  # Hugging Face datasets
        data = data.with_format("numpy")
    map_style = hasattr(data, "__getitem__") and hasattr(data, "__len__") \
        and not isinstance(data, IterableDataset)
    if not map_style and not isinstance(data, IterableDataset):
        if iter(data) is data:
            raise ValueError("training data is a one-shot iterator; pass a list, a dataset or "
                             "a re-iterable object so that each epoch can read it again")
        data = _Rows(data)
    collator = Collator(modalities=tuple(model.config.input_dims),
                        input_dims=dict(model.config.input_dims), task=model.config.task,
                        max_len=config.max_len, class_names=class_names)
    batch_size = config.batch_size if train else (config.eval_batch_size or config.batch_size)
    generator = torch.Generator().manual_seed(config.seed)
    return DataLoader(
        data, batch_size=batch_size, shuffle=train and map_style, collate_fn=collator,
        num_workers=config.num_workers, pin_memory=device is not None and device.type == "cuda",
        generator=generator, worker_init_fn=_seed_worker if config.num_workers else None,
        persistent_workers=False)


def _progress(iterable: Iterable, config: TrainConfig, desc: str) -> Iterable:
    if not config.progress or not sys.stderr.isatty():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


# ----------------------------------------------------------------------------- metrics


def selection_metrics(task: str, outputs: np.ndarray, labels: np.ndarray,
                      num_classes: int | None = None) -> dict[str, float]:
    """Validation metrics the trainer can select on, computed by the registered functions of
    ``sdme.metrics`` (the benchmark reports the same definitions) plus the loss.

    Args:
        task: ``"discrete"`` or ``"continuous"``.
        outputs: [N, C] logits or [N, 1] / [N] scores.
        labels: [N] class indices or scores.
        num_classes: discrete: the size of the taxonomy, over which macro F1 averages (default:
            the number of logit columns).
    """
    if len(labels) == 0:
        return {}
    if task == "discrete":
        logits = torch.from_numpy(np.asarray(outputs, dtype=np.float32))
        target = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        loss = float(torch.nn.functional.cross_entropy(logits, target))
        pred = np.asarray(outputs).argmax(-1)
        n = num_classes or int(np.asarray(outputs).shape[-1])
        scores = {name: metric_info(name).compute(np.asarray(labels, dtype=np.int64), pred, n)
                  for name in ("accuracy", "macro_f1", "weighted_f1")}
        return {**scores, "loss": loss}
    predicted = np.asarray(outputs, dtype=np.float64).reshape(len(labels))
    target = np.asarray(labels, dtype=np.float64)
    scores = {name: metric_info(name).compute(target, predicted) for name in ("mae", "corr")}
    return {**scores, "loss": scores["mae"]}


def resolve_select_metric(name: str, task: str) -> tuple[str, bool]:
    """(metric name, higher is better) for ``select_metric`` on ``task``."""
    if task not in SELECT_METRICS:
        raise ValueError(f"unknown task {task!r}")
    if name == "auto":
        name = DEFAULT_METRIC[task]
    if name not in SELECT_METRICS[task]:
        raise ValueError(f"select_metric {name!r} is not available for the {task} task; "
                         f"choose one of {', '.join(SELECT_METRICS[task])}")
    return name, SELECT_METRICS[task][name]


# ----------------------------------------------------------------------------- predictions


@dataclass
class Predictions:
    """Per-clip outputs of a model on a data set.

    Attributes:
        ids: clip ids, in data order.
        logits: [N, C] class logits or [N, 1] scores.
        labels: [N] reference labels, or None when the data has none.
        relevance: modality -> [N] relevance weights (models that estimate relevance).
        modality_logits: modality -> [N, C] per-modality outputs (where the model has them).
        present: modality -> [N] bool, whether the clip had the modality.
    """

    ids: list[str]
    logits: np.ndarray
    labels: np.ndarray | None = None
    relevance: dict[str, np.ndarray] = field(default_factory=dict)
    modality_logits: dict[str, np.ndarray] = field(default_factory=dict)
    present: dict[str, np.ndarray] = field(default_factory=dict)

    def predicted(self) -> np.ndarray:
        """Predicted class indices (discrete) or scores (continuous, one output column)."""
        if self.logits.shape[-1] == 1:
            return self.logits[:, 0]
        return self.logits.argmax(-1)


@dataclass
class Evaluation:
    """Metrics (see :func:`selection_metrics`) and the predictions they were computed from."""

    metrics: dict[str, float]
    predictions: Predictions


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()


class _Gathered:
    """Per-batch outputs of one :func:`predict_variants` variant, concatenated at the end."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.logits: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.relevance: dict[str, list[np.ndarray]] = {}
        self.modality_logits: dict[str, list[np.ndarray]] = {}
        self.present: dict[str, list[np.ndarray]] = {}

    def add(self, batch: Batch, out: object) -> None:
        self.ids.extend(batch.ids)
        self.logits.append(_to_numpy(out.logits))
        if batch.labels is not None:
            self.labels.append(_to_numpy(batch.labels))
        for m, w in out.relevance.items():
            self.relevance.setdefault(m, []).append(_to_numpy(w))
        for m, w in out.modality_logits.items():
            self.modality_logits.setdefault(m, []).append(_to_numpy(w))
        for m, mask in batch.masks.items():
            self.present.setdefault(m, []).append(_to_numpy(mask.any(-1)))

    def predictions(self) -> Predictions:
        if not self.logits:
            raise ValueError("no rows to predict on: the data set is empty")
        if self.labels and len(self.labels) != len(self.logits):
            raise ValueError("some batches have labels and others do not")
        return Predictions(
            ids=self.ids, logits=np.concatenate(self.logits),
            labels=np.concatenate(self.labels) if self.labels else None,
            relevance={m: np.concatenate(v) for m, v in self.relevance.items()},
            modality_logits={m: np.concatenate(v) for m, v in self.modality_logits.items()},
            present={m: np.concatenate(v) for m, v in self.present.items()})


#: Makes the variants of a batch to predict: ``(name, batch)`` pairs (see
#: :func:`predict_variants`).
BatchVariants = Callable[[Batch], Iterable[tuple[str, Batch]]]


@torch.no_grad()
def predict(model: EmotionModel, data: object, config: TrainConfig | None = None) -> Predictions:
    """Runs ``model`` in evaluation mode over ``data`` (no shuffling) and gathers its outputs."""
    return predict_variants(model, data, config, lambda batch: [("", batch)])[""]


@torch.no_grad()
def predict_variants(model: EmotionModel, data: object, config: TrainConfig | None,
                     variants: BatchVariants) -> dict[str, Predictions]:
    """Like :func:`predict`, for several variants of the data read in one pass.

    Each batch of ``data`` is read and collated once, moved to the device, and handed to
    ``variants``, which yields ``(name, batch)`` pairs (the batch itself, or perturbed
    copies of it: the benchmark's robustness conditions); the model predicts each, and the
    outputs are gathered per name. ``variants`` is called once per batch, in order (so a
    stateful one, like seeded noise, sees the batches in split order), and all the variants of
    a batch are made before the model predicts any of them: on CPU, on a background thread
    while the model predicts the previous batch. So ``variants`` must make new tensors for
    what it perturbs and never change a batch's tensors in place. Per-modality encodings are
    reused across one batch's variants where a variant hands a modality's tensors on unchanged
    (``baselines.models.blocks.reuse_encodings``). ``variants`` must yield the same names for
    every batch.

    Returns:
        Name -> predictions, in the order the names first came.

    Raises:
        ValueError: the data is empty, or the variants differ between batches.
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    amp = resolve_amp(config.amp, device)
    model.to(device)
    was_training = model.training
    model.eval()
    gathered: dict[str, _Gathered] = {}

    @torch.no_grad()
    def made(batches: Iterator[Batch]) -> Iterator[list[tuple[str, Batch]]]:
        try:
            for batch in batches:
                yield list(variants(batch.to(device, non_blocking=True)))
        finally:
            del batches  # a DataLoader's workers end with their iterator, even after an error

    batches: Any = None
    try:
        loader = make_loader(data, model, config, train=False, device=device)
        try:
            length: int | None = len(loader)  # type: ignore[arg-type]
        except TypeError:
            length = None
        made_batches = made(iter(loader))  # DataLoader workers start here, in this thread
        # On CPU the next batch is read, collated and turned into its variants (the
        # robustness conditions draw their noise there) on a thread of its own while the
        # model predicts this one; the variants are made one batch after another, in order,
        # as before. On an accelerator, whose device and streams are per thread, in line.
        batches = Ahead(made_batches, length, name="predict-ahead") \
            if device.type == "cpu" else made_batches
        for index, batch_variants in enumerate(_progress(batches, config, "predict")):
            names = []
            with reuse_encodings():  # a modality a variant leaves as it was is encoded once
                for name, variant in batch_variants:
                    with _autocast(device, amp):
                        out = model(variant)
                    gathered.setdefault(name, _Gathered()).add(variant, out)
                    names.append(name)
            del batch_variants
            if names != list(gathered) or (index and any(
                    len(g.logits) != index + 1 for g in gathered.values())):
                raise ValueError(f"batch {index}: variants {names} differ from the first "
                                 f"batch's {list(gathered)}")
    finally:
        if batches is not None:
            batches.close()
        model.train(was_training)
    if not gathered:
        raise ValueError("no rows to predict on: the data set is empty")
    return {name: g.predictions() for name, g in gathered.items()}


def evaluate(model: EmotionModel, data: object, config: TrainConfig | None = None) -> Evaluation:
    """Predicts on ``data`` and computes :func:`selection_metrics` against its labels.

    Raises:
        ValueError: if the data has no labels.
    """
    predictions = predict(model, data, config)
    if predictions.labels is None:
        raise ValueError("cannot evaluate: the data has no labels (use predict)")
    metrics = selection_metrics(model.config.task, predictions.logits, predictions.labels,
                                model.config.num_classes)
    return Evaluation(metrics=metrics, predictions=predictions)


# ----------------------------------------------------------------------------- training


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        best_epoch: epoch (0-based) of the selected weights, now loaded in the model.
        best_score: validation ``select_metric`` at that epoch (None without validation data).
        select_metric: the metric used.
        history: one dict per epoch: mean training losses (``loss``, ``task`` and each extra
            loss by name), validation metrics prefixed ``val_``, and seconds.
        checkpoint: the checkpoint folder (``out_dir``: ``model.safetensors``, ``config.json``,
            ``README.md``), if ``out_dir`` was set.
        stopped_early: whether patience ran out before ``epochs``.
    """

    best_epoch: int
    best_score: float | None
    select_metric: str
    history: list[dict[str, float]]
    checkpoint: Path | None = None
    stopped_early: bool = False


def _train_epoch(model: EmotionModel, loader: Iterable[Batch], optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler | None, device: torch.device,
                 amp: torch.dtype | None, config: TrainConfig, epoch: int) -> dict[str, float]:
    model.train()
    totals: dict[str, float] = {}
    count = 0
    for step, batch in enumerate(_progress(loader, config, f"epoch {epoch}")):
        batch = batch.to(device, non_blocking=True)
        if batch.labels is None:
            raise ValueError("training batch has no labels")
        with _autocast(device, amp):
            output = model(batch)
            terms = {"task": model.task_loss(output, batch)}
            for name, value in model.extra_losses(output, batch).items():
                if name in terms:
                    raise ValueError(f"extra loss name {name!r} clashes with the task loss")
                terms[name] = value
        loss = sum(v.float() for v in terms.values())
        if not torch.isfinite(loss):
            detail = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
            raise FloatingPointError(f"non-finite loss at epoch {epoch}, step {step}: {detail}")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        n = batch.size
        count += n
        totals["loss"] = totals.get("loss", 0.0) + float(loss.detach()) * n
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + float(value.detach()) * n
    if count == 0:
        raise ValueError("training data is empty")
    return {k: v / count for k, v in totals.items()}


def fit(model: EmotionModel, train_data: object, val_data: object | None,
        config: TrainConfig | None = None, model_name: str | None = None,
        task_info: TaskInfo | None = None, *,
        on_epoch_end: Callable[[Mapping[str, float]], None] | None = None) -> FitResult:
    """Trains ``model`` and leaves the validation-selected weights loaded in it.

    Seeds Python, numpy and torch from ``config.seed`` first. For identical runs, seed before
    building the model too (:func:`seed_everything`), since its initial weights are drawn then.

    Args:
        model: a model from ``baselines.create_model`` (its config gives dims and task).
        train_data: training rows (see the module docstring).
        val_data: validation rows; None trains for ``epochs`` and keeps the last weights.
        config: training options.
        model_name: registered name, stored in the checkpoint; default ``model.model_name``
            (set by ``baselines.create_model``).
        task_info: what the model predicts and from what data, kept as ``model.task_info`` and
            written into the checkpoint (``baselines.checkpoint.TaskInfo.for_model(model,
            dataset=BUILT_FOLDER)`` records the training data's extractors, which ``predict``
            needs); default: ``model.task_info`` if set, else the model's config with the class
            names of a ``datasets`` training split.
        on_epoch_end: called with each epoch's history record (validation metrics included)
            once the epoch is over; an exception it raises ends training and propagates (a
            tuner's pruning, for instance).

    The checkpoint (with ``config.out_dir``) is the selected epoch's weights in the Hugging Face
    format (``baselines.checkpoint``), rewritten at each improvement; ``EmotionModel.
    from_pretrained(out_dir)`` loads it.

    Returns:
        The selected epoch, its score and the per-epoch history.

    Raises:
        ValueError: on an empty data set, a bad option, or (with ``out_dir``) no model name.
        FloatingPointError: when a training loss is not finite.
    """
    config = config or TrainConfig()
    task = model.config.task
    metric, higher = resolve_select_metric(config.select_metric, task)
    model_name = model_name or getattr(model, "model_name", None)
    out_dir = Path(config.out_dir) if config.out_dir else None
    if out_dir is not None and not model_name:
        raise ValueError("fit needs the model's registered name to write a checkpoint: build "
                         "it with baselines.create_model or pass model_name=")
    device = resolve_device(config.device)
    amp = resolve_amp(config.amp, device)
    seed_everything(config.seed)
    model.to(device)
    optimizer = torch.optim.AdamW(model.param_groups(config.lr, config.weight_decay),
                                  lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    if model_name:
        model.model_name = model_name
    if task_info is not None or getattr(model, "task_info", None) is None:
        names = data_class_names(train_data)
        model.task_info = task_info or TaskInfo.for_model(
            model, class_names=list(names) if names else None)
    # after task_info: its taxonomy maps label_<m> class names of plain rows to indices
    train_loader = make_loader(train_data, model, config, train=True, device=device)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(out_dir / CONFIG_NAME, config, model, model_name)

    history: list[dict[str, float]] = []
    best_score: float | None = None
    best_epoch = -1
    best_state: dict[str, torch.Tensor] | None = None
    checkpoint: Path | None = None
    stale = 0
    stopped_early = False
    with deterministic(device.type == "cpu"):
        for epoch in range(config.epochs):
            start = time.perf_counter()
            model.on_epoch_start(epoch)
            if callable(getattr(train_data, "set_epoch", None)):  # streamed data reshuffles
                train_data.set_epoch(epoch)
            record = _train_epoch(model, train_loader, optimizer, scaler, device, amp, config,
                                  epoch)
            if val_data is not None:
                metrics = evaluate(model, val_data, config).metrics
                record.update({f"val_{k}": v for k, v in metrics.items()})
                score = metrics[metric]
                improved = best_score is None or (score > best_score if higher
                                                   else score < best_score)
            else:
                score, improved = None, True
            record["epoch"] = epoch
            record["seconds"] = time.perf_counter() - start
            history.append(record)
            if config.progress and not sys.stderr.isatty():
                print(_epoch_line(record, config, metric, improved), file=sys.stderr, flush=True)
            if on_epoch_end is not None:
                on_epoch_end(record)
            if improved:
                best_score, best_epoch, stale = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                model.fit_summary = {
                    "epoch": epoch, "select_metric": metric, "score": score,
                    "metrics": {k: v for k, v in record.items() if k.startswith("val_")},
                    "train_config": {k: v for k, v in config.to_dict().items()
                                     if k != "out_dir"}}  # no local paths in a published card
                if out_dir is not None:
                    checkpoint = write_checkpoint(model, out_dir)
            else:
                stale += 1
                if config.patience and stale >= config.patience:
                    stopped_early = epoch + 1 < config.epochs
                    break
    if best_epoch < 0:
        raise ValueError("no training epoch ran (epochs must be >= 1)")
    if best_state is not None:
        model.load_state_dict(best_state)
    if out_dir is not None:
        atomic_write_text(out_dir / HISTORY_NAME, json.dumps(_jsonable(history), indent=1))
    return FitResult(best_epoch=best_epoch, best_score=best_score, select_metric=metric,
                     history=history, checkpoint=checkpoint, stopped_early=stopped_early)


def _epoch_line(record: Mapping[str, float], config: TrainConfig, metric: str,
                improved: bool) -> str:
    """``seed 0 epoch 3/30: train loss 1.2345, val accuracy 0.5123 (best), 2.1 s``."""
    val = record.get(f"val_{metric}")
    score = "" if val is None else f", val {metric} {val:.4f}{' (best)' if improved else ''}"
    return (f"seed {config.seed} epoch {int(record['epoch']) + 1}/{config.epochs}: train loss "
            f"{record['loss']:.4f}{score}, {record['seconds']:.1f} s")


def _jsonable(history: list[dict[str, float]]) -> list[dict[str, float | None]]:
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in record.items()} for record in history]
