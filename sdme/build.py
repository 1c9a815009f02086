"""``sdme build``: a raw SDME corpus becomes a Hugging Face dataset folder, resumably, in parallel.

Stages (each timed into ``build_info.json``):

1. **validate** — the manifest, every listed file's size and sha256, and the annotations
   (``sdme.validate.validate_raw`` without decoding media: a bad clip is the extractors' to
   report, per the policy below). Any error stops the build before anything is written.
2. **extract** — text, audio and vision features per clip, by the registered extractors
   (``sdme.features``): in this process, in ``workers`` local processes (spawn context), on any
   ``concurrent.futures.Executor`` (``executor=``) or on a Dask cluster (``scheduler=``;
   ``sdme.parallel`` says what workers need and where features go). Each process loads its
   extractors' models once. Every result — features or the reason there are none — is cached
   per clip and modality under ``<out_dir>.cache/<modality>-<extractor>-<config hash>/
   <clip_id>.npz``, written atomically, so a build killed at any point resumes where it stopped
   and yields the same dataset, whichever executor ran it.
3. **split** — speaker- and video-disjoint, label-stratified splits (``sdme.splits``), unless
   the corpus fixes its own.
4. **write** — parquet shards ``data/<split>-NNNNN-of-NNNNN.parquet``, the dataset card
   (``README.md``, ``sdme.card``) and ``build_info.json`` (``sdme.built.BuildInfo``) are written
   by ``sdme.built.write_built_dataset`` (the one writer of built datasets, streaming clip by
   clip) into a staging folder that replaces ``out_dir`` whole: a half-written dataset never
   replaces a good one.

A scored corpus (``sdme.json`` declares ``annotation_protocol.score_scale``; ``annotations.csv``
has ``score`` and ``score_<m>``, as the ``chsims`` source writes CH-SIMS) keeps its scores in the
``score`` / ``score_<m>`` columns, and its relevance fields follow them by ``sdme.scores``'s rule
(the one ``sdme import mmsa`` applies), recorded in ``build_info.json`` (``score``,
``label_rule``, ``relevance``).

Policy for clips that cannot yield a modality (``sdme.features.ClipError``):

- ``no_audio``, ``no_face``: the clip is kept, the modality marked missing (length 0, an empty
  ``[0, dim]`` sequence);
- ``decode_failed``, ``empty_text``: the clip is dropped (an empty transcript is
  ``sdme.schema.empty_transcript``'s rule, the one ``sdme validate`` warns about);
- an unexpected extractor exception or invalid output (``extractor_error``): the clip is dropped
  and the result is not cached, so a rerun retries it.

A dropped clip is recorded once, with the reason it was dropped: a modality found missing before
the drop (a PNG posing as a clip has no audio stream *and* no decodable video) is not also
counted as missing, since the clip is not in the dataset. Every event is recorded in
``build_info.json`` and printed in the summary; none stops the build.
Rows are ordered by split, then by their order in ``annotations.csv``. The layout and columns are
``sdme.built``'s, so plain ``datasets.load_dataset(out_dir)`` reads the result.

Extractors are chosen by name per modality and configured with ``extractor_params``
(``{"vision": {"fps": 5}}``, checked by ``sdme.config`` against each extractor's parameters);
``fps`` is shorthand for ``extractor_params["vision"]["fps"]``.

Timings (``build_info.json`` ``timings``, seconds): ``validate``, ``extract``, ``split``,
``write`` and ``total`` are wall-clock time of each stage on the machine running the build;
``load_models_wall`` / ``load_models_cpu`` are the models' loading, summed over the processes
that loaded them; ``clips_<modality>_wall`` / ``clips_<modality>_cpu`` are that modality's
extraction, summed over the clips extracted in this run (not those taken from the cache) — wall
time of each ``extract`` call, and CPU time of the process making it (all its threads, so CPU
can exceed wall with several torch threads; GPU work is not CPU time). In parallel the sums
exceed the stage's wall time. Builds before these names recorded ``extract_<modality>_cpu``,
which were summed wall seconds, model loading included; ``BuildInfo`` reads them as
``clips_<modality>_wall``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sdme.built import (
    DEFAULT_SHARD_BYTES,
    DEFAULT_SHARD_ROWS,
    FEAT,
    LENGTH,
    BuildInfo,
    ClipEvent,
    Counts,
    ExtractorRecord,
    FeatureRecord,
    Policy,
    SourceRecord,
    Written,
    clip_row,
    dataset_features,
    utc_now,
    write_built_dataset,
)
from sdme.device import resolve_device
from sdme.fileio import atomic_write_bytes
from sdme.schema import (
    ANNOTATIONS_NAME,
    AUDIO_DIR,
    CLIPS_DIR,
    MODALITIES,
    CorpusManifest,
    RawClip,
    empty_transcript,
)
from sdme.scores import CorpusScores
from sdme.splits import DEFAULT_RATIOS, SplitReport, assign_splits

if TYPE_CHECKING:
    from sdme.features import Extractor

CACHE_FORMAT = 1
DROP_REASONS = frozenset({"decode_failed", "empty_text", "extractor_error"})
MISSING_REASONS = frozenset({"no_audio", "no_face"})


class BuildError(RuntimeError):
    """The build cannot proceed (invalid corpus, bad arguments, nothing left to write)."""


@dataclass
class ClipResult:
    """What extraction produced for one clip (features stay in the cache)."""

    clip_id: str
    lengths: dict[str, int] = field(default_factory=dict)
    events: list[ClipEvent] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # extraction run now, per modality
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # the same, CPU time
    computed: tuple[str, ...] = ()
    device: str = ""  # where it was computed (in a worker: the worker's resolved device)
    load: tuple[float, float] | None = None  # wall, CPU s of model loading (a process's first)

    @property
    def dropped(self) -> bool:
        return any(e.action == "dropped" for e in self.events)


@dataclass
class BuildReport:
    """The outcome of a build.

    Attributes:
        out_dir: The built dataset folder.
        corpus: Corpus name and version.
        raw_clips: Clips in ``annotations.csv``.
        counts: Rows per split.
        events: Every dropped clip and missing modality.
        extractors: Extractor provenance per modality (name, version, dim, params).
        timings: Seconds per stage.
        extracted: Modality results computed in this run (clip x modality).
        reused: Modality results taken from the cache.
        cache_dir: The per-clip feature cache.
        split: How the splits were made.
        warnings: Non-fatal findings of raw validation.
    """

    out_dir: Path
    corpus: str
    raw_clips: int
    counts: dict[str, int]
    events: list[ClipEvent]
    extractors: dict[str, dict[str, Any]]
    timings: dict[str, float]
    extracted: int
    reused: int
    cache_dir: Path
    split: SplitReport
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def dropped(self) -> list[ClipEvent]:
        return [e for e in self.events if e.action == "dropped"]

    @property
    def missing(self) -> list[ClipEvent]:
        return [e for e in self.events if e.action == "missing"]

    def summary(self) -> str:
        """Human-readable account of the build, every dropped clip and missing modality included."""
        counts = ", ".join(f"{s} {n}" for s, n in self.counts.items())
        lines = [
            f"built {self.corpus}: {self.rows} of {self.raw_clips} clips ({counts}) -> "
            f"{self.out_dir}",
            "  extractors: " + ", ".join(f"{m}={e['name']} v{e['version']} ({e['dim']}-d)"
                                          for m, e in self.extractors.items()),
            f"  features: {self.extracted} computed, {self.reused} reused from {self.cache_dir}",
            "  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()),
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.dropped:
            lines.append(f"  dropped {len(self.dropped)} clip(s):")
            lines += [f"    {e.clip_id} [{e.modality}] {e.reason}: {e.detail}"
                      for e in self.dropped]
        missing = Counter(e.modality for e in self.missing)
        if missing:
            lines.append("  kept with a missing modality: "
                         + ", ".join(f"{m} {n}" for m, n in missing.items()) + ":")
            lines += [f"    {e.clip_id} [{e.modality}] {e.reason}: {e.detail}"
                      for e in self.missing]
        if any(e.reason == "extractor_error" for e in self.events):
            lines.append("  extractor errors are not cached: run the build again to retry them")
        return "\n".join(lines)


# --- cache -------------------------------------------------------------------------------------

def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def clip_fingerprint(clip: RawClip, manifest: CorpusManifest) -> str:
    """What a clip's features depend on: its text, times and media files' sha256."""
    hashes = {e.path: e.sha256 for e in manifest.files}
    media = [hashes.get(f"{CLIPS_DIR}/{clip.clip_id}.mp4"),
             hashes.get(f"{AUDIO_DIR}/{clip.clip_id}.wav")]
    return _digest([CACHE_FORMAT, clip.clip_id, clip.text, clip.language, clip.start, clip.end,
                    media])


def cache_folder_name(extractor: Extractor) -> str:
    info = extractor.info
    return f"{info.modality}-{info.name}-{info.fingerprint()[:16]}"


def _read_cache(path: Path, key: str, dim: int, *, load: bool) -> dict[str, Any] | None:
    """The cached entry (``meta`` plus ``features`` when ``load``), or None if absent or stale."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
                return None
            if meta["status"] == "ok":
                if load:
                    feats = npz["features"]
                    if feats.dtype != np.float32 or feats.shape != (meta["length"], dim):
                        return None
                    meta["features"] = feats
                elif meta.get("dim") != dim:
                    return None
            return meta
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None  # unreadable: recompute


