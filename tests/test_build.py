"""``sdme build``: end to end with the real extractors, resumability, the bad-clip policy.

The orchestration cases (resume, policy, cache, sharding, atomic replacement) run with the cheap
test-double extractors of ``builddoubles``; the end-to-end cases build a subset of the bundled
sample corpus (plus one clip of each bad kind) with the real extractors and read it back with
plain ``datasets.load_dataset``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builddoubles import (
    DOUBLES,
    INTERRUPT,
    LABELS,
    MARKER_NO_AUDIO,
    MARKER_NO_FACE,
    MARKER_UNDECODABLE,
    synthetic_clips,
    tiny_corpus,
    with_text,
    write_raw_corpus,
)

import sdme
from sdme.build import BuildError, build
from sdme.schema import CorpusManifest, clip_media_path, read_annotations
from sdme.validate_built import errors, validate_built

REPO = Path(__file__).resolve().parents[1]
# The bundled sample corpus (SDME_SAMPLE_RAW points the tests at another copy of it).
SAMPLE = Path(os.environ.get("SDME_SAMPLE_RAW", Path(sdme.__file__).parent / "data" / "sample"))


# --- helpers -----------------------------------------------------------------------------------

def tables(out: Path) -> dict[str, pa.Table]:
    """Each split of a built dataset as one Arrow table (shards concatenated in name order)."""
    found: dict[str, list[Path]] = {}
    for path in sorted((out / "data").glob("*.parquet")):
        found.setdefault(path.name.split("-")[0], []).append(path)
    return {s: pa.concat_tables([pq.read_table(p) for p in ps]) for s, ps in found.items()}


def assert_same_dataset(a: Path, b: Path) -> None:
    ta, tb = tables(a), tables(b)
    assert sorted(ta) == sorted(tb)
    for split in ta:
        assert ta[split].schema == tb[split].schema
        for name in ta[split].column_names:
            assert ta[split].column(name).equals(tb[split].column(name)), (split, name)
    ia, ib = (json.loads((p / "build_info.json").read_text()) for p in (a, b))
    for key in ("source", "extractors", "counts", "split", "dropped", "missing", "data_files"):
        assert ia[key] == ib[key], key


def load_plain(out: Path, tmp_path: Path):
    import datasets

    return datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))


# --- orchestration, with test doubles ----------------------------------------------------------

def test_bad_clips_follow_the_policy_and_are_reported(tmp_path, capsys):
    clips = with_text(synthetic_clips(), "s1c1", "  ")
    raw = tiny_corpus(tmp_path / "raw", {"s0c0": MARKER_NO_AUDIO, "s2c2": MARKER_NO_FACE,
                                         "s3c3": MARKER_UNDECODABLE}, clips)
    out = tmp_path / "out" / "tiny"
    report = build(raw, out, progress=True, **DOUBLES)

    events = {(e.clip_id, e.modality, e.reason, e.action) for e in report.events}
    assert events == {("s0c0", "audio", "no_audio", "missing"),
                      ("s2c2", "vision", "no_face", "missing"),
                      ("s3c3", "audio", "decode_failed", "dropped"),
                      ("s1c1", "text", "empty_text", "dropped")}
    summary = capsys.readouterr().err
    for clip_id in ("s0c0", "s2c2", "s3c3", "s1c1"):
        assert clip_id in summary
    assert "dropped 2 clip(s)" in summary and "22 of 24 clips" in summary

    info = json.loads((out / "build_info.json").read_text())
    assert {(e["clip_id"], e["reason"]) for e in info["dropped"]} == {("s3c3", "decode_failed"),
                                                                     ("s1c1", "empty_text")}
    assert {(e["clip_id"], e["reason"]) for e in info["missing"]} == {("s0c0", "no_audio"),
                                                                     ("s2c2", "no_face")}
    assert info["counts"]["rows"] == 22 and info["counts"]["dropped"] == 2
    assert info["counts"]["missing"] == {"text": 0, "audio": 1, "vision": 1}
    assert info["sdme_version"] == sdme.__version__
    assert info["source"]["fingerprint"] == CorpusManifest.load(raw).fingerprint()
    assert set(info["timings"]) >= {"validate", "extract", "split", "write", "total"}

    rows = {r["clip_id"]: r for t in tables(out).values() for r in t.to_pylist()}
    assert "s3c3" not in rows and "s1c1" not in rows and len(rows) == 22
    assert rows["s0c0"]["audio_len"] == 0 and rows["s0c0"]["audio_feat"] == []
    assert rows["s2c2"]["vision_len"] == 0 and rows["s0c0"]["vision_len"] > 0
    assert validate_built(out) == []


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    raw = tiny_corpus(tmp_path / "raw", {"s0c0": MARKER_NO_AUDIO, "s3c3": MARKER_UNDECODABLE})
    reference = tmp_path / "ref" / "tiny"
    build(raw, reference, progress=False, **DOUBLES)

    out = tmp_path / "out" / "tiny"
    monkeypatch.setitem(INTERRUPT, "after", 20)  # the 21st extract call raises
    monkeypatch.setitem(INTERRUPT, "calls", 0)
    with pytest.raises(KeyboardInterrupt):
        build(raw, out, progress=False, **DOUBLES)
    assert not out.exists()
    cached = list((tmp_path / "out" / "tiny.cache").rglob("*.npz"))
    assert 0 < len(cached) < 3 * 24

    monkeypatch.setitem(INTERRUPT, "after", None)
    report = build(raw, out, progress=False, **DOUBLES)
    assert report.reused == len(cached) and report.extracted > 0
    assert_same_dataset(out, reference)
    assert not list(out.parent.glob(".tiny.staging-*"))

    again = build(raw, out, progress=False, **DOUBLES)  # everything cached now
    assert again.extracted == 0
    assert_same_dataset(out, reference)


def test_failed_write_keeps_the_previous_dataset(tmp_path, monkeypatch):
    raw = tiny_corpus(tmp_path / "raw")
    out = tmp_path / "out" / "tiny"
    build(raw, out, progress=False, **DOUBLES)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken_card(**_: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr("sdme.card.render_card", broken_card)
    with pytest.raises(OSError, match="disk full"):
        build(raw, out, progress=False, seed=5, **DOUBLES)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(out.parent.glob(".tiny.staging-*"))


def test_unexpected_extractor_error_drops_the_clip_and_is_retried(tmp_path, monkeypatch):
    import builddoubles

    raw = tiny_corpus(tmp_path / "raw")
    out = tmp_path / "out" / "tiny"
    original = builddoubles.DoubleVision.extract

    def flaky(self, raw_dir, clip):
        if clip.clip_id == "s4c2":
            raise RuntimeError("CUDA out of memory")
        return original(self, raw_dir, clip)

    monkeypatch.setattr(builddoubles.DoubleVision, "extract", flaky)
    report = build(raw, out, progress=False, **DOUBLES)
    [event] = report.events
    assert (event.clip_id, event.reason, event.action) == ("s4c2", "extractor_error", "dropped")
    assert "RuntimeError: CUDA out of memory" in event.detail
    assert "run the build again" in report.summary()

    monkeypatch.setattr(builddoubles.DoubleVision, "extract", original)
    report = build(raw, out, progress=False, **DOUBLES)
    assert report.events == [] and report.extracted == 1 and report.rows == 24


def test_timings_say_what_they_measure(tmp_path, monkeypatch):
    """Model loading is timed apart from the clips; per-clip times are wall and CPU seconds,
    honestly: a clip that waits costs wall time, not CPU time."""
    import builddoubles

    loads = []

    def slow_load(self):
        loads.append(self.info.modality)
        time.sleep(0.3)
        return self

    def waiting(self, raw_dir, clip):
        time.sleep(0.02)
        return original(self, raw_dir, clip)

    original = builddoubles.DoubleVision.extract
    monkeypatch.setattr(builddoubles.DoubleText, "load", slow_load, raising=False)
    monkeypatch.setattr(builddoubles.DoubleVision, "extract", waiting)
    raw = tiny_corpus(tmp_path / "raw")
    report = build(raw, tmp_path / "out" / "tiny", progress=False, **DOUBLES)
    timings = report.timings
    assert loads == ["text"]  # once per build process, not per clip
    assert timings["load_models_wall"] >= 0.3 > timings["load_models_cpu"]
    assert timings["clips_text_wall"] < 0.3  # the load is not in the first clip's time
    assert timings["clips_vision_wall"] >= 24 * 0.02
    assert timings["clips_vision_cpu"] < 0.5 * timings["clips_vision_wall"]
    assert not any(k.startswith("extract_") for k in timings)
    info = json.loads((tmp_path / "out" / "tiny" / "build_info.json").read_text())
    assert info["timings"] == timings
    assert info["build"]["executor"] == "in-process" and info["build"]["device"] == "cpu"


def test_cache_follows_changes_of_a_clip(tmp_path):
    raw = tiny_corpus(tmp_path / "raw")
    out = tmp_path / "out" / "tiny"
    build(raw, out, progress=False, **DOUBLES)
    clips = read_annotations(raw / "annotations.csv")
    changed = [replace(c, text="a brand new transcript") if c.clip_id == "s1c2" else c
               for c in clips]
    shutil.rmtree(raw)
    tiny_corpus(raw, clips=changed)
    report = build(raw, out, progress=False, **DOUBLES)
    assert report.extracted == 3  # the changed clip's three modalities, nothing else
    row = next(r for t in tables(out).values() for r in t.to_pylist() if r["clip_id"] == "s1c2")
    assert row["text"] == "a brand new transcript" and row["text_len"] == 4


def test_shards_and_plain_load(tmp_path):
    raw = tiny_corpus(tmp_path / "raw")
    out = tmp_path / "out" / "tiny"
    report = build(raw, out, progress=False, shard_rows=4, **DOUBLES)
    names = sorted(p.name for p in (out / "data").iterdir())
    n_train = -(-report.counts["train"] // 4)
    assert [n for n in names if n.startswith("train")] == [
        f"train-{i:05d}-of-{n_train:05d}.parquet" for i in range(n_train)]
    ds = load_plain(out, tmp_path)
    assert {s: ds[s].num_rows for s in ds} == report.counts
    assert ds["train"].features["label"].names == list(LABELS)
    row = ds["train"].with_format("numpy")[0]
    assert row["text_feat"].shape == (row["text_len"], 6) and row["text_feat"].dtype == np.float32
    order = [c.clip_id for c in synthetic_clips()]
    train_ids = [r["clip_id"] for r in ds["train"]]
    assert train_ids == sorted(train_ids, key=order.index)  # rows keep the annotations' order


def test_card_yaml_alone_gives_the_features(tmp_path):
    """Parquet files without the ``datasets`` schema metadata (as another tool would write them)
    still load with ClassLabel names and [T, dim] features, from the card's YAML."""
    raw = tiny_corpus(tmp_path / "raw")
    out = tmp_path / "out" / "tiny"
    build(raw, out, progress=False, **DOUBLES)
    for path in (out / "data").glob("*.parquet"):
        table = pq.read_table(path)
        plain = pa.table({name: (col.combine_chunks().storage
                                 if isinstance(col.type, pa.ExtensionType) else col)
                          for name, col in zip(table.column_names, table.columns, strict=True)})
        assert plain.schema.metadata is None
        pq.write_table(plain, path)
    ds = load_plain(out, tmp_path)
    features = ds["train"].features
    assert features["label"].names == list(LABELS)
    assert features["vision_feat"].shape == (None, 5)
    assert features["deviation"].dtype == "int8"
    row = ds["train"].with_format("numpy")[0]
    assert row["audio_feat"].shape == (row["audio_len"], 4)
    assert row["audio_feat"].dtype == np.float32


