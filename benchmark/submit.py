"""``benchmark submit``: re-check a results file from its predictions, then admit it.

A submission is a results file plus the predictions file it names. Before anything is written,
:func:`check_submission` refuses — with a message naming the file and the problem — a
submission that:

* is oversized (either file over :data:`benchmark.results.MAX_FILE_BYTES`, 50 MB), not JSON,
  or malformed (any field missing, mistyped, unknown, NaN or infinite: ``benchmark.results``);
* has an unknown ``schema_version`` or metric-spec version;
* names an unknown task or version, or embeds a task definition that differs from the
  registered one (for an ad-hoc task, ``adhoc-<dataset>``: from the one ``benchmark.adhoc``
  derives from the local dataset);
* names a model that cannot be a file name;
* has a dataset fingerprint other than the local built dataset's (another build, another
  corpus, other labels or other extractors);
* has a predictions file (``.jsonl``, or ``.jsonl.gz`` decompressed within the size limit)
  whose sha256 differs from the one recorded, or that misses a test
  clip, predicts a clip twice or one outside the test split, misses a seed or a robustness
  condition;
* reports any number that differs by more than ``tolerance`` (1e-6) from what
  ``benchmark.scoring.score_predictions`` recomputes from the predictions against the
  dataset's labels.

An accepted submission is copied into the leaderboard store,
``<data_dir>/leaderboard/<task>/<model>.json`` and ``<model>.predictions.jsonl`` (or
``.jsonl.gz``, as submitted), each written atomically, the predictions first, so a reader never
sees a results file without its predictions.

An accepted result is never lost. When the store already holds one for the same model and task:

* a resubmission of the same result (same predictions, scores and model configs) changes
  nothing and says so (``Accepted.unchanged``);
* any other is refused, naming the stored result and both scores, unless ``replace=True``
  (``--replace``). Replacing first copies the stored pair, byte for byte, into
  ``<task>/.history/<model>/<UTC time>/`` (the history of accepted submissions; the leaderboard
  reads only ``<task>/*.json``), then writes the new one, and reports what was replaced
  (``Accepted.previous``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmark.results import (
    MAX_FILE_BYTES,
    PredictionRecord,
    Results,
    ResultsError,
    load_results,
    predictions_sha256,
    read_predictions,
    results_from_dict,
)
from benchmark.scoring import (
    ProtocolError,
    check_built,
    load_test_reference,
    resolve_task_dataset,
    robustness_conditions,
    score_predictions,
)
from benchmark.tasks import Task, TaskError, get_task
from sdme.fileio import atomic_write_bytes, atomic_write_text

TOLERANCE = 1e-6
#: Folder of each task's store folder that keeps replaced results (never read as entries).
HISTORY_DIR = ".history"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SubmissionError(ValueError):
    """A refused submission; the message says why."""


@dataclass
class Checked:
    """A submission that passed every check (nothing written yet)."""

    results: Results
    task: Task
    results_file: Path
    predictions_file: Path
    records: dict[int, dict[str, PredictionRecord]]


@dataclass
class Previous:
    """The accepted result a submission replaced, now in the history.

    Attributes:
        archive: The history folder holding its results and predictions files, unchanged.
        created: Its ``created`` date (None if the stored file was unreadable).
        metric: The task's main score.
        score: Its mean main score (None if the stored file was unreadable).
    """

    archive: Path
    created: str | None
    metric: str
    score: float | None


@dataclass
class Accepted:
    """Where an accepted submission now lives.

    Attributes:
        replaced: Whether it replaced another accepted result (see ``previous``).
        unchanged: Whether the store already held this very result (nothing was written).
        previous: What it replaced, when it did.
    """

    task: str
    model: str
    results_path: Path
    predictions_path: Path
    replaced: bool
    unchanged: bool = False
    previous: Previous | None = None

    def summary(self) -> str:
        """One line saying what happened (what ``benchmark submit`` prints)."""
        what = f"{self.model} on {self.task} -> {self.results_path}"
        if self.unchanged:
            return f"unchanged: {what} (the store already holds this result)"
        if self.previous is None:
            return f"accepted: {what}"
        old = self.previous
        before = "unreadable" if old.score is None else f"{old.score:.4f}"
        return (f"replaced: {what} ({old.metric} was {before}, created "
                f"{old.created or '?'}; the replaced result is kept in {old.archive})")


def leaderboard_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``<data_dir>/leaderboard``."""
    from sdme import paths

    return paths.data_dir(data_dir) / "leaderboard"


