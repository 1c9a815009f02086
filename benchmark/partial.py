"""Finished seeds of a ``benchmark run``, kept as each one completes, so a run resumes.

Training five seeds takes long; an interrupted run must not lose the seeds it finished. After a
seed's test predictions are made, :meth:`FinishedSeeds.save` writes, beside that seed's
checkpoint (``<store>/<model>/<task>.checkpoints/seed-<seed>/``, ``benchmark.protocol.
checkpoint_dir``), its predictions (``predictions.jsonl.gz``, through the one reader and writer
of ``benchmark.results``) and then ``seed.json``: the run's identity, the checkpoint selection,
the seed's scores (for the curious; recomputed at the end), and the model's resolved configs,
each file atomically (``sdme.fileio``), so a seed is either finished on disk or absent.

Running the same command again (:meth:`FinishedSeeds.load`) reuses every finished seed whose
identity is the run's — same model and resolved model config, same resolved train config (the
seed and where checkpoints go aside), same tuning record, same task definition, same dataset
fingerprint, same device — and says so; it trains only the others. A folder holding seeds made
with another identity is not reused: it is moved aside whole, to
``<task>.checkpoints.old-<UTC time>``, and the run says what differed and where the old seeds
are. A seed record that cannot be read (or whose predictions do not match their digest) is
trained again, and the run says why.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark.results import (
    PredictionRecord,
    ResultsError,
    Selection,
    predictions_sha256,
    read_json_file,
    read_predictions,
    write_predictions,
)
from sdme.fileio import atomic_write_text

SEED_FORMAT = "sdme-benchmark-seed"
SEED_FORMAT_VERSION = 1
SEED_FILE = "seed.json"
SEED_PREDICTIONS = "predictions.jsonl.gz"
#: Train options that change where or how visibly a run goes, not its numbers.
NOT_IDENTITY_TRAIN_KEYS: tuple[str, ...] = ("seed", "out_dir", "progress")


def run_identity(*, model: str, model_config: Mapping[str, Any],
                 train_config: Mapping[str, Any], tuning: Mapping[str, Any] | None,
                 task_key: str, task_sha256: str, fingerprint: str, device: str
                 ) -> dict[str, Any]:
    """What makes two runs' seeds interchangeable (module docstring), as plain JSON."""
    train = {k: v for k, v in train_config.items() if k not in NOT_IDENTITY_TRAIN_KEYS}
    return json.loads(json.dumps({
        "model": model, "model_config": dict(model_config), "train_config": train,
        "tuning": None if tuning is None else dict(tuning), "task": task_key,
        "task_definition_sha256": task_sha256, "dataset_fingerprint": fingerprint,
        "device": device}, default=str))


