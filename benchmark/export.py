"""Export a results file to the Hugging Face formats (``python -m benchmark export``).

* :func:`to_eval_results` — the main score as ``.eval_results/<task>.yaml`` entries
  (https://huggingface.co/docs/hub/eval-results, ``huggingface_hub.EvalResultEntry``).
* :func:`to_model_index` — every aggregate metric as the model card's ``model-index`` block
  (``huggingface_hub.EvalResult`` and ``eval_results_to_model_index``).
"""

from __future__ import annotations

from typing import Any

from benchmark.results import Results

HUB_TASK_TYPE = "video-classification"


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


__all__ = ["HUB_TASK_TYPE", "to_eval_results", "to_model_index"]
