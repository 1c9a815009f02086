"""Loading a built SDME dataset: by name from the data folder, or by path.

A built dataset is a plain Hugging Face file-based dataset (parquet shards plus a card whose
YAML names the splits and features), so :func:`load_dataset` is a thin layer over
``datasets.load_dataset`` (https://huggingface.co/docs/datasets/loading#local-and-remote-files)
that finds the folder, explains what to do when it is absent, and offers helpers that read
feature sizes and the label taxonomy from the dataset itself rather than from constants.
``datasets.load_dataset`` first copies the parquet into an Arrow cache (the size of the
dataset again on disk). The rest of this module reads the parquet in place, which is what the
benchmark does for every split:

* :class:`ParquetRows` streams one split with a windowed shuffle, decoding the next window in a
  background thread while the current one is consumed (``perf/bench_loader.py`` measures it
  against a plain pyarrow scan);
* :func:`read_features` (the ``datasets.Features``, from the parquet schema), :func:`split_sizes`
  and :func:`read_columns` (a few small columns of a split, as an in-memory
  ``datasets.Dataset``) describe a dataset without reading its features;
* :func:`feature_stats` gives the moments of a split's feature values: as recorded in the
  provenance (``sdme.built.FeatureStats``), or, for datasets made before they were recorded,
  computed from the parquet once and cached under ``<data_dir>/cache/feature-stats``.

``datasets`` keys its Arrow cache of a local folder on the folder's name and its files' relative
paths, sizes and times, not on where the folder is nor on what the build was: two built
datasets of the same name elsewhere, or a dataset rebuilt in place, could be served the Arrow
copy of another. :func:`load_dataset` gives each build at each location a cache folder of its
own (:func:`build_cache_dir`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdme import paths
from sdme.built import BUILD_INFO_NAME, CARD_NAME, FEAT, LABEL
from sdme.schema import MODALITIES

if TYPE_CHECKING:
    import datasets

    from sdme.built import FeatureStats

FORMATS = ("torch", "numpy")
#: Version of the cached feature statistics (part of the cache key).
STATS_CACHE_VERSION = 1


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
        cache_dir: Where ``datasets`` keeps its Arrow cache (default: a folder of this build
            at this location under the ``datasets`` cache, :func:`build_cache_dir`).

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
    if cache_dir is None:
        cache_dir = build_cache_dir(path)
        _prune_earlier_builds(cache_dir, path)
    kwargs: dict[str, Any] = {"cache_dir": str(cache_dir)}
    try:
        ds = datasets.load_dataset(str(path), split=split, **kwargs)
    except ValueError as exc:
        if split is not None and "split" in str(exc).lower():
            raise ValueError(f"{path}: no split {split!r} ({exc})") from exc
        raise
    return ds.with_format(format) if format else ds


def _label_names(shard: Path) -> tuple[str, ...] | None:
    """The ``label`` ClassLabel names recorded in a shard's ``datasets`` schema metadata."""
    import datasets
    import pyarrow.parquet as pq

    label = datasets.Features.from_arrow_schema(pq.read_schema(shard)).get("label")
    names = getattr(label, "names", None)
    return tuple(str(n) for n in names) if names else None