def identity_changes(old: Any, new: Mapping[str, Any], limit: int = 3) -> list[str]:
    """The first differences between two identities, as ``key: old -> new``."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                walk(a.get(key, "(absent)"), b.get(key, "(absent)"),
                     f"{where}.{key}" if where else str(key))
        elif a != b:
            text = [json.dumps(v, default=str) for v in (a, b)]
            text = [t if len(t) <= 40 else t[:37] + "..." for t in text]
            out.append(f"{where}: {text[0]} -> {text[1]}")

    walk(old if isinstance(old, dict) else {"(unreadable)": old}, dict(new), "")
    return out


@dataclass
class FinishedSeed:
    """One finished seed, as saved."""

    seed: int
    records: dict[str, PredictionRecord]
    selection: Selection | None
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    num_parameters: int
    #: Wall seconds of the seed's training and test predictions (None in older records).
    seconds: float | None = None


class FinishedSeeds:
    """The finished seeds of one (store, model, task), for one run identity.

    Args:
        root: ``<store>/<model>/<task>.checkpoints`` (each seed in ``seed-<seed>/``).
        identity: :func:`run_identity` of the run.
        discrete: whether predictions are class indices (for reading them back).
    """

    def __init__(self, root: str | os.PathLike, identity: Mapping[str, Any],
                 discrete: bool) -> None:
        self.root = Path(root)
        self.identity = dict(identity)
        self.digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()
                                     ).hexdigest()
        self.discrete = discrete

    def folder(self, seed: int) -> Path:
        return self.root / f"seed-{seed}"

    def load(self, seeds: Sequence[int], say: Callable[[str], None]) -> dict[int, FinishedSeed]:
        """The finished seeds among ``seeds`` that this run may reuse (module docstring).

        Moves a folder of seeds made with another identity aside (saying so) and returns none.
        """
        documents: dict[int, Any] = {}
        for path in sorted(self.root.glob(f"seed-*/{SEED_FILE}")):
            try:
                documents[int(path.parent.name.removeprefix("seed-"))] = read_json_file(path)
            except (ResultsError, ValueError) as exc:
                say(f"  {path}: unreadable ({exc}); that seed is trained again")
        foreign = {s: d for s, d in documents.items()
                   if not isinstance(d, dict) or d.get("identity_sha256") != self.digest}
        if foreign:
            seed, document = next(iter(foreign.items()))
            old = document.get("identity") if isinstance(document, dict) else document
            changes = "; ".join(identity_changes(old, self.identity)) or "another format"
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = self.root.with_name(f"{self.root.name}.old-{stamp}")
            self.root.rename(aside)
            say(f"starting over: the finished seeds in {self.root} were made by another run "
                f"({changes}); they are kept in {aside}")
            return {}
        out: dict[int, FinishedSeed] = {}
        for seed in seeds:
            if seed in documents:
                try:
                    out[seed] = self._read(seed, documents[seed])
                except (ResultsError, KeyError, TypeError, ValueError) as exc:
                    say(f"  seed {seed}: its saved record is unusable ({exc}); trained again")
        if out:
            rest = [s for s in seeds if s not in out]
            say(f"resuming: seed(s) {', '.join(map(str, sorted(out)))} already finished with "
                f"the same dataset, config and task (in {self.root}); "
                + (f"training seed(s) {', '.join(map(str, rest))}" if rest
                   else "nothing left to train"))
        return out

    def _read(self, seed: int, document: dict[str, Any]) -> FinishedSeed:
        folder = self.folder(seed)
        predictions = folder / document["predictions"]["path"]
        if predictions_sha256(predictions) != document["predictions"]["sha256"]:
            raise ValueError(f"{predictions}: sha256 differs from {folder / SEED_FILE}")
        records = read_predictions(predictions, self.discrete).get(seed)
        if not records:
            raise ValueError(f"{predictions}: no predictions for seed {seed}")
        selection = document["selection"]
        return FinishedSeed(seed=seed, records=records,
                            selection=None if selection is None else Selection(**selection),
                            model_config=document["model_config"],
                            train_config=document["train_config"],
                            num_parameters=int(document["num_parameters"]),
                            seconds=_seconds(document.get("seconds")))

    def save(self, finished: FinishedSeed, scores: Mapping[str, float] | None = None) -> Path:
        """Writes a finished seed: predictions first, then ``seed.json`` naming them."""
        folder = self.folder(finished.seed)
        folder.mkdir(parents=True, exist_ok=True)
        digest, rows = write_predictions(folder / SEED_PREDICTIONS,
                                         list(finished.records.values()))
        document = {
            "format": SEED_FORMAT, "version": SEED_FORMAT_VERSION, "seed": finished.seed,
            "identity_sha256": self.digest, "identity": self.identity,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "selection": None if finished.selection is None else asdict(finished.selection),
            "test_scores": dict(scores or {}),
            "model_config": finished.model_config, "train_config": finished.train_config,
            "num_parameters": finished.num_parameters, "seconds": finished.seconds,
            "predictions": {"path": SEED_PREDICTIONS, "sha256": digest, "rows": rows}}
        path = folder / SEED_FILE
        atomic_write_text(path, json.dumps(document, indent=1, allow_nan=False,
                                           default=str) + "\n")
        return path


def _seconds(value: Any) -> float | None:
    """A recorded duration, or None where absent or not a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value < float("inf") else None


__all__ = ["FinishedSeed", "FinishedSeeds", "NOT_IDENTITY_TRAIN_KEYS", "SEED_FILE",
           "SEED_PREDICTIONS", "identity_changes", "run_identity"]
