"""Clips/s of the same ``sdme build`` on the local process pool and on a Dask cluster, side by side.

One corpus of N clips (the bundled sample's clips repeated, as ``perf/bench_build.py`` makes it)
is built twice from a cold cache, each build in its own child process: with ``--workers N``
(the local ``ProcessPoolExecutor``) and with ``--scheduler`` (default ``local:N``, a
``distributed.LocalCluster`` of N worker processes on loopback, started and stopped by the build;
or the address of a running cluster). The table gives wall time, clips/s of the whole build and
of its extract stage, model loading, each modality's cost per clip and the peak memory of the
build's process tree; the two datasets' parquet files are compared byte for byte.

Usage::

    python perf/bench_cluster.py --clips 12 --workers 2
    python perf/bench_cluster.py --clips 36 --workers 2 --scheduler tcp://HOST:8786
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import SAMPLE, make_corpus, per_clip_costs, run_build  # noqa: E402


def parquet_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=12, help="Clips in the corpus.")
    parser.add_argument("--workers", type=int, default=2,
                        help="Local pool processes, and LocalCluster workers for local:N.")
    parser.add_argument("--scheduler", default=None,
                        help="Dask scheduler to compare with (default: local:WORKERS).")
    parser.add_argument("--fps", type=float, default=5.0, help="Video frames sampled per second.")
    parser.add_argument("--device", default="cpu", help="auto, cpu or cuda.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args(argv)
    scheduler = args.scheduler or f"local:{args.workers}"

    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="sdme-bench-cluster-") as tmp:
        raw = make_corpus(SAMPLE, Path(tmp) / "raw", args.clips)
        outs = {"local pool": Path(tmp) / "pool" / "bench", "dask": Path(tmp) / "dask" / "bench"}
        runs["local pool"] = run_build(raw, outs["local pool"], args.workers, args.fps,
                                       args.device)
        runs["dask"] = run_build(raw, outs["dask"], 1, args.fps, args.device, scheduler)
        same = parquet_bytes(outs["local pool"]) == parquet_bytes(outs["dask"])

    print(f"sdme build, {args.clips} clips repeated from {SAMPLE.name}, fps {args.fps:g}, device "
          f"{args.device}, {os.cpu_count()} CPU(s), cold cache, each build in a child process")
    labels = {"local pool": f"local pool ({args.workers} proc.)", "dask": f"dask {scheduler}"}
    print(f"  {'':<28}" + "".join(f"{labels[k]:>24}" for k in runs))

    def row(name: str, values: list[str]) -> None:
        print(f"  {name:<28}" + "".join(f"{v:>24}" for v in values))

    infos = {k: r["build_info"] for k, r in runs.items()}
    costs = {k: per_clip_costs(i) for k, i in infos.items()}
    row("wall, whole build (s)", [f"{r['wall_s']:.1f}" for r in runs.values()])
    row("clips/s, whole build", [f"{args.clips / r['wall_s']:.3f}" for r in runs.values()])
    row("clips/s, extract stage", [f"{args.clips / i['timings']['extract']:.3f}"
                                   for i in infos.values()])
    row("model loading (s, summed)", [f"{c['load_models']['wall']:.1f} wall "
                                      f"{c['load_models']['cpu']:.1f} CPU"
                                      for c in costs.values()])
    for m in ("text", "audio", "vision"):
        row(f"{m} per clip (s)", [f"{c[m]['wall']:.3f} wall {c[m]['cpu']:.3f} CPU"
                                  for c in costs.values()])
    row("peak RSS, process tree (MiB)", [f"{r['peak_rss_bytes'] / 2**20:.0f}"
                                         for r in runs.values()])
    row("executor", [i["build"].get("executor", "?") for i in infos.values()])
    print(f"  same parquet bytes: {'yes' if same else 'NO'}")
    results = {"clips": args.clips, "workers": args.workers, "scheduler": scheduler,
               "same_parquet": same, "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if not same:
        raise SystemExit("the local and the cluster build wrote different parquet files")
    return results


if __name__ == "__main__":
    main()
