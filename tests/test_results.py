"""The results-file schema: round trip, strict validation with errors naming the field, the
predictions file, and the Hugging Face exporters."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from benchmarkdata import toy_results

from benchmark.export import to_eval_results, to_model_index
from benchmark.results import (
    ResultsError,
    load_results,
    predictions_sha256,
    read_json_file,
    read_predictions,
    read_predictions_bytes,
    results_from_dict,
    write_predictions,
)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return toy_results(tmp_path_factory.mktemp("store") / "results")


@pytest.fixture
def document(written) -> dict:
    return json.loads(written.results_path.read_text())  # a fresh copy for each test


def test_round_trip(written):
    loaded = load_results(written.results_path)
    assert loaded == written.results
    assert loaded.to_dict() == written.results.to_dict()
    assert written.results_path == written.results_path.parent.parent / "toy" / \
        "sdme-sample-discrete.json"
    assert loaded.predictions.path == "sdme-sample-discrete.predictions.jsonl"
    assert loaded.predictions.rows == 3 * 8
    assert loaded.main_score() == loaded.aggregate.metrics["accuracy"]


def test_aggregate_is_computed_from_the_seeds(written):
    r = written.results
    values = [s.metrics["accuracy"] for s in r.per_seed]
    assert r.aggregate.metrics["accuracy"].mean == pytest.approx(sum(values) / len(values))
    assert r.aggregate.metrics["accuracy"].n == 3


def _error(data: dict) -> str:
    with pytest.raises(ResultsError) as info:
        results_from_dict(data, "r.json")
    return str(info.value)


def test_missing_field_is_named(document):
    del document["per_seed"][1]["metrics"]
    assert _error(document) == "r.json: per_seed[1].metrics: missing required field"


def test_unknown_field_is_named(document):
    document["aggregate"]["extra"] = 1
    assert "aggregate: unknown field(s) ['extra']" in _error(document)
    del document["aggregate"]["extra"]
    document["surprise"] = True
    assert "(top level): unknown field(s) ['surprise']" in _error(document)


def test_wrong_type_is_named(document):
    document["per_seed"][0]["metrics"]["accuracy"] = "0.5"
    assert "per_seed[0].metrics.accuracy: expected a number" in _error(document)
    document["per_seed"][0]["metrics"]["accuracy"] = True
    assert "per_seed[0].metrics.accuracy: expected a number" in _error(document)


def test_integer_fields_refuse_floats(document):
    document["seeds"][0] = 0.5
    assert "seeds[0]: expected an integer" in _error(document)


def test_null_where_not_allowed(document):
    document["model"]["name"] = None
    assert "model.name: must not be null" in _error(document)


def test_nan_and_infinity_are_refused(document, tmp_path):
    path = tmp_path / "nan.json"
    # json.dumps writes a literal NaN (not strict JSON, but what a careless writer produces)
    data = copy.deepcopy(document)
    data["aggregate"]["metrics"]["accuracy"]["mean"] = float("nan")
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"aggregate.metrics.accuracy.mean: nan is not a "
                                           r"finite number"):
        load_results(path)
    data["aggregate"]["metrics"]["accuracy"]["mean"] = 0.5
    data["model"]["config"]["lr"] = float("inf")
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"model.config.lr: inf is not a finite number"):
        load_results(path)


def test_unknown_schema_version(document):
    document["schema_version"] = 3
    assert "schema_version: unknown schema version 3; this toolkit reads 1, 2" in _error(
        document)


def test_version_1_files_are_migrated(document):
    """Version 1 predates `benchmark tune`: read as version 2 with no tuning record."""
    assert document["schema_version"] == 2 and document["model"]["tuning"] is None
    old = copy.deepcopy(document)
    old["schema_version"] = 1
    del old["model"]["tuning"]
    loaded = results_from_dict(old, "old.json")
    assert loaded.schema_version == 2 and loaded.model.tuning is None
    assert loaded.to_dict() == results_from_dict(document).to_dict()
    old["model"]["tuning"] = None
    assert "model: unknown field(s) ['tuning'] in a schema version 1 file" in _error(old)


def _tuning() -> dict:
    return {"model": "toy", "task": "sdme-sample-discrete@1", "study": "toy@sdme-sample-discrete@1",
            "fingerprint": "a" * 64, "metric": "accuracy", "higher_is_better": True,
            "best_value": 0.5, "best_trial": 3, "trials": 4, "pruned": 1, "failed": 0,
            "budget_trials": 4, "epochs": 2, "seed": 0, "sampler": "TPESampler",
            "pruner": "none", "space": {"train": {"lr": {"type": "float", "low": 0.0001,
                                                         "high": 0.003, "log": True}}},
            "optuna": "5.0.0", "created": "2026-01-01T00:00:00+00:00"}


def test_tuning_record_is_checked(document):
    document["model"]["tuning"] = _tuning()
    assert results_from_dict(document).model.tuning.best_trial == 3
    for change, message in (({"fingerprint": "abc"}, "model.tuning.fingerprint: 'abc' is not"),
                            ({"model": "mren"}, "model.tuning.model: 'mren' is not the model"),
                            ({"task": "x@1"}, "model.tuning.task: 'x@1' is not the task"),
                            ({"pruned": 4}, "at least one trial complete"),
                            ({"epochs": 0}, "budget and epochs at least 1"),
                            ({"best_value": "0.5"}, "model.tuning.best_value: expected a number")):
        document["model"]["tuning"] = {**_tuning(), **change}
        assert message in _error(document), change
    document["model"]["tuning"] = {**_tuning(), "extra": 1}
    assert "model.tuning: unknown field(s) ['extra']" in _error(document)


def test_aligned_and_conflicting_pool_the_deviation_levels(written):
    for seed in written.results.per_seed:
        levels, agreement = seed.stratified.by_deviation, seed.stratified.by_agreement
        assert set(agreement) == {"aligned", "conflicting"}
        assert agreement["aligned"] == levels["0"]
        conflicting = [s for level, s in levels.items() if level != "0"]
        assert agreement["conflicting"].n == sum(s.n for s in conflicting) > 0
        correct = sum(s.accuracy * s.n for s in conflicting)
        assert agreement["conflicting"].accuracy == pytest.approx(
            correct / agreement["conflicting"].n)
    aggregate = written.results.aggregate.stratified.by_agreement
    values = [s.stratified.by_agreement["conflicting"].accuracy
              for s in written.results.per_seed]
    assert aggregate["conflicting"].mean == pytest.approx(sum(values) / len(values))


def test_schema_1_files_are_read_with_the_agreement_strata_derived(document):
    old = copy.deepcopy(document)
    old["schema_version"] = 1
    del old["model"]["tuning"]
    for seed in old["per_seed"]:
        del seed["stratified"]["by_agreement"]
    del old["aggregate"]["stratified"]["by_agreement"]
    upgraded = results_from_dict(old, "old.json")
    current = results_from_dict(document, "new.json")
    assert upgraded.schema_version == current.schema_version == 2
    assert upgraded.to_dict() == current.to_dict()
    # a schema-2 file must have the stratum
    del document["per_seed"][0]["stratified"]["by_agreement"]
    assert "per_seed[0].stratified.by_agreement: missing required field" in _error(document)


def test_not_a_results_file(document):
    document["format"] = "lm-eval"
    assert "not an SDME results file" in _error(document)
    assert "expected a JSON object" in _error([1, 2])  # type: ignore[arg-type]


def test_metric_out_of_range(document):
    document["per_seed"][2]["metrics"]["macro_f1"] = 1.5
    assert "per_seed[2].metrics.macro_f1: metric 'macro_f1' = 1.5 is outside [0.0, 1.0]" in \
        _error(document)


def test_seeds_must_match_the_entries(document):
    document["seeds"] = [0, 1, 7]
    assert "per_seed: per-seed entries [0, 1, 2] do not match seeds [0, 1, 7]" in \
        _error(document)
    document["seeds"] = [0, 0, 1]
    assert "duplicate seeds" in _error(document)


def test_metric_spec_version(document):
    document["metric_spec_version"] = 99
    assert "unknown metric spec version 99" in _error(document)


def test_metric_set_must_match_the_task(document):
    for seed in document["per_seed"]:
        seed["metrics"]["mae"] = 0.1
    document["aggregate"]["metrics"]["mae"] = document["aggregate"]["metrics"]["accuracy"]
    assert "aggregate.metrics: metrics" in _error(document)


def test_digests_and_paths(document):
    bad = copy.deepcopy(document)
    bad["dataset"]["fingerprint"] = "abc"
    assert "dataset.fingerprint: 'abc' is not a sha256 hex digest" in _error(bad)
    bad = copy.deepcopy(document)
    bad["predictions"]["path"] = "../elsewhere.jsonl"
    assert "predictions.path" in _error(bad)


def test_robustness_curve_length(document):
    document["per_seed"][0]["robustness"]["noise"]["text"].append(0.5)
    assert "per_seed[0].robustness.noise.text: 5 values for 4 levels" in _error(document)


def test_created_must_be_a_date(document):
    document["created"] = "yesterday"
    assert "created: 'yesterday' is not an ISO-8601 date" in _error(document)


def test_file_errors(tmp_path):
    with pytest.raises(ResultsError, match="no such file"):
        read_json_file(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": ')
    with pytest.raises(ResultsError, match="bad.json: malformed JSON"):
        load_results(bad)
    big = tmp_path / "big.json"
    big.write_text("{}" + " " * 100)
    with pytest.raises(ResultsError, match="over the 50-byte limit"):
        read_json_file(big, max_bytes=50)


def test_deep_json_and_giant_integers_are_one_line_refusals(document, tmp_path):
    """Issue #12: JSON nested 100k deep (in the results, in its config, in one predictions
    line) and an integer literal over 4,300 digits were a RecursionError and a ValueError
    traceback; both are one ResultsError line naming the file (and line)."""
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "r.json"
    document["model"]["config"] = {"x": "DEEP"}
    document["seeds"][0] = "HUGE"
    base = json.dumps(document)
    for text, fragment in (
            (deep, "JSON nested 100000 levels deep (at most 64)"),
            (base.replace('"DEEP"', deep), "JSON nested 100003 levels deep"),
            (base.replace('"HUGE"', "7" * 5000), "an integer literal of 5000 digits (at most 40)")):
        path.write_text(text)
        with pytest.raises(ResultsError) as info:
            load_results(path)
        assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value)
        assert "\n" not in str(info.value)
    ok = '{"seed":0,"clip_id":"a","prediction":1,"conditions":{}}'
    for line, fragment in (('{"seed":0,"clip_id":"a","prediction":1,"conditions":{"x":'
                            + deep + "}}", "JSON nested 100002 levels deep"),
                           ('{"seed":' + "1" * 4301 + ',"clip_id":"a","prediction":1,'
                            '"conditions":{}}', "an integer literal of 4301 digits")):
        predictions = _write_lines(tmp_path / "p.jsonl", [ok.replace('"a"', '"b"'), line])
        with pytest.raises(ResultsError, match=rf"p\.jsonl: line 2: not a JSON object: "
                                               rf"{fragment}"):
            read_predictions(predictions, discrete=True)


def test_predictions_round_trip(written):
    records = read_predictions(written.predictions_path, discrete=True)
    assert sorted(records) == [0, 1, 2]
    assert all(len(v) == 8 for v in records.values())
    first = records[0]["c00"]
    assert set(first) == {"seed", "clip_id", "prediction", "relevance", "conditions"}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predictions_errors(tmp_path):
    ok = '{"seed":0,"clip_id":"a","prediction":1,"conditions":{}}'
    path = _write_lines(tmp_path / "p.jsonl", [ok, ok])
    with pytest.raises(ResultsError, match=r"line 2: duplicate prediction for clip 'a', seed 0 "
                                           r"\(first on line 1\)"):
        read_predictions(path, discrete=True)
    path = _write_lines(tmp_path / "p.jsonl", ['{"seed":0,"clip_id":"a","prediction":NaN,'
                                               '"conditions":{}}'])
    with pytest.raises(ResultsError, match=r"line 1.prediction: expected a finite number"):
        read_predictions(path, discrete=False)
    path = _write_lines(tmp_path / "p.jsonl", ['{"seed":0,"clip_id":"a","prediction":1.5,'
                                               '"conditions":{}}'])
    with pytest.raises(ResultsError, match=r"expected a class index"):
        read_predictions(path, discrete=True)
    path = _write_lines(tmp_path / "p.jsonl", ['{"seed":0,"clip_id":"a","prediction":1,'
                                               '"conditions":{},"label":1}'])
    with pytest.raises(ResultsError, match=r"line 1: fields"):
        read_predictions(path, discrete=True)
    path = _write_lines(tmp_path / "p.jsonl", ['{"seed":0,"clip_id":"a","prediction":1,'
                                               '"conditions":{"drop:text":Infinity}}'])
    with pytest.raises(ResultsError, match=r"conditions.drop:text"):
        read_predictions(path, discrete=False)
    path = _write_lines(tmp_path / "p.jsonl", ['{"seed":0,"clip_id":"a","prediction":1,'
                                               '"relevance":{"text":1.5},"conditions":{}}'])
    with pytest.raises(ResultsError, match=r"relevance.text: expected a weight in \[0, 1\]"):
        read_predictions(path, discrete=True)
    path = _write_lines(tmp_path / "p.jsonl", ["not json"])
    with pytest.raises(ResultsError, match="line 1: not a JSON object"):
        read_predictions(path, discrete=True)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ResultsError, match="no predictions"):
        read_predictions(tmp_path / "empty.jsonl", discrete=True)


def test_compressed_predictions_are_the_same_predictions(written, tmp_path):
    """``.jsonl.gz`` holds the same lines gzip-compressed, byte-identical run to run; the
    recorded sha256 is that of the lines, so both forms have one digest; both read back the
    same records."""
    records = read_predictions(written.predictions_path, discrete=True)
    ordered = [records[s][c] for s in sorted(records) for c in sorted(records[s])]
    plain, packed = tmp_path / "p.predictions.jsonl", tmp_path / "p.predictions.jsonl.gz"
    digest, rows = write_predictions(plain, ordered)
    assert write_predictions(packed, ordered) == (digest, rows) == (digest, 24)
    first = packed.read_bytes()
    assert first[:2] == b"\x1f\x8b" and len(first) < plain.stat().st_size / 2
    write_predictions(packed, ordered)
    assert packed.read_bytes() == first  # no time stamp in the gzip header
    assert read_predictions_bytes(packed) == plain.read_bytes()
    assert predictions_sha256(packed) == predictions_sha256(plain) == digest
    assert read_predictions(packed, discrete=True) == read_predictions(plain, discrete=True)


def test_compressed_predictions_are_read_within_bounds(tmp_path):
    import gzip

    bomb = tmp_path / "bomb.predictions.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"\n" * 10_000_000))  # 10 MB of newlines in ~10 kB
    assert bomb.stat().st_size < 50_000
    with pytest.raises(ResultsError, match=r"bomb.predictions.jsonl.gz: decompresses to over "
                                           r"1000000 bytes"):
        read_predictions(bomb, discrete=True, max_bytes=1_000_000)
    broken = tmp_path / "broken.predictions.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(ResultsError, match=r"broken.predictions.jsonl.gz: not a readable gzip "
                                           r"file"):
        predictions_sha256(broken)


def test_predictions_format_must_match_the_file_name(document):
    document["predictions"]["format"] = "jsonl.gz"
    assert "does not end in .jsonl.gz (predictions.format)" in _error(document)
    document["predictions"]["format"] = "csv"
    assert "predictions.format: expected one of ['jsonl', 'jsonl.gz'], got 'csv'" in \
        _error(document)


def test_the_adhoc_flag_is_optional_and_checked(document):
    assert results_from_dict(document).task.adhoc is False
    del document["task"]["adhoc"]  # files written before the flag existed
    assert results_from_dict(document).task.adhoc is False
    document["task"]["adhoc"] = True
    assert ("task.adhoc: True for task 'sdme-sample-discrete': ad-hoc tasks, and only they, "
            "are named adhoc-<dataset>") in _error(document)
    document["task"]["adhoc"] = "yes"
    assert "task.adhoc: expected true/false" in _error(document)


def test_export_eval_results(written):
    entries = to_eval_results(written.results, "org/sdme-sample", "https://example.org/logs")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["dataset"] == {"id": "org/sdme-sample", "task_id": "sdme-sample-discrete"}
    assert entry["value"] == pytest.approx(written.results.aggregate.metrics["accuracy"].mean,
                                           abs=1e-6)
    assert entry["source"] == {"url": "https://example.org/logs", "name": "SDME benchmark"}
    assert "accuracy, mean of 3 seed(s), 95% CI ±" in entry["notes"]
    assert yaml.safe_load(yaml.safe_dump(entries)) == entries


def test_export_model_index(written):
    index = to_model_index(written.results, "org/sdme-sample")["model-index"]
    assert index[0]["name"] == "toy"
    (result,) = index[0]["results"]
    assert result["dataset"]["type"] == "org/sdme-sample"
    types = {m["type"]: m["value"] for m in result["metrics"]}
    assert set(types) == {"accuracy", "macro_f1", "weighted_f1"}
    for name, value in types.items():
        assert value == pytest.approx(written.results.aggregate.metrics[name].mean, abs=1e-6)


def test_eval_yaml_has_the_documented_required_fields(written, tmp_path):
    """The benchmark dataset's eval.yaml as the Hub's eval-results docs specify it: ``name``,
    ``description``, ``evaluation_framework`` (strings) and ``tasks`` (a list whose items have
    a string ``id``; optional string ``config`` and ``split``), nothing else at the top level
    (the inspect-ai-only fields are not ours); model results name one of its task ids."""
    from click.testing import CliRunner

    from benchmark.__main__ import main

    result = CliRunner().invoke(main, ["eval-yaml", "sample", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "evaluation_framework 'sdme' is not (yet) in Hugging Face's list" in result.output
    document = yaml.safe_load((tmp_path / "eval.yaml").read_text(encoding="utf-8"))
    assert set(document) == {"name", "description", "evaluation_framework", "tasks"}
    for key in ("name", "description", "evaluation_framework"):
        assert isinstance(document[key], str) and document[key].strip(), key
    assert document["evaluation_framework"] == "sdme"
    tasks = document["tasks"]
    assert isinstance(tasks, list) and tasks
    for task in tasks:
        assert isinstance(task, dict) and set(task) <= {"id", "config", "split"}
        assert isinstance(task["id"], str) and task["id"]
        assert all(isinstance(task[k], str) and task[k] for k in ("config", "split"))
    assert len({t["id"] for t in tasks}) == len(tasks)
    assert tasks == [{"id": "sdme-sample-discrete", "config": "default", "split": "test"}]
    (entry,) = to_eval_results(written.results, "org/sdme-sample")
    assert entry["dataset"]["task_id"] in {t["id"] for t in tasks}
    # several tasks on one dataset, and a dataset no task evaluates
    from benchmark.export import to_eval_yaml

    other = to_eval_yaml("chsims2-raw", framework="my-framework", name="CH-SIMS v2 (raw)")
    assert other["evaluation_framework"] == "my-framework"
    assert [t["id"] for t in other["tasks"]] == ["ch-sims-v2-raw"]
    assert "DiffEmo" in other["description"]
    result = CliRunner().invoke(main, ["eval-yaml", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no registered task evaluates the dataset 'nope'" in \
        result.output
