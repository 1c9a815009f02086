"""Where ``sdme build`` extracts its clips: in-process, a local process pool, or any executor.

The per-clip extraction (``sdme.build.extract_clip``) is one task per clip, submitted to a
``concurrent.futures.Executor`` — the design of lhotse's
``CutSet.compute_and_store_features(executor=...)`` (https://github.com/lhotse-speech/lhotse):

- no executor: the local pool, ``workers`` spawned processes (``ProcessPoolExecutor``);
- any ``concurrent.futures.Executor`` given to ``sdme.build.build(executor=...)``, e.g.
  ``distributed.Client(...).get_executor()``;
- ``sdme build --scheduler ADDRESS`` (``build(scheduler=...)``): a Dask distributed cluster
  (https://distributed.dask.org), reached by :func:`dask_executor` — an existing engine does the
  scheduling, the retries and the worker bookkeeping; SDME only submits tasks.

**Where features go.** A task writes its clip's features into the per-clip cache
(``<out_dir>.cache/<modality>-<extractor>-<hash>/<clip_id>.npz``, atomically) and returns only
the small :class:`sdme.build.ClipResult` (lengths, events, timings); the driver then reads the
cache while writing the parquet shards — lhotse's ``storage_path`` design. So on a cluster:

- workers need **read access to the raw corpus at the same path** as the machine running
  ``sdme build`` (every task first checks that ``sdme.json`` there is the one the driver
  validated, and stops the build with a clear message naming the worker if it is not), and
  **write access to the cache folder at the same path** (a shared filesystem: NFS, Lustre, ...;
  on one machine, any folder);
- workers need the extractors' weights at the same local paths (``--param
  text.model=/shared/encoder``; the bundled ``minilm`` and MTCNN ship inside the packages) and
  the same Python environment (sdme and its dependencies; Dask pickles the task, not the code);
- features never travel through the scheduler, and a finished clip survives anything that
  happens later.

**Models load once per worker process**, before its first clip, keyed by the extractors'
fingerprints and the device (``Extractor.load``); that time is recorded apart from the
per-clip times (``build_info.json`` ``timings.load_models_*``). A worker process extracts one
clip at a time (a process-wide lock), with torch using as many threads as the Dask worker has
(``dask worker --nthreads``) or, in the local pool, the machine's cores divided by ``workers``.
Each worker resolves ``--device`` itself (``auto``: its own GPU if it has one); for one worker
per GPU use dask-cuda's ``dask cuda worker``.

**Failures.** When a worker dies, Dask reschedules its in-flight clips on other workers; a clip
whose task kills more workers than ``distributed.scheduler.allowed-failures`` (3 by default)
stops the build with an error naming it. Everything already finished is in the cache, so an
interrupted build — driver, workers or scheduler — resumes where it stopped when run again, on
the cluster or locally, and gives the same dataset.

**Starting a cluster** (Dask's own commands; nothing SDME-specific). Two Dask defaults cost
the extraction CPU time and ``local:N`` turns them off (:func:`_local_cluster`); on a cluster
you start, do the same in the workers' Dask configuration (``~/.config/dask/*.yaml``:
``distributed.worker.profile.enabled: false`` and ``distributed.nanny.pre-spawn-environ``
without ``MALLOC_TRIM_THRESHOLD_``)::

    dask scheduler --port 8786                       # on one machine
    dask worker tcp://HOST:8786 --nworkers 8 --nthreads 4   # on each worker machine
    sdme build CORPUS --scheduler tcp://HOST:8786

``--scheduler`` also takes a scheduler file (``dask scheduler --scheduler-file FILE`` on a
shared filesystem, as with dask-mpi) or ``local:N`` (a ``distributed.LocalCluster`` of N worker
processes on this machine). On SLURM, PBS or SGE, dask-jobqueue (``pip install dask-jobqueue``,
not a dependency of SDME) starts the workers as batch jobs; pass its scheduler's address::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=8, processes=2, memory="32GB", walltime="04:00:00")
    cluster.scale(jobs=10)
    from sdme.build import build
    build("/shared/raw/mosei", "/shared/built/mosei", scheduler=cluster.scheduler_address)
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdme.build import BuildError, ClipResult, _progress, _settled, extract_clip
from sdme.schema import MANIFEST_NAME, MODALITIES, RawClip

if TYPE_CHECKING:
    from sdme.features import Extractor

# --- the worker side (runs in pool processes and Dask workers) ---------------------------------


@dataclass
class _Loaded:
    extractors: dict[str, Extractor]
    device: str
    load_wall: float
    load_cpu: float
    reported: bool = False


_LOADED: dict[str, _Loaded] = {}
_CHECKED: set[tuple[str, str]] = set()
_LOCK = threading.Lock()  # one clip at a time per process: torch gets the process's threads


def _where() -> str:
    return f"worker {socket.gethostname()} (pid {os.getpid()})"


def corpus_digest(raw_dir: Path) -> str:
    """sha256 of the corpus manifest, which lists every file's sha256: the corpus's identity."""
    return hashlib.sha256((Path(raw_dir) / MANIFEST_NAME).read_bytes()).hexdigest()


def _check_corpus(raw_dir: Path, digest: str) -> None:
    if (str(raw_dir), digest) in _CHECKED:
        return
    manifest = Path(raw_dir) / MANIFEST_NAME
    try:
        found = corpus_digest(raw_dir)
    except OSError as exc:
        raise BuildError(f"{_where()}: cannot read the raw corpus at {manifest} "
                         f"({exc.strerror or exc}); every worker needs the corpus at the same path "
                         "as the machine running `sdme build` (a shared filesystem)") from None
    if found != digest:
        raise BuildError(f"{_where()}: {manifest} is not the manifest `sdme build` validated; "
                         "the worker sees another copy of the corpus at that path")
    _CHECKED.add((str(raw_dir), digest))


def load_extractors(extractors: Mapping[str, Extractor], device: str
                    ) -> tuple[dict[str, Extractor], float, float]:
    """Moves the extractors to ``device`` and loads their models now.

    Returns:
        The loaded extractors, and the wall and CPU seconds the loading took.

    Raises:
        BuildError: An extractor's model cannot be loaded (naming it and the device).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    loaded = {}
    for m in MODALITIES:
        extractor = extractors[m].to(device)
        try:
            extractor.load()
        except Exception as exc:  # noqa: BLE001 - reported as the build's error, with its cause
            raise BuildError(f"cannot load the {m} extractor {extractor.info.name!r} on "
                             f"{device}: {type(exc).__name__}: {exc}") from exc
        loaded[m] = extractor
    return loaded, time.perf_counter() - wall, time.process_time() - cpu