def _write_cache(path: Path, meta: dict[str, Any], feats: np.ndarray | None) -> None:
    buf = io.BytesIO()
    arrays = {"meta": np.array(json.dumps(meta))}
    if feats is not None:
        arrays["features"] = feats
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


# --- extraction (runs in the main process or in workers) ---------------------------------------

def _check_output(feats: Any, dim: int) -> str | None:
    if not isinstance(feats, np.ndarray):
        return f"returned {type(feats).__name__}, not a numpy array"
    if feats.ndim != 2 or feats.shape[1] != dim or feats.shape[0] < 1:
        return f"returned shape {feats.shape}, expected [T>=1, {dim}]"
    if not np.isfinite(feats).all():
        return f"returned {int((~np.isfinite(feats)).sum())} NaN/inf value(s)"
    return None


def extract_clip(extractors: Mapping[str, Extractor], raw_dir: Path, clip: RawClip,
                 cache_dirs: Mapping[str, Path], key: str) -> ClipResult:
    """Features of one clip for every modality, through the cache; applies the drop policy."""
    from sdme.features import ClipError

    result = ClipResult(clip.clip_id)
    computed = []
    if empty_transcript(clip):
        result.events.append(ClipEvent(clip.clip_id, "text", "empty_text",
                                       f"{Path(raw_dir) / ANNOTATIONS_NAME}: clip "
                                       f"{clip.clip_id!r} has an empty transcript", "dropped"))
        return result
    for m in MODALITIES:
        extractor = extractors[m]
        dim = extractor.info.dim
        path = cache_dirs[m] / f"{clip.clip_id}.npz"
        meta = _read_cache(path, key, dim, load=False)
        if meta is None:
            start, cpu_start = time.perf_counter(), time.process_time()
            feats, meta = None, {"format": CACHE_FORMAT, "key": key, "dim": dim}
            try:
                out = extractor.extract(raw_dir, clip)
                problem = _check_output(out, dim)
                if problem is None:
                    feats = np.ascontiguousarray(out, dtype=np.float32)
                    meta.update(status="ok", length=int(feats.shape[0]))
                else:
                    meta.update(status="extractor_error",
                                detail=f"{extractor!r} {problem}")
            except ClipError as exc:
                meta.update(status=exc.reason, detail=str(exc))
            except Exception as exc:  # noqa: BLE001 - recorded, never fatal to the whole build
                meta.update(status="extractor_error", detail=f"{extractor!r} raised "
                            f"{type(exc).__name__}: {exc}")
            meta["seconds"] = time.perf_counter() - start
            meta["cpu_seconds"] = time.process_time() - cpu_start
            result.seconds[m] = meta["seconds"]
            result.cpu_seconds[m] = meta["cpu_seconds"]
            computed.append(m)
            if meta["status"] != "extractor_error":
                _write_cache(path, meta, feats)
        status = meta["status"]
        if status == "ok":
            result.lengths[m] = int(meta["length"])
            continue
        result.lengths[m] = 0
        action = "missing" if status in MISSING_REASONS else "dropped"
        result.events.append(ClipEvent(clip.clip_id, m, status, meta.get("detail", ""), action))
        if action == "dropped":
            break  # no point extracting the other modalities of a dropped clip
    if result.dropped:  # one event per dropped clip: it has no modality "missing" in the dataset
        result.events = [e for e in result.events if e.action == "dropped"]
    result.computed = tuple(computed)
    return result


