"""The raw format: manifest and annotations round trips and errors that name the file."""

from __future__ import annotations

import json

import pytest

from sdme.schema import (
    CorpusManifest,
    FormatError,
    RawClip,
    make_manifest_files,
    read_annotations,
    write_annotations,
)


def test_annotations_round_trip(tmp_path):
    clips = [RawClip("a1", "v1", "s1", 0.0, 2.5, 'He said, "fine"; ok', "en", "anger",
                     ("anger", "fear"), ("anger",), (), "train"),
             RawClip("a2", "v1", "s1", 2.5, 5.0, "naïve café", "fr", "neutral")]
    path = tmp_path / "annotations.csv"
    write_annotations(path, clips)
    assert read_annotations(path) == clips


def test_malformed_row_names_file_and_line(tmp_path):
    path = tmp_path / "annotations.csv"
    path.write_text("clip_id,video_id,speaker_id,start,end,text,language,label,votes_text,"
                    "votes_audio,votes_vision\n"
                    "a,v,s,0,1,hi,en,anger,,,\n"
                    "b,v,s,0,1,hi,en,anger,,\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"annotations.csv:3: malformed row"):
        read_annotations(path)


def test_missing_column_and_bad_encoding(tmp_path):
    path = tmp_path / "annotations.csv"
    path.write_text("clip_id,label\na,anger\n", encoding="utf-8")
    with pytest.raises(FormatError, match="missing column"):
        read_annotations(path)
    path.write_bytes(b"clip_id,video_id\n\xff\xfe\n")
    with pytest.raises(FormatError, match="not valid UTF-8"):
        read_annotations(path)


def test_manifest_round_trip_and_fingerprint(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "x.mp4").write_bytes(b"abc")
    (tmp_path / ".hidden").write_bytes(b"skip me")
    m = CorpusManifest(name="t", version="1", license="CC0", files=make_manifest_files(tmp_path))
    assert [f.path for f in m.files] == ["clips/x.mp4"]
    assert m.files[0].size == 3
    (tmp_path / "sdme.json").write_text(m.to_json(), encoding="utf-8")
    again = CorpusManifest.load(tmp_path)
    assert again == m and again.fingerprint() == m.fingerprint()
    changed = CorpusManifest(name="t", version="2", license="CC0", files=m.files)
    assert changed.fingerprint() != m.fingerprint()


def test_manifest_errors_name_the_file(tmp_path):
    path = tmp_path / "sdme.json"
    path.write_text(json.dumps({"name": "x"}), encoding="utf-8")
    with pytest.raises(FormatError, match=r"sdme.json: missing required field\(s\): version"):
        CorpusManifest.load(path)
    path.write_text(json.dumps({"name": "x", "version": "1", "license": "l",
                                "format_version": 99}), encoding="utf-8")
    with pytest.raises(FormatError, match="unsupported format_version"):
        CorpusManifest.load(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(FormatError, match="not valid UTF-8 JSON"):
        CorpusManifest.load(path)
