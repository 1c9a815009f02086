"""Discrete metrics: single-label emotion classification over a fixed taxonomy (scikit-learn).

* ``accuracy`` — share of clips whose predicted class equals the label.
* ``macro_f1`` — unweighted mean over *all* classes of the taxonomy of the per-class F1
  (``f1_score(average="macro", labels=range(C), zero_division=0)``); a class with no clip and no
  prediction counts as F1 0, so the value does not depend on which classes a split happens to
  hold.
* ``weighted_f1`` — per-class F1 weighted by the class's support.

Beside the scalar metrics, :func:`per_class_f1` and :func:`confusion_matrix` (rows: true class,
columns: predicted class) give the per-class views, on the same taxonomy. Inputs are checked by
:func:`sdme.metrics.compute_metrics` (class indices in ``range(num_classes)``).
"""

from __future__ import annotations

import numpy as np

from sdme.metrics import register_metric


def _f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, average: str | None) -> object:
    from sklearn.metrics import f1_score

    return f1_score(y_true, y_pred, labels=list(range(num_classes)), average=average,
                    zero_division=0)


@register_metric("accuracy", task_type="discrete",
                 description="share of clips classified correctly")
def accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Share of clips whose predicted class equals the label."""
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, y_pred))


@register_metric("macro_f1", task_type="discrete",
                 description="mean per-class F1 over the taxonomy")
def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean of the per-class F1 over all ``num_classes`` classes."""
    return float(_f1(y_true, y_pred, num_classes, "macro"))


@register_metric("weighted_f1", task_type="discrete",
                 description="per-class F1 weighted by class support")
def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Per-class F1 weighted by each class's support."""
    return float(_f1(y_true, y_pred, num_classes, "weighted"))


def per_class_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> list[float]:
    """The F1 of each class of the taxonomy, in class-index order (0 where undefined)."""
    return [float(v) for v in _f1(y_true, y_pred, num_classes, None)]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int
                     ) -> list[list[int]]:
    """Counts of (true class, predicted class) over the taxonomy, rows by true class."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    matrix = sk_confusion(y_true, y_pred, labels=list(range(num_classes)))
    return [[int(v) for v in row] for row in matrix]


__all__ = ["accuracy", "confusion_matrix", "macro_f1", "per_class_f1", "weighted_f1"]
