"""One definition of each metric: a registry of compute functions with direction and range.

Every scalar metric SDME reports is one function registered in :data:`METRICS` with
:func:`register_metric`, together with what it means: the task type it scores
(``"discrete"``: class indices; ``"continuous"``: scores), the continuous scales it applies to
(:data:`SCALES`; all of them by default), its direction (``higher_is_better``), its valid range
(``low``, ``high``; ``None``: unbounded) and a one-line description. The trainer
(``baselines.train.selection_metrics``) and the benchmark (``benchmark.scoring``) both compute
through these functions, so a number means the same thing wherever it appears. The registry is
the one :class:`sdme.registry.Registry`: every public module of this package is imported on the
first lookup, so adding a metric is adding one file here (or an ``sdme.metrics`` entry point)::

    from sdme.metrics import register_metric

    @register_metric("balanced_accuracy", task_type="discrete",
                     description="mean per-class recall over the taxonomy")
    def balanced_accuracy(y_true, y_pred, num_classes): ...

Compute functions take numpy arrays already checked by :func:`compute_metrics` (1-D, equal
length, non-empty): discrete ones ``(y_true, y_pred, num_classes)`` with class indices in
``range(num_classes)``, continuous ones ``(y_true, y_pred)`` with finite floats, already passed
through the scale's :meth:`Scale.prepare`. The definitions themselves, with their sources, are in
:mod:`sdme.metrics.classification` (scikit-learn) and :mod:`sdme.metrics.regression` (MMSA's
``MetricsTop``, Yu et al., 2021, https://github.com/thuiar/MMSA).

Continuous scales (:class:`Scale`) carry the conventions a corpus's scores follow, as data rather
than branches: ``mosi`` (CMU-MOSI/MOSEI, scores in [-3, 3], used as they are; a score >= 0 is
non-negative) and ``sims`` (CH-SIMS and v2, scores in [-1, 1], predictions and labels clipped to
[-1, 1] before every metric as MMSA does; a score > 0 is positive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdme.registry import Registry

TASK_TYPES: tuple[str, ...] = ("discrete", "continuous")


@dataclass(frozen=True)
class Scale:
    """The conventions of one continuous score scale.

    Attributes:
        name: its key (a task's ``continuous_scale``).
        low: smallest score of the scale.
        high: largest score of the scale.
        clip: whether predictions and labels are clipped to ``[low, high]`` before any metric.
        zero_is_positive: the scale's binary decision: ``score >= 0`` (True) or ``score > 0``
            (False) is the positive side.
        description: one line for tables and cards.
    """

    name: str
    low: float
    high: float
    clip: bool
    zero_is_positive: bool
    description: str

    def prepare(self, values: np.ndarray) -> np.ndarray:
        """The values every metric of this scale is computed on."""
        return np.clip(values, self.low, self.high) if self.clip else values

    def positive(self, values: np.ndarray) -> np.ndarray:
        """The scale's binary decision of each value (True: the positive side)."""
        values = np.asarray(values)
        return values >= 0 if self.zero_is_positive else values > 0


SCALES: dict[str, Scale] = {s.name: s for s in (
    Scale("mosi", -3.0, 3.0, clip=False, zero_is_positive=True,
          description="CMU-MOSI/MOSEI sentiment in [-3, 3]; non-negative vs negative"),
    Scale("sims", -1.0, 1.0, clip=True, zero_is_positive=False,
          description="CH-SIMS sentiment in [-1, 1], clipped first; positive vs non-positive"),
)}

#: A compute function: ``(y_true, y_pred, num_classes)`` (discrete) or ``(y_true, y_pred)``.
MetricFn = Callable[..., float]

METRICS: Registry[MetricFn] = Registry("metric", packages=["sdme.metrics"])


@dataclass(frozen=True)
class MetricInfo:
    """A registered metric: its compute function and what it means.

    Attributes:
        name: its key in results files and trainer histories.
        compute: the compute function (see the module docstring for its signature).
        task_type: ``"discrete"`` or ``"continuous"``.
        higher_is_better: direction (for selection, ranking and the leaderboard).
        low: smallest valid value.
        high: largest valid value (None: unbounded).
        scales: the continuous scales it applies to (None: every scale of its task type).
        description: one line for tables and cards.
    """

    name: str
    compute: MetricFn
    task_type: str
    higher_is_better: bool
    low: float
    high: float | None
    scales: tuple[str, ...] | None
    description: str

    def applies_to(self, task_type: str, scale: str | None = None) -> bool:
        """Whether the metric scores a task of this type (and continuous scale)."""
        if task_type != self.task_type:
            return False
        return self.scales is None or scale is None or scale in self.scales


def register_metric(name: str, *, task_type: str, description: str,
                    higher_is_better: bool = True, low: float = 0.0, high: float | None = 1.0,
                    scales: Sequence[str] | None = None) -> Callable[[MetricFn], MetricFn]:
    """A decorator registering a compute function as metric ``name``.

    Args:
        name: the metric's key.
        task_type: ``"discrete"`` or ``"continuous"``.
        description: one line.
        higher_is_better: direction.
        low: smallest valid value.
        high: largest valid value (None: unbounded).
        scales: continuous only: the scales it applies to (default: all).

    Raises:
        ValueError: metadata that makes no sense (unknown task type or scale, empty range,
            a description that is not one line).
        sdme.registry.RegistryError: the name is taken by another function.
    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"metric {name!r}: task_type must be one of {TASK_TYPES}, "
                         f"got {task_type!r}")
    if scales is not None:
        scales = tuple(scales)
        unknown = [s for s in scales if s not in SCALES]
        if task_type != "continuous" or unknown or not scales:
            raise ValueError(f"metric {name!r}: scales are for continuous metrics and must be "
                             f"among {', '.join(SCALES)}; got {list(scales)}")
    if high is not None and not high > low:
        raise ValueError(f"metric {name!r}: empty range [{low}, {high}]")
    if not description or "\n" in description:
        raise ValueError(f"metric {name!r}: the description must be one non-empty line")

    def decorator(fn: MetricFn) -> MetricFn:
        METRICS.register(name, fn, task_type=task_type, higher_is_better=bool(higher_is_better),
                         low=float(low), high=None if high is None else float(high),
                         scales=scales, description=description)
        return fn

    return decorator


def metric_info(name: str) -> MetricInfo:
    """The registered metric ``name``.

    Raises:
        sdme.registry.RegistryError: unknown name (with the known ones and a close match).
    """
    entry = METRICS.entry(name)
    return MetricInfo(name=entry.name, compute=entry.obj, **entry.meta)


def get_scale(name: str | None) -> Scale:
    """The continuous scale ``name``.

    Raises:
        ValueError: unknown scale.
    """
    try:
        return SCALES[name]  # type: ignore[index]
    except (KeyError, TypeError):
        raise ValueError(f"unknown continuous scale {name!r}; expected one of "
                         f"{', '.join(SCALES)}") from None


def metric_names(task_type: str, scale: str | None = None) -> tuple[str, ...]:
    """The registered metrics that score a task type (and, continuous, its scale), sorted.

    Raises:
        ValueError: unknown task type, or a continuous task without a known scale.
    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; expected one of "
                         f"{', '.join(TASK_TYPES)}")
    if task_type == "continuous":
        get_scale(scale)
    return tuple(name for name in METRICS.names()
                 if metric_info(name).applies_to(task_type, scale))


