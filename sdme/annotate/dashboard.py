"""What the owner's dashboard shows: progress, agreement, each annotator's quality signals.

All agreement figures use ``sdme.relevance`` — the project's one Fleiss' kappa (generalised to
a varying number of raters per item) and its one majority rule (``majority_label``: ties go to
the clip's multimodal label, then taxonomy order) — over the votes collected so far (repeats
excluded). Per annotator:

- *agreement*: the share of their votes equal to the majority of the **other** votes on the
  same item (leave-one-out, so an annotator does not agree with themselves), over items with at
  least two other votes;
- *consistency*: the share of repeated items answered as the first time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sdme.annotate.store import AnnotateSettings, VoteRecord
from sdme.relevance import fleiss_kappa, majority_label


def summarize(votes: Sequence[VoteRecord], items: Sequence[tuple[str, str, str]],
              people: Sequence[dict[str, object]], settings: AnnotateSettings,
              taxonomy: Sequence[str], open_leases: int = 0) -> dict[str, object]:
    """The dashboard's figures as plain JSON types.

    Args:
        votes: Every stored vote (``Store.votes``).
        items: The active items, ``(clip_id, modality, clip_label)``.
        people: Annotators with their counts (``Store.people``).
        settings: The project settings.
        taxonomy: The corpus taxonomy.
        open_leases: Items currently reserved by an annotator.
    """
    known = set(taxonomy)
    k = settings.votes_per_item
    first = [v for v in votes if not v.repeat and v.label in known]
    by_item: dict[tuple[str, str], list[VoteRecord]] = defaultdict(list)
    for v in first:
        by_item[(v.clip_id, v.modality)].append(v)
    labels = {(c, m): y for c, m, y in items}

    modalities = {}
    for m in settings.modalities:
        keys = [(c, mm) for c, mm, _ in items if mm == m]
        counts = [len(by_item.get(key, ())) for key in keys]
        kappa = fleiss_kappa([[v.label for v in by_item.get(key, ())] for key in keys], taxonomy)
        modalities[m] = {
            "items": len(keys),
            "complete": sum(c >= k for c in counts),
            "votes": sum(counts),
            "filled": sum(min(c, k) for c in counts),
            "target": len(keys) * k,
            "kappa": None if kappa is None else round(kappa, 4),
            "kappa_items": sum(c >= 2 for c in counts),
        }

    agree: dict[int, list[int]] = defaultdict(list)
    for key, item_votes in by_item.items():
        if len(item_votes) < 3:
            continue
        for v in item_votes:
            others = [o.label for o in item_votes if o is not v]
            agree[v.annotator_id].append(
                int(v.label == majority_label(others, labels.get(key, ""), taxonomy)))
    first_answer = {(v.annotator_id, v.clip_id, v.modality): v.label for v in first}
    consistent: dict[int, list[int]] = defaultdict(list)
    for v in votes:
        original = first_answer.get((v.annotator_id, v.clip_id, v.modality))
        if v.repeat and original is not None:
            consistent[v.annotator_id].append(int(v.label == original))

    def share(values: list[int]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    annotators = [{
        "name": p["name"], "source": "imported" if p["role"] == "imported" else "sdme",
        "active": bool(p["active"]), "votes": p["votes"], "skipped": p["skipped"],
        "agreement": share(agree[p["id"]]), "agreement_n": len(agree[p["id"]]),
        "consistency": share(consistent[p["id"]]), "repeats": len(consistent[p["id"]]),
    } for p in people]
    total_filled = sum(m["filled"] for m in modalities.values())
    total_target = sum(m["target"] for m in modalities.values())
    return {
        "settings": {"votes_per_item": k, "modalities": list(settings.modalities),
                     "gold_every": settings.gold_every},
        "annotators_needed": k * len(settings.modalities),
        "progress": round(total_filled / total_target, 4) if total_target else None,
        "open_items": open_leases,
        "modalities": modalities,
        "annotators": annotators,
    }


__all__ = ["summarize"]
