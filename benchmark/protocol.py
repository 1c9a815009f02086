"""The standard protocol: train per seed, select on validation, score the test split once.

For each seed of the fixed list :data:`DEFAULT_SEEDS` (five seeds, as is usual for small
multimodal emotion corpora; MMSA reports means over five seeds too):

1. seed Python, numpy and torch, build the model (``baselines.create_model``, with feature sizes
   and class count read from the dataset, and the task type), and train it with the one trainer
   (``baselines.train.fit``) on the task's train split, with the task's ``label_column`` (a
   class index, or the float ``score`` of continuous tasks) as the target. The train and
   validation splits are streamed from their parquet shards in bounded memory
   (:class:`StreamedRows`; the train split with a seeded windowed shuffle). Checkpoint
   selection and early stopping use the validation split only; the test split is never handed
   to ``fit``.
2. only once ``fit`` has returned, the sealed test split is opened for this seed — once
   (:class:`SealedSplit` raises on a second opening or an opening without a finished fit) — and
   the selected model predicts it clean, with each modality dropped, and with Gaussian noise
   added to each modality (and to all at once) at the task's noise levels. Test inputs carry
   clip ids and features only: no label and no human relevance reach the model.

Every number in a results file is then computed from the per-clip predictions alone, by
:func:`score_predictions` — the same function ``benchmark submit`` runs to re-check a file.

Robustness conditions (names used in predictions files):

* ``drop:<m>`` — modality m removed: the collator gives it an all-False mask (as for a clip
  that lacks it).
* ``noise:<m>:<level>`` / ``noise:all:<level>`` — every real step of m's features (of every
  modality) gets i.i.d. Gaussian noise of standard deviation ``level * s_m``, where ``s_m`` is
  the standard deviation of all of m's feature values on the *training* split (recorded in the
  results file as ``protocol.noise_scale``). The noise generator is seeded from (seed,
  condition, clip index), so a run is reproducible.

The dataset fingerprint (:func:`dataset_fingerprint`) is the sha256 of the canonical JSON of
the test split's sorted ``(clip_id, label)`` pairs (label by class name, or the score), the
taxonomy, the source corpus manifest's fingerprint and each extractor's name, version and
config fingerprint from ``build_info.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import metrics as M
from benchmark.results import (
    PREDICTIONS_FORMAT,
    RESULTS_FORMAT,
    SCHEMA_VERSION,
    AggregateReport,
    DatasetRef,
    Environment,
    ModelRef,
    PredictionRecord,
    PredictionsRef,
    ProtocolInfo,
    Results,
    Robustness,
    RobustnessAggregate,
    SeedResult,
    Selection,
    Stratified,
    StratifiedAggregate,
    Stratum,
    TaskRef,
    predictions_name,
    results_path,
    save_results,
    write_predictions,
)
from benchmark.tasks import DEFAULT_TASK, Task, dataset_recipe, get_task

DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
FINGERPRINT_VERSION = 1
BUILD_INFO_NAME = "build_info.json"


class ProtocolError(RuntimeError):
    """The protocol cannot run or score as asked (missing data, misuse of the test split...)."""


# ----------------------------------------------------------------------------- conditions


def format_level(level: float) -> str:
    """A noise level as written in condition names (``0.5``, ``1.0``)."""
    return repr(float(level))


def robustness_conditions(task: Task) -> list[str]:
    """Every robustness condition of a task, in a fixed order."""
    names = [f"drop:{m}" for m in task.modalities]
    for curve in (*task.modalities, "all"):
        names += [f"noise:{curve}:{format_level(x)}" for x in task.noise_levels[1:]]
    return names


def noise_curves(task: Task) -> list[str]:
    """Names of the noise curves: each modality, then ``"all"``."""
    return [*task.modalities, "all"]


# ----------------------------------------------------------------------------- the reference


@dataclass(frozen=True)
class TestReference:
    """What scoring needs from the test split: ids, labels and the relevance annotations.

    Attributes:
        ids: clip ids in split order.
        labels: class indices (discrete) or scores (continuous).
        class_names: the taxonomy (discrete tasks), in class-index order.
        deviation: per clip 0..3, or None where not annotated; None when the column is absent.
        relevant: modality -> per clip whether the modality expresses the clip's emotion (None
            where unknown): ``label_<m> ==`` the class name of ``label`` — for continuous tasks
            too, where the dataset has a ClassLabel ``label`` derived from the score (the rule
            that defines ``deviation``, so both stratified tables agree); else, for continuous
            tasks, ``relevance_<m> >= 0.5``.
    """

    __test__ = False  # not a pytest test class, despite its name

    ids: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...] | None
    deviation: tuple[int | None, ...] | None
    relevant: dict[str, tuple[bool | None, ...]]

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any]], task: Task,
                     class_names: Sequence[str] | None,
                     label_names: Sequence[str] | None = None) -> TestReference:
        """Builds the reference from column lists (``clip_id``, the label column, and where
        present ``deviation``, ``label_<m>``, ``relevance_<m>``).

        Args:
            columns: column name -> values in split order.
            task: the task.
            class_names: the taxonomy of a discrete task's labels (None for continuous tasks).
            label_names: continuous tasks: the names of the dataset's ClassLabel ``label``
                (derived from the score), when it has one; with the ``label`` column and
                ``label_<m>`` they define which modalities are relevant.

        Raises:
            ProtocolError: missing columns, duplicate clip ids or missing labels.
        """
        for column in ("clip_id", task.label_column):
            if column not in columns:
                raise ProtocolError(f"the test split has no {column!r} column")
        ids = tuple(str(c) for c in columns["clip_id"])
        if len(set(ids)) != len(ids):
            dupes = sorted({c for c in ids if ids.count(c) > 1})[:5]
            raise ProtocolError(f"duplicate clip ids in the test split: {dupes}")
        raw = list(columns[task.label_column])
        if any(v is None for v in raw):
            raise ProtocolError("the test split has clips without a label")
        if task.task_type == "discrete":
            if not class_names:
                raise ProtocolError("a discrete task needs the dataset's class names")
            labels = np.asarray(raw, dtype=np.int64)
        else:
            labels = np.asarray(raw, dtype=np.float64)
        deviation = None
        if "deviation" in columns:
            deviation = tuple(None if v is None else int(v) for v in columns["deviation"])
        relevant: dict[str, tuple[bool | None, ...]] = {}
        if task.task_type == "discrete":
            names, classes = list(class_names or []), labels
        elif label_names and "label" in columns and task.label_column != "label":
            names, classes = list(label_names), list(columns["label"])
        else:
            names, classes = [], None
        for m in task.modalities:
            if classes is not None and f"label_{m}" in columns:
                relevant[m] = tuple(
                    None if y is None else _expresses(lm, int(y), names, f"label_{m}")
                    for lm, y in zip(columns[f"label_{m}"], classes, strict=True))
            elif task.task_type == "continuous" and f"relevance_{m}" in columns:
                relevant[m] = tuple(None if r is None or r != r else float(r) >= 0.5
                                    for r in columns[f"relevance_{m}"])
        return cls(ids=ids, labels=labels,
                   class_names=tuple(class_names) if class_names else None,
                   deviation=deviation, relevant=relevant)

    @classmethod
    def from_split(cls, split: Any, task: Task,
                   class_names: Sequence[str] | None) -> TestReference:
        """From a ``datasets.Dataset`` (only the needed, feature-free columns are read)."""
        wanted = ["clip_id", task.label_column, "deviation", "label",
                  *(f"label_{m}" for m in task.modalities),
                  *(f"relevance_{m}" for m in task.modalities)]
        present = [c for c in dict.fromkeys(wanted) if c in split.column_names]
        label_names = None
        if task.task_type == "continuous":
            label_names = getattr(split.features.get("label"), "names", None)
        return cls.from_columns(split.select_columns(present).to_dict(), task, class_names,
                                label_names)

    def label_key(self, i: int) -> str | float:
        """The label of clip i as fingerprinted: class name or score."""
        if self.class_names is not None:
            return self.class_names[int(self.labels[i])]
        return float(self.labels[i])

    def deviating_group(self, i: int, modalities: Sequence[str]) -> str | None:
        """``"none"``, or the deviating modalities joined by ``+``; None if unannotated."""
        known = [m for m in modalities if m in self.relevant and self.relevant[m][i] is not None]
        if not known:
            return None
        deviating = [m for m in known if self.relevant[m][i] is False]
        return "+".join(deviating) if deviating else "none"


def _expresses(value: Any, label: int, names: Sequence[str], column: str) -> bool | None:
    """Whether a ``label_<m>`` value (class name or ClassLabel index) is class ``label``.

    None where unknown (None, NaN or -1).

    Raises:
        ProtocolError: a value that is neither a known class name nor a class index.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        if value not in names:
            raise ProtocolError(f"{column}: {value!r} is not a class of the taxonomy "
                                f"{list(names)}")
        return value == names[label]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ProtocolError(f"{column}: {value!r} is neither a class name nor a class index")
    index = int(value)
    if index == -1:
        return None
    if not 0 <= index < len(names):
        raise ProtocolError(f"{column}: class index {index} is outside the taxonomy of "
                            f"{len(names)} classes")
    return index == label


