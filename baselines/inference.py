"""A trained model on new video clips: decode each clip as the training data was, then predict.

A checkpoint (``baselines.checkpoint``) records, beside its weights, the extractor records of
the built dataset it was trained on (``build_info.json``: extractor names, versions, creation
options and fingerprints). :class:`Predictor` re-creates those extractors with
``sdme.features.recreate_extractor`` (refusing, unless told otherwise, any whose fingerprint
differs: its features would not be the ones the model learned from), runs them on each clip
under the build's policy (``sdme.build``: a clip without an audio track or without a face keeps
the other modalities, the missing one is reported; a clip that cannot be decoded fails alone),
and runs the model on the features (``baselines.train.predict``). For each clip it gives the
emotion (or score), the class probabilities and, where the model has them, each modality's
relevance weight and its own prediction.

A clip is a video file (any container FFmpeg reads). Its transcript is the ``text`` given for
it, else a sidecar file beside it (``clip.txt`` for ``clip.mp4``, or ``clip.mp4.txt``), else
the text modality is reported missing. ``python -m baselines predict`` is the command-line form
(``baselines.__main__``).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from baselines.checkpoint import TaskInfo
from sdme.built import FEAT, LENGTH

if TYPE_CHECKING:
    from baselines.models.base import EmotionModel
    from sdme.features import Extractor

TRANSCRIPT_SUFFIX = ".txt"


class PredictError(ValueError):
    """The checkpoint cannot be run on new clips (no provenance, extractors that cannot be
    made again, sizes that do not match); the message says why and what to pass."""


@dataclass
class ClipPrediction:
    """What a model says about one clip.

    Attributes:
        clip: The clip's path, as given.
        emotion: The predicted class (discrete tasks).
        score: The predicted score (continuous tasks).
        probabilities: Class -> probability (discrete tasks).
        relevance: Modality -> the model's relevance weight, over the present modalities
            (models that estimate relevance).
        modalities: Modality -> its own prediction (``emotion`` and ``probabilities``, or
            ``score``), where the model has per-modality heads.
        missing: Modality -> why it is missing from this clip.
        error: Why the clip could not be predicted (the other fields are then empty).
    """

    clip: str
    emotion: str | None = None
    score: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    relevance: dict[str, float] = field(default_factory=dict)
    modalities: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the error alone for a failed clip, the fields that apply otherwise."""
        if self.error is not None:
            return {"clip": self.clip, "error": self.error}
        return {k: v for k, v in asdict(self).items()
                if k != "error" and not (v is None and k in ("emotion", "score"))}


class _ClipFailed(Exception):
    """One clip cannot be predicted (the message is its one-line error)."""


def transcript_for(clip: str | os.PathLike) -> str | None:
    """The transcript in a sidecar file beside ``clip`` (``clip.txt``, then ``clip.mp4.txt``),
    or None."""
    path = Path(clip)
    for sidecar in (path.with_suffix(TRANSCRIPT_SUFFIX), Path(f"{path}{TRANSCRIPT_SUFFIX}")):
        if sidecar != path and sidecar.is_file():
            return sidecar.read_text(encoding="utf-8").strip()
    return None