def build_cache_dir(folder: str | os.PathLike) -> Path:
    """The ``datasets`` cache folder of one build of a built dataset at one location.

    ``<datasets cache>/sdme/<digest>``, where the digest covers the folder's resolved path,
    ``build_info.json`` (which records when the build was made and with what) and the name, size
    and modification time of every data file: datasets of the same name elsewhere never share an
    entry, and a rebuilt dataset never reuses the Arrow copy of an earlier build (which
    :func:`load_dataset` deletes when it makes the new one).
    """
    import datasets

    path = Path(folder)
    digest = hashlib.sha256(str(path.resolve()).encode("utf-8"))
    digest.update((path / BUILD_INFO_NAME).read_bytes())
    for data_file in sorted((path / "data").glob("*")):
        stat = data_file.stat()
        digest.update(f"{data_file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return Path(datasets.config.HF_DATASETS_CACHE) / "sdme" / digest.hexdigest()[:24]


#: In each :func:`build_cache_dir` folder: the resolved location of the dataset it copies.
SOURCE_NAME = ".sdme-source"


def _prune_earlier_builds(cache: Path, folder: Path) -> None:
    """Marks ``cache`` as the Arrow copy of ``folder``'s current build and deletes the copies
    of its earlier builds (same location, other digest), each a full copy of the dataset that
    nothing would read again. Copies of other locations, and folders without a mark (made by
    something else) or that cannot be read, are left alone. A copy is first renamed
    ``.deleting-<name>`` and then deleted, so that one left half-deleted (a file that would not
    go) is finished off next time. On a local file system a process still reading a deleted
    copy keeps its open files.
    """
    import shutil

    source = str(folder.resolve())
    try:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / SOURCE_NAME).write_text(source, encoding="utf-8")
        others = list(cache.parent.iterdir())
    except OSError:  # an unwritable cache: datasets will say so; pruning is only tidying
        return
    for other in others:
        if other == cache:
            continue
        try:
            if not other.name.startswith(".deleting-"):
                if (other / SOURCE_NAME).read_text(encoding="utf-8") != source:
                    continue
                other = other.rename(other.with_name(f".deleting-{other.name}"))
            shutil.rmtree(other)
        except OSError:  # no mark, another user's folder, a file that would not go
            continue


def _features_of(dataset: Any) -> datasets.Features:
    import datasets

    if isinstance(dataset, datasets.Features):
        return dataset
    if hasattr(dataset, "features"):
        return dataset.features
    if hasattr(dataset, "values"):  # DatasetDict: all splits share their features
        for split in dataset.values():
            return split.features
    raise TypeError(f"expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")


def feature_dims(dataset: datasets.Dataset | datasets.DatasetDict | datasets.Features
                 ) -> dict[str, int]:
    """Feature vector size per modality, read from the ``<m>_feat`` column types (of a
    dataset, or of the ``datasets.Features`` :func:`read_features` gives)."""
    features = _features_of(dataset)
    dims = {}
    for m in MODALITIES:
        column = FEAT[m]
        if column not in features:
            raise KeyError(f"the dataset has no {column!r} column: not a built SDME dataset")
        shape = getattr(features[column], "shape", None)
        if not shape or len(shape) != 2 or shape[1] is None:
            raise TypeError(f"column {column!r} is {features[column]!r}, expected "
                            "Array2D(shape=(None, dim))")
        dims[m] = int(shape[1])
    return dims


def taxonomy(dataset: datasets.Dataset | datasets.DatasetDict | datasets.Features
             ) -> list[str]:
    """The emotion categories in label order, read from the ``label`` ClassLabel."""
    features = _features_of(dataset)
    names = getattr(features.get(LABEL), "names", None)
    if not names:
        raise KeyError("the dataset has no ClassLabel 'label' column: not a built SDME dataset")
    return list(names)


def _split_files(root: Path, split: str | None = None) -> dict[str, list[Path]]:
    """Parquet shards per split (only ``split``'s when given), from the provenance.

    Raises:
        FileNotFoundError: Not a built dataset (no provenance).
        sdme.built.BuildInfoError: An invalid provenance record.
        KeyError: No such split.
    """
    from sdme.built import BuildInfo

    info_path = root / BUILD_INFO_NAME
    if not info_path.is_file():
        raise FileNotFoundError(f"{root}: not a built SDME dataset (no {BUILD_INFO_NAME})")
    files = BuildInfo.load(info_path).data_files
    if split is not None:
        if split not in files:
            raise KeyError(f"{root}: no split {split!r} (splits: {', '.join(files)})")
        files = {split: files[split]}
    return {name: [root / p for p in shards] for name, shards in files.items()}


