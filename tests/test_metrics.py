"""The metric spec against hand-computed cases (every expected number is worked out by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark import metrics as M

APPROX = {"abs": 1e-9}


def test_discrete_metrics_hand_computed():
    # class 0: tp 1 fp 1 fn 1 -> F1 1/2; class 1: tp 2 fp 1 fn 0 -> 4/5; class 2: tp 1 fp 0 fn 1
    # -> 2/3; class 3 never occurs -> 0 (it still counts in the macro mean over the taxonomy).
    report = M.discrete_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], ["a", "b", "c", "d"])
    assert report.metrics["accuracy"] == pytest.approx(4 / 6, **APPROX)
    assert report.per_class_f1 == pytest.approx({"a": 0.5, "b": 0.8, "c": 2 / 3, "d": 0.0})
    assert report.metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3 + 0) / 4, **APPROX)
    assert report.metrics["weighted_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, **APPROX)
    assert report.confusion_matrix == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_single_discrete_metric_agrees():
    t, p = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0])
    full = M.discrete_metrics(t, p, ["a", "b", "c", "d"]).metrics
    for name, value in full.items():
        assert M.discrete_metric(name, t, p, 4) == pytest.approx(value, abs=0)


def test_discrete_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="outside the taxonomy"):
        M.discrete_metrics([0, 1], [0, 5], ["a", "b"])
    with pytest.raises(ValueError, match="equal length"):
        M.discrete_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="no predictions"):
        M.discrete_metrics([], [], ["a"])


Y_TRUE = [-2.0, -0.4, 0.0, 0.6, 2.6, 1.5]
Y_PRED = [-1.0, 0.2, -0.3, 0.4, 3.4, -0.5]


def test_continuous_mosi_hand_computed():
    out = M.continuous_metrics(Y_TRUE, Y_PRED, "mosi")
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
    assert set(out) == set(M.CONTINUOUS_METRICS["mosi"])


def test_multiclass_accuracy_rounds_half_to_even():
    # numpy.round, as MMSA uses: 0.5 -> 0, 2.5 -> 2, so these predictions all count as hits.
    out = M.continuous_metrics([0.5, 2.5, -1.5], [0.0, 2.0, -2.0], "mosi")
    assert out["acc7"] == 1.0


def test_continuous_sims_hand_computed():
    y_true = [-1.0, -0.2, 0.0, 0.05, 0.6, 0.8]
    y_pred = [-0.6, 0.1, 0.2, -0.05, 1.4, 0.75]  # 1.4 is clipped to 1.0 first
    out = M.continuous_metrics(y_true, y_pred, "sims")
    assert out["mae"] == pytest.approx(1.45 / 6, **APPROX)
    # two classes [-1, 0] and (0, 1]: here 0.0 is negative (unlike acc2_has0).
    assert out["acc2_sims"] == pytest.approx(3 / 6, **APPROX)
    assert out["f1_sims"] == pytest.approx((0.4 + 4 / 7) / 2, **APPROX)
    # (-0.1, 0.1] holds 0.1 itself.
    assert out["acc3_sims"] == pytest.approx(4 / 6, **APPROX)
    assert out["acc5_sims"] == pytest.approx(2 / 6, **APPROX)
    assert set(out) == set(M.CONTINUOUS_METRICS["sims"])


def test_sims_bins_are_left_open():
    assert M.sims_bin(np.array([-0.7, -0.69, 0.1, 0.11, 1.0]),
                      M.SIMS_BINS["acc5_sims"]).tolist() == [0, 1, 2, 3, 4]


def test_pearson_hand_computed_and_constant():
    assert M.pearson_r(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])) == pytest.approx(
        3 / math.sqrt(2 * 42 / 9), **APPROX)
    assert M.pearson_r(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 4.0])) == 0.0


def test_continuous_rejects_non_finite_and_unknown_scale():
    with pytest.raises(ValueError, match="NaN"):
        M.continuous_metrics([0.0, 1.0], [float("nan"), 1.0])
    with pytest.raises(ValueError, match="scale"):
        M.continuous_metrics([0.0, 1.0], [0.0, 1.0], "imdb")


def test_correct_mask_follows_each_convention():
    t, p = np.array([0.0, -1.0, 2.0]), np.array([0.0, 0.0, 1.0])
    assert M.correct_mask("continuous", t, p, "mosi").tolist() == [True, False, True]
    assert M.correct_mask("continuous", t, p, "sims").tolist() == [True, True, True]
    assert M.correct_mask("discrete", np.array([1, 2]), np.array([1, 0])).tolist() == [True, False]


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
    assert M.check_range("accuracy", 0.5) is None
    assert "outside" in M.check_range("accuracy", 1.5)
    assert "outside" in M.check_range("corr", -1.5)
    assert M.check_range("mae", 12.0) is None
    assert "unknown metric" in M.check_range("bleu", 0.1)


def test_metric_names_per_task_type():
    assert M.metric_names("discrete") == ("accuracy", "macro_f1", "weighted_f1")
    assert "acc2_non0" in M.metric_names("continuous", "mosi")
    with pytest.raises(ValueError):
        M.metric_names("continuous", None)