def test_invalid_corpus_stops_before_anything_is_written(tmp_path):
    raw = tiny_corpus(tmp_path / "raw")
    clip_media_path(raw, "s0c1").write_bytes(b"tampered")
    out = tmp_path / "out" / "tiny"
    with pytest.raises(BuildError, match=r"s0c1\.mp4.*size"):
        build(raw, out, progress=False, **DOUBLES)
    assert not out.exists() and not (tmp_path / "out" / "tiny.cache").exists()


def test_too_few_groups_is_a_build_error(tmp_path):
    raw = tiny_corpus(tmp_path / "raw", clips=synthetic_clips(n_speakers=2))
    with pytest.raises(BuildError, match=r"only 2 group\(s\)"):
        build(raw, tmp_path / "out" / "tiny", progress=False, **DOUBLES)


def test_corpus_splits_are_kept(tmp_path):
    clips = [replace(c, split="test" if c.speaker_id == "spk0" else "train")
             for c in synthetic_clips(n_speakers=3)]
    raw = tiny_corpus(tmp_path / "raw", clips=clips)
    report = build(raw, tmp_path / "out" / "tiny", progress=False, **DOUBLES)
    assert report.counts == {"train": 8, "test": 4} and report.split.policy == "corpus"


def test_unknown_extractor_is_a_clear_error(tmp_path):
    raw = tiny_corpus(tmp_path / "raw")
    with pytest.raises(BuildError, match="cannot create the audio extractor 'nope'"):
        build(raw, tmp_path / "out", progress=False,
              **{**DOUBLES, "audio_features": "nope"})


