"""Every registered model on one task: accuracy by deviation level, relevance AUROC, wall time.

The comparison behind issue #10 ("mren that earns its name"): each model (default: every model
``baselines.list_models()`` registers, mren's ablations included) runs the standard protocol
(``benchmark.protocol.run_benchmark``: per seed, train on the train split, select on validation,
score the sealed test split once) with its default configuration and the default trainer
options — the same budget for every model, nothing tuned. The table gives, as mean ± half-width
of the 95% t-interval over the seeds:

* accuracy and macro-F1 on the test split;
* accuracy by deviation level (how many modalities express another class than the clip's), and
  on every clip with deviation >= 1 (pooled per seed over levels 1-3);
* relevance AUROC (models that estimate relevance);
* wall time of the model's whole run (training every seed and predicting the test split under
  the robustness conditions), and per seed.

Then the issue's targets for ``mren``: at least 3 points above the best non-mren model on
clips with deviation >= 1, not below it at deviation 0, relevance AUROC >= 0.9.

Results files go to ``--out`` (default ``<data dir>/results``); with ``--resume`` a model whose
results file for the task and seeds is already there is not run again (its wall time is read
from the ``.wall.json`` beside it). Run with the machine otherwise idle for meaningful times.

Usage::

    sdme synth --preset benchmark && sdme synth --preset structured
    python benchmarks/bench_relevance.py --task sdme-synth-discrete@1 --seeds 0,1,2,3,4
    python benchmarks/bench_relevance.py --task sdme-synth-discrete@2 --models mren,late_fusion
    python benchmarks/bench_relevance.py --task sdme-sample-discrete --dataset DIR  # any corpus
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _cell(values: list[float]) -> str:
    from benchmark.metrics import aggregate

    if not values:
        return "—"
    agg = aggregate(values)
    half = agg.ci95_half_width
    return f"{agg.mean:.3f}" + ("" if half is None else f" ± {half:.3f}")


def _pooled(seed: object, levels: list[str]) -> float | None:
    strata = [seed.stratified.by_deviation[k] for k in levels
              if seed.stratified is not None and k in seed.stratified.by_deviation]
    n = sum(s.n for s in strata)
    return None if n == 0 else sum(s.n * s.accuracy for s in strata) / n


def summarise(results: object, seconds: float) -> dict[str, object]:
    """One table row's numbers (lists over seeds) from a results file."""
    seeds = results.per_seed
    row: dict[str, object] = {
        "accuracy": [s.metrics["accuracy"] for s in seeds],
        "macro_f1": [s.metrics["macro_f1"] for s in seeds if "macro_f1" in s.metrics],
        "auroc": [s.relevance_auroc for s in seeds if s.relevance_auroc is not None],
        "seconds": seconds, "per_seed_seconds": seconds / max(len(seeds), 1),
    }
    for level in ("0", "1", "2", "3"):
        row[f"dev{level}"] = [v for s in seeds if (v := _pooled(s, [level])) is not None]
    row["dev>=1"] = [v for s in seeds if (v := _pooled(s, ["1", "2", "3"])) is not None]
    counts = {}
    if seeds and seeds[0].stratified is not None:
        counts = {k: v.n for k, v in seeds[0].stratified.by_deviation.items()}
    row["counts"] = counts
    return row


def run_model(model: str, task: str, seeds: list[int], out: Path, args: argparse.Namespace
              ) -> dict[str, object]:
    from benchmark.protocol import run_benchmark
    from benchmark.results import load_results, results_path
    from benchmark.tasks import get_task

    task_def = get_task(task)
    target = results_path(out, model, task_def.name)
    wall = target.with_name(target.stem + ".wall.json")
    if args.resume and target.exists() and wall.exists():
        results = load_results(target)
        if results.seeds == seeds and results.task.version == task_def.version:
            return summarise(results, json.loads(wall.read_text())["seconds"])
    start = time.perf_counter()
    output = run_benchmark(model, task_def, seeds=seeds, device=args.device, out_dir=out,
                           data_dir=args.data_dir, dataset=args.dataset,
                           log=(lambda msg: print(msg, file=sys.stderr, flush=True)))
    seconds = time.perf_counter() - start
    wall.write_text(json.dumps({"seconds": seconds}))
    return summarise(output.results, seconds)


def table(rows: dict[str, dict[str, object]]) -> str:
    counts = next((r["counts"] for r in rows.values() if r["counts"]), {})
    head = ["model", "accuracy", "macro F1"] + [
        f"dev {k} (n={counts.get(k, '?')})" for k in ("0", "1", "2", "3")] + [
        "dev >= 1", "relevance AUROC", "wall (s)", "per seed (s)"]
    order = sorted(rows, key=lambda m: -float(np.mean(rows[m]["dev>=1"] or [0])))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in order:
        r = rows[m]
        cells = [m, _cell(r["accuracy"]), _cell(r["macro_f1"])] + [
            _cell(r[f"dev{k}"]) for k in ("0", "1", "2", "3")] + [
            _cell(r["dev>=1"]), _cell(r["auroc"]), f"{r['seconds']:.0f}",
            f"{r['per_seed_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: dict[str, dict[str, object]], model: str = "mren") -> str:
    """The issue's three targets for ``model`` against the best non-mren model."""
    others = {m: r for m, r in rows.items() if not m.startswith("mren")}
    if model not in rows or not others:
        return "targets: need mren and at least one other model in the table"
    mean = {m: {k: float(np.mean(r[k])) if r[k] else float("nan")
                for k in ("dev>=1", "dev0")} for m, r in rows.items()}
    best = max(others, key=lambda m: mean[m]["dev>=1"])
    gap = mean[model]["dev>=1"] - mean[best]["dev>=1"]
    gap0 = mean[model]["dev0"] - mean[best]["dev0"]
    auroc = float(np.mean(rows[model]["auroc"])) if rows[model]["auroc"] else float("nan")
    return "\n".join([
        f"best other model on dev >= 1: {best}",
        f"  {model} - {best} on dev >= 1: {100 * gap:+.1f} points "
        f"({'met' if gap >= 0.03 else 'NOT met'}: target >= +3)",
        f"  {model} - {best} at dev 0:   {100 * gap0:+.1f} points "
        f"({'met' if gap0 >= 0 else 'NOT met'}: target >= 0)",
        f"  {model} relevance AUROC:      {auroc:.3f} "
        f"({'met' if auroc >= 0.9 else 'NOT met'}: target >= 0.9)"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="sdme-synth-discrete@1")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--models", default=None,
                        help="comma-separated (default: every registered model)")
    parser.add_argument("--dataset", default=None, help="a built dataset folder to use instead "
                        "of the task's dataset (its fingerprint must match a pinned task)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help="results store (default <data dir>/results)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--resume", action="store_true",
                        help="reuse results files already in --out for the same task and seeds")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    import torch

    import baselines
    from sdme import paths

    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",") if args.models else baselines.list_models()
    out = Path(args.out) if args.out else paths.data_dir(args.data_dir) / "results"
    rows = {}
    for model in models:
        rows[model] = run_model(model, args.task, seeds, out, args)
        print(f"{model}: done ({rows[model]['seconds']:.0f} s)", file=sys.stderr, flush=True)
    print(f"task {args.task}, seeds {seeds}, device {args.device}, {args.threads} threads; "
          f"mean ± 95% CI half-width over seeds\n")
    print(table(rows))
    print()
    print(targets(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