class Predictor:
    """A trained model with the extractors of its training data.

    Args:
        model: The model (eval mode is set).
        task: What it predicts (class names) and its training data's provenance.
        extractors: Modality -> extractor, for every modality the model reads.
        device: Where the model runs.
    """

    def __init__(self, model: EmotionModel, task: TaskInfo, extractors: Mapping[str, Extractor],
                 device: str = "cpu") -> None:
        self.model = model.eval()
        self.task = task
        self.extractors = dict(extractors)
        self.device = str(device)
        self.language = (task.dataset.languages[0] if task.dataset is not None
                         and task.dataset.languages else "")
        missing = [m for m in task.modalities if m not in self.extractors]
        if missing:
            raise PredictError(f"no extractor for modality {missing}")

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike, *,
                        dataset: str | os.PathLike | None = None,
                        params: Mapping[str, Mapping[str, Any]] | None = None,
                        device: str = "auto", check: bool = True) -> Predictor:
        """Loads a checkpoint and re-creates its training data's extractors.

        Args:
            checkpoint: A checkpoint folder (or an earlier ``best.pt``; see
                ``baselines.train.load_checkpoint``).
            dataset: A built dataset folder whose provenance (extractors, class names) to use
                instead of the checkpoint's; needed for checkpoints that record none.
            params: Per-modality extractor parameters that override the recorded ones (e.g.
                ``{"text": {"model": "/models/bert"}}`` where the encoder lives elsewhere here).
            device: ``"auto"``, ``"cpu"``, ``"cuda"``...
            check: Refuse extractors whose fingerprint differs from the recorded one.

        Raises:
            FileNotFoundError: No checkpoint there, or local weights an extractor needs.
            PredictError: No provenance, an extractor that cannot be made again or whose
                features would differ, or feature sizes that do not match the model.
            ValueError: A bad checkpoint (the message names the file).
        """
        from baselines.train import load_checkpoint
        from sdme.config import ConfigError
        from sdme.device import resolve_device
        from sdme.features import ProvenanceMismatch, recreate_extractor

        device = str(resolve_device(device))
        model = load_checkpoint(checkpoint, map_location=device)
        task = model.task_info or TaskInfo.for_model(model)
        if dataset is not None:
            recorded = TaskInfo.for_model(model, dataset=dataset)
            task.dataset = recorded.dataset
            task.class_names = task.class_names or recorded.class_names
        if task.dataset is None:
            raise PredictError(f"{checkpoint}: the checkpoint records no training-data "
                               f"provenance (no extractors to decode clips with); pass "
                               f"--dataset with the built dataset it was trained on")
        unknown = sorted(set(params or {}) - set(task.modalities))
        if unknown:
            raise PredictError(f"extractor parameters for {unknown}, which the model does not "
                               f"read (it reads {', '.join(task.modalities)})")
        extractors = {}
        for m in task.modalities:
            record = task.dataset.extractors.get(m)
            if record is None:
                raise PredictError(f"the training data records no {m} extractor")
            try:
                extractor = recreate_extractor(m, record, device=device,
                                               overrides=(params or {}).get(m), check=check)
            except ProvenanceMismatch as exc:
                raise PredictError(f"{exc} (pass --allow-mismatch to run anyway)") from None
            except KeyError as exc:
                raise PredictError(f"the {m} features of the training data came from "
                                   f"{record.name!r}, which is not a registered extractor "
                                   f"here: {exc}") from None
            except (ConfigError, ValueError, ImportError) as exc:
                raise PredictError(f"cannot make the {m} extractor {record.name!r} again: "
                                   f"{exc}") from None
            if extractor.info.dim != task.input_dims[m]:
                raise PredictError(f"the {m} extractor gives {extractor.info.dim}-d features; "
                                   f"the model reads {task.input_dims[m]}-d")
            extractors[m] = extractor.to(device)
        return cls(model, task, extractors, device=device)

    # --- features ---------------------------------------------------------------------------

    def features(self, clip: str | os.PathLike, text: str | None = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        """One clip's model input row (``sdme.built`` columns) and its missing modalities.

        Raises:
            _ClipFailed: The clip cannot be decoded, or an extractor failed.
        """
        from sdme.build import MISSING_REASONS
        from sdme.features import ClipError
        from sdme.schema import CLIPS_DIR, RawClip

        path = Path(clip)
        if not path.is_file():
            raise _ClipFailed(f"{path}: no such file")
        if text is None:
            text = transcript_for(path)
        missing: dict[str, str] = {}
        row: dict[str, Any] = {"clip_id": str(clip)}
        with tempfile.TemporaryDirectory(prefix="sdme-predict-") as tmp:
            raw = Path(tmp)
            (raw / CLIPS_DIR).mkdir()
            (raw / CLIPS_DIR / "clip.mp4").symlink_to(path.resolve())
            raw_clip = RawClip(clip_id="clip", video_id="clip", speaker_id="", start=0.0,
                               end=_duration(path), text=text or "", language=self.language,
                               label="")
            for m in self.task.modalities:
                dim = self.task.input_dims[m]
                row[FEAT[m]], row[LENGTH[m]] = np.zeros((0, dim), dtype=np.float32), 0
                if m == "text" and not (text or "").strip():
                    missing[m] = (f"no transcript (pass --text, or write it to "
                                  f"{path.with_suffix(TRANSCRIPT_SUFFIX)})")
                    continue
                try:
                    feats = self.extractors[m].extract(raw, raw_clip)
                except ClipError as exc:
                    if exc.reason in MISSING_REASONS:
                        missing[m] = f"{exc.reason}: {exc.detail}"
                        continue
                    raise _ClipFailed(f"{path}: {exc.reason}: {exc.detail}") from None
                except Exception as exc:  # noqa: BLE001 - one clip's failure, reported alone
                    raise _ClipFailed(f"{path}: the {m} extractor failed: "
                                      f"{type(exc).__name__}: {exc}") from None
                if not (isinstance(feats, np.ndarray) and feats.ndim == 2
                        and feats.shape[0] >= 1 and feats.shape[1] == dim
                        and np.isfinite(feats).all()):
                    raise _ClipFailed(f"{path}: the {m} extractor returned unusable features "
                                      f"({getattr(feats, 'shape', type(feats).__name__)})")
                row[FEAT[m]], row[LENGTH[m]] = feats.astype(np.float32), int(feats.shape[0])
        if len(missing) == len(self.task.modalities):
            raise _ClipFailed(f"{path}: every modality is missing ("
                              + "; ".join(f"{m}: {why}" for m, why in missing.items()) + ")")
        return row, missing

    # --- prediction -------------------------------------------------------------------------

    def predict(self, clips: Sequence[str | os.PathLike],
                texts: Mapping[str, str] | None = None) -> list[ClipPrediction]:
        """Predictions for ``clips``, in order; a clip that fails has ``error`` set and does not
        stop the others.

        Args:
            clips: Video files.
            texts: Clip (as given) -> its transcript (default: the sidecar file, if any).
        """
        from baselines.train import TrainConfig
        from baselines.train import predict as run_model

        results: list[ClipPrediction] = []
        rows, missing = [], {}
        for clip in clips:
            try:
                row, absent = self.features(clip, (texts or {}).get(str(clip)))
            except _ClipFailed as exc:
                results.append(ClipPrediction(clip=str(clip), error=str(exc)))
                continue
            rows.append(row)
            missing[str(clip)] = absent
            results.append(ClipPrediction(clip=str(clip)))
        if rows:
            out = run_model(self.model, rows, TrainConfig(device=self.device, progress=False,
                                                          batch_size=16))
            by_clip = {cid: i for i, cid in enumerate(out.ids)}
            for result in results:
                if result.ok:
                    self._fill(result, out, by_clip[result.clip], missing[result.clip])
        return results

    def _fill(self, result: ClipPrediction, out: Any, i: int, missing: dict[str, str]) -> None:
        present = [m for m in self.task.modalities if m not in missing]
        result.missing = dict(missing)
        if self.task.task == "discrete":
            names = self.task.class_names or [f"class {k}" for k in range(out.logits.shape[-1])]
            probs = _softmax(out.logits[i])
            result.probabilities = {n: float(p) for n, p in zip(names, probs, strict=True)}
            result.emotion = names[int(np.argmax(probs))]
        else:
            result.score = float(out.logits[i][0])
        weights = {m: float(out.relevance[m][i]) for m in present if m in out.relevance}
        if weights and math.isfinite(sum(weights.values())):
            result.relevance = weights
        for m in present:
            if m not in out.modality_logits:
                continue
            logits = out.modality_logits[m][i]
            if self.task.task == "discrete":
                probs = _softmax(logits)
                result.modalities[m] = {
                    "emotion": names[int(np.argmax(probs))],
                    "probabilities": {n: float(p) for n, p in zip(names, probs, strict=True)}}
            else:
                result.modalities[m] = {"score": float(logits[0])}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def _duration(path: Path) -> float:
    """The video's length in seconds (what a raw clip's ``end`` records); probing it first gives
    an undecodable file its one-line error before any extractor runs."""
    from torchcodec.decoders import VideoDecoder

    try:
        metadata = VideoDecoder(str(path)).metadata
    except Exception as exc:  # torchcodec raises RuntimeError/ValueError for any bad input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        detail = first.split(str(path), 1)[-1].strip(" :,") or first
        raise _ClipFailed(f"{path}: decode_failed: not a readable video ({detail})") from None
    duration = metadata.duration_seconds
    if not duration or not metadata.num_frames:
        raise _ClipFailed(f"{path}: decode_failed: the video has no frames")
    return float(duration)


def format_prediction(result: ClipPrediction) -> str:
    """The human-readable lines of one clip's prediction (an error is one line)."""
    if not result.ok:
        return f"error: {result.error}"

    def probs(values: Mapping[str, float]) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in sorted(values.items(),
                                                           key=lambda kv: -kv[1]))

    if result.emotion is not None:
        head = f"{result.clip}: {result.emotion} ({result.probabilities[result.emotion]:.2f})"
    else:
        head = f"{result.clip}: score {result.score:.3f}"
    lines = [head]
    if result.probabilities:
        lines.append(f"  probabilities: {probs(result.probabilities)}")
    if result.relevance:
        lines.append("  relevance:     " + ", ".join(f"{m} {w:.2f}"
                                                     for m, w in result.relevance.items()))
    if result.modalities:
        parts = []
        for m, own in result.modalities.items():
            if "emotion" in own:
                parts.append(f"{m} {own['emotion']} ({own['probabilities'][own['emotion']]:.2f})")
            else:
                parts.append(f"{m} {own['score']:.3f}")
        lines.append("  per modality:  " + ", ".join(parts))
    for m, why in result.missing.items():
        lines.append(f"  missing:       {m} ({why})")
    return "\n".join(lines)


__all__ = ["ClipPrediction", "PredictError", "Predictor", "format_prediction",
           "transcript_for"]