def check_inputs(task_type: str, y_true: Any, y_pred: Any, num_classes: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions as the arrays compute functions take.

    Discrete: int64 class indices in ``range(num_classes)``; continuous: finite float64.

    Raises:
        ValueError: not 1-D of equal length, empty, a class index outside the taxonomy, or a
            NaN or infinite value.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise ValueError(f"labels {t.shape} and predictions {p.shape} must be 1-D of equal length")
    if t.size == 0:
        raise ValueError("no predictions to score")
    if task_type == "discrete":
        if num_classes is None or num_classes < 1:
            raise ValueError(f"discrete metrics need the number of classes, got {num_classes!r}")
        t, p = t.astype(np.int64), p.astype(np.int64)
        for what, values in (("labels", t), ("predictions", p)):
            bad = values[(values < 0) | (values >= num_classes)]
            if bad.size:
                raise ValueError(f"{what} contain class index {int(bad[0])} outside the taxonomy "
                                 f"of {num_classes} classes")
        return t, p
    t, p = t.astype(np.float64), p.astype(np.float64)
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("labels or predictions contain NaN or infinite values")
    return t, p


def compute_metrics(names: Iterable[str], y_true: Any, y_pred: Any, *,
                    num_classes: int | None = None, scale: str | None = None
                    ) -> dict[str, float]:
    """Registered metrics of one set of predictions.

    Args:
        names: the metrics, all of one task type.
        y_true: class indices (discrete) or scores (continuous).
        y_pred: predictions, same length.
        num_classes: discrete: the size of the taxonomy (macro F1 averages over all of it).
        scale: continuous: the scale whose conventions apply (:data:`SCALES`); None uses the
            scores as they are, for metrics that apply to every scale (what the trainer does).

    Returns:
        name -> value, in the order of ``names``.

    Raises:
        ValueError: bad inputs (:func:`check_inputs`), metrics of different task types, or a
            metric that does not apply to ``scale``.
        sdme.registry.RegistryError: an unknown metric.
    """
    infos = [metric_info(n) for n in names]
    if not infos:
        return {}
    task_type = infos[0].task_type
    for info in infos:
        if not info.applies_to(task_type, scale):
            where = f"{task_type} tasks" + (f" on the {scale!r} scale" if scale else "")
            raise ValueError(f"metric {info.name!r} does not apply to {where}")
    t, p = check_inputs(task_type, y_true, y_pred, num_classes)
    if task_type == "discrete":
        return {i.name: float(i.compute(t, p, num_classes)) for i in infos}
    if scale is not None:
        convention = get_scale(scale)
        t, p = convention.prepare(t), convention.prepare(p)
    return {i.name: float(i.compute(t, p)) for i in infos}


def check_range(name: str, value: float) -> str | None:
    """A message when ``value`` is outside the valid range of metric ``name`` (else None)."""
    if name not in METRICS:
        return str(METRICS.unknown(name))
    info = metric_info(name)
    tolerance = 1e-9
    if value < info.low - tolerance or (info.high is not None and value > info.high + tolerance):
        high = "inf" if info.high is None else info.high
        return f"metric {name!r} = {value} is outside [{info.low}, {high}]"
    return None


__all__ = ["METRICS", "SCALES", "TASK_TYPES", "MetricFn", "MetricInfo", "Scale", "check_inputs",
           "check_range", "compute_metrics", "get_scale", "metric_info", "metric_names",
           "register_metric"]
