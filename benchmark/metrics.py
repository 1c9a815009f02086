"""The benchmark's metric spec: every number a results file carries, defined once.

The spec is versioned (:data:`METRIC_SPEC_VERSION`); a change to any definition below is a new
version, and results computed under another version are not compared with these.

Discrete tasks (single-label emotion classification), via scikit-learn:

* ``accuracy`` — share of clips whose predicted class equals the label.
* ``macro_f1`` — unweighted mean over *all* classes of the taxonomy of the per-class F1
  (``f1_score(average="macro", labels=range(C), zero_division=0)``); a class with no test clip
  and no prediction counts as F1 0.
* ``weighted_f1`` — per-class F1 weighted by the class's test support.
* per-class F1 and the confusion matrix (rows: true class, columns: predicted class).

Continuous tasks (sentiment regression), following MMSA's ``MetricsTop`` (Yu et al., 2021,
https://github.com/thuiar/MMSA, ``src/MMSA/utils/metricsTop.py``) so that numbers compare with
the literature. ``scale="mosi"`` (CMU-MOSI/MOSEI, scores in [-3, 3]):

* ``mae`` — mean absolute error of the raw scores.
* ``corr`` — Pearson's r (0.0 when predictions or labels are constant: r is undefined there).
* ``acc2_has0`` / ``f1_has0`` — binary accuracy / weighted F1 of *negative (< 0) vs.
  non-negative (>= 0)*, over all clips (MMSA's ``Has0_acc_2``, ``Has0_F1_score``).
* ``acc2_non0`` / ``f1_non0`` — binary accuracy / weighted F1 of *negative vs. positive*
  (``> 0``) over clips whose label is not exactly 0 (MMSA's ``Non0_acc_2``, ``Non0_F1_score``).
* ``acc3``, ``acc5``, ``acc7`` — clip predictions and labels to [-1, 1], [-2, 2], [-3, 3]
  respectively, round both to the nearest integer (``numpy.round``: halves go to the even
  integer) and count matches (MMSA's ``Mult_acc_3/5/7``).

``scale="sims"`` (CH-SIMS and CH-SIMS v2, scores in [-1, 1]; MMSA's ``__eval_sims_regression``):
predictions and labels are first clipped to [-1, 1] (``mae`` and ``corr`` are computed after
clipping, as MMSA does), then binned:

* ``acc2_sims`` / ``f1_sims`` — two classes ``[-1, 0]``, ``(0, 1]`` (note: 0 is *negative* here,
  unlike ``acc2_has0``); weighted F1.
* ``acc3_sims`` — ``[-1, -0.1]``, ``(-0.1, 0.1]``, ``(0.1, 1]``.
* ``acc5_sims`` — ``[-1, -0.7]``, ``(-0.7, -0.1]``, ``(-0.1, 0.1]``, ``(0.1, 0.7]``, ``(0.7, 1]``.

Relevance and robustness reports (see ``benchmark.protocol`` for how they are gathered):

* ``correct`` per clip: discrete, predicted class == label; continuous, the binary decision of the
  scale agrees (``>= 0`` for ``mosi``, ``> 0`` for ``sims``). *Stratified accuracy* is the mean
  of ``correct`` within a group of clips: by ``deviation`` level 0..3, and by the set of
  deviating modalities (those with ``label_<m> != label``; ``"none"`` when no modality deviates).
* ``relevance_auroc`` — over every (clip, modality) pair whose human modality label is known and
  for which the model gives a relevance weight: score = the model's weight, target =
  ``label_<m> == label`` (the modality expresses the clip's emotion). ``roc_auc_score``; None
  when only one target class occurs.
* ``relative_robustness`` of a curve of metric values ``y_0..y_K`` at imperfection levels
  ``x_0 = 0 < x_1 < ... < x_K``: the trapezoidal area under the curve divided by ``x_K - x_0``,
  i.e. the curve's mean height, in the metric's own units (MultiBench, Liang et al., 2021,
  ``eval_scripts/robustness.py``, ``relative_robustness_helper``, which sums the trapezoids of a
  curve on 10 levels spaced 0.1 apart; we normalise by the range so the value does not depend
  on the number of levels, and we do not min-max normalise across methods).
* ``effective_robustness`` of a curve ``y`` against a reference model's curve ``r`` on the same
  levels: ``mean_{k=1..K} (y_k - (r_k + y_0 - r_0))`` — how much better than the reference,
  shifted to the same clean score, the model holds up under imperfection (MultiBench's
  ``effective_robustness_helper``, ``sum(f - (lf + f[0] - lf[0]))`` with the late-fusion
  baseline as reference; we average over the imperfect levels instead of summing).

Aggregates over seeds: mean, sample standard deviation (``ddof=1``) and the 95% confidence
interval of the mean from Student's t distribution, ``mean ± t_{0.975, n-1} * std / sqrt(n)``
(``scipy.stats.t``); std and the interval are None for a single seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METRIC_SPEC_VERSION = 1

TASK_TYPES = ("discrete", "continuous")
CONTINUOUS_SCALES = ("mosi", "sims")
SIMS_BINS: dict[str, tuple[float, ...]] = {
    # inner bin edges; a value v falls in class #{edges < v} (bins are (lo, hi])
    "acc2_sims": (0.0,),
    "acc3_sims": (-0.1, 0.1),
    "acc5_sims": (-0.7, -0.1, 0.1, 0.7),
}


@dataclass(frozen=True)
class MetricInfo:
    """What a scalar metric is.

    Attributes:
        name: its key in results files.
        higher_is_better: direction (for ranking and the leaderboard).
        low: smallest valid value.
        high: largest valid value (None: unbounded).
        description: one line for tables and cards.
    """

    name: str
    higher_is_better: bool
    low: float
    high: float | None
    description: str


def _info(name: str, description: str, higher: bool = True, low: float = 0.0,
          high: float | None = 1.0) -> MetricInfo:
    return MetricInfo(name, higher, low, high, description)


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    _info("accuracy", "share of clips classified correctly"),
    _info("macro_f1", "mean per-class F1 over the taxonomy"),
    _info("weighted_f1", "per-class F1 weighted by class support"),
    _info("mae", "mean absolute error", higher=False, high=None),
    _info("corr", "Pearson correlation", low=-1.0),
    _info("acc2_has0", "negative vs non-negative accuracy (all clips)"),
    _info("f1_has0", "negative vs non-negative weighted F1 (all clips)"),
    _info("acc2_non0", "negative vs positive accuracy (clips with label != 0)"),
    _info("f1_non0", "negative vs positive weighted F1 (clips with label != 0)"),
    _info("acc3", "3-class accuracy (clip to [-1,1], round)"),
    _info("acc5", "5-class accuracy (clip to [-2,2], round)"),
    _info("acc7", "7-class accuracy (clip to [-3,3], round)"),
    _info("acc2_sims", "SIMS 2-class accuracy: [-1,0] vs (0,1]"),
    _info("f1_sims", "SIMS 2-class weighted F1"),
    _info("acc3_sims", "SIMS 3-class accuracy (edges -0.1, 0.1)"),
    _info("acc5_sims", "SIMS 5-class accuracy (edges -0.7, -0.1, 0.1, 0.7)"),
)}

DISCRETE_METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1")
CONTINUOUS_METRICS: dict[str, tuple[str, ...]] = {
    "mosi": ("mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5",
             "acc7"),
    "sims": ("mae", "corr", "acc2_sims", "f1_sims", "acc3_sims", "acc5_sims"),
}


def metric_names(task_type: str, scale: str | None = None) -> tuple[str, ...]:
    """The scalar metrics computed for a task type (and continuous scale)."""
    if task_type == "discrete":
        return DISCRETE_METRICS
    if task_type == "continuous":
        if scale not in CONTINUOUS_METRICS:
            raise ValueError(f"unknown continuous scale {scale!r}; expected one of "
                             f"{', '.join(CONTINUOUS_SCALES)}")
        return CONTINUOUS_METRICS[scale]
    raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")


# ----------------------------------------------------------------------------- discrete


@dataclass(frozen=True)
class DiscreteReport:
    """Scalar metrics plus per-class F1 and the confusion matrix of one prediction set."""

    metrics: dict[str, float]
    per_class_f1: dict[str, float]
    confusion_matrix: list[list[int]]


def discrete_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     class_names: Sequence[str]) -> DiscreteReport:
    """Accuracy, macro/weighted F1, per-class F1 and confusion matrix.

    Args:
        y_true: class indices in ``range(len(class_names))``.
        y_pred: predicted class indices, same length.
        class_names: the taxonomy, in class-index order.

    Raises:
        ValueError: on empty or mismatched inputs, or indices outside the taxonomy.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y_true, y_pred = _pair(y_true, y_pred, int)
    n_classes = len(class_names)
    for name, values in (("labels", y_true), ("predictions", y_pred)):
        bad = values[(values < 0) | (values >= n_classes)]
        if bad.size:
            raise ValueError(f"{name} contain class index {int(bad[0])} outside the taxonomy "
                             f"of {n_classes} classes")
    labels = list(range(n_classes))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                   zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted",
                                      zero_division=0)),
    }
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return DiscreteReport(metrics=metrics,
                          per_class_f1={str(c): float(v) for c, v in
                                        zip(class_names, per_class, strict=True)},
                          confusion_matrix=[[int(v) for v in row] for row in matrix])


