"""Scoring: every number of a results file, computed from per-clip predictions alone.

This is what ``benchmark submit`` needs, and all it imports of the protocol: the test reference
(:class:`TestReference`: clip ids, labels and human relevance annotations of the test split),
the dataset fingerprint, the names of the robustness conditions, per-seed scoring
(:func:`score_seed`) and the aggregate over seeds (:func:`aggregate_report`).
``benchmark run`` (``benchmark.protocol``) scores its predictions with the same
:func:`score_predictions`, so a run and a re-check cannot disagree.

Metrics are the registered functions of :mod:`sdme.metrics` (the task's ``metrics``, on the
task's continuous scale); the benchmark-only reports (``correct`` per clip for stratified
accuracy, relevance AUROC, robustness curves, aggregates) are :mod:`benchmark.metrics`.

Robustness conditions (names used in predictions files; :mod:`benchmark.robustness` applies
them to the test inputs):

* ``drop:<m>`` — modality m removed.
* ``noise:<m>:<level>`` / ``noise:all:<level>`` — Gaussian noise of standard deviation
  ``level`` times the modality's feature scale on one modality (on every modality), for each
  level of the task's ``noise_levels`` above 0.

The dataset fingerprint (:func:`dataset_fingerprint`) is the sha256 of the canonical JSON of
the test split's sorted ``(clip_id, label)`` pairs (label by class name, or the score), the
taxonomy, the source corpus manifest's fingerprint and each extractor's name, version and
config fingerprint from ``build_info.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark import metrics as M
from benchmark.results import (
    AggregateReport,
    PredictionRecord,
    Robustness,
    RobustnessAggregate,
    SeedResult,
    Selection,
    Stratified,
    StratifiedAggregate,
    Stratum,
    agreement_strata,
)
from benchmark.tasks import Task, dataset_recipe
from sdme.built import BUILD_INFO_NAME
from sdme.metrics import compute_metrics
from sdme.metrics.classification import confusion_matrix, per_class_f1

if TYPE_CHECKING:
    from sdme.built import BuildInfo

FINGERPRINT_VERSION = 1


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
        """From a ``datasets.Dataset`` (only the needed, feature-free columns are read:
        :func:`reference_columns`)."""
        present = reference_columns(split.column_names, task)
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
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        value = value.item()
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        if value not in names:
            raise ProtocolError(f"{column}: {value!r} is not a class of the taxonomy "
                                f"{list(names)}")
        return value == names[label]
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value != int(value):
        raise ProtocolError(f"{column}: {value!r} is neither a class name nor a class index")
    index = int(value)
    if index == -1:
        return None
    if not 0 <= index < len(names):
        raise ProtocolError(f"{column}: class index {index} is outside the taxonomy of "
                            f"{len(names)} classes")
    return index == label


def reference_columns(available: Iterable[str], task: Task) -> list[str]:
    """The columns of ``available`` that :class:`TestReference` reads: clip id, the task's label
    column, and where present ``deviation``, ``label``, ``label_<m>`` and ``relevance_<m>``."""
    available = set(available)
    wanted = ["clip_id", task.label_column, "deviation", "label",
              *(f"label_{m}" for m in task.modalities),
              *(f"relevance_{m}" for m in task.modalities)]
    return [c for c in dict.fromkeys(wanted) if c in available]


def read_build_info(folder: str | os.PathLike) -> BuildInfo:
    """The provenance (``build_info.json``) of a built dataset, strictly loaded
    (``sdme.built.BuildInfo``).

    Raises:
        ProtocolError: absent, unreadable or malformed (naming the file and the field).
    """
    from sdme.built import BuildInfo, BuildInfoError

    path = Path(folder) / BUILD_INFO_NAME
    if not path.is_file():
        raise ProtocolError(f"{path}: missing; the dataset was not made by `sdme build`, "
                            "`sdme import` or `sdme synth`")
    try:
        return BuildInfo.load(path)
    except (BuildInfoError, OSError) as exc:
        raise ProtocolError(str(exc)) from None


def provenance_identity(build_info: Mapping[str, Any], where: str = "build_info.json"
                        ) -> tuple[str, dict[str, dict[str, Any]]]:
    """What identifies how a dataset was made, as the fingerprints hash it: the source corpus's
    fingerprint, and each modality's extractor name, version and config fingerprint.

    Raises:
        ProtocolError: ``build_info`` (the provenance's JSON form) lacks them.
    """
    try:
        source = build_info["source"]["fingerprint"]
        extractors = {m: {k: e[k] for k in ("name", "version", "fingerprint")}
                      for m, e in sorted(build_info["extractors"].items())}
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"{where} lacks source.fingerprint or extractors ({exc!r}): "
                            "rebuild the dataset with `sdme build`") from exc
    return source, extractors


def dataset_fingerprint(reference: TestReference, build_info: Mapping[str, Any]) -> str:
    """sha256 identifying the test labels and how the dataset was made (module docstring).

    ``build_info`` is the provenance in its JSON form (``BuildInfo.to_dict()``).

    Raises:
        ProtocolError: ``build_info`` lacks the source fingerprint or the extractors.
    """
    source, extractors = provenance_identity(build_info)
    pairs = sorted([cid, reference.label_key(i)] for i, cid in enumerate(reference.ids))
    payload = {"fingerprint_version": FINGERPRINT_VERSION, "test": pairs,
               "taxonomy": list(reference.class_names or []), "source": source,
               "extractors": extractors}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- scoring


def _metrics(task: Task, ref: TestReference, predicted: np.ndarray,
             names: Sequence[str]) -> dict[str, float]:
    """The registered metrics ``names`` of one prediction vector against the test labels."""
    return compute_metrics(names, ref.labels, predicted,
                           num_classes=len(ref.class_names) if ref.class_names else None,
                           scale=task.continuous_scale)


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
    scalar = _metrics(task, ref, predicted, task.metrics)
    class_f1 = confusion = None
    if ref.class_names is not None:  # class indices, checked by _metrics above
        n = len(ref.class_names)
        class_f1 = {str(c): v for c, v in zip(ref.class_names,
                                              per_class_f1(ref.labels, predicted, n), strict=True)}
        confusion = confusion_matrix(ref.labels, predicted, n)

    stratified = _stratify(task, ref, predicted)
    auroc = _relevance_auroc(task, ref, ordered)

    metric = task.scored_metric
    levels = [float(x) for x in task.noise_levels]

    def under(condition: str) -> float:
        values = _vector(task, (r["conditions"][condition] for r in ordered))
        return _metrics(task, ref, values, [metric])[metric]

    clean = scalar[metric]
    drop = {m: under(f"drop:{m}") for m in task.modalities}
    noise = {curve: [clean] + [under(f"noise:{curve}:{format_level(x)}") for x in levels[1:]]
             for curve in noise_curves(task)}
    relative = {curve: M.relative_robustness(levels, values) for curve, values in noise.items()}
    robustness = Robustness(metric=metric, levels=levels, clean=clean, drop=drop, noise=noise,
                            relative=relative)
    return SeedResult(seed=seed, metrics=scalar, per_class_f1=class_f1,
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

    levels = table(by_deviation)
    return Stratified(by_deviation=levels, by_deviating_modalities=table(by_group),
                      by_agreement=agreement_strata(levels))


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
                                         by_deviating_modalities=table("by_deviating_modalities"),
                                         by_agreement=table("by_agreement"))
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


# ----------------------------------------------------------------------------- the dataset


def resolve_task_dataset(task: Task, data_dir: str | os.PathLike | None = None,
                         dataset: str | os.PathLike | None = None) -> Path:
    """The built dataset folder of a task (or ``dataset``, a folder or name, instead).

    Raises:
        FileNotFoundError: not built; for the task's own dataset the message gives the exact
            command that makes it (``benchmark.tasks.dataset_recipe``, from the task's source).
    """
    from sdme import paths
    from sdme.loading import resolve_built

    try:
        return resolve_built(dataset or task.dataset, data_dir)
    except FileNotFoundError as exc:
        recipe = None if dataset else dataset_recipe(
            task, None if data_dir is None else str(data_dir))
        if recipe is None:
            raise
        raise FileNotFoundError(
            f"no built dataset {task.dataset!r} in {paths.data_dir(data_dir) / 'built'}: task "
            f"{task.key} needs it; make it with `{recipe}`") from exc


def check_built(folder: str | os.PathLike, *, shards: bool = True) -> None:
    """Refuses a folder that is not a built dataset by the contract ``sdme validate --built``
    checks first (``sdme.validate_built.check_structure``: card, provenance, the three splits,
    every required column): the benchmark and the validator apply one definition.

    Args:
        folder: the built dataset folder.
        shards: read the shards' footers (False: the card and provenance only; ``tune``, which
            never opens the test split).

    Raises:
        ProtocolError: the first problems, one per line, and the command that lists them all.
    """
    from sdme.validate_built import structure_problems

    problems = structure_problems(folder, shards=shards)
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ProtocolError(f"{folder}: not a usable built dataset ({len(problems)} "
                            f"problem(s); `sdme validate --built {folder}` checks it all):\n  "
                            f"{shown}{more}")


def pinned_mismatch(task: Task, folder: str | os.PathLike, fingerprint: str,
                    recipe: str | None = None) -> str | None:
    """The one-line error when ``task`` pins a dataset fingerprint and ``folder``'s,
    ``fingerprint``, is another (another corpus in the task's dataset folder), with the
    command that makes the task's own where ``recipe`` gives one; None when nothing is pinned
    or the fingerprints agree."""
    pinned = task.dataset_fingerprint
    if pinned is None or fingerprint == pinned:
        return None
    return (f"{folder} holds another corpus than task {task.key}'s: dataset fingerprint "
            f"{fingerprint[:12]} differs from the one task {task.key} pins ({pinned[:12]})"
            + (f"; move it away and make the task's dataset with `{recipe}`" if recipe else ""))


def load_test_reference(task: Task, folder: str | os.PathLike
                        ) -> tuple[TestReference, str, dict[str, Any]]:
    """The test reference, dataset fingerprint and build info of a built dataset folder (the
    test split's annotation columns are read from its parquet in place).

    Raises:
        ProtocolError: the dataset has no such split, or an invalid provenance.
    """
    from sdme.built import BuildInfoError
    from sdme.loading import read_columns, read_features, taxonomy

    try:
        features = read_features(folder)
        split = read_columns(folder, task.test_split, reference_columns(features, task))
    except (KeyError, BuildInfoError) as exc:
        raise ProtocolError(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)) \
            from None
    class_names = taxonomy(features) if task.task_type == "discrete" else None
    reference = TestReference.from_split(split, task, class_names)
    build_info = read_build_info(folder).to_dict()
    return reference, dataset_fingerprint(reference, build_info), build_info


__all__ = ["BUILD_INFO_NAME", "FINGERPRINT_VERSION", "ProtocolError", "TestReference",
           "aggregate_report", "check_built", "check_coverage", "dataset_fingerprint",
           "format_level", "load_test_reference", "noise_curves", "pinned_mismatch",
           "provenance_identity",
           "read_build_info", "reference_columns", "resolve_task_dataset",
           "robustness_conditions", "score_predictions", "score_seed"]
