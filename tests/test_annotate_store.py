"""Assignment rules and figures of ``sdme annotate``, on the real SQLite store in-process."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter, defaultdict

import pytest

from sdme.annotate import AnnotateError
from sdme.annotate.dashboard import summarize
from sdme.annotate.store import AnnotateSettings, Store, VoteError
from sdme.relevance import fleiss_kappa, majority_label

TAXONOMY = ("neutral", "happiness", "sadness", "anger")
MODALITIES = ("text", "audio", "vision")


def make_store(tmp_path, n_clips: int, **settings) -> Store:
    store = Store(tmp_path / "annotate.sqlite3")
    store.save_settings(AnnotateSettings(**settings))
    store.sync_items([(f"c{i}", m, TAXONOMY[i % len(TAXONOMY)])
                      for i in range(n_clips) for m in MODALITIES])
    return store


def people(store: Store, n: int) -> list[int]:
    return [store.authenticate(store.add_person(f"p{i}")).id for i in range(n)]


def test_k_votes_per_item_and_one_modality_per_clip(tmp_path):
    k, n_clips = 2, 3
    store = make_store(tmp_path, n_clips, votes_per_item=k)
    ids = people(store, 3 * k)  # just enough: each clip needs k annotators per modality
    rng = random.Random(0)
    shown = defaultdict(set)
    for _ in range(n_clips * 3 * k):
        who = rng.choice(ids)
        item = store.next_item(who)
        if item is None:
            continue
        shown[(who, item.clip_id)].add(item.modality)
        if rng.random() < 0.1:
            store.skip(who, item.id)
        else:
            store.vote(who, item.id, rng.choice(TAXONOMY), TAXONOMY)
    for who in ids:  # everyone finishes what is left for them
        while (item := store.next_item(who)) is not None:
            shown[(who, item.clip_id)].add(item.modality)
            store.vote(who, item.id, TAXONOMY[0], TAXONOMY)
    assert all(len(m) == 1 for m in shown.values())
    per_item = Counter((v.clip_id, v.modality) for v in store.votes())
    assert max(per_item.values()) <= k
    skipped = sum(p["skipped"] for p in store.people())
    assert sum(per_item.values()) == n_clips * 3 * k - skipped
    for who in ids:
        assert store.progress(who)["remaining"] == 0


def test_isolation_is_a_database_constraint(tmp_path):
    store = make_store(tmp_path, 1)
    (me,) = people(store, 1)
    item = store.next_item(me)
    with sqlite3.connect(store.path) as db:
        other = db.execute("SELECT id FROM items WHERE clip_id = 'c0' AND modality != ?",
                           (item.modality,)).fetchone()[0]
        with pytest.raises(sqlite3.IntegrityError, match="isolation"):
            db.execute("INSERT INTO votes (annotator_id, item_id, label, created_at) "
                       "VALUES (?, ?, 'neutral', 0)", (me, other))
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO exposures VALUES (?, 'c0', ?)", (me, "vision"
                       if item.modality != "vision" else "text"))


def test_votes_refused_when_they_break_the_rules(tmp_path):
    store = make_store(tmp_path, 1, votes_per_item=1, lease_seconds=60, modalities=("audio",))
    a, b = people(store, 2)
    item = store.next_item(a, now=0)
    with pytest.raises(VoteError) as bad:
        store.vote(a, item.id, "joy", TAXONOMY, now=1)
    assert bad.value.status == 422
    with pytest.raises(VoteError) as other:
        store.vote(b, item.id, "neutral", TAXONOMY, now=1)
    assert other.value.status == 404  # someone else's item is not found, not forbidden
    # a's lease lapses; b gets the same item and answers first; a's late answer is refused.
    late = store.next_item(b, now=100)
    assert (late.clip_id, late.modality) == (item.clip_id, item.modality)
    assert store.vote(b, late.id, "anger", TAXONOMY, now=101) is False
    with pytest.raises(VoteError) as gone:
        store.vote(a, item.id, "neutral", TAXONOMY, now=102)
    assert gone.value.status == 410
    assert store.vote(b, late.id, "anger", TAXONOMY, now=103) is True  # a retry: acknowledged
    with pytest.raises(VoteError) as changed:
        store.vote(b, late.id, "sadness", TAXONOMY, now=104)
    assert changed.value.status == 409
    assert [v.label for v in store.votes()] == ["anger"]


def test_repeats_measure_consistency_and_are_not_counted_as_votes(tmp_path):
    store = make_store(tmp_path, 4, votes_per_item=3, gold_every=2)
    (me,) = people(store, 1)
    answers, served = {}, []
    for step in range(6):
        item = store.next_item(me)
        key = (item.clip_id, item.modality)
        served.append((key, item.repeat))
        label = TAXONOMY[step % 2] if item.repeat else TAXONOMY[len(answers) % 3]
        answers.setdefault(key, label)
        store.vote(me, item.id, label, TAXONOMY)
    repeats = [key for key, repeat in served if repeat]
    assert [repeat for _, repeat in served] == [False, False, True, False, False, True]
    assert all(key in answers for key in repeats)  # an earlier item of this annotator
    assert len({key[0] for key, _ in served}) == 4  # still one modality per clip
    votes = store.votes()
    assert Counter(v.repeat for v in votes) == {False: 4, True: 2}
    summary = summarize(votes, store.items(), store.people(), store.settings(), TAXONOMY)
    expected = [v.label == answers[(v.clip_id, v.modality)] for v in votes if v.repeat]
    (row,) = summary["annotators"]
    assert row["repeats"] == 2 and row["consistency"] == sum(expected) / 2
    assert sum(m["votes"] for m in summary["modalities"].values()) == 4


def test_dashboard_kappa_and_agreement_use_the_project_definitions(tmp_path):
    store = make_store(tmp_path, 4, votes_per_item=3, modalities=("audio",))
    ids = people(store, 3)
    plan = {"c0": ["neutral", "neutral", "happiness"], "c1": ["sadness", "sadness", "sadness"],
            "c2": ["anger", "neutral", "anger"], "c3": ["happiness", "happiness", "happiness"]}
    given: dict[tuple[int, str], str] = {}
    for who_index, who in enumerate(ids):
        while (item := store.next_item(who)) is not None:
            label = plan[item.clip_id][who_index]
            given[(who, item.clip_id)] = label
            store.vote(who, item.id, label, TAXONOMY)
    summary = summarize(store.votes(), store.items(), store.people(), store.settings(),
                        TAXONOMY, store.open_leases())
    audio = summary["modalities"]["audio"]
    assert audio["complete"] == 4 and audio["votes"] == 12
    assert audio["kappa"] == round(fleiss_kappa(list(plan.values()), TAXONOMY), 4)
    labels = {c: y for c, _, y in store.items()}
    for who_index, (who, row) in enumerate(zip(ids, summary["annotators"], strict=True)):
        hits = [given[(who, c)] == majority_label([x for j, x in enumerate(votes)
                                                   if j != who_index], labels[c], TAXONOMY)
                for c, votes in plan.items()]
        assert row["agreement"] == round(sum(hits) / len(hits), 4)
    assert summary["annotators_needed"] == 3 and summary["progress"] == 1.0


def test_names_tokens_and_settings_are_checked(tmp_path):
    store = make_store(tmp_path, 1)
    token = store.add_person("ana")
    with pytest.raises(AnnotateError, match="exists"):
        store.add_person("ana")
    with pytest.raises(AnnotateError, match="name"):
        store.add_person("labelstudio:1")
    new = store.add_person("ana", rotate=True)
    assert store.authenticate(token) is None and store.authenticate(new).name == "ana"
    store.revoke("ana")
    assert store.authenticate(new) is None
    with sqlite3.connect(store.path) as db:  # only digests are stored
        stored = [r[0] for r in db.execute("SELECT token_hash FROM annotators")]
    assert new not in stored and token not in stored
    with pytest.raises(AnnotateError, match="votes_per_item"):
        store.settings(votes_per_item=0)
    with pytest.raises(AnnotateError, match="modalities"):
        store.settings(modalities=["smell"])