def read_build_info(folder: str | os.PathLike) -> dict[str, Any]:
    """``build_info.json`` of a built dataset.

    Raises:
        ProtocolError: absent or unreadable (naming the file).
    """
    path = Path(folder) / BUILD_INFO_NAME
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProtocolError(f"{path}: missing; the dataset was not built by `sdme build`") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"{path}: unreadable: {exc}") from exc
    if not isinstance(info, dict):
        raise ProtocolError(f"{path}: expected a JSON object")
    return info


def dataset_fingerprint(reference: TestReference, build_info: Mapping[str, Any]) -> str:
    """sha256 identifying the test labels and how the dataset was made (module docstring).

    Raises:
        ProtocolError: ``build_info`` lacks the source fingerprint or the extractors.
    """
    try:
        source = build_info["source"]["fingerprint"]
        extractors = {m: {k: e[k] for k in ("name", "version", "fingerprint")}
                      for m, e in sorted(build_info["extractors"].items())}
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"build_info.json lacks source.fingerprint or extractors "
                            f"({exc!r}): rebuild the dataset with `sdme build`") from exc
    pairs = sorted([cid, reference.label_key(i)] for i, cid in enumerate(reference.ids))
    payload = {"fingerprint_version": FINGERPRINT_VERSION, "test": pairs,
               "taxonomy": list(reference.class_names or []), "source": source,
               "extractors": extractors}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- scoring