def _progress(total: int, enabled: bool, desc: str):  # noqa: ANN202 - tqdm or a null object
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="clip", file=sys.stderr)


def _settled(extractors: Mapping[str, Extractor], clip: RawClip,
             cache_dirs: Mapping[str, Path], key: str) -> bool:
    """Whether the cache holds every result ``extract_clip`` would compute for this clip."""
    if empty_transcript(clip):
        return True
    for m in MODALITIES:
        meta = _read_cache(cache_dirs[m] / f"{clip.clip_id}.npz", key, extractors[m].info.dim,
                           load=False)
        if meta is None:
            return False
        if meta["status"] != "ok" and meta["status"] not in MISSING_REASONS:
            return True  # dropped: later modalities are never extracted
    return True


# --- writing -----------------------------------------------------------------------------------

def _split_rows(clips: Sequence[RawClip], results: Mapping[str, ClipResult],
                extractors: Mapping[str, Extractor], cache_dirs: Mapping[str, Path],
                keys: Mapping[str, str], taxonomy: Sequence[str],
                scores: CorpusScores | None = None) -> Iterator[dict[str, Any]]:
    """One split's rows for the writer; features are read from the cache clip by clip."""
    dims = {m: extractors[m].info.dim for m in MODALITIES}
    scale, unimodal = (scores.scale, scores.unimodal) if scores else (None, ())
    for clip in clips:
        lengths = results[clip.clip_id].lengths
        row = clip_row(clip, taxonomy, scale, unimodal)
        for m in MODALITIES:
            row[LENGTH[m]] = int(lengths.get(m, 0))
        for m in MODALITIES:
            if lengths.get(m, 0) == 0:
                row[FEAT[m]] = np.zeros((0, dims[m]), dtype=np.float32)
                continue
            path = cache_dirs[m] / f"{clip.clip_id}.npz"
            entry = _read_cache(path, keys[clip.clip_id], dims[m], load=True)
            if entry is None or entry["status"] != "ok":
                raise BuildError(f"{path}: cached features vanished or changed during the build")
            row[FEAT[m]] = entry["features"]
        yield row


