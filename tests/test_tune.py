"""``benchmark tune`` on a real tiny built dataset: the search reads no test data, resumes as an
uninterrupted study would, writes the config that ``run`` picks up and records; and the refusals.

Trials are 1-2 epochs of ``late_fusion`` on 16 training clips, so each costs a fraction of a
second once torch is warm.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import optuna
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from benchmarkdata import tiny_built
from click.testing import CliRunner

import baselines.train as trainer
from benchmark.__main__ import main
from benchmark.protocol import load_run_config
from benchmark.results import load_results
from benchmark.scoring import load_test_reference
from benchmark.tasks import get_task
from benchmark.tune import (
    TuneError,
    development_fingerprint,
    study_path,
    tune,
    tuned_config_path,
    tuned_run_config,
)

TASK = "sdme-sample-discrete"
MODEL = "late_fusion"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@contextlib.contextmanager
def poisoned_test_split(folder: Path) -> Iterator[list[Path]]:
    """Overwrites the test shards with bytes no reader accepts; restores them afterwards."""
    info = json.loads((folder / "build_info.json").read_text())
    shards = [folder / p for p in info["data_files"]["test"]]
    saved = {p: p.read_bytes() for p in shards}
    for p in shards:
        p.write_bytes(b"poison: the test split must not be read while tuning\n")
    try:
        yield shards
    finally:
        for p, data in saved.items():
            p.write_bytes(data)


def _study(db: Path, model: str = MODEL) -> optuna.Study:
    return optuna.load_study(study_name=f"{model}@{get_task(TASK).key}",
                             storage=f"sqlite:///{db}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    tiny_built(root)
    return root


@pytest.fixture(scope="module")
def tuned(data_dir, tmp_path_factory):
    """Tunes late_fusion (2 trials, then resumed to 3; and 3 at once in another store) with the
    test shards poisoned, ``datasets.load_dataset`` refused and ``fit`` watched."""
    import datasets

    folder = data_dir / "built" / "sample"
    task = get_task(TASK)
    test_ids = set(load_test_reference(task, folder)[0].ids)
    fingerprint = development_fingerprint(folder, task)
    fits: list[set[str]] = []
    real_fit = trainer.fit

    def watched_fit(model, train_data, val_data, config=None, model_name=None, **hooks):
        seen = {r["clip_id"] for r in train_data} | {r["clip_id"] for r in val_data}
        fits.append(seen)
        return real_fit(model, train_data, val_data, config, model_name, **hooks)

    def refused(*args, **kwargs):
        raise AssertionError("tune called datasets.load_dataset, which prepares every split")

    other = tmp_path_factory.mktemp("other-store")
    base = ["tune", "--model", MODEL, "--task", TASK, "--epochs", "1", "--device", "cpu",
            "--data-dir", str(data_dir)]
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp, poisoned_test_split(folder) as shards:
        for shard in shards:
            with pytest.raises(pa.ArrowInvalid, match="magic bytes"):  # the poison works
                pq.read_table(shard)
        mp.setattr(trainer, "fit", watched_fit)
        mp.setattr(datasets, "load_dataset", refused)
        first = runner.invoke(main, [*base, "--trials", "2"])
        assert first.exit_code == 0, first.output
        resumed = runner.invoke(main, [*base, "--trials", "3"])
        assert resumed.exit_code == 0, resumed.output
        at_once = runner.invoke(main, [*base, "--trials", "3", "--out", str(other)])
        assert at_once.exit_code == 0, at_once.output
        fingerprint_poisoned = development_fingerprint(folder, task)
    return {"folder": folder, "test_ids": test_ids, "fits": fits, "first": first,
            "resumed": resumed, "other": other, "fingerprint": fingerprint,
            "fingerprint_poisoned": fingerprint_poisoned,
            "path": tuned_config_path(MODEL, TASK, data_dir / "tuned")}


@pytest.mark.slow
def test_tune_reads_no_test_data(tuned):
    assert len(tuned["fits"]) == 2 + 1 + 3  # the resumed study ran one more trial
    assert all(seen and not seen & tuned["test_ids"] for seen in tuned["fits"])
    # the development fingerprint is made without the test split
    assert tuned["fingerprint_poisoned"] == tuned["fingerprint"]


@pytest.mark.slow
def test_tune_resumes_as_an_uninterrupted_study_would(tuned):
    assert "resuming: 2 of 3 trials done" in tuned["resumed"].output
    resumed = _study(study_path(MODEL, TASK, tuned["path"].parent.parent))
    at_once = _study(study_path(MODEL, TASK, tuned["other"]))
    assert [(t.params, t.value) for t in resumed.trials] == \
        [(t.params, t.value) for t in at_once.trials]
    assert len(resumed.trials) == 3
    assert len({json.dumps(t.params, sort_keys=True) for t in resumed.trials}) == 3


@pytest.mark.slow
def test_the_tuned_config_is_a_run_config_with_the_study_summary(tuned):
    config = load_run_config(tuned["path"])
    tuning = config["tuned"]
    study = _study(study_path(MODEL, TASK, tuned["path"].parent.parent))
    assert (tuning.model, tuning.task, tuning.study) == (MODEL, f"{TASK}@1",
                                                         f"{MODEL}@{TASK}@1")
    assert (tuning.trials, tuning.budget_trials, tuning.epochs, tuning.pruned) == (3, 3, 1, 0)
    assert tuning.fingerprint == tuned["fingerprint"]
    assert tuning.metric == "accuracy" and tuning.higher_is_better
    assert tuning.best_value == max(t.value for t in study.trials) == study.best_value
    best = study.best_trial.params
    assert config["train"] == {"lr": best["train.lr"], "weight_decay": best["train.weight_decay"],
                               "batch_size": best["train.batch_size"], "epochs": 1}
    assert config["model"] == {k.split(".", 1)[1]: v for k, v in best.items()
                               if k.startswith("model.")}
    assert set(tuning.space["model"]) == {"hidden", "dropout", "num_layers",
                                          "unimodal_loss_weight"}
    assert f"tuned config: {tuned['path']}" in tuned["first"].output


@pytest.mark.slow
def test_run_uses_records_and_submits_the_tuned_config(tuned, data_dir):
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--model", MODEL, "--task", TASK, "--seeds", "0",
                                  "--device", "cpu", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert f"config: tuned by `benchmark tune` ({tuned['path']})" in result.output
    config = load_run_config(tuned["path"])
    results_file = data_dir / "results" / MODEL / f"{TASK}.json"
    results = load_results(results_file)
    assert results.model.tuning == config["tuned"]
    assert results.model.train_config["lr"] == config["train"]["lr"]
    assert results.model.config["hidden"] == config["model"]["hidden"]
    # seed 0 trains exactly as the tuning's best trial did: same inputs, same validation score
    assert results.per_seed[0].selection.best_score == pytest.approx(config["tuned"].best_value)
    submitted = runner.invoke(main, ["submit", str(results_file), "--data-dir", str(data_dir)])
    assert submitted.exit_code == 0, submitted.output
    stored = load_results(data_dir / "leaderboard" / TASK / f"{MODEL}.json")
    assert stored.model.tuning == config["tuned"]


@pytest.mark.slow
def test_precedence_of_configs(tuned, data_dir):
    config = load_run_config(tuned["path"])
    path, merged = tuned_run_config(MODEL, TASK, {"train": {"epochs": 4}}, data_dir)
    assert path == tuned["path"]
    assert merged["train"] == {**config["train"], "epochs": 4}  # --epochs over the tuned config
    assert merged["model"] == config["model"] and merged["tuned"] == config["tuned"]
    assert tuned_run_config(MODEL, TASK, {"train": {}}, data_dir, use=False) == (
        None, {"train": {}})  # --no-tuned, or an explicit --config
    assert tuned_run_config("tfn", TASK, None, data_dir) == (None, {})  # nothing tuned for tfn


@pytest.mark.slow
def test_run_refuses_a_config_tuned_on_other_data(tuned, data_dir, tmp_path):
    document = yaml.safe_load(tuned["path"].read_text())
    saved = tuned["path"].read_text()
    runner = CliRunner()
    args = ["run", "--model", MODEL, "--task", TASK, "--seeds", "0", "--device", "cpu",
            "--data-dir", str(data_dir)]
    try:
        document["tuned"]["fingerprint"] = "0" * 64
        tuned["path"].write_text(yaml.safe_dump(document))
        result = runner.invoke(main, args)
        assert result.exit_code == 1
        assert "tuned on another dataset" in result.output
        assert "--no-tuned" in result.output and "Traceback" not in result.output
        # the same file given with --config is checked the same way
        given = tmp_path / "given.yaml"
        given.write_text(yaml.safe_dump(document))
        result = runner.invoke(main, [*args, "--config", str(given)])
        assert result.exit_code == 1 and "tuned on another dataset" in result.output
        document["tuned"]["model"] = "tfn"
        given.write_text(yaml.safe_dump(document))
        result = runner.invoke(main, [*args, "--config", str(given)])
        assert result.exit_code == 1
        assert f"tuned for tfn on {TASK}@1, not for {MODEL}" in result.output
    finally:
        tuned["path"].write_text(saved)


def test_development_fingerprint_follows_train_labels_and_provenance(data_dir, tmp_path):
    task = get_task(TASK)
    folder = tmp_path / "copy"
    shutil.copytree(data_dir / "built" / "sample", folder)
    base = development_fingerprint(folder, task)
    assert development_fingerprint(data_dir / "built" / "sample", task) == base

    info = json.loads((folder / "build_info.json").read_text())
    shard = folder / info["data_files"]["train"][0]
    table = pq.read_table(shard)
    labels = table.column("label").to_pylist()
    labels[0] = (labels[0] + 1) % len(info["taxonomy"])
    index = table.schema.get_field_index("label")
    pq.write_table(table.set_column(index, table.schema.field(index),
                                    [labels]), shard)
    relabelled = development_fingerprint(folder, task)
    assert relabelled != base

    info["source"]["fingerprint"] = "e" * 64
    (folder / "build_info.json").write_text(json.dumps(info))
    assert development_fingerprint(folder, task) not in (base, relabelled)


def test_study_settings_must_match_to_resume(data_dir, tmp_path):
    store = tmp_path / "store"
    common = {"epochs": 1, "device": "cpu", "data_dir": data_dir, "out_dir": store}
    first = tune(MODEL, TASK, trials=1, **common)
    assert first.tuning.trials == 1
    with pytest.raises(TuneError, match=r"other settings \(epochs 1 -> 2\).*--restart"):
        tune(MODEL, TASK, trials=1, **{**common, "epochs": 2})
    with pytest.raises(TuneError, match=r"other settings \(.*fixed"):
        tune(MODEL, TASK, trials=1, config={"model": {"hidden": 16}}, **common)
    tune(MODEL, TASK, trials=2, **common)
    with pytest.raises(TuneError, match="already has 2 trials, more than --trials 1"):
        tune(MODEL, TASK, trials=1, **common)
    restarted = tune(MODEL, TASK, trials=1, restart=True, config={"model": {"hidden": 16}},
                     **common)
    assert restarted.tuning.trials == 1
    assert restarted.config["model"]["hidden"] == 16  # a fixed option is kept, not searched
    assert "hidden" not in restarted.tuning.space["model"]


def test_diverged_pruned_and_interrupted_trials(data_dir, tmp_path, monkeypatch):
    store = tmp_path / "store"
    common = {"device": "cpu", "data_dir": data_dir, "out_dir": store}

    def diverging_fit(*args, **kwargs):
        raise FloatingPointError("non-finite loss at epoch 0, step 0: task=nan")

    with monkeypatch.context() as mp:
        mp.setattr(trainer, "fit", diverging_fit)
        with pytest.raises(TuneError, match=r"no trial finished \(1 pruned or diverged\)"):
            tune(MODEL, TASK, trials=1, epochs=2, **common)
    db = study_path(MODEL, TASK, store)
    _study(db).ask()  # a trial left running, as by a process killed mid-trial

    class PruneTrialThree(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number == 3

    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **kwargs: PruneTrialThree())
    output = tune(MODEL, TASK, trials=3, epochs=2, **common)
    states = [t.state for t in _study(db).trials]
    state = optuna.trial.TrialState
    assert states == [state.FAIL, state.FAIL, state.COMPLETE, state.PRUNED]
    tuning = output.tuning
    assert (tuning.trials, tuning.failed, tuning.pruned, tuning.best_trial) == (3, 1, 1, 2)
    trials = _study(db).trials
    assert len(trials[3].intermediate_values) == 1  # pruned after its first epoch
    assert len(trials[2].intermediate_values) == 2


def test_cli_errors_are_one_line(data_dir, tmp_path):
    runner = CliRunner()
    unknown = runner.invoke(main, ["tune", "--model", "late_fusio", "--data-dir", str(data_dir)])
    assert unknown.exit_code == 1 and "Did you mean 'late_fusion'" in unknown.output
    assert "Traceback" not in unknown.output
    assert runner.invoke(main, ["tune", "--model", MODEL, "--trials", "0"]).exit_code == 2
    config = tmp_path / "c.yaml"
    config.write_text("train: {seed: 3}\n")
    result = runner.invoke(main, ["tune", "--model", MODEL, "--config", str(config),
                                  "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    assert "train.seed is set by the protocol" in result.output
    config.write_text("model: {hidden: 32}\ntuned: {model: x}\n")
    result = runner.invoke(main, ["tune", "--model", MODEL, "--config", str(config),
                                  "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "section 'tuned'" in result.output
