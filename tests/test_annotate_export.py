"""Export of collected votes into the corpus, and Label Studio interop, on real files."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest
from annotatehelpers import CLIPS, fresh_copy, prepared_corpus
from click.testing import CliRunner

from sdme.annotate import VOTES_FILE, AnnotateError
from sdme.annotate.export import export_votes
from sdme.annotate.labelstudio import (
    LOCAL_FILES_PREFIX,
    export_labelstudio,
    import_labelstudio,
    read_labelstudio_export,
)
from sdme.annotate.media import probe_streams
from sdme.annotate.project import open_project
from sdme.cli import main
from sdme.schema import CorpusManifest, read_annotations, sha256_file
from sdme.validate import validate_raw

LS_EXPORT = Path(__file__).parent / "data" / "labelstudio_export.json"


@pytest.fixture()
def raw(tmp_path_factory, tmp_path):
    return fresh_copy(prepared_corpus(tmp_path_factory), tmp_path / "raw")


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_export_writes_votes_side_file_and_manifest(raw):
    # An extra column of the user's must survive the rewrite.
    original = rows(raw / "annotations.csv")
    with open(raw / "annotations.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*original[0], "notes"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "notes": f"note {i}"} for i, r in enumerate(original))
    project = open_project(raw, votes_per_item=2, gold_every=1)
    with pytest.raises(AnnotateError, match="no votes"):
        export_votes(raw)
    store, taxonomy = project.store, project.taxonomy
    ids = [store.authenticate(store.add_person(n)).id for n in ("u1", "u2", "u3")]
    for n, who in enumerate(ids):
        for step in range(3):
            item = store.next_item(who)
            store.vote(who, item.id, taxonomy[(n + step) % 3], taxonomy)
    before = (raw / "annotations.csv").read_bytes()
    report = export_votes(raw)
    votes = store.votes()
    first = [v for v in votes if not v.repeat]
    assert any(v.repeat for v in votes)  # gold_every=1: repeats exist, and are not exported
    after = rows(raw / "annotations.csv")
    for old, new in zip(original, after, strict=True):
        for m in ("text", "audio", "vision"):
            expected = [v.label for v in first if (v.clip_id, v.modality) == (old["clip_id"], m)]
            assert new[f"votes_{m}"] == ";".join(expected)
        unchanged = {k: v for k, v in old.items() if not k.startswith("votes_")}
        assert {k: new[k] for k in unchanged} == unchanged
    assert [r["notes"] for r in after] == [f"note {i}" for i in range(len(original))]
    assert sum(report.votes.values()) == len(first)
    side = rows(raw / VOTES_FILE)
    assert len(side) == len(votes)
    assert {r["annotator"] for r in side} == {f"a{i:03d}" for i in ids}  # pseudonyms, no names
    assert all(r["answered_at"].endswith("Z") and int(r["response_ms"]) >= 0 for r in side)
    assert sum(r["repeat"] == "1" for r in side) == sum(v.repeat for v in votes)
    manifest = CorpusManifest.load(raw)
    entries = {e.path: e for e in manifest.files}
    for name in ("annotations.csv", VOTES_FILE):
        assert entries[name].sha256 == sha256_file(raw / name)
    assert "sdme annotate" in manifest.annotation_protocol["unimodal_votes"]
    assert manifest.annotation_protocol["annotators_per_modality"] == 2
    assert (report.backup / "annotations.csv").read_bytes() == before
    report_check = validate_raw(raw, check_media=False)
    assert report_check.ok, [str(p) for p in report_check.problems]
    kappa = report_check.summary()["fleiss_kappa"]
    assert set(kappa) == {"text", "audio", "vision"}
    # Exporting again gives the same corpus files, and keeps another backup.
    text = (raw / "annotations.csv").read_text(encoding="utf-8")
    again = export_votes(raw)
    assert (raw / "annotations.csv").read_text(encoding="utf-8") == text
    assert again.backup != report.backup


def test_labelstudio_tasks_point_at_the_isolated_media(raw, tmp_path):
    project = open_project(raw)
    counts = export_labelstudio(project, tmp_path / "ls")
    assert counts == {"text": len(CLIPS), "audio": len(CLIPS), "vision": len(CLIPS)}
    for m, tag in (("text", "Text"), ("audio", "Audio"), ("vision", "Video")):
        config = ET.fromstring((tmp_path / "ls" / m / "config.xml").read_text(encoding="utf-8"))
        assert config.find(tag) is not None
        choices = config.find("Choices")
        assert choices.get("toName") == config.find(tag).get("name")
        assert [c.get("value") for c in choices] == list(project.taxonomy)
        assert [c.get("hotkey") for c in choices] == [str(i + 1) for i in range(7)]
        tasks = json.loads((tmp_path / "ls" / m / "tasks.json").read_text(encoding="utf-8"))
        assert sorted(t["data"]["clip_id"] for t in tasks) == sorted(CLIPS)
        for task in tasks:
            key = config.find(tag).get("value").lstrip("$")
            value = task["data"][key]
            if m == "text":
                assert value == project.media.read_text(task["data"]["clip_id"])
                continue
            assert value.startswith(LOCAL_FILES_PREFIX)
            path = project.media.root / unquote(value[len(LOCAL_FILES_PREFIX):])
            assert path.resolve() == project.media.path(task["data"]["clip_id"], m)
            kinds = [s.kind for s in probe_streams(path)]
            assert kinds == (["video"] if m == "vision" else ["audio"])


def test_labelstudio_json_export_comes_back_as_votes(raw, tmp_path):
    project = open_project(raw)
    result = CliRunner().invoke(main, ["annotate", "labelstudio", "import", str(raw),
                                       str(LS_EXPORT)])
    assert result.exit_code == 0, result.output
    assert "5 votes imported, 0 already there, 1 left out" in result.output
    got = sorted((v.clip_id, v.modality, v.annotator, v.label) for v in project.store.votes())
    assert got == [
        ("vid01_00", "audio", "labelstudio:1", "happiness"),  # the prediction is not a vote
        ("vid01_00", "audio", "labelstudio:2", "neutral"),  # completed_by as a user object
        ("vid02_00", "text", "labelstudio:2", "anger"),
        ("vid02_00", "text", "labelstudio:3", "anger"),
        ("vid03_00", "vision", "labelstudio:3", "disgust"),  # cancelled and empty: no votes
    ]  # labelstudio:1 on vid01_00 vision left out: that annotator had heard its audio
    again = import_labelstudio(project, LS_EXPORT)
    assert (len(again["imported"]), len(again["already"])) == (0, 5)
    export_votes(raw)
    clips = {c.clip_id: c for c in read_annotations(raw / "annotations.csv")}
    assert clips["vid01_00"].votes_audio == ("happiness", "neutral")
    assert clips["vid02_00"].votes_text == ("anger", "anger")
    bad = json.loads(LS_EXPORT.read_text(encoding="utf-8"))
    bad[2]["annotations"][0]["result"][0]["value"]["choices"] = ["joy"]
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(AnnotateError, match=r"bad\.json: task 103: label 'joy'"):
        read_labelstudio_export(tmp_path / "bad.json", project.taxonomy)
    (tmp_path / "min.json").write_text(json.dumps([{"id": 1, "emotion": "anger"}]))
    with pytest.raises(AnnotateError, match="JSON-MIN"):
        read_labelstudio_export(tmp_path / "min.json", project.taxonomy)


def test_cli_says_what_is_wrong_in_one_line(raw, tmp_path):
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert "annotate" in top.output
    for args, message in [
        (["annotate", "export", str(tmp_path / "nowhere")], "no raw corpus here"),
        (["annotate", "export", str(raw)], "no annotation project yet"),
        (["annotate", "prepare", str(raw), "--votes-per-item", "0"], "votes_per_item"),
        (["annotate", "prepare", str(raw), "--modalities", "text,smell"], "modalities"),
    ]:
        result = runner.invoke(main, args)
        assert result.exit_code == 1, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith("error: ") and message in line
    assert runner.invoke(main, ["annotate", "add-annotator", str(raw), "fay"]).exit_code == 0
    again = runner.invoke(main, ["annotate", "add-annotator", str(raw), "fay"])
    assert again.exit_code == 1 and "--new-link" in again.output
    listing = runner.invoke(main, ["annotate", "annotators", str(raw)])
    assert "dashboard: http://" in listing.output and "fay" in listing.output
