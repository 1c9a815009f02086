"""The results file: one JSON document per (model, task), versioned and validated strictly.

Layout of a results store (as in MTEB and lm-evaluation-harness: one file per model and task,
carrying everything needed to reproduce and to check it)::

    <store>/<model>/<task>.json                 the results (this schema)
    <store>/<model>/<task>.predictions.jsonl    per-clip predictions, one line per (seed, clip)
                                                (or ``.jsonl.gz``: the same lines, gzip-compressed)

The document (``schema_version`` 2) records the task (name, version, full definition and its
 sha256), the dataset (name and fingerprint), the metric-spec version, the model (name,
resolved configs and, when ``benchmark tune`` chose the config, the tuning study's summary:
:class:`Tuning`), the seeds, per-seed and aggregate metrics, the deviation-stratified reports
(by level, by deviating modalities, aligned vs conflicting), the relevance and robustness
reports, the environment, the date, and the predictions file with its sha256.
:func:`load_results` checks every field's presence and type (there is no jsonschema
here: the dataclasses below *are* the schema), refuses unknown fields, NaN and infinities, and
then checks consistency (known metrics in range, seeds matching the per-seed entries, curves the
length of the noise levels). Every error names the file and the field.

Older files are migrated on load (as MTEB's ``TaskResult`` does): a ``schema_version`` 1 file
(which predates ``benchmark tune``) is read as version 2 with ``model.tuning`` null, so
``benchmark submit`` still accepts it and stores it in the current version.

Predictions lines (JSON objects, ``predictions.jsonl``)::

    {"seed": 0, "clip_id": "c001", "prediction": 3,
     "relevance": {"text": 0.61, "audio": 0.22, "vision": 0.17},      # only for models with
     "conditions": {"drop:text": 2, "noise:audio:0.5": 3, ...}}        # relevance weights

``prediction`` is a class index (discrete tasks) or a score (continuous tasks); ``conditions``
holds the prediction of the same selected model under each robustness condition. A predictions
file named ``*.jsonl.gz`` (``predictions.format`` ``"jsonl.gz"``) holds the same lines
gzip-compressed (what the shipped reference results use: about a tenth of the bytes);
``predictions.sha256`` is always the sha256 of the uncompressed lines, so the same predictions
have the same digest in either form, and decompression is bounded like every read here.

``task.adhoc`` is true for a run on a user's own dataset without a registered task
(``benchmark.adhoc``: the task is derived from the dataset and named ``adhoc-<dataset>``); it
may be absent (false) in older files.

Exporters to the Hugging Face formats are in :mod:`benchmark.export`. The module is longer than
most because the dataclasses below *are* the schema and the validator walks them: splitting them
from it would make two places to change for one field.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import math
import os
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmark.metrics import METRIC_SPEC_VERSION, Aggregate, valid_levels
from benchmark.tasks import ADHOC_PREFIX
from sdme import safe_json
from sdme.fileio import atomic_write_bytes, atomic_write_text
from sdme.metrics import check_range

RESULTS_FORMAT = "sdme-benchmark-results"
SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1, 2)
PREDICTIONS_FORMAT = "jsonl"
#: Predictions formats, each the file-name suffix after ``.predictions.``.
PREDICTIONS_FORMATS: tuple[str, ...] = ("jsonl", "jsonl.gz")
MAX_FILE_BYTES = 50 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ResultsError(ValueError):
    """A results or predictions file that does not follow the schema.

    The message starts with the file, then the field path (e.g. ``per_seed[1].metrics``).
    """

    def __init__(self, source: str | os.PathLike | None, where: str | None, problem: str) -> None:
        parts = [str(p) for p in (source, where) if p]
        super().__init__(": ".join([*parts, problem]))
        self.source = str(source) if source else None
        self.where = where
        self.problem = problem


# ----------------------------------------------------------------------------- the schema


@dataclass
class TaskRef:
    """The task a file was computed for, with its full definition (lm-eval style).

    ``adhoc``: derived from a user's dataset, not a registered task (``benchmark.adhoc``); may
    be absent from a file (false).
    """

    name: str
    version: int
    definition_sha256: str
    definition: dict[str, Any]
    adhoc: bool = dataclasses.field(default=False, metadata={"optional": True})


@dataclass
class DatasetRef:
    """The built dataset, identified by its fingerprint (``benchmark.scoring``)."""

    name: str
    fingerprint: str
    splits: dict[str, int]
    source: dict[str, Any]
    extractors: dict[str, Any]


@dataclass
class Tuning:
    """How ``benchmark tune`` chose a config: an Optuna study on the validation split only.

    Also the ``tuned`` section of a tuned config file (``benchmark.tune``).

    Attributes:
        model: the registered model tuned.
        task: the task key (``name@version``).
        study: the study's name in its SQLite storage.
        fingerprint: the development fingerprint (``benchmark.tune.development_fingerprint``:
            train and validation labels and the dataset's provenance; no test data).
        metric: the validation metric maximised or minimised (the trainer's ``select_metric``).
        higher_is_better: its direction.
        best_value: the best trial's validation score.
        best_trial: that trial's number.
        trials: trials run against the budget: complete, pruned or failed (a diverging loss;
            a trial cut short by an interruption is run again and not counted).
        pruned: of those, pruned.
        failed: of those, failed.
        budget_trials: the trials the command asked for (the same for every model).
        epochs: maximum epochs per trial (the same for every model).
        seed: training seed of every trial and seed of the sampler.
        sampler: the sampler.
        pruner: the pruner.
        space: the searched space (``baselines.search.describe_space``).
        optuna: Optuna's version.
        created: when the config was written (ISO 8601).
    """

    model: str
    task: str
    study: str
    fingerprint: str
    metric: str
    higher_is_better: bool
    best_value: float
    best_trial: int
    trials: int
    pruned: int
    failed: int
    budget_trials: int
    epochs: int
    seed: int
    sampler: str
    pruner: str
    space: dict[str, Any]
    optuna: str
    created: str


@dataclass
class ModelRef:
    """The model: registered name, resolved model config and train config, and the tuning that
    chose them (None: the defaults or a config given by hand)."""

    name: str
    config: dict[str, Any]
    train_config: dict[str, Any]
    num_parameters: int
    tuning: Tuning | None = None


@dataclass
class PredictionsRef:
    """Where the per-clip predictions are (relative to the results file) and their sha256."""

    path: str
    sha256: str
    format: str
    rows: int


@dataclass
class Environment:
    """Software and hardware a run used."""

    python: str
    platform: str
    torch: str
    numpy: str
    sklearn: str
    sdme: str
    device: str


@dataclass
class ProtocolInfo:
    """Protocol facts a run fixed: the noise unit per modality and the conditions scored."""

    noise_scale: dict[str, float]
    conditions: list[str]


@dataclass
class Selection:
    """How the seed's checkpoint was chosen (validation split only)."""

    select_metric: str
    best_epoch: int
    best_score: float | None
    epochs_run: int
    stopped_early: bool


@dataclass
class Stratum:
    """Accuracy of a group of test clips."""

    n: int
    accuracy: float


@dataclass
class Stratified:
    """Accuracy by deviation level (``"0"``..``"3"``), by set of deviating modalities, and on
    aligned vs conflicting clips (``"aligned"``: deviation 0; ``"conflicting"``: deviation >= 1;
    :func:`agreement_strata`)."""

    by_deviation: dict[str, Stratum]
    by_deviating_modalities: dict[str, Stratum]
    by_agreement: dict[str, Stratum]


#: The keys of ``by_agreement``: deviation 0, and deviation 1 or more.
AGREEMENT_KEYS: tuple[str, ...] = ("aligned", "conflicting")


def agreement_strata(by_deviation: dict[str, Stratum]) -> dict[str, Stratum]:
    """Accuracy on *aligned* clips (deviation 0: every annotated modality's class is the clip's)
    and *conflicting* ones (deviation >= 1), pooled from the deviation strata: clip counts add
    up, correct counts are ``round(accuracy * n)`` (exact: a stratum's accuracy is a count over
    ``n``). A key whose strata are all absent is left out."""
    pools = {key: [0, 0] for key in AGREEMENT_KEYS}
    for level, stratum in by_deviation.items():
        pool = pools[AGREEMENT_KEYS[0] if int(level) == 0 else AGREEMENT_KEYS[1]]
        pool[0] += stratum.n
        pool[1] += round(stratum.accuracy * stratum.n)
    return {key: Stratum(n=n, accuracy=correct / n) for key, (n, correct) in pools.items() if n}


@dataclass
class Robustness:
    """One seed's scores under test-time imperfection.

    Attributes:
        metric: the metric of every value below.
        levels: noise levels (first 0: clean).
        clean: the metric on clean test data.
        drop: modality -> metric with the modality removed.
        noise: curve name (a modality, or ``"all"``) -> metric at each level.
        relative: curve name -> relative robustness.
    """

    metric: str
    levels: list[float]
    clean: float
    drop: dict[str, float]
    noise: dict[str, list[float]]
    relative: dict[str, float]


@dataclass
class SeedResult:
    """Everything scored for one seed."""

    seed: int
    metrics: dict[str, float]
    per_class_f1: dict[str, float] | None
    confusion_matrix: list[list[int]] | None
    stratified: Stratified | None
    relevance_auroc: float | None
    robustness: Robustness
    selection: Selection | None


@dataclass
class StratifiedAggregate:
    by_deviation: dict[str, Aggregate]
    by_deviating_modalities: dict[str, Aggregate]
    by_agreement: dict[str, Aggregate]


@dataclass
class RobustnessAggregate:
    drop: dict[str, Aggregate]
    noise: dict[str, list[Aggregate]]
    relative: dict[str, Aggregate]


@dataclass
class AggregateReport:
    """Aggregates over seeds (``benchmark.metrics.aggregate``) of every per-seed number."""

    metrics: dict[str, Aggregate]
    per_class_f1: dict[str, Aggregate] | None
    stratified: StratifiedAggregate | None
    relevance_auroc: Aggregate | None
    robustness: RobustnessAggregate


@dataclass
class Results:
    """A results file (see the module docstring)."""

    format: str
    schema_version: int
    metric_spec_version: int
    created: str
    task: TaskRef
    dataset: DatasetRef
    model: ModelRef
    seeds: list[int]
    per_seed: list[SeedResult]
    aggregate: AggregateReport
    predictions: PredictionsRef
    protocol: ProtocolInfo
    environment: Environment

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def main_score(self) -> Aggregate:
        """The aggregate of the task's main score."""
        return self.aggregate.metrics[self.task.definition["main_score"]]


# ----------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    if tp is Any:
        return "any JSON value"
    if dataclasses.is_dataclass(tp):
        return "an object"
    origin = typing.get_origin(tp)
    if origin in (list,):
        return "a list"
    if origin in (dict,):
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(
        tp, str(tp))


def _describe(value: Any) -> str:
    text = json.dumps(value, allow_nan=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_json(value: Any, where: str, source: str | None) -> None:
    """Free-form JSON (configs): only finiteness is checked."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ResultsError(source, where, f"{value} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_json(v, f"{where}.{k}", source)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]", source)


def _parse(tp: Any, value: Any, where: str, source: str | None) -> Any:
    if tp is Any:
        _check_json(value, where, source)
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise ResultsError(source, where, "must not be null")
        inner = [o for o in options if o is not type(None)]
        if len(inner) != 1:  # pragma: no cover - the schema has no such unions
            raise TypeError(f"unsupported union {tp}")
        return _parse(inner[0], value, where, source)
    if value is None:
        raise ResultsError(source, where, f"must not be null (expected {_type_name(tp)})")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ResultsError(source, where, f"expected an object, got {_describe(value)}")
        hints = typing.get_type_hints(tp)
        declared = [f for f in dataclasses.fields(tp) if f.init]
        names = {f.name for f in declared}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ResultsError(source, where or "(top level)",
                               f"unknown field(s) {unknown}; expected {sorted(names)}")
        kwargs = {}
        for f in declared:
            path = f"{where}.{f.name}" if where else f.name
            if f.name not in value and f.metadata.get("optional"):
                continue  # added to schema 2 later: absent means the default
            if f.name not in value:
                raise ResultsError(source, path, "missing required field")
            kwargs[f.name] = _parse(hints[f.name], value[f.name], path, source)
        return tp(**kwargs)
    if origin is list:
        if not isinstance(value, list):
            raise ResultsError(source, where, f"expected a list, got {_describe(value)}")
        (item,) = typing.get_args(tp)
        return [_parse(item, v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ResultsError(source, where, f"expected an object, got {_describe(value)}")
        _, item = typing.get_args(tp)
        return {str(k): _parse(item, v, f"{where}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ResultsError(source, where, f"expected true/false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ResultsError(source, where, f"expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultsError(source, where, f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ResultsError(source, where, f"{value} is not a finite number (NaN/inf are "
                               "not allowed)")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ResultsError(source, where, f"expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported schema type {tp!r} at {where}")  # pragma: no cover


def results_from_dict(data: Any, source: str | os.PathLike | None = None) -> Results:
    """Parses and strictly validates a results document.

    Raises:
        ResultsError: naming ``source`` and the offending field.
    """
    src = str(source) if source else None
    if not isinstance(data, dict):
        raise ResultsError(src, None, f"expected a JSON object at the top level, got "
                           f"{type(data).__name__}")
    if data.get("format") != RESULTS_FORMAT:
        raise ResultsError(src, "format", f"expected {RESULTS_FORMAT!r}, got "
                           f"{_describe(data.get('format'))}: not an SDME results file")
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ResultsError(src, "schema_version", f"expected an integer, got {_describe(version)}")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ResultsError(src, "schema_version", f"unknown schema version {version}; this "
                           f"toolkit reads {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}")
    if version == 1:
        data = _v1_with_placeholders(_migrate_v1(data, src))
    results = _parse(Results, data, "", src)
    if version == 1:
        _upgrade_v1(results)
    check_consistency(results, src)
    return results


def _migrate_v1(data: dict[str, Any], source: str | None) -> dict[str, Any]:
    """A version 1 document as version 2, part one: ``model.tuning`` null (tuning came with
    version 2; :func:`_v1_with_placeholders` and :func:`_upgrade_v1` add the other part)."""
    model = data.get("model")
    if not isinstance(model, dict):
        return data  # the parser reports it
    if "tuning" in model:
        raise ResultsError(source, "model", "unknown field(s) ['tuning'] in a schema version 1 "
                           "file")
    return {**data, "schema_version": 2, "model": {**model, "tuning": None}}


def _v1_with_placeholders(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 document with an empty ``by_agreement`` in every stratified report (schema 1
    had none; :func:`_upgrade_v1` fills them in once the document is parsed)."""
    data = json.loads(json.dumps(data))
    reports = [s.get("stratified") for s in data.get("per_seed") or [] if isinstance(s, dict)]
    if isinstance(data.get("aggregate"), dict):
        reports.append(data["aggregate"].get("stratified"))
    for report in reports:
        if isinstance(report, dict):
            report.setdefault("by_agreement", {})
    return data


def _upgrade_v1(results: Results) -> None:
    """Schema 1 -> 2: ``by_agreement`` derived from ``by_deviation`` (as the scoring computes
    it), aggregated over seeds like every other stratum."""
    from benchmark.metrics import aggregate

    for seed in results.per_seed:
        if seed.stratified is not None:
            seed.stratified.by_agreement = agreement_strata(seed.stratified.by_deviation)
    strata = [s.stratified for s in results.per_seed]
    if results.aggregate.stratified is not None and all(s is not None for s in strata):
        results.aggregate.stratified.by_agreement = {
            key: aggregate([s.by_agreement[key].accuracy for s in strata])
            for key in strata[0].by_agreement}
    results.schema_version = SCHEMA_VERSION


def check_consistency(results: Results, source: str | None = None) -> None:
    """Checks what types alone cannot: versions, names, ranges, shapes.

    Raises:
        ResultsError: on the first inconsistency found.
    """
    def fail(where: str, problem: str) -> None:
        raise ResultsError(source, where, problem)

    if results.metric_spec_version != METRIC_SPEC_VERSION:
        fail("metric_spec_version", f"unknown metric spec version {results.metric_spec_version}; "
             f"this toolkit computes v{METRIC_SPEC_VERSION}")
    try:
        datetime.fromisoformat(results.created)
    except ValueError:
        fail("created", f"{results.created!r} is not an ISO-8601 date")
    digests = [("task.definition_sha256", results.task.definition_sha256),
               ("dataset.fingerprint", results.dataset.fingerprint),
               ("predictions.sha256", results.predictions.sha256)]
    tuning = results.model.tuning
    if tuning is not None:
        digests.append(("model.tuning.fingerprint", tuning.fingerprint))
        if tuning.model != results.model.name:
            fail("model.tuning.model", f"{tuning.model!r} is not the model {results.model.name!r}")
        key = f"{results.task.name}@{results.task.version}"
        if tuning.task != key:
            fail("model.tuning.task", f"{tuning.task!r} is not the task {key!r}")
        if (min(tuning.pruned, tuning.failed, tuning.epochs - 1, tuning.budget_trials - 1) < 0
                or tuning.pruned + tuning.failed >= tuning.trials):
            fail("model.tuning", f"trials={tuning.trials}, pruned={tuning.pruned}, "
                 f"failed={tuning.failed}, budget_trials={tuning.budget_trials}, "
                 f"epochs={tuning.epochs}: counts must be non-negative, budget and epochs at "
                 "least 1, and at least one trial complete")
    for where, digest in digests:
        if not _SHA256.match(digest):
            fail(where, f"{digest!r} is not a sha256 hex digest")
    if results.predictions.format not in PREDICTIONS_FORMATS:
        fail("predictions.format", f"expected one of {list(PREDICTIONS_FORMATS)}, got "
             f"{results.predictions.format!r}")
    path = results.predictions.path
    if not path or Path(path).is_absolute() or "/" in path or "\\" in path or path.startswith("."):
        fail("predictions.path", f"{path!r} must be a plain file name beside the results file")
    if predictions_format(path) != results.predictions.format:
        fail("predictions.path", f"{path!r} does not end in .{results.predictions.format} "
             "(predictions.format)")
    if results.task.adhoc != results.task.name.startswith(ADHOC_PREFIX):
        fail("task.adhoc", f"{results.task.adhoc} for task {results.task.name!r}: ad-hoc tasks, "
             f"and only they, are named {ADHOC_PREFIX}<dataset>")
    if not results.seeds:
        fail("seeds", "no seeds")
    if len(set(results.seeds)) != len(results.seeds):
        fail("seeds", f"duplicate seeds in {results.seeds}")
    if [s.seed for s in results.per_seed] != results.seeds:
        fail("per_seed", f"per-seed entries {[s.seed for s in results.per_seed]} do not match "
             f"seeds {results.seeds}")
    metric_keys = set(results.aggregate.metrics)
    definition = results.task.definition
    declared = set(definition.get("metrics", []))
    if metric_keys != declared:
        fail("aggregate.metrics", f"metrics {sorted(metric_keys)} differ from the task's "
             f"{sorted(declared)}")
    for i, seed in enumerate(results.per_seed):
        where = f"per_seed[{i}]"
        if set(seed.metrics) != metric_keys:
            fail(f"{where}.metrics", f"metrics {sorted(seed.metrics)} differ from the task's "
                 f"{sorted(metric_keys)}")
        for name, value in seed.metrics.items():
            problem = check_range(name, value)
            if problem:
                fail(f"{where}.metrics.{name}", problem)
        _check_probability_map(seed.per_class_f1 or {}, f"{where}.per_class_f1", fail)
        if seed.relevance_auroc is not None and not 0 <= seed.relevance_auroc <= 1:
            fail(f"{where}.relevance_auroc", f"{seed.relevance_auroc} is outside [0, 1]")
        if seed.stratified is not None:
            for group, table in (("by_deviation", seed.stratified.by_deviation),
                                 ("by_deviating_modalities",
                                  seed.stratified.by_deviating_modalities),
                                 ("by_agreement", seed.stratified.by_agreement)):
                for key, stratum in table.items():
                    if stratum.n < 1 or not 0 <= stratum.accuracy <= 1:
                        fail(f"{where}.stratified.{group}.{key}", f"n={stratum.n}, "
                             f"accuracy={stratum.accuracy} is not a valid stratum")
        rob = seed.robustness
        levels = rob.levels
        if not valid_levels(levels):
            fail(f"{where}.robustness.levels", f"{levels} must start at 0 and increase")
        for curve, values in rob.noise.items():
            if len(values) != len(levels):
                fail(f"{where}.robustness.noise.{curve}", f"{len(values)} values for "
                     f"{len(levels)} levels")
        if set(rob.relative) != set(rob.noise):
            fail(f"{where}.robustness.relative", "must have one value per noise curve")


def _check_probability_map(values: dict[str, float], where: str, fail: Any) -> None:
    for key, value in values.items():
        if not 0 <= value <= 1:
            fail(f"{where}.{key}", f"{value} is outside [0, 1]")


# ----------------------------------------------------------------------------- files


def read_json_file(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """Reads a JSON file after a size check, with bounded nesting and integer literals
    (``sdme.safe_json``).

    Raises:
        ResultsError: missing, oversized, not UTF-8, not JSON, nested deeper than
            ``sdme.safe_json.MAX_DEPTH`` or holding an integer literal over
            ``sdme.safe_json.MAX_INT_DIGITS`` digits.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(path, None, "no such file")
    try:
        return safe_json.load(path, max_bytes=max_bytes)
    except safe_json.JSONInputError as exc:
        raise ResultsError(path, None, exc.problem) from None


def load_results(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> Results:
    """Reads and strictly validates a results file.

    Raises:
        ResultsError: on any problem, naming the file and field.
    """
    return results_from_dict(read_json_file(path, max_bytes), path)


def save_results(results: Results, path: str | os.PathLike) -> Path:
    """Validates ``results`` and writes it atomically."""
    text = results.to_json()
    results_from_dict(json.loads(text), path)  # never write what we would refuse to read
    atomic_write_text(path, text)
    return Path(path)


PredictionRecord = dict[str, Any]
_RECORD_KEYS = {"seed", "clip_id", "prediction", "conditions"}
_OPTIONAL_RECORD_KEYS = {"relevance"}


def predictions_bytes(records: Iterable[PredictionRecord]) -> bytes:
    """The predictions' JSON Lines: one compact JSON object per line, in the given order."""
    lines = [json.dumps(r, separators=(",", ":"), allow_nan=False) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def predictions_format(path: str | os.PathLike) -> str:
    """``"jsonl.gz"`` for a file named ``*.jsonl.gz``, else ``"jsonl"``."""
    return "jsonl.gz" if str(path).endswith(".jsonl.gz") else PREDICTIONS_FORMAT


def write_predictions(path: str | os.PathLike, records: Iterable[PredictionRecord]
                      ) -> tuple[str, int]:
    """Writes the predictions file atomically, gzip-compressed when ``path`` ends in
    ``.jsonl.gz`` (byte-identical for the same records: no time stamp in the header).

    Returns:
        The sha256 of the JSON Lines (uncompressed) and the number of rows.
    """
    data = predictions_bytes(records)
    if predictions_format(path) == "jsonl.gz":
        atomic_write_bytes(path, gzip.compress(data, compresslevel=9, mtime=0))
    else:
        atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest(), data.count(b"\n")


def read_predictions_bytes(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The JSON Lines of a predictions file, decompressed for ``.jsonl.gz``; neither the file
    nor its decompressed lines may exceed ``max_bytes``.

    Raises:
        ResultsError: missing, oversized, not gzip where it should be, or decompressing past
            the limit.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(path, None, "predictions file not found")
    size = path.stat().st_size
    if size > max_bytes:
        raise ResultsError(path, None, f"file is {size} bytes, over the {max_bytes}-byte limit")
    blob = path.read_bytes()
    if predictions_format(path) != "jsonl.gz":
        return blob
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as stream:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
                if out.tell() > max_bytes:
                    raise ResultsError(path, None, f"decompresses to over {max_bytes} bytes")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ResultsError(path, None, f"not a readable gzip file ({exc})") from None
    return out.getvalue()


def predictions_sha256(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> str:
    """sha256 of a predictions file's JSON Lines (decompressed for ``.jsonl.gz``): the digest
    a results file records."""
    return hashlib.sha256(read_predictions_bytes(path, max_bytes)).hexdigest()


def _number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def read_predictions(path: str | os.PathLike, discrete: bool,
                     max_bytes: int = MAX_FILE_BYTES) -> dict[int, dict[str, PredictionRecord]]:
    """Reads and checks a predictions file: seed -> clip id -> record.

    Args:
        path: the ``.jsonl`` (or ``.jsonl.gz``) file.
        discrete: predictions must be integers (class indices) when True, finite numbers
            otherwise.
        max_bytes: size limit.

    Raises:
        ResultsError: oversized or malformed file, a line that is not a valid record
            (``file:line``; nesting and integer literals bounded as in :func:`read_json_file`),
            NaN/inf values, or a (seed, clip) pair given twice.
    """
    path = Path(path)
    data = read_predictions_bytes(path, max_bytes)
    by_seed: dict[int, dict[str, PredictionRecord]] = {}
    first_line: dict[tuple[int, str], int] = {}
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line
    for number, raw in enumerate(lines, start=1):
        where = f"line {number}"
        try:
            record = safe_json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ResultsError(path, where, f"not a JSON object: {exc}") from None
        except safe_json.JSONInputError as exc:
            raise ResultsError(path, where, f"not a JSON object: {exc.problem}") from None
        if not isinstance(record, dict):
            raise ResultsError(path, where, "not a JSON object")
        keys = set(record)
        if not _RECORD_KEYS <= keys or keys - _RECORD_KEYS - _OPTIONAL_RECORD_KEYS:
            raise ResultsError(path, where, f"fields {sorted(keys)}; expected "
                               f"{sorted(_RECORD_KEYS)} (+ optional 'relevance')")
        seed, clip_id = record["seed"], record["clip_id"]
        if not _number(seed, integer=True):
            raise ResultsError(path, f"{where}.seed", f"expected an integer, got {seed!r}")
        if not isinstance(clip_id, str) or not clip_id:
            raise ResultsError(path, f"{where}.clip_id", f"expected a clip id, got {clip_id!r}")
        kind = "a class index (integer)" if discrete else "a finite number"
        if not _number(record["prediction"], integer=discrete):
            raise ResultsError(path, f"{where}.prediction",
                               f"expected {kind}, got {record['prediction']!r}")
        conditions = record["conditions"]
        if not isinstance(conditions, dict):
            raise ResultsError(path, f"{where}.conditions", "expected an object")
        for name, value in conditions.items():
            if not _number(value, integer=discrete):
                raise ResultsError(path, f"{where}.conditions.{name}",
                                   f"expected {kind}, got {value!r}")
        relevance = record.get("relevance")
        if relevance is not None:
            if not isinstance(relevance, dict):
                raise ResultsError(path, f"{where}.relevance", "expected an object")
            for m, w in relevance.items():
                if not _number(w, integer=False) or not 0 <= w <= 1:
                    raise ResultsError(path, f"{where}.relevance.{m}",
                                       f"expected a weight in [0, 1], got {w!r}")
        key = (seed, clip_id)
        if key in first_line:
            raise ResultsError(path, where, f"duplicate prediction for clip {clip_id!r}, "
                               f"seed {seed} (first on line {first_line[key]})")
        first_line[key] = number
        by_seed.setdefault(seed, {})[clip_id] = record
    if not by_seed:
        raise ResultsError(path, None, "no predictions in the file")
    return by_seed


def results_path(store: str | os.PathLike, model: str, task: str) -> Path:
    """``<store>/<model>/<task>.json``."""
    return Path(store) / model / f"{task}.json"


def predictions_name(task: str, compressed: bool = False) -> str:
    """The predictions file name beside ``<task>.json`` (``.jsonl.gz`` when compressed)."""
    return f"{task}.predictions.jsonl" + (".gz" if compressed else "")


__all__ = ["AGREEMENT_KEYS", "AggregateReport", "DatasetRef", "Environment",
           "MAX_FILE_BYTES", "ModelRef", "PREDICTIONS_FORMATS", "PredictionsRef",
           "ProtocolInfo", "RESULTS_FORMAT", "Results",
           "ResultsError", "Robustness", "RobustnessAggregate", "SCHEMA_VERSION", "SeedResult",
           "Selection", "Stratified", "StratifiedAggregate", "Stratum", "TaskRef", "Tuning",
           "agreement_strata", "load_results", "predictions_bytes", "predictions_format",
           "predictions_name", "predictions_sha256", "read_json_file", "read_predictions",
           "read_predictions_bytes", "results_from_dict", "results_path",
           "save_results", "write_predictions"]
