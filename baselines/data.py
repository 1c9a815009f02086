"""From rows of a built SDME dataset to padded :class:`~baselines.models.base.Batch` objects.

A *row* is one clip as a mapping, as yielded by ``datasets.load_dataset(dir)[split]`` (best with
``.with_format("numpy")``) or by any list/iterable of dicts:

* ``"<m>_feat"`` for each modality m: a [T, D] float array (numpy, torch, nested lists, or a
  numpy object array of 1-D rows); ``None``, an empty array, or a missing key means the clip
  lacks the modality. A flat [T*D] array is accepted when the row also carries ``"<m>_len"``
  = T (the compact storage form).
* ``"label"``: class index (discrete task) or float score (continuous task).
* ``"relevance_<m>"`` (optional): human relevance in [0, 1]; ``None``/NaN where unknown.
* ``"label_<m>"`` (optional, discrete tasks): the class modality m alone expresses, as a class
  index (an int, as a ClassLabel stores it) or as a class name (a string, as a built SDME
  dataset stores it; mapped to its index with the ``class_names`` given to :func:`collate`);
  ``None``, NaN or -1 where unknown. It becomes ``Batch.modality_labels``.
* ``"clip_id"`` (optional): the clip's id, kept for per-clip predictions.

:func:`collate` pads each modality to the longest sequence in the batch (at least one step) and
builds boolean masks; a clip without a modality gets an all-False mask row. :class:`Collator`
is the picklable form to pass to ``torch.utils.data.DataLoader(collate_fn=...)``.

:func:`synthetic_rows` makes a small *learnable* data set in the same row format, for tests and
smoke runs: each modality's steps are drawn around a class-dependent mean (or, for the
continuous task, a mean proportional to the score), optionally with "deviating" modalities whose
mean belongs to another class and whose human relevance is then 0.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from baselines.models.base import MODALITIES, Batch

FEAT_SUFFIX = "_feat"


def row_modalities(row: Mapping[str, object]) -> list[str]:
    """Modalities named by ``<m>_feat`` keys of a row, canonical order first."""
    names = [k[: -len(FEAT_SUFFIX)] for k in row if k.endswith(FEAT_SUFFIX)]
    return [m for m in MODALITIES if m in names] + sorted(m for m in names if m not in MODALITIES)


def _as_matrix(value: object, length: object, modality: str, where: str) -> np.ndarray | None:
    """A row's feature value as a float32 [T, D] array, or None when the modality is missing."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().numpy()
    elif isinstance(value, np.ndarray) and value.dtype == object:
        if value.size == 0:
            return None
        array = np.stack([np.asarray(v, dtype=np.float32) for v in value])
    else:
        array = np.asarray(value, dtype=np.float32)
    if array.size == 0:
        return None
    if array.ndim == 1:
        if length is None:
            raise ValueError(f"{where}: {modality}_feat is 1-D (shape {array.shape}) but the row "
                             f"has no {modality}_len to reshape it to [T, D]")
        steps = int(length)
        if steps <= 0:
            return None
        if array.size % steps:
            raise ValueError(f"{where}: {modality}_feat has {array.size} values, not a multiple "
                             f"of {modality}_len={steps}")
        array = array.reshape(steps, -1)
    if array.ndim != 2:
        raise ValueError(f"{where}: {modality}_feat must be [T, D], got shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{where}: {modality}_feat contains NaN or infinite values")
    return array


