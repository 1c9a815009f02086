"""``sdme import features``: per-clip arrays + SDME annotations -> a built dataset the benchmark
accepts, with provenance saying what was imported; every bad input is a one-line error naming
the file; scored annotations are carried by the same rule as ``sdme build``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sdme.built import BuildInfo
from sdme.loading import load_dataset
from sdme.sources import SourceError, get_source
from sdme.sources.features import import_features
from sdme.validate_built import errors, validate_built

MODALITIES = ("text", "audio", "vision")


@pytest.fixture
def given(tmp_path):
    """The source's own fixture: its options and a copy we may damage."""
    with get_source("features").fixture(tmp_path / "input") as options:
        yield options


def _import(given, tmp_path, **changes):
    options = {**given, **changes}
    return import_features(options.pop("path"), options.pop("annotations"),
                           tmp_path / "out", **options)


def _array(path: Path) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return npz["features"]
    return np.load(path)


def test_import_keeps_the_arrays_and_records_what_was_imported(given, tmp_path):
    report = _import(given, tmp_path)
    out = report.out_dir
    assert errors(validate_built(out)) == []
    assert report.counts == {"train": 3, "validation": 1, "test": 2}
    assert report.dims == {"text": 8, "audio": 4, "vision": 6}
    folders = {"text": "text", "audio": "audio", "vision": "vision-utt"}
    for split in report.counts:
        for row in load_dataset(out, split=split, format="numpy"):
            for m in MODALITIES:
                folder = given["path"] / folders[m]
                source = next(folder.glob(f"{row['clip_id']}.np*"))
                want = _array(source).astype(np.float32)
                want = want.reshape(1, -1) if want.ndim == 1 else want  # [dim] -> one step
                np.testing.assert_array_equal(row[f"{m}_feat"], want)
                assert row[f"{m}_len"] == len(want)
    info = BuildInfo.load(out)
    assert info.source.extra["format"] == "imported-features"
    assert info.source.extra["annotations_sha256"] and info.split["policy"] == "corpus"
    vision = info.extractors["vision"]
    assert (vision.name, vision.version, vision.dim) == ("imported:vision-utt", "imported", 6)
    assert vision.params["files"] == 6 and vision.params["ranks"] == {"1-D": 6}
    assert vision.params["length"] == {"min": 1, "max": 1, "mean": 1.0}
    assert info.extractors["audio"].params["dtypes"] == {"float64": 6}
    # the fingerprint follows the files: change one byte of one array, it changes
    again = tmp_path / "again"
    shutil.copytree(given["path"], again)
    first = next((again / "text").glob("*.npy"))
    array = np.load(first)
    array[0, 0] += 1
    np.save(first, array)
    other = import_features(again, given["annotations"], tmp_path / "other",
                            dirs=given["dirs"])
    info2 = BuildInfo.load(other.out_dir)
    assert info2.extractors["text"].fingerprint != info.extractors["text"].fingerprint
    assert info2.extractors["audio"].fingerprint == info.extractors["audio"].fingerprint
    assert info2.source.fingerprint != info.source.fingerprint


def test_the_benchmark_accepts_the_imported_dataset(given, tmp_path):
    from benchmark.__main__ import main as benchmark

    report = _import(given, tmp_path)
    result = CliRunner().invoke(benchmark, [
        "run", "--model", "late_fusion", "--task", "sdme-sample-discrete", "--dataset",
        str(report.out_dir), "--seeds", "0", "--epochs", "1", "--device", "cpu",
        "--out", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "results" / "late_fusion" /
                           "sdme-sample-discrete.json").read_text())
    assert document["dataset"]["extractors"]["text"]["name"] == "imported:text"


def _damage(given, tmp_path, modality: str, clip_id: str, array) -> dict:
    copy = tmp_path / "damaged"
    shutil.copytree(given["path"], copy)
    folder = copy / {"vision": "vision-utt"}.get(modality, modality)
    for old in folder.glob(f"{clip_id}.np*"):
        old.unlink()
    if isinstance(array, dict):
        np.savez(folder / f"{clip_id}.npz", **array)
    elif array is not None:
        np.save(folder / f"{clip_id}.npy", array, allow_pickle=True)
    return {**given, "path": copy}


@pytest.mark.parametrize("modality, array, message", [
    ("text", np.zeros((2, 5), np.float32),
     r"text/vid03_00\.npy: text vectors are 5-d but 8-d in .*text/vid01_00\.npy"),
    ("audio", np.zeros((2, 3, 4)), r"audio/vid03_00\.npy: array of shape \(2, 3, 4\) has rank 3"),
    ("vision", np.float32(1.0), r"vision-utt/vid03_00\.npy: array of shape \(\) has rank 0"),
    ("text", np.array([["a", "b"]]), r"text/vid03_00\.npy: dtype <U1 is not a real number"),
    ("text", np.array([{"a": 1}], dtype=object), r"text/vid03_00\.npy: not a readable numpy"),
    ("audio", {"a": np.zeros((2, 4)), "b": np.zeros((2, 4))},
     r"audio/vid03_00\.npz: holds 2 arrays \(a, b\); an \.npz needs one array, or one named "
     r"'features'"),
    ("text", None, r"text: no text file for 1 clip\(s\) of the annotations, e\.g\. 'vid03_00'"),
])
def test_bad_arrays_are_one_line_errors(given, tmp_path, modality, array, message):
    damaged = _damage(given, tmp_path, modality, "vid03_00", array)
    with pytest.raises(SourceError, match=message):
        _import(damaged, tmp_path)
    assert not (tmp_path / "out").exists()


