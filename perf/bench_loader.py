"""Throughput and memory of the benchmark's data loaders against a plain pyarrow scan.

On the CMU-MOSEI-sized synthetic corpus (``perf/common.py``: 23,453 clips, about 4.7 GB of
parquet; generated with ``sdme synth`` when the folder holds no dataset), each in a fresh
child process so that one does not pollute the other's memory figures:

1. **pyarrow scan** (``scan``, the reference) — every row group of the split's shards read with
   ``pyarrow.parquet.ParquetFile.read_row_group`` (the feature columns only, pyarrow's own
   column threads on, its pool as large as the machine's CPU count even where
   ``OMP_NUM_THREADS`` would make it smaller) and each feature column flattened to numpy: the
   least work that materialises every feature value. ``scan-1t`` is the same with one decoding
   thread: the gap between the two is what decoding on every core gains.
2. **training loader** (``train``) — what ``benchmark run`` trains on:
   ``benchmark.protocol.StreamedRows`` (``sdme.loading.ParquetRows`` reading the model's input
   and target columns, windowed shuffle, the next window decoded in a background thread, its
   row groups two at a time; pyarrow's pool as the environment sizes it)
   through ``baselines.train.make_loader`` (a ``torch`` DataLoader and
   ``baselines.data.Collator``, for a model built for the dataset's feature sizes), one epoch
   (or ``--batches``).
3. **evaluation loader** (``eval``) — what validation and the test pass read: the same in file
   order (``make_loader(train=False)``).

These are the loader modes the code uses (the memory-mapped ``datasets`` table is not read by
the benchmark any more, so it is not measured). The four run in turn, ``--repeats`` rounds, so
that a shared machine's load hits them alike. Reported per mode: samples/s in each round (from
the first read to the last, once the reader is made), the median over rounds of its ratio to the
same round's scan (goal: at least 0.85), peak RSS (``VmHWM``; goal: below 1.5 GB) and the
sampled peaks of its anonymous and file-backed parts. The machine's CPU count and load averages
are printed too.

Usage::

    python perf/bench_loader.py                      # MOSEI-sized synth in the data dir
    python perf/bench_loader.py --dataset DIR --batches 200 --threads 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MemorySampler,
    child_env,
    ensure_dataset,
    machine,
    tree_bytes,
)

GOAL_RATIO = 0.85
GOAL_RSS_MB = 1536
MODES = ("train", "eval")


def _info(dataset: Path) -> dict:
    return json.loads((dataset / "build_info.json").read_text())


def run_scan(dataset: Path, split: str, batch_size: int, batches: int,
             threads: bool = True) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pyarrow sizes its thread pool from OMP_NUM_THREADS when that is set (OMP_NUM_THREADS=1,
    # advised for torch on a busy CPU box, leaves it one thread): the reference scan always
    # decodes on every core, whatever the environment gives the loaders
    pa.set_cpu_count(os.cpu_count() or 1)
    columns = [f"{m}_feat" for m in _info(dataset)["features"]]
    limit = batches * batch_size if batches else 0
    n = 0
    with MemorySampler() as mem:
        start = time.perf_counter()
        for path in (dataset / p for p in _info(dataset)["data_files"][split]):
            parquet = pq.ParquetFile(path)
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=columns, use_threads=threads)
                for name in columns:
                    for chunk in table.column(name).chunks:
                        getattr(chunk, "storage", chunk).flatten().flatten().to_numpy()
                n += table.num_rows
                if limit and n >= limit:
                    break
            if limit and n >= limit:
                break
        seconds = time.perf_counter() - start
    return {"samples": n, "seconds": seconds, "samples_per_s": n / seconds, **mem.figures()}


def run_loader(dataset: Path, split: str, batch_size: int, batches: int, workers: int,
               window: int, mode: str) -> dict:
    import baselines
    from baselines.train import make_config, make_loader
    from benchmark.protocol import StreamedRows, input_columns
    from benchmark.tasks import get_task
    from sdme.loading import read_features

    info = _info(dataset)
    dims = {m: f["dim"] for m, f in info["features"].items()}
    task = get_task("sdme-sample-discrete")  # a discrete task on the `label` column
    train = mode == "train"
    with MemorySampler() as mem:
        columns = input_columns(list(read_features(dataset)), task, with_targets=train)
        data = StreamedRows(dataset, task, split, columns, seed=0, shuffle=train, window=window)
        model = baselines.create_model("early_fusion", input_dims=dims,
                                       num_classes=len(info["taxonomy"]))
        config = make_config(batch_size=batch_size, num_workers=workers, progress=False)
        n = seen = 0
        start = time.perf_counter()
        for batch in make_loader(data, model, config, train=train):
            n += len(batch.ids)
            seen += 1
            if batches and seen >= batches:
                break
        seconds = time.perf_counter() - start
    return {"samples": n, "seconds": seconds, "samples_per_s": n / seconds, "window": window,
            **mem.figures()}


def _child(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--dataset", str(args.dataset),
           "--split", args.split, "--batch-size", str(args.batch_size), "--batches",
           str(args.batches), "--workers", str(args.workers), "--window", str(args.window),
           "--threads", str(args.threads)]
    done = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from sdme import paths
    from sdme.synth import MOSEI_CLIPS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=None,
                        help="Built dataset folder (default: <data dir>/built/synth-mosei; "
                             "generated when absent).")
    parser.add_argument("--n", type=int, default=MOSEI_CLIPS, help="Clips to generate.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=0, help="0: one full epoch.")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers.")
    parser.add_argument("--window", type=int, default=8,
                        help="Row groups per shuffle window of the streaming loader.")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default).")
    parser.add_argument("--repeats", type=int, default=3,
                        help="Rounds of every measurement, interleaved (ratios: median).")
    parser.add_argument("--json", type=Path, default=None, help="Write the figures here too.")
    parser.add_argument("--child", choices=["scan", "scan-1t", *MODES], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dataset = args.dataset or paths.built_dir("synth-mosei")

    if args.child:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if args.child in ("scan", "scan-1t"):
            figures = run_scan(args.dataset, args.split, args.batch_size, args.batches,
                               threads=args.child == "scan")
        else:
            figures = run_loader(args.dataset, args.split, args.batch_size, args.batches,
                                 args.workers, args.window, args.child)
        print(json.dumps(figures))
        return

    results: dict = {"dataset": str(args.dataset), "split": args.split,
                     "batch_size": args.batch_size, "workers": args.workers,
                     "threads": args.threads, "machine_before": machine()}
    generated = ensure_dataset(args.dataset, args.n, args.seed)
    if generated:
        results["generate"] = generated
    results["parquet_gb"] = tree_bytes(args.dataset / "data") / 2**30
    kinds = ("scan", "scan-1t", *MODES)
    rounds = [{kind: _child(kind, args) for kind in kinds} for _ in range(args.repeats)]
    results["rounds"] = rounds
    results["machine_after"] = machine()
    results["goals"] = {}
    for mode in MODES:  # each loader against the scans of its own round, median over rounds
        ratio = statistics.median(r[mode]["samples_per_s"] / r["scan"]["samples_per_s"]
                                  for r in rounds)
        results[f"{mode}_vs_scan"] = ratio
        results[f"{mode}_vs_scan_1t"] = statistics.median(
            r[mode]["samples_per_s"] / r["scan-1t"]["samples_per_s"] for r in rounds)
        peak = max(r[mode]["peak_rss_mb"] for r in rounds)
        results["goals"][mode] = {"at_least_0.85_of_scan": ratio >= GOAL_RATIO,
                                  "peak_rss_below_1.5gb": peak < GOAL_RSS_MB}
    print(f"{args.dataset} ({results['parquet_gb']:.1f} GB parquet), split {args.split}, "
          f"{args.repeats} round(s) of {', '.join(kinds)}; {results['machine_before']['cpus']} "
          f"CPUs, load average {results['machine_before']['load_average']} before, "
          f"{results['machine_after']['load_average']} after; OMP_NUM_THREADS "
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')} for the loaders")
    for kind in kinds:
        rates = ", ".join(f"{r[kind]['samples_per_s']:.0f}" for r in rounds)
        r = max((r[kind] for r in rounds), key=lambda x: x["peak_rss_mb"])
        print(f"{kind:>8}: {rates} samples/s over {r['samples']} samples; peak RSS "
              f"{r['peak_rss_mb']:.0f} MB (anon {r['peak_anon_mb']:.0f} MB, file-backed "
              f"{r['peak_file_mb']:.0f} MB)")
    for mode in MODES:
        print(f"{mode}/scan rate (median over rounds): {results[f'{mode}_vs_scan']:.2f} (goal "
              f"{GOAL_RATIO}; {results[f'{mode}_vs_scan_1t']:.2f} of the one-thread scan); "
              f"goals met: {results['goals'][mode]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
