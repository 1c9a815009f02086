"""The SDME benchmark: tasks, metric spec, protocol, results files, submission and leaderboard.

* ``benchmark.tasks`` — frozen task definitions, registered by name and version.
* ``benchmark.metrics`` — the versioned metric spec (``METRIC_SPEC_VERSION``).
* ``benchmark.protocol`` — seeds, validation-only selection, one test evaluation per seed,
  robustness conditions, scoring from predictions.
* ``benchmark.results`` — the versioned, strictly validated results-file schema and exporters.
* ``benchmark.submit`` — re-computes a results file from its predictions before accepting it.
* ``benchmark.leaderboard`` — Markdown and static HTML with plots.

Command line: ``python -m benchmark list|run|submit|leaderboard|export``. Importing this
package loads nothing heavy; ``benchmark`` imports ``sdme`` and ``baselines``, never the reverse.
"""

from __future__ import annotations

__all__ = ["leaderboard", "metrics", "protocol", "results", "submit", "tasks"]