# --- the build ---------------------------------------------------------------------------------

def _validate(raw_dir: Path) -> tuple[CorpusManifest, list[RawClip], list[str]]:
    from sdme.validate import validate_raw

    report = validate_raw(raw_dir, check_media=False)
    errors = [str(p) for p in report.problems if p.severity == "error"]
    if errors or report.manifest is None:
        shown = "\n  ".join(errors[:20]) + (f"\n  ... and {len(errors) - 20} more"
                                            if len(errors) > 20 else "")
        raise BuildError(f"{raw_dir}: the raw corpus has {len(errors)} problem(s); fix them "
                         f"(see `sdme validate {raw_dir}`):\n  {shown}")
    warnings = [str(p) for p in report.problems if p.severity != "error"]
    return report.manifest, list(report.clips), warnings


def _create_extractors(names: Mapping[str, str], fps: float | None,
                       extractor_params: Mapping[str, Mapping[str, Any]] | None
                       ) -> dict[str, Extractor]:
    from sdme.config import ConfigError
    from sdme.features import create_extractor

    params = {m: dict((extractor_params or {}).get(m) or {}) for m in MODALITIES}
    unknown = sorted(set(extractor_params or {}) - set(MODALITIES))
    if unknown:
        raise BuildError(f"extractor_params has unknown modality key(s) {unknown}; "
                         f"use {list(MODALITIES)}")
    if fps is not None:  # --fps is sugar for --param vision.fps=
        given = params["vision"].get("fps")
        if given is not None and float(given) != float(fps):
            raise BuildError(f"fps={fps:g} and vision.fps={given!r} disagree; give one of them")
        params["vision"]["fps"] = fps
    extractors = {}
    for m in MODALITIES:
        try:
            extractors[m] = create_extractor(m, names[m], **params[m])
        except (KeyError, ConfigError, ValueError, FileNotFoundError, ImportError) as exc:
            raise BuildError(f"cannot create the {m} extractor {names[m]!r}: {exc}") from exc
    return extractors


