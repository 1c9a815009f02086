"""Ad-hoc tasks: a user's own built dataset, benchmarked without a registered task.

``python -m benchmark run --model M --dataset DIR`` without ``--task`` derives the task from the
dataset itself (:func:`adhoc_task`), by these rules:

* name ``adhoc-<dataset>`` (the folder's name, characters other than letters, digits, ``.``,
  ``_`` and ``-`` replaced by ``-``), version 1; the ``adhoc-`` prefix is reserved
  (``benchmark.tasks.register_task`` refuses it), and results files say ``task.adhoc: true``;
* task type: *continuous* on the ``score`` column when the dataset has one and its
  ``build_info.json`` records the score's scale (``score.scale``, one of ``sdme.metrics.SCALES``:
  a scored corpus, as MMSA's imports), with every metric of that scale, MAE first and the
  scale's binary accuracy (``acc2_*``) as the robustness metric; otherwise *discrete* on the
  ``label`` ClassLabel (its names are the taxonomy), with accuracy, macro and weighted F1;
* the splits ``train``, ``validation`` and ``test`` and the three modalities of the built-dataset
  contract (``sdme.validate_built.structure_problems``);
* the dataset fingerprint (``benchmark.scoring.dataset_fingerprint``) pinned, so ``submit``
  accepts the results only against the same dataset, which it re-derives the task from.

The leaderboard shows ad-hoc tasks apart from the registered ones, marked as such: their numbers
are on the user's data, under a task nobody pinned.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from benchmark.scoring import ProtocolError, check_built, load_test_reference, read_build_info
from benchmark.tasks import ADHOC_PREFIX, Task

DISCRETE_METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1")


def adhoc_name(folder: str | os.PathLike) -> str:
    """``adhoc-<dataset>`` for a built dataset folder."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", Path(folder).resolve().name).strip("-.") or "dataset"
    return f"{ADHOC_PREFIX}{name}"


def adhoc_task(folder: str | os.PathLike) -> Task:
    """The ad-hoc task of a built dataset (module docstring), its fingerprint pinned.

    Raises:
        ProtocolError: the dataset lacks provenance, a split or a label (naming the file).
    """
    from sdme.loading import read_features
    from sdme.metrics import SCALES, metric_names

    folder = Path(folder)
    info = read_build_info(folder)
    columns = read_features(folder)  # the schema, read from the parquet in place
    scale = (info.score or {}).get("scale")
    dataset = folder.resolve().name
    common = {"name": adhoc_name(folder), "version": 1, "dataset": dataset}
    if "score" in columns and scale in SCALES:
        names = metric_names("continuous", scale)
        metrics = ("mae", *(m for m in names if m != "mae"))
        binary = next((m for m in names if m.startswith("acc2")), "mae")
        task = Task(**common, task_type="continuous", continuous_scale=scale, metrics=metrics,
                    main_score="mae", label_column="score", robustness_metric=binary,
                    description=_description(dataset, f"regression of `score` (scale {scale})"))
    else:
        task = Task(**common, task_type="discrete", metrics=DISCRETE_METRICS,
                    main_score="accuracy",
                    description=_description(dataset, f"{len(info.taxonomy)}-class "
                                                      "classification of `label`"))
    try:
        _, fingerprint, _ = load_test_reference(task, folder)
    except (KeyError, ValueError) as exc:
        raise ProtocolError(f"{folder}: {exc}") from None
    return replace(task, dataset_fingerprint=fingerprint)


def run_task(dataset: str | os.PathLike | None, data_dir: str | os.PathLike | None = None,
             say: Callable[[str], None] | None = None) -> Task:
    """The ad-hoc task of ``benchmark run --dataset DIR`` without ``--task``: the dataset is
    found (a folder, or a name in ``<data_dir>/built``), checked against the built-dataset
    contract and its task derived (:func:`adhoc_task`).

    Raises:
        ProtocolError: no dataset given, or one the contract refuses.
        FileNotFoundError: no such dataset.
    """
    from sdme.loading import resolve_built

    if dataset is None:
        raise ProtocolError("no task: name one (--task NAME) or give a built dataset "
                            "(--dataset DIR) to derive an ad-hoc task from")
    folder = resolve_built(dataset, data_dir)
    check_built(folder)
    task = adhoc_task(folder)
    if say is not None:
        say(f"ad-hoc task {task.name} derived from {folder}: {task.task_type}, main score "
            f"{task.main_score}, fingerprint {task.dataset_fingerprint[:12]}; not a pinned "
            "benchmark task (results say so: task.adhoc)")
    return task


def _description(dataset: str, what: str) -> str:
    return (f"Ad-hoc task on the built dataset `{dataset}` (not a pinned benchmark task): "
            f"{what}, train on `train`, select on `validation`, score `test`; derived from the "
            "dataset by `benchmark.adhoc`.")


__all__ = ["DISCRETE_METRICS", "adhoc_name", "adhoc_task", "run_task"]
