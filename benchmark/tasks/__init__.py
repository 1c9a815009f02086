"""Benchmark tasks: frozen, declarative records, registered by name and version.

A task says which built dataset to evaluate on, which splits play which role, whether labels are
classes or scores, which metrics are reported and which one is the headline (``main_score``),
and how robustness is probed. Like MTEB's ``TaskMetadata`` and lm-evaluation-harness's task
configs (whose full resolved config is copied into every results file), a task is data, not
code: results files embed the definition and its sha256, and a changed task is a *new version*,
never an edit in place.

Each task is one :class:`Task` record passed to :func:`register_task` in a module of this
package, one module per family (``sdme_corpora``: the SDME-format emotion corpora; ``mmsa``:
MMSA's sentiment-regression corpora). The registry is the one :class:`sdme.registry.Registry`,
keyed ``name@version``: every public module here is imported on the first lookup (and every
``sdme.tasks`` entry point), so adding a task is adding one record in one file. A released task
carries the sha256 of its definition in its own record (``released_sha256``, itself outside the
hash); :func:`get_task` refuses to serve a task whose record no longer matches it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from benchmark.metrics import valid_levels
from sdme.metrics import SCALES, TASK_TYPES, metric_info, metric_names
from sdme.registry import Registry
from sdme.schema import MODALITIES

DEFAULT_NOISE_LEVELS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
#: The main task: what ``benchmark run`` and ``tune`` use without ``--task``, what the quick
#: start trains the user's model on, and what the shipped reference results cover. Switching
#: the main task is changing this one name (then ``scripts/make_reference_results.sh``).
DEFAULT_TASK = "sdme-synth-structured"
#: The tasks the shipped reference results (``benchmark.reference``) cover: every registered
#: model, five seeds each: the main task, and the chance-deviation task beside it (relevance
#: estimation is judged on both). The sample's task is a pipeline check, not among them.
REFERENCE_TASKS: tuple[str, ...] = (DEFAULT_TASK, "sdme-synth-discrete")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: Task fields that describe how the dataset is made, how the record is pinned and how the task
#: is presented, not what is evaluated: left out of :meth:`Task.to_dict` and the definition hash.
_NOT_DEFINITION = ("source", "source_options", "released_sha256", "pipeline_check")
#: Names of ad-hoc tasks (``benchmark.adhoc``) start with it; a registered task may not.
ADHOC_PREFIX = "adhoc-"


class TaskError(KeyError):
    """An unknown task or version, or a task definition that breaks the rules."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Task:
    """One benchmark task.

    Attributes:
        name: registry name, e.g. ``"sdme-sample-discrete"``.
        version: integer version; any change of the definition gets a new one.
        dataset: built dataset name (``<data_dir>/built/<dataset>``, ``sdme build``).
        description: one paragraph for cards and the leaderboard.
        task_type: ``"discrete"`` (class labels) or ``"continuous"`` (scores).
        metrics: scalar metrics reported, registered in ``sdme.metrics.METRICS`` for the task
            type (and scale).
        main_score: the headline metric (one of ``metrics``).
        dataset_fingerprint: the pinned dataset fingerprint (``benchmark.scoring.
            dataset_fingerprint``); None when the task accepts any build of ``dataset`` (its
            fingerprint is then recorded in every results file and checked on submission).
        train_split: split the model is trained on.
        validation_split: split used for checkpoint and hyper-parameter selection.
        test_split: split scored once per seed, after training.
        label_column: column holding the label (a ClassLabel for discrete tasks, a float score
            for continuous ones).
        continuous_scale: a scale of ``sdme.metrics.SCALES`` (``"mosi"``, ``"sims"``) for
            continuous tasks (metric conventions).
        modalities: modalities the models see.
        robustness_metric: metric of the robustness curves (default: ``main_score``).
        noise_levels: Gaussian noise standard deviations, in units of each modality's feature
            standard deviation on the training split; must start at 0 (clean).
        reference_model: model whose robustness curves anchor effective robustness.
        source: the registered ``sdme.sources`` source that makes ``dataset`` (its recipe:
            :func:`dataset_recipe`); None for a dataset no source makes.
        source_options: the source's options for this dataset (placeholders such as
            ``PATH/TO/file.pkl`` where the user supplies a file).
        released_sha256: for a released task, the :meth:`definition_sha256` it was released
            with; None while a task is not released.
        pipeline_check: the task checks that the pipeline runs (a tiny corpus); its numbers are
            not results, and the leaderboard and ``run`` say so.

    ``source``, ``source_options``, ``released_sha256`` and ``pipeline_check`` say how the
    dataset is made, how the record is pinned and how the task is presented, not what is
    evaluated: they are neither hashed, compared nor embedded in results files (the dataset
    fingerprint pins the data itself).
    """

    name: str
    version: int
    dataset: str
    description: str
    task_type: str
    metrics: tuple[str, ...]
    main_score: str
    dataset_fingerprint: str | None = None
    train_split: str = "train"
    validation_split: str = "validation"
    test_split: str = "test"
    label_column: str = "label"
    continuous_scale: str | None = None
    modalities: tuple[str, ...] = MODALITIES
    robustness_metric: str | None = None
    noise_levels: tuple[float, ...] = DEFAULT_NOISE_LEVELS
    reference_model: str = "late_fusion"
    source: str | None = field(default=None, compare=False)
    source_options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    released_sha256: str | None = field(default=None, compare=False)
    pipeline_check: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise TaskError(f"task {self.name!r} v{self.version}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with this definition (empty when it is valid)."""
        out = []
        if not self.name or self.name != self.name.strip() or "/" in self.name or "@" in self.name:
            out.append(f"bad name {self.name!r} (no spaces at the ends, no '/' or '@')")
        if not isinstance(self.version, int) or self.version < 1:
            out.append(f"version must be a positive integer, got {self.version!r}")
        if self.released_sha256 is not None and not _SHA256.match(str(self.released_sha256)):
            out.append(f"released_sha256 must be a sha256 hex digest, got "
                       f"{self.released_sha256!r}")
        if self.task_type not in TASK_TYPES:
            out.append(f"task_type must be one of {TASK_TYPES}, got {self.task_type!r}")
            return out
        scales = tuple(SCALES)
        if self.task_type == "continuous" and self.continuous_scale not in scales:
            out.append(f"continuous tasks need continuous_scale in {scales}")
        if self.task_type == "discrete" and self.continuous_scale is not None:
            out.append("continuous_scale is only for continuous tasks")
        if out:
            return out
        available = metric_names(self.task_type, self.continuous_scale)
        unknown = [m for m in self.metrics if m not in available]
        if unknown or not self.metrics:
            out.append(f"metrics {unknown or '()'} not available for this task type; choose "
                       f"from {', '.join(available)}")
        if self.main_score not in self.metrics:
            out.append(f"main_score {self.main_score!r} is not among metrics {self.metrics}")
        if self.robustness_metric is not None and self.robustness_metric not in self.metrics:
            out.append(f"robustness_metric {self.robustness_metric!r} is not among metrics")
        if not valid_levels(self.noise_levels):
            out.append(f"noise_levels must start at 0 and increase, got {list(self.noise_levels)}")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad or not self.modalities:
            out.append(f"modalities must be a non-empty subset of {MODALITIES}, got "
                       f"{self.modalities}")
        splits = (self.train_split, self.validation_split, self.test_split)
        if len(set(splits)) != 3:
            out.append(f"train, validation and test splits must differ, got {splits}")
        return out

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def scored_metric(self) -> str:
        """The metric of the robustness curves."""
        return self.robustness_metric or self.main_score

    @property
    def higher_is_better(self) -> bool:
        return metric_info(self.main_score).higher_is_better

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain JSON types (what results files embed)."""
        data = asdict(self)
        for key in _NOT_DEFINITION:
            data.pop(key)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        """A task from :meth:`to_dict`'s output (unknown fields are refused)."""
        known = {f.name for f in fields(cls) if f.init} - set(_NOT_DEFINITION)
        unknown = sorted(set(data) - known)
        if unknown:
            raise TaskError(f"task definition has unknown field(s) {unknown}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def definition_sha256(self) -> str:
        """sha256 of the canonical JSON of :meth:`to_dict` without the (cosmetic) description."""
        data = {k: v for k, v in self.to_dict().items() if k != "description"}
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- registry

TASKS: Registry[Task] = Registry("task", packages=["benchmark.tasks"])


def register_task(task: Task) -> Task:
    """Adds a task (a new name, or a new version of a known name) under ``name@version``.

    Registering an equal definition again is allowed and keeps the first record.

    Raises:
        TaskError: not a :class:`Task`, a name with the ad-hoc prefix, or that name and version
            are already registered with another definition.
    """
    if not isinstance(task, Task):
        raise TaskError(f"register_task takes a Task, got {type(task).__name__}")
    if task.name.startswith(ADHOC_PREFIX):
        raise TaskError(f"task {task.name!r}: names starting with {ADHOC_PREFIX!r} are for "
                        "ad-hoc tasks derived from a dataset (benchmark.adhoc)")
    if task.key in TASKS:
        if TASKS.get(task.key).definition_sha256() != task.definition_sha256():
            raise TaskError(f"task {task.key} is already registered with another definition; "
                            "a changed task needs a new version")
        return TASKS.get(task.key)
    TASKS.register(task.key, task, name=task.name, version=task.version)
    return task


def unregister_task(name: str, version: int | None = None) -> None:
    """Removes a task (all versions when ``version`` is None); for tests and plugins."""
    for entry in TASKS.entries():
        if entry.meta["name"] == name and version in (None, entry.meta["version"]):
            TASKS.unregister(entry.name)


def _versions(name: str) -> dict[int, Task]:
    return {e.meta["version"]: e.obj for e in TASKS.entries() if e.meta["name"] == name}


def task_names() -> list[str]:
    """The names of the registered tasks (without versions), sorted."""
    return sorted({e.meta["name"] for e in TASKS.entries()})


def list_tasks() -> list[Task]:
    """The latest version of every registered task, sorted by name."""
    out = []
    for name in task_names():
        versions = _versions(name)
        out.append(versions[max(versions)])
    return out


def get_task(spec: str | Task, version: int | None = None) -> Task:
    """A registered task by ``name``, ``name@version`` or ``name`` + ``version``.

    Without a version, the latest one.

    Raises:
        TaskError: unknown name (with a close match), unknown version, or a released
            definition that was edited in place.
    """
    if isinstance(spec, Task):
        return spec
    name = spec
    if "@" in spec:
        name, _, text = spec.partition("@")
        try:
            version = int(text.lstrip("v"))
        except ValueError as exc:
            raise TaskError(f"bad task version in {spec!r}; expected NAME@N") from exc
    versions = _versions(name)
    if not versions:
        raise TaskError(str(TASKS.unknown(name, task_names())))
    if version is None:
        version = max(versions)
    if version not in versions:
        raise TaskError(f"task {name!r} has no version {version}; known: "
                        f"{', '.join(str(v) for v in sorted(versions))}")
    task = versions[version]
    expected = task.released_sha256
    if expected is not None and expected != task.definition_sha256():
        raise TaskError(f"task {task.key} differs from its released definition (sha256 "
                        f"{task.definition_sha256()[:12]} != {expected[:12]}): a changed task "
                        "must be registered as a new version")
    return task


# ----------------------------------------------------------------------------- recipes


def dataset_recipe(task: Task, data_dir: str | None = None) -> str | None:
    """The shell command that makes a task's dataset, from its source
    (``sdme.sources.source_command``), with ``--data-dir`` added to each step when given.

    None when the task names no source.
    """
    if task.source is None:
        return None
    from sdme.sources import source_command

    command = source_command(task.source, **dict(task.source_options))
    if not data_dir:
        return command
    suffix = f" --data-dir {shlex.quote(str(data_dir))}"
    return " && ".join(step + suffix for step in command.split(" && "))


__all__ = ["ADHOC_PREFIX", "DEFAULT_NOISE_LEVELS", "DEFAULT_TASK", "REFERENCE_TASKS", "TASKS",
           "Task",
           "TaskError", "dataset_recipe", "get_task", "list_tasks", "register_task",
           "task_names", "unregister_task"]