def read_features(name_or_path: str | os.PathLike, *,
                  data_dir: str | os.PathLike | None = None) -> datasets.Features:
    """The dataset's ``datasets.Features``, from the schema of its first parquet shard (every
    shard has the same; nothing but the file footer is read).

    Raises:
        FileNotFoundError: No such dataset or shard.
        sdme.built.BuildInfoError: An invalid provenance record.
    """
    import datasets
    import pyarrow.parquet as pq

    root = resolve_built(name_or_path, data_dir)
    shards = [path for paths_ in _split_files(root).values() for path in paths_]
    if not shards:
        raise FileNotFoundError(f"{root}: the provenance names no parquet shard")
    return datasets.Features.from_arrow_schema(pq.read_schema(shards[0]))


def split_sizes(name_or_path: str | os.PathLike, *,
                data_dir: str | os.PathLike | None = None) -> dict[str, int]:
    """Rows per split, from the parquet footers, in the provenance's split order."""
    import pyarrow.parquet as pq

    root = resolve_built(name_or_path, data_dir)
    return {split: sum(pq.ParquetFile(p).metadata.num_rows for p in shards)
            for split, shards in _split_files(root).items()}


def read_columns(name_or_path: str | os.PathLike, split: str, columns: Sequence[str], *,
                 data_dir: str | os.PathLike | None = None) -> datasets.Dataset:
    """Some columns of one split, read from its parquet in place into an in-memory
    ``datasets.Dataset`` (no Arrow cache file is written). Meant for the small columns (ids,
    labels, annotations); stream the features with :class:`ParquetRows`.

    Raises:
        FileNotFoundError: No such dataset or shard.
        KeyError: No such split, or a column the dataset does not have.
    """
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.table import InMemoryTable

    root = resolve_built(name_or_path, data_dir)
    features = read_features(root)
    missing = [c for c in columns if c not in features]
    if missing:
        raise KeyError(f"{root}: no column(s) {missing} in split {split!r}")
    tables = [pq.read_table(p, columns=list(columns)) for p in _split_files(root, split)[split]]
    table = pa.concat_tables(tables) if tables else pa.table({})
    chosen = datasets.Features({c: features[c] for c in columns})
    return datasets.Dataset(InMemoryTable(table.cast(chosen.arrow_schema)),
                            info=datasets.DatasetInfo(features=chosen), split=split)


def feature_stats(name_or_path: str | os.PathLike, split: str, *,
                  data_dir: str | os.PathLike | None = None) -> dict[str, FeatureStats]:
    """Moments of each modality's feature values in one split (``sdme.built.FeatureStats``).

    Read from the provenance, where the writer records them; for a dataset made before that,
    computed once from the parquet (the feature columns only, no row is materialised) and
    cached in ``<data_dir>/cache/feature-stats/`` under a key of its provenance and shards,
    so that later calls read the cache.

    Args:
        name_or_path: Built dataset name or folder.
        split: The split.
        data_dir: The SDME data folder (where the cache lives).

    Raises:
        FileNotFoundError: No such dataset or shard.
        KeyError: No such split.
    """
    from sdme.built import BuildInfo, FeatureStats

    root = resolve_built(name_or_path, data_dir)
    shards = _split_files(root, split)[split]
    info = BuildInfo.load(root)
    if info.feature_stats is not None and split in info.feature_stats:
        return dict(info.feature_stats[split])
    key = hashlib.sha256(json.dumps(
        {"version": STATS_CACHE_VERSION, "split": split,
         "build_info": hashlib.sha256((root / BUILD_INFO_NAME).read_bytes()).hexdigest(),
         "shards": [[p.name, p.stat().st_size] for p in shards]}, sort_keys=True).encode()
    ).hexdigest()
    cache = paths.data_dir(data_dir) / "cache" / "feature-stats" / f"{key}.json"
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        return {m: FeatureStats(**v) for m, v in cached["stats"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    stats = scan_feature_stats(shards, [m for m in MODALITIES if m in info.features])
    from sdme.fileio import atomic_write_text

    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps(
        {"dataset": str(root), "split": split,
         "stats": {m: {"values": s.values, "mean": s.mean, "std": s.std}
                   for m, s in stats.items()}}, indent=1) + "\n")
    return stats


def scan_feature_stats(shards: Sequence[str | os.PathLike], modalities: Sequence[str]
                       ) -> dict[str, FeatureStats]:
    """Moments of each modality's feature values over parquet shards, row group by row group
    (the values are summed straight from the Arrow buffers, as ``sdme.writer`` sums them)."""
    import pyarrow.parquet as pq

    from sdme.writer import FeatureMoments

    moments = {m: FeatureMoments() for m in modalities}
    for path in shards:
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=[FEAT[m] for m in modalities])
            for m in modalities:
                for chunk in table.column(FEAT[m]).chunks:
                    storage = getattr(chunk, "storage", chunk)
                    moments[m].add(storage.flatten().flatten().to_numpy(zero_copy_only=False))
    return {m: acc.stats() for m, acc in moments.items()}


