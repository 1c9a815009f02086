"""Throughput and memory of the training data loader on a CMU-MOSEI-sized built dataset.

The dataset (by default 23,453 clips of text 50x768, audio 500x74 and vision 375x35 at most,
about 4.7 GB of parquet) is made with ``sdme synth`` when the folder does not hold a built
dataset yet. Then, each in a fresh child process so that one does not pollute the other's
memory figures:

1. **pyarrow scan** — ``pyarrow.parquet.ParquetFile.iter_batches`` over the split's shards, the
   feature columns flattened to numpy (the least work that materialises every feature value):
   the reference rate.
2. **trainer loader** (``loader``) — exactly the trainer's path: ``sdme.loading.load_dataset``
   (Hugging Face ``datasets``, a memory-mapped Arrow copy; its one-off parquet-to-Arrow
   preparation is timed separately), then ``baselines.train.make_loader``
   (``with_format("numpy")``, a shuffling ``torch`` DataLoader, ``baselines.data.Collator``) for
   a model built for the dataset's feature sizes, iterated for one epoch (or ``--batches``).
3. **streaming loader** (``stream``) — the same ``make_loader`` over
   ``sdme.loading.ParquetRows`` (parquet row groups decoded on demand, windowed shuffle).
4. **benchmark protocol** (``protocol``) — what ``python -m benchmark run`` trains on:
   ``benchmark.protocol.StreamedRows`` (``ParquetRows`` reading only the model's input and
   target columns, the target renamed ``label``) through the same ``make_loader``.

Reported per run: samples/s (the first batch, with its one-off set-up, excluded), wall time,
peak RSS (``VmHWM``) and the peaks of its anonymous and file-backed parts (sampled from
``/proc/self/status`` every 20 ms; file-backed pages are the memory-mapped Arrow files, which the
kernel can drop under memory pressure, but which grow towards the dataset's size over a shuffled
epoch). Goal: peak RSS < 2 GB and at least half the scan rate.

Usage::

    python perf/bench_loader.py                      # MOSEI-sized synth in the data dir
    python perf/bench_loader.py --dataset DIR --batches 200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))


class MemorySampler:
    """Peak VmRSS / RssAnon / RssFile of this process, sampled from /proc in a thread (Linux)."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile")

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peaks = dict.fromkeys(self.FIELDS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    key, _, value = line.partition(":")
                    if key in self.peaks:
                        self.peaks[key] = max(self.peaks[key], int(value.split()[0]) * 1024)
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def _shards(dataset: Path, split: str) -> list[Path]:
    info = json.loads((dataset / "build_info.json").read_text())
    return [dataset / p for p in info["data_files"][split]]


def run_scan(dataset: Path, split: str, batch_size: int, batches: int) -> dict:
    import pyarrow.parquet as pq

    n = seen = 0
    start = first = time.perf_counter()
    with MemorySampler() as mem:
        for path in _shards(dataset, split):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
                for m in ("text", "audio", "vision"):
                    column = batch.column(f"{m}_feat")
                    column = getattr(column, "storage", column)
                    column.flatten().flatten().to_numpy()
                seen += 1
                if seen == 1:
                    first = time.perf_counter()
                else:
                    n += batch.num_rows
                if batches and seen > batches:
                    break
            if batches and seen > batches:
                break
    end = time.perf_counter()
    return {"samples": n, "seconds": end - first, "samples_per_s": n / (end - first),
            "wall_s": end - start, **_memory(mem)}


def _iterate(data, model, batch_size: int, batches: int, workers: int) -> dict:
    """Runs the trainer's loader over ``data``; the rate leaves out the first batch (start-up)."""
    from baselines.train import make_config, make_loader

    config = make_config(batch_size=batch_size, num_workers=workers, progress=False)
    loader = make_loader(data, model, config, train=True)
    n = seen = 0
    start = first = time.perf_counter()
    for batch in loader:
        seen += 1
        if seen == 1:
            first = time.perf_counter()
        else:
            n += len(batch.ids)
        if batches and seen > batches:
            break
    end = time.perf_counter()
    return {"samples": n, "seconds": end - first, "samples_per_s": n / (end - first),
            "wall_s": end - start}


def run_loader(dataset: Path, split: str, batch_size: int, batches: int, workers: int,
               hf_cache: Path) -> dict:
    import baselines
    from sdme.loading import feature_dims, load_dataset, taxonomy

    with MemorySampler() as mem:
        t = time.perf_counter()
        data = load_dataset(dataset, split=split, cache_dir=hf_cache)
        prepare = time.perf_counter() - t
        model = baselines.create_model("early_fusion", input_dims=feature_dims(data),
                                       num_classes=len(taxonomy(data)))
        timing = _iterate(data, model, batch_size, batches, workers)
    return {**timing, "prepare_s": prepare, "rows": len(data), **_memory(mem)}


def run_stream(dataset: Path, split: str, batch_size: int, batches: int, workers: int,
               window: int) -> dict:
    import baselines
    from sdme.loading import ParquetRows

    info = json.loads((dataset / "build_info.json").read_text())
    dims = {m: f["dim"] for m, f in info["features"].items()}
    with MemorySampler() as mem:
        data = ParquetRows(dataset, split, seed=0, window=window)
        model = baselines.create_model("early_fusion", input_dims=dims,
                                       num_classes=len(info["taxonomy"]))
        timing = _iterate(data, model, batch_size, batches, workers)
    return {**timing, "window": window, **_memory(mem)}


def run_protocol(dataset: Path, split: str, batch_size: int, batches: int, workers: int,
                 window: int) -> dict:
    import baselines
    from benchmark.protocol import StreamedRows, input_columns
    from benchmark.tasks import get_task

    info = json.loads((dataset / "build_info.json").read_text())
    dims = {m: f["dim"] for m, f in info["features"].items()}
    task = get_task("sdme-sample-discrete")  # a discrete task on the `label` column
    with MemorySampler() as mem:
        import pyarrow.parquet as pq

        names = pq.ParquetFile(_shards(dataset, split)[0]).schema_arrow.names
        data = StreamedRows(dataset, task, split, input_columns(names, task, with_targets=True),
                            seed=0, window=window)
        model = baselines.create_model("early_fusion", input_dims=dims,
                                       num_classes=len(info["taxonomy"]))
        timing = _iterate(data, model, batch_size, batches, workers)
    return {**timing, "window": window, **_memory(mem)}


def _peak_rss_mb() -> float:
    """VmHWM (peak RSS of this process image; ``ru_maxrss`` would include the parent's)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory(mem: MemorySampler) -> dict:
    return {"peak_rss_mb": _peak_rss_mb(),
            "peak_anon_mb": mem.peaks["RssAnon"] / 2**20,
            "peak_file_mb": mem.peaks["RssFile"] / 2**20}


def _child(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--dataset", str(args.dataset),
           "--split", args.split, "--batch-size", str(args.batch_size), "--batches",
           str(args.batches), "--workers", str(args.workers), "--hf-cache", str(args.hf_cache),
           "--window", str(args.window)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep
           + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_dataset(path: Path, n: int, seed: int) -> dict | None:
    """Makes the MOSEI-sized synthetic dataset when ``path`` holds none; returns its figures."""
    if (path / "build_info.json").is_file():
        return None
    code = ("import json, resource, sys, time; from sdme.synth import SynthConfig, synthesize; "
            "t = time.perf_counter(); "
            "synthesize(sys.argv[1], SynthConfig(n=int(sys.argv[2]), seed=int(sys.argv[3]))); "
            "hwm = [line.split()[1] for line in open('/proc/self/status') "
            "if line.startswith('VmHWM:')][0]; "
            "print(json.dumps({'seconds': time.perf_counter() - t, 'peak_rss_mb': "
            "int(hwm) / 1024}))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep
           + os.environ.get("PYTHONPATH", "")}
    print(f"generating {n} synthetic clips into {path} ...", file=sys.stderr)
    done = subprocess.run([sys.executable, "-c", code, str(path), str(n), str(seed)], env=env,
                          capture_output=True, text=True, check=True)
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
    parser.add_argument("--hf-cache", type=Path, default=None,
                        help="datasets cache dir (default: a temporary folder, removed after).")
    parser.add_argument("--json", type=Path, default=None, help="Write the figures here too.")
    parser.add_argument("--window", type=int, default=8,
                        help="Row groups per shuffle window of the streaming loader.")
    parser.add_argument("--child", choices=["scan", "loader", "stream", "protocol"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dataset = args.dataset or paths.built_dir("synth-mosei")

    if args.child == "scan":
        print(json.dumps(run_scan(args.dataset, args.split, args.batch_size, args.batches)))
        return
    if args.child == "loader":
        print(json.dumps(run_loader(args.dataset, args.split, args.batch_size, args.batches,
                                    args.workers, args.hf_cache)))
        return
    if args.child == "stream":
        print(json.dumps(run_stream(args.dataset, args.split, args.batch_size, args.batches,
                                    args.workers, args.window)))
        return
    if args.child == "protocol":
        print(json.dumps(run_protocol(args.dataset, args.split, args.batch_size, args.batches,
                                      args.workers, args.window)))
        return

    results: dict = {"dataset": str(args.dataset), "split": args.split,
                     "batch_size": args.batch_size, "workers": args.workers,
                     "cpus": os.cpu_count()}
    generated = ensure_dataset(args.dataset, args.n, args.seed)
    if generated:
        results["generate"] = generated
    results["parquet_gb"] = sum(p.stat().st_size for p in (args.dataset / "data").iterdir()
                                ) / 2**30
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        if args.hf_cache is None:
            args.hf_cache = Path(tmp)
        results["scan"] = _child("scan", args)
        results["loader"] = _child("loader", args)
        results["stream"] = _child("stream", args)
        results["protocol"] = _child("protocol", args)
    results["goals"] = {}
    kinds = ("loader", "stream", "protocol")
    for kind in kinds:
        ratio = results[kind]["samples_per_s"] / results["scan"]["samples_per_s"]
        results[f"{kind}_vs_scan"] = ratio
        results["goals"][kind] = {"peak_rss_below_2gb": results[kind]["peak_rss_mb"] < 2048,
                                  "at_least_half_scan_rate": ratio >= 0.5}
    for kind in ("scan", *kinds):
        r = results[kind]
        extra = f", prepare {r['prepare_s']:.1f} s" if "prepare_s" in r else ""
        print(f"{kind:>8}: {r['samples_per_s']:8.1f} samples/s over {r['samples']} samples "
              f"({r['seconds']:.1f} s{extra}); peak RSS {r['peak_rss_mb']:.0f} MB (anon "
              f"{r['peak_anon_mb']:.0f} MB, file-backed {r['peak_file_mb']:.0f} MB)")
    for kind in kinds:
        print(f"{kind}/scan rate: {results[f'{kind}_vs_scan']:.2f}; goals met: "
              f"{results['goals'][kind]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