def _compare(expected: Any, got: Any, where: str, tolerance: float, out: list[str]) -> None:
    """Appends a message for each difference between recomputed and reported values."""
    if len(out) >= 10:
        return
    if isinstance(expected, dict) and isinstance(got, dict):
        if set(expected) != set(got):
            out.append(f"{where}: keys {sorted(got)} differ from the recomputed "
                       f"{sorted(expected)}")
            return
        for key in expected:
            _compare(expected[key], got[key], f"{where}.{key}" if where else key, tolerance, out)
        return
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            out.append(f"{where}: {len(got)} values, recomputed {len(expected)}")
            return
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            _compare(e, g, f"{where}[{i}]", tolerance, out)
        return
    numbers = (int, float)
    if (isinstance(expected, numbers) and isinstance(got, numbers)
            and not isinstance(expected, bool) and not isinstance(got, bool)):
        if not math.isclose(float(expected), float(got), rel_tol=0.0, abs_tol=tolerance):
            out.append(f"{where}: reported {got!r}, recomputed {expected!r}")
        return
    if expected != got:
        out.append(f"{where}: reported {got!r}, recomputed {expected!r}")


def check_submission(results_file: str | os.PathLike, *,
                     data_dir: str | os.PathLike | None = None,
                     dataset: str | os.PathLike | None = None,
                     tolerance: float = TOLERANCE,
                     max_bytes: int = MAX_FILE_BYTES) -> Checked:
    """Runs every check of the module docstring; writes nothing.

    Args:
        results_file: the results JSON (its predictions file beside it).
        data_dir: the SDME data folder holding the built dataset.
        dataset: a built dataset folder to check against instead of the task's dataset by name.
        tolerance: largest accepted absolute difference of a reported number.
        max_bytes: size limit of each file.

    Raises:
        SubmissionError: the reason for refusal.
        FileNotFoundError: the dataset is not built (the message says how to build it).
    """
    results_file = Path(results_file)
    try:
        results = load_results(results_file, max_bytes)
    except ResultsError as exc:
        raise SubmissionError(str(exc)) from exc
    try:
        embedded = Task.from_dict(results.task.definition)
        if results.task.adhoc:
            task = _adhoc_task(results_file, embedded, data_dir, dataset)
        else:
            task = get_task(results.task.name, results.task.version)
    except SubmissionError:
        raise
    except (TaskError, TypeError, ValueError, AttributeError) as exc:
        raise SubmissionError(f"{results_file}: task: {exc}") from exc
    if (embedded.definition_sha256() != task.definition_sha256()
            or results.task.definition_sha256 != task.definition_sha256()):
        raise SubmissionError(f"{results_file}: task: the embedded definition of {task.key} "
                              "differs from the registered one")
    if not SAFE_NAME.match(results.model.name):
        raise SubmissionError(f"{results_file}: model.name {results.model.name!r} must be "
                              "letters, digits, '.', '_' or '-' (it becomes a file name)")
    if results.protocol.conditions != robustness_conditions(task):
        raise SubmissionError(f"{results_file}: protocol.conditions differ from the task's "
                              "robustness conditions")

    predictions_file = results_file.parent / results.predictions.path
    if not predictions_file.is_file():
        raise SubmissionError(f"{predictions_file}: predictions file named by {results_file} "
                              "not found")
    try:
        digest = predictions_sha256(predictions_file, max_bytes)
    except ResultsError as exc:
        raise SubmissionError(str(exc)) from exc
    if digest != results.predictions.sha256:
        raise SubmissionError(f"{predictions_file}: sha256 differs from predictions.sha256 in "
                              f"{results_file}: the predictions were changed")
    try:
        records = read_predictions(predictions_file, task.task_type == "discrete", max_bytes)
    except ResultsError as exc:
        raise SubmissionError(str(exc)) from exc
    rows = sum(len(v) for v in records.values())
    if rows != results.predictions.rows:
        raise SubmissionError(f"{predictions_file}: {rows} rows, {results_file} says "
                              f"{results.predictions.rows}")

    folder = resolve_task_dataset(task, data_dir, dataset)
    try:
        check_built(folder)
        reference, fingerprint, _ = load_test_reference(task, folder)
    except ProtocolError as exc:
        text = str(exc)
        raise SubmissionError(text if text.startswith(str(folder)) else f"{folder}: {text}"
                              ) from exc
    if fingerprint != results.dataset.fingerprint:
        raise SubmissionError(
            f"{results_file}: dataset.fingerprint {results.dataset.fingerprint[:12]}… names "
            f"another dataset than the local {folder} ({fingerprint[:12]}…): other test "
            "clips or labels, another corpus version or other extractors")
    if task.dataset_fingerprint is not None and fingerprint != task.dataset_fingerprint:
        raise SubmissionError(f"{folder}: fingerprint {fingerprint[:12]}… is not the one task "
                              f"{task.key} pins")

    selections = {s.seed: s.selection for s in results.per_seed}
    try:
        per_seed, aggregate = score_predictions(task, reference, records, results.seeds,
                                                selections)
    except (ProtocolError, ValueError) as exc:
        raise SubmissionError(f"{predictions_file}: {exc}") from exc
    problems: list[str] = []
    _compare([asdict(s) for s in per_seed], [asdict(s) for s in results.per_seed], "per_seed",
             tolerance, problems)
    _compare(asdict(aggregate), asdict(results.aggregate), "aggregate", tolerance, problems)
    if problems:
        raise SubmissionError(f"{results_file}: {len(problems)}{'+' if len(problems) >= 10 else ''}"
                              " reported value(s) do not match the predictions:\n  "
                              + "\n  ".join(problems))
    return Checked(results=results, task=task, results_file=results_file,
                   predictions_file=predictions_file, records=records)


