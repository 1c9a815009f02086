"""Raw-corpus validation: the bundled sample is clean; each kind of corruption is reported by
one line naming the file (and CSV line), and the CLI exits non-zero."""

from __future__ import annotations

import json
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
    FormatError,
    make_manifest_files,
    read_annotations,
)
from sdme.sources.sample import sample_dir
from sdme.validate import MediaReport, validate_raw


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


# --- issue #12: malformed or hostile raw corpora -----------------------------------------------

def _manifest_json(raw: Path) -> dict:
    return json.loads((raw / MANIFEST_NAME).read_text(encoding="utf-8"))


def _write_manifest_json(raw: Path, data: dict) -> None:
    (raw / MANIFEST_NAME).write_text(json.dumps(data), encoding="utf-8")


def test_annotation_protocol_string_is_its_description(corpus, tmp_path):
    """A plain string, the natural thing to write, is accepted as the protocol's description;
    any other non-object is refused naming the file and the field, by validate, build and
    `download folder` alike (it was a traceback, and a line naming neither)."""
    data = _manifest_json(corpus)
    data["annotation_protocol"] = "Five annotators per modality, majority vote."
    _write_manifest_json(corpus, data)
    manifest = CorpusManifest.load(corpus)
    assert manifest.annotation_protocol == {
        "description": "Five annotators per modality, majority vote."}
    assert validate_raw(corpus, check_media=False).ok

    data["annotation_protocol"] = ["five annotators"]
    _write_manifest_json(corpus, data)
    report = validate_raw(corpus, check_media=False)
    assert [str(p) for p in report.problems] == [
        f"error: {corpus / MANIFEST_NAME}: field 'annotation_protocol' must be an object (or a "
        "string, its description), got list"]
    runner = CliRunner()
    for args in (["validate", str(corpus)], ["build", str(corpus), "--out", str(tmp_path / "o")],
                 ["download", "folder", "--path", str(corpus), "--data-dir",
                  str(tmp_path / "data")]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output
        assert any(str(corpus / MANIFEST_NAME) in line and "'annotation_protocol'" in line
                   for line in result.output.splitlines()), (args, result.output)
    assert not (tmp_path / "o").exists() and not (tmp_path / "data" / "raw").exists()


@pytest.mark.parametrize("start, end, fragment", [
    ("nan", "2.000", "start/end must be finite numbers of seconds, got start='nan', end='2.000'"),
    ("0.000", "inf", "start/end must be finite numbers of seconds, got start='0.000', end='inf'"),
    ("-1.000", "2.000", "start (-1) must not be negative"),
])
def test_nonfinite_or_negative_times_are_refused_by_validate_and_build(corpus, tmp_path, start,
                                                                        end, fragment):
    from builddoubles import DOUBLES

    from sdme.build import BuildError, build

    edit_csv(corpus, lambda ls: [ls[0], replace_field(replace_field(ls[1], 3, start), 4, end)]
             + ls[2:])
    refresh_manifest(corpus)
    report = validate_raw(corpus, check_media=False)
    assert [(p.line, p.message) for p in report.problems if p.severity == "error"] == [
        (2, fragment)]
    with pytest.raises(BuildError, match=r"1 problem\(s\)") as info:
        build(corpus, tmp_path / "out", progress=False, **DOUBLES)
    assert f"{corpus / ANNOTATIONS_NAME}:2: {fragment}" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_validate_built_catches_nonfinite_times(tmp_path):
    """A built dataset holding start=nan / end=inf (as main's build wrote) is invalid."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from builddoubles import DOUBLES, tiny_corpus

    from sdme.build import build
    from sdme.validate_built import errors, validate_built

    out = tmp_path / "out"
    build(tiny_corpus(tmp_path / "raw"), out, progress=False, **DOUBLES)
    assert errors(validate_built(out)) == []
    shard = next((out / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    for name, value in (("start", float("nan")), ("end", float("inf"))):
        index = table.schema.get_field_index(name)
        column = table.column(name).to_pylist()
        column[0] = value
        table = table.set_column(index, table.schema.field(index), pa.array(column, pa.float32()))
    pq.write_table(table, shard)
    problems = errors(validate_built(out))
    assert [(p.file, p.row, p.column) for p in problems] == [(str(shard), 0, "start")]
    assert "start nan / end inf: expected finite seconds" in problems[0].message
    result = CliRunner().invoke(main, ["validate", "--built", str(out)])
    assert result.exit_code == 1 and "start nan / end inf" in result.output


def test_span_far_beyond_the_clip_is_a_warning(corpus):
    edit_csv(corpus, lambda ls: [ls[0], replace_field(ls[1], 4, "600.000")] + ls[2:])
    refresh_manifest(corpus)
    report = validate_raw(corpus)
    assert report.ok
    (warning,) = [p for p in report.problems if p.severity == "warning"]
    assert warning.path == str(corpus / ANNOTATIONS_NAME) and warning.line == 2
    assert warning.message.startswith("end - start = 600 s, but the clip file ")
    assert "lasts" in warning.message


def test_empty_transcript_validate_and_build_agree(tmp_path):
    """One rule (sdme.schema.empty_transcript): validate warns the build will drop the clip,
    and the build drops it."""
    from builddoubles import DOUBLES, synthetic_clips, tiny_corpus, with_text

    from sdme.build import build

    raw = tiny_corpus(tmp_path / "raw", clips=with_text(synthetic_clips(), "s1c1", " \t "))
    report = validate_raw(raw, check_media=False)
    assert report.ok
    assert [(p.severity, p.line, p.message) for p in report.problems] == [
        ("warning", 7, "clip 's1c1' has an empty transcript: `sdme build` drops it (empty_text)")]
    built = build(raw, tmp_path / "out", progress=False, **DOUBLES)
    assert [(e.clip_id, e.reason, e.action) for e in built.events] == [
        ("s1c1", "empty_text", "dropped")]


def test_clip_without_audio_is_a_warning_consistent_with_build(corpus):
    """A missing modality is valid data: validate warns, and says the build keeps the clip
    with its audio missing (tests/test_build.py checks the build does)."""
    strip_audio(corpus / "clips" / f"{first_clip(corpus)}.mp4")
    refresh_manifest(corpus)
    report = validate_raw(corpus)
    assert report.ok
    assert [(p.severity, p.message) for p in report.problems] == [
        ("warning", "no audio track: `sdme build` keeps the clip with its audio missing")]
    assert report.problems[0].path.endswith(f"{first_clip(corpus)}.mp4")


@pytest.mark.parametrize("listed", ["../../etc/passwd", "/etc/hostname", "clips/../../x",
                                    "clips\\x.mp4"])
def test_manifest_paths_outside_the_corpus_are_refused(corpus, tmp_path, listed):
    data = _manifest_json(corpus)
    data["files"].append({"path": listed, "size": 1, "sha256": "0" * 64})
    _write_manifest_json(corpus, data)
    report = validate_raw(corpus, check_media=False)
    (problem,) = report.problems
    assert problem.path == str(corpus / MANIFEST_NAME)
    assert problem.message.startswith(f"files[{len(data['files']) - 1}].path {listed!r} ")
    result = CliRunner().invoke(main, ["validate", str(corpus)])
    assert result.exit_code == 1 and result.output.count("error:") == 1


def test_symbolic_links_leaving_the_corpus_are_refused_before_reading(corpus, tmp_path,
                                                                      monkeypatch):
    """A listed file, annotations.csv or a clip that is a link to a file outside the corpus is
    refused and never read (hashed, probed or decoded); `sdme manifest` refuses to list it."""
    import hashlib

    from sdme import fileio
    from sdme.sources.folder import write_manifest

    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    clip = first_clip(corpus)
    (corpus / "clips" / f"{clip}.mp4").unlink()
    (corpus / "clips" / f"{clip}.mp4").symlink_to(secret)
    data = _manifest_json(corpus)
    entry = next(e for e in data["files"] if e["path"] == f"clips/{clip}.mp4")
    entry.update(size=len(b"not yours"), sha256=hashlib.sha256(b"not yours").hexdigest())
    _write_manifest_json(corpus, data)

    hashed, probed = [], []
    real_sha = fileio.sha256_file
    monkeypatch.setattr(fileio, "sha256_file", lambda p: hashed.append(Path(p)) or real_sha(p))

    def probe(video, audio):
        probed.append(video)
        return MediaReport()

    report = validate_raw(corpus, probe=probe)
    escaped = [p for p in report.problems if "resolves outside the corpus folder" in p.message]
    assert [p.path for p in escaped] == [str(corpus / "clips" / f"{clip}.mp4")] * 2
    assert all(p.severity == "error" for p in escaped)
    assert secret not in [p.resolve() for p in hashed + probed]
    with pytest.raises(FormatError, match="resolves outside the corpus folder"):
        write_manifest(corpus, name="x")

    (corpus / ANNOTATIONS_NAME).rename(tmp_path / "annotations.csv")
    (corpus / ANNOTATIONS_NAME).symlink_to(tmp_path / "annotations.csv")
    report = validate_raw(corpus, probe=probe)
    assert any(p.path == str(corpus / ANNOTATIONS_NAME) and "resolves outside" in p.message
               for p in report.problems)


def test_png_posing_as_a_clip_is_counted_once(corpus, tmp_path):
    """Validate says once that it does not decode; the build drops it once, and does not also
    count its audio as missing."""
    from builddoubles import DOUBLES, MARKER_IMAGE, tiny_corpus
    from PIL import Image

    from sdme.build import build

    png = corpus / "clips" / f"{first_clip(corpus)}.mp4"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(png, format="PNG")
    refresh_manifest(corpus)
    report = validate_raw(corpus)
    assert [(p.path, p.message.split(" (")[0]) for p in report.problems] == [
        (str(png), "video does not decode")]

    raw = tiny_corpus(tmp_path / "raw", {"s2c1": MARKER_IMAGE})
    built = build(raw, tmp_path / "out", progress=False, **DOUBLES)
    assert [(e.clip_id, e.modality, e.reason, e.action) for e in built.events] == [
        ("s2c1", "vision", "decode_failed", "dropped")]
    info = json.loads((tmp_path / "out" / "build_info.json").read_text())
    assert info["counts"]["missing"] == {"text": 0, "audio": 0, "vision": 0}
    assert info["counts"]["dropped"] == 1 and info["missing"] == []
    assert "kept with a missing modality" not in built.summary()


def test_csv_field_over_the_csv_limit_is_one_line(corpus):
    edit_csv(corpus, lambda ls: [ls[0], replace_field(ls[1], 5, "x" * 140_000)] + ls[2:])
    refresh_manifest(corpus)
    report = validate_raw(corpus, check_media=False)
    assert [(p.path, p.line, p.message) for p in report.problems] == [
        (str(corpus / ANNOTATIONS_NAME), 2,
         "unreadable CSV (field larger than field limit (131072))")]
