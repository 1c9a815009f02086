"""``sdme.loading.ParquetRows``: streaming a split from parquet with a windowed shuffle gives the
same rows as ``datasets``, each exactly once per epoch, in a seeded order, through the trainer's
loader."""

from __future__ import annotations

import numpy as np
import pytest

from sdme.loading import ParquetRows, load_dataset
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


def test_a_dataset_rebuilt_in_place_loads_fresh(tmp_path, monkeypatch):
    """datasets would serve the Arrow copy of the first build (same folder name and patterns)."""
    import datasets

    from sdme.synth import SynthConfig, synthesize

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    small = {"n": 60, "dims": {"text": 4, "audio": 3, "vision": 2},
             "seq_len": {m: (2, 3) for m in ("text", "audio", "vision")},
             "clips_per_video": 3.0, "videos_per_speaker": 2.0}
    folder = tmp_path / "built" / "synth"
    first = []
    for separation in (1.0, 5.0):
        synthesize(folder, SynthConfig(**small, separation=separation))
        loaded = load_dataset(folder, split="train", format="numpy")[0]["text_feat"]
        on_disk = next(iter(ParquetRows(folder, "train", shuffle=False)))["text_feat"]
        np.testing.assert_allclose(loaded, on_disk)
        first.append(loaded)
    assert not np.allclose(first[0], first[1])
