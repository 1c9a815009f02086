"""Raw-corpus validation: the bundled sample is clean; each kind of corruption is reported by
one line naming the file (and CSV line), and the CLI exits non-zero."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from sdme.cli import main
from sdme.schema import (
    ANNOTATIONS_NAME,
    MANIFEST_NAME,
    CorpusManifest,
    make_manifest_files,
    read_annotations,
)
from sdme.sources.sample import sample_dir
from sdme.validate import validate_raw


@pytest.fixture(scope="module")
def sample_report():
    return validate_raw(sample_dir())


def test_sample_is_clean_and_summarised(sample_report):
    assert sample_report.problems == []
    summary = sample_report.summary()
    assert summary["clips"] >= 24
    assert set(summary["deviation"]) == {0, 1, 2, 3}
    for m, kappa in summary["fleiss_kappa"].items():
        assert kappa is not None and 0.0 < kappa < 1.0, m


def refresh_manifest(raw: Path) -> None:
    """Re-lists sizes and checksums, so only the corruption under test is reported."""
    m = CorpusManifest.load(raw)
    fresh = CorpusManifest(**{**m.__dict__, "files": make_manifest_files(raw)})
    (raw / MANIFEST_NAME).write_text(fresh.to_json(), encoding="utf-8")


def edit_csv(raw: Path, fn: Callable[[list[str]], list[str]]) -> None:
    path = raw / ANNOTATIONS_NAME
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(fn(lines)), encoding="utf-8")


def replace_field(line: str, index: int, value: str) -> str:
    # The sample's first columns hold no quoted commas, so a plain split is exact for them.
    parts = line.split(",")
    parts[index] = value
    return ",".join(parts)


def strip_audio(path: Path) -> None:
    tmp = path.with_suffix(".noaudio.mp4")
    with av.open(str(path)) as src, av.open(str(tmp), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
    tmp.replace(path)


@pytest.fixture()
def corpus(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(sample_dir(), raw)
    return raw


def first_clip(raw: Path) -> str:
    return read_annotations(raw / ANNOTATIONS_NAME)[0].clip_id


CORRUPTIONS = {
    # name: (corrupt(raw), refresh manifest?, expected message fragment, expected path suffix)
    "checksum": (lambda raw: _flip_byte(raw / "clips" / f"{first_clip(raw)}.mp4"), False,
                 "sha256 differs from sdme.json", ".mp4"),
    "size": (lambda raw: (raw / "clips" / f"{first_clip(raw)}.mp4").open("ab").write(b"xx"),
             False, "size", ".mp4"),
    "missing_clip": (lambda raw: (raw / "clips" / f"{first_clip(raw)}.mp4").unlink(), True,
                     "clip file missing", ".mp4"),
    "duplicate_id": (lambda raw: edit_csv(raw, lambda ls: ls + [ls[1]]), True,
                     "duplicate clip_id", "annotations.csv"),
    "label": (lambda raw: edit_csv(raw, lambda ls: [ls[0], replace_field(ls[1], 7, "joy")]
                                   + ls[2:]), True, "label 'joy' not in taxonomy",
              "annotations.csv"),
    "vote": (lambda raw: edit_csv(raw, lambda ls: [ls[0], replace_field(ls[1], 8, "joy;joy")]
                                  + ls[2:]), True, "votes_text has label(s) outside",
             "annotations.csv"),
    "malformed_row": (lambda raw: edit_csv(raw, lambda ls: ls[:2] + ["a,b,c\n"] + ls[2:]), True,
                      "malformed row", "annotations.csv"),
    "end_before_start": (lambda raw: edit_csv(raw, lambda ls: [ls[0], replace_field(ls[1], 4,
                                                                                    "0.000")]
                                              + ls[2:]), True, "<= start", "annotations.csv"),
    "not_utf8": (lambda raw: (raw / ANNOTATIONS_NAME).write_bytes(
        (raw / ANNOTATIONS_NAME).read_bytes().replace(b"\n", b"\n\xff", 1)), True,
        "not valid UTF-8", "annotations.csv"),
    "undecodable": (lambda raw: (raw / "clips" / f"{first_clip(raw)}.mp4").write_bytes(
        b"\x00" * 4096), True, "video does not decode", ".mp4"),
    "no_audio": (lambda raw: strip_audio(raw / "clips" / f"{first_clip(raw)}.mp4"), True,
                 "no decodable audio track", ".mp4"),
}


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_each_corruption_is_reported(corpus, kind):
    corrupt, refresh, fragment, suffix = CORRUPTIONS[kind]
    corrupt(corpus)
    if refresh:
        refresh_manifest(corpus)
    report = validate_raw(corpus)
    assert not report.ok
    errors = [p for p in report.problems if p.severity == "error"]
    matching = [p for p in errors if fragment in p.message]
    assert matching, f"{kind}: expected {fragment!r} in {[str(p) for p in errors]}"
    assert all(p.path.endswith(suffix) for p in matching)
    if kind in {"duplicate_id", "label", "vote", "malformed_row", "end_before_start",
                "not_utf8"}:
        assert all(p.line is not None and p.line >= 2 for p in matching)
    # Only the corruption under test is an error (the manifest was refreshed where needed).
    if kind not in {"missing_clip"}:
        assert len(errors) == len(matching), [str(p) for p in errors]


def test_cli_validate_exits_nonzero_with_one_line_per_problem(corpus):
    (corpus / "clips" / f"{first_clip(corpus)}.mp4").write_bytes(b"\x00" * 100)
    edit_csv(corpus, lambda ls: [ls[0], replace_field(ls[1], 7, "joy")] + ls[2:])
    result = CliRunner().invoke(main, ["validate", str(corpus)])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert any("annotations.csv" in ln and "joy" in ln for ln in lines)
    assert any(".mp4" in ln and "in sdme.json" in ln for ln in lines)
    assert any(".mp4" in ln and "does not decode" in ln for ln in lines)


def test_cli_validate_clean_sample_prints_summary():
    result = CliRunner().invoke(main, ["validate", str(sample_dir())])
    assert result.exit_code == 0, result.output
    assert "raw corpus OK" in result.output
    assert "fleiss_kappa" in result.output and "deviation" in result.output