def _pooled_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float32 array from Arrow's memory pool (mimalloc or jemalloc).

    A batch's padded features are megabytes made and freed once per batch; from the C heap,
    glibc hands such blocks back to the system as they are freed and the next batch faults
    every page in again (half of :func:`collate`'s time on CMU-MOSEI-sized batches). Arrow's
    pool keeps freed pages for the next batch. The array keeps its buffer alive.
    """
    import pyarrow as pa

    size = int(np.prod(shape, dtype=np.int64)) * 4
    if size == 0:
        return np.empty(shape, dtype=np.float32)
    return np.frombuffer(pa.allocate_buffer(size), dtype=np.float32).reshape(shape)


def pooled_empty_like(tensor: torch.Tensor, dtype: torch.dtype | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.empty_like(tensor, dtype=dtype, device=device)``, contiguous, from Arrow's
    memory pool where the result is a float32 CPU tensor.

    For tensors made once per batch and dropped with it, like :func:`collate`'s padded
    features (:func:`_pooled_empty`) and the perturbed copies of a batch that the benchmark's
    robustness conditions make: from the C heap each would fault its pages in afresh (on
    CMU-MOSEI-sized batches about as long as computing it). Other dtypes and devices:
    ``torch.empty_like``.
    """
    dtype = dtype or tensor.dtype
    device = torch.device(device) if device is not None else tensor.device
    if device.type != "cpu" or dtype != torch.float32:
        return torch.empty(tuple(tensor.shape), dtype=dtype, device=device)
    return torch.from_numpy(_pooled_empty(tuple(tensor.shape)))


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def collate(rows: Sequence[Mapping[str, object]], modalities: Sequence[str] | None = None,
            input_dims: Mapping[str, int] | None = None, task: str | None = None,
            max_len: int | None = None, class_names: Sequence[str] | None = None) -> Batch:
    """Pads a list of rows into a :class:`Batch`.

    Args:
        rows: clips in the row format described in the module docstring.
        modalities: modalities to keep; default: every ``<m>_feat`` key of the rows (plus the
            keys of ``input_dims``).
        input_dims: feature size per modality. When given, sizes are checked, and a modality
            that no row of this batch has still appears (zeros, all-False mask) instead of being
            left out of the batch.
        task: ``"discrete"`` (labels → long) or ``"continuous"`` (labels → float); default:
            inferred from the label values (integers → discrete).
        max_len: keep at most this many steps per sequence (the first ones).
        class_names: the taxonomy, in class-index order: maps ``label_<m>`` class names to
            indices and bounds integer ones.

    Returns:
        The batch; ``labels`` is None when no row has a label, ``relevance`` has an entry for
        each modality with a ``relevance_<m>`` key, ``modality_labels`` one for each modality
        with a ``label_<m>`` key (discrete tasks only: for a continuous task the target is a
        score and ``label_<m>`` names classes of another variable, so it is not read).

    Raises:
        ValueError: on an empty batch, a malformed feature array, inconsistent feature sizes,
            a label missing from some rows only, or a ``label_<m>`` that is not a known class
            (or is a class name and no ``class_names`` were given); the message names the clip.
    """
    if not rows:
        raise ValueError("cannot collate an empty list of rows")
    if modalities is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row_modalities(row)))
        seen.update(dict.fromkeys(input_dims or {}))
        modalities = [m for m in MODALITIES if m in seen] + sorted(
            m for m in seen if m not in MODALITIES)
    ids = [str(row.get("clip_id", row.get("id", i))) for i, row in enumerate(rows)]

    features: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    for m in modalities:
        arrays = []
        for clip_id, row in zip(ids, rows, strict=True):
            array = _as_matrix(row.get(f"{m}{FEAT_SUFFIX}"), row.get(f"{m}_len"), m,
                               f"clip {clip_id!r}")
            if array is not None and max_len is not None:
                array = array[:max_len]
            arrays.append(array)
        dims = {a.shape[1] for a in arrays if a is not None}
        expected = (input_dims or {}).get(m)
        if expected is not None:
            dims.add(int(expected))
        if len(dims) > 1:
            raise ValueError(f"modality {m!r}: feature sizes differ within the batch or from "
                             f"input_dims: {sorted(dims)} (clips {ids[:5]}...)")
        if not dims:
            continue  # no clip has it and its size is unknown: the modality is absent
        dim = dims.pop()
        steps = max([a.shape[0] for a in arrays if a is not None] + [1])
        # Padded in numpy, one tensor at the end: fewer torch ops, and read-only inputs (Arrow
        # memory) are copied rather than wrapped.
        feat = _pooled_empty((len(rows), steps, dim))
        mask = np.zeros((len(rows), steps), dtype=bool)
        for i, array in enumerate(arrays):
            length = 0 if array is None else array.shape[0]
            if length:
                feat[i, :length] = array
                mask[i, :length] = True
            feat[i, length:] = 0.0  # each value is written once: a feature or a padding zero
        features[m] = torch.from_numpy(feat)
        masks[m] = torch.from_numpy(mask)
    if not masks:
        raise ValueError(f"no modality features in the batch (clips {ids[:5]}...): rows need "
                         f"'<modality>_feat' keys, e.g. 'text_feat'")

    labels = _collate_labels(rows, ids, task)
    relevance: dict[str, torch.Tensor] = {}
    for m in modalities:
        key = f"relevance_{m}"
        if any(key in row for row in rows):
            values = [row.get(key) for row in rows]
            relevance[m] = torch.tensor(
                [float("nan") if _is_missing(v) else float(v) for v in values],
                dtype=torch.float32)
    modality_labels: dict[str, torch.Tensor] = {}
    if labels is not None and labels.dtype == torch.int64:
        for m in modalities:
            key = f"label_{m}"
            if any(key in row for row in rows):
                modality_labels[m] = torch.tensor(
                    [_class_index(row.get(key), key, clip_id, class_names)
                     for clip_id, row in zip(ids, rows, strict=True)], dtype=torch.int64)
    return Batch(features=features, masks=masks, labels=labels, relevance=relevance, ids=ids,
                 modality_labels=modality_labels)


