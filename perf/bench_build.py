"""Throughput and memory of ``sdme build``, per stage, on a corpus of N clips.

The corpus is made by repeating the bundled sample's clips, taking the speakers in turn (each copy
gets its own clip, video and speaker ids), so any N >= 3 clips has the three speaker groups the
build's three-way speaker-disjoint split needs; for N < 3 the bench says so and stops, as the
build would. Two measurements:

1. **Stages, one process, one clip at a time** (after a warm-up clip that loads the models):
   ``decode`` (video frames at ``--fps`` with ``sdme.media.video.read_frames`` plus the audio
   track with ``sdme.media.audio.load_audio``), ``faces`` (the vision extractor minus its video
   decoding: MTCNN, crops, geometry), ``audio`` (the audio extractor minus its decoding), ``text``
   (the text extractor). Clips/s and sampled video frames/s per stage.
2. **The whole build** (``sdme.build.build`` in a child process, ``--workers`` processes or
   ``--scheduler`` (a Dask cluster, e.g. ``local:2``), cold cache): wall time, clips/s,
   frames/s, its own per-stage timings (``build_info.json``: stage wall times, model loading,
   and each modality's summed per-clip wall and CPU seconds), the cost per clip of each
   modality (and text's as a share of vision's), and peak resident memory of the build's whole
   process tree (sampled from ``/proc`` every 50 ms; Linux).

Usage::

    python perf/bench_build.py --clips 72 --workers 2
    python perf/bench_build.py --clips 36 --workers 1 --device cpu --json out.json
    python perf/bench_build.py --clips 8 --scheduler local:2 --skip-stages

``perf/bench_cluster.py`` runs the same build on the local pool and on a Dask cluster side by
side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from sdme.schema import (  # noqa: E402
    CLIPS_DIR,
    CorpusManifest,
    clip_audio_path,
    clip_media_path,
    make_manifest_files,
    read_annotations,
    write_annotations,
)

SAMPLE = REPO_ROOT / "sdme" / "data" / "sample"


def speakers_in_turn(clips: list) -> list:
    """The clips reordered so that consecutive clips come from different speakers, in turn."""
    by_speaker: dict[str, list] = {}
    for clip in clips:
        by_speaker.setdefault(clip.speaker_id, []).append(clip)
    rounds = max(len(group) for group in by_speaker.values())
    return [group[i] for i in range(rounds) for group in by_speaker.values() if i < len(group)]


def make_corpus(source: Path, target: Path, n_clips: int) -> Path:
    """A raw corpus of ``n_clips`` clips, cycling through ``source``'s clips speaker by speaker
    (hard links).

    Raises:
        SystemExit: The build could not split so few clips (fewer speaker groups than splits).
    """
    from sdme.splits import SplitError, assign_splits

    manifest = CorpusManifest.load(source)
    clips = speakers_in_turn(read_annotations(source / "annotations.csv"))
    (target / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n_clips):
        clip, rep = clips[i % len(clips)], i // len(clips)
        new = replace(clip, clip_id=f"{clip.clip_id}_r{rep}", video_id=f"{clip.video_id}_r{rep}",
                      speaker_id=f"{clip.speaker_id}_r{rep}", split=None)
        src, dst = clip_media_path(source, clip.clip_id), clip_media_path(target, new.clip_id)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        out.append(new)
    try:  # what the build will do with these clips: fail now, before the timed runs, if it can't
        assign_splits(out)
    except SplitError as exc:
        raise SystemExit(f"--clips {n_clips}: the build cannot use this corpus: {exc}") from None
    write_annotations(target / "annotations.csv", out)
    bench = replace(manifest, name=f"{manifest.name}-x{n_clips}", files=make_manifest_files(target),
                    archives=())
    (target / "sdme.json").write_text(bench.to_json(), encoding="utf-8")
    return target


def stage_pass(raw: Path, fps: float, device: str) -> dict[str, dict[str, float]]:
    """Per-stage seconds and counts over every clip, in this process, one clip at a time."""
    from sdme.device import resolve_device
    from sdme.features import create_extractor
    from sdme.media.audio import load_audio
    from sdme.media.video import read_frames

    device = str(resolve_device(device))
    clips = read_annotations(raw / "annotations.csv")
    text = create_extractor("text").to(device)
    audio = create_extractor("audio").to(device)
    vision = create_extractor("vision", fps=fps).to(device)
    for extractor in (text, audio, vision):  # warm-up: loads the models
        extractor.extract(raw, clips[0])
    seconds = {"decode_video": 0.0, "decode_audio": 0.0, "vision": 0.0, "audio": 0.0,
               "text": 0.0}
    frames = faces = 0
    for clip in clips:
        t = time.perf_counter()
        video = read_frames(clip_media_path(raw, clip.clip_id), fps=fps)
        seconds["decode_video"] += time.perf_counter() - t
        frames += len(video.indices)
        t = time.perf_counter()
        load_audio(clip_audio_path(raw, clip.clip_id))
        seconds["decode_audio"] += time.perf_counter() - t
        for name, extractor in (("vision", vision), ("audio", audio), ("text", text)):
            t = time.perf_counter()
            out = extractor.extract(raw, clip)
            seconds[name] += time.perf_counter() - t
            if name == "vision":
                faces += len(out)
    n = len(clips)
    stages = {
        "decode": seconds["decode_video"] + seconds["decode_audio"],
        "faces": max(seconds["vision"] - seconds["decode_video"], 1e-9),
        "audio": max(seconds["audio"] - seconds["decode_audio"], 1e-9),
        "text": seconds["text"],
    }
    report = {name: {"seconds": s, "clips_per_s": n / s,
                     "frames_per_s": frames / s if name in ("decode", "faces") else None}
              for name, s in stages.items()}
    report["_counts"] = {"clips": n, "frames": frames, "faces": faces}
    return report


class TreeMemory:
    """Peak summed RSS of a process and its descendants, sampled from /proc."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as fh:
                        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self._tree():
                try:
                    with open(f"/proc/{pid}/status") as fh:
                        for line in fh:
                            if line.startswith("VmRSS:"):
                                total += int(line.split()[1]) * 1024
                except OSError:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run_build(raw: Path, out: Path, workers: int, fps: float, device: str,
              scheduler: str | None = None) -> dict:
    """The whole build in a child process (cold cache unless ``out``'s cache exists); returns
    its build_info plus wall time and the process tree's peak memory."""
    code = ("import sys; from sdme.build import build; "
            "build(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), fps=float(sys.argv[4]), "
            "device=sys.argv[5], scheduler=sys.argv[6] or None, progress=False)")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH",
                                                                                    "")}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(raw), str(out), str(workers),
                             str(fps), device, scheduler or ""], env=env)
    with TreeMemory(proc.pid) as memory:
        code_ = proc.wait()
    wall = time.perf_counter() - start
    if code_ != 0:
        raise SystemExit(f"the build failed with exit code {code_}")
    info = json.loads((out / "build_info.json").read_text())
    return {"wall_s": wall, "peak_rss_bytes": memory.peak, "build_info": info}


