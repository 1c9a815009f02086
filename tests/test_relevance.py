"""Relevance fields and Fleiss' kappa against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from sdme.relevance import agreement_by_modality, compute_relevance, fleiss_kappa, majority_label
from sdme.schema import DEFAULT_TAXONOMY, RawClip

TAX = DEFAULT_TAXONOMY


def clip(label: str, text=(), audio=(), vision=()) -> RawClip:
    return RawClip(clip_id="c", video_id="v", speaker_id="s", start=0.0, end=2.0, text="hi",
                   language="en", label=label, votes_text=tuple(text), votes_audio=tuple(audio),
                   votes_vision=tuple(vision))


def test_all_modalities_agree_gives_deviation_zero():
    rel = compute_relevance(clip("anger", ["anger"] * 3, ["anger", "anger", "fear"],
                                 ["anger"] * 5), TAX)
    assert rel.label == {"text": "anger", "audio": "anger", "vision": "anger"}
    assert rel.relevance["text"] == 1.0
    assert rel.relevance["audio"] == pytest.approx(2 / 3)
    assert rel.deviation == 0
    assert rel.deviating() == ()


def test_one_irrelevant_modality():
    # Positive words said in a sad voice: audio deviates.
    rel = compute_relevance(clip("happiness", ["happiness"] * 4 + ["neutral"],
                                 ["sadness", "sadness", "sadness", "happiness", "neutral"],
                                 ["happiness", "happiness", "surprise"]), TAX)
    assert rel.label["audio"] == "sadness"
    assert rel.relevance == {"text": 0.8, "audio": 0.2, "vision": pytest.approx(2 / 3)}
    assert rel.deviation == 1
    assert rel.deviating() == ("audio",)


def test_all_three_deviate():
    rel = compute_relevance(clip("fear", ["neutral"] * 2, ["anger"] * 2, ["sadness"] * 2), TAX)
    assert rel.deviation == 3
    assert rel.relevance == {"text": 0.0, "audio": 0.0, "vision": 0.0}


def test_tie_including_clip_label_is_not_a_deviation():
    assert majority_label(["anger", "fear"], "fear", TAX) == "fear"
    # Tie without the clip label: taxonomy order (sadness before anger).
    assert majority_label(["anger", "sadness"], "neutral", TAX) == "sadness"


def test_missing_votes_are_absent_not_invented():
    rel = compute_relevance(clip("anger", text=["fear", "fear"]), TAX)
    assert rel.label["audio"] is None and rel.relevance["audio"] is None
    assert rel.deviation == 1  # only annotated modalities count
    row = rel.as_row()
    assert row["label_vision"] is None and row["relevance_text"] == 0.0
    assert compute_relevance(clip("anger"), TAX).deviation is None


def test_fleiss_kappa_textbook_example():
    # Fleiss (1971)-style worked example from Wikipedia: 10 items, 14 raters, 5 categories,
    # kappa = 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    cats = ["a", "b", "c", "d", "e"]
    items = [[c for c, n in zip(cats, row, strict=True) for _ in range(n)] for row in table]
    assert fleiss_kappa(items, cats) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_kappa_edge_cases():
    assert fleiss_kappa([["a", "a"], ["b", "b"]], ["a", "b"]) == 1.0
    assert fleiss_kappa([["a"], []], ["a", "b"]) is None
    # Perfect disagreement on two categories: observed 0, expected 0.5 -> -1.
    assert fleiss_kappa([["a", "b"], ["a", "b"]], ["a", "b"]) == pytest.approx(-1.0)


def test_agreement_by_modality_skips_unannotated():
    clips = [clip("anger", ["anger", "anger"], (), ["fear", "anger"]),
             clip("fear", ["fear", "fear"], (), ["fear", "fear"])]
    kappa = agreement_by_modality(clips, TAX)
    assert kappa["text"] == 1.0
    assert kappa["audio"] is None
    assert not math.isnan(kappa["vision"]) and kappa["vision"] < 1.0
