"""The shipped reference results: every shipped file re-verified with submit's checks against
the locally regenerated dataset, stale ones refused (model config, train config, task version,
missing or unregistered models); the machinery that makes them, on a tiny store; and the
leaderboard showing them beside the user's own rows."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from dataclasses import replace
from types import MappingProxyType

import pytest
from benchmarkdata import tiny_built
from click.testing import CliRunner

import baselines
from benchmark.reference import (
    REFERENCE_DIR,
    REGENERATE,
    check_reference,
    make_dataset,
    make_reference,
    read_timings,
    reference_files,
    stale_message,
)
from benchmark.tasks import REFERENCE_TASKS, get_task, register_task, unregister_task

SAMPLE = "sdme-sample-discrete"
MODELS = ["late_fusion", "mren"]


def test_shipped_reference_results_are_current(tmp_path_factory):
    """Every file in benchmark/data/reference/ passes submit's checks against the dataset made
    here from the task's source, and none is stale; every registered model has a result."""
    files = reference_files(REFERENCE_DIR)
    if not files:
        pytest.skip(f"the shipped reference store {REFERENCE_DIR} is empty: "
                    f"`{REGENERATE}` fills it")
    data_dir = tmp_path_factory.mktemp("reference-data")
    for task in REFERENCE_TASKS:
        make_dataset(task, data_dir)  # the synthetic presets regenerate in seconds
    problems = check_reference(REFERENCE_DIR, data_dir=data_dir)
    assert not problems, stale_message(problems)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A reference store made by the real machinery: 2 models x 1 seed x 1 epoch on the tiny
    sample build (what `reference make` runs, smaller)."""
    root = tmp_path_factory.mktemp("tiny-reference")
    tiny_built(root)
    written = make_reference(models=MODELS, tasks=(SAMPLE,), seeds=(0,), epochs=1,
                             store=root / "reference", work=root / "runs", data_dir=root,
                             device="cpu")
    return {"root": root, "store": root / "reference", "written": written}


def _check(tiny, store=None, **overrides):
    options = {"data_dir": tiny["root"], "tasks": (SAMPLE,), "models": MODELS, "seeds": (0,),
               "train": {"epochs": 1}, **overrides}
    return check_reference(store or tiny["store"], **options)


def test_made_by_run_and_submit_with_compressed_predictions(tiny):
    store = tiny["store"] / SAMPLE
    assert tiny["written"] == [store / "late_fusion.json", store / "mren.json"]
    assert sorted(p.name for p in store.iterdir()) == [
        "late_fusion.json", "late_fusion.predictions.jsonl.gz", "mren.json",
        "mren.predictions.jsonl.gz"]
    assert _check(tiny) == []
    # each model's seconds per seed, as its run measured them, with the machine
    timings = read_timings(tiny["store"], SAMPLE)
    assert sorted(timings) == ["late_fusion", "mren"]
    for record in timings.values():
        assert record["seeds"] == [0] and len(record["seconds"]) == 1
        assert 0 < record["seconds"][0] < 600
        assert record["machine"]["cpus"] == os.cpu_count()
        assert record["machine"]["device"] == "cpu"
    # a full regeneration drops the timings of models no longer registered
    from benchmark.reference import prune_timings

    copy = tiny["root"] / "timings-copy"
    shutil.copytree(tiny["store"], copy)
    prune_timings(copy, SAMPLE, ["mren"])
    assert sorted(read_timings(copy, SAMPLE)) == ["mren"]
    # the runs resume: making them again trains nothing and changes nothing
    before = {p.name: p.read_bytes() for p in store.iterdir() if p.suffix == ".gz"}
    log: list[str] = []
    make_reference(models=MODELS, tasks=(SAMPLE,), seeds=(0,), epochs=1, store=tiny["store"],
                   work=tiny["root"] / "runs", data_dir=tiny["root"], device="cpu",
                   log=log.append)
    assert sum("nothing left to train" in m for m in log) == 2
    assert sum(m.startswith("unchanged: ") for m in log) == 2
    assert {p.name: p.read_bytes() for p in store.iterdir() if p.suffix == ".gz"} == before


def test_stale_results_are_named_with_what_changed(tiny, monkeypatch):
    store = tiny["store"] / SAMPLE
    # the protocol's train config: these were trial runs of one epoch
    assert _check(tiny, train=None) == [
        f"{store / 'late_fusion.json'}: model.train_config.epochs: 1 in the file, 30 now",
        f"{store / 'mren.json'}: model.train_config.epochs: 1 in the file, 30 now"]
    # a registered model's default changed
    spec = baselines.MODELS.get("late_fusion")
    monkeypatch.setattr(spec, "defaults", MappingProxyType({**spec.defaults, "hidden": 32}))
    assert _check(tiny) == [
        f"{store / 'late_fusion.json'}: model.config.hidden: 64 in the file, 32 now"]
    monkeypatch.undo()
    # other seeds than asked, a model without a result
    problems = _check(tiny, seeds=(0, 1), models=[*MODELS, "tfn"])
    assert f"{store / 'mren.json'}: seeds [0]; the protocol's are [0, 1]" in problems
    assert f"{store}: no reference result for model 'tfn'" in problems
    message = stale_message(problems)
    assert message.startswith(f"{len(problems)} problem(s) in the shipped reference results; "
                              f"regenerate them with `{REGENERATE}`")


def test_a_newer_task_version_makes_results_stale(tiny):
    task = get_task(SAMPLE)
    register_task(replace(task, version=2, released_sha256=None, noise_levels=(0.0, 1.0)))
    try:
        problems = _check(tiny)
    finally:
        unregister_task(SAMPLE, 2)
    assert problems == [f"{tiny['store'] / SAMPLE / m}.json: computed for {SAMPLE} v1; the "
                        "registered task is v2" for m in MODELS]


def test_changed_or_foreign_files_fail_the_submission_checks(tiny, tmp_path):
    store = tmp_path / "reference"
    shutil.copytree(tiny["store"], store)
    packed = store / SAMPLE / "mren.predictions.jsonl.gz"
    lines = gzip.decompress(packed.read_bytes())
    changed = lines.replace(b'"prediction":', b'"prediction":1', 1)
    assert changed != lines
    packed.write_bytes(gzip.compress(changed))
    gone = json.loads((store / SAMPLE / "late_fusion.json").read_text())
    gone["model"]["name"] = "gone"
    gone["predictions"]["path"] = "gone.predictions.jsonl.gz"
    (store / SAMPLE / "gone.json").write_text(json.dumps(gone))
    shutil.copy(store / SAMPLE / "late_fusion.predictions.jsonl.gz",
                store / SAMPLE / "gone.predictions.jsonl.gz")
    problems = _check(tiny, store=store)
    assert f"{store / SAMPLE / 'gone.json'}: model 'gone' is no longer registered" in problems
    assert f"{store / SAMPLE / 'gone.json'}: model 'gone' is not among the reference models" \
        in problems
    [changed_problem] = [p for p in problems if "mren" in p]
    assert "mren.predictions.jsonl.gz: sha256 differs from predictions.sha256" in \
        changed_problem
    result = CliRunner().invoke(_main(), ["reference", "check", "--store", str(store),
                                          "--data-dir", str(tiny["root"])])
    assert result.exit_code == 1 and REGENERATE in result.output
    assert "Traceback" not in result.output


def _main():
    from benchmark.__main__ import main

    return main


def test_leaderboard_shows_the_reference_beside_the_users_run(tiny, tmp_path):
    """Both mren rows are on the page: the user's (run on this machine) and the shipped one,
    told apart in the tables, the HTML and the chart; --no-reference hides the shipped rows."""
    from benchmark.leaderboard import load_boards, write_leaderboard
    from benchmark.submit import submit

    runs = tiny["root"] / "runs"
    local = tmp_path / "leaderboard"
    submit(runs / "mren" / f"{SAMPLE}.json", data_dir=tiny["root"], store=local)
    (board,) = load_boards(local, reference=tiny["store"])
    assert sorted((r.model.name, board.is_shipped(i)) for i, r in enumerate(board.entries)) \
        == [("late_fusion", True), ("mren", False), ("mren", True)]
    assert sorted(board.label(i) for i in range(3)) == [
        "late_fusion (reference)", "mren", "mren (reference)"]
    written = write_leaderboard(local, tmp_path / "site", reference=tiny["store"])
    text = written.markdown.read_text()
    runs_column = [line.rsplit("|", 2)[1].strip() for line in text.splitlines()
                   if line.startswith(("| 1 |", "| 2 |", "| 3 |"))]  # the main table's last
    assert sorted(runs_column) == ["shipped reference", "shipped reference", "this machine"]
    assert "labelled `(reference)`" in text
    page = written.html.read_text()
    assert page.count('<tr class="shipped"><td') >= 2
    assert '<td class="model">mren (reference)</td>' in page
    assert '<tr class="local"><td' in page and '<td class="model">mren</td>' in page

    result = CliRunner().invoke(_main(), ["leaderboard", "--store", str(local), "--out",
                                          str(tmp_path / "plain"), "--no-reference"])
    assert result.exit_code == 0, result.output
    plain = (tmp_path / "plain" / "index.md").read_text()
    assert "(reference)" not in plain and "| mren |" in plain


def test_make_dataset_makes_the_main_tasks_dataset_once(tmp_path):
    from benchmark.scoring import load_test_reference

    log: list[str] = []
    main = REFERENCE_TASKS[0]
    folder = make_dataset(main, tmp_path, log.append)
    _, fingerprint, _ = load_test_reference(get_task(main), folder)
    assert fingerprint == get_task(main).dataset_fingerprint
    assert make_dataset(main, tmp_path, log.append) == folder
    assert "already built" in log[-1]
    with pytest.raises(ValueError, match=r"make its dataset with `sdme download sample "):
        make_dataset(SAMPLE, tmp_path)  # a raw corpus is built by `sdme build`
    # another corpus in a pinned task's folder is refused, not taken or overwritten
    from sdme.synth import SynthConfig, synthesize

    other = tmp_path / "other"
    synthesize(other / "built" / get_task(main).dataset,
               SynthConfig(n=60, dims={"text": 4, "audio": 3, "vision": 2},
                           seq_len={"text": (2, 3), "audio": (2, 3), "vision": (2, 3)}))
    with pytest.raises(ValueError, match=r"holds another corpus than task .* move it away"):
        make_dataset(main, other)
    assert (other / "built" / get_task(main).dataset / "build_info.json").is_file()


def test_bench_relevance_prints_every_model_and_the_targets(tiny, capsys):
    """perf/bench_relevance.py: the comparison table and mren's targets, read from a store."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "perf" / "bench_relevance.py"
    spec = importlib.util.spec_from_file_location("bench_relevance", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--store", str(tiny["store"]), "--task", SAMPLE]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| model | accuracy | macro F1 | dev 0")
    assert sorted(line.split(" | ")[0][2:] for line in rows[1:]) == ["late_fusion", "mren"]
    assert "mren - late_fusion on dev >= 1" in out and "relevance AUROC" in out
    assert bench.main(["--store", str(tiny["root"] / "missing"), "--task", SAMPLE]) == 1
    assert "no leaderboard store" in capsys.readouterr().err
    (tiny["root"] / "empty").mkdir()
    assert bench.main(["--store", str(tiny["root"] / "empty"), "--task", SAMPLE]) == 1
    assert "no results for sdme-sample-discrete" in capsys.readouterr().err
