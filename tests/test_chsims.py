"""CH-SIMS from its raw release: the ``chsims`` source turns the documented layout (a fixture made
of the sample's real clips) into a scored raw corpus; ``sdme build`` carries the scores and
derives labels and relevance by the same rule as ``sdme import mmsa``; bad releases are one-line
errors; and the ``ch-sims-v2-raw`` task reports accuracy on aligned vs conflicting clips."""

from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from builddoubles import DOUBLES, write_raw_corpus
from click.testing import CliRunner

from sdme.build import build
from sdme.built import BuildInfo
from sdme.loading import load_dataset
from sdme.mmsa import fake_split
from sdme.schema import CorpusManifest, RawClip, clip_media_path, read_annotations
from sdme.scores import SENTIMENT_TAXONOMY, discretise, score_relevance
from sdme.sources import SourceError
from sdme.sources.chsims import (
    FIXTURE_ROWS,
    clip_duration,
    deliver_release,
    write_fixture_release,
)
from sdme.sources.mmsa import import_mmsa
from sdme.validate import validate_raw
from sdme.validate_built import errors, validate_built

MODES = {"train": "train", "valid": "validation", "test": "test"}
# Per fixture row: how many modalities' classes differ from the clip's (worked out by hand from
# FIXTURE_ROWS with the sims bins: negative <= -0.1 < neutral <= 0.1 < positive).
DEVIATION = [0, 1, 2, 0, 0, 1, 0, 1]


def clip_id(row: tuple) -> str:
    return f"{row[0]}$_${row[1]}"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_fixture_release(tmp_path_factory.mktemp("release") / "ch-sims-v2")


@pytest.fixture(scope="module")
def raw(release, tmp_path_factory) -> Path:
    return deliver_release(tmp_path_factory.mktemp("data") / "chsims2-raw", release, "chsims2")


def test_release_becomes_a_scored_raw_corpus(release, raw):
    clips = read_annotations(raw / "annotations.csv")
    assert [c.clip_id for c in clips] == [clip_id(r) for r in FIXTURE_ROWS]
    for clip, row in zip(clips, FIXTURE_ROWS, strict=True):
        video, number, _, text, score, t, a, v, mode = row
        assert (clip.video_id, clip.speaker_id, clip.text, clip.language) == (video, video,
                                                                               text, "zh")
        assert (clip.score, clip.score_text, clip.score_audio, clip.score_vision) == \
            (score, t, a, v)
        assert clip.label == discretise(score, "sims") and clip.split == MODES[mode]
        assert clip.votes("text") == clip.votes("audio") == clip.votes("vision") == ()
        media = clip_media_path(raw, clip.clip_id)
        assert clip.start == 0.0 and clip.end == round(clip_duration(media), 3) > 1.0
        # a hard link to the release's file, not a copy
        assert os.stat(media).st_ino == os.stat(release / "Raw" / video / f"{number}.mp4").st_ino
    manifest = CorpusManifest.load(raw)
    assert manifest.name == "chsims2" and manifest.taxonomy == SENTIMENT_TAXONOMY
    assert manifest.annotation_protocol["score_scale"] == "sims"
    assert manifest.extra["release"]["annotation_disagreements"] == 0
    assert manifest.extra["release"]["clip_files"] == "hard links"
    assert "Liu" in manifest.citation and "research use" in manifest.license
    report = validate_raw(raw)  # media decoded
    assert report.ok, [str(p) for p in report.problems]
    assert report.summary()["deviation"] == {0: 4, 1: 3, 2: 1}


def _mmsa_pickle_with_the_fixture_scores(folder: Path) -> Path:
    """An MMSA-format pickle (random features) with the fixture's ids, scores and splits."""
    rng = np.random.default_rng(3)
    data = {}
    for mode in MODES:
        rows = [r for r in FIXTURE_ROWS if r[8] == mode]
        split = fake_split("chsims2", mode, len(rows), rng)
        split["id"] = np.array([clip_id(r) for r in rows], dtype=object)
        split["raw_text"] = np.array([r[3] for r in rows], dtype=object)
        for key, col in (("regression_labels", 4), ("regression_labels_T", 5),
                         ("regression_labels_A", 6), ("regression_labels_V", 7)):
            split[key] = np.array([r[col] for r in rows], dtype=np.float32)
        data[mode] = split
    path = folder / "sims_unaligned.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path


