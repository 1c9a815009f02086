"""``sdme.loading.ParquetRows``: streaming a split from parquet with a windowed shuffle gives the
same rows as ``datasets``, each exactly once per epoch, in a seeded order, through the trainer's
loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdme.loading import ParquetRows, build_cache_dir, load_dataset
from sdme.schema import MODALITIES
from sdme.synth import SynthConfig, synthesize

CONFIG = SynthConfig(n=150, dims={"text": 6, "audio": 4, "vision": 3},
                     seq_len={"text": (1, 4), "audio": (2, 6), "vision": (1, 3)},
                     clips_per_video=3, videos_per_speaker=2, missing_rate=0.1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("rows") / "syn"
    synthesize(out, CONFIG, shard_rows=40)  # several shards, row groups of up to 40 rows
    return out


def test_rows_equal_the_datasets_rows(built, tmp_path):
    reference = load_dataset(built, "train", format="numpy", cache_dir=tmp_path / "hf")
    rows = list(ParquetRows(built, "train", shuffle=False))
    assert len(rows) == len(reference) == len(ParquetRows(built, "train"))
    for mine, theirs in zip(rows, reference, strict=True):
        assert mine["clip_id"] == theirs["clip_id"] and mine["label"] == theirs["label"]
        assert mine["votes_audio"] == list(theirs["votes_audio"])
        for m in MODALITIES:
            assert mine[f"{m}_feat"].dtype == np.float32
            assert mine[f"{m}_feat"].shape[0] == mine[f"{m}_len"] == theirs[f"{m}_len"]
            if mine[f"{m}_len"]:
                np.testing.assert_array_equal(mine[f"{m}_feat"], theirs[f"{m}_feat"])


def test_epochs_are_seeded_shuffles_of_the_whole_split(built):
    stream = ParquetRows(built, "train", seed=3, window=2)
    first = [r["clip_id"] for r in stream]
    second = [r["clip_id"] for r in stream]
    assert sorted(first) == sorted(second) and len(set(first)) == len(first)
    assert first != second and first != sorted(first)
    again = ParquetRows(built, "train", seed=3, window=2)
    assert [r["clip_id"] for r in again] == first


def test_trainer_loader_reads_it_with_workers(built):
    import baselines
    from baselines.train import make_config, make_loader

    stream = ParquetRows(built, "test", seed=0)
    model = baselines.create_model("early_fusion", input_dims=dict(CONFIG.dims),
                                   num_classes=len(CONFIG.taxonomy))
    everything = sorted(r["clip_id"] for r in ParquetRows(built, "test", shuffle=False))
    for workers in (0, 2):
        loader = make_loader(stream, model, make_config(batch_size=8, num_workers=workers),
                             train=True)
        epochs = []
        for epoch in range(2):
            stream.set_epoch(epoch)  # as baselines.train.fit does before each epoch
            batches = list(loader)
            epochs.append([cid for batch in batches for cid in batch.ids])
            assert sorted(epochs[-1]) == everything
            assert batches[0].features["audio"].shape[-1] == CONFIG.dims["audio"]
        assert epochs[0] != epochs[1]


def test_fit_trains_on_it(built):
    import baselines
    from baselines.train import fit, make_config

    model = baselines.create_model("early_fusion", input_dims=dict(CONFIG.dims),
                                   num_classes=len(CONFIG.taxonomy))
    stream = ParquetRows(built, "train", seed=1)
    result = fit(model, stream, ParquetRows(built, "validation", shuffle=False),
                 make_config(epochs=2, batch_size=16, device="cpu", progress=False))
    assert len(result.history) == 2 and stream.epoch == 2


def test_unknown_split_is_a_clear_error(built):
    with pytest.raises(KeyError, match="no split 'dev'"):
        ParquetRows(built, "dev")


def test_prefetching_changes_nothing_but_when_windows_are_read(built):
    ahead = ParquetRows(built, "train", seed=5, window=2)
    inline = ParquetRows(built, "train", seed=5, window=2, prefetch=False)
    assert [r["clip_id"] for r in ahead] == [r["clip_id"] for r in inline]
    partial = iter(ahead)
    assert next(partial)["clip_id"]
    partial.close()  # stopping mid-epoch ends the read-ahead thread
    ahead.set_epoch(0)
    inline.set_epoch(0)
    assert [r["clip_id"] for r in ahead] == [r["clip_id"] for r in inline]


def test_decoding_row_groups_side_by_side_changes_nothing_but_speed(built):
    """Row groups decoded on several threads come back in the same order, with the same
    values, as decoded one by one, shuffled or in file order; a bad count is refused."""
    for shuffle in (True, False):
        one = list(ParquetRows(built, "train", seed=2, window=3, shuffle=shuffle, decoders=1))
        for decoders in (2, 3):
            many = list(ParquetRows(built, "train", seed=2, window=3, shuffle=shuffle,
                                    decoders=decoders))
            assert [r["clip_id"] for r in many] == [r["clip_id"] for r in one]
            for a, b in zip(many, one, strict=True):
                for m in MODALITIES:
                    np.testing.assert_array_equal(a[f"{m}_feat"], b[f"{m}_feat"])
    with pytest.raises(ValueError, match="decoders"):
        ParquetRows(built, "train", decoders=0)


def test_file_order_rows_are_views_shuffled_rows_are_copies(built):
    """In file order a row's features are read-only views of its decoded row group (no copy);
    shuffled, each row group's features are copied out (so its table can be freed at once).
    The values are the same either way."""
    in_order = list(ParquetRows(built, "train", shuffle=False))
    shuffled = {r["clip_id"]: r for r in ParquetRows(built, "train", seed=1)}
    assert sorted(shuffled) == sorted(r["clip_id"] for r in in_order)
    seen = 0
    for row in in_order:
        other = shuffled[row["clip_id"]]
        for m in MODALITIES:
            view, copy = row[f"{m}_feat"], other[f"{m}_feat"]
            np.testing.assert_array_equal(view, copy)
            if view.size:
                seen += 1
                assert not view.flags.writeable and not view.flags.owndata
                assert copy.flags.writeable
                with pytest.raises(ValueError, match="read-only"):
                    view[0, 0] = 1.0
    assert seen


def test_columns_and_features_are_read_in_place(built, tmp_path):
    import datasets

    from sdme.loading import read_columns, read_features, split_sizes

    reference = load_dataset(built, "test", cache_dir=tmp_path / "hf")
    columns = ["clip_id", "label", "relevance_text", "label_audio"]
    got = read_columns(built, "test", columns)
    assert got.cache_files == []  # in memory, not an Arrow file
    assert got.features == datasets.Features({c: reference.features[c] for c in columns})
    assert got.to_dict() == reference.select_columns(columns).to_dict()
    assert read_features(built) == reference.features
    assert split_sizes(built) == {"train": len(ParquetRows(built, "train")),
                                  "validation": len(ParquetRows(built, "validation")),
                                  "test": len(reference)}
    with pytest.raises(KeyError, match="no column"):
        read_columns(built, "test", ["clip_id", "no_such_column"])


def test_feature_stats_are_recorded_and_reused(built, tmp_path, monkeypatch):
    import sdme.loading as loading
    from sdme.built import BuildInfo

    recorded = BuildInfo.load(built).feature_stats
    assert set(recorded) == {"train", "validation", "test"}
    rows = list(ParquetRows(built, "train", shuffle=False))
    for m in MODALITIES:  # the definition: moments of every real feature value of the split
        values = np.concatenate([r[f"{m}_feat"].reshape(-1) for r in rows]).astype(np.float64)
        stats = recorded["train"][m]
        assert stats.values == values.size
        assert stats.mean == pytest.approx(values.mean(), rel=1e-9)
        assert stats.std == pytest.approx(values.std(), rel=1e-9)

    def no_scan(*args, **kwargs):
        raise AssertionError("the features were scanned although their moments are recorded")

    monkeypatch.setattr(loading, "scan_feature_stats", no_scan)
    assert loading.feature_stats(built, "train", data_dir=tmp_path) == recorded["train"]


def test_feature_stats_of_an_older_dataset_are_computed_once(built, tmp_path, monkeypatch):
    import json
    import shutil

    import sdme.loading as loading
    from sdme.built import BuildInfo

    older = tmp_path / "older"
    shutil.copytree(built, older)
    info = json.loads((older / "build_info.json").read_text())
    recorded = BuildInfo.from_dict(info).feature_stats["train"]
    del info["feature_stats"]  # as written before the writer recorded them
    (older / "build_info.json").write_text(json.dumps(info))
    scans = []

    def counting_scan(*args, **kwargs):
        scans.append(args)
        return real_scan(*args, **kwargs)

    real_scan = loading.scan_feature_stats
    monkeypatch.setattr(loading, "scan_feature_stats", counting_scan)
    first = loading.feature_stats(older, "train", data_dir=tmp_path / "data")
    again = loading.feature_stats(older, "train", data_dir=tmp_path / "data")
    assert len(scans) == 1 and first == again
    assert list((tmp_path / "data" / "cache" / "feature-stats").glob("*.json"))
    for m in MODALITIES:
        assert first[m].values == recorded[m].values
        assert first[m].std == pytest.approx(recorded[m].std, rel=1e-9)


def test_load_dataset_never_serves_another_folders_cache(built, tmp_path, monkeypatch):
    """``datasets`` keys a local folder's cache on its name and files' relative paths, sizes and
    times, not on where it is: a same-named copy elsewhere with its times preserved (``cp -p``,
    ``rsync -a``) would be served the first folder's cached rows, even after a label change that
    keeps the shard's size. Each dataset location gets its own cache entry instead."""
    import shutil

    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    first = load_dataset(built, "test")
    copy = tmp_path / "elsewhere" / built.name
    shutil.copytree(built, copy)  # copy2: times preserved
    second = load_dataset(copy, "test")

    def cache_of(ds):
        return {Path(f["filename"]).resolve() for f in ds.cache_files}

    assert cache_of(first) and cache_of(second) and not cache_of(first) & cache_of(second)
    assert second["clip_id"] == first["clip_id"]  # same rows, each from its own cache


