"""The protocol: scoring from predictions (hand-checked), the sealed test split, robustness
conditions, the dataset fingerprint, tasks, and a small end-to-end run -> submit -> leaderboard."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from benchmarkdata import BUILD_INFO, CLASSES, tiny_built, toy_reference, toy_task
from click.testing import CliRunner

from benchmark.protocol import (
    DEFAULT_SEEDS,
    SealedSplit,
    StreamedRows,
    input_columns,
    load_run_config,
    run_benchmark,
)
from benchmark.robustness import BatchConditions, noise_scales
from benchmark.scoring import (
    ProtocolError,
    TestReference,
    check_coverage,
    dataset_fingerprint,
    robustness_conditions,
    score_predictions,
    score_seed,
)
from benchmark.tasks import (
    TASKS,
    Task,
    TaskError,
    get_task,
    list_tasks,
    register_task,
    task_names,
    unregister_task,
)

# ----------------------------------------------------------------------------- tasks


#: sha256 of every released task definition. Results files embed them: they never change (a
#: changed task is a new version), and each task's own record pins the same value.
RELEASED = {
    "sdme-sample-discrete@1": "a51b545acba8ba522ce1ce83c047565d6d1e814ad0cecea4cb849b7382acb7e9",
    "sdme-synth-discrete@1": "9ea62475d8b2007a2e3cc33193a44eb8fb6667e0aebb4c20a1e18ee31363ded6",
    "sdme-synth-structured@1": "6ff5c34ccededa11673f9f75dba3f5d0aae8df843b3798867dd46da75720abe4",
    "cmu-mosi@1": "3eeca0af98eb352ab8e74defb254eb8c5ab8b8ad25a7bd22d4648d09f0705949",
    "cmu-mosei@1": "5f7b18f2eb84e970a2c4c6223f648fc69de61a1f22fca8095001334710e14a43",
    "ch-sims@1": "d452081836eb3fecbcfb6339b3447abd0a606d44dc1076a6fecc307dbabd4557",
    "ch-sims-v2@1": "36dc8c55a6e046073cad74abb9cea2f4eab8b3c4de2a7619eff6d54ad0f8c3df",
    "ch-sims-v2-raw@1": "b452b908979fa13d361212f9ab2c33152d30a5ba8ec37599a6a0a9370319ef3e",
}


def test_builtin_tasks_match_their_released_definitions():
    registered = {entry.name: entry.obj for entry in TASKS.entries()}
    assert set(RELEASED) <= set(registered)
    for key, task in registered.items():
        assert task.key == key
        if task.released_sha256 is not None or key in RELEASED:
            assert task.definition_sha256() == task.released_sha256 == RELEASED.get(key), (
                f"{key} was edited in place: register a new version instead")


def test_task_lookup_and_suggestions():
    task = get_task("sdme-sample-discrete@1")
    assert task is get_task("sdme-sample-discrete")
    with pytest.raises(TaskError, match="Did you mean 'sdme-sample-discrete'"):
        get_task("sdme-sample-discrte")
    with pytest.raises(TaskError, match="has no version 7"):
        get_task("sdme-sample-discrete@7")


def test_latest_version_by_default():
    first = replace(get_task("sdme-sample-discrete"), name="toy-versions", released_sha256=None)
    second = replace(first, version=2, noise_levels=(0.0, 1.0))
    register_task(second)
    register_task(first)
    try:
        assert get_task("toy-versions") is second
        assert get_task("toy-versions@1") is first and get_task("toy-versions", 1) is first
        assert "toy-versions" in task_names()
        assert [t.version for t in list_tasks() if t.name == "toy-versions"] == [2]
        assert register_task(replace(first, description="reworded")) is first  # same definition
    finally:
        unregister_task("toy-versions")
    with pytest.raises(TaskError, match="unknown task 'toy-versions'"):
        get_task("toy-versions")


def test_a_changed_task_needs_a_new_version():
    task = get_task("sdme-sample-discrete")
    with pytest.raises(TaskError, match="needs a new version"):
        register_task(replace(task, main_score="macro_f1"))
    # editing a released record in place (its pin stays) is caught on lookup
    edited = replace(task, main_score="macro_f1")
    assert edited.released_sha256 == task.released_sha256
    TASKS.unregister(task.key)
    try:
        register_task(edited)
        with pytest.raises(TaskError, match="differs from its released definition"):
            get_task(task.name)
    finally:
        TASKS.unregister(task.key)
        register_task(task)
    assert get_task(task.name) is task
    # the description is cosmetic: it does not change the definition hash
    assert replace(task, description="x").definition_sha256() == task.definition_sha256()
    # nor is the pin part of the definition that results files embed
    assert "released_sha256" not in task.to_dict()


def test_task_validation():
    with pytest.raises(TaskError, match="main_score"):
        Task(name="t", version=1, dataset="d", description="", task_type="discrete",
             metrics=("accuracy",), main_score="macro_f1")
    with pytest.raises(TaskError, match="continuous_scale"):
        Task(name="t", version=1, dataset="d", description="", task_type="continuous",
             metrics=("mae",), main_score="mae")
    with pytest.raises(TaskError, match="noise_levels"):
        Task(name="t", version=1, dataset="d", description="", task_type="discrete",
             metrics=("accuracy",), main_score="accuracy", noise_levels=(0.5, 1.0))
    task = get_task("sdme-sample-discrete")
    assert Task.from_dict(task.to_dict()) == task


def test_default_seeds_are_five_distinct():
    assert len(DEFAULT_SEEDS) == 5 and len(set(DEFAULT_SEEDS)) == 5


# ----------------------------------------------------------------------------- scoring


def test_conditions():
    task = toy_task()
    names = robustness_conditions(task)
    assert names[:3] == ["drop:text", "drop:audio", "drop:vision"]
    assert "noise:text:0.5" in names and "noise:all:2.0" in names
    assert len(names) == 3 + 4 * 3  # drops + (3 modalities + all) x 3 noisy levels


def _reference() -> TestReference:
    columns = {
        "clip_id": ["a", "b", "c", "d", "e", "f"],
        "label": [0, 1, 2, 3, 0, 1],
        "label_text": ["happiness", "happiness", "sadness", "neutral", "neutral", "happiness"],
        "label_audio": ["neutral", "happiness", "sadness", "sadness", "neutral", "happiness"],
        "label_vision": ["neutral", "happiness", "sadness", "anger", "neutral", None],
        "deviation": [1, 0, 0, 2, 0, 0],
    }
    return TestReference.from_columns(columns, toy_task(), CLASSES)


def _predict_k(ref: TestReference, k: int) -> list[int]:
    """Correct on the first k clips, wrong on the rest."""
    return [int(y) if i < k else int((y + 1) % 4) for i, y in enumerate(ref.labels)]


def _records(ref: TestReference, seed: int = 0) -> dict:
    task = toy_task()
    clean = [0, 1, 0, 3, 1, 1]  # correct: a b d f -> 4/6
    irrelevant = {("a", "text"): 0.1, ("d", "text"): 0.2, ("d", "audio"): 0.3}
    records = {}
    for i, clip in enumerate(ref.ids):
        relevance = {m: irrelevant.get((clip, m), 0.5) for m in ("text", "audio", "vision")}
        if clip == "b":
            relevance["text"] = 0.15
        conditions = {c: _predict_k(ref, 6)[i] for c in robustness_conditions(task)}
        conditions["drop:text"] = 0
        for level, k in (("0.5", 4), ("1.0", 3), ("2.0", 1)):
            conditions[f"noise:text:{level}"] = _predict_k(ref, k)[i]
        records[clip] = {"seed": seed, "clip_id": clip, "prediction": clean[i],
                         "relevance": relevance, "conditions": conditions}
    return records


def test_reference_relevance_targets():
    ref = _reference()
    assert ref.relevant["text"] == (False, True, True, False, True, True)
    assert ref.relevant["vision"][5] is None
    assert [ref.deviating_group(i, ("text", "audio", "vision")) for i in range(6)] == [
        "text", "none", "none", "text+audio", "none", "none"]


def test_score_seed_hand_checked():
    ref = _reference()
    result = score_seed(toy_task(), ref, _records(ref), seed=0)
    assert result.metrics["accuracy"] == pytest.approx(4 / 6)
    strat = result.stratified
    assert {k: (v.n, v.accuracy) for k, v in strat.by_deviation.items()} == {
        "0": (4, 0.5), "1": (1, 1.0), "2": (1, 1.0)}
    assert list(strat.by_deviating_modalities) == ["none", "text", "text+audio"]
    assert strat.by_deviating_modalities["none"].accuracy == 0.5
    # 17 annotated (clip, modality) pairs, 3 irrelevant (0.1, 0.2, 0.3); 13 relevant at 0.5
    # beat all three, the one at 0.15 beats only 0.1: (39 + 1) / (14 * 3)
    assert result.relevance_auroc == pytest.approx(40 / 42)
    rob = result.robustness
    assert rob.metric == "accuracy" and rob.levels == [0.0, 0.5, 1.0, 2.0]
    assert rob.clean == pytest.approx(4 / 6)
    assert rob.drop["text"] == pytest.approx(2 / 6)  # predicting class 0 everywhere: a and e
    assert rob.drop["audio"] == 1.0
    assert rob.noise["text"] == pytest.approx([4 / 6, 4 / 6, 3 / 6, 1 / 6])
    assert rob.relative["text"] == pytest.approx(23 / 48)
    assert rob.relative["all"] == pytest.approx(23 / 24)


def test_unannotated_data_has_no_relevance_reports():
    columns = {"clip_id": ["a", "b"], "label": [0, 1]}
    ref = TestReference.from_columns(columns, toy_task(), CLASSES)
    records = {c: {"seed": 0, "clip_id": c, "prediction": 0, "relevance": {"text": 1.0},
                   "conditions": {n: 0 for n in robustness_conditions(toy_task())}}
               for c in ("a", "b")}
    result = score_seed(toy_task(), ref, records, seed=0)
    assert result.stratified is None and result.relevance_auroc is None


def test_aggregate_over_seeds():
    ref = _reference()
    records = {0: _records(ref, 0), 1: _records(ref, 1)}
    for clip in ref.ids:  # seed 1 predicts everything right
        records[1][clip]["prediction"] = int(ref.labels[ref.ids.index(clip)])
    per_seed, aggregate = score_predictions(toy_task(), ref, records, [0, 1])
    assert [s.metrics["accuracy"] for s in per_seed] == pytest.approx([4 / 6, 1.0])
    assert aggregate.metrics["accuracy"].mean == pytest.approx(5 / 6)
    assert aggregate.metrics["accuracy"].n == 2
    assert aggregate.stratified.by_deviation["0"].mean == pytest.approx(0.75)
    # seed 1's text curve starts at its clean 1.0: [1, 4/6, 3/6, 1/6] -> 25/48; mean with 23/48
    assert aggregate.robustness.relative["text"].mean == pytest.approx(24 / 48)


def test_coverage_is_checked():
    ref = _reference()
    task = toy_task()
    records = {0: _records(ref)}
    check_coverage(task, ref, records, [0])
    with pytest.raises(ProtocolError, match="seeds"):
        check_coverage(task, ref, records, [0, 1])
    missing = {0: {k: v for k, v in records[0].items() if k != "c"}}
    with pytest.raises(ProtocolError, match=r"1 test clip\(s\) have no prediction, e.g. \['c'\]"):
        check_coverage(task, ref, missing, [0])
    extra = {0: {**records[0], "zz": {**records[0]["a"], "clip_id": "zz"}}}
    with pytest.raises(ProtocolError, match="not in the test split"):
        check_coverage(task, ref, extra, [0])
    del records[0]["a"]["conditions"]["noise:all:1.0"]
    with pytest.raises(ProtocolError, match="conditions missing"):
        check_coverage(task, ref, records, [0])


def test_reference_reads_modality_labels_as_names_or_class_indices():
    """Integer ClassLabel indices in label_<m> mean the same as class names (they were once
    compared with names and scored as 'every modality deviates')."""
    by_name = _reference()
    columns = {"clip_id": ["a", "b", "c", "d", "e", "f"], "label": [0, 1, 2, 3, 0, 1],
               "label_text": [1, 1, 2, 0, 0, 1], "label_audio": [0, 1, 2, 2, 0, 1],
               "label_vision": [0, 1, 2, 3, 0, -1]}
    by_index = TestReference.from_columns(columns, toy_task(), CLASSES)
    assert by_index.relevant == by_name.relevant
    for bad, message in ((7, "class index 7 is outside the taxonomy of 4 classes"),
                         ("joy", "'joy' is not a class of the taxonomy"),
                         (1.5, "1.5 is neither a class name nor a class index"),
                         (float("inf"), "inf is neither a class name nor a class index")):
        wrong = dict(columns, label_text=[bad, 1, 2, 0, 0, 1])
        with pytest.raises(ProtocolError, match=f"label_text: {message}"):
            TestReference.from_columns(wrong, toy_task(), CLASSES)


def test_modality_labels_reach_training_but_not_the_test_split():
    columns = ["clip_id", "label", "label_text", "relevance_text", "text_feat", "text_len",
               "audio_feat", "audio_len", "vision_feat", "vision_len", "label_audio"]
    train = input_columns(columns, toy_task(), with_targets=True)
    assert {"label", "label_text", "label_audio", "relevance_text"} <= set(train)
    test = input_columns(columns, toy_task(), with_targets=False)
    assert not [c for c in test if c.startswith(("label", "relevance"))]


def test_reference_errors():
    with pytest.raises(ProtocolError, match="duplicate clip ids"):
        TestReference.from_columns({"clip_id": ["a", "a"], "label": [0, 1]}, toy_task(), CLASSES)
    with pytest.raises(ProtocolError, match="without a label"):
        TestReference.from_columns({"clip_id": ["a"], "label": [None]}, toy_task(), CLASSES)
    with pytest.raises(ProtocolError, match="no 'label' column"):
        TestReference.from_columns({"clip_id": ["a"]}, toy_task(), CLASSES)


# ----------------------------------------------------------------------------- fingerprint


def test_fingerprint_identifies_labels_and_provenance():
    ref = toy_reference()
    base = dataset_fingerprint(ref, BUILD_INFO)
    assert len(base) == 64
    order = list(reversed(range(len(ref.ids))))
    shuffled = replace(ref, ids=tuple(ref.ids[i] for i in order), labels=ref.labels[order])
    assert dataset_fingerprint(shuffled, BUILD_INFO) == base  # row order does not matter
    relabelled = replace(ref, labels=np.where(np.arange(len(ref.ids)) == 0,
                                              (ref.labels + 1) % 4, ref.labels))
    assert dataset_fingerprint(relabelled, BUILD_INFO) != base
    other_source = json.loads(json.dumps(BUILD_INFO))
    other_source["source"]["fingerprint"] = "e" * 64
    assert dataset_fingerprint(ref, other_source) != base
    other_extractor = json.loads(json.dumps(BUILD_INFO))
    other_extractor["extractors"]["audio"]["version"] = "2"
    assert dataset_fingerprint(ref, other_extractor) != base
    with pytest.raises(ProtocolError, match="build_info.json lacks"):
        dataset_fingerprint(ref, {"source": {}})


# ----------------------------------------------------------------------------- the test split


def test_sealed_split_opens_once_per_seed_after_fit():
    from baselines.train import FitResult

    sealed = SealedSplit(["test rows"])
    with pytest.raises(ProtocolError, match="only be opened after fit"):
        sealed.open(0, None)
    done = FitResult(best_epoch=0, best_score=0.5, select_metric="accuracy", history=[{}])
    assert sealed.open(0, done) == ["test rows"]
    with pytest.raises(ProtocolError, match="already evaluated"):
        sealed.open(0, done)
    assert sealed.open(1, done) == ["test rows"]
    assert sealed.opened == {0, 1}


# ----------------------------------------------------------------------------- conditions


def _rows(n: int = 3) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"clip_id": f"r{i}", "text_feat": rng.standard_normal((40 + i, 30)).astype(np.float32),
             "audio_feat": np.ones((3 - i % 2, 2), np.float32)} for i in range(n)]


DIMS_TA = {"text": 30, "audio": 2}


def _conditioned(rows: list[dict], conditions: list[str], scales: dict, seed: int,
                 batch_size: int) -> dict[str, list]:
    """Condition -> the batches it gave, for ``rows`` collated ``batch_size`` at a time."""
    from baselines.data import collate

    apply = BatchConditions(conditions, scales, seed, ["text", "audio"])
    out: dict[str, list] = {}
    for start in range(0, len(rows), batch_size):
        batch = collate(rows[start:start + batch_size], input_dims=DIMS_TA)
        for name, variant in apply(batch):
            out.setdefault(name, []).append(variant)
    return out


def test_drop_condition_is_the_batch_without_the_modality():
    from baselines.data import collate

    rows = _rows()
    out = _conditioned(rows, ["drop:text"], {"text": 1.0, "audio": 1.0}, seed=0,
                       batch_size=3)
    clean, dropped = out[""][0], out["drop:text"][0]
    # exactly what collate makes of the same rows without text (what v1 gave)
    expected = collate([{**r, "text_feat": None} for r in rows], input_dims=DIMS_TA)
    for m in ("text", "audio"):
        assert torch.equal(dropped.features[m], expected.features[m])
        assert torch.equal(dropped.masks[m], expected.masks[m])
    assert dropped.features["text"].shape == (3, 1, 30) and not dropped.masks["text"].any()
    assert clean.features["text"].shape == (3, 42, 30)  # the clean batch is left as it was
    assert dropped.ids == clean.ids


def test_noise_conditions_follow_the_definition():
    rows = _rows()
    scales = {"text": 2.0, "audio": 0.5}
    conditions = ["noise:text:0.5", "noise:text:1.0", "noise:all:0.5"]
    out = _conditioned(rows, conditions, scales, seed=3, batch_size=3)
    clean = out[""][0]
    mask = clean.masks["text"]
    half = out["noise:text:0.5"][0].features["text"] - clean.features["text"]
    # noise on every real step, of standard deviation level * s_m; padded steps stay zero
    assert half[~mask].abs().max() == 0 and (half[mask] != 0).all()
    assert float(half[mask].std()) == pytest.approx(0.5 * 2.0, rel=0.05)  # 3630 draws
    assert torch.equal(out["noise:text:0.5"][0].features["audio"], clean.features["audio"])
    # one draw per batch, shared by the levels and the all curve (common random numbers)
    one = out["noise:text:1.0"][0].features["text"] - clean.features["text"]
    assert torch.allclose(one, 2 * half, atol=1e-5)
    everything = out["noise:all:0.5"][0]
    assert torch.allclose(everything.features["text"] - clean.features["text"], half, atol=1e-6)
    audio_noise = everything.features["audio"] - clean.features["audio"]
    assert (audio_noise[clean.masks["audio"]] != 0).all()
    assert audio_noise[~clean.masks["audio"]].abs().max() == 0

    # a clip's noise depends on the seed and its place in the split, not on the batching
    small = _conditioned(rows, conditions, scales, seed=3, batch_size=2)
    for i in range(3):
        batch = small["noise:text:0.5"][i // 2]
        steps = rows[i]["text_feat"].shape[0]
        assert torch.allclose(batch.features["text"][i % 2, :steps],
                              out["noise:text:0.5"][0].features["text"][i, :steps])
    other = _conditioned(rows, conditions, scales, seed=4, batch_size=3)
    assert not torch.equal(other["noise:text:0.5"][0].features["text"],
                           out["noise:text:0.5"][0].features["text"])
    with pytest.raises(ProtocolError, match="unknown robustness condition"):
        BatchConditions(["blur:text"], scales, 0, ["text", "audio"])
    with pytest.raises(ProtocolError, match="unknown robustness condition"):
        BatchConditions(["noise:text:loud"], scales, 0, ["text", "audio"])
    with pytest.raises(ProtocolError, match="no noise scale"):
        BatchConditions(["noise:all:1.0"], {"text": 1.0}, 0, ["text", "audio"])


def test_noise_scales_from_recorded_moments():
    from sdme.built import FeatureStats

    stats = {"text": FeatureStats(values=6, mean=2.0, std=1.0),
             "audio": FeatureStats(values=4, mean=1.0, std=0.0)}
    assert noise_scales(stats, ["text", "audio"]) == {"text": 1.0, "audio": 1.0}
    stats["text"] = FeatureStats(values=6, mean=2.0, std=0.25)
    assert noise_scales(stats, ["text"]) == {"text": 0.25}
    with pytest.raises(ProtocolError, match="no feature values"):
        noise_scales({"text": FeatureStats(values=0, mean=0.0, std=0.0)}, ["text"])


def test_run_config(tmp_path):
    assert load_run_config(None) == {"train": {}, "model": {}}
    path = tmp_path / "c.yaml"
    path.write_text("train: {epochs: 2}\nmodel: {hidden: 16}\n")
    assert load_run_config(path) == {"train": {"epochs": 2}, "model": {"hidden": 16}}
    path.write_text("trainer: {epochs: 2}\n")
    with pytest.raises(ValueError, match=r"c.yaml: unknown section\(s\) \['trainer'\]"):
        load_run_config(path)
    path.write_text("- 1\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_run_config(path)


def test_protocol_settings_cannot_be_overridden():
    with pytest.raises(ProtocolError, match="train.seed is set by the protocol"):
        run_benchmark("late_fusion", config={"train": {"seed": 3}})
    with pytest.raises(ProtocolError, match="model.num_classes comes from the dataset"):
        run_benchmark("late_fusion", config={"model": {"num_classes": 3}})
    with pytest.raises(ProtocolError, match="distinct"):
        run_benchmark("late_fusion", seeds=[1, 1])


def test_missing_dataset_says_how_to_build(tmp_path):
    from benchmark.__main__ import main

    result = CliRunner().invoke(main, ["run", "--model", "mren", "--task",
                                       "sdme-sample-discrete", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert (f"make it with `sdme download sample --data-dir {tmp_path} && sdme build sample "
            f"--data-dir {tmp_path}`") in result.output


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_run_submit_leaderboard_end_to_end(tmp_path, monkeypatch):
    """A real (tiny) build, 2 seeds x 2 epochs of mren, then submit and leaderboard; every
    split is read from the parquet in place (no ``datasets`` Arrow cache copy is made)."""
    import datasets

    import baselines.train as trainer
    from benchmark.__main__ import main
    from benchmark.results import load_results, read_predictions

    built = tiny_built(tmp_path)
    test_ids = set(datasets_ids(built, "test", tmp_path / "reference-cache"))
    events: list[tuple] = []
    real_fit, real_predict = trainer.fit, trainer.predict_variants

    def spy_fit(model, train_data, val_data, config=None, model_name=None, **kwargs):
        # train and validation are streamed from parquet (bounded memory), not the mapped table
        assert isinstance(train_data, StreamedRows) and isinstance(val_data, StreamedRows)
        seen = {r["clip_id"] for r in train_data} | {r["clip_id"] for r in val_data}
        assert not seen & test_ids, "the test split reached fit()"
        events.append(("fit_start", config.seed))
        result = real_fit(model, train_data, val_data, config, model_name, **kwargs)
        events.append(("fit_end", config.seed))
        return result

    def spy_predict(model, data, config, variants):
        out = real_predict(model, data, config, variants)
        events.append(("predict", config.seed, set(out[""].ids) <= test_ids and bool(out[""].ids),
                       sorted(out)))
        return out

    def no_copy(*args, **kwargs):
        raise AssertionError("the benchmark made a datasets Arrow copy of the dataset")

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets, "load_dataset", no_copy)
    monkeypatch.setattr(datasets.Dataset, "from_parquet", no_copy)
    monkeypatch.setattr(trainer, "fit", spy_fit)
    monkeypatch.setattr(trainer, "predict_variants", spy_predict)
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--model", "mren", "--task", "sdme-sample-discrete",
                                  "--seeds", "0,1", "--epochs", "2", "--device", "cpu",
                                  "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    # the leaderboard's own table, for this one results file
    mean = load_results(tmp_path / "results" / "mren" / "sdme-sample-discrete.json"
                        ).aggregate.metrics["accuracy"].mean
    assert f"| 1 | mren | {mean:.4f} ± " in result.output

    # the test split was predicted only after each seed's fit returned, once per seed, with
    # every condition made from the same batches
    for i, event in enumerate(events):
        if event[0] == "predict" and event[2]:
            last_fit = [e for e in events[:i] if e[0] in ("fit_start", "fit_end")][-1]
            assert last_fit == ("fit_end", event[1])
    test_passes = [e for e in events if e[0] == "predict" and e[2]]
    assert [e[1] for e in test_passes] == [0, 1]
    assert all(e[3] == sorted(["", *robustness_conditions(toy_task())]) for e in test_passes)

    results_file = tmp_path / "results" / "mren" / "sdme-sample-discrete.json"
    results = load_results(results_file)
    assert results.seeds == [0, 1]
    assert [s.selection.epochs_run for s in results.per_seed] == [2, 2]
    assert results.aggregate.relevance_auroc is not None  # mren estimates relevance
    assert results.dataset.splits["test"] == len(test_ids)
    records = read_predictions(results_file.with_name("sdme-sample-discrete.predictions.jsonl"),
                               discrete=True)
    assert {s: set(v) for s, v in records.items()} == {0: test_ids, 1: test_ids}

    # each seed's selected model is kept as a Hugging Face-format checkpoint that predicts the
    # test clips as the run did, and knows its task and the dataset's extractors
    from baselines import EmotionModel
    from benchmark.protocol import checkpoint_dir
    from sdme.loading import ParquetRows

    test_rows = list(ParquetRows(built, "test", shuffle=False))
    for seed in (0, 1):
        folder = checkpoint_dir(tmp_path / "results", "mren", "sdme-sample-discrete", seed)
        assert folder == results_file.parent / "sdme-sample-discrete.checkpoints" / f"seed-{seed}"
        model = EmotionModel.from_pretrained(folder)
        assert model.fit_summary["epoch"] == results.per_seed[seed].selection.best_epoch
        info = model.task_info
        assert info.name == "sdme-sample-discrete@1" and info.class_names == list(CLASSES)
        assert info.dataset.fingerprint == results.dataset.fingerprint
        assert {m: e.name for m, e in info.dataset.extractors.items()} == {
            "text": "double", "audio": "double", "vision": "double"}
        again = real_predict(model, test_rows, None, lambda batch: [("", batch)])[""]
        assert {cid: int(p) for cid, p in zip(again.ids, again.predicted(), strict=True)} == {
            cid: r["prediction"] for cid, r in records[seed].items()}

    result = runner.invoke(main, ["submit", str(results_file), "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "accepted: mren on sdme-sample-discrete" in result.output
    assert not cache.exists(), "an Arrow cache copy was written"
    result = runner.invoke(main, ["leaderboard", "--no-reference", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "leaderboard" / "index.md").read_text()
    mean = results.aggregate.metrics["accuracy"].mean
    assert f"| 1 | mren | {mean:.4f} ± " in markdown
    result = runner.invoke(main, ["export", str(results_file)])
    assert result.exit_code == 0, result.output
    assert (results_file.parent / ".eval_results" / "sdme-sample-discrete.yaml").is_file()


def datasets_ids(built, split: str, cache_dir=None) -> list[str]:
    from sdme.loading import load_dataset

    return list(load_dataset(built, split=split, cache_dir=cache_dir)["clip_id"])


def test_continuous_task_scoring():
    task = Task(name="toy-continuous", version=1, dataset="toy", description="",
                task_type="continuous", continuous_scale="mosi",
                metrics=("mae", "corr", "acc2_has0", "acc2_non0", "acc7"), main_score="mae",
                robustness_metric="acc2_has0", modalities=("text", "audio"))
    labels = [-2.0, -0.4, 0.0, 0.6, 2.6, 1.5]
    columns = {"clip_id": list("abcdef"), "label": labels,
               "relevance_text": [1.0, 0.2, None, 0.9, 0.5, 0.0],
               "relevance_audio": [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]}
    ref = TestReference.from_columns(columns, task, None)
    assert ref.relevant["text"] == (True, False, None, True, True, False)  # relevance >= 0.5
    assert ref.deviating_group(5, task.modalities) == "text"
    predictions = [-1.0, 0.2, -0.3, 0.4, 3.4, -0.5]
    weights = {"a": (0.9, 0.1), "b": (0.3, 0.7), "c": (0.5, 0.5), "d": (0.6, 0.4),
               "e": (0.7, 0.3), "f": (0.2, 0.8)}
    records = {}
    for clip, y in zip("abcdef", predictions, strict=True):
        records[clip] = {"seed": 0, "clip_id": clip, "prediction": y,
                         "relevance": dict(zip(("text", "audio"), weights[clip], strict=True)),
                         "conditions": {c: y for c in robustness_conditions(task)}}
    result = score_seed(task, ref, records, seed=0)
    # the hand-computed values of tests/test_metrics.py (same labels and predictions)
    corr = float(np.corrcoef(predictions, labels)[0, 1])
    assert result.metrics == pytest.approx({"mae": 4.9 / 6, "corr": corr, "acc2_has0": 3 / 6,
                                            "acc2_non0": 3 / 5, "acc7": 3 / 6})
    assert result.per_class_f1 is None and result.confusion_matrix is None
    assert result.robustness.metric == "acc2_has0"
    assert result.robustness.clean == pytest.approx(0.5)
    # pairs: text (a .9 T, b .3 F, d .6 T, e .7 T, f .2 F), audio (a .1 F, b..f T: .7 .5 .4 .3 .8)
    # relevant {.9 .6 .7 .7 .5 .4 .3 .8} vs irrelevant {.3 .2 .1}: each relevant weight beats
    # all three, except .3 (beats .2 and .1, ties .3: 2.5) -> (7 * 3 + 2.5) / (8 * 3)
    assert result.relevance_auroc == pytest.approx(23.5 / 24)