def test_build_carries_the_scores_by_the_rule_import_mmsa_uses(raw, tmp_path):
    out = tmp_path / "built" / "chsims2-raw"
    report = build(raw, out, progress=False, **DOUBLES)
    assert report.counts == {"train": 4, "validation": 2, "test": 2}
    assert errors(validate_built(out)) == []
    info = BuildInfo.load(out)
    assert info.split["policy"] == "corpus"
    assert info.score["scale"] == "sims" and info.label_rule["scale"] == "sims"
    assert info.relevance["source"] == "unimodal_scores"
    rows = {r["clip_id"]: r for s in ("train", "validation", "test")
            for r in load_dataset(out, split=s)}

    imported = import_mmsa(_mmsa_pickle_with_the_fixture_scores(tmp_path), "chsims2",
                           tmp_path / "mmsa")
    mmsa_info = BuildInfo.load(imported.out_dir)
    assert (info.label_rule, info.relevance) == (mmsa_info.label_rule, mmsa_info.relevance)
    mmsa_rows = {r["clip_id"]: r for s in ("train", "validation", "test")
                 for r in load_dataset(imported.out_dir, split=s)}
    assert rows.keys() == mmsa_rows.keys() == {clip_id(r) for r in FIXTURE_ROWS}
    compared = ["label", "score", "deviation", *(f"{k}_{m}" for k in ("score", "label",
                                                                       "relevance")
                                                 for m in ("text", "audio", "vision"))]
    for row, deviation in zip(FIXTURE_ROWS, DEVIATION, strict=True):
        built, via_mmsa = rows[clip_id(row)], mmsa_rows[clip_id(row)]
        assert {k: built[k] for k in compared} == {k: via_mmsa[k] for k in compared}
        assert built["deviation"] == deviation
        expected = score_relevance(row[4], dict(zip(("text", "audio", "vision"), row[5:8],
                                                    strict=True)), "sims").as_row()
        assert {k: built[k] for k in expected} == pytest.approx(expected)


def _rewrite_labels(release: Path, edit, name: str = "label.csv") -> None:
    with open(release / "label.csv", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames), list(reader)
    fields, rows = edit(fields, rows)
    (release / "label.csv").unlink()
    with open(release / name, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _edit_row(index: int, **values: str):
    def edit(fields, rows):
        rows[index].update(values)
        return fields, rows
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda f, r: ([c for c in f if c != "label_V"], r), r"label\.csv: missing column\(s\) "
                                                         r"label_V"),
    (_edit_row(2, mode="dev"), r"label\.csv:4: mode 'dev' is not one of train, valid, test"),
    (_edit_row(0, label_T="abc"), r"label\.csv:2: label_T 'abc' is not a number"),
    (_edit_row(1, label="1.5"), r"label\.csv:3: label 1.5 is outside \[-1, 1\]"),
    (_edit_row(3, clip_id="0001"), r"label\.csv:5: clip video_0002/0001 is listed twice"),
    (_edit_row(7, video_id="video_0009"), r"label\.csv: 1 listed clip\(s\) have no file, e\.g\. "
                                          r".*Raw/video_0009/0002\.mp4"),
])
def test_bad_releases_are_one_line_errors(release, tmp_path, edit, message):
    bad = tmp_path / "bad"
    shutil.copytree(release, bad)
    _rewrite_labels(bad, edit)
    with pytest.raises(SourceError, match=message):
        deliver_release(tmp_path / "out", bad, "chsims2")
    assert not (tmp_path / "out").exists()


def test_cli_error_names_the_file(tmp_path):
    from sdme.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["download", "chsims", "--path", str(empty),
                                       "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: {empty}: no label.csv or meta.csv; pass the "
                                     "release folder (with the label file and Raw/) or the "
                                     "label file with --labels")


def test_meta_csv_unpadded_ids_copies_and_annotation_disagreements(release, tmp_path, capsys):
    other = tmp_path / "v2"
    shutil.copytree(release, other)
    # meta.csv, a clip id that lost its zero padding, an 'annotation' the score contradicts
    _rewrite_labels(other, _edit_row(0, clip_id="1", annotation="Negative"), name="meta.csv")
    raw = deliver_release(tmp_path / "raw", other, "chsims2", copy=True, progress=True)
    clips = read_annotations(raw / "annotations.csv")
    assert clips[0].clip_id == "video_0001$_$0001" and clips[0].label == "positive"
    extra = CorpusManifest.load(raw).extra["release"]
    assert extra["label_file"] == "meta.csv" and extra["annotation_disagreements"] == 1
    assert extra["clip_files"] == "copies"
    media = clip_media_path(raw, clips[0].clip_id)
    assert os.stat(media).st_ino != os.stat(other / "Raw/video_0001/0001.mp4").st_ino
    assert "1 clip(s) whose 'annotation' differs" in capsys.readouterr().err


