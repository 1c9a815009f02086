"""Collation of dataset rows into padded batches, and the synthetic learnable data set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.data import Collator, collate, input_dims_from_rows, synthetic_rows


def rows3():
    return [
        {"clip_id": "a", "label": 2, "text_feat": np.ones((3, 4), np.float32),
         "audio_feat": np.full((1, 2), 2.0), "relevance_text": 1.0, "relevance_audio": None},
        {"clip_id": "b", "label": 0, "text_feat": [[5.0, 5.0, 5.0, 5.0]], "audio_feat": None,
         "relevance_text": 0.5, "relevance_audio": float("nan")},
        {"clip_id": "c", "label": 1, "text_feat": np.zeros((0, 4)), "audio_feat":
         np.arange(6, dtype=np.float32), "audio_len": 3, "relevance_text": 0.0},
    ]


def test_collate_pads_masks_and_keeps_ids() -> None:
    batch = collate(rows3())
    assert batch.ids == ["a", "b", "c"]
    assert batch.labels.dtype == torch.long and batch.labels.tolist() == [2, 0, 1]
    assert batch.features["text"].shape == (3, 3, 4)
    assert batch.masks["text"].tolist() == [[True] * 3, [True, False, False], [False] * 3]
    assert batch.features["text"][1, 1:].abs().sum() == 0  # zero padding
    # The flat audio of clip c is reshaped by audio_len: [3, 2].
    assert batch.features["audio"].shape == (3, 3, 2)
    assert batch.features["audio"][2].tolist() == [[0, 1], [2, 3], [4, 5]]
    assert batch.masks["audio"].any(-1).tolist() == [True, False, True]
    rel = batch.relevance
    assert rel["text"].tolist() == [1.0, 0.5, 0.0]
    assert math.isnan(rel["audio"][0]) and math.isnan(rel["audio"][1])
    assert math.isnan(rel["audio"][2])  # key absent in that row: unknown


def test_collate_fills_a_modality_no_row_has_when_dims_are_known() -> None:
    rows = [{"label": 0, "text_feat": np.ones((2, 4))}]
    assert "vision" not in collate(rows).features
    batch = collate(rows, input_dims={"text": 4, "vision": 3})
    assert batch.features["vision"].shape == (1, 1, 3)
    assert not batch.masks["vision"].any()


def test_collate_task_and_labels() -> None:
    rows = [{"label": 1.5, "text_feat": np.ones((1, 2))}, {"label": -0.5, "text_feat": None}]
    batch = collate(rows)
    assert batch.labels.dtype == torch.float32 and batch.labels.tolist() == [1.5, -0.5]
    assert collate(rows, task="continuous").labels.dtype == torch.float32
    with pytest.raises(ValueError, match="non-integer labels"):
        collate(rows, task="discrete")
    assert collate([{"text_feat": np.ones((1, 2))}]).labels is None


def test_collate_truncates_with_max_len() -> None:
    batch = collate([{"label": 0, "text_feat": np.ones((9, 2))}], max_len=4)
    assert batch.features["text"].shape == (1, 4, 2)


@pytest.mark.parametrize("row, message", [
    ({"clip_id": "x", "label": 0, "text_feat": np.ones((2, 3, 4))}, "clip 'x'.*shape"),
    ({"clip_id": "y", "label": 0, "text_feat": np.ones(6)}, "clip 'y'.*text_len"),
    ({"clip_id": "z", "label": 0, "text_feat": [[1.0, float("nan")]]}, "clip 'z'.*NaN"),
    ({"clip_id": "w", "label": 0}, "no modality features"),
])
def test_collate_names_the_bad_clip(row, message) -> None:
    with pytest.raises(ValueError, match=message):
        collate([row])


def test_collate_rejects_inconsistent_sizes() -> None:
    rows = [{"label": 0, "text_feat": np.ones((1, 3))}, {"label": 1, "text_feat": np.ones((1, 4))}]
    with pytest.raises(ValueError, match="feature sizes differ"):
        collate(rows)
    with pytest.raises(ValueError, match="feature sizes differ"):
        collate(rows[:1], input_dims={"text": 5})


def test_collate_reads_modality_labels_as_indices_or_names() -> None:
    names = ("neg", "neu", "pos")
    rows = [{"clip_id": "a", "label": 2, "text_feat": np.ones((1, 2)), "label_text": 2,
             "label_audio": "neu"},
            {"clip_id": "b", "label": 0, "text_feat": np.ones((1, 2)),
             "label_text": np.int64(0), "label_audio": None},
            {"clip_id": "c", "label": 1, "text_feat": np.ones((1, 2)), "label_text": -1,
             "label_audio": float("nan")}]
    for row in rows:
        row["audio_feat"] = np.ones((2, 3))
    batch = collate(rows, class_names=names)
    assert batch.modality_labels["text"].tolist() == [2, 0, -1]  # ClassLabel indices as such
    assert batch.modality_labels["audio"].tolist() == [1, -1, -1]  # names mapped; unknown -1
    assert "vision" not in batch.modality_labels
    # Integers need no taxonomy; class names do, and say so.
    assert collate([rows[0] | {"label_audio": 1}]).modality_labels["audio"].tolist() == [1]
    with pytest.raises(ValueError, match=r"clip 'a': label_audio is a class name \('neu'\)"):
        collate(rows)
    with pytest.raises(ValueError, match="label_audio='happy' is not a class"):
        collate([rows[0] | {"label_audio": "happy"}], class_names=names)
    with pytest.raises(ValueError, match="label_text=3 is outside the taxonomy of 3 classes"):
        collate([rows[0] | {"label_text": 3}], class_names=names)
    with pytest.raises(ValueError, match="label_text=1.5 is not a class index"):
        collate([rows[0] | {"label_text": 1.5}])
    # A continuous task's target is a score: label_<m> is not read.
    scores = [r | {"label": 0.5} for r in rows]
    assert collate(scores, task="continuous").modality_labels == {}
    moved = batch.to("cpu")
    assert moved.modality_labels["text"].tolist() == [2, 0, -1]


def test_collator_reads_hugging_face_numpy_rows() -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({
        "clip_id": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["neg", "neu", "pos"]),
        "text_feat": datasets.List(datasets.List(datasets.Value("float32"))),
        "relevance_text": datasets.Value("float32"),
    })
    data = datasets.Dataset.from_dict({
        "clip_id": ["a", "b"], "label": [2, 0],
        "text_feat": [[[1.0, 2.0], [3.0, 4.0]], None],
        "relevance_text": [0.5, None]}, features=features).with_format("numpy")
    batch = Collator(input_dims={"text": 2}, task="discrete")([data[0], data[1]])
    assert batch.ids == ["a", "b"] and batch.labels.tolist() == [2, 0]
    assert batch.features["text"][0].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert batch.masks["text"].tolist() == [[True, True], [False, False]]
    assert batch.relevance["text"][0] == 0.5 and math.isnan(batch.relevance["text"][1])
    assert input_dims_from_rows(data) == {"text": 2}


def test_trainer_maps_modality_label_names_with_the_dataset_taxonomy() -> None:
    datasets = pytest.importorskip("datasets")
    import baselines
    from baselines.train import TrainConfig, make_loader

    features = datasets.Features({
        "clip_id": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["neg", "neu", "pos"]),
        "text_feat": datasets.List(datasets.List(datasets.Value("float32"))),
        "label_text": datasets.Value("string"),
    })
    data = datasets.Dataset.from_dict({
        "clip_id": ["a", "b"], "label": [2, 0], "text_feat": [[[1.0, 2.0]], [[3.0, 4.0]]],
        "label_text": ["neu", None]}, features=features)
    model = baselines.create_model("late_fusion", input_dims={"text": 2}, num_classes=3)
    batch = next(iter(make_loader(data, model, TrainConfig(batch_size=2), train=False)))
    assert batch.modality_labels["text"].tolist() == [1, -1]


def test_synthetic_rows_are_reproducible_and_class_dependent() -> None:
    dims = {"text": 8, "audio": 4}
    a = synthetic_rows(60, dims, 3, seed=1)
    b = synthetic_rows(60, dims, 3, seed=1)
    assert all(np.array_equal(x["text_feat"], y["text_feat"]) for x, y in zip(a, b, strict=True))
    assert [r["label"] for r in a] == [r["label"] for r in b]
    assert sorted(r["label"] for r in a) == sorted([0, 1, 2] * 20)
    # The class means differ far more than the within-class spread of clip means.
    means = {c: np.mean([r["text_feat"].mean(0) for r in a if r["label"] == c], axis=0)
             for c in range(3)}
    assert min(np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i)) > 1.0
    # Another seed draws other clips around the same class means (the same "task").
    other = synthetic_rows(60, dims, 3, seed=2)
    other_means = {c: np.mean([r["text_feat"].mean(0) for r in other if r["label"] == c],
                              axis=0) for c in range(3)}
    assert all(np.linalg.norm(means[c] - other_means[c]) < 0.8 for c in range(3))


def test_synthetic_missing_and_deviating_modalities() -> None:
    rows = synthetic_rows(200, {"text": 4, "audio": 4, "vision": 4}, 3, seed=0,
                          missing_prob=0.3, deviation_prob=0.25)
    missing = sum(r[f"{m}_feat"] is None for r in rows for m in ("text", "audio", "vision"))
    assert 100 < missing < 260
    assert all(any(r[f"{m}_feat"] is not None for m in ("text", "audio", "vision"))
               for r in rows)
    relevance = [r[f"relevance_{m}"] for r in rows for m in ("text", "audio", "vision")
                 if r[f"{m}_feat"] is not None]
    assert 0.15 < relevance.count(0.0) / len(relevance) < 0.35
    # label_<m> is the class the modality shows: the clip's exactly when it is relevant.
    shown = [(r[f"label_{m}"] == r["label"], r[f"relevance_{m}"] == 1.0) for r in rows
             for m in ("text", "audio", "vision") if r[f"{m}_feat"] is not None]
    assert all(same == relevant for same, relevant in shown)


def test_pooled_empty_like_is_an_empty_like_that_outlives_its_maker():
    """A float32 CPU tensor comes from Arrow's pool (the tensor keeps the buffer alive, and
    Arrow counts it); other dtypes are torch.empty_like's; the shape is always the input's."""
    import gc

    import pyarrow as pa

    from baselines.data import pooled_empty_like

    like = torch.zeros(64, 512, 64)[:, :256]  # 4 MB, not contiguous: the result is
    size = like.numel() * 4
    pool = pa.default_memory_pool()
    before = pool.bytes_allocated()
    out = pooled_empty_like(like)
    allocated = pool.bytes_allocated()
    assert out.shape == like.shape and out.dtype == torch.float32 and out.is_contiguous()
    assert allocated - before >= size
    out.fill_(2.5)
    gc.collect()
    assert float(out[3, 7].sum()) == 2.5 * 64
    del out  # the tensor held the buffer: freed with it
    assert pool.bytes_allocated() <= allocated - size
    as_float = pooled_empty_like(torch.zeros(2, 3, dtype=torch.int64), dtype=torch.float32)
    assert as_float.dtype == torch.float32 and as_float.shape == (2, 3)
    other = pooled_empty_like(torch.zeros(2, 3, dtype=torch.float64))
    assert other.dtype == torch.float64 and other.shape == (2, 3)
    assert pooled_empty_like(torch.zeros(0, 3)).shape == (0, 3)