#: Bytes of Arrow tables a :class:`ParquetRows` decodes between two hand-backs of the Arrow
#: pool's unused memory (about a shuffle window of a CMU-MOSEI-sized dataset).
RELEASE_BYTES = 128 * 2**20


class ParquetRows:
    """One split of a built dataset, streamed from its parquet shards in bounded memory.

    ``load_dataset`` memory-maps an Arrow copy of the dataset, so a shuffled epoch maps every
    page of it into the process (file-backed, reclaimable, but counted in its RSS: the whole
    dataset by the end of an epoch), after writing that copy to disk. This reader instead
    decodes parquet row groups in place, on demand: each ``iter()`` is one epoch that visits the
    row groups in a seeded random order, ``window`` row groups at a time, and yields the rows of
    a window in a seeded random order (a windowed shuffle, as in tf.data or WebDataset). While
    the rows of one window are consumed, a background thread decodes the next one (parquet
    decoding releases the GIL), so reading overlaps with collating and training. Memory holds
    two windows (``window`` x the writer's row-group size, 100 rows by default, each;
    ``decoders`` row groups each in file order). The row groups of a window are decoded side by
    side on ``decoders`` threads. Successive epochs use successive shuffles (or the one
    :meth:`set_epoch` names); the sequence is fixed by ``seed``.

    Rows are dicts in the form ``dataset.with_format("numpy")`` gives: feature columns are
    ``[T, dim]`` float32 arrays (read-only views of the decoded row group in file order,
    copies when shuffling), the other columns Python values. Pass the object as training
    data to ``baselines.train.fit`` (it is re-iterable, not a one-shot iterator; its
    :attr:`class_names`, the ``label`` ClassLabel's names, let the trainer map ``label_<m>``
    class names to indices). Under a ``torch`` DataLoader with several workers, each worker
    reads its own share of the row groups.

    Args:
        name_or_path: Built dataset name or folder (see :func:`resolve_built`).
        split: ``train``, ``validation`` or ``test``.
        shuffle: Shuffle row groups and rows within each window (False: file order).
        seed: Seed of the shuffles.
        window: Row groups decoded and mixed at a time (when shuffling; in file order
            ``decoders`` row groups are decoded at a time, the next while they are consumed).
        columns: Columns to read (default: all).
        data_dir: The SDME data folder.
        prefetch: Decode the next window in a background thread (False: when it is needed).
        decoders: Row groups of a window decoded side by side, each on a thread of its own
            (in file order, row groups are read this many at a time).

    Raises:
        FileNotFoundError: No such dataset or shard.
        sdme.built.BuildInfoError: Its ``build_info.json`` is not a valid provenance record.
        KeyError: No such split.
    """

    def __init__(self, name_or_path: str | os.PathLike, split: str, *, shuffle: bool = True,
                 seed: int = 0, window: int = 8, columns: list[str] | None = None,
                 data_dir: str | os.PathLike | None = None, prefetch: bool = True,
                 decoders: int = 2) -> None:
        import pyarrow.parquet as pq

        if window < 1:
            raise ValueError("window must be >= 1")
        if decoders < 1:
            raise ValueError("decoders must be >= 1")
        root = resolve_built(name_or_path, data_dir)
        self.paths = _split_files(root, split)[split]
        self.groups: list[tuple[int, int]] = []
        self._metadata = [pq.ParquetFile(path).metadata for path in self.paths]
        for i, meta in enumerate(self._metadata):
            self.groups += [(i, g) for g in range(meta.num_row_groups)]
        self._rows = sum(meta.num_rows for meta in self._metadata)
        self.shuffle, self.seed, self.window, self.columns = shuffle, seed, window, columns
        self.prefetch, self.decoders = prefetch, decoders
        self.epoch = 0
        self._unreleased = 0  # bytes decoded since the Arrow pool last gave memory back
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

    def _read(self, groups: Sequence[tuple[int, int]], pool: Any = None
              ) -> list[dict[str, Any]]:
        import pyarrow as pa

        # Row groups are decoded side by side on ``pool``'s threads where there is one (the
        # decoder releases the GIL; pyarrow's own column threads alone keep about one core
        # busy on MOSEI's three very unequal columns).
        decoded = list(pool.map(self._decode, groups) if pool is not None and len(groups) > 1
                       else map(self._decode, groups))
        rows: list[dict[str, Any]] = []
        for part, nbytes in decoded:
            rows += part
            self._unreleased += nbytes
        # pyarrow's column threads keep heaps of their own: handing their unused pages back
        # bounds the RSS (1.45 -> 1.28 GB in a MOSEI-scale run); every RELEASE_BYTES decoded,
        # not after each row group, where the pages faulted in again cost a third of the read.
        if self._unreleased >= RELEASE_BYTES:
            pa.default_memory_pool().release_unused()
            trim_heap()
            self._unreleased = 0
        return rows

    def _decode(self, group: tuple[int, int]) -> tuple[list[dict[str, Any]], int]:
        """The rows of one row group, and the bytes its Arrow table held."""
        import pyarrow.parquet as pq

        f, g = group
        # A reader is opened per row group (from the footer already parsed) and dropped: an
        # open reader keeps its column buffers (~20 MB per MOSEI shard) after a read.
        parquet = pq.ParquetFile(self.paths[f], metadata=self._metadata[f])
        table = parquet.read_row_group(g, columns=self.columns, use_threads=True)
        # Shuffled, a row group's rows are spread over the whole window: copied out, its table
        # is freed at once instead of living until its last row is used. In file order they
        # are used one after another, and views cost no copy (perf/bench_loader.py: the
        # evaluation loader went from 0.81 to 0.87 of a pyarrow scan).
        return _table_rows(table, copy=self.shuffle), table.nbytes

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        epoch, self.epoch = self.epoch, self.epoch + 1
        rng = np.random.default_rng([self.seed, epoch, 1])
        order = self._order(epoch)
        # in file order nothing needs mixing: as many row groups at a time as there are decoders
        size = self.window if self.shuffle else self.decoders
        windows = [order[i: i + size] for i in range(0, len(order), size)]
        pool = ThreadPoolExecutor(self.decoders, thread_name_prefix="parquet-rows-decode") \
            if self.decoders > 1 and len(order) > 1 else None
        decoded = map(functools.partial(self._read, pool=pool), windows)
        # the next window is decoded while the rows of this one are consumed
        reader = Ahead(decoded, name="parquet-rows-read-ahead") if self.prefetch else None
        try:
            for rows in reader if reader is not None else decoded:
                if self.shuffle:
                    rows = [rows[i] for i in rng.permutation(len(rows))]
                yield from rows
                del rows
        finally:
            if reader is not None:
                reader.close()
            if pool is not None:
                pool.shutdown()


