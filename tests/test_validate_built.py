"""Validation of built datasets: a clean build passes; each kind of corruption is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builddoubles import DOUBLES, MARKER_NO_FACE, tiny_corpus

from sdme.build import build
from sdme.validate_built import errors, validate_built


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("built")
    raw = tiny_corpus(root / "raw", {"s2c1": MARKER_NO_FACE})
    build(raw, root / "out" / "tiny", progress=False, **DOUBLES)
    return root / "out" / "tiny"


@pytest.fixture
def copy(built, tmp_path) -> Path:
    target = tmp_path / "tiny"
    shutil.copytree(built, target)
    return target


def shard(root: Path, split: str) -> Path:
    return next((root / "data").glob(f"{split}-*.parquet"))


def rewrite(path: Path, column: str, values: list | pa.Array) -> None:
    table = pq.read_table(path)
    index = table.schema.get_field_index(column)
    field = table.schema.field(index)
    array = values if isinstance(values, pa.Array) else pa.array(values, type=field.type)
    pq.write_table(table.set_column(index, field, array), path)


def test_clean_build_passes(built):
    assert validate_built(built) == []


def test_leaked_speaker_is_named(copy):
    train, test = shard(copy, "train"), shard(copy, "test")
    train_speaker = pq.read_table(train).column("speaker_id")[0].as_py()
    speakers = pq.read_table(test).column("speaker_id").to_pylist()
    rewrite(test, "speaker_id", [train_speaker] + speakers[1:])
    problems = errors(validate_built(copy))
    leak = [p for p in problems if "leakage" in p.message]
    assert len(leak) == 1, problems
    assert f"speaker {train_speaker!r} appears in train, test" in str(leak[0])
    assert leak[0].column == "speaker_id"


def test_leak_is_only_a_warning_when_the_corpus_fixed_its_splits(copy):
    train, test = shard(copy, "train"), shard(copy, "test")
    train_video = pq.read_table(train).column("video_id")[0].as_py()
    videos = pq.read_table(test).column("video_id").to_pylist()
    rewrite(test, "video_id", [train_video] + videos[1:])
    info = json.loads((copy / "build_info.json").read_text())
    info["split"]["policy"] = "corpus"
    (copy / "build_info.json").write_text(json.dumps(info))
    problems = validate_built(copy)
    assert errors(problems) == []
    assert [p.severity for p in problems] == ["warning"]
    assert f"source video {train_video!r}" in problems[0].message


def test_nan_in_features_names_the_clip(copy):
    path = shard(copy, "train")
    table = pq.read_table(path)
    column = table.column("vision_feat").combine_chunks()
    storage = column.storage
    values = storage.flatten().flatten().to_numpy().copy()
    row = 1 + int(np.flatnonzero(storage.value_lengths().to_numpy()[1:])[0])  # not row 0
    values[storage.offsets[row].as_py() * 5 + 3] = np.nan  # 5-d double vision features
    inner = pa.ListArray.from_arrays(storage.flatten().offsets, pa.array(values, pa.float32()))
    broken = pa.ExtensionArray.from_storage(column.type,
                                            pa.ListArray.from_arrays(storage.offsets, inner))
    rewrite(path, "vision_feat", broken)
    clip = table.column("clip_id")[row].as_py()
    problems = errors(validate_built(copy))
    assert len(problems) == 1, problems
    assert problems[0].clip_id == clip and problems[0].column == "vision_feat"
    assert problems[0].row == row and "NaN" in problems[0].message
    assert f"clip {clip!r}" in str(problems[0]) and path.name in str(problems[0])


def test_length_mismatch_is_reported(copy):
    path = shard(copy, "validation")
    lengths = pq.read_table(path).column("audio_len").to_pylist()
    rewrite(path, "audio_len", [lengths[0] + 1] + lengths[1:])
    problems = errors(validate_built(copy))
    assert len(problems) == 1, problems
    assert problems[0].column == "audio_len" and problems[0].row == 0
    assert f"audio_len is {lengths[0] + 1} but audio_feat has {lengths[0]} row(s)" \
        in problems[0].message


def test_missing_modality_must_match_build_info(copy):
    info = json.loads((copy / "build_info.json").read_text())
    assert [(e["clip_id"], e["modality"]) for e in info["missing"]] == [("s2c1", "vision")]
    info["missing"] = []
    (copy / "build_info.json").write_text(json.dumps(info))
    problems = errors(validate_built(copy))
    assert len(problems) == 1, problems
    assert problems[0].clip_id == "s2c1" and "not record the vision modality as missing" \
        in problems[0].message


def test_relevance_must_follow_the_votes(copy):
    path = shard(copy, "train")
    table = pq.read_table(path)
    relevance = table.column("relevance_text").to_pylist()
    rewrite(path, "relevance_text", [0.0 if relevance[0] != 0.0 else 1.0] + relevance[1:])
    problems = errors(validate_built(copy))
    assert len(problems) == 1, problems
    assert problems[0].column == "relevance_text"
    assert problems[0].clip_id == table.column("clip_id")[0].as_py()


def test_label_outside_taxonomy(copy):
    path = shard(copy, "test")
    labels = pq.read_table(path).column("label").to_pylist()
    rewrite(path, "label", [17] + labels[1:])
    problems = errors(validate_built(copy))
    assert any(p.column == "label" and "outside the taxonomy" in p.message for p in problems)


def test_counts_and_files_must_agree_with_card_and_build_info(copy):
    info = json.loads((copy / "build_info.json").read_text())
    info["counts"]["splits"]["train"] += 1
    (copy / "build_info.json").write_text(json.dumps(info))
    problems = errors(validate_built(copy))
    assert len(problems) == 1 and "build_info.json" in problems[0].file
    assert "'train': counts say" in problems[0].message

    shard(copy, "validation").unlink()
    problems = errors(validate_built(copy))
    assert any("README.md" in p.file and "no file matches" in p.message for p in problems)


def test_schema_problems(copy):
    path = shard(copy, "train")
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["deviation"]), path)
    problems = errors(validate_built(copy))
    assert [(p.column, p.message) for p in problems] == [("deviation",
                                                          "required column missing")]


def test_missing_files(copy, tmp_path):
    (copy / "build_info.json").unlink()
    problems = errors(validate_built(copy))
    assert any(p.file.endswith("build_info.json") and "missing" in p.message for p in problems)
    (copy / "README.md").unlink()
    assert any(p.file.endswith("README.md") for p in validate_built(copy))
    assert "not a folder" in str(validate_built(tmp_path / "nope")[0])


def _drop_split(root: Path, split: str) -> None:
    """Removes a split the way a producer that never wrote it would: no shard, no card entry."""
    import yaml

    shard(root, split).unlink()
    text = (root / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    card = yaml.safe_load(header)
    for config in card["configs"]:
        config["data_files"] = [e for e in config["data_files"] if e["split"] != split]
    card["dataset_info"]["splits"] = [s for s in card["dataset_info"]["splits"]
                                      if s["name"] != split]
    (root / "README.md").write_text("---\n" + yaml.safe_dump(card) + "---\n" + body)
    info = json.loads((root / "build_info.json").read_text())
    del info["counts"]["splits"][split]
    info["data_files"].pop(split, None)
    (root / "build_info.json").write_text(json.dumps(info))


def test_validate_and_the_benchmark_apply_one_definition(copy):
    """A dataset without a validation split: `sdme validate --built` refuses it, and the
    benchmark refuses it with the same problem (one definition: check_structure) before it
    reads any row; a clean dataset passes both."""
    from benchmark.scoring import ProtocolError, check_built
    from sdme.validate_built import structure_problems

    check_built(copy)  # clean: nothing raised
    _drop_split(copy, "validation")
    problems = errors(validate_built(copy))
    assert [p.message for p in problems] == [
        "no 'validation' split (a built dataset has train, validation and test: the benchmark "
        "trains, selects and scores on them)"]
    assert [str(p) for p in structure_problems(copy)] == [str(p) for p in problems]
    with pytest.raises(ProtocolError, match=r"not a usable built dataset \(1 problem\(s\); "
                       r"`sdme validate --built .*` checks it all\):\n  .*README.md: no "
                       r"'validation' split"):
        check_built(copy)
    with pytest.raises(ProtocolError, match="no 'validation' split"):
        check_built(copy, shards=False)  # what tune checks, without opening the test split


def test_a_missing_column_fails_both_the_same_way(copy):
    from benchmark.scoring import ProtocolError, check_built

    path = shard(copy, "test")
    pq.write_table(pq.read_table(path).drop_columns(["relevance_text"]), path)
    [problem] = errors(validate_built(copy))
    assert problem.column == "relevance_text" and problem.message == "required column missing"
    with pytest.raises(ProtocolError, match="relevance_text.*required column missing"):
        check_built(copy)


def test_a_raw_corpus_given_as_a_built_dataset_says_so(built):
    raw = built.parents[1] / "raw"
    problems = errors(validate_built(raw))
    assert problems, "a raw corpus passed as built"
    assert any("not a built dataset" in p.message or "raw corpus" in p.message
               for p in problems), problems
    assert not any("KeyError" in p.message for p in problems)
