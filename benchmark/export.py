"""Export to the Hugging Face evaluation-results formats (``python -m benchmark export``,
``python -m benchmark eval-yaml``).

The Hub's evaluation results (https://huggingface.co/docs/hub/eval-results; huggingface/hub-docs
``docs/hub/eval-results.md``) have two halves: a *benchmark dataset* repo declares its tasks in
``eval.yaml`` at its root, and *model* repos carry scores in ``.eval_results/*.yaml``, each
naming the dataset and one of its task ids.

* :func:`to_eval_yaml` — the benchmark dataset's ``eval.yaml``: ``name``, ``description``,
  ``evaluation_framework`` and ``tasks`` (required), each task with ``id`` (required), ``config``
  and ``split``: one task per registered SDME task on the dataset, ``id`` = the task name (the
  ``task_id`` of the results entries below), ``config`` = ``default`` (the built dataset card's
  one config), ``split`` = the task's test split.
* :func:`to_eval_results` — the main score as ``.eval_results/<task>.yaml`` entries
  (``huggingface_hub.EvalResultEntry``).
* :func:`to_model_index` — every aggregate metric as the model card's ``model-index`` block
  (``huggingface_hub.EvalResult`` and ``eval_results_to_model_index``).

``evaluation_framework`` is an enumerated value that Hugging Face maintains
(huggingface/huggingface.js ``packages/tasks/src/eval.ts``, ``EVALUATION_FRAMEWORKS``; read at
commit 0589d130abd3: exgentic, inspect-ai, math-arena, mteb, olmocr-bench, harbor, ...). None of
those produced SDME's numbers, so we write :data:`EVAL_FRAMEWORK` = ``sdme``, which is **not in
that list**. The Hub validates ``eval.yaml`` at push time, so expect it to refuse the file until
``sdme`` is added there (the docs invite a pull request to that file; we could not try a
push). Borrowing another framework's id would claim results it did not compute;
``--framework`` writes another value when one applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.results import Results

HUB_TASK_TYPE = "video-classification"
#: The ``evaluation_framework`` written into ``eval.yaml`` (see the module docstring).
EVAL_FRAMEWORK = "sdme"
#: Where Hugging Face lists the accepted ``evaluation_framework`` values.
EVAL_FRAMEWORKS_URL = ("https://github.com/huggingface/huggingface.js/blob/main/packages/tasks/"
                       "src/eval.ts")
#: The config of a built dataset's card (``sdme.card``), evaluated by every task.
DATASET_CONFIG = "default"


def to_eval_yaml(dataset: str, *, tasks: Sequence[Any] | None = None, name: str | None = None,
                 description: str | None = None,
                 framework: str = EVAL_FRAMEWORK) -> dict[str, Any]:
    """The ``eval.yaml`` of the benchmark dataset repo that hosts the built dataset ``dataset``.

    Args:
        dataset: The built dataset name (``Task.dataset``).
        tasks: The tasks to declare (default: the latest version of every registered task
            evaluating ``dataset``).
        name: Display name (default: ``SDME benchmark: <dataset>``).
        description: What the benchmark measures (default: from the tasks' descriptions).
        framework: The ``evaluation_framework`` value (default :data:`EVAL_FRAMEWORK`).

    Raises:
        ValueError: no task evaluates ``dataset``, or a task of another dataset was given.
    """
    from benchmark.tasks import list_tasks

    chosen = list(tasks) if tasks is not None else [
        t for t in list_tasks() if t.dataset == dataset]
    if not chosen:
        known = sorted({t.dataset for t in list_tasks()})
        raise ValueError(f"no registered task evaluates the dataset {dataset!r}; tasks "
                         f"evaluate {', '.join(known)}")
    other = [t.key for t in chosen if t.dataset != dataset]
    if other:
        raise ValueError(f"task(s) {other} evaluate another dataset than {dataset!r}")
    if description is None:
        description = " ".join(
            [f"SDME benchmark tasks on the built dataset `{dataset}`; results are computed "
             "by the SDME toolkit's protocol (`python -m benchmark run`)."]
            + [f"{t.name}: {t.description}" for t in chosen])
    return {
        "name": name or f"SDME benchmark: {dataset}",
        "description": description,
        "evaluation_framework": framework,
        "tasks": [{"id": t.name, "config": DATASET_CONFIG, "split": t.test_split}
                  for t in chosen],
    }


def to_eval_results(results: Results, dataset_id: str, source_url: str | None = None
                    ) -> list[dict[str, Any]]:
    """The main score as Hugging Face ``.eval_results/<task>.yaml`` entries.

    Uses ``huggingface_hub``'s ``EvalResultEntry`` (https://huggingface.co/docs/hub/eval-results):
    ``dataset.id`` is the Hub id of the benchmark dataset, ``dataset.task_id`` the task name,
    ``value`` the mean main score over seeds; the notes give the metric, seeds, 95% CI, task
    version and dataset fingerprint.
    """
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    main = results.task.definition["main_score"]
    agg = results.aggregate.metrics[main]
    ci = "" if agg.ci95_half_width is None else f", 95% CI ±{agg.ci95_half_width:.4f}"
    notes = (f"{main}, mean of {agg.n} seed(s){ci}; SDME task {results.task.name} "
             f"v{results.task.version}; dataset fingerprint {results.dataset.fingerprint[:12]}; "
             f"metric spec v{results.metric_spec_version}")
    entry = EvalResultEntry(dataset_id=dataset_id, task_id=results.task.name,
                            value=round(agg.mean, 6), date=results.created, notes=notes,
                            source_url=source_url,
                            source_name="SDME benchmark" if source_url else None)
    return eval_result_entries_to_yaml([entry])


def to_model_index(results: Results, dataset_id: str) -> dict[str, Any]:
    """Every aggregate metric in the model-index format of model cards (type and value).

    Built with ``huggingface_hub.EvalResult`` and ``eval_results_to_model_index``.
    """
    from huggingface_hub import EvalResult
    from huggingface_hub.repocard_data import eval_results_to_model_index

    entries = []
    for name, agg in results.aggregate.metrics.items():
        entries.append(EvalResult(
            task_type=HUB_TASK_TYPE, task_name=results.task.name,
            dataset_type=dataset_id, dataset_name=results.dataset.name, dataset_split="test",
            dataset_args={"fingerprint": results.dataset.fingerprint,
                          "task_version": results.task.version},
            metric_type=name, metric_value=round(agg.mean, 6),
            metric_name=f"{name} (mean of {agg.n} seeds)",
            metric_args={"ci95_low": agg.ci95_low, "ci95_high": agg.ci95_high,
                         "std": agg.std, "metric_spec_version": results.metric_spec_version}))
    return {"model-index": eval_results_to_model_index(results.model.name, entries)}


__all__ = ["DATASET_CONFIG", "EVAL_FRAMEWORK", "EVAL_FRAMEWORKS_URL", "HUB_TASK_TYPE",
           "to_eval_results", "to_eval_yaml", "to_model_index"]
