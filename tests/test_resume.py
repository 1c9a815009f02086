"""Long runs keep what they did: each finished seed is written as it completes; the same
command run again resumes from those seeds (and says so), while another config starts over and
moves the old seeds aside, saying what changed."""

from __future__ import annotations

import json

import pytest
from benchmarkdata import tiny_built

from benchmark.partial import SEED_FILE, SEED_PREDICTIONS
from benchmark.protocol import checkpoint_dir, run_benchmark

TASK = "sdme-sample-discrete"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    tiny_built(root)
    return root


def _run(data_dir, store, log, epochs=1, seeds=(0, 1)):
    return run_benchmark("late_fusion", TASK, seeds=list(seeds), device="cpu",
                         config={"train": {"epochs": epochs}, "model": {}}, out_dir=store,
                         data_dir=data_dir, tuned=False, log=log.append)


def test_an_interrupted_run_resumes_from_its_finished_seeds(data_dir, tmp_path, monkeypatch):
    import baselines.train as trainer

    real_fit = trainer.fit
    trained: list[int] = []

    def fit(model, train_data, val_data, config=None, model_name=None, **kwargs):
        if config.seed in interrupt:
            raise RuntimeError(f"interrupted during seed {config.seed}")
        trained.append(config.seed)
        return real_fit(model, train_data, val_data, config, model_name, **kwargs)

    monkeypatch.setattr(trainer, "fit", fit)
    store, log = tmp_path / "results", []
    interrupt = {1}
    with pytest.raises(RuntimeError, match="interrupted during seed 1"):
        _run(data_dir, store, log)
    assert trained == [0]
    kept = checkpoint_dir(store, "late_fusion", TASK, 0)
    record = json.loads((kept / SEED_FILE).read_text())
    assert record["seed"] == 0 and (kept / SEED_PREDICTIONS).is_file()
    assert record["identity"]["train_config"]["epochs"] == 1
    assert set(record["test_scores"]) == {"accuracy", "macro_f1", "weighted_f1"}
    assert not (store / "late_fusion" / f"{TASK}.json").exists()  # no results yet

    interrupt, log = set(), []
    resumed = _run(data_dir, store, log)
    assert trained == [0, 1]  # only seed 1 was trained again
    assert any(line.startswith("resuming: seed(s) 0 already finished with the same dataset, "
                               "config and task") and "training seed(s) 1" in line
               for line in log), log
    fresh = _run(data_dir, tmp_path / "fresh", [])  # the same run without interruption
    assert resumed.results.per_seed == fresh.results.per_seed
    assert resumed.results.aggregate == fresh.results.aggregate
    assert resumed.results.model == fresh.results.model

    log = []
    again = _run(data_dir, store, log)  # the same command once more: nothing to train
    assert trained == [0, 1, 0, 1] and any("nothing left to train" in line for line in log)
    assert again.results.per_seed == resumed.results.per_seed

    record = checkpoint_dir(store, "late_fusion", TASK, 1) / SEED_FILE
    record.write_text("{not json")  # an unreadable record: that seed is trained again
    log = []
    _run(data_dir, store, log)
    assert trained == [0, 1, 0, 1, 1]
    assert any(str(record) in m and "unreadable" in m and "trained again" in m for m in log)
    assert json.loads(record.read_text())["seed"] == 1  # written anew


def test_another_config_starts_over_and_keeps_the_old_seeds(data_dir, tmp_path):
    store = tmp_path / "results"
    _run(data_dir, store, [], seeds=(0,))
    root = checkpoint_dir(store, "late_fusion", TASK, 0).parent
    before = (root / "seed-0" / SEED_FILE).read_bytes()
    log: list[str] = []
    output = _run(data_dir, store, log, epochs=2, seeds=(0,))
    [line] = [m for m in log if m.startswith("starting over")]
    assert "train_config.epochs: 1 -> 2" in line
    [aside] = root.parent.glob(f"{root.name}.old-*")
    assert str(aside) in line
    assert (aside / "seed-0" / SEED_FILE).read_bytes() == before  # kept, not destroyed
    assert output.results.per_seed[0].selection.epochs_run == 2
