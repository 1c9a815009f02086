"""Continuous sentiment scores: their discrete label, and relevance from unimodal scores.

Corpora annotated with a continuous score rather than a category (CMU-MOSI and CMU-MOSEI in
[-3, 3]; CH-SIMS and CH-SIMS v2 in [-1, 1], with unimodal scores for text, audio and vision)
keep the score in a ``score`` column (``score_<m>`` for unimodal ones) and get a *discrete*
``label`` by a fixed rule, so discrete tasks and the deviation analysis still work. Taxonomy:
``negative``, ``neutral``, ``positive`` (ClassLabel indices 0, 1, 2).

Discretisation, per scale (conventions of MMSA's ``MetricsTop``, Yu et al., 2021,
https://github.com/thuiar/MMSA, ``src/MMSA/utils/metricsTop.py``):

* ``mosi`` (CMU-MOSI, CMU-MOSEI): by the sign of the score — ``negative`` if s < 0,
  ``neutral`` if s == 0, ``positive`` if s > 0. MMSA's binary conventions fall out of it:
  *has-0* accuracy is ``negative`` vs. the rest, *non-0* accuracy drops ``neutral`` clips.
  (Not the rounding rule of MMSA's ``Mult_acc_3``, which calls |s| <= 0.5 neutral.)
* ``sims`` (CH-SIMS, CH-SIMS v2): MMSA's three SIMS classes — ``negative`` for s in [-1, -0.1],
  ``neutral`` for (-0.1, 0.1], ``positive`` for (0.1, 1] (scores clipped to [-1, 1] first).

The rule compares the score as stored (float32) with the thresholds in float32, as MMSA's
numpy comparisons of float32 labels do (so a SIMS score of 0.1 is neutral, -0.1 negative), and
anyone re-deriving it from the dataset gets the same labels.

Relevance from unimodal scores (CH-SIMS ``regression_labels_T/A/V``), for each modality m with a
unimodal score s_m, clip score s and scale range R (6 for ``mosi``, 2 for ``sims``):

* ``label_m``     = discretise(s_m), the modality's own class;
* ``relevance_m`` = clip(1 - |s_m - s| / R, 0, 1): 1 when the modality carries exactly the
  clip's sentiment, 0 when it is as far from it as the scale allows;
* ``deviation``   = how many modalities have ``label_m != label``.

These fill the same fields as the vote-based rule of ``sdme.relevance`` (no votes are invented:
``votes_<m>`` stay empty), and ``sdme.validate_built`` re-derives them from the stored scores.

Both ways a scored corpus enters SDME use this module and nothing else: ``sdme import mmsa``
(MMSA's pickles) and ``sdme build`` on a raw corpus whose ``annotations.csv`` has ``score`` /
``score_<m>`` columns and whose ``sdme.json`` declares ``annotation_protocol.score_scale``
(:func:`manifest_scale`; the ``chsims`` source writes such corpora from CH-SIMS's ``label.csv``).
:func:`clip_relevance` picks the rule for a raw clip (unimodal scores, else votes), and
:func:`score_record`, :func:`label_rule_record` and :func:`unimodal_relevance_record` are the
``build_info.json`` sections that state the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sdme.relevance import Relevance, compute_relevance
from sdme.schema import MODALITIES, SCORE_COLUMN, UNIMODAL_SCORE_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sdme.schema import CorpusManifest, RawClip

SENTIMENT_TAXONOMY: tuple[str, ...] = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class ScoreScale:
    """A continuous score scale and its 3-class rule.

    Attributes:
        name: ``mosi`` or ``sims``.
        low: Smallest score.
        high: Largest score.
        neutral_low: Scores <= this are ``negative``... (see ``discretise``).
        neutral_high: ...and scores > this are ``positive``.
        neutral_closed_low: Whether a score equal to ``neutral_low`` is neutral (``mosi``:
            only 0 is neutral) rather than negative (``sims``: -0.1 is negative).
        rule: The rule in words (written into cards and build_info.json).
    """

    name: str
    low: float
    high: float
    neutral_low: float
    neutral_high: float
    neutral_closed_low: bool
    rule: str

    @property
    def range(self) -> float:
        return self.high - self.low


SCALES: dict[str, ScoreScale] = {
    "mosi": ScoreScale("mosi", -3.0, 3.0, 0.0, 0.0, True,
                       "negative if score < 0, neutral if score == 0, positive if score > 0 "
                       "(sign of the score; MMSA's has-0/non-0 conventions)"),
    "sims": ScoreScale("sims", -1.0, 1.0, -0.1, 0.1, False,
                       "score clipped to [-1, 1]; negative in [-1, -0.1], neutral in (-0.1, 0.1], "
                       "positive in (0.1, 1] (MMSA's 3-class SIMS bins)"),
}


def get_scale(name: str) -> ScoreScale:
    try:
        return SCALES[name]
    except KeyError:
        raise ValueError(f"unknown score scale {name!r}; known: {', '.join(SCALES)}") from None


def discretise(score: float, scale: str | ScoreScale) -> str:
    """The 3-class sentiment label of a score (module docstring), compared in float32.

    Raises:
        ValueError: a non-finite score or an unknown scale.
    """
    s = scale if isinstance(scale, ScoreScale) else get_scale(scale)
    value = np.float32(score)
    if not np.isfinite(value):
        raise ValueError(f"score {score!r} is not finite")
    value = min(max(value, np.float32(s.low)), np.float32(s.high))
    low, high = np.float32(s.neutral_low), np.float32(s.neutral_high)
    if value < low or (value == low and not s.neutral_closed_low):
        return "negative"
    if value > high:
        return "positive"
    return "neutral"


def score_relevance(score: float, unimodal: Mapping[str, float | None],
                    scale: str | ScoreScale) -> Relevance:
    """Relevance fields from a clip score and unimodal scores (module docstring).

    Args:
        score: The clip's (multimodal) score.
        unimodal: Score per modality; a modality absent or None is not annotated (its fields
            are None, and ``deviation`` is None when no modality is annotated).
        scale: ``mosi`` or ``sims``.
    """
    s = scale if isinstance(scale, ScoreScale) else get_scale(scale)
    clip_label = discretise(score, s)
    clip_score = float(np.float32(score))
    labels: dict[str, str | None] = {}
    shares: dict[str, float | None] = {}
    deviant = set()
    for m in MODALITIES:
        value = unimodal.get(m)
        if value is None or not np.isfinite(float(value)):
            labels[m], shares[m] = None, None
            continue
        labels[m] = discretise(value, s)
        distance = abs(float(np.float32(value)) - clip_score) / s.range
        shares[m] = float(np.float32(min(1.0, max(0.0, 1.0 - distance))))
        if labels[m] != clip_label:
            deviant.add(m)
    annotated = any(labels[m] is not None for m in MODALITIES)
    return Relevance(label=labels, relevance=shares,
                     deviation=len(deviant) if annotated else None, deviant=frozenset(deviant))


#: The ``sdme.json`` key (in ``annotation_protocol``) naming a scored corpus's scale.
SCALE_KEY = "score_scale"


def manifest_scale(manifest: CorpusManifest) -> ScoreScale | None:
    """The score scale a raw corpus declares (``annotation_protocol.score_scale``), or None.

    Raises:
        ValueError: an unknown scale name.
    """
    name = manifest.annotation_protocol.get(SCALE_KEY)
    return None if name is None else get_scale(str(name))


def clip_relevance(clip: RawClip, taxonomy: Sequence[str],
                   scale: ScoreScale | None) -> Relevance:
    """A raw clip's relevance fields: from its unimodal scores (:func:`score_relevance`) when the
    corpus is scored and the clip has any, else from its votes (``sdme.relevance``)."""
    unimodal = {m: clip.unimodal_score(m) for m in MODALITIES}
    if scale is not None and clip.score is not None and any(
            v is not None for v in unimodal.values()):
        return score_relevance(clip.score, unimodal, scale)
    return compute_relevance(clip, taxonomy)


def score_record(scale: ScoreScale, source_key: str | None = None) -> dict[str, Any]:
    """The ``score`` section of ``build_info.json``: the column and its scale."""
    record: dict[str, Any] = {"column": SCORE_COLUMN, "scale": scale.name, "low": scale.low,
                              "high": scale.high}
    if source_key is not None:
        record["source_key"] = source_key
    return record


def label_rule_record(scale: ScoreScale) -> dict[str, Any]:
    """The ``label_rule`` section of ``build_info.json``: how ``label`` follows from ``score``."""
    return {"scale": scale.name, "rule": scale.rule}


def unimodal_relevance_record(scale: ScoreScale, modalities: Sequence[str]) -> dict[str, Any]:
    """The ``relevance`` section of ``build_info.json`` for relevance from unimodal scores."""
    return {"source": "unimodal_scores", "scale": scale.name,
            "columns": {m: UNIMODAL_SCORE_COLUMNS[m] for m in modalities},
            "rule": "label_m = discretised score_m; relevance_m = clip(1 - |score_m - score| / "
                    f"{scale.range:g}, 0, 1); deviation = modalities with label_m != label"}


@dataclass(frozen=True)
class CorpusScores:
    """A scored raw corpus, as ``sdme build`` carries it: its scale and the modalities that have
    unimodal scores.

    Attributes:
        scale: The declared scale (:func:`manifest_scale`).
        unimodal: Modalities with a ``score_<m>`` on at least one clip (their columns are
            written; relevance comes from them).
    """

    scale: ScoreScale
    unimodal: tuple[str, ...]

    @classmethod
    def of(cls, manifest: CorpusManifest, clips: Sequence[RawClip]) -> CorpusScores | None:
        """The corpus's scores, or None when it declares no scale."""
        scale = manifest_scale(manifest)
        if scale is None:
            return None
        return cls(scale, tuple(m for m in MODALITIES
                                if any(c.unimodal_score(m) is not None for c in clips)))

    def columns(self) -> list[str]:
        """The optional built-dataset columns: ``score`` and each ``score_<m>``."""
        return [SCORE_COLUMN, *(UNIMODAL_SCORE_COLUMNS[m] for m in self.unimodal)]

    def provenance(self) -> dict[str, Any]:
        """The ``score``, ``label_rule`` and ``relevance`` sections of ``build_info.json``
        (``relevance`` None, i.e. from the votes, without unimodal scores)."""
        return {"score": score_record(self.scale), "label_rule": label_rule_record(self.scale),
                "relevance": (unimodal_relevance_record(self.scale, self.unimodal)
                              if self.unimodal else None)}


__all__ = ["SCALES", "SCALE_KEY", "SENTIMENT_TAXONOMY", "CorpusScores", "ScoreScale",
           "clip_relevance", "discretise", "get_scale", "label_rule_record", "manifest_scale",
           "score_record", "score_relevance", "unimodal_relevance_record"]
