"""``benchmark tune``: search hyper-parameters on the validation split, one budget for every model.

A fair comparison gives every model the same search (Dodge et al., "Show Your Work: Improved
Reporting of Experimental Results", EMNLP 2019, https://arxiv.org/abs/1909.03004, on how the
tuning budget decides which model "wins"; and MMSA's own tuning, which this avoids repeating,
selected on the test split). So:

* **the budget is the command's**: ``--trials`` trials of at most ``--epochs`` epochs each,
  the same whatever the model; the space is :func:`baselines.search.search_space` (the shared
  trainer and width ranges plus the model's own, declared on its config class);
* **validation only**: each trial trains with the one trainer (``baselines.train.fit``) on the
  task's train split, on the inputs ``benchmark run`` uses (``protocol.training_rows``), and is
  scored by the trainer's validation ``select_metric`` (the best epoch's, as the run selects
  checkpoints). The test split is never opened: the dataset is read through its provenance
  (``build_info.json``: feature sizes, taxonomy, shard lists) and the train and validation
  parquet shards only, never through ``datasets.load_dataset``, which would prepare every split;
* **Optuna** (https://optuna.org) searches: TPE sampler (Bergstra et al., NeurIPS 2011), seeded
  per trial from ``--seed`` and the trial's index, so a resumed study draws what an
  uninterrupted one would; a median pruner on the per-epoch validation score (reported through
  ``fit``'s ``on_epoch_end``); one study per (model, task) in SQLite (Optuna's RDB storage),
  ``<data_dir>/tuned/<task>/<model>.db``, so an interrupted tune resumes where it stopped.
  A trial whose loss diverges (non-finite) fails and counts against the budget; a trial cut
  short by an interruption does not and is run again.

The chosen config is written as a run config (``train`` and ``model`` sections, what
``benchmark run --config`` reads) plus a ``tuned`` section, the study's summary
(:class:`benchmark.results.Tuning`), at ``<data_dir>/tuned/<task>/<model>.yaml``.
``benchmark run`` uses it for that model and task unless given ``--config`` (which wins) or
``--no-tuned``, and records the summary in the results file (``model.tuning``).

A tuned config is bound to its dataset by the *development fingerprint*
(:func:`development_fingerprint`: the train and validation clip ids and labels, the taxonomy,
and the provenance of the corpus and each extractor — the dataset fingerprint's recipe, on the
splits ``tune`` may read). ``run`` refuses a tuned config whose fingerprint differs from the
dataset it runs on — it was chosen on other data, and silently falling back to the defaults
would misreport what was compared — and says how to re-tune or pass ``--no-tuned``. (A task's
pinned dataset fingerprint covers the test labels, so ``run`` checks it, not ``tune``.) Since
every study seeds trial k the same way, models tuned with the same ``--seed`` are tried at the
same points of the shared ranges in their startup trials. A resumed
study must have the same fingerprint, epochs, seed, metric, pruner, space and fixed options
(``--restart`` starts it over).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark.results import Tuning
from benchmark.scoring import (
    ProtocolError,
    check_built,
    provenance_identity,
    read_build_info,
    resolve_task_dataset,
)
from benchmark.tasks import DEFAULT_TASK, Task, get_task

TUNED_DIRNAME = "tuned"
DEFAULT_TRIALS = 20
PRUNERS: tuple[str, ...] = ("median", "none")
DEVELOPMENT_FINGERPRINT_VERSION = 1
#: The median pruner: no pruning before this many finished trials, nor in a trial's first
#: epochs (Optuna's ``MedianPruner(n_startup_trials, n_warmup_steps)``).
PRUNER_STARTUP_TRIALS = 5
PRUNER_WARMUP_EPOCHS = 2
_DIVERGED = "diverged"


class TuneError(ProtocolError):
    """``benchmark tune`` cannot run as asked (the message says why and what to do)."""


# ----------------------------------------------------------------------------- where things are


def tuned_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The tuned-config store, ``<data_dir>/tuned``."""
    from sdme import paths

    return paths.data_dir(data_dir) / TUNED_DIRNAME


def tuned_config_path(model_name: str, task: str | Task, root: str | os.PathLike) -> Path:
    """``<root>/<task name@version>/<model>.yaml``."""
    return Path(root) / get_task(task).key / f"{model_name}.yaml"


def study_path(model_name: str, task: str | Task, root: str | os.PathLike) -> Path:
    """The SQLite file of the (model, task) study, beside its tuned config."""
    return tuned_config_path(model_name, task, root).with_suffix(".db")