def test_fps_is_sugar_for_the_vision_parameter(tmp_path):
    from click.testing import CliRunner

    from sdme.cli import main

    raw = tiny_corpus(tmp_path / "raw")
    report = build(raw, tmp_path / "a", progress=False, fps=2.0, **DOUBLES)
    assert report.extractors["vision"]["params"]["fps"] == 2.0
    info = json.loads((tmp_path / "a" / "build_info.json").read_text())
    assert info["build"]["fps"] == 2.0
    same = build(raw, tmp_path / "b", progress=False, fps=2,
                 extractor_params={"vision": {"fps": 2.0}}, **DOUBLES)
    assert same.extractors["vision"] == report.extractors["vision"]
    with pytest.raises(BuildError, match=r"fps=2 and vision\.fps=3 disagree"):
        build(raw, tmp_path / "c", progress=False, fps=2, extractor_params={"vision": {"fps": 3}},
              **DOUBLES)
    with pytest.raises(BuildError, match="vision extractor 'double'.*did you mean 'dim'"):
        build(raw, tmp_path / "c", progress=False, extractor_params={"vision": {"dimm": 3}},
              **DOUBLES)
    doubles = ["--text-encoder", "double", "--audio-features", "double", "--vision-features",
               "double", "--quiet"]
    result = CliRunner().invoke(main, ["build", str(raw), "--out", str(tmp_path / "d"), *doubles,
                                       "--fps", "2", "--param", "vision.fps=3"])
    assert result.exit_code == 1 and "disagree" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["build", str(raw), "--out", str(tmp_path / "d"), *doubles,
                                       "--param", "vision.dim=7", "--param", "audio.dim=3"])
    assert result.exit_code == 0, result.output
    dims = json.loads((tmp_path / "d" / "build_info.json").read_text())["features"]
    assert (dims["vision"]["dim"], dims["audio"]["dim"]) == (7, 3)
    result = CliRunner().invoke(main, ["build", str(raw), "--out", str(tmp_path / "e"), *doubles,
                                       "--param", "smell.dim=7"])
    assert result.exit_code == 1 and "MODALITY.NAME=VALUE" in result.output