def _score(task: Task, ref: TestReference, predicted: np.ndarray, metric: str) -> float:
    if task.task_type == "discrete":
        return M.discrete_metric(metric, ref.labels, predicted, len(ref.class_names))
    return M.continuous_metrics(ref.labels, predicted, task.continuous_scale)[metric]


def _vector(task: Task, values: Iterable[Any]) -> np.ndarray:
    return np.asarray(list(values), dtype=np.int64 if task.task_type == "discrete"
                      else np.float64)


def check_coverage(task: Task, ref: TestReference,
                   records: Mapping[int, Mapping[str, PredictionRecord]],
                   seeds: Sequence[int]) -> None:
    """Every seed predicts every test clip exactly once, under every condition.

    Raises:
        ProtocolError: seeds differ, clips are missing or extra, or conditions are incomplete.
    """
    if sorted(records) != sorted(seeds):
        raise ProtocolError(f"predictions cover seeds {sorted(records)}, the results name "
                            f"{sorted(seeds)}")
    expected = set(ref.ids)
    wanted = set(robustness_conditions(task))
    for seed in seeds:
        got = set(records[seed])
        missing, extra = sorted(expected - got), sorted(got - expected)
        if missing:
            raise ProtocolError(f"seed {seed}: {len(missing)} test clip(s) have no prediction, "
                                f"e.g. {missing[:5]}")
        if extra:
            raise ProtocolError(f"seed {seed}: {len(extra)} prediction(s) for clips not in the "
                                f"test split, e.g. {extra[:5]}")
        for clip_id, record in records[seed].items():
            have = set(record["conditions"])
            if have != wanted:
                lost, odd = sorted(wanted - have), sorted(have - wanted)
                raise ProtocolError(f"seed {seed}, clip {clip_id!r}: conditions missing "
                                    f"{lost[:3]} / unexpected {odd[:3]}")


def score_seed(task: Task, ref: TestReference, records: Mapping[str, PredictionRecord],
               seed: int, selection: Selection | None = None) -> SeedResult:
    """Scores one seed's predictions (clean, relevance, stratified, robustness)."""
    ordered = [records[c] for c in ref.ids]
    predicted = _vector(task, (r["prediction"] for r in ordered))
    per_class_f1 = confusion = None
    if task.task_type == "discrete":
        report = M.discrete_metrics(ref.labels, predicted, ref.class_names)
        all_metrics = report.metrics
        per_class_f1, confusion = report.per_class_f1, report.confusion_matrix
    else:
        all_metrics = M.continuous_metrics(ref.labels, predicted, task.continuous_scale)
    scalar = {name: all_metrics[name] for name in task.metrics}

    stratified = _stratify(task, ref, predicted)
    auroc = _relevance_auroc(task, ref, ordered)

    metric = task.scored_metric
    levels = [float(x) for x in task.noise_levels]

    def under(condition: str) -> float:
        values = _vector(task, (r["conditions"][condition] for r in ordered))
        return _score(task, ref, values, metric)

    clean = all_metrics[metric]
    drop = {m: under(f"drop:{m}") for m in task.modalities}
    noise = {curve: [clean] + [under(f"noise:{curve}:{format_level(x)}") for x in levels[1:]]
             for curve in noise_curves(task)}
    relative = {curve: M.relative_robustness(levels, values) for curve, values in noise.items()}
    robustness = Robustness(metric=metric, levels=levels, clean=clean, drop=drop, noise=noise,
                            relative=relative)
    return SeedResult(seed=seed, metrics=scalar, per_class_f1=per_class_f1,
                      confusion_matrix=confusion, stratified=stratified,
                      relevance_auroc=auroc, robustness=robustness, selection=selection)