def build(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
          text_encoder: str = "minilm", audio_features: str = "logmel",
          vision_features: str = "face", fps: float | None = None, workers: int = 1,
          device: str = "auto", seed: int = 0,
          split_ratios: Mapping[str, float] = DEFAULT_RATIOS,
          shard_rows: int = DEFAULT_SHARD_ROWS, shard_bytes: int = DEFAULT_SHARD_BYTES,
          progress: bool = True, extractor_params: Mapping[str, Mapping[str, Any]] | None = None,
          cache_dir: str | os.PathLike | None = None, executor: Executor | None = None,
          scheduler: str | None = None) -> BuildReport:
    """Builds a Hugging Face dataset folder from a raw SDME corpus.

    Safe to interrupt and rerun: finished clips are taken from the cache and the result is the
    same as an uninterrupted build's.

    Args:
        raw_dir: The raw corpus (``sdme.json``, ``annotations.csv``, ``clips/``).
        out_dir: Where the built dataset goes (replaced whole once complete).
        text_encoder: Registered text extractor name.
        audio_features: Registered audio extractor name.
        vision_features: Registered vision extractor name.
        fps: Video frames sampled per second: shorthand for ``extractor_params["vision"]
            ["fps"]`` (default: the vision extractor's own).
        workers: Extraction processes of the local pool (1: in this process).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` for the extractors (on an
            executor or a cluster, each worker resolves it).
        seed: Seed of the split assignment.
        split_ratios: Target share of clips per split.
        shard_rows: Most rows per parquet shard.
        shard_bytes: Most feature bytes per parquet shard.
        progress: Show a progress bar and print the summary to stderr.
        extractor_params: Per-modality extractor parameters, e.g. ``{"audio": {"n_mels": 80}}``.
        cache_dir: Feature cache root (default: ``<out_dir>.cache`` beside ``out_dir``).
        executor: Runs the per-clip extraction instead of the local pool: any
            ``concurrent.futures.Executor`` (e.g. ``distributed.Client(...).get_executor()``);
            not shut down by the build. Its workers need the corpus and the cache folder at the
            same paths (``sdme.parallel``).
        scheduler: A Dask cluster to extract on, opened for the build and closed after it: a
            scheduler address, a scheduler file or ``local:N`` (``sdme.parallel.dask_executor``).

    Returns:
        The build report (also written as ``build_info.json``).

    Raises:
        BuildError: The corpus does not validate, an extractor cannot be created (an unknown
            name or parameter, with a close match) or loaded, ``fps`` disagrees with
            ``extractor_params``, the cluster cannot be reached, a worker cannot see the corpus
            or a task fails, the splits cannot be made, or every clip was dropped.
    """
    from sdme import __version__
    from sdme.splits import SplitError

    t_start = time.perf_counter()
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if workers < 1 or shard_rows < 1 or shard_bytes < 1:
        raise BuildError("workers, shard_rows and shard_bytes must be >= 1")
    if sum((workers > 1, executor is not None, scheduler is not None)) > 1:
        raise BuildError("give one of workers > 1 (the local pool), executor or scheduler")
    raw_dir = raw_dir.absolute()  # workers may run elsewhere: the same path for all of them
    timings: dict[str, float] = {}

    t = time.perf_counter()
    manifest, clips, warnings = _validate(raw_dir)
    timings["validate"] = time.perf_counter() - t

    names = {"text": text_encoder, "audio": audio_features, "vision": vision_features}
    extractors = _create_extractors(names, fps, extractor_params)
    requested_device = device
    if executor is None and scheduler is None:
        device = str(resolve_device(device))
    cache_root = (Path(cache_dir) if cache_dir else
                  out_dir.with_name(out_dir.name + ".cache")).absolute()
    cache_dirs = {m: cache_root / cache_folder_name(e) for m, e in extractors.items()}
    for folder in cache_dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    keys = {c.clip_id: clip_fingerprint(c, manifest) for c in clips}

    from sdme.parallel import dask_executor, describe_executor, run_extraction

    t = time.perf_counter()
    if scheduler is not None:
        with dask_executor(scheduler) as (cluster, ran_on):
            results = run_extraction(extractors, raw_dir, clips, keys, cache_dirs, workers=1,
                                     device=device, executor=cluster, progress=progress)
    else:
        if executor is not None:
            ran_on = describe_executor(executor)
        else:
            ran_on = {"executor": "process-pool" if workers > 1 else "in-process"}
        results = run_extraction(extractors, raw_dir, clips, keys, cache_dirs, workers=workers,
                                 device=device, executor=executor, progress=progress)
    timings["extract"] = time.perf_counter() - t
    loads = [r.load for r in results.values() if r.load is not None]
    timings["load_models_wall"] = sum(wall for wall, _ in loads)
    timings["load_models_cpu"] = sum(cpu for _, cpu in loads)
    for m in MODALITIES:
        timings[f"clips_{m}_wall"] = sum(r.seconds.get(m, 0.0) for r in results.values())
        timings[f"clips_{m}_cpu"] = sum(r.cpu_seconds.get(m, 0.0) for r in results.values())
    devices = sorted({r.device for r in results.values() if r.device})
    if executor is not None or scheduler is not None:  # recorded as the workers resolved it
        device = ",".join(devices) or requested_device
    events = [e for c in clips for e in results[c.clip_id].events]
    kept = [c for c in clips if not results[c.clip_id].dropped]
    if not kept:
        reasons = Counter(e.reason for e in events if e.action == "dropped")
        raise BuildError(f"{raw_dir}: every clip was dropped ({dict(reasons)}); nothing to write. "
                         f"First: {events[0].detail if events else '?'}")

    t = time.perf_counter()
    try:
        assignment = assign_splits(kept, ratios=split_ratios, seed=seed)
    except SplitError as exc:
        raise BuildError(f"{raw_dir}: {exc}") from exc
    timings["split"] = time.perf_counter() - t

    t = time.perf_counter()
    scores = CorpusScores.of(manifest, kept)
    dims = {m: extractors[m].info.dim for m in MODALITIES}
    records = {m: ExtractorRecord(**e.info.to_dict(), fingerprint=e.info.fingerprint(),
                                  options=e.options) for m, e in extractors.items()}
    missing_counts = Counter(e.modality for e in events if e.action == "missing")
    cache = {"extracted": sum(len(r.computed) for r in results.values()),
             "reused": sum(len(r.lengths) - len(r.computed) for r in results.values()
                           if r.lengths)}

    def provenance(written: Written) -> BuildInfo:
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        return BuildInfo(
            sdme_version=__version__, created=utc_now(),
            source=SourceRecord(name=manifest.name, version=manifest.version,
                                license=manifest.license, fingerprint=manifest.fingerprint()),
            extractors=records,
            features={m: FeatureRecord.of(m, dims[m]) for m in MODALITIES},
            taxonomy=list(manifest.taxonomy),
            languages=sorted({c.language for c in kept if c.language}),
            **(scores.provenance() if scores else {}),
            counts=Counts(raw_clips=len(clips), rows=len(kept), splits=written.counts,
                          dropped=len(clips) - len(kept),
                          missing={m: missing_counts.get(m, 0) for m in MODALITIES}),
            policy=Policy(
                dropped=sorted(DROP_REASONS), missing=sorted(MISSING_REASONS),
                description="a clip whose media cannot be decoded or whose transcript is "
                            "empty is dropped; a clip without an audio track or without a "
                            "face in any sampled frame is kept with that modality marked "
                            "missing (length 0, empty sequence)"),
            split=assignment.report.to_dict(),
            data_files=written.data_files,
            dropped=[e for e in events if e.action == "dropped"],
            missing=[e for e in events if e.action == "missing"],
            build={"device": device, "workers": workers, **ran_on, "seed": seed,
                   "fps": extractors["vision"].info.params.get("fps"),
                   "shard_rows": written.shard_rows, "shard_bytes": written.shard_bytes},
            cache=cache,
            timings={k: round(v, 3) for k, v in timings.items()},
        )

    splits = ((split, _split_rows([c for c in kept if assignment.splits[c.clip_id] == split],
                                  results, extractors, cache_dirs, keys, manifest.taxonomy,
                                  scores))
              for split in assignment.present())
    features = dataset_features(manifest.taxonomy, dims, scores.columns() if scores else ())
    info = write_built_dataset(out_dir, features=features,
                               splits=splits, provenance=provenance, manifest=manifest,
                               shard_rows=shard_rows, shard_bytes=shard_bytes)

    report = BuildReport(
        out_dir=out_dir, corpus=f"{manifest.name} {manifest.version}", raw_clips=len(clips),
        counts=dict(info.counts.splits), events=events,
        extractors={m: e.info.to_dict() | {"fingerprint": e.info.fingerprint()}
                    for m, e in extractors.items()},
        timings=info.timings, extracted=cache["extracted"], reused=cache["reused"],
        cache_dir=cache_root, split=assignment.report, warnings=warnings)
    if progress:
        print(report.summary(), file=sys.stderr)
    return report


__all__ = ["CACHE_FORMAT", "DROP_REASONS", "MISSING_REASONS", "BuildError", "BuildReport",
           "ClipEvent", "build", "extract_clip"]
