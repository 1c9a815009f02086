"""``python -m baselines``: thin click wrappers over the baselines' library functions.

    python -m baselines predict CHECKPOINT clip.mp4 ...       # a trained model on new clips

``predict`` runs :class:`baselines.inference.Predictor`: the clips are decoded by the extractors
the checkpoint's training data was built with (from the provenance it records), and each clip's
emotion, class probabilities, modality relevance and per-modality predictions are printed
(``--json`` for machines). A clip that fails is one line on stderr; the others still run, and
the exit status is 1 when any failed (2 when nothing could run: a bad checkpoint or option).
"""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _quiet_libraries() -> None:
    """Keeps the libraries' own progress bars and decoder logs off the terminal, where a failed
    clip is reported in one line."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()  # transformers reads this switch when it is first imported
    if "transformers" in sys.modules:
        from transformers.utils import logging

        logging.disable_progress_bar()
    try:
        import decord

        decord.logging.set_level(decord.logging.QUIET)
    except ImportError:  # pragma: no cover - decord is a dependency
        pass


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SDME baselines: trained models run on new clips."""


@main.command("predict")
@click.argument("checkpoint", type=click.Path(exists=True))
@click.argument("clips", nargs=-1, required=True)
@click.option("--text", default=None,
              help="Transcript of the clip (one clip only; otherwise CLIP.txt beside each clip "
                   "is read, and a clip without one has no text modality).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--param", "params", multiple=True, metavar="MODALITY.NAME=VALUE",
              help="Override a recorded extractor parameter, e.g. --param "
                   "text.model=/models/bert-base-chinese where the encoder lives elsewhere "
                   "here (repeatable).")
@click.option("--dataset", type=click.Path(file_okay=False, exists=True), default=None,
              help="Built dataset whose provenance to use (for checkpoints that record none).")
@click.option("--allow-mismatch", is_flag=True,
              help="Run even if a re-created extractor's fingerprint differs from the "
                   "recorded one (its features then differ from the training data's).")
def predict_command(checkpoint: str, clips: tuple[str, ...], text: str | None, as_json: bool,
                    device: str, params: tuple[str, ...], dataset: str | None,
                    allow_mismatch: bool) -> None:
    """Predict the emotion of each CLIP (a video file) with the model in CHECKPOINT."""
    from baselines.inference import PredictError, Predictor, format_prediction
    from sdme.config import ConfigError, parse_assignments

    if text is not None and len(clips) > 1:
        _fail("--text gives the transcript of one clip; for several clips write each one to "
              "CLIP.txt beside it")
    _quiet_libraries()
    try:
        overrides = parse_assignments(params, "--param")
        predictor = Predictor.from_checkpoint(checkpoint, dataset=dataset, params=overrides,
                                              device=device, check=not allow_mismatch)
    except (PredictError, ConfigError, FileNotFoundError, ValueError, ImportError) as exc:
        _fail(str(exc))
    results = predictor.predict(list(clips), {clips[0]: text} if text is not None else None)
    for result in results:
        if not result.ok:
            click.echo(f"error: {result.error}", err=True)
    if as_json:
        task = predictor.task
        click.echo(json.dumps({
            "checkpoint": checkpoint, "model": predictor.model.model_name,
            "task": task.task, "classes": task.class_names, "modalities": task.modalities,
            "clips": [r.to_dict() for r in results]}, indent=1, ensure_ascii=False))
    else:
        for result in results:
            if result.ok:
                click.echo(format_prediction(result))
    if not all(r.ok for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