def _stratify(task: Task, ref: TestReference, predicted: np.ndarray) -> Stratified | None:
    correct = M.correct_mask(task.task_type, ref.labels, predicted, task.continuous_scale)
    by_deviation: dict[str, list[bool]] = {}
    if ref.deviation is not None:
        for i, level in enumerate(ref.deviation):
            if level is not None:
                by_deviation.setdefault(str(level), []).append(bool(correct[i]))
    by_group: dict[str, list[bool]] = {}
    for i in range(len(ref.ids)):
        group = ref.deviating_group(i, task.modalities)
        if group is not None:
            by_group.setdefault(group, []).append(bool(correct[i]))
    if not by_deviation and not by_group:
        return None

    def table(groups: dict[str, list[bool]]) -> dict[str, Stratum]:
        return {k: Stratum(n=len(v), accuracy=float(np.mean(v))) for k, v in sorted(
            groups.items(), key=lambda kv: _group_order(kv[0], task.modalities))}

    return Stratified(by_deviation=table(by_deviation), by_deviating_modalities=table(by_group))


def _group_order(key: str, modalities: Sequence[str]) -> tuple[int, ...]:
    if key.isdigit():
        return (int(key),)
    if key == "none":
        return (0,)
    parts = key.split("+")
    return (len(parts), *(list(modalities).index(p) if p in modalities else 99 for p in parts))


def _relevance_auroc(task: Task, ref: TestReference,
                     ordered: Sequence[PredictionRecord]) -> float | None:
    weights, targets = [], []
    for i, record in enumerate(ordered):
        given = record.get("relevance") or {}
        for m, w in given.items():
            target = ref.relevant.get(m, ())
            if target and target[i] is not None:
                weights.append(float(w))
                targets.append(bool(target[i]))
    if not weights:
        return None
    return M.relevance_auroc(np.asarray(weights), np.asarray(targets))


def aggregate_report(task: Task, per_seed: Sequence[SeedResult]) -> AggregateReport:
    """Mean, std and 95% CI over seeds of every per-seed number."""
    agg = M.aggregate
    metrics = {name: agg([s.metrics[name] for s in per_seed]) for name in task.metrics}
    per_class = None
    if all(s.per_class_f1 is not None for s in per_seed):
        per_class = {c: agg([s.per_class_f1[c] for s in per_seed])
                     for c in per_seed[0].per_class_f1}
    stratified = None
    if all(s.stratified is not None for s in per_seed):
        def table(attr: str) -> dict[str, M.Aggregate]:
            keys = list(getattr(per_seed[0].stratified, attr))
            return {k: agg([getattr(s.stratified, attr)[k].accuracy for s in per_seed])
                    for k in keys}
        stratified = StratifiedAggregate(by_deviation=table("by_deviation"),
                                         by_deviating_modalities=table("by_deviating_modalities"))
    auroc = M.aggregate_optional([s.relevance_auroc for s in per_seed])
    first = per_seed[0].robustness
    robustness = RobustnessAggregate(
        drop={m: agg([s.robustness.drop[m] for s in per_seed]) for m in first.drop},
        noise={c: [agg([s.robustness.noise[c][k] for s in per_seed])
                   for k in range(len(first.levels))] for c in first.noise},
        relative={c: agg([s.robustness.relative[c] for s in per_seed]) for c in first.relative})
    return AggregateReport(metrics=metrics, per_class_f1=per_class, stratified=stratified,
                           relevance_auroc=auroc, robustness=robustness)


def score_predictions(task: Task, ref: TestReference,
                      records: Mapping[int, Mapping[str, PredictionRecord]],
                      seeds: Sequence[int],
                      selections: Mapping[int, Selection | None] | None = None
                      ) -> tuple[list[SeedResult], AggregateReport]:
    """Per-seed results and their aggregate, from predictions alone.

    Raises:
        ProtocolError: the predictions do not cover the test split (see
            :func:`check_coverage`).
        ValueError: a prediction is outside the taxonomy.
    """
    check_coverage(task, ref, records, seeds)
    per_seed = [score_seed(task, ref, records[s], s, (selections or {}).get(s)) for s in seeds]
    return per_seed, aggregate_report(task, per_seed)


# ----------------------------------------------------------------------------- the test guard


