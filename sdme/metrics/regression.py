"""Continuous metrics: sentiment regression, as MMSA computes them.

The definitions follow MMSA's ``MetricsTop`` (Yu et al., 2021, https://github.com/thuiar/MMSA,
``src/MMSA/utils/metricsTop.py``) so that numbers compare with the literature. Values reach
these functions through the scale's ``prepare`` (:data:`sdme.metrics.SCALES`): on ``sims``,
predictions and labels are clipped to [-1, 1] first, so ``mae`` and ``corr`` are computed after
clipping there, as MMSA's ``__eval_sims_regression`` does.

Every scale:

* ``mae`` — mean absolute error.
* ``corr`` — Pearson's r (0.0 when predictions or labels are constant: r is undefined there).

``mosi`` (CMU-MOSI/MOSEI, scores in [-3, 3]):

* ``acc2_has0`` / ``f1_has0`` — binary accuracy / weighted F1 of *negative (< 0) vs.
  non-negative (>= 0)* over all clips (MMSA's ``Has0_acc_2``, ``Has0_F1_score``).
* ``acc2_non0`` / ``f1_non0`` — binary accuracy / weighted F1 of *negative vs. positive*
  (``> 0``) over clips whose label is not exactly 0 (MMSA's ``Non0_acc_2``, ``Non0_F1_score``);
  0.0 when every label is 0 (no clip to score).
* ``acc3``, ``acc5``, ``acc7`` — clip predictions and labels to [-1, 1], [-2, 2], [-3, 3]
  respectively, round both to the nearest integer (``numpy.round``: halves go to the even
  integer) and count matches (MMSA's ``Mult_acc_3/5/7``).

``sims`` (CH-SIMS and CH-SIMS v2, scores in [-1, 1]), bins ``(lo, hi]``:

* ``acc2_sims`` / ``f1_sims`` — two classes ``[-1, 0]``, ``(0, 1]`` (note: 0 is *negative*
  here, unlike ``acc2_has0``); weighted F1.
* ``acc3_sims`` — ``[-1, -0.1]``, ``(-0.1, 0.1]``, ``(0.1, 1]``.
* ``acc5_sims`` — ``[-1, -0.7]``, ``(-0.7, -0.1]``, ``(-0.1, 0.1]``, ``(0.1, 0.7]``, ``(0.7, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sdme.metrics import register_metric

#: Inner bin edges of the SIMS classes; a value v falls in class #{edges < v} (bins (lo, hi]).
SIMS_BINS: dict[str, tuple[float, ...]] = {
    "acc2_sims": (0.0,),
    "acc3_sims": (-0.1, 0.1),
    "acc5_sims": (-0.7, -0.1, 0.1, 0.7),
}


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r; 0.0 when either input is constant (r undefined)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def sims_bin(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Class index of each value for (lo, hi] bins with the given inner edges."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")


def _weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _multiclass_acc(y_true: np.ndarray, y_pred: np.ndarray, bound: float) -> float:
    t = np.round(np.clip(y_true, -bound, bound))
    p = np.round(np.clip(y_pred, -bound, bound))
    return float(np.mean(t == p))


def _non_zero(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Positive (> 0) decisions of the clips whose label is not exactly 0 (None: no such clip)."""
    keep = y_true != 0
    if not keep.any():
        return None
    return y_true[keep] > 0, y_pred[keep] > 0


def _sims_accuracy(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
    edges = SIMS_BINS[metric]
    return float(np.mean(sims_bin(y_true, edges) == sims_bin(y_pred, edges)))


# ----------------------------------------------------------------------------- every scale


@register_metric("mae", task_type="continuous", description="mean absolute error",
                 higher_is_better=False, high=None)
def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(y_pred - y_true)))


@register_metric("corr", task_type="continuous", description="Pearson correlation", low=-1.0)
def corr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson's r of predictions and labels (0.0 when either is constant)."""
    return pearson_r(y_pred, y_true)


