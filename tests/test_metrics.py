"""The metric definitions (``sdme.metrics``) and the benchmark's reports built on them
(``benchmark.metrics``) against hand-computed cases (every expected number is worked out by
hand), plus a contract every registered metric keeps: its values lie in its declared range and a
perfect prediction scores the best end of it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark import metrics as M
from sdme.metrics import (
    METRICS,
    SCALES,
    check_range,
    compute_metrics,
    metric_info,
    metric_names,
    register_metric,
)
from sdme.metrics.classification import confusion_matrix, per_class_f1
from sdme.metrics.regression import SIMS_BINS, pearson_r, sims_bin
from sdme.registry import RegistryError

APPROX = {"abs": 1e-9}
DISCRETE = metric_names("discrete")
MOSI = metric_names("continuous", "mosi")
SIMS = metric_names("continuous", "sims")


def test_discrete_metrics_hand_computed():
    # class 0: tp 1 fp 1 fn 1 -> F1 1/2; class 1: tp 2 fp 1 fn 0 -> 4/5; class 2: tp 1 fp 0 fn 1
    # -> 2/3; class 3 never occurs -> 0 (it still counts in the macro mean over the taxonomy).
    t, p = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    out = compute_metrics(DISCRETE, t, p, num_classes=4)
    assert out["accuracy"] == pytest.approx(4 / 6, **APPROX)
    assert per_class_f1(np.array(t), np.array(p), 4) == pytest.approx([0.5, 0.8, 2 / 3, 0.0])
    assert out["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3 + 0) / 4, **APPROX)
    assert out["weighted_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, **APPROX)
    assert confusion_matrix(np.array(t), np.array(p), 4) == [[1, 1, 0, 0], [0, 2, 0, 0],
                                                             [1, 0, 1, 0], [0, 0, 0, 0]]


def test_trainer_selects_with_the_registered_definitions():
    from baselines.train import selection_metrics

    # the same clips as above: the trainer's macro F1 averages over the whole taxonomy too
    # (class 3, absent from labels and predictions, counts as 0), not over the classes present
    labels = np.array([0, 0, 1, 1, 2, 2])
    logits = np.eye(4)[[0, 1, 1, 1, 2, 0]]
    got = selection_metrics("discrete", logits, labels, num_classes=4)
    expected = compute_metrics(DISCRETE, labels, logits.argmax(-1), num_classes=4)
    assert {k: got[k] for k in DISCRETE} == expected
    assert got["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 4, **APPROX)
    scores = selection_metrics("continuous", np.array(Y_PRED)[:, None], np.array(Y_TRUE))
    assert scores["mae"] == scores["loss"] == pytest.approx(4.9 / 6, **APPROX)
    assert scores["corr"] == pytest.approx(float(np.corrcoef(Y_PRED, Y_TRUE)[0, 1]), **APPROX)


def test_discrete_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="outside the taxonomy"):
        compute_metrics(DISCRETE, [0, 1], [0, 5], num_classes=2)
    with pytest.raises(ValueError, match="equal length"):
        compute_metrics(DISCRETE, [0, 1], [0], num_classes=2)
    with pytest.raises(ValueError, match="no predictions"):
        compute_metrics(DISCRETE, [], [], num_classes=1)
    with pytest.raises(ValueError, match="number of classes"):
        compute_metrics(DISCRETE, [0, 1], [0, 1])


Y_TRUE = [-2.0, -0.4, 0.0, 0.6, 2.6, 1.5]
Y_PRED = [-1.0, 0.2, -0.3, 0.4, 3.4, -0.5]


def test_continuous_mosi_hand_computed():
    out = compute_metrics(MOSI, Y_TRUE, Y_PRED, scale="mosi")
    assert out["mae"] == pytest.approx(4.9 / 6, **APPROX)
    # has-0: non-negative vs negative over all clips; the label 0.0 counts as non-negative.
    assert out["acc2_has0"] == pytest.approx(3 / 6, **APPROX)
    # non-0: the clip labelled exactly 0 is left out; positive means > 0.
    assert out["acc2_non0"] == pytest.approx(3 / 5, **APPROX)
    # weighted F1 (has-0): class True F1 4/7 (support 4), class False F1 2/5 (support 2).
    assert out["f1_has0"] == pytest.approx((4 * 4 / 7 + 2 * 0.4) / 6, **APPROX)
    # non-0: True class tp 2 fp 1 fn 1 -> 2/3 (support 3); False tp 1 fp 1 fn 1 -> 1/2 (2).
    assert out["f1_non0"] == pytest.approx((3 * 2 / 3 + 2 * 0.5) / 5, **APPROX)
    assert out["acc7"] == pytest.approx(3 / 6, **APPROX)
    assert out["acc5"] == pytest.approx(3 / 6, **APPROX)
    assert out["acc3"] == pytest.approx(4 / 6, **APPROX)
    assert set(out) == {"mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3",
                        "acc5", "acc7"}


def test_multiclass_accuracy_rounds_half_to_even():
    # numpy.round, as MMSA uses: 0.5 -> 0, 2.5 -> 2, so these predictions all count as hits.
    out = compute_metrics(["acc7"], [0.5, 2.5, -1.5], [0.0, 2.0, -2.0], scale="mosi")
    assert out["acc7"] == 1.0


def test_continuous_sims_hand_computed():
    y_true = [-1.0, -0.2, 0.0, 0.05, 0.6, 0.8]
    y_pred = [-0.6, 0.1, 0.2, -0.05, 1.4, 0.75]  # 1.4 is clipped to 1.0 first
    out = compute_metrics(SIMS, y_true, y_pred, scale="sims")
    assert out["mae"] == pytest.approx(1.45 / 6, **APPROX)
    # two classes [-1, 0] and (0, 1]: here 0.0 is negative (unlike acc2_has0).
    assert out["acc2_sims"] == pytest.approx(3 / 6, **APPROX)
    assert out["f1_sims"] == pytest.approx((0.4 + 4 / 7) / 2, **APPROX)
    # (-0.1, 0.1] holds 0.1 itself.
    assert out["acc3_sims"] == pytest.approx(4 / 6, **APPROX)
    assert out["acc5_sims"] == pytest.approx(2 / 6, **APPROX)
    assert set(out) == {"mae", "corr", "acc2_sims", "f1_sims", "acc3_sims", "acc5_sims"}
    # without clipping (scores as they are), 1.4 is 0.8 away from 0.6 instead of 0.4
    assert compute_metrics(["mae"], y_true, y_pred)["mae"] == pytest.approx(1.85 / 6, **APPROX)


def test_sims_bins_are_left_open():
    assert sims_bin(np.array([-0.7, -0.69, 0.1, 0.11, 1.0]),
                    SIMS_BINS["acc5_sims"]).tolist() == [0, 1, 2, 3, 4]


def test_pearson_hand_computed_and_constant():
    assert pearson_r(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])) == pytest.approx(
        3 / math.sqrt(2 * 42 / 9), **APPROX)
    assert pearson_r(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 4.0])) == 0.0


def test_continuous_rejects_non_finite_and_unknown_scale():
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(["mae"], [0.0, 1.0], [float("nan"), 1.0])
    with pytest.raises(ValueError, match="scale"):
        compute_metrics(["mae"], [0.0, 1.0], [0.0, 1.0], scale="imdb")
    with pytest.raises(ValueError, match="'acc2_sims' does not apply"):
        compute_metrics(["mae", "acc2_sims"], [0.0, 1.0], [0.0, 1.0], scale="mosi")
    with pytest.raises(ValueError, match="does not apply to discrete"):
        compute_metrics(["accuracy", "mae"], [0, 1], [0, 1], num_classes=2)
    with pytest.raises(RegistryError, match="Did you mean 'accuracy'"):
        compute_metrics(["acuracy"], [0, 1], [0, 1], num_classes=2)


def test_correct_mask_follows_each_convention():
    t, p = np.array([0.0, -1.0, 2.0]), np.array([0.0, 0.0, 1.0])
    assert M.correct_mask("continuous", t, p, "mosi").tolist() == [True, False, True]
    assert M.correct_mask("continuous", t, p, "sims").tolist() == [True, True, True]
    assert M.correct_mask("discrete", np.array([1, 2]), np.array([1, 0])).tolist() == [True, False]
    with pytest.raises(ValueError, match="scale"):
        M.correct_mask("continuous", t, p, None)


# ----------------------------------------------------------------------------- the registry


def _random_case(name: str, rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray]:
    """Keyword arguments and (labels, predictions) on which metric ``name`` is defined."""
    info = metric_info(name)
    if info.task_type == "discrete":
        y = np.arange(40) % 5  # every class occurs: a perfect prediction has every F1 = 1
        return {"num_classes": 5}, y, rng.integers(0, 5, size=y.size)
    scale = SCALES[(info.scales or tuple(SCALES))[0]]
    y = rng.uniform(scale.low, scale.high, size=40)
    y[:4] = [scale.low, 0.0, scale.high, 0.05]
    return {"scale": scale.name}, y, rng.uniform(scale.low - 1, scale.high + 1, size=y.size)


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_keeps_its_declared_range_and_direction(name):
    info = metric_info(name)
    assert info.description and "\n" not in info.description
    rng = np.random.default_rng(0)
    for _ in range(5):
        kwargs, y, guess = _random_case(name, rng)
        value = compute_metrics([name], y, guess, **kwargs)[name]
        assert check_range(name, value) is None, (name, value)
        best = compute_metrics([name], y, y, **kwargs)[name]
        assert best == pytest.approx(info.high if info.higher_is_better else info.low), name
        assert (best >= value) if info.higher_is_better else (best <= value)


def test_registered_metrics_per_task_type():
    assert metric_names("discrete") == ("accuracy", "macro_f1", "weighted_f1")
    assert "acc2_non0" in metric_names("continuous", "mosi")
    assert "acc2_non0" not in metric_names("continuous", "sims")
    assert {"mae", "corr"} <= set(metric_names("continuous", "sims"))
    with pytest.raises(ValueError):
        metric_names("continuous", None)
    with pytest.raises(ValueError, match="task type"):
        metric_names("ordinal")
    assert metric_info("mae").higher_is_better is False and metric_info("mae").high is None
    assert metric_info("corr").low == -1.0


def test_registration_checks_its_metadata():
    def fn(y_true, y_pred):  # pragma: no cover - never computed
        return 0.0

    with pytest.raises(ValueError, match="task_type"):
        register_metric("x", task_type="ordinal", description="x")(fn)
    with pytest.raises(ValueError, match="scales"):
        register_metric("x", task_type="discrete", description="x", scales=["mosi"])(fn)
    with pytest.raises(ValueError, match="scales"):
        register_metric("x", task_type="continuous", description="x", scales=["imdb"])(fn)
    with pytest.raises(ValueError, match="empty range"):
        register_metric("x", task_type="continuous", description="x", low=1.0, high=0.0)(fn)
    with pytest.raises(ValueError, match="one non-empty line"):
        register_metric("x", task_type="continuous", description="two\nlines")(fn)
    with pytest.raises(RegistryError, match="already registered"):
        register_metric("mae", task_type="continuous", description="again")(fn)
    assert "x" not in METRICS


def test_relevance_auroc_hand_computed():
    # relevant {0.9, 0.3} vs irrelevant {0.8, 0.2, 0.6}: 0.9 beats 3, 0.3 beats 1 -> 4/6.
    weights = np.array([0.9, 0.8, 0.3, 0.2, 0.6])
    relevant = np.array([True, False, True, False, False])
    assert M.relevance_auroc(weights, relevant) == pytest.approx(4 / 6, **APPROX)
    assert M.relevance_auroc(weights, ~relevant) == pytest.approx(2 / 6, **APPROX)
    assert M.relevance_auroc(weights, np.ones(5, bool)) is None  # one class: undefined
    with pytest.raises(ValueError, match="NaN"):
        M.relevance_auroc(np.array([np.nan, 0.1]), np.array([True, False]))


def test_relative_robustness_hand_computed():
    # trapezoids: 0.375 + 0.325 + 0.4 = 1.1 over the level range 2 -> 0.55
    assert M.relative_robustness([0, 0.5, 1, 2], [0.8, 0.7, 0.6, 0.2]) == pytest.approx(0.55)
    assert M.relative_robustness([0, 1, 2], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="start at 0"):
        M.relative_robustness([0.5, 1.0], [0.1, 0.2])
    with pytest.raises(ValueError, match="one value per level"):
        M.relative_robustness([0, 1.0], [0.1])


def test_effective_robustness_hand_computed():
    model, reference = [0.8, 0.7, 0.6, 0.2], [0.6, 0.5, 0.5, 0.4]
    # reference shifted by +0.2: [0.8, 0.7, 0.7, 0.6]; differences at levels > 0: 0, -0.1, -0.4
    assert M.effective_robustness(model, reference) == pytest.approx(-0.5 / 3)
    assert M.effective_robustness(reference, reference) == pytest.approx(0.0)
    # a model that loses nothing beats a reference that degrades
    assert M.effective_robustness([0.5, 0.5], [0.9, 0.7]) == pytest.approx(0.2)


def test_aggregate_t_interval():
    a = M.aggregate([0.5, 0.7, 0.6])
    assert a.mean == pytest.approx(0.6)
    assert a.std == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t_{0.975, 2}
    assert a.ci95_low == pytest.approx(0.6 - half)
    assert a.ci95_high == pytest.approx(0.6 + half)
    assert a.ci95_half_width == pytest.approx(half)
    assert a.n == 3


def test_aggregate_single_and_invalid():
    one = M.aggregate([0.4])
    assert (one.mean, one.std, one.ci95_low, one.ci95_high, one.n) == (0.4, None, None, None, 1)
    assert M.aggregate_optional([None, None]) is None
    assert M.aggregate_optional([None, 0.2, 0.4]).n == 2
    with pytest.raises(ValueError):
        M.aggregate([])
    with pytest.raises(ValueError, match="non-finite"):
        M.aggregate([0.1, float("inf")])


def test_check_range():
    assert check_range("accuracy", 0.5) is None
    assert "outside" in check_range("accuracy", 1.5)
    assert "outside" in check_range("corr", -1.5)
    assert check_range("mae", 12.0) is None
    assert "unknown metric" in check_range("bleu", 0.1)