def _adhoc_task(results_file: Path, embedded: Task, data_dir: str | os.PathLike | None,
                dataset: str | os.PathLike | None) -> Task:
    """The ad-hoc task of a results file, checked against the one derived from the local
    dataset (``dataset``, else the embedded dataset name in ``data_dir``); the dataset
    fingerprint is compared afterwards, with the other checks."""
    from dataclasses import replace

    from benchmark.adhoc import adhoc_task

    try:
        folder = resolve_task_dataset(embedded, data_dir, dataset)
    except FileNotFoundError:
        if dataset is not None:
            raise
        raise FileNotFoundError(
            f"{results_file}: the dataset of the ad-hoc task {embedded.name} is not "
            f"{embedded.dataset!r} in the data folder: pass the built dataset folder the run "
            "used with --dataset FOLDER") from None
    try:
        check_built(folder)
        derived = adhoc_task(folder)
    except ProtocolError as exc:
        raise SubmissionError(str(exc)) from exc
    if (replace(derived, dataset_fingerprint=None).definition_sha256()
            != replace(embedded, dataset_fingerprint=None).definition_sha256()):
        raise SubmissionError(f"{results_file}: task: the ad-hoc task {embedded.name} differs "
                              f"from the one derived from the local dataset {folder} "
                              f"({derived.name}: another name, task type or taxonomy)")
    return embedded


