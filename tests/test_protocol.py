"""The protocol: scoring from predictions (hand-checked), the sealed test split, robustness
conditions, the dataset fingerprint, tasks, and a small end-to-end run -> submit -> leaderboard."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from benchmarkdata import BUILD_INFO, CLASSES, tiny_built, toy_reference, toy_task
from click.testing import CliRunner

from benchmark.protocol import (
    DEFAULT_SEEDS,
    ConditionedRows,
    ProtocolError,
    SealedSplit,
    StreamedRows,
    TestReference,
    check_coverage,
    dataset_fingerprint,
    feature_scales,
    input_columns,
    load_run_config,
    robustness_conditions,
    run_benchmark,
    score_predictions,
    score_seed,
)
from benchmark.tasks import FROZEN, Task, TaskError, get_task, list_tasks, register_task

# ----------------------------------------------------------------------------- tasks


def test_builtin_tasks_match_their_frozen_definitions():
    for task in list_tasks():
        assert FROZEN[task.key] == task.definition_sha256(), (
            f"{task.key} was edited in place: register a new version instead")


def test_task_lookup_and_suggestions():
    task = get_task("sdme-sample-discrete@1")
    assert task is get_task("sdme-sample-discrete")
    with pytest.raises(TaskError, match="Did you mean 'sdme-sample-discrete'"):
        get_task("sdme-sample-discrte")
    with pytest.raises(TaskError, match="has no version 7"):
        get_task("sdme-sample-discrete@7")


def test_a_changed_task_needs_a_new_version(monkeypatch):
    task = get_task("sdme-sample-discrete")
    with pytest.raises(TaskError, match="needs a new version"):
        register_task(replace(task, main_score="macro_f1"))
    # editing a released definition in place is caught on lookup
    from benchmark import tasks

    monkeypatch.setitem(tasks._REGISTRY, task.name, {1: replace(task, main_score="macro_f1")})
    with pytest.raises(TaskError, match="differs from its released definition"):
        get_task(task.name)
    # the description is cosmetic: it does not change the definition hash
    assert replace(task, description="x").definition_sha256() == task.definition_sha256()


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
                         (1.5, "1.5 is neither a class name nor a class index")):
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


def _rows() -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"clip_id": f"r{i}", "text_feat": rng.standard_normal((50, 40)).astype(np.float32),
             "text_len": 50, "audio_feat": np.ones((3, 2), np.float32), "audio_len": 3}
            for i in range(3)]


def test_drop_condition():
    rows = _rows()
    view = ConditionedRows(rows, "drop:text", {"text": 1.0, "audio": 1.0}, seed=0,
                           condition_index=1)
    row = view[0]
    assert row["text_feat"] is None and row["text_len"] == 0
    assert np.array_equal(row["audio_feat"], rows[0]["audio_feat"])
    assert rows[0]["text_feat"] is not None  # the source rows are not modified
    assert len(view) == 3


def test_noise_condition_scale_and_determinism():
    rows = _rows()
    scales = {"text": 2.0, "audio": 1.0}
    view = ConditionedRows(rows, "noise:text:0.5", scales, seed=3, condition_index=4)
    noisy = view[1]
    noise = noisy["text_feat"] - rows[1]["text_feat"]
    assert noise.std() == pytest.approx(0.5 * 2.0, rel=0.05)  # 2000 draws
    assert np.array_equal(noisy["audio_feat"], rows[1]["audio_feat"])
    assert np.array_equal(view[1]["text_feat"], noisy["text_feat"])  # reproducible
    other = ConditionedRows(rows, "noise:text:0.5", scales, seed=4, condition_index=4)[1]
    assert not np.array_equal(other["text_feat"], noisy["text_feat"])
    both = ConditionedRows(rows, "noise:all:1.0", scales, seed=3, condition_index=5)[0]
    assert not np.array_equal(both["audio_feat"], rows[0]["audio_feat"])
    with pytest.raises(ProtocolError, match="unknown robustness condition"):
        ConditionedRows(rows, "blur:text", scales, seed=0, condition_index=1)


def test_feature_scales_on_a_dataset():
    import datasets

    features = datasets.Features({"text_feat": datasets.Array2D((None, 2), "float32")})
    data = datasets.Dataset.from_dict(
        {"text_feat": [np.array([[1, 3], [1, 3]], np.float32), np.zeros((0, 2), np.float32),
                       np.array([[1, 3]], np.float32)]}, features=features)
    assert feature_scales(data, ["text"]) == pytest.approx({"text": 1.0})  # values 1,3,1,3,1,3
    with pytest.raises(ProtocolError, match="no feature values"):
        feature_scales(data.select([1]), ["text"])


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

    result = CliRunner().invoke(main, ["run", "--model", "mren", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert (f"make it with `sdme download --data-dir {tmp_path} && sdme build --data-dir "
            f"{tmp_path}`") in result.output


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_run_submit_leaderboard_end_to_end(tmp_path, monkeypatch):
    """A real (tiny) build, 2 seeds x 2 epochs of mren, then submit and leaderboard."""
    import baselines.train as trainer
    from benchmark.__main__ import main
    from benchmark.results import load_results, read_predictions

    built = tiny_built(tmp_path)
    test_ids = set(datasets_ids(built, "test"))
    events: list[tuple] = []
    real_fit, real_predict = trainer.fit, trainer.predict

    def spy_fit(model, train_data, val_data, config=None, model_name=None):
        # train and validation are streamed from parquet (bounded memory), not the mapped table
        assert isinstance(train_data, StreamedRows) and isinstance(val_data, StreamedRows)
        seen = {r["clip_id"] for r in train_data} | {r["clip_id"] for r in val_data}
        assert not seen & test_ids, "the test split reached fit()"
        events.append(("fit_start", config.seed))
        result = real_fit(model, train_data, val_data, config, model_name)
        events.append(("fit_end", config.seed))
        return result

    def spy_predict(model, data, config=None):
        out = real_predict(model, data, config)
        events.append(("predict", config.seed, set(out.ids) <= test_ids and bool(out.ids)))
        return out

    monkeypatch.setattr(trainer, "fit", spy_fit)
    monkeypatch.setattr(trainer, "predict", spy_predict)
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--model", "mren", "--seeds", "0,1", "--epochs", "2",
                                  "--device", "cpu", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "mean±ci95" in result.output

    # the test split was predicted only after each seed's fit returned
    for i, event in enumerate(events):
        if event[0] == "predict" and event[2]:
            last_fit = [e for e in events[:i] if e[0] in ("fit_start", "fit_end")][-1]
            assert last_fit == ("fit_end", event[1])
    n_conditions = len(robustness_conditions(toy_task()))
    assert sum(1 for e in events if e[0] == "predict" and e[2]) == 2 * (1 + n_conditions)

    results_file = tmp_path / "results" / "mren" / "sdme-sample-discrete.json"
    results = load_results(results_file)
    assert results.seeds == [0, 1]
    assert [s.selection.epochs_run for s in results.per_seed] == [2, 2]
    assert results.aggregate.relevance_auroc is not None  # mren estimates relevance
    assert results.dataset.splits["test"] == len(test_ids)
    records = read_predictions(results_file.with_name("sdme-sample-discrete.predictions.jsonl"),
                               discrete=True)
    assert {s: set(v) for s, v in records.items()} == {0: test_ids, 1: test_ids}

    result = runner.invoke(main, ["submit", str(results_file), "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "accepted: mren on sdme-sample-discrete" in result.output
    result = runner.invoke(main, ["leaderboard", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "leaderboard" / "index.md").read_text()
    mean = results.aggregate.metrics["accuracy"].mean
    assert f"| 1 | mren | {mean:.4f} ± " in markdown
    result = runner.invoke(main, ["export", str(results_file)])
    assert result.exit_code == 0, result.output
    assert (results_file.parent / ".eval_results" / "sdme-sample-discrete.yaml").is_file()


def datasets_ids(built, split: str) -> list[str]:
    from sdme.loading import load_dataset

    return list(load_dataset(built, split=split)["clip_id"])


def test_continuous_task_scoring():
    from benchmark import metrics as M

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
    expected = M.continuous_metrics(labels, predictions, "mosi")
    assert result.metrics == pytest.approx({k: expected[k] for k in task.metrics})
    assert result.per_class_f1 is None and result.confusion_matrix is None
    assert result.robustness.metric == "acc2_has0"
    assert result.robustness.clean == pytest.approx(0.5)
    # pairs: text (a .9 T, b .3 F, d .6 T, e .7 T, f .2 F), audio (a .1 F, b..f T: .7 .5 .4 .3 .8)
    # relevant {.9 .6 .7 .7 .5 .4 .3 .8} vs irrelevant {.3 .2 .1}: each relevant weight beats
    # all three, except .3 (beats .2 and .1, ties .3: 2.5) -> (7 * 3 + 2.5) / (8 * 3)
    assert result.relevance_auroc == pytest.approx(23.5 / 24)
