"""The SDME benchmark: tasks, metric spec, scoring, protocol, results, submission, leaderboard.

* ``benchmark.tasks`` — frozen task definitions, one record each in a module per family
  (``benchmark/tasks/*.py``), registered by ``name@version`` in a ``sdme.registry.Registry``.
* ``benchmark.metrics`` — the versioned metric spec (``METRIC_SPEC_VERSION``): the reports built
  on the registered metrics of ``sdme.metrics`` (stratified correctness, relevance AUROC,
  robustness, aggregates over seeds).
* ``benchmark.scoring`` — the test reference, the dataset fingerprint and every number of a
  results file computed from predictions: all that ``submit`` needs.
* ``benchmark.robustness`` — the robustness conditions applied to test inputs.
* ``benchmark.protocol`` — the run: seeds, validation-only selection, one test evaluation per
  seed, writing the results.
* ``benchmark.partial`` — each finished seed kept as it completes, so a run resumes.
* ``benchmark.adhoc`` — the task derived from a user's own dataset (``adhoc-<dataset>``).
* ``benchmark.tune`` — hyper-parameter search on the validation split, one budget for every
  model (Optuna), saving the config ``run`` then uses.
* ``benchmark.results`` — the versioned, strictly validated results-file schema.
* ``benchmark.export`` — results to the Hugging Face ``.eval_results`` and model-index formats.
* ``benchmark.submit`` — re-computes a results file from its predictions before accepting it.
* ``benchmark.leaderboard`` — Markdown and static HTML (and the run summary); ``benchmark.plots``
  draws its charts, ``benchmark.screenshot`` renders the page to PNG with headless Chromium.
* ``benchmark.reference`` — the shipped reference results (``benchmark/data/reference/``): made
  by one command, re-checked, refused when stale.

Command line: ``python -m benchmark list|dataset|tune|run|submit|leaderboard|screenshot|
reference|export|eval-yaml``. Importing this
package loads nothing heavy; ``benchmark`` imports ``sdme`` and ``baselines``, never the reverse.
"""

from __future__ import annotations

__all__ = ["adhoc", "export", "leaderboard", "metrics", "partial", "plots", "protocol",
           "reference", "results", "robustness", "scoring", "screenshot", "submit", "tasks",
           "tune"]
