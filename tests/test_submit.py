"""``benchmark submit``: every refusal (with nothing written), and acceptance, against a real
built dataset."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from benchmarkdata import submission_for, tiny_built
from click.testing import CliRunner

from benchmark.results import MAX_FILE_BYTES, load_results
from benchmark.submit import HISTORY_DIR, SubmissionError, check_submission, submit


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    tiny_built(root)
    return root


@pytest.fixture(scope="module")
def pristine(data_dir, tmp_path_factory):
    return submission_for(data_dir / "built" / "sample",
                          tmp_path_factory.mktemp("pristine") / "results")


@pytest.fixture
def sub(pristine, tmp_path):
    """A fresh copy of a valid submission: (results file, predictions file, store)."""
    folder = tmp_path / "results" / "toy"
    folder.mkdir(parents=True)
    shutil.copy(pristine.results_path, folder)
    shutil.copy(pristine.predictions_path, folder)
    return (folder / pristine.results_path.name, folder / pristine.predictions_path.name,
            tmp_path / "store")


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _rewrite_predictions(results: Path, predictions: Path, lines: list[str]) -> None:
    """Replaces the predictions and updates sha256/rows, so only the content is at fault."""
    blob = ("\n".join(lines) + "\n").encode()
    predictions.write_bytes(blob)

    def fix(data):
        data["predictions"]["sha256"] = hashlib.sha256(blob).hexdigest()
        data["predictions"]["rows"] = len(lines)

    _edit(results, fix)


def _refused(sub, data_dir, match: str) -> str:
    results, _, store = sub
    with pytest.raises(SubmissionError, match=match) as info:
        submit(results, data_dir=data_dir, store=store)
    assert not store.exists(), "a refused submission wrote to the store"
    return str(info.value)


def test_accepts_a_valid_submission(sub, data_dir):
    results, predictions, store = sub
    accepted = submit(results, data_dir=data_dir, store=store)
    assert accepted.results_path == store / "sdme-sample-discrete" / "toy.json"
    assert accepted.predictions_path.read_bytes() == predictions.read_bytes()
    stored = load_results(accepted.results_path)
    assert stored.predictions.path == "toy.predictions.jsonl"
    assert stored.aggregate == load_results(results).aggregate
    assert not accepted.replaced and not accepted.unchanged
    again = submit(results, data_dir=data_dir, store=store)  # the same result: nothing to do
    assert again.unchanged and not again.replaced
    # the stored copy passes the checks again (its predictions path was rewritten)
    check_submission(accepted.results_path, data_dir=data_dir)


@pytest.fixture(scope="module")
def rival(data_dir, tmp_path_factory):
    """Another valid submission of the same model and task: other predictions, other scores."""
    return submission_for(data_dir / "built" / "sample",
                          tmp_path_factory.mktemp("rival") / "results", rng_seed=7)


def test_an_accepted_result_is_never_lost(sub, rival, data_dir):
    """Issue #12: a valid resubmission silently replaced the stored entry. Now the same result
    again changes nothing; a different one is refused (naming both scores) unless replacing is
    asked for, and then the replaced pair is kept, byte for byte, in the history."""
    from benchmark.leaderboard import load_boards

    results, _, store = sub
    first = submit(results, data_dir=data_dir, store=store)
    kept = {p.name: p.read_bytes() for p in (first.results_path, first.predictions_path)}
    old = load_results(results).aggregate.metrics["accuracy"].mean
    new = load_results(rival.results_path).aggregate.metrics["accuracy"].mean
    assert old != new

    with pytest.raises(SubmissionError, match=rf"toy\.json: toy already has an accepted result "
                       rf"on sdme-sample-discrete \(accuracy {old:.4f}, created .*\); this "
                       rf"submission scores {new:.4f}\. Nothing was written: resubmit with "
                       r"--replace"):
        submit(rival.results_path, data_dir=data_dir, store=store)
    folder = first.results_path.parent
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == kept
    assert not (folder / HISTORY_DIR).exists()

    replaced = submit(rival.results_path, data_dir=data_dir, store=store, replace=True)
    assert replaced.replaced and not replaced.unchanged
    assert replaced.previous.score == pytest.approx(old)
    assert replaced.previous.archive.parent == folder / HISTORY_DIR / "toy"
    assert {p.name: p.read_bytes() for p in replaced.previous.archive.iterdir()} == kept
    assert f"accuracy was {old:.4f}" in replaced.summary()
    assert str(replaced.previous.archive) in replaced.summary()
    # the history entry still verifies; the leaderboard shows only the current one
    check_submission(replaced.previous.archive / "toy.json", data_dir=data_dir)
    (board,) = load_boards(store)
    assert [r.aggregate.metrics["accuracy"].mean for r in board.entries] == [pytest.approx(new)]
    # replacing back keeps the rival too: two archived results, none lost
    submit(results, data_dir=data_dir, store=store, replace=True)
    assert len(list((folder / HISTORY_DIR / "toy").iterdir())) == 2


def test_compressed_predictions_are_checked_and_stored_as_submitted(data_dir, tmp_path):
    """A ``.jsonl.gz`` submission is checked on its decompressed lines and stored compressed;
    replacing it with a plain one archives both files and leaves no stale predictions."""
    import gzip

    store = tmp_path / "store"
    packed = submission_for(data_dir / "built" / "sample", tmp_path / "gz", compress=True)
    assert packed.predictions_path.name == "sdme-sample-discrete.predictions.jsonl.gz"
    accepted = submit(packed.results_path, data_dir=data_dir, store=store)
    folder = accepted.results_path.parent
    assert accepted.predictions_path == folder / "toy.predictions.jsonl.gz"
    assert accepted.predictions_path.read_bytes() == packed.predictions_path.read_bytes()
    check_submission(accepted.results_path, data_dir=data_dir)

    plain = submission_for(data_dir / "built" / "sample", tmp_path / "plain", rng_seed=3)
    replaced = submit(plain.results_path, data_dir=data_dir, store=store, replace=True)
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [
        "toy.json", "toy.predictions.jsonl"]
    assert sorted(p.name for p in replaced.previous.archive.iterdir()) == [
        "toy.json", "toy.predictions.jsonl.gz"]

    # a changed compressed file is refused like a changed plain one
    original = gzip.decompress(packed.predictions_path.read_bytes())
    lines = original.replace(b'"prediction":0', b'"prediction":1', 1)
    assert lines != original
    packed.predictions_path.write_bytes(gzip.compress(lines))
    with pytest.raises(SubmissionError, match=r"predictions.jsonl.gz: sha256 differs"):
        check_submission(packed.results_path, data_dir=data_dir)


def test_cli_resubmission_needs_replace(sub, rival, data_dir):
    from benchmark.__main__ import main

    results, _, store = sub
    runner = CliRunner()
    args = ["--data-dir", str(data_dir), "--store", str(store)]
    assert runner.invoke(main, ["submit", str(results), *args]).exit_code == 0
    same = runner.invoke(main, ["submit", str(results), *args])
    assert same.exit_code == 0 and same.output.startswith("unchanged: toy")
    refused = runner.invoke(main, ["submit", str(rival.results_path), *args])
    assert refused.exit_code == 1 and "rerun" not in refused.output
    assert "submission refused:" in refused.output and "--replace" in refused.output
    done = runner.invoke(main, ["submit", str(rival.results_path), "--replace", *args])
    assert done.exit_code == 0 and done.output.startswith("replaced: toy on sdme-sample-")
    assert "the replaced result is kept in" in done.output


def test_cli_refuses_deep_json_and_giant_integers_in_one_line(sub, data_dir):
    from benchmark.__main__ import main

    results, predictions, store = sub
    runner = CliRunner()
    document = json.loads(results.read_text())
    document["model"]["config"] = "DEEP"
    document["seeds"][0] = "HUGE"
    text = json.dumps(document)
    for bad in (text.replace('"DEEP"', "[" * 100_000 + "]" * 100_000),
                text.replace('"HUGE"', "9" * 5000)):
        results.write_text(bad)
        out = runner.invoke(main, ["submit", str(results), "--data-dir", str(data_dir),
                                   "--store", str(store)])
        assert out.exit_code == 1 and out.exception is not None
        assert isinstance(out.exception, SystemExit), out.exception
        assert out.output.count("\n") == 1 and f"submission refused: {results}: " in out.output
    assert not store.exists()


def test_refuses_numbers_that_do_not_match(sub, data_dir):
    results = sub[0]
    _edit(results, lambda d: d["aggregate"]["metrics"]["accuracy"].update(
        mean=d["aggregate"]["metrics"]["accuracy"]["mean"] + 0.01))
    message = _refused(sub, data_dir, "do not match the predictions")
    assert "aggregate.metrics.accuracy.mean: reported" in message


def test_tolerance_is_one_in_a_million(sub, data_dir):
    results = sub[0]
    original = json.loads(results.read_text())
    _edit(results, lambda d: d["per_seed"][0]["metrics"].update(
        macro_f1=d["per_seed"][0]["metrics"]["macro_f1"] + 5e-7))
    check_submission(results, data_dir=data_dir)  # within 1e-6: accepted
    results.write_text(json.dumps(original))
    _edit(results, lambda d: d["per_seed"][0]["robustness"]["drop"].update(
        audio=abs(d["per_seed"][0]["robustness"]["drop"]["audio"] - 5e-6)))
    assert "per_seed[0].robustness.drop.audio" in _refused(sub, data_dir, "do not match")


def test_refuses_relevance_tampering(sub, data_dir):
    results = sub[0]

    def tamper(d):
        seed = d["per_seed"][1]
        seed["relevance_auroc"] = 1.0 if seed["relevance_auroc"] != 1.0 else 0.5
    _edit(results, tamper)
    assert "per_seed[1].relevance_auroc" in _refused(sub, data_dir, "do not match")


def test_refuses_another_dataset(sub, data_dir, tmp_path):
    # the same corpus built again with another text extractor configuration
    other = tmp_path / "other"
    shutil.copytree(data_dir / "built" / "sample", other)
    info = json.loads((other / "build_info.json").read_text())
    info["extractors"]["text"]["version"] = "2"
    (other / "build_info.json").write_text(json.dumps(info))
    results, _, store = sub
    with pytest.raises(SubmissionError, match="names another dataset"):
        submit(results, data_dir=data_dir, dataset=other, store=store)
    assert not store.exists()


def test_refuses_a_foreign_fingerprint(sub, data_dir):
    _edit(sub[0], lambda d: d["dataset"].update(fingerprint="ab" * 32))
    _refused(sub, data_dir, r"dataset.fingerprint abababababab… names another dataset")


def test_refuses_missing_clip(sub, data_dir):
    results, predictions, _ = sub
    lines = predictions.read_text().splitlines()
    _rewrite_predictions(results, predictions, lines[1:])
    _refused(sub, data_dir, r"seed 0: 1 test clip\(s\) have no prediction")


def test_refuses_duplicate_clip(sub, data_dir):
    results, predictions, _ = sub
    lines = predictions.read_text().splitlines()
    _rewrite_predictions(results, predictions, [*lines, lines[0]])
    _refused(sub, data_dir, "duplicate prediction for clip")


def test_refuses_clip_outside_the_test_split(sub, data_dir):
    results, predictions, _ = sub
    lines = predictions.read_text().splitlines()
    record = json.loads(lines[0])
    record["clip_id"] = "not-a-test-clip"
    _rewrite_predictions(results, predictions, [*lines, json.dumps(record)])
    _refused(sub, data_dir, "not in the test split")


def test_refuses_changed_predictions(sub, data_dir):
    _, predictions, _ = sub
    lines = predictions.read_text().splitlines()
    record = json.loads(lines[0])
    record["prediction"] = (record["prediction"] + 1) % 4
    predictions.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    _refused(sub, data_dir, "sha256 differs")


def test_refuses_nan_in_results(sub, data_dir):
    _edit(sub[0], lambda d: d["per_seed"][0]["metrics"].update(accuracy=float("nan")))
    _refused(sub, data_dir, r"per_seed\[0\].metrics.accuracy: nan is not a finite number")


def test_refuses_nan_in_predictions(sub, data_dir):
    results, predictions, _ = sub
    lines = predictions.read_text().splitlines()
    lines[0] = lines[0].replace('"prediction":', '"prediction":NaN,"x":', 1)
    record = json.loads(lines[0])
    del record["x"]
    _rewrite_predictions(results, predictions, [json.dumps(record), *lines[1:]])
    _refused(sub, data_dir, r"line 1.prediction: expected a class index")


def test_refuses_malformed_json(sub, data_dir):
    results = sub[0]
    results.write_text(results.read_text()[:-20])
    _refused(sub, data_dir, "malformed JSON")


def test_accepts_a_version_1_file_and_stores_it_as_version_2(sub, data_dir):
    def downgrade(document):
        document["schema_version"] = 1
        del document["model"]["tuning"]

    results, _, store = sub
    _edit(results, downgrade)
    accepted = submit(results, data_dir=data_dir, store=store)
    stored = json.loads(accepted.results_path.read_text())
    assert stored["schema_version"] == 2 and stored["model"]["tuning"] is None
    check_submission(accepted.results_path, data_dir=data_dir)


def test_refuses_missing_field(sub, data_dir):
    _edit(sub[0], lambda d: d["environment"].pop("torch"))
    _refused(sub, data_dir, "environment.torch: missing required field")


def test_refuses_unknown_schema_version(sub, data_dir):
    _edit(sub[0], lambda d: d.update(schema_version=99))
    _refused(sub, data_dir, "unknown schema version 99")


def test_refuses_oversized_file(sub, data_dir):
    with sub[0].open("ab") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # a sparse file: cheap to make
    _refused(sub, data_dir, f"is {MAX_FILE_BYTES + 1} bytes, over the {MAX_FILE_BYTES}-byte limit")


def test_refuses_oversized_predictions(sub, data_dir):
    with sub[1].open("ab") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    _refused(sub, data_dir, r"predictions.jsonl: file is \d+ bytes, over the")


def test_refuses_a_changed_task_definition(sub, data_dir):
    _edit(sub[0], lambda d: d["task"]["definition"].update(noise_levels=[0.0, 9.0]))
    _refused(sub, data_dir, "differs from the registered one")


def test_refuses_an_unknown_task(sub, data_dir):
    _edit(sub[0], lambda d: d["task"].update(name="sdme-sample-discret"))
    _refused(sub, data_dir, "Did you mean 'sdme-sample-discrete'")


def test_refuses_an_unsafe_model_name(sub, data_dir):
    _edit(sub[0], lambda d: d["model"].update(name="../../escape"))
    _refused(sub, data_dir, "must be letters, digits")


def test_cli_reports_refusal_and_acceptance(sub, data_dir):
    from benchmark.__main__ import main

    results, _, store = sub
    runner = CliRunner()
    ok = runner.invoke(main, ["submit", str(results), "--data-dir", str(data_dir),
                              "--store", str(store)])
    assert ok.exit_code == 0, ok.output
    assert "accepted: toy on sdme-sample-discrete" in ok.output
    _edit(results, lambda d: d.update(schema_version=7))
    bad = runner.invoke(main, ["submit", str(results), "--data-dir", str(data_dir),
                               "--store", str(store)])
    assert bad.exit_code == 1
    assert "submission refused:" in bad.output and "unknown schema version 7" in bad.output


def test_submit_needs_only_the_scoring():
    """Checking a submission loads the scoring, not the run: no trainer, models or torch."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, benchmark.submit; print(sorted(m for m in ("
         "'torch', 'baselines', 'benchmark.protocol', 'benchmark.robustness') "
         "if m in sys.modules))"], capture_output=True, text=True, check=True, cwd=root, env=env)
    assert loaded.stdout.strip() == "[]"