def discrete_metric(name: str, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """One discrete metric, exactly as :func:`discrete_metrics` computes it (but cheaper)."""
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = _pair(y_true, y_pred, int)
    if name == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    if name in ("macro_f1", "weighted_f1"):
        return float(f1_score(y_true, y_pred, labels=list(range(n_classes)),
                              average=name.split("_")[0], zero_division=0))
    raise ValueError(f"unknown discrete metric {name!r}")


# ----------------------------------------------------------------------------- continuous


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r; 0.0 when either input is constant (r undefined)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _multiclass_acc(y_true: np.ndarray, y_pred: np.ndarray, bound: float) -> float:
    t = np.round(np.clip(y_true, -bound, bound))
    p = np.round(np.clip(y_pred, -bound, bound))
    return float(np.mean(t == p))


def sims_bin(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Class index of each value for (lo, hi] bins with the given inner edges."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")


def continuous_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray,
                       scale: str = "mosi") -> dict[str, float]:
    """The continuous metrics of ``scale`` (see the module docstring).

    Raises:
        ValueError: on empty or mismatched inputs, non-finite values or an unknown scale.
    """
    y_true, y_pred = _pair(y_true, y_pred, float)
    if scale == "mosi":
        out = {"mae": float(np.mean(np.abs(y_pred - y_true))), "corr": pearson_r(y_pred, y_true)}
        t, p = y_true >= 0, y_pred >= 0
        out["acc2_has0"] = float(np.mean(t == p))
        out["f1_has0"] = _weighted_f1(t, p)
        nonzero = y_true != 0
        if nonzero.any():
            t, p = y_true[nonzero] > 0, y_pred[nonzero] > 0
            out["acc2_non0"] = float(np.mean(t == p))
            out["f1_non0"] = _weighted_f1(t, p)
        else:  # every label is exactly 0: no clip to score; count as 0 rather than NaN
            out["acc2_non0"] = 0.0
            out["f1_non0"] = 0.0
        out["acc3"] = _multiclass_acc(y_true, y_pred, 1.0)
        out["acc5"] = _multiclass_acc(y_true, y_pred, 2.0)
        out["acc7"] = _multiclass_acc(y_true, y_pred, 3.0)
        return out
    if scale == "sims":
        t = np.clip(y_true, -1.0, 1.0)
        p = np.clip(y_pred, -1.0, 1.0)
        out = {"mae": float(np.mean(np.abs(p - t))), "corr": pearson_r(p, t)}
        for name, edges in SIMS_BINS.items():
            bt, bp = sims_bin(t, edges), sims_bin(p, edges)
            out[name] = float(np.mean(bt == bp))
            if name == "acc2_sims":
                out["f1_sims"] = _weighted_f1(bt, bp)
        return out
    raise ValueError(f"unknown continuous scale {scale!r}; expected one of "
                     f"{', '.join(CONTINUOUS_SCALES)}")


