"""How a model's training cost per sample grows with the sequence length (1x vs 2x).

For each model, one training step (forward, the model's losses, backward, AdamW step, as
``baselines.train`` runs it on CPU: float32, deterministic algorithms) is timed on a batch of
CMU-MOSEI-shaped clips (text 768, audio 74, vision 35 features; lengths uniform in text
10-50, audio 100-500, vision 75-375 steps, ``sdme synth``'s defaults) and on the same batch
with every length doubled. The two are timed interleaved, ``--repeats`` times each, in one
process, so that load on a shared machine hits both alike; the figure is the median ratio
2x/1x. Linear growth gives about 2.0; a model whose cost per sample grows faster than the
length (attention over the steps, an operation whose backward is quadratic) gives more.

``--profile`` adds, per length, the operators with the most self CPU time
(``torch.profiler``), which is how the quadratic backward of packed GRU sequences on CPU
(``aten::slice_backward`` filling a zero copy of the whole packed input per time step) was
found in ``baselines.models.blocks.SequenceEncoder``.

Usage::

    python perf/bench_seqlen.py                          # mren, early_fusion, mult
    python perf/bench_seqlen.py --models mren --profile --set encoder=gru
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

DIMS = {"text": 768, "audio": 74, "vision": 35}
LENGTHS = {"text": (10, 50), "audio": (100, 500), "vision": (75, 375)}


def make_rows(scale: int, n: int, seed: int = 0) -> list[dict]:
    """``n`` labelled clips, lengths drawn in ``scale`` x the MOSEI-like ranges."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row: dict = {"clip_id": f"c{i}", "label": int(rng.integers(7))}
        for m, (low, high) in LENGTHS.items():
            steps = int(rng.integers(low * scale, high * scale + 1))
            row[f"{m}_feat"] = rng.standard_normal((steps, DIMS[m])).astype(np.float32)
            row[f"relevance_{m}"] = float(rng.integers(2))
        rows.append(row)
    return rows


class Step:
    """One model's training step on a fixed batch (the trainer's order of operations)."""

    def __init__(self, name: str, options: dict, scale: int, batch_size: int) -> None:
        import torch

        import baselines
        from baselines.data import collate

        torch.manual_seed(0)
        self.model = baselines.create_model(name, input_dims=DIMS, num_classes=7, **options)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.batch = collate(make_rows(scale, batch_size), input_dims=DIMS, task="discrete")

    def __call__(self) -> None:
        out = self.model(self.batch)
        loss = self.model.task_loss(out, self.batch)
        for value in self.model.extra_losses(out, self.batch).values():
            loss = loss + value
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def measure(name: str, options: dict, batch_size: int, repeats: int, profile: bool) -> dict:
    """Seconds per sample at 1x and 2x lengths (medians of interleaved repeats)."""
    from baselines.train import deterministic

    steps = {scale: Step(name, options, scale, batch_size) for scale in (1, 2)}
    times: dict[int, list[float]] = {1: [], 2: []}
    with deterministic(True):
        for step in steps.values():
            step()  # warm-up
        for _ in range(repeats):
            for scale, step in steps.items():
                start = time.perf_counter()
                step()
                times[scale].append((time.perf_counter() - start) / batch_size)
        if profile:
            from torch.profiler import profile as torch_profile

            for scale, step in steps.items():
                with torch_profile() as prof:
                    step()
                print(f"--- {name} at {scale}x: top operators by self CPU time")
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    per_sample = {scale: statistics.median(v) for scale, v in times.items()}
    ratios = [b / a for a, b in zip(times[1], times[2], strict=True)]
    return {"model": name, "s_per_sample_1x": per_sample[1], "s_per_sample_2x": per_sample[2],
            "ratio": statistics.median(ratios)}


def main() -> None:
    import os

    import torch

    from sdme.config import parse_assignments

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="mren,early_fusion,mult",
                        help="Comma-separated registered model names.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Model option for every model (repeatable), e.g. encoder=gru.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads.")
    parser.add_argument("--profile", action="store_true", help="Print the top operators.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = parse_assignments(args.set, option="--set")
    print(f"batch {args.batch_size}, {args.repeats} interleaved repeats, {args.threads} "
          f"thread(s), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'model':<22}{'ms/sample 1x':>14}{'ms/sample 2x':>14}{'2x/1x':>8}")
    for name in args.models.split(","):
        r = measure(name.strip(), options, args.batch_size, args.repeats, args.profile)
        print(f"{r['model']:<22}{r['s_per_sample_1x'] * 1e3:>14.1f}"
              f"{r['s_per_sample_2x'] * 1e3:>14.1f}{r['ratio']:>8.2f}")


if __name__ == "__main__":
    main()
