"""The built-dataset contract (``sdme.built``): the typed provenance loads and saves strictly, and
the one writer refuses provenance that disagrees with what it wrote, leaving the old dataset."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sdme.built import (
    BUILD_INFO_NAME,
    BuildInfo,
    BuildInfoError,
    ClipEvent,
    write_built_dataset,
)
from sdme.synth import SynthConfig, synthesize
from sdme.validate_built import errors, validate_built
from sdme.writer import WriteError

SMALL = SynthConfig(n=40, dims={"text": 3, "audio": 2, "vision": 2},
                    seq_len={"text": (1, 2), "audio": (1, 2), "vision": (1, 2)},
                    missing_rate=0.2, clips_per_video=2.0, videos_per_speaker=1.0)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "syn"
    synthesize(out, SMALL)
    return out


def test_load_and_save_round_trip(built, tmp_path):
    text = (built / BUILD_INFO_NAME).read_text(encoding="utf-8")
    info = BuildInfo.load(built)  # the folder, or the file itself
    assert info == BuildInfo.load(built / BUILD_INFO_NAME)
    assert info.to_json() == text  # same keys, same order, same values
    assert info.source.extra == {"synthetic": True} and info.dims == SMALL.dims
    assert all(isinstance(e, ClipEvent) and e.action == "missing" for e in info.missing)
    assert info.counts.missing == {m: sum(e.modality == m for e in info.missing)
                                   for m in ("text", "audio", "vision")}
    saved = info.save(tmp_path)
    assert saved.read_text(encoding="utf-8") == text


def test_old_build_timings_load_under_what_they_measured(built, tmp_path):
    """``sdme build`` once wrote summed wall seconds as ``extract_<m>_cpu``: they load as
    ``clips_<m>_wall``, and a record with today's names loads unchanged."""
    data = json.loads((built / BUILD_INFO_NAME).read_text(encoding="utf-8"))
    data["timings"] = {"extract": 9.0, "extract_text_cpu": 4.0, "extract_audio_cpu": 1.0,
                       "extract_vision_cpu": 5.0, "total": 10.0}
    (tmp_path / BUILD_INFO_NAME).write_text(json.dumps(data), encoding="utf-8")
    assert BuildInfo.load(tmp_path).timings == {
        "extract": 9.0, "clips_text_wall": 4.0, "clips_audio_wall": 1.0,
        "clips_vision_wall": 5.0, "total": 10.0}
    current = {"extract": 9.0, "clips_text_wall": 4.0, "clips_text_cpu": 7.5}
    data["timings"] = current
    (tmp_path / BUILD_INFO_NAME).write_text(json.dumps(data), encoding="utf-8")
    assert BuildInfo.load(tmp_path).timings == current


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(extractor=d.pop("extractors")), "did you mean 'extractors'"),
    (lambda d: d.pop("split"), "missing field 'split'"),
    (lambda d: d["counts"].update(rows="many"), "counts: option 'rows'"),
    (lambda d: d["dropped"].append({"clip_id": "x"}), r"dropped\[0\]: missing field 'modality'"),
    (lambda d: d["extractors"]["audio"].pop("dim"), "extractors.audio: missing field 'dim'"),
])
def test_strict_load_names_the_file_and_field(built, tmp_path, edit, message):
    data = json.loads((built / BUILD_INFO_NAME).read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / BUILD_INFO_NAME
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BuildInfoError, match=message) as info:
        BuildInfo.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_unreadable_provenance(tmp_path):
    with pytest.raises(BuildInfoError, match="build provenance missing"):
        BuildInfo.load(tmp_path)
    (tmp_path / BUILD_INFO_NAME).write_text("{not json", encoding="utf-8")
    with pytest.raises(BuildInfoError, match="not valid JSON"):
        BuildInfo.load(tmp_path)


def test_validator_reports_a_bad_record(built, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    data = json.loads((copy / BUILD_INFO_NAME).read_text(encoding="utf-8"))
    data["timing"] = data.pop("timings")
    (copy / BUILD_INFO_NAME).write_text(json.dumps(data), encoding="utf-8")
    [problem] = errors(validate_built(copy))
    assert problem.file == str(copy / BUILD_INFO_NAME)
    assert "unknown build_info option 'timing'; did you mean 'timings'?" in problem.message


def test_writer_refuses_provenance_that_disagrees(built, tmp_path):
    import shutil

    from sdme.built import dataset_features
    from sdme.schema import CorpusManifest

    out = tmp_path / "syn"
    shutil.copytree(built, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    info = BuildInfo.load(out)

    def wrong(written):  # claims the shards of another dataset
        return dataclasses.replace(info, data_files={"train": ["data/elsewhere.parquet"]})

    with pytest.raises(WriteError, match="differ from what was written"):
        write_built_dataset(out, features=dataset_features(info.taxonomy, info.dims),
                            splits=[("train", [])], provenance=wrong,
                            manifest=CorpusManifest(name="x", version="1", license="CC0-1.0",
                                                    taxonomy=tuple(info.taxonomy)))
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(tmp_path.glob(".syn.staging-*"))
