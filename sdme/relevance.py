"""Relevance annotations: how far each modality of a clip expresses the clip's emotion.

For a clip with multimodal label ``y`` and, for modality m, the labels ``votes_m`` that annotators
gave from that modality alone (see ``sdme.schema``):

* ``label_m``     — the most frequent vote. Ties are broken in favour of ``y`` when ``y`` is among
  the tied labels (a modality counts as deviating only when a strict plurality disagrees with the
  clip), otherwise by taxonomy order. None when the modality has no votes.
* ``relevance_m`` — the share of ``votes_m`` equal to ``y``, in [0, 1]. None without votes.
* ``deviation``   — how many modalities have ``label_m != y`` (0..3), counting annotated
  modalities only. None when no modality has votes: absent annotations are never invented.

Validation also reports inter-annotator agreement per modality as Fleiss' kappa, in the
generalisation to a varying number of raters per item (Fleiss, 1971, eq. 2–5 with per-item n_i).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sdme.schema import MODALITIES, RawClip


@dataclass(frozen=True)
class Relevance:
    """Relevance fields of one clip, keyed by modality name."""

    label: dict[str, str | None]
    relevance: dict[str, float | None]
    deviation: int | None
    deviant: frozenset[str] = frozenset()

    def as_row(self) -> dict[str, object]:
        """Flat columns as stored in a built dataset (``label_text``, ``relevance_text``...)."""
        from sdme.built import DEVIATION, RELEVANCE, UNIMODAL_LABEL

        row: dict[str, object] = {}
        for m in MODALITIES:
            row[UNIMODAL_LABEL[m]] = self.label.get(m)
            row[RELEVANCE[m]] = self.relevance.get(m)
        row[DEVIATION] = self.deviation
        return row

    def deviating(self) -> tuple[str, ...]:
        """Modalities whose majority label differs from the clip label."""
        return tuple(m for m in MODALITIES if m in self.deviant)


def majority_label(votes: Sequence[str], clip_label: str,
                   taxonomy: Sequence[str]) -> str | None:
    """Most frequent vote; ties favour ``clip_label``, then taxonomy order."""
    if not votes:
        return None
    counts = Counter(votes)
    top = max(counts.values())
    tied = [v for v, c in counts.items() if c == top]
    if clip_label in tied:
        return clip_label
    order = {name: i for i, name in enumerate(taxonomy)}
    return min(tied, key=lambda v: (order.get(v, len(order)), v))


def relevance_share(votes: Sequence[str], clip_label: str) -> float | None:
    if not votes:
        return None
    return sum(v == clip_label for v in votes) / len(votes)


def compute_relevance(clip: RawClip, taxonomy: Sequence[str]) -> Relevance:
    labels: dict[str, str | None] = {}
    shares: dict[str, float | None] = {}
    deviant = set()
    for m in MODALITIES:
        votes = clip.votes(m)
        labels[m] = majority_label(votes, clip.label, taxonomy)
        shares[m] = relevance_share(votes, clip.label)
        if labels[m] is not None and labels[m] != clip.label:
            deviant.add(m)
    annotated = any(labels[m] is not None for m in MODALITIES)
    return Relevance(label=labels, relevance=shares,
                     deviation=len(deviant) if annotated else None,
                     deviant=frozenset(deviant))


def fleiss_kappa(items: Iterable[Sequence[str]], categories: Sequence[str]) -> float | None:
    """Fleiss' kappa over items rated by a varying number (>= 2) of raters.

    Items with fewer than two ratings are skipped. Returns None when nothing is left, and 1.0
    when expected agreement is already perfect (a single category used throughout).
    """
    index = {c: i for i, c in enumerate(categories)}
    per_item_agreement = []
    totals = [0] * len(categories)
    n_ratings = 0
    for votes in items:
        if len(votes) < 2:
            continue
        counts = [0] * len(categories)
        for v in votes:
            counts[index[v]] += 1
        n = len(votes)
        per_item_agreement.append((sum(c * c for c in counts) - n) / (n * (n - 1)))
        for j, c in enumerate(counts):
            totals[j] += c
        n_ratings += n
    if not per_item_agreement:
        return None
    observed = sum(per_item_agreement) / len(per_item_agreement)
    expected = sum((t / n_ratings) ** 2 for t in totals)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


def agreement_by_modality(clips: Sequence[RawClip],
                          taxonomy: Sequence[str]) -> dict[str, float | None]:
    """Fleiss' kappa of the unimodal votes, per modality (None: not annotated)."""
    known = set(taxonomy)
    return {
        m: fleiss_kappa(
            (tuple(v for v in c.votes(m) if v in known) for c in clips), taxonomy
        )
        for m in MODALITIES
    }