def correct_mask(task_type: str, y_true: np.ndarray, y_pred: np.ndarray,
                 scale: str | None = None) -> np.ndarray:
    """Per-clip correctness used by stratified accuracy (see the module docstring)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if task_type == "discrete":
        return y_true == y_pred
    if scale == "sims":
        return (y_true > 0) == (y_pred > 0)
    if scale == "mosi":
        return (y_true >= 0) == (y_pred >= 0)
    raise ValueError(f"unknown continuous scale {scale!r}")


# ----------------------------------------------------------------------------- relevance


def relevance_auroc(weights: np.ndarray, relevant: np.ndarray) -> float | None:
    """AUROC of ranking human-relevant (clip, modality) pairs above irrelevant ones.

    Args:
        weights: the model's relevance weight of each pair.
        relevant: True where the modality's human label equals the clip label.

    Returns:
        The AUROC, or None when the pairs hold only one target class (undefined).
    """
    from sklearn.metrics import roc_auc_score

    weights = np.asarray(weights, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if weights.shape != relevant.shape:
        raise ValueError(f"weights {weights.shape} and targets {relevant.shape} differ in shape")
    if not np.isfinite(weights).all():
        raise ValueError("relevance weights contain NaN or infinite values")
    if relevant.size == 0 or relevant.all() or not relevant.any():
        return None
    return float(roc_auc_score(relevant, weights))


# ----------------------------------------------------------------------------- robustness


def relative_robustness(levels: Sequence[float], values: Sequence[float]) -> float:
    """Mean height of the performance-vs-imperfection curve (normalised trapezoidal area).

    Raises:
        ValueError: unless levels start at 0, increase strictly and match the values.
    """
    x = np.asarray(levels, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    _check_curve(x, y)
    area = float(np.sum((y[1:] + y[:-1]) * np.diff(x) / 2.0))
    return area / float(x[-1] - x[0])


def effective_robustness(values: Sequence[float], reference: Sequence[float]) -> float:
    """MultiBench's effective robustness of a curve against a reference model's curve.

    ``mean_{k>=1} (y_k - (r_k + y_0 - r_0))``; both curves on the same levels, level 0 clean.
    """
    y = np.asarray(values, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if y.shape != r.shape or y.ndim != 1 or y.size < 2:
        raise ValueError(f"curves must be 1-D, of equal length >= 2; got {y.shape} and {r.shape}")
    predicted = r + (y[0] - r[0])
    return float(np.mean(y[1:] - predicted[1:]))


def valid_levels(levels: Sequence[float]) -> bool:
    """Whether imperfection levels start at 0 (clean) and strictly increase (>= 2 levels)."""
    x = [float(v) for v in levels]
    return len(x) >= 2 and x[0] == 0 and all(b > a for a, b in zip(x[:-1], x[1:], strict=True))


def _check_curve(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"a curve needs >= 2 levels and one value per level; got {x.shape} "
                         f"levels and {y.shape} values")
    if not valid_levels(x):
        raise ValueError(f"imperfection levels must start at 0 and increase: {x.tolist()}")


# ----------------------------------------------------------------------------- aggregates


@dataclass(frozen=True)
class Aggregate:
    """Mean over seeds with sample std and the t-distribution 95% CI of the mean.

    ``std``, ``ci95_low`` and ``ci95_high`` are None when fewer than two values exist.
    """

    mean: float
    std: float | None
    ci95_low: float | None
    ci95_high: float | None
    n: int

    @property
    def ci95_half_width(self) -> float | None:
        if self.ci95_high is None:
            return None
        return (self.ci95_high - self.ci95_low) / 2.0


def aggregate(values: Sequence[float]) -> Aggregate:
    """Mean, std (ddof=1) and ``mean ± t_{0.975,n-1} * std / sqrt(n)``.

    Raises:
        ValueError: on no values or a non-finite one.
    """
    from scipy import stats

    x = np.asarray(list(values), dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot aggregate zero values")
    if not np.isfinite(x).all():
        raise ValueError(f"cannot aggregate non-finite values: {x.tolist()}")
    mean = float(np.mean(x))
    if x.size < 2:
        return Aggregate(mean=mean, std=None, ci95_low=None, ci95_high=None, n=1)
    std = float(np.std(x, ddof=1))
    half = float(stats.t.ppf(0.975, x.size - 1)) * std / math.sqrt(x.size)
    return Aggregate(mean=mean, std=std, ci95_low=mean - half, ci95_high=mean + half, n=int(x.size))


def aggregate_optional(values: Sequence[float | None]) -> Aggregate | None:
    """:func:`aggregate` over the defined values (None when none is defined)."""
    defined = [v for v in values if v is not None]
    return aggregate(defined) if defined else None


def check_range(name: str, value: float) -> str | None:
    """A message when ``value`` is outside the valid range of metric ``name`` (else None)."""
    info = METRICS.get(name)
    if info is None:
        return f"unknown metric {name!r} (metric spec v{METRIC_SPEC_VERSION})"
    tolerance = 1e-9
    if value < info.low - tolerance or (info.high is not None and value > info.high + tolerance):
        high = "inf" if info.high is None else info.high
        return f"metric {name!r} = {value} is outside [{info.low}, {high}]"
    return None


def _pair(y_true: object, y_pred: object, kind: type) -> tuple[np.ndarray, np.ndarray]:
    dtype = np.int64 if kind is int else np.float64
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise ValueError(f"labels {t.shape} and predictions {p.shape} must be 1-D of equal length")
    if t.size == 0:
        raise ValueError("no predictions to score")
    if kind is float and not (np.isfinite(t.astype(np.float64)).all()
                              and np.isfinite(p.astype(np.float64)).all()):
        raise ValueError("labels or predictions contain NaN or infinite values")
    return t.astype(dtype), p.astype(dtype)