def trim_heap() -> bool:
    """Hands the C heap's free pages back to the operating system (glibc's ``malloc_trim``).

    Arrays of many sizes made on one thread and freed on another (row groups decoded on
    :class:`ParquetRows`' threads, batches padded and noise drawn on others) leave glibc's
    arenas holding freed memory: a MOSEI-scale ``benchmark run`` peaked anywhere between 1.42
    and 1.58 GB from one run to the next, against 1.31-1.39 GB with a trim after every
    :data:`RELEASE_BYTES` decoded (about 3% of the time). Dask's documentation gives the same
    remedy for its workers' "unmanaged memory". Where the C library has no ``malloc_trim``
    (macOS, musl) nothing happens.

    Returns:
        Whether memory was handed back.
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process already has loaded
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class Ahead:
    """Iterates ``items`` on a background thread, one item ahead of the consumer: how
    :class:`ParquetRows` decodes its next window and ``baselines.train.predict_variants`` makes
    its next batch while the current one is used.

    The thread makes item k+1 while the consumer holds item k, and waits before making k+2
    until the consumer asks for k+1 (so at most two items are alive). An exception raised
    while making an item is raised by the consumer's ``next`` at that item; :meth:`close`
    stops the thread (after the item it is making) and waits for it. ``len()`` is
    ``length`` (for progress bars) where it is known; ``name`` names the thread.
    """

    _END = object()

    def __init__(self, items: Iterator[Any], length: int | None = None, *,
                 name: str = "read-ahead") -> None:
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue()
        self._turn = threading.Semaphore(1)  # one permit: the item being made or waiting
        self._stop = threading.Event()
        self._length = length

        def run() -> None:
            try:
                while self._wait_turn():
                    try:
                        item = next(items)
                    except StopIteration:
                        self._queue.put((self._END, None))
                        return
                    self._queue.put((item, None))
                    del item
            except BaseException as exc:  # re-raised by the consumer
                self._queue.put((self._END, exc))
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def _wait_turn(self) -> bool:
        while not self._stop.is_set():
            if self._turn.acquire(timeout=0.1):
                return not self._stop.is_set()
        return False

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("length unknown")
        return self._length

    def __iter__(self) -> Iterator[Any]:
        while True:
            item, error = self._queue.get()
            self._turn.release()  # the consumer holds this item: the next one may be made
            if error is not None:
                try:
                    raise error
                finally:  # the traceback would hold the maker's frames (a DataLoader's
                    del error  # workers among them) in a cycle until a garbage collection
            if item is self._END:
                return
            yield item
            item = None  # the consumer is done with it: hold no reference while waiting

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        while not self._queue.empty():  # an item made ahead of an error or an early stop
            self._queue.get_nowait()


def _table_rows(table: Any, copy: bool = True) -> list[dict[str, Any]]:
    """Rows of an Arrow table; list-of-list (``Array2D``) columns become ``[T, dim]`` arrays.

    With ``copy``, the feature values are copied out of the Arrow buffers (whose capacity, as
    the parquet decoder leaves it, is about twice their size) into one exact-size array per
    column, so the table can be freed as soon as its rows are made; without, the arrays are
    read-only views that keep the table alive.
    """
    import numpy as np
    import pyarrow as pa

    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        chunked = table.column(name)
        column = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        storage = getattr(column, "storage", column)
        if pa.types.is_list(storage.type) and pa.types.is_list(storage.type.value_type):
            inner = storage.flatten()
            values = inner.flatten().to_numpy(zero_copy_only=False)
            if copy:
                values = np.array(values)
            width = inner.value_lengths().to_numpy(zero_copy_only=False)
            dim = int(width[0]) if len(width) else 0
            starts = storage.offsets.to_numpy()
            matrix = values.reshape(-1, dim) if dim else values.reshape(0, 0)
            columns[name] = [matrix[starts[r]: starts[r + 1]] for r in range(len(storage))]
        else:
            columns[name] = column.to_pylist()
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(),
                                                                       strict=True)]


__all__ = ["STATS_CACHE_VERSION", "Ahead", "ParquetRows", "build_cache_dir", "feature_dims",
           "feature_stats", "load_dataset", "read_columns", "read_features", "resolve_built",
           "scan_feature_stats", "split_sizes", "taxonomy", "trim_heap"]
