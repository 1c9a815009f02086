"""Loading a built SDME dataset: by name from the data folder, or by path.

A built dataset is a plain Hugging Face file-based dataset (parquet shards plus a card whose
YAML names the splits and features), so this is a thin layer over ``datasets.load_dataset``
(https://huggingface.co/docs/datasets/loading#local-and-remote-files) that finds the folder,
explains what to do when it is absent, and offers helpers that read feature sizes and the label
taxonomy from the dataset itself rather than from constants. :class:`ParquetRows` streams one
split straight from the parquet shards with a windowed shuffle, for training on datasets whose
memory-mapped Arrow copy should not be mapped whole into the process (``benchmarks/
bench_loader.py`` measures both paths).

``datasets`` keys its Arrow cache of a local folder on the folder's name and the data-file
patterns, not on the files themselves: with ``datasets`` 5.2, a dataset rebuilt in place (or
another build in a folder of the same name) was served from the stale Arrow copy of the first
one. :func:`load_dataset` therefore gives each build a cache folder of its own, named by the
build's identity (:func:`build_cache_dir`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdme import paths
from sdme.build import BUILD_INFO_NAME, CARD_NAME
from sdme.schema import MODALITIES

if TYPE_CHECKING:
    import datasets

FORMATS = ("torch", "numpy")


def resolve_built(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None
                  ) -> Path:
    """The folder of a built dataset.

    A plain name (no path separator) is looked up as ``<data_dir>/built/<name>`` first; a path
    (or a name with no dataset of that name in the data folder) is taken as a folder.

    Raises:
        FileNotFoundError: No such dataset, with the commands that make it.
    """
    text = os.fspath(name_or_path)
    looks_like_path = (not isinstance(name_or_path, str) or "/" in text or os.sep in text
                       or text.startswith((".", "~")))
    if not looks_like_path:
        candidate = paths.built_dir(text, data_dir)
        if candidate.is_dir():
            return candidate
        local = Path(text)
        if (local / BUILD_INFO_NAME).is_file():
            return local
        raise FileNotFoundError(
            f"no built dataset {text!r} in {candidate.parent}; run `sdme download && sdme build`"
            + ("" if text == "sample" else f" (for your own corpus: `sdme download folder "
               f"--path DIR --name {text} && sdme build {text}`)"))
    path = Path(text).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such built dataset folder")
    return path


def load_dataset(name_or_path: str | os.PathLike, split: str | None = None, *,
                 data_dir: str | os.PathLike | None = None, format: str | None = None,
                 cache_dir: str | os.PathLike | None = None
                 ) -> datasets.Dataset | datasets.DatasetDict:
    """Loads a built SDME dataset with ``datasets.load_dataset``.

    Args:
        name_or_path: A dataset name under ``<data_dir>/built/`` (e.g. ``"sample"``) or a
            folder.
        split: ``"train"``, ``"validation"`` or ``"test"``; None loads all splits.
        data_dir: The SDME data folder (default: ``$SDME_DATA_DIR`` or ``~/.cache/sdme``).
        format: ``"torch"`` or ``"numpy"``: feature columns come as ``[T, dim]`` tensors or
            arrays; None keeps Python objects.
        cache_dir: Where ``datasets`` keeps its Arrow cache (default: a folder of this build's
            own under the ``datasets`` cache, :func:`build_cache_dir`).

    Raises:
        FileNotFoundError: No such dataset (the message says how to build it).
        ValueError: Unknown format or split.
    """
    import datasets

    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} or None, got {format!r}")
    path = resolve_built(name_or_path, data_dir)
    for required in (CARD_NAME, BUILD_INFO_NAME):
        if not (path / required).is_file():
            raise FileNotFoundError(f"{path}: not a built SDME dataset (no {required}); "
                                    "build it with `sdme build`")
    kwargs: dict[str, Any] = {"cache_dir": str(cache_dir or build_cache_dir(path))}
    try:
        ds = datasets.load_dataset(str(path), split=split, **kwargs)
    except ValueError as exc:
        if split is not None and "split" in str(exc).lower():
            raise ValueError(f"{path}: no split {split!r} ({exc})") from exc
        raise
    return ds.with_format(format) if format else ds


def _label_names(shard: Path) -> tuple[str, ...] | None:
    """The ``label`` ClassLabel names recorded in a shard's ``datasets`` schema metadata."""
    import json

    import pyarrow.parquet as pq

    metadata = pq.read_schema(shard).metadata or {}
    try:
        label = json.loads(metadata[b"huggingface"])["info"]["features"]["label"]
    except (KeyError, TypeError, ValueError):
        return None
    names = label.get("names") if isinstance(label, dict) else None
    return tuple(str(n) for n in names) if names else None