def _class_index(value: object, key: str, clip_id: str,
                 class_names: Sequence[str] | None) -> int:
    """A ``label_<m>`` value as a class index; -1 when unknown (None, NaN or -1)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return -1
    if isinstance(value, str):
        if class_names is None:
            raise ValueError(f"clip {clip_id!r}: {key} is a class name ({value!r}) and no class "
                             f"names were given to map it to a class index; pass "
                             f"class_names= (the dataset's label ClassLabel names)")
        try:
            return list(class_names).index(value)
        except ValueError:
            raise ValueError(f"clip {clip_id!r}: {key}={value!r} is not a class of the "
                             f"taxonomy {list(class_names)}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"clip {clip_id!r}: {key}={value!r} is neither a class index nor a "
                         f"class name")
    if isinstance(value, float):
        if math.isnan(value):
            return -1
        if not value.is_integer():
            raise ValueError(f"clip {clip_id!r}: {key}={value!r} is not a class index")
    index = int(value)
    if index == -1:
        return -1
    if index < 0 or (class_names is not None and index >= len(class_names)):
        size = f" of {len(class_names)} classes" if class_names is not None else ""
        raise ValueError(f"clip {clip_id!r}: {key}={index} is outside the taxonomy{size}")
    return index


def _collate_labels(rows: Sequence[Mapping[str, object]], ids: Sequence[str],
                    task: str | None) -> torch.Tensor | None:
    values = [row.get("label") for row in rows]
    if all(v is None for v in values):
        return None
    missing = [i for i, v in zip(ids, values, strict=True) if v is None]
    if missing:
        raise ValueError(f"label missing for clip(s) {missing[:5]} while others have one")
    array = np.asarray([np.asarray(v).item() for v in values])
    if task is None:
        task = "discrete" if np.issubdtype(array.dtype, np.integer) else "continuous"
    if task == "discrete":
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise ValueError(f"discrete task but non-integer labels in clips {list(ids[:5])}")
        return torch.as_tensor(array.astype(np.int64))
    if task == "continuous":
        return torch.as_tensor(array.astype(np.float32))
    raise ValueError(f"unknown task {task!r}; expected 'discrete' or 'continuous'")


@dataclass(frozen=True)
class Collator:
    """Picklable :func:`collate` with fixed options, for ``DataLoader(collate_fn=...)``."""

    modalities: tuple[str, ...] | None = None
    input_dims: Mapping[str, int] | None = None
    task: str | None = None
    max_len: int | None = None
    class_names: tuple[str, ...] | None = None

    def __call__(self, rows: Sequence[Mapping[str, object]]) -> Batch:
        return collate(rows, self.modalities, self.input_dims, self.task, self.max_len,
                       self.class_names)


def input_dims_from_rows(rows: Iterable[Mapping[str, object]],
                         max_rows: int = 256) -> dict[str, int]:
    """Feature size per modality, read from the first rows that have each modality.

    Raises:
        ValueError: if no modality features are found in the first ``max_rows`` rows.
    """
    dims: dict[str, int] = {}
    names: set[str] = set()
    for n, row in enumerate(rows):
        if n >= max_rows:
            break
        for m in row_modalities(row):
            names.add(m)
            if m not in dims:
                array = _as_matrix(row.get(f"{m}{FEAT_SUFFIX}"), row.get(f"{m}_len"), m,
                                   f"row {n}")
                if array is not None:
                    dims[m] = int(array.shape[1])
        if dims and names <= set(dims):
            break
    if not dims:
        raise ValueError(f"no '<modality>_feat' values found in the first {max_rows} rows")
    return {m: dims[m] for m in [m for m in MODALITIES if m in dims] + sorted(
        m for m in dims if m not in MODALITIES)}


def synthetic_rows(n: int, input_dims: Mapping[str, int], num_classes: int = 3,
                   task: str = "discrete", seed: int = 0, min_len: int = 2, max_len: int = 6,
                   separation: float = 2.0, noise: float = 1.0, missing_prob: float = 0.0,
                   deviation_prob: float = 0.0, relevance: bool = True,
                   task_seed: int = 0,
                   modality_labels: bool = True) -> list[dict[str, object]]:
    """A learnable synthetic data set in the row format of a built dataset.

    Discrete: clip i has class ``y`` (balanced, shuffled); every step of modality m is
    ``separation * mu[m][y] + noise * N(0, I)``, with random unit vectors ``mu[m][c]`` drawn
    from ``task_seed`` (so splits made with different ``seed`` share them).
    With probability ``deviation_prob`` a modality *deviates*: it is drawn around another
    class's mean and its ``relevance_<m>`` is 0 (1 otherwise), mimicking a modality whose
    unimodal annotators disagree with the clip label; ``label_<m>`` is the class it shows.

    Continuous: the score ``y`` is uniform in [-3, 3]; steps are
    ``separation * (y / 3) * mu[m] + noise * N(0, I)``; relevance is 1 (0 for deviating
    modalities, whose score sign is flipped).

    Args:
        n: number of clips.
        input_dims: feature size per modality.
        num_classes: classes of the discrete task.
        task: ``"discrete"`` or ``"continuous"``.
        seed: seed of the clips (private generators; the global RNGs are not touched).
        min_len: shortest sequence.
        max_len: longest sequence.
        separation: distance scale of the class means.
        noise: standard deviation of the per-step noise.
        missing_prob: probability that a modality is missing in a clip (never all of them).
        deviation_prob: probability that a present modality deviates from the clip label.
        relevance: whether rows carry ``relevance_<m>`` fields.
        task_seed: seed of the class means (the "task"; keep it fixed across splits).
        modality_labels: whether rows of the discrete task carry ``label_<m>`` (the class
            index the modality shows; None where it is missing).

    Returns:
        Rows (dicts) with ``clip_id``, ``label``, ``<m>_feat``, ``relevance_<m>`` and
        ``label_<m>`` (as asked).
    """
    if task not in ("discrete", "continuous"):
        raise ValueError(f"unknown task {task!r}; expected 'discrete' or 'continuous'")
    task_rng = np.random.default_rng(task_seed)
    rng = np.random.default_rng([task_seed, seed])
    order = random.Random(seed)
    modalities = list(input_dims)
    means = {}
    for m in modalities:
        raw = task_rng.standard_normal((max(num_classes, 1), input_dims[m]))
        means[m] = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    labels: list[int | float]
    if task == "discrete":
        labels = [i % num_classes for i in range(n)]
        order.shuffle(labels)
    else:
        labels = [float(v) for v in rng.uniform(-3.0, 3.0, size=n)]
    rows = []
    for i, y in enumerate(labels):
        row: dict[str, object] = {"clip_id": f"syn{i:05d}", "label": y}
        missing = {m for m in modalities if rng.random() < missing_prob}
        if len(missing) == len(modalities):
            missing.discard(modalities[int(rng.integers(len(modalities)))])
        for m in modalities:
            if m in missing:
                row[f"{m}_feat"] = None
                if relevance:
                    row[f"relevance_{m}"] = None
                if modality_labels and task == "discrete":
                    row[f"label_{m}"] = None
                continue
            deviates = rng.random() < deviation_prob
            if task == "discrete":
                source = int(y)
                if deviates and num_classes > 1:
                    source = (source + 1 + int(rng.integers(num_classes - 1))) % num_classes
                center = separation * means[m][source]
                if modality_labels:
                    row[f"label_{m}"] = source
            else:
                center = separation * (-y if deviates else y) / 3.0 * means[m][0]
            steps = int(rng.integers(min_len, max_len + 1))
            feat = center + noise * rng.standard_normal((steps, input_dims[m]))
            row[f"{m}_feat"] = feat.astype(np.float32)
            if relevance:
                row[f"relevance_{m}"] = 0.0 if deviates else 1.0
        rows.append(row)
    return rows


def synthetic_batch(batch_size: int, input_dims: Mapping[str, int], num_classes: int = 3,
                    task: str = "discrete", seed: int = 0, **kwargs: object) -> Batch:
    """One collated batch of :func:`synthetic_rows` (``kwargs`` go to it)."""
    rows = synthetic_rows(batch_size, input_dims, num_classes, task, seed, **kwargs)
    return collate(rows, input_dims=input_dims, task=task)