# ----------------------------------------------------------------------------- mosi


@register_metric("acc2_has0", task_type="continuous", scales=["mosi"],
                 description="negative vs non-negative accuracy (all clips)")
def acc2_has0(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy of the decision ``score >= 0``, over all clips."""
    return float(np.mean((y_true >= 0) == (y_pred >= 0)))


@register_metric("f1_has0", task_type="continuous", scales=["mosi"],
                 description="negative vs non-negative weighted F1 (all clips)")
def f1_has0(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Weighted F1 of the decision ``score >= 0``, over all clips."""
    return _weighted_f1(y_true >= 0, y_pred >= 0)


@register_metric("acc2_non0", task_type="continuous", scales=["mosi"],
                 description="negative vs positive accuracy (clips with label != 0)")
def acc2_non0(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy of the decision ``score > 0`` over clips whose label is not 0."""
    pair = _non_zero(y_true, y_pred)
    return 0.0 if pair is None else float(np.mean(pair[0] == pair[1]))


@register_metric("f1_non0", task_type="continuous", scales=["mosi"],
                 description="negative vs positive weighted F1 (clips with label != 0)")
def f1_non0(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Weighted F1 of the decision ``score > 0`` over clips whose label is not 0."""
    pair = _non_zero(y_true, y_pred)
    return 0.0 if pair is None else _weighted_f1(*pair)


@register_metric("acc3", task_type="continuous", scales=["mosi"],
                 description="3-class accuracy (clip to [-1,1], round)")
def acc3(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy after clipping to [-1, 1] and rounding."""
    return _multiclass_acc(y_true, y_pred, 1.0)


@register_metric("acc5", task_type="continuous", scales=["mosi"],
                 description="5-class accuracy (clip to [-2,2], round)")
def acc5(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy after clipping to [-2, 2] and rounding."""
    return _multiclass_acc(y_true, y_pred, 2.0)


@register_metric("acc7", task_type="continuous", scales=["mosi"],
                 description="7-class accuracy (clip to [-3,3], round)")
def acc7(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy after clipping to [-3, 3] and rounding."""
    return _multiclass_acc(y_true, y_pred, 3.0)


# ----------------------------------------------------------------------------- sims


@register_metric("acc2_sims", task_type="continuous", scales=["sims"],
                 description="SIMS 2-class accuracy: [-1,0] vs (0,1]")
def acc2_sims(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy over the bins ``[-1, 0]``, ``(0, 1]``."""
    return _sims_accuracy(y_true, y_pred, "acc2_sims")


@register_metric("f1_sims", task_type="continuous", scales=["sims"],
                 description="SIMS 2-class weighted F1")
def f1_sims(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Weighted F1 over the bins ``[-1, 0]``, ``(0, 1]``."""
    edges = SIMS_BINS["acc2_sims"]
    return _weighted_f1(sims_bin(y_true, edges), sims_bin(y_pred, edges))


@register_metric("acc3_sims", task_type="continuous", scales=["sims"],
                 description="SIMS 3-class accuracy (edges -0.1, 0.1)")
def acc3_sims(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy over three bins with inner edges -0.1 and 0.1."""
    return _sims_accuracy(y_true, y_pred, "acc3_sims")


@register_metric("acc5_sims", task_type="continuous", scales=["sims"],
                 description="SIMS 5-class accuracy (edges -0.7, -0.1, 0.1, 0.7)")
def acc5_sims(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy over five bins with inner edges -0.7, -0.1, 0.1 and 0.7."""
    return _sims_accuracy(y_true, y_pred, "acc5_sims")


__all__ = ["SIMS_BINS", "acc2_has0", "acc2_non0", "acc2_sims", "acc3", "acc3_sims", "acc5",
           "acc5_sims", "acc7", "corr", "f1_has0", "f1_non0", "f1_sims", "mae", "pearson_r",
           "sims_bin"]
