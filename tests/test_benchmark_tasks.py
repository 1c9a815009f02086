"""The synthetic and MMSA benchmark tasks: the synth preset reproduces the pinned dataset, missing
datasets name the command that makes them, continuous tasks train on the score and report
relevance from the unimodal labels, and the streamed training split matches the dataset."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_mmsa import FILES, mmsa_split

from benchmark.protocol import StreamedRows, input_columns, run_benchmark
from benchmark.robustness import noise_scales
from benchmark.scoring import ProtocolError, TestReference, load_test_reference
from benchmark.tasks import dataset_recipe, get_task, list_tasks
from sdme.loading import feature_stats, load_dataset
from sdme.sources import get_source
from sdme.sources.mmsa import CORPORA
from sdme.synth import PRESETS, SynthConfig, preset_config, synthesize

SMALL_SYNTH = SynthConfig(n=90, dims={"text": 6, "audio": 4, "vision": 3},
                          seq_len={"text": (2, 5), "audio": (3, 6), "vision": (1, 4)},
                          clips_per_video=3.0, videos_per_speaker=2.0, seed=5)


def synth_cli(*args: str) -> object:
    from sdme.cli import main

    return CliRunner().invoke(main, ["synth", *args])


def benchmark_cli(*args: str) -> object:
    from benchmark.__main__ import main

    return CliRunner().invoke(main, list(args))


# ----------------------------------------------------------------------------- definitions


def test_every_task_dataset_has_a_recipe_and_mmsa_names_exist():
    for task in list_tasks():
        # The recipe comes from the task's source, and that source makes the task's dataset.
        assert task.source is not None and dataset_recipe(task), task.key
        source = get_source(task.source)
        assert source.dataset_name(dict(task.source_options)) == task.dataset, task.key
    continuous = [t for t in list_tasks() if t.task_type == "continuous"]
    assert {t.key for t in continuous} == {"cmu-mosi@1", "cmu-mosei@1", "ch-sims@1",
                                          "ch-sims-v2@1"}
    for task in continuous:
        corpus = CORPORA[task.dataset]  # the name `sdme import mmsa --name` writes
        assert task.continuous_scale == corpus.scale
        assert task.label_column == "score" and task.main_score == "mae"
        assert task.dataset_fingerprint is None
        assert f"--name {task.dataset} " in dataset_recipe(task)
        assert FILES[task.dataset] in dataset_recipe(task)
    synth = get_task("sdme-synth-discrete@1")
    assert synth.dataset == "synth" and synth.dataset_fingerprint is not None


def test_preset_spells_out_every_parameter():
    import dataclasses

    names = {f.name for f in dataclasses.fields(SynthConfig)}
    assert set(PRESETS["benchmark"]) == names == set(PRESETS["structured"])
    config = preset_config("benchmark")
    assert config.n == 2400 and len(config.taxonomy) == 7
    assert dict(config.deviation_rate) == {"text": 0.2, "audio": 0.3, "vision": 0.4}


# ----------------------------------------------------------------------------- synth task


def test_synth_preset_gives_the_pinned_dataset_every_time(tmp_path):
    task = get_task("sdme-synth-discrete")
    folders = []
    for name in ("a", "b"):
        result = synth_cli("--preset", "benchmark", "--data-dir", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        folders.append(tmp_path / name / "built" / "synth")
    _, fingerprint, _ = load_test_reference(task, folders[0])
    assert fingerprint == task.dataset_fingerprint
    assert load_test_reference(task, folders[1])[1] == fingerprint
    shards = sorted(p.name for p in (folders[0] / "data").iterdir())
    for shard in shards:  # the features too, not only what the fingerprint covers
        assert (folders[0] / "data" / shard).read_bytes() == \
            (folders[1] / "data" / shard).read_bytes()
    info = json.loads((folders[0] / "build_info.json").read_text())
    assert info["counts"]["rows"] == 2400 and info["counts"]["splits"]["test"] == 359


def test_structured_preset_gives_the_pinned_dataset_of_its_task(tmp_path):
    task = get_task("sdme-synth-structured")
    assert task.dataset == "synth-structured"
    result = synth_cli("--preset", "structured", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "built" / "synth-structured"
    reference, fingerprint, info = load_test_reference(task, folder)
    assert fingerprint == task.dataset_fingerprint
    assert len(reference.ids) >= 500 and info["counts"]["rows"] == 3600
    assert preset_config("structured").structured
    assert not preset_config("benchmark").structured


def test_preset_excludes_other_generator_options(tmp_path):
    result = synth_cli("--preset", "benchmark", "--n", "10", "--seed", "2",
                       "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "--preset benchmark fixes every generator parameter; drop --n, --seed" in result.output
    result = synth_cli("--preset", "nope", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and \
        "unknown synth preset 'nope'; known: benchmark, structured" in result.output
    assert not (tmp_path / "built").exists()


def test_missing_dataset_names_the_exact_command(tmp_path):
    result = benchmark_cli("run", "--model", "mren", "--task", "sdme-synth-discrete",
                           "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert (f"make it with `sdme import synth --preset benchmark --data-dir {tmp_path}`"
            in result.output)
    result = benchmark_cli("run", "--model", "mren", "--task", "sdme-synth-structured",
                           "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert (f"make it with `sdme import synth --preset structured --data-dir {tmp_path}`"
            in result.output)
    result = benchmark_cli("run", "--model", "mren", "--task", "ch-sims",
                           "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "make it with `sdme import mmsa --name chsims --path " in result.output


def test_pinned_fingerprint_refuses_another_synth_corpus(tmp_path):
    synthesize(tmp_path / "built" / "synth", SMALL_SYNTH)
    with pytest.raises(ProtocolError, match="differs from the one task sdme-synth-discrete@1 "
                                            "pins"):
        run_benchmark("late_fusion", "sdme-synth-discrete", seeds=[0], device="cpu",
                      data_dir=tmp_path)


# ----------------------------------------------------------------------------- streamed splits


def test_streamed_rows_match_the_dataset(tmp_path):
    folder = tmp_path / "built" / "synth"
    synthesize(folder, SMALL_SYNTH, shard_rows=10)  # several shards and row groups
    task = get_task("sdme-sample-discrete")
    train = load_dataset(folder, split="train")
    columns = input_columns(train.column_names, task, with_targets=True)
    assert columns[-6:] == ["relevance_text", "relevance_audio", "relevance_vision",
                            "label_text", "label_audio", "label_vision"]
    rows = StreamedRows(folder, task, "train", columns, seed=3, window=2)
    assert len(rows) == len(train)
    epoch0 = [r["clip_id"] for r in rows]
    epoch1 = [r["clip_id"] for r in rows]
    assert sorted(epoch0) == sorted(epoch1) == sorted(train["clip_id"])
    assert epoch0 != epoch1  # reshuffled each epoch
    rows.set_epoch(0)
    assert [r["clip_id"] for r in rows] == epoch0  # and reproducibly
    expected = {r["clip_id"]: r for r in train.with_format("numpy")}
    for row in StreamedRows(folder, task, "train", columns, seed=0):
        want = expected[row["clip_id"]]
        assert set(row) == set(columns)
        assert row["label"] == want["label"]
        np.testing.assert_array_equal(row["audio_feat"], want["audio_feat"])
    # label_<m> class names reach the trainer's batches as class indices
    import baselines
    from baselines.train import TrainConfig, make_loader

    names = train.features["label"].names
    named = StreamedRows(folder, task, "train", columns, seed=0)
    assert named.class_names == tuple(names)
    model = baselines.create_model("mren", input_dims={"text": 6, "audio": 4, "vision": 3},
                                   num_classes=len(names))
    batch = next(iter(make_loader(named, model, TrainConfig(batch_size=8), train=True)))
    for m in task.modalities:
        assert [names[i] for i in batch.modality_labels[m].tolist()] == \
            [expected[c][f"label_{m}"] for c in batch.ids]
    # validation is read in file order, as the datasets table has it
    validation = load_dataset(folder, split="validation")
    in_order = StreamedRows(folder, task, "validation", columns, shuffle=False)
    assert [r["clip_id"] for r in in_order] == list(validation["clip_id"])
    # the noise scales (recorded when the dataset was made) are the standard deviations of
    # the datasets table's training feature values
    scales = noise_scales(feature_stats(folder, "train", data_dir=tmp_path), task.modalities)
    table = train.with_format("numpy")
    for m in task.modalities:
        values = np.concatenate([np.asarray(v, np.float64).reshape(-1)
                                 for v in table[f"{m}_feat"]])
        assert scales[m] == pytest.approx(values.std(), rel=1e-9)


# ----------------------------------------------------------------------------- continuous tasks


def test_continuous_relevance_follows_the_unimodal_labels():
    task = get_task("ch-sims")
    columns = {"clip_id": ["a", "b", "c"], "score": [0.6, -0.4, 0.0],
               "label": [2, 0, 1], "deviation": [1, 0, 1],
               "label_text": ["positive", "negative", "negative"],
               "label_audio": ["negative", "negative", "neutral"],
               "label_vision": ["positive", None, "neutral"],
               # relevance >= 0.5 would call audio relevant on clip a (|0.6 - -0.4| / 2 = 0.5)
               "relevance_text": [0.9, 1.0, 0.7], "relevance_audio": [0.5, 1.0, 1.0],
               "relevance_vision": [1.0, None, 1.0]}
    ref = TestReference.from_columns(columns, task, None, ["negative", "neutral", "positive"])
    assert ref.relevant["audio"] == (False, True, True)
    assert ref.relevant["text"] == (True, True, False)
    assert ref.relevant["vision"] == (True, None, True)
    assert [ref.deviating_group(i, task.modalities) for i in range(3)] == ["audio", "none",
                                                                          "text"]
    # without the derived class label, the relevance share decides
    fallback = TestReference.from_columns(
        {k: v for k, v in columns.items() if k != "label"}, task, None,
        ["negative", "neutral", "positive"])
    assert fallback.relevant["audio"] == (True, True, True)
    # MOSI-like: nothing annotated -> no relevance targets
    mosi = get_task("cmu-mosi")
    none = TestReference.from_columns(
        {"clip_id": ["a"], "score": [1.2], "label": [2], "deviation": [None],
         "label_text": [None], "relevance_text": [None]}, mosi, None,
        ["negative", "neutral", "positive"])
    assert none.relevant["text"] == (None,) and none.deviating_group(0, mosi.modalities) is None


def _sims_pickle(folder: Path) -> Path:
    rng = np.random.default_rng(7)
    data = {split: mmsa_split("chsims", split, n, rng)
            for split, n in (("train", 12), ("valid", 6), ("test", 8))}
    path = folder / FILES["chsims"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path


@pytest.mark.slow
def test_continuous_task_import_run_submit_leaderboard(tmp_path, monkeypatch):
    """A CH-SIMS-structured pickle -> import -> 2 seeds x 2 epochs of mren on ch-sims ->
    submit -> leaderboard; the model trains on the score with the regression task."""
    import baselines.train as trainer
    from benchmark.results import load_results, read_predictions
    from sdme.cli import main as sdme_main

    data_dir = tmp_path / "data"
    result = CliRunner().invoke(sdme_main, ["import", "mmsa", "--path",
                                            str(_sims_pickle(tmp_path)), "--name", "chsims",
                                            "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    built = data_dir / "built" / "chsims"
    train_scores = {r["clip_id"]: r["score"] for r in load_dataset(built, split="train")}
    seen: list[tuple[str, dict]] = []
    real_fit = trainer.fit

    def spy_fit(model, train_data, val_data, config=None, model_name=None, **kwargs):
        seen.append((model.config.task, {r["clip_id"]: r["label"] for r in train_data}))
        return real_fit(model, train_data, val_data, config, model_name, **kwargs)

    monkeypatch.setattr(trainer, "fit", spy_fit)
    result = benchmark_cli("run", "--model", "mren", "--task", "ch-sims", "--seeds", "0,1",
                           "--epochs", "2", "--device", "cpu", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert len(seen) == 2
    for task_type, labels in seen:
        assert task_type == "continuous"
        assert labels.keys() == train_scores.keys()
        assert all(isinstance(v, float) for v in labels.values())
        assert labels == pytest.approx(train_scores)

    results_file = data_dir / "results" / "mren" / "ch-sims.json"
    results = load_results(results_file)
    assert results.task.definition["label_column"] == "score"
    assert results.model.config["task"] == "continuous"
    assert set(results.aggregate.metrics) == {"mae", "corr", "acc2_sims", "f1_sims",
                                              "acc3_sims", "acc5_sims"}
    records = read_predictions(results_file.with_name("ch-sims.predictions.jsonl"),
                               discrete=False)
    assert all(isinstance(r["prediction"], float) for r in records[0].values())
    # relevance reports come from the unimodal labels of the test split
    test = load_dataset(built, split="test")
    names = test.features["label"].names
    groups: dict[str, int] = {}
    targets = set()  # relevance targets of (clip, present modality) pairs
    for row in test:
        deviating = [m for m in ("text", "audio", "vision")
                     if row[f"label_{m}"] != names[row["label"]]]
        key = "+".join(deviating) or "none"
        groups[key] = groups.get(key, 0) + 1
        targets |= {m not in deviating for m in ("text", "audio", "vision") if row[f"{m}_len"]}
    assert targets == {True, False}  # the fixture has relevant and deviating modalities
    for seed in results.per_seed:
        strata = seed.stratified
        assert {k: s.n for k, s in strata.by_deviating_modalities.items()} == groups
        assert sum(s.n for s in strata.by_deviation.values()) == len(test)
        assert seed.relevance_auroc is not None  # mren's weights against those targets

    result = benchmark_cli("submit", str(results_file), "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert "accepted: mren on ch-sims" in result.output
    result = benchmark_cli("leaderboard", "--no-reference", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    markdown = (data_dir / "leaderboard" / "index.md").read_text()
    assert "## ch-sims" in markdown
    assert f"| 1 | mren | {results.aggregate.metrics['mae'].mean:.4f} ± " in markdown
