"""Throughput and memory of ``sdme build``, per stage, on a corpus of N clips.

The corpus is made by repeating the bundled sample's clips (each copy gets its own clip, video and
speaker ids, so the split still has groups to work with). Two measurements:

1. **Stages, one process, one clip at a time** (after a warm-up clip that loads the models):
   ``decode`` (video frames at ``--fps`` with ``sdme.media.video.read_frames`` plus the audio
   track with ``sdme.media.audio.load_audio``), ``faces`` (the vision extractor minus its video
   decoding: MTCNN, crops, geometry), ``audio`` (the audio extractor minus its decoding), ``text``
   (the text extractor). Clips/s and sampled video frames/s per stage.
2. **The whole build** (``sdme.build.build`` in a child process, ``--workers`` processes, cold
   cache): wall time, clips/s, frames/s, its own per-stage timings (``build_info.json``,
   including ``write``), and peak resident memory of the build's whole process tree (sampled
   from ``/proc`` every 50 ms; Linux).

Usage::

    python perf/bench_build.py --clips 72 --workers 2
    python perf/bench_build.py --clips 36 --workers 1 --device cpu --json out.json
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


def make_corpus(source: Path, target: Path, n_clips: int) -> Path:
    """A raw corpus of ``n_clips`` clips, cycling through ``source``'s clips (hard links)."""
    manifest = CorpusManifest.load(source)
    clips = read_annotations(source / "annotations.csv")
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


def run_build(raw: Path, out: Path, workers: int, fps: float, device: str) -> dict:
    """The whole build in a child process; returns its build_info plus wall time and memory."""
    code = ("import sys; from sdme.build import build; "
            "build(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), fps=float(sys.argv[4]), "
            "device=sys.argv[5], progress=False)")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH",
                                                                                    "")}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(raw), str(out), str(workers),
                             str(fps), device], env=env)
    with TreeMemory(proc.pid) as memory:
        code_ = proc.wait()
    wall = time.perf_counter() - start
    if code_ != 0:
        raise SystemExit(f"the build failed with exit code {code_}")
    info = json.loads((out / "build_info.json").read_text())
    return {"wall_s": wall, "peak_rss_bytes": memory.peak, "build_info": info}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=72, help="Clips in the corpus.")
    parser.add_argument("--workers", type=int, default=2, help="Build processes.")
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
        results["build"] = run_build(raw, Path(tmp) / "out" / "bench", args.workers, args.fps,
                                     args.device)

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
    print(f"\nwhole build, {args.workers} worker(s), cold cache:")
    print(f"  wall {build['wall_s']:.1f} s (process start and model loading included): "
          f"{rows / build['wall_s']:.2f} clips/s"
          + (f", {frames / build['wall_s']:.1f} frames/s" if frames else ""))
    timings = info["timings"]
    print("  build_info timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    print(f"  extract stage alone: {rows / timings['extract']:.2f} clips/s; write: "
          f"{rows / max(timings['write'], 1e-9):.1f} clips/s")
    print(f"  peak RSS of the build's process tree: {build['peak_rss_bytes'] / 2**20:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
