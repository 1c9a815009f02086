"""The standard protocol: train per seed, select on validation, score the test split once.

For each seed of the fixed list :data:`DEFAULT_SEEDS` (five seeds, as is usual for small
multimodal emotion corpora; MMSA reports means over five seeds too):

1. seed Python, numpy and torch, build the model (``baselines.create_model``, with feature sizes
   and class count read from the dataset, and the task type), and train it with the one trainer
   (``baselines.train.fit``) on the task's train split, with the task's ``label_column`` (a
   class index, or the float ``score`` of continuous tasks) as the target. The train and
   validation splits are streamed from their parquet shards in bounded memory
   (:class:`StreamedRows`; the train split with a seeded windowed shuffle). Checkpoint
   selection and early stopping use the validation split only; the test split is never handed
   to ``fit``. The selected weights of each seed are kept as a Hugging Face-format checkpoint
   (``baselines.checkpoint``: weights, config with the task and the dataset's extractor
   provenance, model card) in ``<store>/<model>/<task>.checkpoints/seed-<seed>/``
   (:func:`checkpoint_dir`), which ``python -m baselines predict`` runs on new clips.
2. only once ``fit`` has returned, the sealed test split is opened for this seed — once
   (:class:`SealedSplit` raises on a second opening or an opening without a finished fit) — and
   the selected model predicts it clean and under every robustness condition of the task
   (``benchmark.scoring.robustness_conditions``), in one streamed pass: each test batch is read
   once and the conditions are applied to it (``benchmark.robustness.BatchConditions``). Test
   inputs carry clip ids and features only: no label and no human relevance reach the model.

Every split is read from the dataset's parquet in place (``sdme.loading``): no Arrow copy of the
dataset is made, and the noise scales come from the feature moments recorded in its provenance
(``sdme.loading.feature_stats``) rather than from a pass over the training features.

Every number in a results file is then computed from the per-clip predictions alone, by
``benchmark.scoring.score_predictions`` — the same function ``benchmark submit`` runs to
re-check a file — and :func:`write_results` writes the predictions and the results file.

Each seed is kept as it finishes (``benchmark.partial``: its predictions and selection beside
its checkpoint), so running the same command again resumes from the finished seeds, and says
so; a run with another config, task or dataset starts over and moves the old seeds aside.
Without a task but with a dataset, the task is derived from the dataset (``benchmark.adhoc``).

The run config is the defaults, or a config file given by hand (``--config``), or else the
config ``benchmark tune`` chose for this model and task on the validation split
(``<data_dir>/tuned/<task>/<model>.yaml``, :mod:`benchmark.tune`), which the run checks was
made on this dataset and records, with the study's summary, in the results file.

This module holds the run: the run config (``sdme.config.read_yaml_mapping``), the environment
record, the streamed training inputs, the test guard, the loop and the writing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.metrics import METRIC_SPEC_VERSION
from benchmark.partial import FinishedSeed, FinishedSeeds, run_identity
from benchmark.results import (
    RESULTS_FORMAT,
    SCHEMA_VERSION,
    DatasetRef,
    Environment,
    ModelRef,
    PredictionRecord,
    PredictionsRef,
    ProtocolInfo,
    Results,
    Selection,
    TaskRef,
    Tuning,
    predictions_format,
    predictions_name,
    results_path,
    save_results,
    write_predictions,
)
from benchmark.robustness import BatchConditions, noise_scales
from benchmark.scoring import (
    ProtocolError,
    TestReference,
    check_built,
    dataset_fingerprint,
    pinned_mismatch,
    read_build_info,
    reference_columns,
    resolve_task_dataset,
    robustness_conditions,
    score_predictions,
    score_seed,
)
from benchmark.tasks import ADHOC_PREFIX, DEFAULT_TASK, Task, dataset_recipe, get_task
from sdme.config import ConfigError, from_mapping, read_yaml_mapping

DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
RUN_CONFIG_SECTIONS: tuple[str, ...] = ("train", "model")
#: The section a tuned config adds (the study's summary, :class:`benchmark.results.Tuning`).
TUNED_SECTION = "tuned"


# ----------------------------------------------------------------------------- the test guard


class SealedSplit:
    """Holds the test split; hands it out once per seed, and only after training finished."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self._opened: set[int] = set()

    @property
    def opened(self) -> frozenset[int]:
        return frozenset(self._opened)

    def open(self, seed: int, fit_result: Any) -> Any:
        """The test data for ``seed``.

        Args:
            seed: the seed whose selected model is about to be scored.
            fit_result: what ``baselines.train.fit`` returned for that seed (proof that
                training and validation-based selection are over).

        Raises:
            ProtocolError: no finished fit, or the split was already opened for this seed.
        """
        from baselines.train import FitResult

        if not isinstance(fit_result, FitResult):
            raise ProtocolError(f"seed {seed}: the test split may only be opened after fit() "
                                f"has returned (got {type(fit_result).__name__})")
        if seed in self._opened:
            raise ProtocolError(f"seed {seed}: the test split was already evaluated; the "
                                "protocol scores it once per seed")
        self._opened.add(seed)
        return self._data


