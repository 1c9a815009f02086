"""Train/validation/test splits: speaker- and source-video-disjoint, stratified by label.

Clips that share a speaker or a source video must land in the same split, otherwise a model can
score well by recognising the person or the recording rather than the emotion. The clips are
grouped by union-find over ``speaker_id`` and ``video_id`` (two clips are in one group when a chain
of shared speakers or videos links them), and whole groups are assigned greedily, largest first,
to the split whose clip count and per-label counts are furthest below their targets — the
approach of scikit-learn's ``StratifiedGroupKFold`` adapted to unequal split sizes
(https://scikit-learn.org/stable/modules/generated/sklearn.model_selection.StratifiedGroupKFold.html)
— then improved by a local search that moves or swaps groups while that brings every split's
size and label distribution closer to its target. The seed only breaks ties between groups of
equal size, so a given seed always yields the same splits.

A corpus that fixes its own splits (the ``split`` column of ``annotations.csv``) keeps them; the
column must then be filled for every clip.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sdme.schema import SPLITS, RawClip

DEFAULT_RATIOS: dict[str, float] = {"train": 0.7, "validation": 0.15, "test": 0.15}
POLICY_GROUPED = "speaker_video_disjoint_stratified"
POLICY_CORPUS = "corpus"
_MAX_REFINE_PASSES = 20
_MAX_SWAP_GROUPS = 300  # pairwise swaps cost O(groups^2) per pass


class SplitError(ValueError):
    """The clips cannot be split as asked (too few groups, an incomplete corpus split...)."""


@dataclass(frozen=True)
class SplitReport:
    """How a split assignment came about and what it looks like.

    Attributes:
        policy: ``"speaker_video_disjoint_stratified"`` or ``"corpus"`` (the corpus's own).
        seed: Tie-breaking seed (None for a corpus split).
        ratios: Target share of clips per split.
        counts: Clips per split.
        label_counts: Clips per label, per split.
        n_groups: Speaker/video groups (connected components) in the corpus.
        groups: Groups per split.
        speakers: Distinct speakers per split.
        videos: Distinct source videos per split.
        shared_speakers: Speakers found in more than one split (empty for the grouped policy).
        shared_videos: Source videos found in more than one split.
        max_label_gap: Largest absolute difference, over splits and labels, between a label's
            share in a split and its share in the whole corpus (0 is perfect stratification).
    """

    policy: str
    seed: int | None
    ratios: dict[str, float]
    counts: dict[str, int]
    label_counts: dict[str, dict[str, int]]
    n_groups: int
    groups: dict[str, int]
    speakers: dict[str, int]
    videos: dict[str, int]
    shared_speakers: tuple[str, ...] = ()
    shared_videos: tuple[str, ...] = ()
    max_label_gap: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "seed": self.seed,
            "ratios": dict(self.ratios),
            "counts": dict(self.counts),
            "label_counts": {s: dict(c) for s, c in self.label_counts.items()},
            "n_groups": self.n_groups,
            "groups": dict(self.groups),
            "speakers": dict(self.speakers),
            "videos": dict(self.videos),
            "shared_speakers": list(self.shared_speakers),
            "shared_videos": list(self.shared_videos),
            "max_label_gap": round(self.max_label_gap, 6),
        }


@dataclass(frozen=True)
class SplitAssignment:
    """The split of every clip (``clip_id -> split``) and the report that explains it."""

    splits: dict[str, str]
    report: SplitReport
    order: tuple[str, ...] = field(default=SPLITS)

    def clip_ids(self, split: str) -> list[str]:
        """Clip ids of one split, in the order the clips were given."""
        return [cid for cid, s in self.splits.items() if s == split]

    def present(self) -> tuple[str, ...]:
        """Splits that received at least one clip, in train/validation/test order."""
        used = set(self.splits.values())
        return tuple(s for s in self.order if s in used)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def speaker_video_groups(clips: Sequence[RawClip]) -> list[list[int]]:
    """Indices of ``clips`` grouped so that no speaker or source video spans two groups.

    Groups come out in order of their first clip.
    """
    uf = _UnionFind()
    for clip in clips:
        uf.union(f"speaker:{clip.speaker_id}", f"video:{clip.video_id}")
    groups: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault(uf.find(f"speaker:{clip.speaker_id}"), []).append(i)
    return list(groups.values())


def _check_ratios(ratios: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(ratios) - set(SPLITS))
    if unknown:
        raise SplitError(f"unknown split name(s) {unknown}; splits are {list(SPLITS)}")
    if any(r < 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
        raise SplitError(f"split ratios must be >= 0 and not all 0, got {dict(ratios)}")
    total = sum(ratios.values())
    return {s: ratios[s] / total for s in SPLITS if ratios.get(s, 0) > 0}


def _report(clips: Sequence[RawClip], splits: dict[str, str], *, policy: str, seed: int | None,
            ratios: dict[str, float], n_groups: int, groups_per_split: dict[str, int]
            ) -> SplitReport:
    order = [s for s in SPLITS if s in set(splits.values())]
    by_split: dict[str, list[RawClip]] = {s: [] for s in order}
    for clip in clips:
        by_split[splits[clip.clip_id]].append(clip)
    overall = Counter(c.label for c in clips)
    gap = 0.0
    label_counts = {}
    for s, members in by_split.items():
        counts = Counter(c.label for c in members)
        label_counts[s] = dict(sorted(counts.items()))
        for label, n in overall.items():
            gap = max(gap, abs(counts.get(label, 0) / len(members) - n / len(clips)))

    def shared(attr: str) -> tuple[str, ...]:
        seen: dict[str, set[str]] = {}
        for clip in clips:
            seen.setdefault(getattr(clip, attr), set()).add(splits[clip.clip_id])
        return tuple(sorted(k for k, v in seen.items() if len(v) > 1))

    return SplitReport(
        policy=policy,
        seed=seed,
        ratios=ratios,
        counts={s: len(m) for s, m in by_split.items()},
        label_counts=label_counts,
        n_groups=n_groups,
        groups=groups_per_split,
        speakers={s: len({c.speaker_id for c in m}) for s, m in by_split.items()},
        videos={s: len({c.video_id for c in m}) for s, m in by_split.items()},
        shared_speakers=shared("speaker_id"),
        shared_videos=shared("video_id"),
        max_label_gap=gap,
    )


def _corpus_splits(clips: Sequence[RawClip]) -> SplitAssignment:
    missing = [c.clip_id for c in clips if not c.split]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise SplitError(f"the corpus fixes its own splits but {len(missing)} clip(s) have an "
                         f"empty split column: {shown}")
    bad = sorted({c.split for c in clips if c.split not in SPLITS})
    if bad:
        raise SplitError(f"unknown split name(s) {bad} in the corpus; splits are {list(SPLITS)}")
    splits = {c.clip_id: str(c.split) for c in clips}
    groups = speaker_video_groups(clips)
    per_split = Counter()
    for members in groups:
        for s in {splits[clips[i].clip_id] for i in members}:
            per_split[s] += 1
    counts = Counter(splits.values())
    ratios = {s: counts[s] / len(clips) for s in SPLITS if counts[s]}
    return SplitAssignment(splits, _report(clips, splits, policy=POLICY_CORPUS, seed=None,
                                           ratios=ratios, n_groups=len(groups),
                                           groups_per_split=dict(per_split)))


def assign_splits(clips: Sequence[RawClip], *, ratios: Mapping[str, float] = DEFAULT_RATIOS,
                  seed: int = 0, use_corpus_splits: bool = True) -> SplitAssignment:
    """Assigns every clip to train, validation or test.

    Args:
        clips: The clips to split (clip ids must be unique).
        ratios: Target share of clips per split; a split with ratio 0 (or left out) gets none.
        seed: Breaks ties between equally large groups; same clips and seed, same splits.
        use_corpus_splits: Keep the corpus's own ``split`` column when any clip has one.

    Returns:
        The assignment and a report (counts, label distribution per split, groups).

    Raises:
        SplitError: No clips, duplicate clip ids, fewer speaker/video groups than splits, or an
            incomplete or invalid corpus split column.
    """
    if not clips:
        raise SplitError("no clips to split")
    dupes = [cid for cid, n in Counter(c.clip_id for c in clips).items() if n > 1]
    if dupes:
        raise SplitError(f"duplicate clip_id(s): {', '.join(sorted(dupes)[:5])}")
    if use_corpus_splits and any(c.split for c in clips):
        return _corpus_splits(clips)

    targets_share = _check_ratios(ratios)
    names = list(targets_share)
    groups = speaker_video_groups(clips)
    if len(groups) < len(names):
        speakers = len({c.speaker_id for c in clips})
        videos = len({c.video_id for c in clips})
        raise SplitError(
            f"cannot make {len(names)} speaker- and video-disjoint splits ({', '.join(names)}): "
            f"the {len(clips)} clips form only {len(groups)} group(s) of linked speakers and "
            f"videos ({speakers} speaker(s), {videos} video(s)); add speakers, or fix the splits "
            "in the split column of annotations.csv")

    labels = sorted({c.label for c in clips})
    label_index = {label: j for j, label in enumerate(labels)}
    total = len(clips)
    overall = Counter(c.label for c in clips)
    target = {s: targets_share[s] * total for s in names}
    target_label = {s: [targets_share[s] * overall[lab] for lab in labels] for s in names}

    group_labels = []
    for members in groups:
        vec = [0] * len(labels)
        for i in members:
            vec[label_index[clips[i].label]] += 1
        group_labels.append(vec)

    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -len(groups[g]))  # stable: the shuffle breaks ties

    # Each split's cost is its squared distance to the targets (clip count and per-label counts),
    # divided by its target size so that a small split's proportions weigh as much as a large one's.
    vectors = [[len(groups[g])] + group_labels[g] for g in range(len(groups))]
    targets = {s: [target[s]] + target_label[s] for s in names}
    filled = {s: [0] * (len(labels) + 1) for s in names}

    def cost(s: str, vec: list[int]) -> float:
        return sum((v - t) ** 2 for v, t in zip(vec, targets[s], strict=True)) / target[s]

    def moved(s: str, add: int | None, remove: int | None) -> list[int]:
        vec = list(filled[s])
        for g, sign in ((add, 1), (remove, -1)):
            if g is not None:
                vec = [v + sign * k for v, k in zip(vec, vectors[g], strict=True)]
        return vec

    def put(g: int, s: str, sign: int = 1) -> None:
        filled[s] = [v + sign * k for v, k in zip(filled[s], vectors[g], strict=True)]

    chosen: dict[int, str] = {}
    for rank, g in enumerate(order):
        empty = [s for s in names if filled[s][0] == 0]
        left = len(order) - rank
        candidates = empty if empty and left <= len(empty) else names
        best = min(candidates, key=lambda s: (cost(s, moved(s, g, None)) - cost(s, filled[s]),
                                              names.index(s)))
        chosen[g] = best
        put(g, best)

    # Local search: move one group, or swap two, while that lowers the total cost.
    members_of = Counter(chosen.values())
    for _ in range(_MAX_REFINE_PASSES):
        improved = False
        for g in order:
            a = chosen[g]
            for b in names:
                if b == a or members_of[a] == 1:
                    continue
                delta = (cost(a, moved(a, None, g)) + cost(b, moved(b, g, None))
                         - cost(a, filled[a]) - cost(b, filled[b]))
                if delta < -1e-9:
                    put(g, a, -1)
                    put(g, b)
                    chosen[g] = b
                    members_of[a] -= 1
                    members_of[b] += 1
                    improved, a = True, b
            for h in order if len(order) <= _MAX_SWAP_GROUPS else ():
                b = chosen[h]
                if b == a:
                    continue
                delta = (cost(a, moved(a, h, g)) + cost(b, moved(b, g, h))
                         - cost(a, filled[a]) - cost(b, filled[b]))
                if delta < -1e-9:
                    put(g, a, -1)
                    put(h, a)
                    put(h, b, -1)
                    put(g, b)
                    chosen[g], chosen[h] = b, a
                    improved, a = True, b
        if not improved:
            break

    splits: dict[str, str] = {}
    for g, members in enumerate(groups):
        for i in members:
            splits[clips[i].clip_id] = chosen[g]
    splits = {c.clip_id: splits[c.clip_id] for c in clips}  # the clips' own order
    return SplitAssignment(splits, _report(clips, splits, policy=POLICY_GROUPED, seed=seed,
                                           ratios=targets_share, n_groups=len(groups),
                                           groups_per_split=dict(Counter(chosen.values()))))


__all__ = ["DEFAULT_RATIOS", "POLICY_CORPUS", "POLICY_GROUPED", "SplitAssignment", "SplitError",
           "SplitReport", "assign_splits", "speaker_video_groups"]
