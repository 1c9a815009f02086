"""The benchmark's metric spec: what a results file reports beyond the registered metrics.

The scalar metrics (accuracy, macro/weighted F1, MAE, Pearson r, MMSA's binary and multi-class
accuracies...) are defined once, in :mod:`sdme.metrics`, registered with their direction and
range; the trainer selects checkpoints with the same functions. This module adds what only the
benchmark computes, on top of them, and versions the whole: :data:`METRIC_SPEC_VERSION` changes
whenever a number a results file carries would change (a definition here *or* in
``sdme.metrics``), and results computed under another version are not compared with these.

* ``correct`` per clip: discrete, predicted class == label; continuous, the binary decision of the
  task's scale agrees (``Scale.positive``: ``>= 0`` for ``mosi``, ``> 0`` for ``sims``).
  *Stratified accuracy* is the mean of ``correct`` within a group of clips: by ``deviation``
  level 0..3, and by the set of deviating modalities (those with ``label_<m> != label``;
  ``"none"`` when no modality deviates); see ``benchmark.scoring``.
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

Versions: v2 (this one) applies the robustness conditions to test batches, with noise from one
stream per modality (drawn clip by clip in split order) shared by the noise levels and the
``all`` curve (``benchmark.robustness``); v1 drew it per clip and condition. The conditions and
the noise scale are the same; the drawn values, hence the robustness numbers of a run, are not,
so v1 results are not compared with v2 ones.

Aggregates over seeds: mean, sample standard deviation (``ddof=1``) and the 95% confidence
interval of the mean from Student's t distribution, ``mean ± t_{0.975, n-1} * std / sqrt(n)``
(``scipy.stats.t``); std and the interval are None for a single seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sdme.metrics import get_scale

METRIC_SPEC_VERSION = 2


def correct_mask(task_type: str, y_true: np.ndarray, y_pred: np.ndarray,
                 scale: str | None = None) -> np.ndarray:
    """Per-clip correctness used by stratified accuracy (see the module docstring).

    Raises:
        ValueError: a continuous task without a known scale.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if task_type == "discrete":
        return y_true == y_pred
    convention = get_scale(scale)
    return convention.positive(y_true) == convention.positive(y_pred)


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


__all__ = ["METRIC_SPEC_VERSION", "Aggregate", "aggregate", "aggregate_optional", "correct_mask",
           "effective_robustness", "relative_robustness", "relevance_auroc", "valid_levels"]
