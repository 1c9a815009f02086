"""Benchmark tasks: frozen, declarative records, registered by name and version.

A task says which built dataset to evaluate on, which splits play which role, whether labels are
classes or scores, which metrics are reported and which one is the headline (``main_score``),
and how robustness is probed. Like MTEB's ``TaskMetadata`` and lm-evaluation-harness's task
configs (whose full resolved config is copied into every results file), a task is data, not
code: results files embed the definition and its sha256, and a changed task is a *new version*,
never an edit in place. :data:`FROZEN` holds the sha256 of every released definition;
:func:`get_task` refuses to serve a registered task whose definition no longer matches it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from benchmark.metrics import (
    CONTINUOUS_METRICS,
    CONTINUOUS_SCALES,
    METRICS,
    TASK_TYPES,
    metric_names,
    valid_levels,
)
from sdme.schema import MODALITIES

DEFAULT_NOISE_LEVELS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)


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
        metrics: scalar metrics reported, from ``benchmark.metrics.METRICS``.
        main_score: the headline metric (one of ``metrics``).
        dataset_fingerprint: the pinned dataset fingerprint (``benchmark.protocol.
            dataset_fingerprint``); None when the task accepts any build of ``dataset`` (its
            fingerprint is then recorded in every results file and checked on submission).
        train_split: split the model is trained on.
        validation_split: split used for checkpoint and hyper-parameter selection.
        test_split: split scored once per seed, after training.
        label_column: column holding the label (a ClassLabel for discrete tasks, a float score
            for continuous ones).
        continuous_scale: ``"mosi"`` or ``"sims"`` for continuous tasks (metric conventions).
        modalities: modalities the models see.
        robustness_metric: metric of the robustness curves (default: ``main_score``).
        noise_levels: Gaussian noise standard deviations, in units of each modality's feature
            standard deviation on the training split; must start at 0 (clean).
        reference_model: model whose robustness curves anchor effective robustness.
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
        if self.task_type not in TASK_TYPES:
            out.append(f"task_type must be one of {TASK_TYPES}, got {self.task_type!r}")
            return out
        if self.task_type == "continuous" and self.continuous_scale not in CONTINUOUS_SCALES:
            out.append(f"continuous tasks need continuous_scale in {CONTINUOUS_SCALES}")
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
        return METRICS[self.main_score].higher_is_better

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain JSON types (what results files embed)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        known = {f.name for f in fields(cls) if f.init}
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


def _mmsa_regression(name: str, dataset: str, title: str, scale: str) -> Task:
    """Sentiment regression on a corpus MMSA publishes (``sdme import mmsa --name dataset``).

    The target is the float ``score`` column; MMSA's metrics for the corpus's scale (all of
    them), MAE as the headline (the trainer's default validation metric for regression too),
    and the binary accuracy of the scale as the robustness metric (bounded, higher is better,
    the same decision as the per-clip ``correct`` of the stratified report).
    """
    sims = scale == "sims"
    relevance = ("Relevance and deviation reports use the relevance fields derived from the "
                 "unimodal scores." if sims else "The corpus has no unimodal labels: there are "
                 "no relevance or deviation reports.")
    return Task(
        name=name,
        version=1,
        dataset=dataset,
        description=(
            f"Sentiment regression on {title} as published by MMSA (pre-extracted features, "
            f"`sdme import mmsa --name {dataset}`), on MMSA's splits: predict the clip's "
            f"`score` in {'[-1, 1]' if sims else '[-3, 3]'}. MAE is the headline, beside "
            + ("Pearson r and the SIMS Acc-2, F1, Acc-3 and Acc-5. " if sims else
               "Pearson r, Acc-2 and F1 (has-0 and non-0) and Acc-3/5/7. ")
            + relevance + " The dataset fingerprint is not pinned (the features cannot be "
            "shipped); every results file records it."),
        task_type="continuous",
        continuous_scale=scale,
        metrics=CONTINUOUS_METRICS[scale],
        main_score="mae",
        label_column="score",
        robustness_metric="acc2_sims" if sims else "acc2_has0",
    )


BUILTIN_TASKS: tuple[Task, ...] = (
    Task(
        name="sdme-sample-discrete",
        version=1,
        dataset="sample",
        description=(
            "Single-label emotion classification on the bundled SDME sample corpus (built with "
            "`sdme download && sdme build`): train on `train`, select checkpoints on "
            "`validation`, score `test`. Accuracy is the headline; macro and weighted F1 are "
            "reported beside it, with accuracy stratified by semantic deviation, relevance "
            "AUROC and robustness to a missing or noisy modality."),
        task_type="discrete",
        metrics=("accuracy", "macro_f1", "weighted_f1"),
        main_score="accuracy",
    ),
    Task(
        name="sdme-synth-discrete",
        version=1,
        dataset="synth",
        description=(
            "Single-label 7-class emotion classification on the synthetic controlled-deviation "
            "corpus made by `sdme synth --preset benchmark` (2,400 clips; text, audio and "
            "vision express another class than the clip's with probability 0.2, 0.3 and 0.4; "
            "moderately imbalanced classes; ground-truth relevance). Train on `train`, select "
            "on `validation`, score `test`; accuracy is the headline, with accuracy by "
            "deviation level, relevance AUROC against the ground truth and robustness. The "
            "dataset fingerprint is pinned: only the preset's exact corpus is accepted. "
            "Synthetic data: numbers compare methods under known deviation, not emotion "
            "recognition."),
        task_type="discrete",
        metrics=("accuracy", "macro_f1", "weighted_f1"),
        main_score="accuracy",
        dataset_fingerprint="205a41c33827937464683089c643fa864d95c98a527a915158765f438fff4817",
    ),
    Task(
        name="sdme-synth-structured",
        version=1,
        dataset="synth-structured",
        description=(
            "Single-label 7-class emotion classification on the synthetic corpus with "
            "*structured* semantic deviation made by `sdme synth --preset structured` (3,600 "
            "clips, 539 in test): besides chance deviation (text 0.1, audio 0.15, vision 0.2), "
            "class-dependent display rules (anger and disgust worded neutrally, fear in a "
            "neutral voice, sadness masked by a smile, fear shown as surprise), mask emotions "
            "(a deviating modality shows neutral or happiness half of the time) and per-clip "
            "expressivity (a weaker, noisier modality deviates more often); ground-truth "
            "relevance. Train on `train`, select on `validation`, score `test`; accuracy is "
            "the headline, with accuracy by deviation level, relevance AUROC and robustness. "
            "The dataset fingerprint is pinned. Synthetic data: numbers compare methods under "
            "known deviation, not emotion recognition."),
        task_type="discrete",
        metrics=("accuracy", "macro_f1", "weighted_f1"),
        main_score="accuracy",
        dataset_fingerprint="102e1e0f7ba9da393237f1663da54d5d1211cce2c46f54d1ea48df9df9f1c397",
    ),
    _mmsa_regression("cmu-mosi", "mosi", "CMU-MOSI", "mosi"),
    _mmsa_regression("cmu-mosei", "mosei", "CMU-MOSEI", "mosi"),
    _mmsa_regression("ch-sims", "chsims", "CH-SIMS", "sims"),
    _mmsa_regression("ch-sims-v2", "chsims2", "CH-SIMS v2.0", "sims"),
)

#: How to make each task's built dataset: commands, shown when it is missing (``--data-dir``
#: is added to each by :func:`dataset_recipe`). Datasets are keyed by name; a task names one.
DATASET_RECIPES: dict[str, tuple[str, ...]] = {
    "sample": ("sdme download", "sdme build"),
    "synth": ("sdme synth --preset benchmark",),
    "synth-structured": ("sdme synth --preset structured",),
    "mosi": ("sdme import mmsa --name mosi --path PATH/TO/MOSI/Processed/unaligned_50.pkl",),
    "mosei": ("sdme import mmsa --name mosei --path PATH/TO/MOSEI/Processed/unaligned_50.pkl",),
    "chsims": ("sdme import mmsa --name chsims --path PATH/TO/SIMS/Processed/unaligned_39.pkl",),
    "chsims2": ("sdme import mmsa --name chsims2 --path PATH/TO/sims_unaligned.pkl",),
}


def dataset_recipe(dataset: str, data_dir: str | None = None) -> str | None:
    """The shell command that makes a task dataset (None for a dataset without a recipe)."""
    steps = DATASET_RECIPES.get(dataset)
    if steps is None:
        return None
    suffix = f" --data-dir {data_dir}" if data_dir else ""
    return " && ".join(step + suffix for step in steps)

#: sha256 of every released task definition, keyed ``name@version``. A registered task whose
#: definition hashes differently was edited in place: give it a new version instead.
FROZEN: dict[str, str] = {
    "sdme-sample-discrete@1":
        "a51b545acba8ba522ce1ce83c047565d6d1e814ad0cecea4cb849b7382acb7e9",
    "sdme-synth-discrete@1":
        "9ea62475d8b2007a2e3cc33193a44eb8fb6667e0aebb4c20a1e18ee31363ded6",
    "sdme-synth-structured@1":
        "6ff5c34ccededa11673f9f75dba3f5d0aae8df843b3798867dd46da75720abe4",
    "cmu-mosi@1":
        "3eeca0af98eb352ab8e74defb254eb8c5ab8b8ad25a7bd22d4648d09f0705949",
    "cmu-mosei@1":
        "5f7b18f2eb84e970a2c4c6223f648fc69de61a1f22fca8095001334710e14a43",
    "ch-sims@1":
        "d452081836eb3fecbcfb6339b3447abd0a606d44dc1076a6fecc307dbabd4557",
    "ch-sims-v2@1":
        "36dc8c55a6e046073cad74abb9cea2f4eab8b3c4de2a7619eff6d54ad0f8c3df",
}

DEFAULT_TASK = "sdme-sample-discrete"

_REGISTRY: dict[str, dict[int, Task]] = {}


def register_task(task: Task) -> Task:
    """Adds a task (a new name, or a new version of a known name).

    Raises:
        TaskError: if that name and version are already registered with another definition.
    """
    versions = _REGISTRY.setdefault(task.name, {})
    old = versions.get(task.version)
    if old is not None and old.definition_sha256() != task.definition_sha256():
        raise TaskError(f"task {task.key} is already registered with another definition; "
                        "a changed task needs a new version")
    versions[task.version] = task
    return task


def unregister_task(name: str, version: int | None = None) -> None:
    """Removes a task (all versions when ``version`` is None); for tests and plugins."""
    if version is None:
        _REGISTRY.pop(name, None)
    else:
        _REGISTRY.get(name, {}).pop(version, None)
        if not _REGISTRY.get(name, True):
            _REGISTRY.pop(name, None)


def _ensure_builtins() -> None:
    for task in BUILTIN_TASKS:
        if task.version not in _REGISTRY.get(task.name, {}):
            register_task(task)


def list_tasks() -> list[Task]:
    """The latest version of every registered task, sorted by name."""
    _ensure_builtins()
    return [versions[max(versions)] for _, versions in sorted(_REGISTRY.items())]


def get_task(spec: str | Task, version: int | None = None) -> Task:
    """A registered task by ``name``, ``name@version`` or ``name`` + ``version``.

    Without a version, the latest one.

    Raises:
        TaskError: unknown name (with close matches), unknown version, or a released
            definition that was edited in place.
    """
    if isinstance(spec, Task):
        return spec
    _ensure_builtins()
    name = spec
    if "@" in spec:
        name, _, text = spec.partition("@")
        try:
            version = int(text.lstrip("v"))
        except ValueError as exc:
            raise TaskError(f"bad task version in {spec!r}; expected NAME@N") from exc
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise TaskError(f"unknown task {name!r}; known: {', '.join(sorted(_REGISTRY))}.{hint}")
    versions = _REGISTRY[name]
    if version is None:
        version = max(versions)
    if version not in versions:
        raise TaskError(f"task {name!r} has no version {version}; known: "
                        f"{', '.join(str(v) for v in sorted(versions))}")
    task = versions[version]
    expected = FROZEN.get(task.key)
    if expected is not None and expected != task.definition_sha256():
        raise TaskError(f"task {task.key} differs from its released definition (sha256 "
                        f"{task.definition_sha256()[:12]} != {expected[:12]}): a changed task "
                        "must be registered as a new version")
    return task


__all__ = ["BUILTIN_TASKS", "DATASET_RECIPES", "DEFAULT_TASK", "FROZEN", "Task", "TaskError",
           "dataset_recipe", "get_task", "list_tasks", "register_task", "unregister_task"]