# ----------------------------------------------------------------------------- the fingerprint


def development_fingerprint(folder: str | os.PathLike, task: Task) -> str:
    """sha256 of what a tuned config was chosen on, reading no test data.

    The canonical JSON of the sorted ``(clip_id, label)`` pairs of the task's train and
    validation splits (label by class name, or the score), the taxonomy, the source corpus's
    fingerprint and each extractor's name, version and config fingerprint.

    Raises:
        ProtocolError: ``build_info.json`` is missing or lacks the provenance.
    """
    from sdme.loading import ParquetRows

    info = read_build_info(folder)
    names = list(info.taxonomy) if task.task_type == "discrete" else None
    source, extractors = provenance_identity(info.to_dict(),
                                             f"{folder}/build_info.json")

    def key(value: Any) -> Any:
        if value is None:
            return None
        return names[int(value)] if names is not None else float(value)

    splits = {}
    for role, split in (("train", task.train_split), ("validation", task.validation_split)):
        rows = ParquetRows(folder, split, shuffle=False, columns=["clip_id", task.label_column])
        splits[role] = sorted([r["clip_id"], key(r[task.label_column])] for r in rows)
    payload = {"fingerprint_version": DEVELOPMENT_FINGERPRINT_VERSION, "splits": splits,
               "taxonomy": names or [], "source": source, "extractors": extractors}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- run's side


def tuned_run_config(model_name: str, task: str | Task, config: Mapping[str, Any] | None,
                     data_dir: str | os.PathLike | None = None, *, use: bool = True
                     ) -> tuple[Path | None, dict[str, Any]]:
    """The run config ``benchmark run`` uses: ``config`` over the stored tuned config.

    Args:
        model_name: the model.
        task: the task.
        config: the run's own overrides (``train``, ``model``; a ``tuned`` section when the
            caller gives a tuned config itself, which then is used as it is).
        data_dir: the SDME data folder (the store is ``<data_dir>/tuned``).
        use: False ignores the store.

    Returns:
        The tuned config file used (None: none) and the merged config.

    Raises:
        sdme.config.ConfigError: the stored file is malformed (naming it).
        ProtocolError: the stored file has no ``tuned`` section.
    """
    from benchmark.protocol import TUNED_SECTION, load_run_config

    config = dict(config or {})
    if not use or config.get(TUNED_SECTION) is not None:
        return None, config
    path = tuned_config_path(model_name, task, tuned_dir(data_dir))
    if not path.is_file():
        return None, config
    stored = load_run_config(path)
    if TUNED_SECTION not in stored:
        raise ProtocolError(f"{path}: not a tuned config (no 'tuned' section); remove it or "
                            "pass it with --config")
    merged = {section: {**stored[section], **dict(config.get(section) or {})}
              for section in ("train", "model")}
    return path, {**merged, TUNED_SECTION: stored[TUNED_SECTION]}


def verify_tuning(tuning: Tuning, model_name: str, task: Task, folder: str | os.PathLike,
                  path: str | os.PathLike | None = None) -> None:
    """Checks that a tuned config was made for this model, task and dataset.

    Raises:
        ProtocolError: another model or task, or another development fingerprint (the message
            says how to re-tune or do without).
    """
    where = f"{path}: " if path is not None else "the run config's tuned section: "
    if tuning.model != model_name or tuning.task != task.key:
        raise ProtocolError(f"{where}tuned for {tuning.model} on {tuning.task}, not for "
                            f"{model_name} on {task.key}")
    fingerprint = development_fingerprint(folder, task)
    if fingerprint != tuning.fingerprint:
        raise ProtocolError(
            f"{where}tuned on another dataset (development fingerprint "
            f"{tuning.fingerprint[:12]}…; {folder} has {fingerprint[:12]}…: other train or "
            f"validation clips or labels, another corpus or other extractors); tune again "
            f"with `python -m benchmark tune --model {model_name} --task {task.key}` on this "
            "dataset, or run with --no-tuned")


# ----------------------------------------------------------------------------- the search


@dataclass
class TuneOutput:
    """What :func:`tune` wrote.

    Attributes:
        config_path: the tuned run config.
        study_path: the study's SQLite file.
        config: its ``train`` and ``model`` sections.
        tuning: its ``tuned`` section.
    """

    config_path: Path
    study_path: Path
    config: dict[str, dict[str, Any]]
    tuning: Tuning