# ----------------------------------------------------------------------------- the run


@dataclass
class RunOutput:
    """What :func:`run_benchmark` wrote."""

    results: Results
    results_path: Path
    predictions_path: Path


def load_run_config(path: str | os.PathLike | None) -> dict[str, Any]:
    """Reads a run config YAML: ``{train: {TrainConfig overrides}, model: {model overrides}}``.

    Both sections are optional; the options in them are checked where they are used
    (``baselines.train`` for ``train``, the model's config class for ``model``). A config
    written by ``benchmark tune`` also has a ``tuned`` section, returned as a
    :class:`~benchmark.results.Tuning` (absent from the result otherwise).

    Raises:
        sdme.config.ConfigError: unreadable, not a mapping, a section other than ``train``,
            ``model`` and ``tuned``, a section that is not a mapping, or a malformed ``tuned``
            section (the message names the file).
    """
    if path is None:
        return {key: {} for key in RUN_CONFIG_SECTIONS}
    loaded = read_yaml_mapping(path, sections=(*RUN_CONFIG_SECTIONS, TUNED_SECTION))
    config: dict[str, Any] = {key: dict(loaded[key]) for key in RUN_CONFIG_SECTIONS}
    if loaded[TUNED_SECTION]:
        config[TUNED_SECTION] = from_mapping(Tuning, loaded[TUNED_SECTION],
                                             what="section 'tuned'", source=path)
    return config


