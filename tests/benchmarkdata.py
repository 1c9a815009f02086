"""Helpers for the benchmark tests: synthetic test references, predictions and results files.

Predictions here are drawn at random (no training), so results files can be made in
milliseconds; they are scored by the real ``benchmark.scoring.score_predictions`` and written by
the real ``write_results``. ``tiny_built`` makes a real built dataset with ``sdme.build`` and the
cheap test-double extractors of ``builddoubles``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from builddoubles import DOUBLES, tiny_corpus

from benchmark.protocol import RunOutput, describe_dataset, write_results
from benchmark.results import Environment, ModelRef, PredictionRecord, ProtocolInfo
from benchmark.scoring import (
    TestReference,
    dataset_fingerprint,
    load_test_reference,
    robustness_conditions,
)
from benchmark.tasks import Task, get_task

CLASSES = ("neutral", "happiness", "sadness", "anger")
BUILD_INFO = {
    "source": {"name": "toy", "version": "1.0", "fingerprint": "f" * 64},
    "extractors": {m: {"name": "double", "version": "1", "fingerprint": str(i) * 64}
                   for i, m in enumerate(("text", "audio", "vision"))},
}


def toy_task() -> Task:
    return get_task("sdme-sample-discrete")


def toy_reference(task: Task | None = None, n: int = 8) -> TestReference:
    """``n`` clips; labels cycle over the classes; text deviates on every third clip, vision
    is unannotated on odd clips."""
    task = task or toy_task()
    labels = [i % len(CLASSES) for i in range(n)]
    columns: dict[str, list] = {
        "clip_id": [f"c{i:02d}" for i in range(n)],
        "label": labels,
        "label_text": [CLASSES[(y + 1) % 4] if i % 3 == 0 else CLASSES[y]
                       for i, y in enumerate(labels)],
        "label_audio": [CLASSES[y] for y in labels],
        "label_vision": [None if i % 2 else CLASSES[y] for i, y in enumerate(labels)],
    }
    columns["deviation"] = [int(i % 3 == 0) for i in range(n)]
    return TestReference.from_columns(columns, task, CLASSES)


def random_records(task: Task, ids: Sequence[str], n_classes: int, seeds: Sequence[int],
                   rng_seed: int = 0, relevance: bool = True
                   ) -> dict[int, dict[str, PredictionRecord]]:
    rng = np.random.default_rng(rng_seed)
    conditions = robustness_conditions(task)
    records: dict[int, dict[str, PredictionRecord]] = {}
    for seed in seeds:
        records[seed] = {}
        for clip_id in ids:
            record: PredictionRecord = {"seed": seed, "clip_id": clip_id,
                                        "prediction": int(rng.integers(n_classes))}
            if relevance:
                w = rng.dirichlet(np.ones(3))
                record["relevance"] = {m: float(v) for m, v in
                                       zip(("text", "audio", "vision"), w, strict=True)}
            record["conditions"] = {c: int(rng.integers(n_classes)) for c in conditions}
            records[seed][clip_id] = record
    return records


def model_ref(name: str = "toy") -> ModelRef:
    return ModelRef(name=name, config={"hidden": 8}, train_config={"epochs": 1},
                    num_parameters=123)


def environment() -> Environment:
    return Environment(python="3.11", platform="test", torch="x", numpy="x", sklearn="x",
                       sdme="0.1.0", device="cpu")


def protocol_info(task: Task) -> ProtocolInfo:
    return ProtocolInfo(noise_scale={"text": 1.0, "audio": 1.0, "vision": 1.0},
                        conditions=robustness_conditions(task))


def toy_results(store: Path, model: str = "toy", seeds: Sequence[int] = (0, 1, 2),
                rng_seed: int = 0) -> RunOutput:
    """A valid results file on the synthetic reference (no dataset on disk)."""
    task = toy_task()
    ref = toy_reference(task)
    records = random_records(task, ref.ids, len(CLASSES), seeds, rng_seed)
    dataset = describe_dataset(task, dataset_fingerprint(ref, BUILD_INFO),
                               {"train": 10, "validation": 4, "test": len(ref.ids)}, BUILD_INFO)
    return write_results(task, ref, records, seeds, store=store, model=model_ref(model),
                         dataset=dataset, protocol=protocol_info(task), env=environment())


def tiny_built(root: Path) -> Path:
    """A real built dataset ``<root>/built/sample`` (sdme.build with the test doubles)."""
    from sdme.build import build

    raw = tiny_corpus(root / "raw" / "tiny")
    out = root / "built" / "sample"
    build(raw, out, progress=False, **DOUBLES)
    return out


def submission_for(built: Path, store: Path, model: str = "toy",
                   seeds: Sequence[int] = (0, 1), rng_seed: int = 0,
                   relevance: bool = True, compress: bool = False) -> RunOutput:
    """A valid results file for a built dataset, from random predictions of its test clips
    (gzip-compressed with ``compress``)."""
    task = toy_task()
    ref, fingerprint, build_info = load_test_reference(task, built)
    n_classes = len(ref.class_names)
    records = random_records(task, ref.ids, n_classes, seeds, rng_seed, relevance)
    dataset = describe_dataset(task, fingerprint, {"test": len(ref.ids)}, build_info)
    return write_results(task, ref, records, seeds, store=store, model=model_ref(model),
                         dataset=dataset, protocol=protocol_info(task), env=environment(),
                         compress=compress)
