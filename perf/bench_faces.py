"""Throughput of the vision (face) stage of ``sdme build``, against its floor, bare MTCNN.

Measures, on N clips, frames per second (sampled frames) of:

1. decoding alone (``sdme.media.video.read_frames``: decord random access at ``--fps``);
2. the face stage as the build runs it (``create_extractor("vision", "face").extract``: decode,
   MTCNN, aligned crops, features);
3. bare MTCNN (``facenet_pytorch.MTCNN.detect``) on the same frames, decoded beforehand, in the
   same batches: the stage cannot be faster than this.

and prints the stage/MTCNN ratio (goal on CPU: >= 0.8) and the peak resident memory. Each
figure is the best of ``--repeats`` runs (wall clock; CPU seconds are shown beside it), which
damps noise from other processes on a shared machine; the CPU-time ratio is the steadier one
there. One torch thread per process (the default here) is how a build worker should run: with
more threads than free cores, OpenMP's spinning threads made MTCNN 2-10x slower in our runs.

Usage::

    python perf/bench_faces.py --clips 8 --seconds 4 --size 640x360 --threads 1
    python perf/bench_faces.py --raw path/to/raw   # the clips of an existing raw corpus
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from sdme.features import create_extractor
from sdme.media.video import read_frames
from sdme.schema import CLIPS_DIR, RawClip


def make_clips(root: Path, count: int, seconds: float, width: int, height: int) -> list[str]:
    from sdme.media import testing as mt

    size = min(height - 16, int(height * 0.6)) // 2 * 2
    faces = [mt.astronaut_face(size)] + [mt.lfw_face(i, size) for i in range(count)]
    ids = []
    for i in range(count):
        clip_id = f"bench{i:03d}"
        mt.write_face_clip(root / CLIPS_DIR / f"{clip_id}.mp4", faces[i % len(faces)],
                           seconds=seconds, width=width, height=height,
                           step=max(1, (width - size) // int(seconds * 25 + 1)))
        ids.append(clip_id)
    return ids


def timed(fns: dict, repeats: int) -> dict[str, tuple[float, float, object]]:
    """Best wall time (with that run's CPU time and result) of each function.

    The functions take turns in every round, so load from other processes falls on all alike.
    """
    best = {name: (float("inf"), 0.0, None) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            out = fn()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if wall < best[name][0]:
                best[name] = (wall, cpu, out)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, help="raw corpus folder to take clips from")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--size", default="640x360", help="WxH of generated clips")
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-side", type=int, default=640,
                        help="frames scaled down to this longer side (0: native size)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (0: leave torch's default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        if args.raw:
            raw = args.raw
            ids = sorted(p.stem for p in (raw / CLIPS_DIR).glob("*.mp4"))[:args.clips]
        else:
            raw = Path(tmp)
            width, height = (int(v) for v in args.size.lower().split("x"))
            ids = make_clips(raw, args.clips, args.seconds, width, height)
        clips = [RawClip(i, i, "s", 0.0, args.seconds, "", "en", "neutral") for i in ids]

        extractor = create_extractor("vision", "face", fps=args.fps, max_side=args.max_side or None,
                                     batch_size=args.batch_size).to(args.device)
        mtcnn = extractor.detector.mtcnn
        batch = args.batch_size

        def decode() -> list[torch.Tensor]:
            return [read_frames(raw / CLIPS_DIR / f"{c.clip_id}.mp4", fps=args.fps,
                                max_side=extractor.max_side).frames for c in clips]

        def bare(frames: list[torch.Tensor]) -> int:
            for f in frames:
                for s in range(0, len(f), batch):
                    mtcnn.detect(f[s:s + batch].to(args.device), landmarks=True)
            return 0

        def stage() -> int:
            rows = 0
            for c in clips:
                rows += len(extractor.extract(raw, c))
            return rows

        frames = decode()
        count = sum(len(f) for f in frames)
        stage()  # warm-up: models loaded, caches filled
        times = timed({"decode": decode, "bare": lambda: bare(frames), "stage": stage},
                      args.repeats)
        dec_wall, dec_cpu, _ = times["decode"]
        bare_wall, bare_cpu, _ = times["bare"]
        stage_wall, stage_cpu, rows = times["stage"]

    shape = tuple(frames[0].shape[1:3])
    print(f"clips: {len(clips)}  sampled frames: {count} at {args.fps:g} fps  "
          f"frame HxW: {shape[0]}x{shape[1]}  torch threads: {torch.get_num_threads()}  "
          f"device: {args.device}  batch: {batch}")
    for name, wall, cpu in [("decode (decord)", dec_wall, dec_cpu),
                            ("face stage (decode+MTCNN+crops+features)", stage_wall, stage_cpu),
                            ("bare MTCNN on decoded frames", bare_wall, bare_cpu)]:
        print(f"  {name:44s} {count / wall:8.1f} frames/s  ({wall:6.2f} s wall, "
              f"{cpu:6.2f} s CPU)")
    print(f"  ratio face stage / bare MTCNN: {bare_wall / stage_wall:.2f} by wall clock, "
          f"{bare_cpu / stage_cpu:.2f} by CPU time (goal >= 0.8)   faces kept: {rows}/{count}")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  peak resident memory: {peak_kib / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