def per_clip_costs(info: dict) -> dict[str, dict[str, float]]:
    """Seconds per clip of each modality (wall and CPU), from a cold-cache build's timings."""
    timings, rows = info["timings"], max(1, info["counts"]["raw_clips"])
    costs = {m: {"wall": timings.get(f"clips_{m}_wall", 0.0) / rows,
                 "cpu": timings.get(f"clips_{m}_cpu", 0.0) / rows}
             for m in ("text", "audio", "vision")}
    costs["load_models"] = {"wall": timings.get("load_models_wall", 0.0),
                            "cpu": timings.get("load_models_cpu", 0.0)}
    return costs


def print_costs(info: dict, indent: str = "  ") -> None:
    costs = per_clip_costs(info)
    print(f"{indent}per clip: " + ", ".join(
        f"{m} {costs[m]['wall']:.3f} s wall / {costs[m]['cpu']:.3f} s CPU"
        for m in ("text", "audio", "vision")))
    vision = costs["vision"]["wall"]
    if vision > 0:
        print(f"{indent}text costs {costs['text']['wall'] / vision:.1%} of vision per clip (wall); "
              f"model loading {costs['load_models']['wall']:.1f} s wall in all processes "
              f"together ({costs['load_models']['cpu']:.1f} s CPU)")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=72, help="Clips in the corpus.")
    parser.add_argument("--workers", type=int, default=2, help="Build processes.")
    parser.add_argument("--scheduler", default=None,
                        help="Build on a Dask cluster instead (an address or local:N).")
    parser.add_argument("--fps", type=float, default=5.0, help="Video frames sampled per second.")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda.")
    parser.add_argument("--source", type=Path, default=SAMPLE, help="Raw corpus to repeat.")
    parser.add_argument("--skip-stages", action="store_true", help="Only the whole build.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sdme-bench-build-") as tmp:
        raw = make_corpus(args.source, Path(tmp) / "raw", args.clips)
        results: dict = {"clips": args.clips, "workers": args.workers, "fps": args.fps,
                         "cpu_count": os.cpu_count()}
        if not args.skip_stages:
            results["stages"] = stage_pass(raw, args.fps, args.device)
        workers = 1 if args.scheduler else args.workers
        results["build"] = run_build(raw, Path(tmp) / "out" / "bench", workers, args.fps,
                                     args.device, args.scheduler)
        results["per_clip"] = per_clip_costs(results["build"]["build_info"])

    info = results["build"]["build_info"]
    frames = results.get("stages", {}).get("_counts", {}).get("frames")
    print(f"sdme build benchmark: {args.clips} clips repeated from {args.source.name}, "
          f"fps {args.fps:g}, device {info['build']['device']}, {os.cpu_count()} CPU(s)")
    if "stages" in results:
        counts = results["stages"]["_counts"]
        print(f"\nstages, one process ({counts['frames']} sampled frames, {counts['faces']} "
              "with a face):")
        print(f"  {'stage':<8} {'seconds':>8} {'clips/s':>9} {'frames/s':>9}")
        for name, row in results["stages"].items():
            if name.startswith("_"):
                continue
            fps_ = f"{row['frames_per_s']:9.1f}" if row["frames_per_s"] else f"{'':>9}"
            print(f"  {name:<8} {row['seconds']:8.2f} {row['clips_per_s']:9.2f} {fps_}")
    build = results["build"]
    rows = info["counts"]["rows"]
    where = f"Dask cluster {args.scheduler}" if args.scheduler else f"{args.workers} worker(s)"
    print(f"\nwhole build, {where}, cold cache:")
    print(f"  wall {build['wall_s']:.1f} s (process start and model loading included): "
          f"{rows / build['wall_s']:.2f} clips/s"
          + (f", {frames / build['wall_s']:.1f} frames/s" if frames else ""))
    timings = info["timings"]
    print("  build_info timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    print(f"  extract stage alone: {rows / timings['extract']:.2f} clips/s; write: "
          f"{rows / max(timings['write'], 1e-9):.1f} clips/s")
    print_costs(info)
    print(f"  peak RSS of the build's process tree: {build['peak_rss_bytes'] / 2**20:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