def _dask_threads() -> int | None:
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return int(get_worker().state.nthreads)
    except (ValueError, AttributeError):  # not in a Dask worker
        return None


def _process_extractors(extractors: Mapping[str, Extractor], device: str,
                        threads: int | None) -> _Loaded:
    """This process's loaded copy of ``extractors`` on ``device`` (loaded on first use)."""
    from sdme.device import resolve_device

    key = hashlib.sha256(repr([device] + [extractors[m].info.fingerprint()
                                          for m in MODALITIES]).encode()).hexdigest()
    entry = _LOADED.get(key)
    if entry is None:
        _LOADED.clear()  # one build's models at a time
        threads = threads or _dask_threads()
        if threads:
            import torch

            torch.set_num_threads(threads)
        resolved = str(resolve_device(device))
        loaded, wall, cpu = load_extractors(extractors, resolved)
        entry = _LOADED[key] = _Loaded(loaded, resolved, wall, cpu)
    return entry


def pool_initializer(extractors: Mapping[str, Extractor], device: str, threads: int) -> None:
    """Loads the models when a pool process starts (a failure is reported by its first task)."""
    try:
        _process_extractors(extractors, device, threads)
    except Exception:  # noqa: BLE001 - extract_task retries and raises it where it is seen
        pass


def extract_task(extractors: Mapping[str, Extractor], device: str, threads: int | None,
                 raw_dir: Path, digest: str, clip: RawClip, cache_dirs: Mapping[str, Path],
                 key: str) -> ClipResult:
    """One clip, in a worker process: ``extract_clip`` with this process's loaded models.

    The first clip a process extracts also carries the time its models took to load.
    """
    with _LOCK:
        _check_corpus(raw_dir, digest)
        entry = _process_extractors(extractors, device, threads)
        result = extract_clip(entry.extractors, raw_dir, clip, cache_dirs, key)
        result.device = entry.device
        if not entry.reported:
            result.load = (entry.load_wall, entry.load_cpu)
            entry.reported = True
        return result


# --- the driver side ---------------------------------------------------------------------------

