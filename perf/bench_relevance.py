"""Does estimating relevance help when modalities deviate? Every model of a leaderboard store,
side by side: accuracy by deviation level, relevance AUROC, time per seed, and mren's targets.

The numbers are read from results files — by default the shipped reference results
(``benchmark/data/reference/``, made by ``bash scripts/make_reference_results.sh``: every
registered model, mren's ablations included, the protocol's five seeds, each model's default
config and the default trainer options, so the same tuning budget, none, for every model) —
and recomputed here from their per-seed records:

* accuracy and macro-F1 on the test split (mean ± half-width of the 95% t-interval over seeds);
* accuracy by deviation level (how many modalities express another class than the clip's), and
  on every clip with deviation >= 1, pooled per seed over levels 1-3;
* relevance AUROC (models that estimate relevance);
* wall seconds per seed (training and test predictions), from ``<task>.timings.json`` beside
  the results, with the machine they were measured on.

Then the targets of issue #10 for ``mren``: at least 3 points above the best model outside the
mren family on clips with deviation >= 1, not below it at deviation 0, relevance AUROC >= 0.9.

Usage::

    python perf/bench_relevance.py                                  # the shipped reference
    python perf/bench_relevance.py --task sdme-synth-discrete       # another task
    python -m benchmark reference make --store /tmp/ref --task sdme-synth-discrete
    python perf/bench_relevance.py --store /tmp/ref --task sdme-synth-discrete
    python perf/bench_relevance.py --store ~/.cache/sdme/leaderboard  # your accepted results
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LEVELS = ("0", "1", "2", "3")


def _cell(values: Sequence[float]) -> str:
    from benchmark.metrics import aggregate

    if not values:
        return "—"
    agg = aggregate(list(values))
    half = agg.ci95_half_width
    return f"{agg.mean:.3f}" + ("" if half is None else f" ± {half:.3f}")


def _stratum(seed: Any, table: str, key: str) -> float | None:
    """Accuracy of one stratum of one seed (``by_deviation`` level or ``by_agreement`` key)."""
    stratum = getattr(seed.stratified, table).get(key) if seed.stratified else None
    return None if stratum is None else stratum.accuracy


def summarise(results: Any, timing: Mapping[str, Any] | None) -> dict[str, Any]:
    """One table row (lists over seeds) from a results file and its timing record."""
    from benchmark.results import AGREEMENT_KEYS

    seeds = results.per_seed
    row: dict[str, Any] = {
        "accuracy": [s.metrics["accuracy"] for s in seeds],
        "macro_f1": [s.metrics["macro_f1"] for s in seeds if "macro_f1" in s.metrics],
        "auroc": [s.relevance_auroc for s in seeds if s.relevance_auroc is not None],
        "seconds": [float(v) for v in (timing or {}).get("seconds") or []
                    if isinstance(v, (int, float))],
    }
    for level in LEVELS:
        row[f"dev{level}"] = [v for s in seeds
                              if (v := _stratum(s, "by_deviation", level)) is not None]
    # deviation >= 1: the results' "conflicting" stratum (benchmark.results.agreement_strata)
    row["dev>=1"] = [v for s in seeds
                     if (v := _stratum(s, "by_agreement", AGREEMENT_KEYS[1])) is not None]
    first = seeds[0].stratified if seeds else None
    row["counts"] = {k: v.n for k, v in first.by_deviation.items()} if first else {}
    return row


def table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """The Markdown table, best on deviation >= 1 first."""
    counts = next((r["counts"] for r in rows.values() if r["counts"]), {})
    head = ["model", "accuracy", "macro F1"] + [
        f"dev {k} (n={counts.get(k, '?')})" for k in LEVELS] + [
        "dev >= 1", "relevance AUROC", "s / seed"]
    order = sorted(rows, key=lambda m: -float(np.mean(rows[m]["dev>=1"] or [0])))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in order:
        r = rows[m]
        cells = [m, _cell(r["accuracy"]), _cell(r["macro_f1"])] + [
            _cell(r[f"dev{k}"]) for k in LEVELS] + [
            _cell(r["dev>=1"]), _cell(r["auroc"]),
            f"{np.mean(r['seconds']):.0f}" if r["seconds"] else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: Mapping[str, Mapping[str, Any]], model: str = "mren") -> str:
    """The three targets for ``model`` against the best model outside its family."""
    others = {m: r for m, r in rows.items() if not m.startswith("mren")}
    if model not in rows or not others:
        return f"targets: need {model} and at least one model outside the mren family"

    def mean(values: Sequence[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    best = max(others, key=lambda m: mean(others[m]["dev>=1"]))
    gap = mean(rows[model]["dev>=1"]) - mean(rows[best]["dev>=1"])
    gap0 = mean(rows[model]["dev0"]) - mean(rows[best]["dev0"])
    auroc = mean(rows[model]["auroc"])
    return "\n".join([
        f"best model outside the mren family on dev >= 1: {best}",
        f"  {model} - {best} on dev >= 1: {100 * gap:+.1f} points "
        f"({'met' if gap >= 0.03 else 'NOT met'}: target >= +3)",
        f"  {model} - {best} at dev 0:    {100 * gap0:+.1f} points "
        f"({'met' if gap0 >= 0 else 'NOT met'}: target >= 0)",
        f"  {model} relevance AUROC:       {auroc:.3f} "
        f"({'met' if auroc >= 0.9 else 'NOT met'}: target >= 0.9)"])


def main(argv: list[str] | None = None) -> int:
    from benchmark.leaderboard import load_boards
    from benchmark.reference import REFERENCE_DIR, read_timings
    from benchmark.results import ResultsError
    from benchmark.tasks import DEFAULT_TASK, TaskError, get_task

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default=DEFAULT_TASK)
    parser.add_argument("--store", default=str(REFERENCE_DIR),
                        help="a leaderboard store, <store>/<task>/<model>.json (default: the "
                             "shipped reference results)")
    args = parser.parse_args(argv)
    try:
        task = get_task(args.task)
        boards = load_boards(args.store, task.name)
    except (TaskError, ResultsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not boards:
        print(f"error: {args.store}: no results for {task.name}; make them with "
              "`bash scripts/make_reference_results.sh` (or `python -m benchmark reference "
              "make --store DIR`)", file=sys.stderr)
        return 1
    timings = read_timings(args.store, task.name)
    rows = {r.model.name: summarise(r, timings.get(r.model.name)) for r in boards[0].entries}
    seeds = sorted({len(r.per_seed) for r in boards[0].entries})
    machines = sorted({f"{t['machine'].get('processor') or t['machine'].get('platform')}, "
                       f"{t['machine'].get('cpus')} CPUs, {t['machine'].get('torch_threads')} "
                       f"torch threads, {t['machine'].get('device')}"
                       for t in timings.values() if isinstance(t.get("machine"), dict)})
    print(f"task {task.key} ({Path(args.store)}), {'/'.join(map(str, seeds))} seeds per model; "
          "mean ± 95% CI half-width over seeds; read from the results files, nothing is run "
          f"here; s / seed from {task.name}.timings.json, measured when the results were made "
          "on: " + ("; ".join(machines) or "not recorded") + "\n")
    print(table(rows))
    print()
    print(targets(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