def test_missing_files_can_be_kept_as_missing(given, tmp_path):
    damaged = _damage(given, tmp_path, "audio", "vid03_00", None)
    report = _import(damaged, tmp_path, missing="empty")
    assert errors(validate_built(report.out_dir)) == []
    assert [(e.clip_id, e.modality, e.reason) for e in report.missing] == \
        [("vid03_00", "audio", "missing_file")]
    row = next(r for r in load_dataset(report.out_dir, split="train")
               if r["clip_id"] == "vid03_00")
    assert row["audio_len"] == 0 and row["text_len"] > 0


def test_nonfinite_values_follow_the_policy(given, tmp_path):
    bad = np.ones((4, 8), np.float32)
    bad[1, 2], bad[3, 0] = np.nan, np.inf
    damaged = _damage(given, tmp_path, "text", "vid03_00", bad)
    with pytest.raises(SourceError, match=r"text/vid03_00\.npy: 2 NaN/inf value\(s\); pass "
                                          r"--nonfinite zero"):
        _import(damaged, tmp_path)
    zero = _import(damaged, tmp_path, nonfinite="zero")
    assert zero.nonfinite == {"text": 2, "audio": 0, "vision": 0}
    row = next(r for r in load_dataset(zero.out_dir, split="train", format="numpy")
               if r["clip_id"] == "vid03_00")
    assert row["text_feat"][1, 2] == 0 and row["text_feat"][3, 0] == 0
    assert BuildInfo.load(zero.out_dir).nonfinite["replaced"] == {"text": 2}
    drop = import_features(damaged["path"], damaged["annotations"], tmp_path / "drop",
                           dirs=damaged["dirs"], nonfinite="drop")
    assert [e.clip_id for e in drop.dropped] == ["vid03_00"] and drop.counts["train"] == 2
    assert errors(validate_built(tmp_path / "drop")) == []


def test_ambiguous_files_folders_and_annotations(given, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(given["path"], copy)
    np.savez(copy / "text" / "vid01_00.npz", features=np.zeros((2, 8)))
    with pytest.raises(SourceError, match=r"vid01_00\.npy: clip 'vid01_00' has both "
                                          r"vid01_00\.npy and vid01_00\.npz"):
        _import({**given, "path": copy}, tmp_path)
    with pytest.raises(SourceError, match=r"vision: no such folder for the vision features"):
        _import({**given, "dirs": None}, tmp_path)
    annotations = tmp_path / "ann" / "annotations.csv"
    annotations.parent.mkdir()
    text = given["annotations"].read_text(encoding="utf-8").splitlines()
    text[2] = text[2].replace(",happiness,", ",joy,", 1)
    annotations.write_text("\n".join(text) + "\n", encoding="utf-8")
    shutil.copyfile(given["annotations"].parent / "sdme.json", annotations.parent / "sdme.json")
    with pytest.raises(SourceError, match=r"annotations\.csv:3: label 'joy' not in taxonomy"):
        _import({**given, "annotations": annotations}, tmp_path)


def test_cli_imports_and_reports_errors_in_one_line(given, tmp_path):
    from sdme.cli import main

    data = tmp_path / "data"
    args = ["import", "features", "--path", str(given["path"]), "--annotations",
            str(given["annotations"]), "--dirs", "vision=vision-utt", "--data-dir", str(data)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "imported features of 6 clips" in result.output
    assert (data / "built" / "my-features" / "build_info.json").is_file()
    extra = given["path"] / "text" / "not_annotated.npy"
    np.save(extra, np.zeros((2, 8), np.float32))
    result = CliRunner().invoke(main, args)
    assert "1 file(s) of clips not in annotations.csv left out, e.g. 'not_annotated'" in \
        result.output
    result = CliRunner().invoke(main, [*args[:-4], "--data-dir", str(data)])  # no --dirs
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "no such folder" in result.output


def test_scored_annotations_are_carried_like_sdme_build(tmp_path):
    from sdme.sources.chsims import deliver_release, write_fixture_release

    raw = deliver_release(tmp_path / "raw", write_fixture_release(tmp_path / "release"),
                          "chsims2")
    features = tmp_path / "feats"
    rng = np.random.default_rng(1)
    ids = [line.split(",", 1)[0] for line in
           (raw / "annotations.csv").read_text(encoding="utf-8").splitlines()[1:]]
    for m in MODALITIES:
        (features / m).mkdir(parents=True)
        for clip_id in ids:
            np.save(features / m / f"{clip_id}.npy", rng.standard_normal((2, 3)))
    report = import_features(features, raw / "annotations.csv", tmp_path / "out")
    assert errors(validate_built(report.out_dir)) == []
    info = BuildInfo.load(report.out_dir)
    assert info.label_rule["scale"] == "sims" and info.relevance["source"] == "unimodal_scores"
    rows = {r["clip_id"]: r for r in load_dataset(report.out_dir, split="test")}
    assert rows["video_0004$_$0002"]["score_text"] == pytest.approx(0.4)
    assert rows["video_0004$_$0002"]["label_text"] == "positive"
    assert rows["video_0004$_$0002"]["deviation"] == 1
