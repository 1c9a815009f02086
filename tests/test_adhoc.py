"""A user's own dataset from the CLI: ``benchmark run --dataset DIR`` without ``--task`` derives
an ad-hoc task from the dataset, the results say it is not a pinned task, and submit and the
leaderboard handle it (checked against the local dataset; shown apart, marked ad hoc)."""

from __future__ import annotations

import json
import shutil

import pytest
from benchmarkdata import tiny_built
from click.testing import CliRunner

from benchmark.adhoc import adhoc_name, adhoc_task
from benchmark.results import load_results
from benchmark.submit import SubmissionError, submit
from benchmark.tasks import Task, TaskError, get_task, register_task


def benchmark_cli(*args: str):
    from benchmark.__main__ import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_users_dataset_runs_submits_and_shows_as_an_adhoc_task(tmp_path):
    built = tiny_built(tmp_path)
    mine = tmp_path / "elsewhere" / "my corpus"
    shutil.copytree(built, mine)
    result = benchmark_cli("run", "--model", "late_fusion", "--dataset", mine, "--seeds", "0",
                           "--epochs", "1", "--device", "cpu", "--out", tmp_path / "results")
    assert result.exit_code == 0, result.output
    assert f"ad-hoc task adhoc-my-corpus derived from {mine}: discrete" in result.output
    assert "not a pinned benchmark task" in result.output
    path = tmp_path / "results" / "late_fusion" / "adhoc-my-corpus.json"
    results = load_results(path)
    assert results.task.adhoc and results.task.name == "adhoc-my-corpus"
    definition = results.task.definition
    assert definition["dataset"] == "my corpus"
    assert definition["dataset_fingerprint"] == results.dataset.fingerprint
    assert definition["task_type"] == "discrete" and definition["main_score"] == "accuracy"
    assert results.per_seed[0].stratified is not None  # the relevance reports are there

    store = tmp_path / "store"
    accepted = submit(path, dataset=mine, store=store)
    assert accepted.results_path == store / "adhoc-my-corpus" / "late_fusion.json"

    # against another dataset: another name derives another task; another fingerprint
    other = tmp_path / "elsewhere" / "their corpus"
    shutil.copytree(mine, other)
    with pytest.raises(SubmissionError, match=r"json: task: the ad-hoc task adhoc-my-corpus "
                       r"differs from the one derived from the local dataset .*their corpus"
                       ) as refused:
        submit(path, dataset=other, store=tmp_path / "store2")
    assert str(refused.value).count(": task: ") == 1  # said once
    # without --dataset, a dataset outside the data folder: the message says what to pass
    with pytest.raises(FileNotFoundError, match="pass the built dataset folder the run used "
                       "with --dataset FOLDER"):
        submit(path, data_dir=tmp_path / "empty", store=tmp_path / "store2")
    document = json.loads(path.read_text())
    document["dataset"]["fingerprint"] = "0" * 64
    path.write_text(json.dumps(document))
    with pytest.raises(SubmissionError, match="names another dataset"):
        submit(path, dataset=mine, store=tmp_path / "store2")
    assert not (tmp_path / "store2").exists()

    # the leaderboard shows it apart, after the registered tasks, marked ad hoc
    result = benchmark_cli("leaderboard", "--store", store, "--no-reference")
    assert result.exit_code == 0, result.output
    page = (store / "index.md").read_text()
    assert "## adhoc-my-corpus (ad hoc: your dataset, not a pinned task)" in page
    assert "Ad hoc: the task was derived from the dataset itself" in page


def test_a_mistyped_model_is_refused_before_the_dataset_is_read(tmp_path):
    built = tiny_built(tmp_path)
    result = benchmark_cli("run", "--model", "late_fusoin", "--dataset", built,
                           "--out", tmp_path / "results")
    assert result.exit_code == 1
    assert "unknown model 'late_fusoin'" in result.output and "late_fusion" in result.output
    assert "ad-hoc task" not in result.output  # nothing was derived from the data first
    assert not (tmp_path / "results").exists()


def test_the_adhoc_prefix_is_reserved_and_names_are_file_safe(tmp_path):
    template = get_task("sdme-sample-discrete")
    with pytest.raises(TaskError, match="names starting with 'adhoc-' are for ad-hoc tasks"):
        register_task(Task(**{**template.to_dict(), "name": "adhoc-mine",
                              "metrics": tuple(template.metrics),
                              "modalities": tuple(template.modalities),
                              "noise_levels": tuple(template.noise_levels)}))
    assert adhoc_name(tmp_path / "My data@v2 (final)") == "adhoc-My-data-v2--final"


def test_a_scored_dataset_gets_a_continuous_adhoc_task(tmp_path):
    """An MMSA import records its score scale: the ad-hoc task regresses the score with the
    scale's metrics, MAE first, and probes robustness with the scale's binary accuracy."""
    from test_mmsa import make_pickle

    from sdme.cli import main as sdme_main

    result = CliRunner().invoke(sdme_main, ["import", "mmsa", "--path",
                                            str(make_pickle(tmp_path, "chsims")), "--name",
                                            "chsims", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    task = adhoc_task(tmp_path / "built" / "chsims")
    assert (task.name, task.task_type, task.label_column, task.continuous_scale) == (
        "adhoc-chsims", "continuous", "score", "sims")
    assert task.metrics[0] == task.main_score == "mae"
    assert set(task.metrics) == set(get_task("ch-sims").metrics)
    assert task.robustness_metric == "acc2_sims"
    assert task.dataset_fingerprint is not None
