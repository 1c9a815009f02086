"""Each stage of a whole ``benchmark run`` at CMU-MOSEI scale, side by side, in one process.

Runs ``benchmark.protocol.run_benchmark`` (what ``python -m benchmark run`` runs) in a fresh
child process on the MOSEI-sized synthetic corpus (``perf/common.py``; generated when the folder
holds no dataset), by default early fusion, one seed, one epoch, every robustness condition of
the task. The child times the protocol's stages by wrapping the functions that do them, so the
figures are of the real run, taken in the same process and under the same load:

* ``describe``: split sizes, features and the test reference read from the parquet
  (``sdme.loading.split_sizes`` / ``read_features`` / ``read_columns``);
* ``stats``: the training split's feature moments for the noise scales
  (``sdme.loading.feature_stats``: recorded in the provenance, or computed once and cached);
* ``train epoch``: ``baselines.train._train_epoch``, the training epoch alone (reading,
  collating, forward, backward, optimiser);
* ``validation``: ``baselines.train.evaluate`` on the validation split;
* ``test + robustness``: the one pass over the test split that predicts it clean and under
  every condition (``baselines.train.predict_variants`` with
  ``benchmark.robustness.BatchConditions``);
* ``score + write``: ``benchmark.protocol.write_results``; ``other``: the rest of the run.

Before the run, the child imports what every process that trains and scores imports once,
whatever the data's size (torch._dynamo, which torch's optimisers import when the first one is
made, and scikit-learn, behind the metrics), like the import of torch itself: that time is
printed apart, with the ratio it would give inside the run.

Then: the whole run over the training epoch (goal <= 1.5), the child's peak RSS (goal < 1.5 GB;
``VmHWM``, with the sampled peaks of its anonymous and file-backed parts), and what was written
to disk: the ``datasets`` cache (a fresh ``HF_DATASETS_CACHE`` given to the child; goal: nothing,
no Arrow copy), the dataset folder (unchanged) and the run's data folder (results, predictions,
cached statistics). ``--scan-stats`` also times, after the run, the one-off computation of the
feature moments from the parquet that a dataset made before they were recorded costs once.

The machine's CPU count and load averages are printed with the figures: on a shared machine
absolute times are inflated; the ratios, taken in one process, much less so.

Usage::

    python perf/bench_run.py                               # early_fusion, 1 seed, 1 epoch
    python perf/bench_run.py --dataset DIR --model mren --threads 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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

STAGES = ("describe", "stats", "train_epoch", "validation", "robustness", "score_write")
LABELS = {"describe": "describe (parquet)", "stats": "stats", "train_epoch": "train epoch",
          "validation": "validation", "robustness": "test + robustness",
          "score_write": "score + write", "other": "other", "total": "run total"}


def run_child(args: argparse.Namespace) -> dict:
    """The run, with its stages timed (in the child process)."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import baselines.train as trainer
    import benchmark.protocol as protocol
    import sdme.loading as loading

    seconds = dict.fromkeys(STAGES, 0.0)
    calls = dict.fromkeys(STAGES, 0)
    peaks = dict.fromkeys(STAGES, 0.0)  # highest VmRSS sampled during each stage, MB
    inside: list[str] = []

    def current_rss_mb() -> float:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def sample_stages() -> None:
        while not done.is_set():
            stages = list(inside)  # the wrapper may pop it meanwhile
            if stages:
                peaks[stages[0]] = max(peaks[stages[0]], current_rss_mb())
            done.wait(0.02)

    import threading

    done = threading.Event()
    sampler = threading.Thread(target=sample_stages, daemon=True)
    sampler.start()

    def timed(module: object, name: str, stage: str) -> None:
        real = getattr(module, name)

        def wrapper(*a: object, **k: object) -> object:
            if inside:  # a stage within a stage (validation's predictions) counts once
                return real(*a, **k)
            inside.append(stage)
            start = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                seconds[stage] += time.perf_counter() - start
                calls[stage] += 1
                inside.pop()

        setattr(module, name, wrapper)

    for name in ("split_sizes", "read_features", "read_columns"):
        timed(loading, name, "describe")
    timed(loading, "feature_stats", "stats")
    timed(trainer, "_train_epoch", "train_epoch")
    timed(trainer, "evaluate", "validation")
    timed(trainer, "predict_variants", "robustness")
    timed(protocol, "write_results", "score_write")

    # What every process that trains and scores pays once, whatever the data's size, like the
    # import of torch itself: torch's optimisers import torch._dynamo when the first one is
    # made, the metrics import scikit-learn. Timed here, before the run, and shown apart.
    start = time.perf_counter()
    import sklearn.metrics  # noqa: F401
    import torch._dynamo  # noqa: F401
    imports = time.perf_counter() - start

    config = {"train": {"epochs": args.epochs, "progress": False, "batch_size": args.batch_size},
              "model": {}}
    with MemorySampler() as memory:
        start = time.perf_counter()
        output = protocol.run_benchmark(
            args.model, args.task, seeds=[int(s) for s in args.seeds.split(",")],
            device=args.device, config=config, out_dir=args.out, dataset=args.dataset,
            data_dir=args.data_dir)
        total = time.perf_counter() - start
    done.set()
    sampler.join()
    figures: dict = {"seconds": {**seconds, "total": total,
                                 "other": total - sum(seconds.values())},
                     "one_time_imports_s": imports,
                     "calls": calls, "memory": memory.figures(), "stage_peak_rss_mb": peaks,
                     "threads": torch.get_num_threads(),
                     "results": str(output.results_path),
                     "accuracy": output.results.aggregate.metrics[
                         output.results.task.definition["main_score"]].mean}
    if args.scan_stats:
        from sdme.built import BuildInfo

        info = BuildInfo.load(args.dataset)
        shards = [args.dataset / p for p in info.data_files["train"]]
        start = time.perf_counter()
        loading.scan_feature_stats(shards, list(info.dims))
        figures["scan_stats_s"] = time.perf_counter() - start
    return figures


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")
            if p.is_file()}


