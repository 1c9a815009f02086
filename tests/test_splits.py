"""Split policy: speaker/video disjointness, stratification, determinism, corpus splits."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from sdme.schema import RawClip
from sdme.splits import (
    POLICY_CORPUS,
    POLICY_GROUPED,
    SplitError,
    assign_splits,
    speaker_video_groups,
)

LABELS = ("neutral", "happiness", "sadness", "anger")


def clip(cid: str, speaker: str, video: str, label: str, split: str | None = None) -> RawClip:
    return RawClip(clip_id=cid, video_id=video, speaker_id=speaker, start=0.0, end=1.0,
                   text="x", language="en", label=label, split=split)


def synthetic_corpus(n_speakers: int = 40, seed: int = 7) -> list[RawClip]:
    """Speakers with 1-3 videos of 2-8 clips; each speaker leans to one label."""
    rng = random.Random(seed)
    clips = []
    for s in range(n_speakers):
        lean = LABELS[s % len(LABELS)]
        for v in range(rng.randint(1, 3)):
            for c in range(rng.randint(2, 8)):
                label = lean if rng.random() < 0.6 else rng.choice(LABELS)
                clips.append(clip(f"s{s}_v{v}_c{c}", f"spk{s}", f"vid{s}_{v}", label))
    # A guest appearance links two speakers through a shared video.
    clips.append(clip("guest", "spk1", "vid0_0", "anger"))
    rng.shuffle(clips)
    return clips


def splits_of(clips, assignment, attr):
    seen: dict[str, set[str]] = {}
    for c in clips:
        seen.setdefault(getattr(c, attr), set()).add(assignment.splits[c.clip_id])
    return seen


def test_groups_follow_shared_speakers_and_videos():
    clips = [clip("a", "A", "v1", "anger"), clip("b", "A", "v2", "anger"),
             clip("c", "B", "v2", "anger"), clip("d", "C", "v3", "anger"),
             clip("e", "D", "v3", "anger"), clip("f", "E", "v4", "anger")]
    groups = sorted(sorted(clips[i].clip_id for i in g) for g in speaker_video_groups(clips))
    assert groups == [["a", "b", "c"], ["d", "e"], ["f"]]


def test_grouped_splits_are_disjoint_complete_and_sized():
    clips = synthetic_corpus()
    result = assign_splits(clips, seed=0)
    assert result.report.policy == POLICY_GROUPED
    assert set(result.splits) == {c.clip_id for c in clips}
    assert list(result.splits) == [c.clip_id for c in clips]  # input order kept
    for attr in ("speaker_id", "video_id"):
        leaked = {k: v for k, v in splits_of(clips, result, attr).items() if len(v) > 1}
        assert not leaked, f"{attr} in several splits: {leaked}"
    # The guest clip links spk0 and spk1: same split.
    assert result.splits["guest"] == next(result.splits[c.clip_id] for c in clips
                                          if c.speaker_id == "spk0")
    counts = Counter(result.splits.values())
    assert set(counts) == {"train", "validation", "test"}
    n = len(clips)
    assert abs(counts["train"] / n - 0.70) < 0.05
    assert abs(counts["validation"] / n - 0.15) < 0.05
    assert abs(counts["test"] / n - 0.15) < 0.05
    assert result.report.counts == dict(counts)
    assert result.report.shared_speakers == () and result.report.shared_videos == ()


def test_label_distribution_is_stratified_better_than_random_groups():
    clips = synthetic_corpus()
    result = assign_splits(clips, seed=0)
    overall = Counter(c.label for c in clips)

    def gap(assign: dict[str, str]) -> float:
        worst = 0.0
        for s in set(assign.values()):
            members = [c for c in clips if assign[c.clip_id] == s]
            counts = Counter(c.label for c in members)
            for label in overall:
                worst = max(worst, abs(counts[label] / len(members) - overall[label] / len(clips)))
        return worst

    assert gap(result.splits) == pytest.approx(result.report.max_label_gap)
    assert result.report.max_label_gap < 0.08
    # Baseline: the same groups dealt to splits at random, with the same sizes targeted.
    groups = speaker_video_groups(clips)
    rng = random.Random(1)
    random_gaps = []
    for _ in range(20):
        order = list(range(len(groups)))
        rng.shuffle(order)
        assign, filled = {}, 0
        for g in order:
            s = "train" if filled < 0.7 * len(clips) else (
                "validation" if filled < 0.85 * len(clips) else "test")
            for i in groups[g]:
                assign[clips[i].clip_id] = s
            filled += len(groups[g])
        random_gaps.append(gap(assign))
    assert result.report.max_label_gap < sorted(random_gaps)[len(random_gaps) // 2]


def test_deterministic_by_seed():
    clips = synthetic_corpus()
    assert assign_splits(clips, seed=3).splits == assign_splits(clips, seed=3).splits
    variants = {tuple(assign_splits(clips, seed=s).splits.values()) for s in range(6)}
    assert len(variants) > 1  # the seed does break ties between equal groups


def test_too_few_groups_is_a_clear_error():
    clips = [clip("a", "A", "v1", "anger"), clip("b", "A", "v2", "sadness"),
             clip("c", "B", "v3", "anger")]
    with pytest.raises(SplitError, match=r"only 2 group\(s\).*2 speaker\(s\), 3 video\(s\)"):
        assign_splits(clips)
    # Two splits asked for: two groups are enough.
    result = assign_splits(clips, ratios={"train": 0.8, "test": 0.2})
    assert result.present() == ("train", "test")


def test_every_split_gets_a_group_even_when_one_group_dominates():
    clips = [clip(f"big{i}", "A", "v1", "anger") for i in range(50)]
    clips += [clip("x", "B", "v2", "anger"), clip("y", "C", "v3", "sadness")]
    result = assign_splits(clips)
    assert Counter(result.splits.values()) == {"train": 50, "validation": 1, "test": 1}


def test_corpus_splits_are_kept_and_must_be_complete():
    clips = [clip("a", "A", "v1", "anger", "train"), clip("b", "B", "v2", "anger", "test"),
             clip("c", "A", "v3", "sadness", "test")]
    result = assign_splits(clips)
    assert result.report.policy == POLICY_CORPUS
    assert result.splits == {"a": "train", "b": "test", "c": "test"}
    assert result.report.shared_speakers == ("A",)  # reported, not changed
    with pytest.raises(SplitError, match="empty split column: b"):
        assign_splits([clips[0], replace(clips[1], split=None)])
    with pytest.raises(SplitError, match="unknown split name"):
        assign_splits([replace(clips[0], split="dev")])


def test_bad_input():
    with pytest.raises(SplitError, match="no clips"):
        assign_splits([])
    with pytest.raises(SplitError, match="duplicate clip_id"):
        assign_splits([clip("a", "A", "v", "anger"), clip("a", "B", "w", "anger")])
    with pytest.raises(SplitError, match="unknown split name"):
        assign_splits([clip("a", "A", "v", "anger")], ratios={"dev": 1.0})