def test_raw_validation_checks_the_scores(tmp_path):
    base = RawClip(clip_id="a", video_id="v1", speaker_id="v1", start=0.0, end=1.0, text="好",
                   language="zh", label="positive", score=0.5, score_text=0.5,
                   score_audio=-0.5, score_vision=0.2)
    clips = [base, replace(base, clip_id="b", video_id="v2", speaker_id="v2", score=-0.1,
                           label="negative")]
    protocol = {"annotation_protocol": {"score_scale": "sims"}}

    def problems(clips, **manifest):
        folder = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
        write_raw_corpus(folder, clips, {c.clip_id: b"ok" for c in clips},
                         taxonomy=SENTIMENT_TAXONOMY, **manifest)
        return [str(p) for p in validate_raw(folder, check_media=False).problems]

    assert problems(clips, **protocol) == []
    # the written annotations carry the scores, read back exactly
    assert read_annotations(tmp_path / "c0" / "annotations.csv") == clips
    assert any("has scores but sdme.json declares no annotation_protocol.score_scale" in p
               for p in problems(clips))
    wrong = [clips[0], replace(clips[1], label="neutral")]
    assert any("label 'neutral' does not follow from score -0.1 by the sims rule" in p
               and ":3:" in p for p in problems(wrong, **protocol))
    out_of_range = [replace(clips[0], score_audio=-1.5), clips[1]]
    assert any("score_audio -1.5 is outside the sims scale [-1, 1]" in p
               for p in problems(out_of_range, **protocol))
    unscored = [clips[0], replace(clips[1], score=None)]
    assert any("clip 'b' needs a score" in p for p in problems(unscored, **protocol))
    mixed = [clips[0], replace(clips[1], score_text=None, score_audio=None, score_vision=None,
                               votes_text=("negative",))]
    assert any("unimodal scores (text, audio, vision) and votes (text) in one corpus" in p
               for p in problems(mixed, **protocol))
    assert any("unknown score scale 'likert'" in p
               for p in problems(clips, annotation_protocol={"score_scale": "likert"}))


@pytest.mark.slow
def test_release_to_real_build_to_aligned_and_conflicting_accuracy(release, tmp_path):
    """download -> `sdme build` with the real extractors -> one short benchmark run of
    ch-sims-v2-raw: the results report accuracy on aligned and on conflicting test clips."""
    from benchmark.__main__ import main as benchmark_main
    from benchmark.results import load_results
    from sdme.cli import main

    data = str(tmp_path / "data")
    runner = CliRunner()
    result = runner.invoke(main, ["download", "chsims", "--path", str(release), "--corpus",
                                  "chsims2", "--data-dir", data])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["build", "chsims2-raw", "--quiet", "--fps", "1", "--data-dir",
                                  data])
    assert result.exit_code == 0, result.output
    built = Path(data) / "built" / "chsims2-raw"
    assert errors(validate_built(built)) == []
    info = json.loads((built / "build_info.json").read_text())
    assert info["extractors"]["vision"]["name"] == "face"  # the real default extractors
    assert all(n > 0 for n in info["counts"]["splits"].values())

    result = runner.invoke(benchmark_main, ["run", "--model", "late_fusion", "--task",
                                            "ch-sims-v2-raw", "--seeds", "0", "--epochs", "1",
                                            "--device", "cpu", "--data-dir", data])
    assert result.exit_code == 0, result.output
    assert "Accuracy on aligned vs conflicting clips (deviation 0 vs >= 1)" in result.output
    results = load_results(Path(data) / "results" / "late_fusion" / "ch-sims-v2-raw.json")
    agreement = results.per_seed[0].stratified.by_agreement
    test = [DEVIATION[i] for i, r in enumerate(FIXTURE_ROWS) if r[8] == "test"]
    assert {k: s.n for k, s in agreement.items()} == {
        "aligned": test.count(0), "conflicting": len(test) - test.count(0)}
    assert set(results.aggregate.stratified.by_agreement) == {"aligned", "conflicting"}