def main() -> None:
    from sdme import paths
    from sdme.synth import MOSEI_CLIPS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=None,
                        help="Built dataset folder (default: <data dir>/built/synth-mosei; "
                             "generated when absent).")
    parser.add_argument("--n", type=int, default=MOSEI_CLIPS, help="Clips to generate.")
    parser.add_argument("--model", default="early_fusion")
    parser.add_argument("--task", default="sdme-sample-discrete",
                        help="A task whose dataset fingerprint is not pinned.")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads in the run (0: torch's default).")
    parser.add_argument("--scan-stats", action="store_true",
                        help="Also time the one-off feature-moment scan of an older dataset.")
    parser.add_argument("--json", type=Path, default=None, help="Write the figures here too.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dataset = (args.dataset or paths.built_dir("synth-mosei")).resolve()

    if args.child:
        print(json.dumps(run_child(args)))
        return

    generated = ensure_dataset(args.dataset, args.n, 0)
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    user_cache = hf_home / "datasets"
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        hf_cache, data_dir = Path(tmp) / "hf-datasets-cache", Path(tmp) / "data"
        before = _listing(args.dataset)
        user_before = tree_bytes(user_cache)
        load_before = machine()
        cmd = [sys.executable, __file__, "--child", "--dataset", str(args.dataset),
               "--model", args.model, "--task", args.task, "--seeds", args.seeds,
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--device", args.device, "--threads", str(args.threads),
               "--out", str(data_dir / "results"), "--data-dir", str(data_dir)]
        if args.scan_stats:
            cmd.append("--scan-stats")
        start = time.perf_counter()
        done = subprocess.run(cmd, env=child_env(HF_DATASETS_CACHE=str(hf_cache)),
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        after = _listing(args.dataset)
        disk = {"hf_cache_bytes": tree_bytes(hf_cache),
                "user_hf_cache_growth_bytes": tree_bytes(user_cache) - user_before,
                "arrow_files": sorted(str(p) for p in Path(tmp).rglob("*.arrow")),
                "dataset_folder_changed": before != after,
                "data_dir_bytes": tree_bytes(data_dir),
                "data_dir_files": sorted(_listing(data_dir))}
    results = {"dataset": str(args.dataset), "model": args.model, "task": args.task,
               "seeds": args.seeds, "epochs": args.epochs, "device": args.device,
               "parquet_gb": tree_bytes(args.dataset / "data") / 2**30,
               "machine_before": load_before, "machine_after": machine(),
               "child_wall_s": wall, **figures, "disk": disk}
    if generated:
        results["generate"] = generated
    s = figures["seconds"]
    epoch = s["train_epoch"] or float("nan")
    print(f"{args.model} on {args.dataset} ({results['parquet_gb']:.1f} GB parquet), seeds "
          f"{args.seeds}, {args.epochs} epoch(s), {args.device}, {figures['threads']} torch "
          f"thread(s); {load_before['cpus']} CPUs, load average {load_before['load_average']} "
          f"before, {results['machine_after']['load_average']} after")
    print(f"{'stage':<20}{'seconds':>10}{'x epoch':>10}{'peak RSS MB':>14}")
    for stage in (*STAGES, "other", "total"):
        peak = figures["stage_peak_rss_mb"].get(stage)
        print(f"{LABELS[stage]:<20}{s[stage]:>10.1f}{s[stage] / epoch:>10.2f}"
              + (f"{peak:>14.0f}" if peak else ""))
    if "scan_stats_s" in figures:
        print(f"(one-off moment scan of an older dataset's training split: "
              f"{figures['scan_stats_s']:.1f} s, {figures['scan_stats_s'] / epoch:.2f} x epoch)")
    mem = figures["memory"]
    print(f"peak RSS {mem['peak_rss_mb']:.0f} MB (anon {mem['peak_anon_mb']:.0f} MB, "
          f"file-backed {mem['peak_file_mb']:.0f} MB)")
    print(f"disk: the run's datasets cache {disk['hf_cache_bytes']} bytes (the user's "
          f"~/.cache/huggingface/datasets, shared with other processes, grew "
          f"{disk['user_hf_cache_growth_bytes']} bytes meanwhile), .arrow files "
          f"{len(disk['arrow_files'])}, dataset folder "
          f"{'CHANGED' if disk['dataset_folder_changed'] else 'unchanged'}, run data dir "
          f"{disk['data_dir_bytes'] / 2**10:.0f} KB ({', '.join(disk['data_dir_files'])})")
    imports = figures["one_time_imports_s"]
    print(f"(before the run, once per process: importing torch._dynamo and scikit-learn, "
          f"{imports:.1f} s; with them the run is {(s['total'] + imports) / epoch:.2f} x epoch)")
    ratio = s["total"] / epoch
    # (the user's own datasets cache is shared with the other processes of the machine: its
    # growth is printed, not counted; the run was given the fresh cache)
    no_copy = not (disk["hf_cache_bytes"] or disk["arrow_files"]
                   or disk["dataset_folder_changed"])
    results["goals"] = {"run_at_most_1.5x_epoch": ratio <= 1.5,
                        "peak_rss_below_1.5gb": mem["peak_rss_mb"] < 1536,
                        "no_copy_on_disk": no_copy}
    print(f"run / train epoch: {ratio:.2f}; goals met: {results['goals']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