class SealedSplit:
    """Holds the test split; hands it out once per seed, and only after training finished."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self._opened: set[int] = set()

    @property
    def opened(self) -> frozenset[int]:
        return frozenset(self._opened)

    def open(self, seed: int, fit_result: Any) -> Any:
        """The test data for ``seed``.

        Args:
            seed: the seed whose selected model is about to be scored.
            fit_result: what ``baselines.train.fit`` returned for that seed (proof that
                training and validation-based selection are over).

        Raises:
            ProtocolError: no finished fit, or the split was already opened for this seed.
        """
        from baselines.train import FitResult

        if not isinstance(fit_result, FitResult):
            raise ProtocolError(f"seed {seed}: the test split may only be opened after fit() "
                                f"has returned (got {type(fit_result).__name__})")
        if seed in self._opened:
            raise ProtocolError(f"seed {seed}: the test split was already evaluated; the "
                                "protocol scores it once per seed")
        self._opened.add(seed)
        return self._data


# ----------------------------------------------------------------------------- conditioned inputs


def _as_array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype == object:
        if array.size == 0:
            return None
        array = np.stack([np.asarray(v, dtype=np.float32) for v in array])
    return array.astype(np.float32, copy=False)


class ConditionedRows:
    """A map-style view of test rows under one robustness condition (a torch-style dataset)."""

    def __init__(self, rows: Any, condition: str, scales: Mapping[str, float], seed: int,
                 condition_index: int) -> None:
        kind, _, rest = condition.partition(":")
        if kind == "drop":
            self.drop, self.noisy, self.level = {rest}, set(), 0.0
        elif kind == "noise":
            target, _, level = rest.partition(":")
            self.drop = set()
            self.noisy = set(scales) if target == "all" else {target}
            self.level = float(level)
        else:
            raise ProtocolError(f"unknown robustness condition {condition!r}")
        self.rows, self.scales, self.seed, self.index = rows, scales, seed, condition_index

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = dict(self.rows[int(i)])
        for m in self.drop:
            row[f"{m}_feat"] = None
            row[f"{m}_len"] = 0
        if self.noisy:
            rng = np.random.default_rng([self.seed, self.index, int(i)])
            for m in sorted(self.noisy):
                feat = _as_array(row.get(f"{m}_feat"))
                if feat is None or feat.size == 0:
                    continue
                noise = rng.standard_normal(feat.shape).astype(np.float32)
                row[f"{m}_feat"] = feat + np.float32(self.level * self.scales[m]) * noise
        return row


def _feature_values(rows: Any, modalities: Sequence[str], batch_size: int
                    ) -> Iterable[tuple[str, Any]]:
    """(modality, feature value) of every row, in row order per modality."""
    if hasattr(rows, "with_format"):  # a datasets.Dataset: read in column batches
        numpy_split = rows.with_format("numpy")
        for start in range(0, len(numpy_split), batch_size):
            chunk = numpy_split[start:start + batch_size]
            for m in modalities:
                for value in chunk[f"{m}_feat"]:
                    yield m, value
        return
    for row in rows:
        for m in modalities:
            yield m, row.get(f"{m}_feat")


def feature_scales(rows: Any, modalities: Sequence[str], batch_size: int = 256
                   ) -> dict[str, float]:
    """Standard deviation of all feature values of each modality on a split (real steps only).

    Args:
        rows: the split: a ``datasets.Dataset`` or any iterable of rows (e.g.
            ``sdme.loading.ParquetRows``); the values are summed in row order either way.
        modalities: the modalities.
        batch_size: rows per column batch of a ``datasets.Dataset``.

    Raises:
        ProtocolError: a modality has no feature values at all.
    """
    sums = {m: 0.0 for m in modalities}
    squares = {m: 0.0 for m in modalities}
    counts = {m: 0 for m in modalities}
    for m, value in _feature_values(rows, modalities, batch_size):
        array = _as_array(value)
        if array is None or array.size == 0:
            continue
        x = array.astype(np.float64)
        sums[m] += float(x.sum())
        squares[m] += float((x * x).sum())
        counts[m] += x.size
    scales = {}
    for m in modalities:
        if counts[m] == 0:
            raise ProtocolError(f"modality {m!r} has no feature values in the training split")
        mean = sums[m] / counts[m]
        var = max(squares[m] / counts[m] - mean * mean, 0.0)
        scales[m] = float(np.sqrt(var)) or 1.0
    return scales


# ----------------------------------------------------------------------------- the run


@dataclass
class RunOutput:
    """What :func:`run_benchmark` wrote."""

    results: Results
    results_path: Path
    predictions_path: Path


def load_run_config(path: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
    """Reads a run config YAML: ``{train: {TrainConfig overrides}, model: {model overrides}}``.

    Raises:
        ValueError: not a mapping, or keys other than ``train`` and ``model`` (names the file).
    """
    if path is None:
        return {"train": {}, "model": {}}
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the run config: {exc}") from exc
    loaded = loaded or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping with 'train' and/or 'model' sections")
    unknown = sorted(set(loaded) - {"train", "model"})
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; expected 'train' (trainer "
                         "options) and 'model' (model options)")
    out = {}
    for key in ("train", "model"):
        section = loaded.get(key) or {}
        if not isinstance(section, dict):
            raise ValueError(f"{path}: section {key!r} must be a mapping")
        out[key] = dict(section)
    return out


def environment(device: str) -> Environment:
    """The software versions and the device a run used."""
    import sklearn
    import torch

    import sdme

    name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return Environment(python=platform.python_version(), platform=platform.platform(),
                       torch=torch.__version__, numpy=np.__version__,
                       sklearn=sklearn.__version__, sdme=sdme.__version__, device=name)


def input_columns(available: Sequence[str], task: Task, with_targets: bool) -> list[str]:
    """The columns a model is given: clip id and features, plus (training and validation) the
    task's target column and the human annotations the dataset has: ``relevance_<m>`` and, for
    discrete tasks, ``label_<m>`` (the class modality m alone expresses). The test split is read
    with ``with_targets=False``: no label and no annotation reaches the model there.

    Raises:
        ProtocolError: the dataset lacks a feature or target column.
    """
    columns = ["clip_id"]
    for m in task.modalities:
        columns += [f"{m}_feat", f"{m}_len"]
    if with_targets:
        columns.append(task.label_column)
        columns += [f"relevance_{m}" for m in task.modalities if f"relevance_{m}" in available]
        if task.task_type == "discrete":
            columns += [f"label_{m}" for m in task.modalities if f"label_{m}" in available]
    missing = [c for c in columns if c not in available]
    if missing:
        raise ProtocolError(f"the dataset lacks column(s) {missing}")
    return columns


def _input_columns(split: Any, task: Task, with_targets: bool) -> Any:
    selected = split.select_columns(input_columns(split.column_names, task, with_targets))
    if with_targets and task.label_column != "label":
        selected = selected.rename_column(task.label_column, "label")
    return selected


class StreamedRows:
    """One split as the trainer reads it, streamed from its parquet shards in bounded memory.

    A :class:`sdme.loading.ParquetRows` over the split (row groups decoded on demand), reading
    only the given columns (:func:`input_columns`), with the task's target column renamed
    ``label`` (what ``baselines.data.collate`` reads). The training split is read with a
    windowed shuffle seeded by the protocol seed and reshuffled each epoch (the trainer calls
    :meth:`set_epoch`); the validation split in file order. The memory-mapped ``datasets``
    table would instead map every page of the split into the process over an epoch.

    Args:
        folder: the built dataset folder.
        task: the task.
        split: the split name.
        columns: the columns to read (:func:`input_columns`).
        seed: seed of the shuffle.
        shuffle: windowed shuffle (False: file order).
        window: row groups decoded and mixed at a time (``ParquetRows``).

    ``class_names`` (the ``label`` ClassLabel's names) let the trainer's collator map the
    ``label_<m>`` class names of the rows to class indices.
    """

    def __init__(self, folder: str | os.PathLike, task: Task, split: str,
                 columns: Sequence[str], *, seed: int = 0, shuffle: bool = True,
                 window: int = 8) -> None:
        from sdme.loading import ParquetRows

        self.rows = ParquetRows(folder, split, shuffle=shuffle, seed=seed, window=window,
                                columns=list(columns))
        self.target = task.label_column
        self.class_names = self.rows.class_names

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Makes the next pass epoch ``epoch`` (``baselines.train.fit`` calls it)."""
        self.rows.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            if self.target != "label" and self.target in row:
                row["label"] = row.pop(self.target)
            yield row


def resolve_task_dataset(task: Task, data_dir: str | os.PathLike | None = None,
                         dataset: str | os.PathLike | None = None) -> Path:
    """The built dataset folder of a task (or ``dataset``, a folder or name, instead).

    Raises:
        FileNotFoundError: not built; for the task's own dataset the message gives the exact
            command that makes it (``benchmark.tasks.DATASET_RECIPES``).
    """
    from sdme import paths
    from sdme.loading import resolve_built

    try:
        return resolve_built(dataset or task.dataset, data_dir)
    except FileNotFoundError as exc:
        recipe = None if dataset else dataset_recipe(
            task.dataset, None if data_dir is None else str(data_dir))
        if recipe is None:
            raise
        raise FileNotFoundError(
            f"no built dataset {task.dataset!r} in {paths.data_dir(data_dir) / 'built'}: task "
            f"{task.key} needs it; make it with `{recipe}`") from exc


def _predictions_for_seed(task: Task, model: Any, test: Any, scales: Mapping[str, float],
                          seed: int, config: Any) -> dict[str, PredictionRecord]:
    from baselines.train import predict

    def predicted(p: Any) -> list[Any]:
        values = p.predicted()
        if task.task_type == "discrete":
            return [int(v) for v in values]
        return [float(v) for v in values]

    clean = predict(model, test, config)
    records: dict[str, PredictionRecord] = {}
    values = predicted(clean)
    for i, clip_id in enumerate(clean.ids):
        record: PredictionRecord = {"seed": seed, "clip_id": clip_id, "prediction": values[i]}
        weights = {m: float(w[i]) for m, w in clean.relevance.items()
                   if m in task.modalities and (m not in clean.present or clean.present[m][i])}
        if weights:
            record["relevance"] = weights
        record["conditions"] = {}
        records[clip_id] = record
    test_rows = test.with_format("numpy")
    for index, condition in enumerate(robustness_conditions(task), start=1):
        view = ConditionedRows(test_rows, condition, scales, seed, index)
        out = predict(model, view, config)
        if list(out.ids) != list(clean.ids):
            raise ProtocolError(f"condition {condition}: predictions came back in another order")
        for clip_id, value in zip(out.ids, predicted(out), strict=True):
            records[clip_id]["conditions"][condition] = value
    return records


def run_benchmark(model_name: str, task: str | Task = DEFAULT_TASK, *,
                  seeds: Sequence[int] = DEFAULT_SEEDS, device: str | None = None,
                  config: Mapping[str, Mapping[str, Any]] | None = None,
                  out_dir: str | os.PathLike | None = None,
                  data_dir: str | os.PathLike | None = None,
                  dataset: str | os.PathLike | None = None,
                  log: Callable[[str], None] | None = None) -> RunOutput:
    """Runs the standard protocol for one model on one task and writes its results.

    Args:
        model_name: a registered model (``baselines.list_models()``).
        task: task name (``name`` or ``name@version``) or a :class:`Task`.
        seeds: the seeds (default: the protocol's five).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...; None: the run config's ``train.device``,
            else ``"auto"``.
        config: ``{"train": {...}, "model": {...}}`` overrides (see :func:`load_run_config`).
        out_dir: the results store (default ``<data_dir>/results``).
        data_dir: the SDME data folder.
        dataset: a built dataset folder to use instead of the task's dataset by name (its
            fingerprint must still match a pinned task).
        log: progress messages (default: none).

    Returns:
        The results and where they were written.

    Raises:
        FileNotFoundError: the dataset is not built (the message says how to build it).
        ProtocolError, ValueError, KeyError: bad task, model, config or data.
    """
    import baselines
    from baselines.train import fit, make_config, resolve_device, seed_everything
    from sdme import paths
    from sdme.loading import ParquetRows, feature_dims, load_dataset, taxonomy

    say = log or (lambda _msg: None)
    task = get_task(task)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ProtocolError(f"seeds must be distinct non-negative integers, got {seeds}")
    if model_name not in baselines.list_models():
        baselines.create_model(model_name)  # raises the registry's close-match error
    config = {"train": dict((config or {}).get("train", {})),
              "model": dict((config or {}).get("model", {}))}
    for key in ("seed", "out_dir"):
        if key in config["train"]:
            raise ProtocolError(f"train.{key} is set by the protocol and cannot be overridden")
    for key in ("input_dims", "num_classes", "task"):
        if key in config["model"]:
            raise ProtocolError(f"model.{key} comes from the dataset and task; remove it")

    device = device or str(config["train"].pop("device", None) or "auto")

    folder = resolve_task_dataset(task, data_dir, dataset)
    data = load_dataset(folder)
    for role, split in (("train", task.train_split), ("validation", task.validation_split),
                        ("test", task.test_split)):
        if split not in data:
            raise ProtocolError(f"{folder}: no {split!r} split (the task's {role} split); "
                                f"splits: {', '.join(data)}")
    class_names = taxonomy(data) if task.task_type == "discrete" else None
    reference = TestReference.from_split(data[task.test_split], task, class_names)
    build_info = read_build_info(folder)
    fingerprint = dataset_fingerprint(reference, build_info)
    if task.dataset_fingerprint is not None and fingerprint != task.dataset_fingerprint:
        raise ProtocolError(f"{folder}: dataset fingerprint {fingerprint[:12]} differs from the "
                            f"one task {task.key} pins ({task.dataset_fingerprint[:12]})")
    all_dims = feature_dims(data)
    dims = {m: all_dims[m] for m in task.modalities}
    model_options: dict[str, Any] = {"input_dims": dims, "task": task.task_type,
                                     **config["model"]}
    if class_names is not None:
        model_options["num_classes"] = len(class_names)

    train_columns = input_columns(data[task.train_split].column_names, task, with_targets=True)
    validation = StreamedRows(folder, task, task.validation_split,
                              input_columns(data[task.validation_split].column_names, task,
                                            with_targets=True), shuffle=False)
    sealed = SealedSplit(_input_columns(data[task.test_split], task, with_targets=False))
    scales = feature_scales(
        ParquetRows(folder, task.train_split, shuffle=False,
                    columns=[f"{m}_feat" for m in task.modalities]), task.modalities)
    n_train = len(data[task.train_split])
    resolved_device = str(resolve_device(device))
    say(f"{task.key}: {model_name} on {folder} ({n_train} train, {len(validation)} "
        f"validation, {len(reference.ids)} test clips), seeds {seeds}, device {resolved_device}")

    records: dict[int, dict[str, PredictionRecord]] = {}
    selections: dict[int, Selection] = {}
    train_config = model_config = None
    num_parameters = 0
    for seed in seeds:
        seed_everything(seed)
        model = baselines.create_model(model_name, **model_options)
        train_cfg = make_config(config["train"], seed=seed, device=device)
        train = StreamedRows(folder, task, task.train_split, train_columns, seed=seed)
        result = fit(model, train, validation, train_cfg, model_name=model_name)
        test = sealed.open(seed, result)
        records[seed] = _predictions_for_seed(task, model, test, scales, seed, train_cfg)
        selections[seed] = Selection(select_metric=result.select_metric,
                                     best_epoch=result.best_epoch,
                                     best_score=None if result.best_score is None
                                     else float(result.best_score),
                                     epochs_run=len(result.history),
                                     stopped_early=result.stopped_early)
        if train_config is None:
            train_config = {k: v for k, v in train_cfg.to_dict().items() if k != "seed"}
            model_config = dataclasses.asdict(model.config)
            num_parameters = int(sum(p.numel() for p in model.parameters()))
        say(f"  seed {seed}: best epoch {result.best_epoch} "
            f"(val {result.select_metric} {result.best_score:.4f})"
            if result.best_score is not None else f"  seed {seed}: trained")

    store = Path(out_dir) if out_dir else paths.data_dir(data_dir) / "results"
    return write_results(
        task, reference, records, seeds, store=store, selections=selections,
        dataset=describe_dataset(task, fingerprint, {s: len(data[s]) for s in data}, build_info),
        model=ModelRef(name=model_name, config=_jsonable(model_config),
                       train_config=_jsonable(train_config), num_parameters=num_parameters),
        protocol=ProtocolInfo(noise_scale=scales, conditions=robustness_conditions(task)),
        env=environment(resolved_device))


def describe_dataset(task: Task, fingerprint: str, splits: Mapping[str, int],
                     build_info: Mapping[str, Any]) -> DatasetRef:
    """The results file's dataset record."""
    return DatasetRef(name=task.dataset, fingerprint=fingerprint, splits=dict(splits),
                      source=_jsonable(build_info.get("source", {})),
                      extractors=_jsonable(build_info.get("extractors", {})))


def write_results(task: Task, reference: TestReference,
                  records: Mapping[int, Mapping[str, PredictionRecord]], seeds: Sequence[int],
                  *, store: str | os.PathLike, model: ModelRef, dataset: DatasetRef,
                  protocol: ProtocolInfo, env: Environment,
                  selections: Mapping[int, Selection | None] | None = None) -> RunOutput:
    """Scores the predictions and writes ``<store>/<model>/<task>.json`` and its predictions.

    The predictions file is written first, then the results file (each atomically), so a
    results file never names predictions that are not there.
    """
    per_seed, aggregate = score_predictions(task, reference, records, seeds, selections)
    target = results_path(store, model.name, task.name)
    pred_path = target.with_name(predictions_name(task.name))
    ordered = [records[s][c] for s in seeds for c in reference.ids]
    digest, rows = write_predictions(pred_path, ordered)
    results = Results(
        format=RESULTS_FORMAT, schema_version=SCHEMA_VERSION,
        metric_spec_version=M.METRIC_SPEC_VERSION,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        task=TaskRef(name=task.name, version=task.version,
                     definition_sha256=task.definition_sha256(), definition=task.to_dict()),
        dataset=dataset, model=model, seeds=list(seeds), per_seed=per_seed,
        aggregate=aggregate,
        predictions=PredictionsRef(path=pred_path.name, sha256=digest,
                                   format=PREDICTIONS_FORMAT, rows=rows),
        protocol=protocol, environment=env)
    save_results(results, target)
    return RunOutput(results=results, results_path=target, predictions_path=pred_path)


def load_test_reference(task: Task, folder: str | os.PathLike
                        ) -> tuple[TestReference, str, dict[str, Any]]:
    """The test reference, dataset fingerprint and build info of a built dataset folder."""
    from sdme.loading import load_dataset, taxonomy

    split = load_dataset(folder, split=task.test_split)
    class_names = taxonomy(split) if task.task_type == "discrete" else None
    reference = TestReference.from_split(split, task, class_names)
    build_info = read_build_info(folder)
    return reference, dataset_fingerprint(reference, build_info), build_info


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# ----------------------------------------------------------------------------- summary


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def summary_table(results: Results) -> str:
    """A plain-text table: one row per seed, then the mean ± 95% CI half-width."""
    names = list(results.aggregate.metrics)
    header = ["seed", *names, "rel_auroc", "rr_all"]
    rows = []
    for s in results.per_seed:
        rows.append([str(s.seed), *(_fmt(s.metrics[n]) for n in names),
                     _fmt(s.relevance_auroc), _fmt(s.robustness.relative.get("all"))])

    def cell(a: M.Aggregate | None) -> str:
        if a is None:
            return "—"
        half = a.ci95_half_width
        return f"{a.mean:.4f}" + ("" if half is None else f"±{half:.4f}")

    rows.append(["mean±ci95", *(cell(results.aggregate.metrics[n]) for n in names),
                 cell(results.aggregate.relevance_auroc),
                 cell(results.aggregate.robustness.relative.get("all"))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


__all__ = ["ConditionedRows", "DEFAULT_SEEDS", "ProtocolError", "RunOutput", "SealedSplit",
           "StreamedRows", "TestReference", "aggregate_report", "check_coverage",
           "dataset_fingerprint", "describe_dataset", "feature_scales", "format_level",
           "input_columns", "load_run_config", "load_test_reference", "noise_curves",
           "read_build_info", "resolve_task_dataset", "robustness_conditions", "run_benchmark",
           "score_predictions", "score_seed", "summary_table", "write_results"]