def run_extraction(extractors: dict[str, Extractor], raw_dir: Path, clips: Sequence[RawClip],
                   keys: Mapping[str, str], cache_dirs: dict[str, Path], *, workers: int,
                   device: str, executor: Executor | None, progress: bool
                   ) -> dict[str, ClipResult]:
    """Every clip's result: from the cache, or extracted in this process, in a local pool of
    ``workers`` processes or on ``executor`` (``device``: resolved here, or the requested one,
    which each executor worker resolves itself).

    Raises:
        BuildError: A worker cannot see the corpus, a model cannot be loaded, or a task fails
            (a worker died too often, a cache write failed); finished clips stay cached.
    """
    results: dict[str, ClipResult] = {}
    todo = []
    for clip in clips:  # what the cache already holds needs no worker
        if _settled(extractors, clip, cache_dirs, keys[clip.clip_id]):
            results[clip.clip_id] = extract_clip(extractors, raw_dir, clip, cache_dirs,
                                                 keys[clip.clip_id])
        else:
            todo.append(clip)
    bar = _progress(len(todo), progress, "extract")
    try:
        if todo and executor is None and (workers <= 1 or len(todo) <= 1):
            ready, wall, cpu = load_extractors(extractors, device)
            for i, clip in enumerate(todo):
                result = extract_clip(ready, raw_dir, clip, cache_dirs, keys[clip.clip_id])
                result.device = device
                result.load = (wall, cpu) if i == 0 else None
                results[clip.clip_id] = result
                bar.update()
        elif todo:
            owned = executor is None
            threads = None
            if owned:
                workers = min(workers, len(todo))
                threads = max(1, (os.cpu_count() or 1) // workers)
                executor = ProcessPoolExecutor(
                    max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=pool_initializer, initargs=(extractors, device, threads))
            digest = corpus_digest(raw_dir)
            futures = {executor.submit(extract_task, extractors, device, threads,
                                       raw_dir, digest, clip, cache_dirs, keys[clip.clip_id]):
                       clip.clip_id for clip in todo}
            try:
                for future in as_completed(futures):
                    try:
                        result = future.result()
                    except BuildError:
                        raise
                    except Exception as exc:
                        raise BuildError(f"{raw_dir}: extracting clip {futures[future]!r} "
                                         f"failed in a worker: {type(exc).__name__}: {exc}; "
                                         "finished clips are cached, run the build again "
                                         "to resume") from exc
                    results[result.clip_id] = result
                    bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                if owned:
                    executor.shutdown(wait=False, cancel_futures=True)
                raise
            if owned:
                executor.shutdown(wait=True)
    finally:
        bar.close()
    return {c.clip_id: results[c.clip_id] for c in clips}



def describe_executor(executor: Executor) -> dict[str, Any]:
    """What ran the extraction, for the build's provenance."""
    kind = type(executor)
    if kind.__module__.startswith("distributed"):
        client = getattr(executor, "_client", None)
        scheduler = getattr(getattr(client, "scheduler", None), "address", None)
        return {"executor": "dask", "scheduler": scheduler}
    return {"executor": f"{kind.__module__}.{kind.__qualname__}"}


def _local_cluster(spec: str):  # noqa: ANN202 - distributed.LocalCluster
    """N worker processes on loopback, without two Dask defaults that cost the extraction
    tasks CPU time (``perf/bench_cluster.py``): the statistical profiler (it samples every
    thread's stack every 10 ms) and ``MALLOC_TRIM_THRESHOLD_=65536`` (glibc then returns memory
    to the system eagerly, and the large per-clip frame arrays are mapped again and again)."""
    import dask
    from distributed import LocalCluster

    count = spec.partition(":")[2] or str(os.cpu_count() or 1)
    try:
        n = int(count)
    except ValueError:
        n = 0
    if n < 1:
        raise BuildError(f"--scheduler {spec!r}: expected local:N with N >= 1 worker processes")
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    with dask.config.set({"distributed.worker.profile.enabled": False,  # the nannies keep it
                          "distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n, threads_per_worker=max(1, (os.cpu_count() or 1) // n),
                            processes=True, host="127.0.0.1", dashboard_address=None)


@contextmanager
def dask_executor(scheduler: str, *, timeout: float = 60.0, worker_timeout: float = 600.0
                  ) -> Iterator[tuple[Executor, dict[str, Any]]]:
    """A Dask cluster as a ``concurrent.futures.Executor``, closed on exit.

    Args:
        scheduler: A scheduler address (``tcp://host:8786``, ``host:8786``), a scheduler file
            written by ``dask scheduler --scheduler-file``, or ``local:N`` (a LocalCluster of N
            worker processes on this machine; ``local``: one per core).
        timeout: Seconds to wait for the scheduler to answer.
        worker_timeout: Seconds to wait for a first worker (batch-queued workers, as
            dask-jobqueue starts them, may take a while), saying so on stderr.

    Yields:
        The executor (tasks are not pure: each runs when submitted) and a provenance record.

    Raises:
        BuildError: Dask's distributed package is missing, the scheduler cannot be reached, or
            no worker joins it within ``timeout``.
    """
    try:
        from distributed import Client
    except ImportError as exc:
        raise BuildError("--scheduler needs Dask's distributed package, which is not "
                         "installed: pip install 'sdme[cluster]'") from exc
    spec = str(scheduler).strip()
    cluster = None
    try:
        if spec == "local" or spec.startswith("local:"):
            cluster = _local_cluster(spec)
            client = Client(cluster, timeout=timeout)
        elif Path(spec).is_file():
            client = Client(scheduler_file=spec, timeout=timeout)
        else:
            client = Client(spec if "://" in spec else f"tcp://{spec}", timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise BuildError(f"cannot reach the Dask scheduler {spec!r}: {exc}") from exc
    try:
        if not client.scheduler_info(n_workers=1)["workers"]:
            print(f"sdme build: waiting up to {worker_timeout:g} s for a Dask worker to join "
                  f"{client.scheduler.address}", file=sys.stderr)
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except TimeoutError as exc:
            raise BuildError(f"no Dask worker joined the scheduler {spec!r} within "
                             f"{worker_timeout:g} s; start some with `dask worker "
                             f"{client.scheduler.address}`") from exc
        record = {"executor": "dask", "scheduler": spec if cluster is None else "local",
                  "dask_workers": len(client.scheduler_info(n_workers=-1)["workers"])}
        yield client.get_executor(pure=False), record
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


__all__ = ["corpus_digest", "dask_executor", "describe_executor", "extract_task",
           "load_extractors", "pool_initializer", "run_extraction"]
