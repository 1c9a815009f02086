"""Parquet shards of a built SDME dataset, streamed in bounded memory into a staging folder.

The mechanics under ``sdme.built.write_built_dataset`` (the one function that writes a built
dataset; every producer goes through it, nothing else writes with this module). The layout is
``sdme.built``'s:

```
<out_dir>/
  README.md                               dataset card (YAML: dataset_info + configs)
  build_info.json                         provenance
  data/<split>-NNNNN-of-NNNNN.parquet     shards, rows in the order they were given
```

Rows stream through in bounded memory: they are buffered up to one parquet row group
(``row_group_rows``) and written with ``pyarrow.parquet.ParquetWriter``; a shard is closed when
the next row would take it past ``shard_rows`` rows or ``shard_bytes`` feature bytes (a single
larger row gets a shard of its own). Shards are written under a temporary name and renamed to
``<split>-<i>-of-<n>`` once the split's shard count is known. Everything happens in a staging
folder beside ``out_dir`` that replaces it whole only in :meth:`BuiltDatasetWriter.commit`
(``sdme.fileio.swap_in_dir``): a failed or interrupted write never replaces a good dataset.

Feature columns (``datasets.Array2D(shape=(None, dim))``) are given as ``[T, dim]`` numpy arrays
(``None`` or a ``[0, dim]`` array for a missing modality) and stored as Arrow lists of lists
(https://arrow.apache.org/docs/format/Columnar.html#variable-size-list-layout). While a split
is written, the values of each modality's feature column are summed (:class:`FeatureMoments`),
so the provenance records their moments (``sdme.built.FeatureStats``) at no extra pass.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sdme.built import (
    BUILD_INFO_NAME,
    CARD_NAME,
    DATA_DIRNAME,
    DEFAULT_SHARD_BYTES,
    DEFAULT_SHARD_ROWS,
    FEAT,
    FeatureStats,
)
from sdme.fileio import atomic_write_text, swap_in_dir

if TYPE_CHECKING:
    import datasets

DEFAULT_ROW_GROUP_ROWS = 100
MAX_LIST_VALUES = 2**31 - 1  # Arrow list offsets are int32


class WriteError(RuntimeError):
    """Rows that cannot be written (unknown column, wrong feature shape, writer misuse)."""


def _is_array2d(arrow_type: Any) -> bool:
    import pyarrow as pa

    if not isinstance(arrow_type, pa.ExtensionType):
        return False
    storage = arrow_type.storage_type
    return pa.types.is_list(storage) and pa.types.is_list(storage.value_type)


def array2d_column(arrays: Sequence[np.ndarray], arrow_type: Any) -> Any:
    """An ``Array2D((None, dim))`` Arrow column from ``[T_i, dim]`` arrays (one concatenation).

    Raises:
        WriteError: More values than Arrow's int32 list offsets can address.
    """
    import pyarrow as pa

    storage = arrow_type.storage_type
    value_type = storage.value_type.value_type
    dtype = value_type.to_pandas_dtype()
    dim = int(arrow_type.shape[1])
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    total = int(lengths.sum())
    if total * dim > MAX_LIST_VALUES:
        raise WriteError(f"one row group would hold {total * dim} feature values, more than "
                         "Arrow's int32 offsets allow: lower row_group_rows")
    flat = (np.concatenate([a.reshape(-1) for a in arrays]) if total
            else np.zeros(0, dtype=dtype))
    inner = pa.ListArray.from_arrays(
        pa.array(np.arange(0, (total + 1) * dim, dim, dtype=np.int32)),
        pa.array(flat.astype(dtype, copy=False), type=value_type))
    outer = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)), inner)
    return pa.ExtensionArray.from_storage(arrow_type, outer)


class FeatureMoments:
    """Sums of feature values and of their squares (float64), from which :class:`FeatureStats`
    follow: the one definition of a dataset's feature statistics (``sdme.writer`` accumulates
    them while writing; ``sdme.loading.feature_stats`` from the parquet of older datasets)."""

    _CHUNK = 1 << 20  # values converted to float64 at a time

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.squares = 0.0

    def add(self, values: Any) -> None:
        """Adds an array of feature values (any shape; float32 or float64)."""
        flat = np.asarray(values).reshape(-1)
        for start in range(0, flat.size, self._CHUNK):
            chunk = flat[start:start + self._CHUNK].astype(np.float64)
            self.total += float(chunk.sum())
            # squared in place and summed by numpy (pairwise), not by a BLAS dot product,
            # whose threads stall on a busy machine
            self.squares += float(np.square(chunk, out=chunk).sum())
        self.count += int(flat.size)

    def stats(self) -> FeatureStats:
        """The moments so far."""
        if not self.count:
            return FeatureStats(values=0, mean=0.0, std=0.0)
        mean = self.total / self.count
        variance = max(self.squares / self.count - mean * mean, 0.0)
        return FeatureStats(values=self.count, mean=mean, std=variance ** 0.5)


class BuiltDatasetWriter:
    """Streams rows into a built dataset folder; nothing replaces ``out_dir`` before
    :meth:`commit`.

    Use as a context manager (the staging folder is removed if the block fails)::

        with BuiltDatasetWriter(out_dir, features) as writer:
            for split in ("train", "validation", "test"):
                writer.write_split(split, rows_of(split))       # any iterable of row dicts
            writer.commit(build_info_json, card)

    Args:
        out_dir: The built dataset folder (replaced whole on commit).
        features: The dataset's ``datasets.Features`` (``sdme.built.dataset_features``); rows
            must use its column names.
        shard_rows: Most rows per parquet shard.
        shard_bytes: Most feature bytes (``Array2D`` columns) per parquet shard.
        row_group_rows: Rows per parquet row group; also how many rows are held in memory.
    """

    def __init__(self, out_dir: str | os.PathLike, features: datasets.Features, *,
                 shard_rows: int = DEFAULT_SHARD_ROWS, shard_bytes: int = DEFAULT_SHARD_BYTES,
                 row_group_rows: int = DEFAULT_ROW_GROUP_ROWS) -> None:
        if shard_rows < 1 or shard_bytes < 1 or row_group_rows < 1:
            raise WriteError("shard_rows, shard_bytes and row_group_rows must be >= 1")
        self.out_dir = Path(out_dir)
        self.features = features
        self.schema = features.arrow_schema
        self.shard_rows = shard_rows
        self.shard_bytes = shard_bytes
        self.row_group_rows = row_group_rows
        self.staging = self.out_dir.with_name(f".{self.out_dir.name}.staging-{os.getpid()}")
        self.data_files: dict[str, list[str]] = {}
        self.split_bytes: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        #: split -> modality -> moments of its feature values (``sdme.built.FeatureStats``).
        self.feature_stats: dict[str, dict[str, FeatureStats]] = {}
        self.seconds = 0.0
        self._array2d = {f.name for f in self.schema if _is_array2d(f.type)}
        self._dims = {name: int(self.schema.field(name).type.shape[1]) for name in self._array2d}
        self._dictionary_columns = [f.name for f in self.schema if f.name not in self._array2d]
        self._feature_columns = {m: c for m, c in FEAT.items() if c in self._array2d}
        self._open = False
        self._committed = False

    # --- lifecycle ------------------------------------------------------------------------

    def open(self) -> BuiltDatasetWriter:
        """Creates a fresh staging folder (stale ones from killed runs are removed)."""
        if self._open:
            return self
        for stale in self.out_dir.parent.glob(f".{self.out_dir.name}.staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        (self.staging / DATA_DIRNAME).mkdir(parents=True)
        self._open = True
        return self

    def abort(self) -> None:
        """Removes the staging folder; ``out_dir`` is left as it was."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self._open = False

    def __enter__(self) -> BuiltDatasetWriter:
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._committed:
            self.abort()

    # --- rows -----------------------------------------------------------------------------

    def _check_row(self, row: Mapping[str, Any], split: str, index: int) -> dict[str, Any]:
        unknown = set(row) - set(self.schema.names)
        if unknown:
            raise WriteError(f"split {split!r} row {index} ({row.get('clip_id')!r}): column(s) "
                             f"{sorted(unknown)} are not in the dataset features")
        out = dict(row)
        for name in self._array2d:
            dim = self._dims[name]
            value = row.get(name)
            if value is None:
                out[name] = np.zeros((0, dim), dtype=np.float32)
                continue
            array = np.asarray(value)
            if array.ndim != 2 or array.shape[1] != dim:
                raise WriteError(f"split {split!r} row {index} ({row.get('clip_id')!r}): {name} "
                                 f"has shape {array.shape}, expected [T, {dim}]")
            out[name] = array
        return out

    def _row_bytes(self, row: Mapping[str, Any]) -> int:
        return sum(int(row[name].shape[0]) * self._dims[name] * 4 for name in self._array2d)

    def _table(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        import pyarrow as pa

        columns = {}
        for field in self.schema:
            if field.name in self._array2d:
                columns[field.name] = array2d_column([r[field.name] for r in rows], field.type)
            else:
                columns[field.name] = pa.array([r.get(field.name) for r in rows],
                                                type=field.type)
        return pa.Table.from_pydict(columns, schema=self.schema)

    def write_split(self, split: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Writes one split's rows (consumed lazily, in order) as parquet shards.

        Args:
            split: ``train``, ``validation`` or ``test`` (each at most once).
            rows: Row dicts keyed by column name; feature columns are ``[T, dim]`` arrays (or
                None for an empty sequence); absent scalar columns are null.

        Returns:
            The number of rows written.

        Raises:
            WriteError: A split written twice, an unknown column or a feature of the wrong
                shape (the message names the split, the row and the clip).
        """
        import pyarrow.parquet as pq

        if not self._open:
            self.open()
        if split in self.data_files:
            raise WriteError(f"split {split!r} was already written")
        start = time.perf_counter()
        temp_names: list[Path] = []
        writer: Any = None
        buffer: list[dict[str, Any]] = []
        shard_count = shard_size = total = nbytes = 0
        moments = {m: FeatureMoments() for m in self._feature_columns}

        def flush() -> None:
            nonlocal nbytes
            if buffer:
                table = self._table(buffer)
                nbytes += table.nbytes
                writer.write_table(table, row_group_size=len(buffer))
                buffer.clear()

        def new_shard() -> Any:
            path = self.staging / DATA_DIRNAME / f".{split}-{len(temp_names):05d}.partial"
            temp_names.append(path)
            return pq.ParquetWriter(path, self.schema,
                                    use_dictionary=self._dictionary_columns)

        try:
            for index, raw in enumerate(rows):
                row = self._check_row(raw, split, index)
                for m, column in self._feature_columns.items():
                    moments[m].add(row[column])
                size = self._row_bytes(row)
                if writer is not None and shard_count and (
                        shard_count >= self.shard_rows or shard_size + size > self.shard_bytes):
                    flush()
                    writer.close()
                    writer = None
                if writer is None:
                    writer, shard_count, shard_size = new_shard(), 0, 0
                buffer.append(row)
                shard_count += 1
                shard_size += size
                total += 1
                if len(buffer) >= self.row_group_rows:
                    flush()
            if writer is None:  # an empty split still gets one (empty) shard
                writer = new_shard()
                writer.write_table(self._table([]))
            flush()
        finally:
            if writer is not None:
                writer.close()
        names = []
        for i, path in enumerate(temp_names):
            rel = f"{DATA_DIRNAME}/{split}-{i:05d}-of-{len(temp_names):05d}.parquet"
            os.replace(path, self.staging / rel)
            names.append(rel)
        self.data_files[split] = names
        self.split_bytes[split] = nbytes
        self.counts[split] = total
        self.feature_stats[split] = {m: acc.stats() for m, acc in moments.items()}
        self.seconds += time.perf_counter() - start
        return total

    # --- card and provenance ----------------------------------------------------------------

    def commit(self, build_info: str, card: str) -> Path:
        """Writes ``build_info.json`` and ``README.md`` (their texts), then swaps the folder in.

        Returns:
            ``out_dir``.
        """
        if not self._open:
            raise WriteError("nothing was written: call write_split first")
        atomic_write_text(self.staging / BUILD_INFO_NAME, build_info)
        atomic_write_text(self.staging / CARD_NAME, card)
        swap_in_dir(self.staging, self.out_dir)
        self._committed = True
        self._open = False
        return self.out_dir


__all__ = ["DEFAULT_ROW_GROUP_ROWS", "BuiltDatasetWriter", "FeatureMoments", "WriteError",
           "array2d_column"]