def test_a_dataset_rebuilt_in_place_loads_fresh(tmp_path, monkeypatch):
    """datasets would serve the Arrow copy of the first build (same folder name and patterns)."""
    import datasets

    from sdme.synth import SynthConfig, synthesize

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    small = {"n": 60, "dims": {"text": 4, "audio": 3, "vision": 2},
             "seq_len": {m: (2, 3) for m in ("text", "audio", "vision")},
             "clips_per_video": 3.0, "videos_per_speaker": 2.0}
    folder = tmp_path / "built" / "synth"
    elsewhere = tmp_path / "elsewhere" / "synth"
    synthesize(elsewhere, SynthConfig(**small))
    load_dataset(elsewhere, split="train")
    unmarked = tmp_path / "hf" / "sdme" / "made-by-something-else"
    half_deleted = tmp_path / "hf" / "sdme" / ".deleting-0123"
    for kept in (unmarked, half_deleted):
        kept.mkdir(parents=True)
        (kept / "data.arrow").write_bytes(b"x")
    first, caches = [], []
    for separation in (1.0, 5.0):
        synthesize(folder, SynthConfig(**small, separation=separation))
        loaded = load_dataset(folder, split="train", format="numpy")[0]["text_feat"]
        on_disk = next(iter(ParquetRows(folder, "train", shuffle=False)))["text_feat"]
        np.testing.assert_allclose(loaded, on_disk)
        first.append(loaded)
        caches.append(build_cache_dir(folder))
    assert not np.allclose(first[0], first[1])
    # the first build's Arrow copy is gone; the current one and another location's stay
    assert caches[0] != caches[1] and not caches[0].exists() and caches[1].is_dir()
    assert build_cache_dir(elsewhere).is_dir()
    assert sorted(p.name for p in (tmp_path / "hf" / "sdme").iterdir()) == sorted(
        [caches[1].name, build_cache_dir(elsewhere).name, unmarked.name])  # half-deleted: gone