def check_run_config(config: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuses overrides of what the protocol sets (the seed, where checkpoints go) and of
    what comes from the dataset and task (input sizes, class count, task type).

    Raises:
        ProtocolError: naming the option.
    """
    for key in ("seed", "out_dir"):
        if key in config.get("train", {}):
            raise ProtocolError(f"train.{key} is set by the protocol and cannot be overridden")
    for key in ("input_dims", "num_classes", "task"):
        if key in config.get("model", {}):
            raise ProtocolError(f"model.{key} comes from the dataset and task; remove it")


def environment(device: str) -> Environment:
    """The software versions and the device a run used."""
    import sklearn
    import torch

    import sdme

    name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return Environment(python=platform.python_version(), platform=platform.platform(),
                       torch=torch.__version__, numpy=np.__version__,
                       sklearn=sklearn.__version__, sdme=sdme.__version__, device=name)


def input_columns(available: Sequence[str], task: Task, with_targets: bool) -> list[str]:
    """The columns a model is given: clip id and features, plus (training and validation) the
    task's target column and the human annotations the dataset has: ``relevance_<m>`` and, for
    discrete tasks, ``label_<m>`` (the class modality m alone expresses). The test split is read
    with ``with_targets=False``: no label and no annotation reaches the model there.

    Raises:
        ProtocolError: the dataset lacks a feature or target column.
    """
    columns = ["clip_id"]
    for m in task.modalities:
        columns += [f"{m}_feat", f"{m}_len"]
    if with_targets:
        columns.append(task.label_column)
        columns += [f"relevance_{m}" for m in task.modalities if f"relevance_{m}" in available]
        if task.task_type == "discrete":
            columns += [f"label_{m}" for m in task.modalities if f"label_{m}" in available]
    missing = [c for c in columns if c not in available]
    if missing:
        raise ProtocolError(f"the dataset lacks column(s) {missing}")
    return columns


def split_columns(folder: str | os.PathLike, split: str) -> list[str]:
    """The column names of one split, read from its first parquet shard's schema (the split's
    rows are not read)."""
    import pyarrow.parquet as pq

    files = read_build_info(folder).data_files.get(split)
    if not files:
        raise ProtocolError(f"{folder}: no {split!r} split")
    return list(pq.read_schema(Path(folder) / files[0]).names)


def training_rows(folder: str | os.PathLike, task: Task, split: str, *, seed: int = 0,
                  shuffle: bool = True) -> StreamedRows:
    """What ``fit`` reads of a train or validation split: its :func:`input_columns` (targets
    included), streamed (:class:`StreamedRows`). ``benchmark run`` and ``benchmark tune`` both
    train on these, so a tuned config was chosen on the inputs the run trains with.
    """
    columns = input_columns(split_columns(folder, split), task, with_targets=True)
    return StreamedRows(folder, task, split, columns, seed=seed, shuffle=shuffle)


class StreamedRows:
    """One split as the trainer reads it, streamed from its parquet shards in bounded memory.

    A :class:`sdme.loading.ParquetRows` over the split (row groups decoded on demand), reading
    only the given columns (:func:`input_columns`), with the task's target column renamed
    ``label`` (what ``baselines.data.collate`` reads). The training split is read with a
    windowed shuffle seeded by the protocol seed and reshuffled each epoch (the trainer calls
    :meth:`set_epoch`); the validation split in file order. The memory-mapped ``datasets``
    table would instead map every page of the split into the process over an epoch.

    Args:
        folder: the built dataset folder.
        task: the task.
        split: the split name.
        columns: the columns to read (:func:`input_columns`).
        seed: seed of the shuffle.
        shuffle: windowed shuffle (False: file order).
        window: row groups decoded and mixed at a time (``ParquetRows``).

    ``class_names`` (the ``label`` ClassLabel's names) let the trainer's collator map the
    ``label_<m>`` class names of the rows to class indices.
    """

    def __init__(self, folder: str | os.PathLike, task: Task, split: str,
                 columns: Sequence[str], *, seed: int = 0, shuffle: bool = True,
                 window: int = 8) -> None:
        from sdme.loading import ParquetRows

        self.rows = ParquetRows(folder, split, shuffle=shuffle, seed=seed, window=window,
                                columns=list(columns))
        self.target = task.label_column
        self.class_names = self.rows.class_names

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Makes the next pass epoch ``epoch`` (``baselines.train.fit`` calls it)."""
        self.rows.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            if self.target != "label" and self.target in row:
                row["label"] = row.pop(self.target)
            yield row



def _predictions_for_seed(task: Task, model: Any, test: Any, scales: Mapping[str, float],
                          seed: int, config: Any) -> dict[str, PredictionRecord]:
    from baselines.train import predict_variants

    def predicted(p: Any) -> list[Any]:
        values = p.predicted()
        if task.task_type == "discrete":
            return [int(v) for v in values]
        return [float(v) for v in values]

    conditions = robustness_conditions(task)
    outputs = predict_variants(model, test, config,
                               BatchConditions(conditions, scales, seed, task.modalities))
    clean = outputs.pop("")
    records: dict[str, PredictionRecord] = {}
    values = predicted(clean)
    for i, clip_id in enumerate(clean.ids):
        record: PredictionRecord = {"seed": seed, "clip_id": clip_id, "prediction": values[i]}
        weights = {m: float(w[i]) for m, w in clean.relevance.items()
                   if m in task.modalities and (m not in clean.present or clean.present[m][i])}
        if weights:
            record["relevance"] = weights
        record["conditions"] = {}
        records[clip_id] = record
    for condition in conditions:
        out = outputs[condition]
        if list(out.ids) != list(clean.ids):
            raise ProtocolError(f"condition {condition}: predictions came back in another order")
        for clip_id, value in zip(out.ids, predicted(out), strict=True):
            records[clip_id]["conditions"][condition] = value
    return records


def run_benchmark(model_name: str, task: str | Task | None = DEFAULT_TASK, *,
                  seeds: Sequence[int] = DEFAULT_SEEDS, device: str | None = None,
                  config: Mapping[str, Any] | None = None,
                  out_dir: str | os.PathLike | None = None,
                  data_dir: str | os.PathLike | None = None,
                  dataset: str | os.PathLike | None = None,
                  tuned: bool = True, compress: bool = False,
                  log: Callable[[str], None] | None = None) -> RunOutput:
    """Runs the standard protocol for one model on one task and writes its results.

    Args:
        model_name: a registered model (``baselines.list_models()``).
        task: task name (``name`` or ``name@version``) or a :class:`Task`; None with a
            ``dataset``: the ad-hoc task derived from it (``benchmark.adhoc``).
        seeds: the seeds (default: the protocol's five).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...; None: the run config's ``train.device``,
            else ``"auto"``.
        config: ``{"train": {...}, "model": {...}}`` overrides (see :func:`load_run_config`);
            with a ``tuned`` section (a tuned config given as such), it is checked and recorded
            as the tuned config found in the store is.
        out_dir: the results store (default ``<data_dir>/results``).
        data_dir: the SDME data folder.
        dataset: a built dataset folder to use instead of the task's dataset by name (its
            fingerprint must still match a pinned task).
        tuned: use the config ``benchmark tune`` wrote for this model and task, if there is one
            and ``config`` has no ``tuned`` section; ``config`` overrides its values.
        compress: write the predictions gzip-compressed (``.jsonl.gz``).
        log: progress messages (default: none).

    Returns:
        The results and where they were written.

    Raises:
        FileNotFoundError: the dataset is not built (the message says how to build it).
        ProtocolError, ValueError, KeyError: bad task, model, config or data; a tuned config
            made for another model, task or dataset.
    """
    import baselines
    from baselines.checkpoint import DatasetProvenance, TaskInfo
    from baselines.train import fit, make_config, seed_everything
    from benchmark.tune import tuned_run_config, verify_tuning
    from sdme import paths
    from sdme.device import resolve_device
    from sdme.loading import (
        feature_dims,
        feature_stats,
        read_columns,
        read_features,
        split_sizes,
        taxonomy,
    )

    say = log or (lambda _msg: None)
    if model_name not in baselines.list_models():  # before any work on the data
        baselines.create_model(model_name)  # raises the registry's close-match error
    if task is None:
        from benchmark.adhoc import run_task

        task = run_task(dataset, data_dir, say)
    task = get_task(task)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ProtocolError(f"seeds must be distinct non-negative integers, got {seeds}")
    tuning_path, config = tuned_run_config(model_name, task, config, data_dir, use=tuned)
    tuning = config.get(TUNED_SECTION)
    if tuning is not None and not isinstance(tuning, Tuning):
        try:
            tuning = from_mapping(Tuning, tuning, what="section 'tuned'")
        except ConfigError as exc:
            raise ProtocolError(f"the run config's {exc}") from None
    config = {"train": dict(config.get("train", {})), "model": dict(config.get("model", {}))}
    check_run_config(config)

    device = device or str(config["train"].pop("device", None) or "auto")

    folder = resolve_task_dataset(task, data_dir, dataset)
    check_built(folder)  # the contract `sdme validate --built` checks first
    sizes = split_sizes(folder)
    for role, split in (("train", task.train_split), ("validation", task.validation_split),
                        ("test", task.test_split)):
        if split not in sizes:
            raise ProtocolError(f"{folder}: no {split!r} split (the task's {role} split); "
                                f"splits: {', '.join(sizes)}")
    features = read_features(folder)
    class_names = taxonomy(features) if task.task_type == "discrete" else None
    reference = TestReference.from_split(
        read_columns(folder, task.test_split, reference_columns(features, task)), task,
        class_names)
    provenance = read_build_info(folder)
    build_info = provenance.to_dict()
    fingerprint = dataset_fingerprint(reference, build_info)
    mismatch = pinned_mismatch(task, folder, fingerprint, dataset_recipe(
        task, None if data_dir is None else str(data_dir)) if dataset is None else None)
    if mismatch:
        raise ProtocolError(mismatch)
    if tuning is not None:
        verify_tuning(tuning, model_name, task, folder, tuning_path)
    all_dims = feature_dims(features)
    dims = {m: all_dims[m] for m in task.modalities}
    model_options: dict[str, Any] = {"input_dims": dims, "task": task.task_type,
                                     **config["model"]}
    if class_names is not None:
        model_options["num_classes"] = len(class_names)

    validation = training_rows(folder, task, task.validation_split, shuffle=False)
    sealed = SealedSplit(StreamedRows(folder, task, task.test_split,
                                      input_columns(list(features), task, with_targets=False),
                                      shuffle=False))
    scales = noise_scales(feature_stats(folder, task.train_split, data_dir=data_dir),
                          task.modalities)
    n_train = sizes[task.train_split]
    resolved_device = str(resolve_device(device))
    say(f"{task.key}: {model_name} on {folder} ({n_train} train, {len(validation)} "
        f"validation, {len(reference.ids)} test clips), seeds {seeds}, device {resolved_device}")
    if task.pipeline_check:
        say(f"{task.key} is a pipeline check ({len(reference.ids)} test clips): its numbers "
            "show the pipeline runs, not how good a model is")
    say(_describe_config(tuning, tuning_path, config))

    store = Path(out_dir) if out_dir else paths.data_dir(data_dir) / "results"
    task_info = TaskInfo(task=task.task_type, modalities=list(task.modalities),
                         input_dims=dims, class_names=class_names, target=task.label_column,
                         name=task.key,
                         dataset=DatasetProvenance.from_build_info(provenance, fingerprint))
    records: dict[int, dict[str, PredictionRecord]] = {}
    selections: dict[int, Selection] = {}
    train_config = model_config = None
    num_parameters = 0
    finished = _finished_seeds(store, model_name, task, model_options, config, device,
                               resolved_device, tuning, fingerprint)
    done = finished.load(seeds, say)
    for seed in seeds:
        if seed in done:  # finished by an earlier run of the same command
            records[seed], selections[seed] = done[seed].records, done[seed].selection
            if train_config is None:
                train_config, model_config = done[seed].train_config, done[seed].model_config
                num_parameters = done[seed].num_parameters
            continue
        started = time.perf_counter()
        seed_everything(seed)
        model = baselines.create_model(model_name, **model_options)
        train_cfg = make_config(config["train"], seed=seed, device=device,
                                out_dir=str(checkpoint_dir(store, model_name, task.name, seed)))
        train = training_rows(folder, task, task.train_split, seed=seed)
        result = fit(model, train, validation, train_cfg, model_name=model_name,
                     task_info=task_info)
        test = sealed.open(seed, result)
        records[seed] = _predictions_for_seed(task, model, test, scales, seed, train_cfg)
        selections[seed] = Selection(select_metric=result.select_metric,
                                     best_epoch=result.best_epoch,
                                     best_score=None if result.best_score is None
                                     else float(result.best_score),
                                     epochs_run=len(result.history),
                                     stopped_early=result.stopped_early)
        kept = FinishedSeed(seed=seed, records=records[seed], selection=selections[seed],
                            model_config=_jsonable(dataclasses.asdict(model.config)),
                            train_config=_jsonable({k: v for k, v in train_cfg.to_dict().items()
                                                    if k not in ("seed", "out_dir")}),
                            num_parameters=int(sum(p.numel() for p in model.parameters())),
                            seconds=round(time.perf_counter() - started, 3))
        finished.save(kept, score_seed(task, reference, records[seed], seed).metrics)
        if train_config is None:
            train_config, model_config = kept.train_config, kept.model_config
            num_parameters = kept.num_parameters
        say(f"  seed {seed}: best epoch {result.best_epoch + 1} "
            f"(val {result.select_metric} {result.best_score:.4f}); kept in "
            f"{finished.folder(seed)}"
            if result.best_score is not None else f"  seed {seed}: trained")

    return write_results(
        task, reference, records, seeds, store=store, selections=selections, compress=compress,
        dataset=describe_dataset(task, fingerprint, sizes, build_info),
        model=ModelRef(name=model_name, config=_jsonable(model_config),
                       train_config=_jsonable(train_config), num_parameters=num_parameters,
                       tuning=tuning),
        protocol=ProtocolInfo(noise_scale=scales, conditions=robustness_conditions(task)),
        env=environment(resolved_device))


def _finished_seeds(store: Path, model_name: str, task: Task, model_options: Mapping[str, Any],
                    config: Mapping[str, Mapping[str, Any]], device: str, resolved_device: str,
                    tuning: Tuning | None, fingerprint: str) -> FinishedSeeds:
    """The finished-seed store of this run, keyed by its identity (``benchmark.partial``)."""
    import baselines
    from baselines.train import make_config

    probe = baselines.create_model(model_name, **model_options)  # its resolved config only
    identity = run_identity(
        model=model_name, model_config=dataclasses.asdict(probe.config),
        train_config=make_config(config["train"], device=device).to_dict(),
        tuning=None if tuning is None else dataclasses.asdict(tuning), task_key=task.key,
        task_sha256=task.definition_sha256(), fingerprint=fingerprint, device=resolved_device)
    root = checkpoint_dir(store, model_name, task.name, 0).parent
    return FinishedSeeds(root, identity, discrete=task.task_type == "discrete")


def _describe_config(tuning: Tuning | None, path: Path | None,
                     config: Mapping[str, Mapping[str, Any]]) -> str:
    """One line saying which config the run uses."""
    given = {k: dict(v) for k, v in config.items() if v}
    if tuning is None:
        return f"config: overrides {given}" if given else "config: defaults"
    where = f" ({path})" if path is not None else ""
    partial = "" if tuning.trials >= tuning.budget_trials else (
        f"; tuning incomplete: {tuning.trials} of {tuning.budget_trials} trials")
    return (f"config: tuned by `benchmark tune`{where}: best of {tuning.trials} trials "
            f"({tuning.epochs} epochs each), validation {tuning.metric} "
            f"{tuning.best_value:.4f}{partial}; values {given}")


def checkpoint_dir(store: str | os.PathLike, model: str, task: str, seed: int) -> Path:
    """Where ``benchmark run`` keeps the selected checkpoint of one seed:
    ``<store>/<model>/<task>.checkpoints/seed-<seed>/`` (beside the results file)."""
    return results_path(store, model, task).with_name(f"{task}.checkpoints") / f"seed-{seed}"


def describe_dataset(task: Task, fingerprint: str, splits: Mapping[str, int],
                     build_info: Mapping[str, Any]) -> DatasetRef:
    """The results file's dataset record."""
    return DatasetRef(name=task.dataset, fingerprint=fingerprint, splits=dict(splits),
                      source=_jsonable(build_info.get("source", {})),
                      extractors=_jsonable(build_info.get("extractors", {})))


def write_results(task: Task, reference: TestReference,
                  records: Mapping[int, Mapping[str, PredictionRecord]], seeds: Sequence[int],
                  *, store: str | os.PathLike, model: ModelRef, dataset: DatasetRef,
                  protocol: ProtocolInfo, env: Environment,
                  selections: Mapping[int, Selection | None] | None = None,
                  compress: bool = False) -> RunOutput:
    """Scores the predictions and writes ``<store>/<model>/<task>.json`` and its predictions
    (``.jsonl``, or ``.jsonl.gz`` with ``compress``).

    The predictions file is written first, then the results file (each atomically), so a
    results file never names predictions that are not there.
    """
    per_seed, aggregate = score_predictions(task, reference, records, seeds, selections)
    target = results_path(store, model.name, task.name)
    pred_path = target.with_name(predictions_name(task.name, compress))
    ordered = [records[s][c] for s in seeds for c in reference.ids]
    digest, rows = write_predictions(pred_path, ordered)
    results = Results(
        format=RESULTS_FORMAT, schema_version=SCHEMA_VERSION,
        metric_spec_version=METRIC_SPEC_VERSION,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        task=TaskRef(name=task.name, version=task.version,
                     definition_sha256=task.definition_sha256(), definition=task.to_dict(),
                     adhoc=task.name.startswith(ADHOC_PREFIX)),
        dataset=dataset, model=model, seeds=list(seeds), per_seed=per_seed,
        aggregate=aggregate,
        predictions=PredictionsRef(path=pred_path.name, sha256=digest,
                                   format=predictions_format(pred_path), rows=rows),
        protocol=protocol, environment=env)
    save_results(results, target)
    other = target.with_name(predictions_name(task.name, not compress))
    other.unlink(missing_ok=True)  # the replaced results' predictions, in the other format
    return RunOutput(results=results, results_path=target, predictions_path=pred_path)



def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


__all__ = ["DEFAULT_SEEDS", "RUN_CONFIG_SECTIONS", "TUNED_SECTION", "RunOutput", "SealedSplit",
           "StreamedRows", "check_run_config", "checkpoint_dir", "describe_dataset",
           "environment", "input_columns", "load_run_config", "run_benchmark", "split_columns",
           "training_rows", "write_results"]