def build_cache_dir(folder: str | os.PathLike) -> Path:
    """The ``datasets`` cache folder of one build of a built dataset.

    ``<datasets cache>/sdme/<digest>``, where the digest covers ``build_info.json`` (which
    records when the build was made and with what) and the name, size and modification time of
    every data file, so that a rebuilt dataset never reuses the Arrow copy of an earlier build.
    """
    import datasets

    path = Path(folder)
    digest = hashlib.sha256((path / BUILD_INFO_NAME).read_bytes())
    for data_file in sorted((path / "data").glob("*")):
        stat = data_file.stat()
        digest.update(f"{data_file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return Path(datasets.config.HF_DATASETS_CACHE) / "sdme" / digest.hexdigest()[:24]


def _features_of(dataset: Any) -> datasets.Features:
    if hasattr(dataset, "features"):
        return dataset.features
    if hasattr(dataset, "values"):  # DatasetDict: all splits share their features
        for split in dataset.values():
            return split.features
    raise TypeError(f"expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")


def feature_dims(dataset: datasets.Dataset | datasets.DatasetDict) -> dict[str, int]:
    """Feature vector size per modality, read from the ``<m>_feat`` column types."""
    features = _features_of(dataset)
    dims = {}
    for m in MODALITIES:
        column = f"{m}_feat"
        if column not in features:
            raise KeyError(f"the dataset has no {column!r} column: not a built SDME dataset")
        shape = getattr(features[column], "shape", None)
        if not shape or len(shape) != 2 or shape[1] is None:
            raise TypeError(f"column {column!r} is {features[column]!r}, expected "
                            "Array2D(shape=(None, dim))")
        dims[m] = int(shape[1])
    return dims


def taxonomy(dataset: datasets.Dataset | datasets.DatasetDict) -> list[str]:
    """The emotion categories in label order, read from the ``label`` ClassLabel."""
    features = _features_of(dataset)
    names = getattr(features.get("label"), "names", None)
    if not names:
        raise KeyError("the dataset has no ClassLabel 'label' column: not a built SDME dataset")
    return list(names)


class ParquetRows:
    """One split of a built dataset, streamed from its parquet shards in bounded memory.

    ``load_dataset`` memory-maps an Arrow copy of the dataset, so a shuffled epoch maps every
    page of it into the process (file-backed, reclaimable, but counted in its RSS: the whole
    dataset by the end of an epoch). This reader instead decodes parquet row groups on demand:
    each ``iter()`` is one epoch that visits the row groups in a seeded random order, ``window``
    row groups at a time, and yields the rows of a window in a seeded random order (a windowed
    shuffle, as in tf.data or WebDataset). Memory holds one window (``window`` x the writer's
    row-group size, 100 rows by default). Successive epochs use successive shuffles (or the one
    :meth:`set_epoch` names); the sequence is fixed by ``seed``.

    Rows are dicts in the form ``dataset.with_format("numpy")`` gives: feature columns are
    ``[T, dim]`` float32 arrays, the other columns Python values. Pass the object as training
    data to ``baselines.train.fit`` (it is re-iterable, not a one-shot iterator; its
    :attr:`class_names`, the ``label`` ClassLabel's names, let the trainer map ``label_<m>``
    class names to indices). Under a ``torch`` DataLoader with several workers, each worker
    reads its own share of the row groups.

    Args:
        name_or_path: Built dataset name or folder (see :func:`resolve_built`).
        split: ``train``, ``validation`` or ``test``.
        shuffle: Shuffle row groups and rows within each window (False: file order).
        seed: Seed of the shuffles.
        window: Row groups decoded and mixed at a time.
        columns: Columns to read (default: all).
        data_dir: The SDME data folder.

    Raises:
        FileNotFoundError: No such dataset or shard.
        KeyError: No such split.
    """

    def __init__(self, name_or_path: str | os.PathLike, split: str, *, shuffle: bool = True,
                 seed: int = 0, window: int = 8, columns: list[str] | None = None,
                 data_dir: str | os.PathLike | None = None) -> None:
        import json

        import pyarrow.parquet as pq

        if window < 1:
            raise ValueError("window must be >= 1")
        root = resolve_built(name_or_path, data_dir)
        info_path = root / BUILD_INFO_NAME
        if not info_path.is_file():
            raise FileNotFoundError(f"{root}: not a built SDME dataset (no {BUILD_INFO_NAME})")
        files = json.loads(info_path.read_text(encoding="utf-8")).get("data_files") or {}
        if split not in files:
            raise KeyError(f"{root}: no split {split!r} (splits: {', '.join(files)})")
        self.paths = [root / p for p in files[split]]
        self.groups: list[tuple[int, int]] = []
        self._rows = 0
        for i, path in enumerate(self.paths):
            meta = pq.ParquetFile(path).metadata
            self.groups += [(i, g) for g in range(meta.num_row_groups)]
            self._rows += meta.num_rows
        self.shuffle, self.seed, self.window, self.columns = shuffle, seed, window, columns
        self.epoch = 0
        self.class_names = _label_names(self.paths[0]) if self.paths else None

    def __len__(self) -> int:
        return self._rows

    def set_epoch(self, epoch: int) -> None:
        """Makes the next ``iter()`` epoch ``epoch`` (the trainer calls it before each epoch,
        so that DataLoader workers, which iterate copies, reshuffle too)."""
        self.epoch = int(epoch)

    def _order(self, epoch: int) -> list[tuple[int, int]]:
        import numpy as np

        groups = list(self.groups)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(groups))
            groups = [groups[i] for i in order]
        try:
            from torch.utils.data import get_worker_info
        except ImportError:  # pragma: no cover - torch is a dependency
            return groups
        worker = get_worker_info()
        return groups if worker is None else groups[worker.id::worker.num_workers]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import numpy as np
        import pyarrow.parquet as pq

        epoch, self.epoch = self.epoch, self.epoch + 1
        rng = np.random.default_rng([self.seed, epoch, 1])
        files: dict[int, Any] = {}
        order = self._order(epoch)
        for start in range(0, len(order), self.window):
            rows: list[dict[str, Any]] = []
            for f, g in order[start: start + self.window]:
                if f not in files:
                    files[f] = pq.ParquetFile(self.paths[f])
                rows += _table_rows(files[f].read_row_group(g, columns=self.columns))
            if self.shuffle:
                rows = [rows[i] for i in rng.permutation(len(rows))]
            yield from rows


def _table_rows(table: Any) -> list[dict[str, Any]]:
    """Rows of an Arrow table; list-of-list (``Array2D``) columns become ``[T, dim]`` arrays."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        storage = getattr(column, "storage", column)
        if pa.types.is_list(storage.type) and pa.types.is_list(storage.type.value_type):
            inner = storage.flatten()
            values = inner.flatten().to_numpy(zero_copy_only=False)
            width = inner.value_lengths().to_numpy(zero_copy_only=False)
            dim = int(width[0]) if len(width) else 0
            starts = storage.offsets.to_numpy()
            matrix = values.reshape(-1, dim) if dim else values.reshape(0, 0)
            columns[name] = [matrix[starts[r]: starts[r + 1]] for r in range(len(storage))]
        else:
            columns[name] = column.to_pylist()
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(),
                                                                       strict=True)]


__all__ = ["ParquetRows", "build_cache_dir", "feature_dims", "load_dataset", "resolve_built",
           "taxonomy"]