def _suggest(trial: Any, name: str, dim: Any) -> Any:
    from baselines.search import Choice, FloatRange, IntRange

    if isinstance(dim, FloatRange):
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    if isinstance(dim, IntRange):
        return trial.suggest_int(name, dim.low, dim.high, step=dim.step, log=dim.log)
    if isinstance(dim, Choice):
        return trial.suggest_categorical(name, list(dim.options))
    raise TypeError(f"{name}: unknown dimension {dim!r}")  # pragma: no cover - search_space checks


def _sections(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Optuna's flat ``{"train.lr": v}`` as ``{"train": {"lr": v}, "model": {}}``."""
    out: dict[str, dict[str, Any]] = {"train": {}, "model": {}}
    for name, value in params.items():
        section, _, key = name.partition(".")
        out[section][key] = value
    return out


def _trial_seed(seed: int, index: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _counted(trial: Any) -> bool:
    """Whether a trial counts against the budget: finished, pruned, or diverged."""
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and _DIVERGED in trial.user_attrs)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One ``tune`` per study at a time (an advisory lock on a file beside the study)."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TuneError(f"{lock_path}: another `benchmark tune` is running this study"
                            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; :func:`tune` says what happened itself."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def tune(model_name: str, task: str | Task = DEFAULT_TASK, *, trials: int = DEFAULT_TRIALS,
         epochs: int | None = None, seed: int = 0, timeout: float | None = None,
         device: str | None = None, config: Mapping[str, Any] | None = None,
         pruner: str = "median", restart: bool = False,
         data_dir: str | os.PathLike | None = None, dataset: str | os.PathLike | None = None,
         out_dir: str | os.PathLike | None = None,
         log: Callable[[str], None] | None = None) -> TuneOutput:
    """Searches ``model_name``'s hyper-parameters on ``task``'s validation split and writes
    the best config where ``benchmark run`` finds it (see the module docstring).

    Args:
        model_name: a registered model.
        task: task name (``name`` or ``name@version``) or a :class:`Task`.
        trials: the budget: trials in the study, all runs of it together (the same for every
            model).
        epochs: maximum epochs per trial (default: the config's ``train.epochs``, else the
            trainer's default); early stopping on validation applies as in a run.
        seed: the training seed of every trial, and the sampler's seed.
        timeout: seconds after which no new trial starts (the study stays resumable).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``... (default: ``train.device``, else auto).
        config: fixed options, ``{"train": {...}, "model": {...}}``: an option given here is
            not searched.
        pruner: ``"median"`` or ``"none"``.
        restart: delete the stored study of this model and task first.
        data_dir: the SDME data folder.
        dataset: a built dataset folder to use instead of the task's dataset by name.
        out_dir: the tuned-config store (default ``<data_dir>/tuned``, where ``run`` looks).
        log: progress messages (default: none).

    Returns:
        What was written.

    Raises:
        TuneError: a bad budget or pruner, nothing left to search, a stored study started with
            other settings, or no trial that finished.
        ProtocolError, ValueError, KeyError: bad task, model, config or data.
        FileNotFoundError: the dataset is not built.
    """
    import optuna

    import baselines
    from baselines.search import describe_space, search_space
    from baselines.train import make_config, resolve_select_metric
    from benchmark.protocol import TUNED_SECTION, check_run_config, training_rows

    say = log or (lambda _msg: None)
    task = get_task(task)
    if trials < 1:
        raise TuneError(f"--trials must be at least 1, got {trials}")
    if pruner not in PRUNERS:
        raise TuneError(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
    if timeout is not None and timeout <= 0:
        raise TuneError(f"--timeout must be positive, got {timeout}")
    if model_name not in baselines.list_models():
        baselines.create_model(model_name)  # raises the registry's close-match error
    config = dict(config or {})
    if config.get(TUNED_SECTION):
        raise TuneError("the fixed options come from a tuned config (it has a 'tuned' "
                        "section); start from a plain run config")
    fixed = {"train": dict(config.get("train") or {}), "model": dict(config.get("model") or {})}
    check_run_config(fixed)
    device = device or str(fixed["train"].pop("device", None) or "auto")
    fixed_epochs = fixed["train"].pop("epochs", None)
    epochs = int(epochs or make_config({} if fixed_epochs is None else
                                       {"epochs": fixed_epochs}).epochs)
    if epochs < 1:
        raise TuneError(f"--epochs must be at least 1, got {epochs}")
    metric, higher = resolve_select_metric(make_config(fixed["train"]).select_metric,
                                           task.task_type)
    space = search_space(model_name)
    for section in space:
        for key in fixed[section]:
            space[section].pop(key, None)
    if not any(space.values()):
        raise TuneError(f"nothing to search: the fixed options set every option of "
                        f"{model_name}'s search space")

    folder = resolve_task_dataset(task, data_dir, dataset)
    check_built(folder, shards=False)  # the contract, without opening the test split
    info = read_build_info(folder)
    missing = [m for m in task.modalities if m not in info.dims]
    if missing:
        raise ProtocolError(f"{folder}: no features for {missing}")
    model_options: dict[str, Any] = {"input_dims": {m: info.dims[m] for m in task.modalities},
                                     "task": task.task_type}
    if task.task_type == "discrete":
        model_options["num_classes"] = len(info.taxonomy)
    factory = baselines.MODELS.get(model_name)
    if isinstance(factory, baselines.ModelSpec):  # fixed model options are checked up front
        factory.config(**model_options, **fixed["model"])
    fingerprint = development_fingerprint(folder, task)
    validation = training_rows(folder, task, task.validation_split, shuffle=False)

    root = Path(out_dir) if out_dir else tuned_dir(data_dir)
    config_path = tuned_config_path(model_name, task, root)
    db_path = study_path(model_name, task, root)
    study_name = f"{model_name}@{task.key}"
    identity = {"model": model_name, "task": task.key, "fingerprint": fingerprint,
                "epochs": epochs, "seed": seed, "metric": metric, "pruner": pruner,
                "space": describe_space(space), "fixed": json.loads(json.dumps(fixed))}
    pruner_obj = (optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS,
                                              n_warmup_steps=PRUNER_WARMUP_EPOCHS)
                  if pruner == "median" else optuna.pruners.NopPruner())
    say(f"{task.key}: tuning {model_name} on {folder} ({len(validation)} validation clips): "
        f"{trials} trials of at most {epochs} epochs, validation {metric}, seed {seed}, "
        f"device {device}; study {db_path}")

    def objective(trial: optuna.Trial) -> float:
        from baselines import train as trainer

        params = _sections({f"{section}.{key}": _suggest(trial, f"{section}.{key}", dim)
                            for section in space for key, dim in space[section].items()})
        train_cfg = make_config({**fixed["train"], **params["train"]}, epochs=epochs,
                                seed=seed, device=device)
        trainer.seed_everything(seed)
        model = baselines.create_model(model_name, **model_options, **fixed["model"],
                                       **params["model"])
        train = training_rows(folder, task, task.train_split, seed=seed)
        best: list[float] = []

        def report(record: Mapping[str, float]) -> None:
            value = float(record[f"val_{metric}"])
            best.append(value if not best else (max if higher else min)(best[-1], value))
            trial.report(best[-1], int(record["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {int(record['epoch'])}")

        try:
            result = trainer.fit(model, train, validation, train_cfg, model_name=model_name,
                                 on_epoch_end=report)
        except FloatingPointError as exc:
            trial.set_user_attr(_DIVERGED, str(exc))
            raise
        return float(result.best_score)

    with _exclusive(db_path.with_suffix(".lock")), _quiet_optuna():
        storage = optuna.storages.RDBStorage(f"sqlite:///{db_path.resolve()}")
        if restart:
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=study_name, storage=storage)
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
        except KeyError:
            study = optuna.create_study(study_name=study_name, storage=storage,
                                        direction="maximize" if higher else "minimize")
            study.set_user_attr("identity", identity)
        _check_identity(study.user_attrs.get("identity"), identity, db_path)
        for stale in study.get_trials(deepcopy=False,
                                      states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # an interrupted run
        done = sum(_counted(t) for t in study.get_trials(deepcopy=False))
        if done > trials:
            raise TuneError(f"{db_path}: the study already has {done} trials, more than "
                            f"--trials {trials}; give the same budget to every model "
                            f"(--trials {done}) or pass --restart")
        if done:
            say(f"  resuming: {done} of {trials} trials done")
        started = time.monotonic()
        while done < trials:
            if timeout is not None and time.monotonic() - started >= timeout:
                say(f"  --timeout {timeout:g} s reached after {done} of {trials} trials; run "
                    "the same command again to resume")
                break
            study = optuna.load_study(study_name=study_name, storage=storage,
                                      sampler=optuna.samplers.TPESampler(
                                          seed=_trial_seed(seed, done)),
                                      pruner=pruner_obj)
            study.optimize(objective, n_trials=1, catch=(FloatingPointError,))
            last = study.trials[-1]
            done += _counted(last)
            say(_describe_trial(last, done, trials, metric))
        output = _write_config(study, config_path, db_path, fixed, identity, trials)
    say(f"  best: trial {output.tuning.best_trial}, validation {metric} "
        f"{output.tuning.best_value:.4f}: {to_dict_sections(output.config)}")
    return output


def to_dict_sections(config: Mapping[str, Mapping[str, Any]]) -> str:
    """``train: {...}; model: {...}`` for messages."""
    return "; ".join(f"{k}: {dict(v)}" for k, v in config.items() if v)


def _describe_trial(trial: Any, done: int, trials: int, metric: str) -> str:
    from optuna.trial import TrialState

    params = to_dict_sections(_sections(trial.params))
    if trial.state == TrialState.COMPLETE:
        outcome = f"validation {metric} {trial.value:.4f}"
    elif trial.state == TrialState.PRUNED:
        epochs = len(trial.intermediate_values)
        outcome = f"pruned after {epochs} epoch{'s' if epochs != 1 else ''}"
    elif _DIVERGED in trial.user_attrs:
        outcome = f"failed ({trial.user_attrs[_DIVERGED]})"
    else:
        outcome = "interrupted"
    return f"  trial {trial.number} ({done}/{trials}): {outcome}  [{params}]"


def _check_identity(stored: Any, identity: Mapping[str, Any], db_path: Path) -> None:
    if stored == identity:
        return
    if not isinstance(stored, dict):
        raise TuneError(f"{db_path}: the study has no record of its settings; pass --restart")
    changed = [f"{k} {_short(stored.get(k))} -> {_short(identity[k])}" for k in identity
               if stored.get(k) != identity[k]]
    raise TuneError(f"{db_path}: the study was started with other settings ({'; '.join(changed)})"
                    "; resume with the same ones or pass --restart to start over")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _write_config(study: Any, config_path: Path, db_path: Path,
                  fixed: Mapping[str, Mapping[str, Any]], identity: Mapping[str, Any],
                  trials: int) -> TuneOutput:
    """Writes the best trial's config with the study's summary."""
    import optuna
    import yaml

    from benchmark.protocol import TUNED_SECTION
    from sdme.config import to_dict
    from sdme.fileio import atomic_write_text

    counted = [t for t in study.get_trials(deepcopy=False) if _counted(t)]
    complete = [t for t in counted if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise TuneError(f"{db_path}: no trial finished ({len(counted)} pruned or diverged); "
                        "nothing to write")
    best = study.best_trial
    chosen = _sections(best.params)
    config = {"train": {**fixed["train"], **chosen["train"], "epochs": identity["epochs"]},
              "model": {**fixed["model"], **chosen["model"]}}
    tuning = Tuning(
        model=identity["model"], task=identity["task"], study=study.study_name,
        fingerprint=identity["fingerprint"], metric=identity["metric"],
        higher_is_better=study.direction == optuna.study.StudyDirection.MAXIMIZE,
        best_value=float(best.value), best_trial=best.number, trials=len(counted),
        pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in counted),
        failed=sum(t.state == optuna.trial.TrialState.FAIL for t in counted),
        budget_trials=trials, epochs=identity["epochs"], seed=identity["seed"],
        sampler="TPESampler, seeded per trial from (seed, trial index)",
        pruner=(f"MedianPruner(n_startup_trials={PRUNER_STARTUP_TRIALS}, n_warmup_steps="
                f"{PRUNER_WARMUP_EPOCHS})" if identity["pruner"] == "median" else "none"),
        space=identity["space"], optuna=optuna.__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"))
    header = (f"# Chosen by `python -m benchmark tune --model {identity['model']} --task "
              f"{identity['task']}` on the validation split\n# (study {db_path.name}); "
              "`benchmark run` uses it for this model and task unless given --config or "
              "--no-tuned.\n")
    document = {**config, TUNED_SECTION: to_dict(tuning)}
    config_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, header + yaml.safe_dump(document, sort_keys=False))
    return TuneOutput(config_path=config_path, study_path=db_path, config=config, tuning=tuning)


__all__ = ["DEFAULT_TRIALS", "PRUNERS", "TuneError", "TuneOutput", "development_fingerprint",
           "study_path", "tune", "tuned_config_path", "tuned_dir", "tuned_run_config",
           "verify_tuning"]