def test_load_dataset_by_name_and_helpers(tmp_path):
    from sdme.loading import feature_dims, load_dataset, taxonomy

    raw = tiny_corpus(tmp_path / "raw")
    build(raw, tmp_path / "data" / "built" / "tiny", progress=False, **DOUBLES)
    ds = load_dataset("tiny", data_dir=tmp_path / "data", cache_dir=tmp_path / "hf")
    assert set(ds) == {"train", "validation", "test"}
    assert feature_dims(ds) == {"text": 6, "audio": 4, "vision": 5}
    assert taxonomy(ds["test"]) == list(LABELS)
    test = load_dataset(tmp_path / "data" / "built" / "tiny", "test", format="torch",
                        cache_dir=tmp_path / "hf")
    row = test[0]
    assert tuple(row["vision_feat"].shape) == (int(row["vision_len"]), 5)
    with pytest.raises(FileNotFoundError,
                       match=r"no built dataset 'sample' in .*built; run `sdme download && "
                             r"sdme build`"):
        load_dataset("sample", data_dir=tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a built SDME dataset"):
        load_dataset(raw)  # a raw corpus is not a built dataset


@pytest.mark.slow
def test_parallel_build_equals_sequential(tmp_path):
    raw = tiny_corpus(tmp_path / "raw", {"s0c0": MARKER_NO_FACE, "s3c3": MARKER_UNDECODABLE})
    build(raw, tmp_path / "seq" / "tiny", progress=False, workers=1, **DOUBLES)
    report = build(raw, tmp_path / "par" / "tiny", progress=False, workers=2, **DOUBLES)
    assert report.extracted == 24 * 3 - 1  # the undecodable clip stops after text and audio
    assert_same_dataset(tmp_path / "par" / "tiny", tmp_path / "seq" / "tiny")


# --- end to end, with the real extractors on the sample corpus ---------------------------------

GOOD_PER_SPEAKER = 2


def sample_subset(target: Path) -> tuple[Path, dict[str, str]]:
    """The first clip of each video of four sample speakers, plus one clip of each bad kind."""
    from sdme.media.testing import astronaut_face, write_face_clip

    if not (SAMPLE / "annotations.csv").is_file():
        pytest.fail(f"the bundled sample corpus is missing at {SAMPLE}")
    manifest = CorpusManifest.load(SAMPLE)
    clips = read_annotations(SAMPLE / "annotations.csv")
    speakers = sorted({c.speaker_id for c in clips})[:4]
    good, seen_videos = [], set()
    for clip in clips:
        if clip.speaker_id in speakers and clip.video_id not in seen_videos:
            good.append(clip)
            seen_videos.add(clip.video_id)
    media: dict[str, bytes | Path] = {c.clip_id: clip_media_path(SAMPLE, c.clip_id) for c in good}
    work = target.parent / "media"
    template = good[0]

    def bad(clip_id: str, n: int, **fields: object):
        return replace(template, clip_id=clip_id, speaker_id=f"bad{n}", video_id=f"badvid{n}",
                       **fields)

    bad_clips = [bad("bad_undecodable", 1), bad("bad_no_audio", 2), bad("bad_no_face", 3),
                 bad("bad_empty_text", 4, text="")]
    media["bad_undecodable"] = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8
    media["bad_no_audio"] = write_face_clip(work / "no_audio.mp4", astronaut_face(), freq=None)
    media["bad_no_face"] = write_face_clip(work / "no_face.mp4", None)
    media["bad_empty_text"] = clip_media_path(SAMPLE, template.clip_id)
    expected = {"bad_undecodable": "decode_failed", "bad_no_audio": "no_audio",
                "bad_no_face": "no_face", "bad_empty_text": "empty_text"}
    write_raw_corpus(target, good + bad_clips, media, name="sample-subset",
                     taxonomy=manifest.taxonomy,
                     annotation_protocol=manifest.annotation_protocol)
    return target, expected


@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    raw, expected = sample_subset(root / "raw")
    out = root / "out" / "subset"
    report = build(raw, out, progress=False, workers=1, device="cpu")
    return raw, out, report, expected


def sampled_frames(raw: Path, clip_id: str, fps: float) -> int:
    import decord

    from sdme.media.video import sample_indices

    reader = decord.VideoReader(str(clip_media_path(raw, clip_id)))
    return len(sample_indices(len(reader), float(reader.get_avg_fps()), fps))


def test_real_build_loads_with_plain_datasets(real_build, tmp_path):
    from sdme.features import create_extractor

    raw, out, report, expected = real_build
    assert report.rows == 8 + 2 and report.raw_clips == 12
    dims = {m: create_extractor(m).info.dim for m in ("text", "audio", "vision")}
    ds = load_plain(out, tmp_path)
    assert sum(ds[s].num_rows for s in ds) == 10
    for split in ds:
        feats = ds[split].features
        assert feats["label"].names == list(CorpusManifest.load(raw).taxonomy)
        for m, dim in dims.items():
            assert feats[f"{m}_feat"].shape == (None, dim)
        for row in ds[split].with_format("numpy"):
            for m, dim in dims.items():
                seq = row[f"{m}_feat"]
                assert seq.dtype == np.float32 and seq.shape == (row[f"{m}_len"], dim)
                assert np.isfinite(seq).all()
    assert validate_built(out) == []


def test_real_bad_clips_follow_the_policy(real_build):
    _, out, report, expected = real_build
    found = {e.clip_id: e for e in report.events}
    assert {cid: e.reason for cid, e in found.items()} == expected
    assert found["bad_no_audio"].action == found["bad_no_face"].action == "missing"
    assert found["bad_undecodable"].action == found["bad_empty_text"].action == "dropped"
    assert "bad_undecodable.mp4" in found["bad_undecodable"].detail
    rows = {r["clip_id"]: r for t in tables(out).values() for r in t.to_pylist()}
    assert "bad_undecodable" not in rows and "bad_empty_text" not in rows
    assert rows["bad_no_audio"]["audio_len"] == 0 and rows["bad_no_audio"]["vision_len"] > 0
    assert rows["bad_no_face"]["vision_len"] == 0 and rows["bad_no_face"]["audio_len"] > 0
    summary = report.summary()
    assert all(cid in summary for cid in expected)


def test_real_faces_found_and_distinct(real_build):
    raw, out, report, _ = real_build
    fps = report.extractors["vision"]["params"]["fps"]
    rows = [r for t in tables(out).values() for r in t.to_pylist()
            if not r["clip_id"].startswith("bad")]
    found = sum(r["vision_len"] for r in rows)
    sampled = sum(sampled_frames(raw, r["clip_id"], fps) for r in rows)
    assert found >= 0.9 * sampled, f"faces in {found} of {sampled} sampled frames"
    # Different people, different features: each clip is nearer (in mean face vector) to the
    # other clip of its speaker than to any clip of another speaker.
    means = {r["clip_id"]: (r["speaker_id"], np.asarray(r["vision_feat"]).mean(axis=0))
             for r in rows}
    for cid, (speaker, vec) in means.items():
        same = [np.linalg.norm(vec - v) for c, (s, v) in means.items() if s == speaker and c != cid]
        other = [np.linalg.norm(vec - v) for s, v in means.values() if s != speaker]
        assert min(other) > 0
        assert min(same) < min(other), cid


def test_real_leak_and_nan_fail_cli_validate(real_build, tmp_path):
    from click.testing import CliRunner

    from sdme.cli import main

    _, out, _, _ = real_build
    runner = CliRunner()
    result = runner.invoke(main, ["validate", str(out)])
    assert result.exit_code == 0, result.output

    leaked = tmp_path / "leaked"
    shutil.copytree(out, leaked)
    train = tables(leaked)["train"]
    speaker = train.column("speaker_id")[0].as_py()
    test_shard = next((leaked / "data").glob("test-*.parquet"))
    table = pq.read_table(test_shard)
    index = table.schema.get_field_index("speaker_id")
    table = table.set_column(index, table.schema.field(index),
                             pa.array([speaker] * table.num_rows, pa.string()))
    pq.write_table(table, test_shard)
    result = runner.invoke(main, ["validate", str(leaked)])
    assert result.exit_code == 1 and f"speaker {speaker!r} appears in train, test" in result.output

    nan = tmp_path / "nan"
    shutil.copytree(out, nan)
    shard = next((nan / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    column = table.column("audio_feat").combine_chunks()
    values = column.storage.flatten().flatten().to_numpy().copy()
    values[-1] = np.inf  # last value of the last row with audio
    inner = pa.ListArray.from_arrays(column.storage.flatten().offsets, pa.array(values))
    broken = pa.ExtensionArray.from_storage(
        column.type, pa.ListArray.from_arrays(column.storage.offsets, inner))
    index = table.schema.get_field_index("audio_feat")
    pq.write_table(table.set_column(index, table.schema.field(index), broken), shard)
    lengths = table.column("audio_len").to_pylist()
    clip = table.column("clip_id")[max(i for i, n in enumerate(lengths) if n)].as_py()
    problems = errors(validate_built(nan))
    assert [(p.clip_id, p.column) for p in problems] == [(clip, "audio_feat")]
    result = runner.invoke(main, ["validate", str(nan)])
    assert result.exit_code == 1 and f"clip {clip!r}" in result.output


@pytest.mark.slow
def test_real_build_killed_then_resumed_equals_uninterrupted(real_build, tmp_path):
    raw, reference, _, _ = real_build
    out = tmp_path / "out" / "subset"
    code = ("import sys; from sdme.build import build; "
            "build(sys.argv[1], sys.argv[2], progress=False, device='cpu')")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code, str(raw), str(out)], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    cache = tmp_path / "out" / "subset.cache"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(cache.glob("vision-*/*.npz"))) >= 3:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr.read()[-2000:])
    proc.stderr.close()
    assert not out.exists()
    done = len(list(cache.rglob("*.npz")))
    assert done >= 3

    report = build(raw, out, progress=False, device="cpu")
    assert report.reused >= 3 and report.extracted > 0
    assert_same_dataset(out, reference)


@pytest.mark.slow
def test_full_sample_build_in_parallel(tmp_path):
    if not (SAMPLE / "annotations.csv").is_file():
        pytest.fail(f"the bundled sample corpus is missing at {SAMPLE}")
    out = tmp_path / "out" / "sample"
    report = build(SAMPLE, out, progress=False, workers=2, device="cpu")
    clips = read_annotations(SAMPLE / "annotations.csv")
    assert report.raw_clips == len(clips) and report.events == []
    assert report.rows == len(clips) and set(report.counts) == {"train", "validation", "test"}
    assert validate_built(out) == []
    fps = report.extractors["vision"]["params"]["fps"]
    rows = [r for t in tables(out).values()
            for r in t.select(["clip_id", "vision_len"]).to_pylist()]
    found = sum(r["vision_len"] for r in rows)
    sampled = sum(sampled_frames(SAMPLE, r["clip_id"], fps) for r in rows)
    assert found >= 0.9 * sampled, f"faces in {found} of {sampled} sampled frames"
