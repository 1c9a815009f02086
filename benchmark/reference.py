"""The shipped reference results: every registered model on the reference tasks, by one command.

``benchmark/data/reference/`` (package data) is a leaderboard store — ``<task>/<model>.json`` and
``<model>.predictions.jsonl.gz`` — holding, for each task of ``benchmark.tasks.REFERENCE_TASKS``
and each registered model (``baselines.list_models()``), the result of the standard protocol
with the model's default configuration and the protocol's default train config, on the
protocol's five seeds. Nothing there is written by hand: :func:`make_reference` (``python -m
benchmark reference make``, which ``scripts/make_reference_results.sh`` runs) calls
``benchmark.protocol.run_benchmark`` for each pair — exactly what ``python -m benchmark run``
runs — with gzip-compressed predictions, then ``benchmark.submit.submit`` into the store, which
re-checks every number from the predictions. ``benchmark leaderboard`` shows these rows beside
the user's own (``--no-reference`` hides them). Beside each task's folder,
``<task>.timings.json`` records how long each model's seeds took (training and test predictions,
per seed, measured by the run and kept with its finished seeds) and on what machine:
measurements, not results, so :func:`check_reference` does not re-derive them
(``perf/bench_relevance.py`` prints them in its table).

:func:`check_reference` (``python -m benchmark reference check``; ``tests/test_reference.py``
runs it on the shipped store against the locally regenerated datasets) refuses, naming the
file, what changed and the command that regenerates the store:

* a file that fails ``submit``'s checks against the local dataset (changed predictions,
  another dataset, numbers that do not follow from the predictions);
* a result computed for an older version of its task, or for a task no longer in
  ``REFERENCE_TASKS``;
* a result whose model config is not the registered model's current one (a changed default),
  whose train config is not the protocol's (``baselines.train.TrainConfig`` defaults; the
  device, worker count and progress display aside), that was tuned, or that has other seeds
  than the protocol's;
* a model that is no longer registered, and a registered model without a result.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.results import Results, ResultsError, load_results, read_json_file
from benchmark.tasks import REFERENCE_TASKS, TaskError, get_task
from sdme.fileio import atomic_write_text

REFERENCE_DIR = Path(__file__).resolve().parent / "data" / "reference"
#: The one command that regenerates the shipped store.
REGENERATE = "bash scripts/make_reference_results.sh"
#: Train options that say where and how visibly a run goes, not what it computes.
EXECUTION_TRAIN_KEYS: tuple[str, ...] = ("device", "num_workers", "progress")


def reference_files(store: str | os.PathLike = REFERENCE_DIR) -> list[Path]:
    """The results files of a reference store (``<task>/<model>.json``), sorted."""
    store = Path(store)
    return sorted(store.glob("*/*.json")) if store.is_dir() else []


def make_dataset(task: str, data_dir: str | os.PathLike | None = None,
                 log: Callable[[str], None] | None = None) -> Path:
    """Makes a task's dataset with its registered source, unless it is already built.

    Only built sources (``sdme import``: the synthetic presets...) are run here; a raw source's
    dataset needs ``sdme build`` (the error gives the recipe).

    Raises:
        ValueError: the task's source is not a built source, or names no source.
    """
    from benchmark.tasks import dataset_recipe
    from sdme import paths
    from sdme.sources import get_source

    spec = get_task(task)
    target = paths.built_dir(spec.dataset, data_dir)
    if (target / "build_info.json").is_file():
        if spec.dataset_fingerprint is not None:
            from benchmark.scoring import load_test_reference, pinned_mismatch

            mismatch = pinned_mismatch(spec, target, load_test_reference(spec, target)[1],
                                       dataset_recipe(spec, None if data_dir is None
                                                      else str(data_dir)))
            if mismatch:
                raise ValueError(mismatch)
        if log:
            log(f"{spec.key}: dataset {spec.dataset!r} already built in {target}")
        return target
    source = get_source(spec.source) if spec.source else None
    if source is None or source.kind != "built":
        raise ValueError(f"task {spec.key}: make its dataset with "
                         f"`{dataset_recipe(spec, None if data_dir is None else str(data_dir))}`")
    report = source.deliver(target, progress=False, **dict(spec.source_options))
    if log:
        log(getattr(report, "summary", lambda: f"{spec.dataset}: dataset at {target}")())
    return target


def make_reference(*, models: Sequence[str] | None = None,
                   tasks: Sequence[str] = REFERENCE_TASKS, seeds: Sequence[int] | None = None,
                   epochs: int | None = None, device: str | None = None,
                   store: str | os.PathLike = REFERENCE_DIR,
                   work: str | os.PathLike | None = None,
                   data_dir: str | os.PathLike | None = None,
                   log: Callable[[str], None] | None = None) -> list[Path]:
    """Runs the protocol for every (task, model) and submits each result into ``store``.

    Args:
        models: the models (default: every registered model; then files of models no longer
            registered are removed from the store).
        tasks: the tasks (default: ``REFERENCE_TASKS``).
        seeds: the seeds (default: the protocol's five).
        epochs: ``train.epochs`` (default: the trainer's; anything else makes results that
            :func:`check_reference` calls stale, which is what a quick trial wants).
        device: the device (default: the train config's, else auto).
        store: the reference store.
        work: where the runs write results and checkpoints (default ``<data_dir>/
            reference-runs``); an interrupted run resumes from its finished seeds there.
        data_dir: the SDME data folder holding the datasets.
        log: progress messages.

    Returns:
        The results files now in the store.
    """
    import baselines
    from benchmark.protocol import DEFAULT_SEEDS, run_benchmark
    from benchmark.submit import HISTORY_DIR, submit
    from sdme import paths

    say = log or (lambda _m: None)
    names = list(models) if models is not None else baselines.list_models()
    work = Path(work) if work else paths.data_dir(data_dir) / "reference-runs"
    store = Path(store)
    written = []
    for task in tasks:
        make_dataset(task, data_dir, say)
        for name in names:
            config: dict[str, Any] = {"train": {} if epochs is None else {"epochs": epochs},
                                      "model": {}}
            output = run_benchmark(name, task, seeds=seeds or DEFAULT_SEEDS, device=device,
                                   config=config, out_dir=work, data_dir=data_dir, tuned=False,
                                   compress=True, log=say)
            accepted = submit(output.results_path, data_dir=data_dir, store=store,
                              replace=True)
            say(accepted.summary())
            written.append(accepted.results_path)
            record_timings(store, task, name, work, seeds or DEFAULT_SEEDS, device)
        folder = store / get_task(task).name
        if models is None:  # a full regeneration: drop models no longer registered
            for path in sorted(folder.glob("*.json")):
                if path.stem not in names:
                    for old in [path, *folder.glob(f"{path.stem}.predictions.*")]:
                        old.unlink()
                    say(f"removed {path} ({path.stem} is no longer a registered model)")
            prune_timings(store, task, names)
        if (folder / HISTORY_DIR).exists():  # git keeps the shipped store's history
            shutil.rmtree(folder / HISTORY_DIR)
    return written


# ----------------------------------------------------------------------------- timings

TIMINGS_FORMAT = "sdme-reference-timings"


def timings_path(store: str | os.PathLike, task: str) -> Path:
    """``<store>/<task>.timings.json`` (beside the task's folder, not a results file)."""
    return Path(store) / f"{get_task(task).name}.timings.json"


def read_timings(store: str | os.PathLike, task: str) -> dict[str, Any]:
    """Model -> its timing record (``seconds`` per seed, ``machine``); empty when none."""
    path = timings_path(store, task)
    if not path.is_file():
        return {}
    try:
        document = read_json_file(path)
    except ResultsError:
        return {}
    models = document.get("models") if isinstance(document, dict) else None
    return dict(models) if isinstance(models, dict) else {}


def _write_timings(store: str | os.PathLike, task: str, models: Mapping[str, Any]) -> Path:
    path = timings_path(store, task)
    atomic_write_text(path, json.dumps({"format": TIMINGS_FORMAT, "version": 1,
                                        "models": dict(sorted(models.items()))}, indent=1)
                      + "\n")
    return path


def prune_timings(store: str | os.PathLike, task: str, models: Iterable[str]) -> None:
    """Drops the timing records of models other than ``models`` (a full regeneration)."""
    timings = read_timings(store, task)
    kept = {name: record for name, record in timings.items() if name in set(models)}
    if kept != timings:
        _write_timings(store, task, kept)


def _cpu_model() -> str | None:
    """The CPU's model name (Linux ``/proc/cpuinfo``), or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip() or None
    except OSError:
        return None
    return None


def record_timings(store: str | os.PathLike, task: str, model: str, work: str | os.PathLike,
                   seeds: Sequence[int], device: str | None) -> Path:
    """Records ``model``'s per-seed wall seconds (from its finished seeds in ``work``) in the
    task's timings file, with the machine it is recorded on (which measured them unless the
    seeds were finished elsewhere and copied into ``work``). An unreadable timings file is
    started anew."""
    import platform

    import torch

    from benchmark.partial import SEED_FILE
    from benchmark.protocol import checkpoint_dir
    from sdme.device import resolve_device

    name = get_task(task).name
    seconds = []
    for seed in seeds:
        try:
            value = read_json_file(checkpoint_dir(work, model, name, seed) / SEED_FILE
                                   ).get("seconds")
        except (ResultsError, AttributeError):
            value = None
        seconds.append(value if isinstance(value, (int, float)) else None)
    models = read_timings(store, task)
    models[model] = {"seeds": list(seeds), "seconds": seconds, "machine": {
        "platform": platform.platform(), "processor": _cpu_model() or platform.processor() or None,
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": str(resolve_device(device or "auto"))}}
    return _write_timings(store, task, models)


# ----------------------------------------------------------------------------- staleness


def _changes(recorded: Mapping[str, Any], expected: Mapping[str, Any], where: str,
             ignore: Iterable[str] = ()) -> list[str]:
    skip = set(ignore)
    out = []
    for key in sorted(set(recorded) | set(expected)):
        if key in skip:
            continue
        old, new = recorded.get(key, "(absent)"), expected.get(key, "(absent)")
        if old != new:
            out.append(f"{where}.{key}: {json.dumps(old)} in the file, {json.dumps(new)} now")
    return out


def config_changes(results: Results, train: Mapping[str, Any] | None = None) -> list[str]:
    """How a result's model and train configs differ from what ``run`` would use now: the
    registered model's config for the same data (input sizes, class count and task type as
    recorded) and the protocol's train config (``train`` overrides its defaults; execution
    options aside). Empty when they match.
    """
    import dataclasses

    import baselines
    from baselines.train import make_config

    name = results.model.name
    if name not in baselines.list_models():
        return [f"model {name!r} is no longer registered"]
    recorded = results.model.config
    options: dict[str, Any] = {"input_dims": recorded.get("input_dims"),
                               "task": recorded.get("task")}
    if recorded.get("task") == "discrete":
        options["num_classes"] = recorded.get("num_classes")
    spec = baselines.MODELS.get(name)
    try:
        config = spec.config(**options) if hasattr(spec, "config") else \
            baselines.create_model(name, **options).config
    except (TypeError, ValueError) as exc:
        return [f"model.config: the registered {name} refuses the recorded data options "
                f"({exc})"]
    expected = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    out = _changes(recorded, expected, "model.config")
    trainer = make_config(dict(train or {})).to_dict()
    trainer = {k: v for k, v in trainer.items() if k not in ("seed", "out_dir")}
    out += _changes(results.model.train_config, json.loads(json.dumps(trainer, default=str)),
                    "model.train_config", ignore=EXECUTION_TRAIN_KEYS)
    if results.model.tuning is not None:
        out.append("model.tuning: the result was made with a tuned config; the reference "
                   "uses the defaults")
    return out


def check_reference(store: str | os.PathLike = REFERENCE_DIR, *,
                    data_dir: str | os.PathLike | None = None,
                    datasets: Mapping[str, str | os.PathLike] | None = None,
                    tasks: Sequence[str] = REFERENCE_TASKS,
                    models: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                    train: Mapping[str, Any] | None = None) -> list[str]:
    """Every problem of a reference store (module docstring), one line each naming the file.

    Args:
        store: the reference store.
        data_dir: the SDME data folder with the tasks' datasets.
        datasets: task name -> built dataset folder, instead of the task's dataset by name.
        tasks: the tasks the store must cover.
        models: the models it must cover (default: every registered model).
        seeds: the seeds each result must have (default: the protocol's).
        train: the train config the results must have been made with (default: the
            trainer's defaults).
    """
    import baselines
    from benchmark.protocol import DEFAULT_SEEDS
    from benchmark.submit import SubmissionError, check_submission

    store = Path(store)
    expected_seeds = list(seeds or DEFAULT_SEEDS)
    names = list(models) if models is not None else baselines.list_models()
    keys = {get_task(t).name: get_task(t) for t in tasks}
    problems: list[str] = []
    for path in reference_files(store):
        where = f"{path}: "
        try:
            results = load_results(path)
        except ResultsError as exc:
            problems.append(str(exc))
            continue
        task_name = results.task.name
        if task_name not in keys:
            problems.append(f"{where}task {task_name!r} is not a reference task "
                            f"({', '.join(keys)})")
            continue
        try:
            latest = get_task(task_name)
        except TaskError as exc:
            problems.append(f"{where}{exc}")
            continue
        if results.task.version != latest.version:
            problems.append(f"{where}computed for {task_name} v{results.task.version}; the "
                            f"registered task is v{latest.version}")
            continue
        dataset = (datasets or {}).get(task_name)
        try:
            check_submission(path, data_dir=data_dir, dataset=dataset)
        except (SubmissionError, FileNotFoundError) as exc:
            problems.append(f"{where}{exc}" if not str(exc).startswith(str(path)) else str(exc))
        problems += [f"{where}{c}" for c in config_changes(results, train)]
        if results.seeds != expected_seeds:
            problems.append(f"{where}seeds {results.seeds}; the protocol's are "
                            f"{expected_seeds}")
        if results.model.name not in names:
            problems.append(f"{where}model {results.model.name!r} is not among the reference "
                            "models")
    for task_name in keys:
        have = {p.stem for p in (store / task_name).glob("*.json")}
        problems += [f"{store / task_name}: no reference result for model {m!r}"
                     for m in names if m not in have]
    return problems


def stale_message(problems: Sequence[str]) -> str:
    """The refusal text: how many problems, each one, and the command that regenerates."""
    return (f"{len(problems)} problem(s) in the shipped reference results; regenerate them "
            f"with `{REGENERATE}` (then commit benchmark/data/reference/):\n  "
            + "\n  ".join(problems))


__all__ = ["EXECUTION_TRAIN_KEYS", "REFERENCE_DIR", "REGENERATE", "check_reference",
           "config_changes", "make_dataset", "make_reference", "reference_files",
           "stale_message"]