def _same_result(stored: Results, new: Results) -> bool:
    """Whether two results files record the same result (dates and environment aside)."""
    return (stored.predictions.sha256 == new.predictions.sha256
            and stored.aggregate == new.aggregate and stored.per_seed == new.per_seed
            and stored.model == new.model and stored.dataset == new.dataset
            and stored.task == new.task)


def _archive(folder: Path, model: str, files: list[Path]) -> Path:
    """Copies ``files`` byte for byte into a new ``.history/<model>/<UTC time>/`` folder."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    archive = folder / HISTORY_DIR / model / stamp
    archive.mkdir(parents=True, exist_ok=False)
    for path in files:
        if path.is_file():
            atomic_write_bytes(archive / path.name, path.read_bytes())
    return archive


def submit(results_file: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
           dataset: str | os.PathLike | None = None,
           store: str | os.PathLike | None = None, tolerance: float = TOLERANCE,
           replace: bool = False) -> Accepted:
    """Checks a submission and, if it passes, copies it into the leaderboard store.

    Args:
        results_file: the results JSON.
        data_dir: the SDME data folder (dataset and default store).
        dataset: a built dataset folder to check against (default: the task's, by name).
        store: the leaderboard store (default ``<data_dir>/leaderboard``).
        tolerance: see :func:`check_submission`.
        replace: replace a different result already accepted for this model and task (it is
            kept in the history first); without it such a submission is refused.

    Raises:
        SubmissionError: refused (including a different result for the same model and task
            without ``replace``); nothing was written.
    """
    checked = check_submission(results_file, data_dir=data_dir, dataset=dataset,
                               tolerance=tolerance)
    results = checked.results
    root = Path(store) if store else leaderboard_dir(data_dir)
    folder = root / checked.task.name
    model = results.model.name
    target = folder / f"{model}.json"
    predictions_target = folder / f"{model}.predictions.{results.predictions.format}"
    document = results.to_dict()
    document["predictions"]["path"] = predictions_target.name
    text = results_from_dict(document).to_json()  # validated again before it is written
    main = checked.task.main_score
    previous = None
    if target.exists():
        try:
            stored: Results | None = load_results(target)
        except ResultsError:
            stored = None  # unreadable: replaceable (and archived) only on request
        if stored is not None and _same_result(stored, results):
            return Accepted(task=checked.task.name, model=model, results_path=target,
                            predictions_path=predictions_target, replaced=False,
                            unchanged=True)
        old_score = None if stored is None else stored.aggregate.metrics[main].mean
        old_created = None if stored is None else stored.created
        if not replace:
            before = "unreadable" if old_score is None else f"{old_score:.4f}"
            raise SubmissionError(
                f"{target}: {model} already has an accepted result on {checked.task.name} "
                f"({main} {before}, created {old_created or '?'}); this submission scores "
                f"{results.aggregate.metrics[main].mean:.4f}. Nothing was written: resubmit "
                "with --replace (replace=True) to replace it; the accepted one is then kept in "
                f"{folder / HISTORY_DIR / model}")
        old_predictions = [predictions_target]
        if stored is not None and stored.predictions.path != predictions_target.name:
            old_predictions.append(folder / stored.predictions.path)  # the other format
        archive = _archive(folder, model, [target, *old_predictions])
        previous = Previous(archive=archive, created=old_created, metric=main, score=old_score)
    atomic_write_bytes(predictions_target, checked.predictions_file.read_bytes())
    atomic_write_text(target, text)
    for old in (previous and old_predictions[1:]) or []:
        old.unlink(missing_ok=True)  # archived above; the new result names the other file
    return Accepted(task=checked.task.name, model=model, results_path=target,
                    predictions_path=predictions_target, replaced=previous is not None,
                    previous=previous)


__all__ = ["Accepted", "Checked", "HISTORY_DIR", "Previous", "SubmissionError", "TOLERANCE",
           "check_submission", "leaderboard_dir", "submit"]
