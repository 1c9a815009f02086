"""The built source ``features``: your own per-clip feature arrays plus SDME annotations become a
built dataset the benchmark accepts (``sdme import features --path DIR --annotations CSV``).

**Layout** (exactly these; one file per clip and modality, as MERBench's extraction scripts and
most feature scripts write them, https://github.com/zeroQiaoba/MERTools)::

    <path>/text/<clip_id>.npy       (or .npz)
    <path>/audio/<clip_id>.npy
    <path>/vision/<clip_id>.npy

or, with ``--dirs text=DIR,audio=DIR,vision=DIR``, each modality's folder named explicitly
(relative to ``--path`` unless absolute), e.g. MERBench's one folder per feature set. A
``.npz`` file must hold one array, or several with one named ``features``. A clip with both a
``.npy`` and a ``.npz`` file is refused (ambiguous).

**Arrays.** ``[T, dim]`` is a sequence of T vectors; ``[dim]`` (an utterance-level vector, as
MERBench's ``-UTT`` features) is stored as a sequence of one; ``[0, dim]`` marks the modality
missing for that clip (length 0, recorded in ``build_info.json``). Any other rank is refused.
Real numbers of any dtype are stored as float32; ``dim`` must be the same in every file of a
modality. Values that are not finite (after the cast): ``--nonfinite error`` (default: your
features should not have them), ``zero`` (replaced, counted) or ``drop`` (the clip dropped,
recorded), as ``sdme import mmsa``'s ``--nonfinite``. A clip of ``annotations.csv`` without a
file: ``--missing error`` (default) or ``empty`` (the modality kept as missing, recorded).
Files of clips that ``annotations.csv`` does not list are reported and left out.

**Annotations.** An SDME ``annotations.csv`` (``sdme.schema``; checked row by row as ``sdme
validate`` does, media aside) with the ``sdme.json`` that gives the corpus name, version,
license and taxonomy (``--manifest``, default: beside ``annotations.csv``; its ``files`` list
is not needed). Labels, votes and scores become the label and relevance fields exactly as in
``sdme build`` (``sdme.built.clip_row``, ``sdme.scores``: a scored corpus keeps ``score`` /
``score_<m>``); the splits are the ``split`` column, else speaker- and video-disjoint,
label-stratified ones (``sdme.splits``, ``--seed``).

**Provenance.** ``build_info.json`` says the features were imported: per modality, the
``ExtractorRecord`` is ``imported:<folder>`` with the folder, the file pattern, the number of
files, their dtypes and ranks, the sequence lengths and a fingerprint (sha256 over every file's
path and sha256); ``source`` carries the manifest, the annotations' sha256 and a fingerprint of
all three.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sdme.built import (
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
from sdme.schema import (
    MANIFEST_NAME,
    MODALITIES,
    CorpusManifest,
    RawClip,
    read_annotations,
    sha256_file,
)
from sdme.scores import CorpusScores, manifest_scale
from sdme.sources import SourceCard, SourceError, register_source

EXTENSIONS: tuple[str, ...] = (".npy", ".npz")
NPZ_KEY = "features"
NONFINITE_POLICIES = ("error", "zero", "drop")
MISSING_POLICIES = ("error", "empty")


@dataclass
class _Modality:
    """What the first pass found for one modality."""

    folder: Path
    files: dict[str, Path] = field(default_factory=dict)  # clip id -> file
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    nonfinite: dict[str, int] = field(default_factory=dict)
    dtypes: Counter = field(default_factory=Counter)
    ranks: Counter = field(default_factory=Counter)
    dim: int | None = None
    dim_file: Path | None = None

    def length(self, clip_id: str) -> int:
        shape = self.shapes.get(clip_id)
        return 0 if shape is None else (1 if len(shape) == 1 else shape[0])

    def fingerprint(self, root: Path) -> str:
        lines = sorted(f"{_relative(p, root)} {self.digests[c]}" for c, p in self.files.items())
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _load_array(path: Path, data: bytes | None = None) -> np.ndarray:
    """The array in a ``.npy`` / ``.npz`` file (module docstring), without unpickling.

    Raises:
        SourceError: unreadable, pickled objects, or an ``.npz`` without one clear array.
    """
    try:
        loaded = np.load(io.BytesIO(data if data is not None else path.read_bytes()),
                         allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as npz:
            keys = list(npz.files)
            if len(keys) == 1:
                return npz[keys[0]]
            if NPZ_KEY in keys:
                return npz[NPZ_KEY]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{path}: not a readable numpy array file ({exc})") from None
    raise SourceError(f"{path}: holds {len(keys)} arrays ({', '.join(keys)}); an .npz needs "
                      f"one array, or one named {NPZ_KEY!r}")


def _as_features(array: np.ndarray, path: Path) -> np.ndarray:
    """``[T, dim]`` float32 from a checked array (``[dim]`` becomes ``[1, dim]``)."""
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise SourceError(f"{path}: dtype {array.dtype} is not a real number type")
    if array.ndim not in (1, 2):
        raise SourceError(f"{path}: array of shape {array.shape} has rank {array.ndim}; "
                          "expected [T, dim] (a sequence) or [dim] (one vector)")
    with np.errstate(over="ignore", invalid="ignore"):
        feats = array.astype(np.float32)
    return feats.reshape(1, -1) if feats.ndim == 1 else feats


def _find(folder: Path, clip_id: str) -> Path | None:
    found = [folder / f"{clip_id}{ext}" for ext in EXTENSIONS
             if (folder / f"{clip_id}{ext}").is_file()]
    if len(found) > 1:
        raise SourceError(f"{found[0]}: clip {clip_id!r} has both {found[0].name} and "
                          f"{found[1].name}; keep one")
    return found[0] if found else None


def _scan(modality: str, folder: Path, clips: list[RawClip], missing: str) -> _Modality:
    """First pass: every file read once, checked, hashed and counted."""
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such folder for the {modality} features; the layout "
                          f"is <path>/{modality}/<clip_id>.npy (or name the folder with --dirs)")
    scan = _Modality(folder)
    absent = []
    for clip in clips:
        path = _find(folder, clip.clip_id)
        if path is None:
            absent.append(clip.clip_id)
            continue
        data = path.read_bytes()
        array = _load_array(path, data)
        feats = _as_features(array, path)
        if feats.shape[1] == 0:
            raise SourceError(f"{path}: vectors of size 0 (shape {array.shape})")
        if scan.dim is None:
            scan.dim, scan.dim_file = int(feats.shape[1]), path
        elif feats.shape[1] != scan.dim:
            raise SourceError(f"{path}: {modality} vectors are {feats.shape[1]}-d but "
                              f"{scan.dim}-d in {scan.dim_file}; one modality has one size")
        scan.files[clip.clip_id] = path
        scan.shapes[clip.clip_id] = tuple(int(n) for n in array.shape)
        scan.digests[clip.clip_id] = hashlib.sha256(data).hexdigest()
        scan.nonfinite[clip.clip_id] = int((~np.isfinite(feats)).sum())
        scan.dtypes[str(array.dtype)] += 1
        scan.ranks[f"{array.ndim}-D"] += 1
    if absent and missing == "error":
        raise SourceError(f"{folder}: no {modality} file for {len(absent)} clip(s) of the "
                          f"annotations, e.g. {absent[0]!r} ({absent[0]}.npy or .npz); pass "
                          "--missing empty to keep them with the modality missing")
    if scan.dim is None:
        raise SourceError(f"{folder}: no {modality} file for any clip of the annotations")
    return scan


@dataclass
class ImportReport:
    """What :func:`import_features` wrote.

    Attributes:
        out_dir: The built dataset folder.
        counts: Rows per split.
        dims: Feature size per modality.
        files: Files read per modality.
        dropped: Clips dropped, with reasons.
        missing: (clip, modality) sequences kept as missing.
        nonfinite: Non-finite values found per modality.
        warnings: Non-fatal findings.
        timings: Seconds per stage.
    """

    out_dir: Path
    counts: dict[str, int]
    dims: dict[str, int]
    files: dict[str, int]
    dropped: list[ClipEvent]
    missing: list[ClipEvent]
    nonfinite: dict[str, int]
    warnings: list[str]
    timings: dict[str, float]

    def summary(self) -> str:
        counts = ", ".join(f"{s} {n}" for s, n in self.counts.items())
        lines = [f"imported features of {sum(self.counts.values())} clips ({counts}) -> "
                 f"{self.out_dir}",
                 "  features: " + ", ".join(f"{m} {self.dims[m]}-d ({self.files[m]} files)"
                                            for m in MODALITIES)]
        if any(self.nonfinite.values()):
            lines.append("  non-finite values: " + ", ".join(
                f"{m} {n}" for m, n in self.nonfinite.items() if n))
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  dropped {e.clip_id} [{e.modality}] {e.reason}: {e.detail}"
                  for e in self.dropped]
        if self.missing:
            lines.append(f"  {len(self.missing)} modality sequence(s) kept as missing")
        return "\n".join(lines)


def _annotations(annotations: Path, manifest_path: Path | None
                 ) -> tuple[CorpusManifest, list[RawClip], Path]:
    from sdme.validate import annotation_problems, mixed_relevance_problem

    manifest_path = Path(manifest_path) if manifest_path else annotations.parent / MANIFEST_NAME
    if not manifest_path.is_file():
        raise SourceError(f"{manifest_path}: not found; an sdme.json gives the corpus name, "
                          "license and taxonomy (--manifest FILE)")
    manifest = CorpusManifest.load(manifest_path)
    try:
        scale = manifest_scale(manifest)
    except ValueError as exc:
        raise SourceError(f"{manifest_path}: {exc}") from None
    clips = read_annotations(annotations)
    if not clips:
        raise SourceError(f"{annotations}: no clips")
    seen: set[str] = set()
    for line, clip in enumerate(clips, start=2):
        problems = annotation_problems(clip, manifest.taxonomy, scale)
        if clip.clip_id in seen:
            problems.insert(0, f"duplicate clip_id {clip.clip_id!r}")
        if problems:
            raise SourceError(f"{annotations}:{line}: {problems[0]}")
        seen.add(clip.clip_id)
    mixed = mixed_relevance_problem(clips)
    if mixed:
        raise SourceError(f"{annotations}: {mixed}")
    return manifest, clips, manifest_path


def import_features(path: str | os.PathLike, annotations: str | os.PathLike,
                    out_dir: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
                    dirs: Mapping[str, str] | None = None, missing: str = "error",
                    nonfinite: str = "error", seed: int = 0,
                    progress: bool = False) -> ImportReport:
    """Imports per-clip feature arrays and SDME annotations as a built dataset (module
    docstring).

    Raises:
        SourceError: a missing folder or file, an unreadable array, a wrong rank or dtype, a
            dimension that differs within a modality, non-finite values under ``error``, a
            bad annotation row, or splits that cannot be made (each naming the file).
        sdme.schema.FormatError: a malformed ``annotations.csv`` or ``sdme.json``.
    """
    from sdme import __version__
    from sdme.splits import SplitError, assign_splits

    if missing not in MISSING_POLICIES:
        raise SourceError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    if nonfinite not in NONFINITE_POLICIES:
        raise SourceError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    root, annotations = Path(path), Path(annotations)
    unknown = sorted(set(dirs or {}) - set(MODALITIES))
    if unknown:
        raise SourceError(f"--dirs has unknown modality key(s) {unknown}; use "
                          f"{list(MODALITIES)}")
    t_start = time.perf_counter()
    corpus, clips, manifest_path = _annotations(annotations, manifest)
    folders = {m: root / (dirs or {}).get(m, m) for m in MODALITIES}
    scans = {m: _scan(m, folders[m], clips, missing) for m in MODALITIES}
    timings = {"read": time.perf_counter() - t_start}

    events: list[ClipEvent] = []
    for clip in clips:
        for m in MODALITIES:
            scan = scans[m]
            file = scan.files.get(clip.clip_id)
            bad = scan.nonfinite.get(clip.clip_id, 0)
            if bad and nonfinite == "error":
                raise SourceError(f"{file}: {bad} NaN/inf value(s); pass --nonfinite zero "
                                  "(replace with 0) or --nonfinite drop (drop the clip)")
            if bad and nonfinite == "drop":
                events.append(ClipEvent(clip.clip_id, m, "nonfinite",
                                        f"{file}: {bad} NaN/inf value(s)", "dropped"))
            elif file is None:
                events.append(ClipEvent(clip.clip_id, m, "missing_file",
                                        f"{scan.folder}: no {clip.clip_id}.npy or .npz",
                                        "missing"))
            elif scan.length(clip.clip_id) == 0:
                events.append(ClipEvent(clip.clip_id, m, "empty_in_source",
                                        f"{file}: shape {scan.shapes[clip.clip_id]}",
                                        "missing"))
    missing_of = Counter(e.clip_id for e in events if e.action == "missing")
    for clip in clips:
        if missing_of[clip.clip_id] == len(MODALITIES):
            events.append(ClipEvent(clip.clip_id, "text", "empty",
                                    "no modality has features", "dropped"))
    dropped_ids = {e.clip_id for e in events if e.action == "dropped"}
    kept = [c for c in clips if c.clip_id not in dropped_ids]
    if not kept:
        raise SourceError(f"{root}: every clip was dropped; nothing to write")
    warnings = []
    listed = {c.clip_id for c in clips}
    for m in MODALITIES:
        extra = sorted(p.stem for ext in EXTENSIONS for p in folders[m].glob(f"*{ext}")
                       if p.stem not in listed)
        if extra:
            warnings.append(f"{folders[m]}: {len(extra)} file(s) of clips not in "
                            f"{annotations.name} left out, e.g. {extra[0]!r}")

    try:
        assignment = assign_splits(kept, seed=seed)
    except SplitError as exc:
        raise SourceError(f"{annotations}: {exc}") from None
    scores = CorpusScores.of(corpus, kept)
    dims = {m: int(scans[m].dim) for m in MODALITIES}
    features = dataset_features(corpus.taxonomy, dims, scores.columns() if scores else ())
    replaced = Counter()

    def rows(split: str) -> Iterator[dict[str, Any]]:
        for clip in kept:
            if assignment.splits[clip.clip_id] != split:
                continue
            row = clip_row(clip, corpus.taxonomy, scores.scale if scores else None,
                           scores.unimodal if scores else ())
            for m in MODALITIES:
                file = scans[m].files.get(clip.clip_id)
                if file is None:
                    feats = np.zeros((0, dims[m]), np.float32)
                else:
                    data = file.read_bytes()
                    if hashlib.sha256(data).hexdigest() != scans[m].digests[clip.clip_id]:
                        raise SourceError(f"{file}: changed while it was being imported")
                    feats = _as_features(_load_array(file, data), file)
                if scans[m].nonfinite.get(clip.clip_id):
                    replaced[m] += scans[m].nonfinite[clip.clip_id]
                    feats = np.where(np.isfinite(feats), feats, np.float32(0.0))
                row[FEAT[m]] = feats
                row[LENGTH[m]] = int(feats.shape[0])
            yield row

    annotations_sha = sha256_file(annotations)
    fingerprints = {m: scans[m].fingerprint(root) for m in MODALITIES}
    fingerprint = hashlib.sha256(json.dumps(
        {"manifest": corpus.fingerprint(), "annotations": annotations_sha,
         "features": fingerprints}, sort_keys=True).encode()).hexdigest()
    report: ImportReport | None = None
    t = time.perf_counter()

    def provenance(written: Written) -> BuildInfo:
        nonlocal report
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        rounded = {k: round(v, 3) for k, v in timings.items()}
        dropped = [e for e in events if e.action == "dropped"]
        kept_missing = [e for e in events if e.action == "missing"
                        and e.clip_id not in dropped_ids]
        records = {}
        for m in MODALITIES:
            scan = scans[m]
            lengths = [scan.length(c.clip_id) for c in kept if c.clip_id in scan.files]
            records[m] = ExtractorRecord(
                name=f"imported:{scan.folder.name}", version="imported", modality=m,
                dim=dims[m], fingerprint=fingerprints[m],
                params={"folder": str(scan.folder), "pattern": "<clip_id>.npy or .npz",
                        "files": len(scan.files), "dtypes": dict(scan.dtypes),
                        "ranks": dict(scan.ranks),
                        "length": {"min": min(lengths), "max": max(lengths),
                                   "mean": round(float(np.mean(lengths)), 3)}})
        report = ImportReport(out_dir=Path(out_dir), counts=written.counts, dims=dims,
                              files={m: len(scans[m].files) for m in MODALITIES},
                              dropped=dropped, missing=kept_missing,
                              nonfinite={m: sum(scans[m].nonfinite.values())
                                         for m in MODALITIES},
                              warnings=warnings, timings=rounded)
        return BuildInfo(
            sdme_version=__version__, created=utc_now(),
            source=SourceRecord(
                name=corpus.name, version=corpus.version, license=corpus.license,
                fingerprint=fingerprint,
                extra={"format": "imported-features", "features_dir": str(root),
                       "annotations": str(annotations), "annotations_sha256": annotations_sha,
                       "manifest": str(manifest_path),
                       "manifest_fingerprint": corpus.fingerprint()}),
            extractors=records,
            features={m: FeatureRecord.of(m, dims[m]) for m in MODALITIES},
            taxonomy=list(corpus.taxonomy),
            languages=sorted({c.language for c in kept if c.language}),
            **(scores.provenance() if scores else {}),
            nonfinite={"policy": nonfinite, "counts": report.nonfinite,
                       "replaced": dict(replaced)},
            counts=Counts(raw_clips=len(clips), rows=sum(written.counts.values()),
                          splits=written.counts, dropped=len(dropped_ids),
                          missing={m: sum(e.modality == m for e in kept_missing)
                                   for m in MODALITIES}),
            policy=Policy(
                dropped=["empty"] + (["nonfinite"] if nonfinite == "drop" else []),
                missing=["empty_in_source"] + (["missing_file"] if missing == "empty" else []),
                nonfinite=nonfinite,
                description="a [0, dim] array keeps the modality as missing"
                            + ("; a clip without a file keeps the modality as missing"
                               if missing == "empty" else "; every clip needs every file")
                            + {"error": "; non-finite values stop the import",
                               "zero": "; non-finite values are replaced with 0",
                               "drop": "; a clip with non-finite values is dropped"}[nonfinite]
                            + "; a clip with no modality left is dropped"),
            split=assignment.report.to_dict(),
            data_files=written.data_files,
            dropped=dropped,
            missing=kept_missing,
            warnings=warnings or None,
            build={"importer": "sdme.sources.features", "seed": seed,
                   "shard_rows": written.shard_rows, "shard_bytes": written.shard_bytes},
            timings=rounded,
        )

    write_built_dataset(out_dir, features=features, manifest=corpus, provenance=provenance,
                        splits=((s, rows(s)) for s in assignment.present()),
                        sections=_card_sections(root, dims, scans))
    assert report is not None
    if progress:
        print(report.summary(), file=sys.stderr)
    return report


def _card_sections(root: Path, dims: Mapping[str, int],
                   scans: Mapping[str, _Modality]) -> dict[str, str]:
    features = "\n".join(
        f"- {m}: {dims[m]}-d, {len(scans[m].files)} files in `{_relative(scans[m].folder, root)}`"
        for m in MODALITIES)
    return {"creation": f"""Imported by `sdme import features` (`sdme.sources.features`) from
per-clip feature arrays (one `.npy`/`.npz` file per clip and modality) and the corpus's SDME
`annotations.csv`. The features were **not** extracted by SDME; `build_info.json` records each
modality's folder, file count, dtypes, ranks, sequence lengths and a fingerprint of the files:

{features}

Labels and relevance fields follow from the annotations exactly as in `sdme build`."""}


# --- the source ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeaturesOptions:
    """Options of ``sdme import features``."""

    path: Path = field(metadata={
        "help": "The features folder: text/, audio/ and vision/ with <clip_id>.npy or .npz "
                "each (or see --dirs).", "exists": True, "path": "dir"})
    annotations: Path = field(metadata={
        "help": "The SDME annotations.csv of the clips (labels, votes or scores, splits).",
        "exists": True, "path": "file"})
    manifest: Path | None = field(default=None, metadata={
        "help": "The sdme.json with the corpus name, license and taxonomy (default: beside "
                "annotations.csv).", "exists": True, "path": "file"})
    dirs: dict[str, str] | None = field(default=None, metadata={
        "help": "Each modality's folder instead of <path>/<modality>, e.g. "
                "text=roberta-UTT,audio=wav2vec-UTT,vision=clip-UTT (relative to --path).",
        "keys": MODALITIES})
    name: str | None = field(default=None, metadata={
        "help": "Dataset name (default: the features folder's name)."})
    missing: Literal["error", "empty"] = field(default="error", metadata={
        "help": "A clip without a file: stop, or keep the modality as missing (recorded)."})
    nonfinite: Literal["error", "zero", "drop"] = field(default="error", metadata={
        "help": "NaN/inf in the features: stop, replace with 0 (reported), or drop the clip."})
    seed: int = field(default=0, metadata={
        "help": "Seed of the split assignment when annotations.csv has no split column."})


def _dataset_name(options: Mapping[str, Any]) -> str:
    """The features folder's name (or --name)."""
    return str(options.get("name") or Path(options["path"]).expanduser().resolve().name)


@contextmanager
def fixture(workdir: Path) -> Iterator[dict[str, Any]]:
    """Six sample clips' annotations (official splits) with features in every supported form:
    text ``[T, 8]`` ``.npy``, audio ``[T, 4]`` in ``.npz`` (key ``features``), vision ``[6]``
    utterance vectors in their own folder named by ``dirs``."""
    from sdme.schema import ANNOTATIONS_NAME, write_annotations
    from sdme.sources.sample import sample_dir

    workdir = Path(workdir)
    source = sample_dir()
    chosen = {"vid01_00": "train", "vid01_01": "train", "vid03_00": "train",
              "vid05_00": "validation", "vid07_00": "test", "vid07_01": "test"}
    clips = [dataclasses.replace(c, split=chosen[c.clip_id])
             for c in read_annotations(source / ANNOTATIONS_NAME) if c.clip_id in chosen]
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    write_annotations(corpus / ANNOTATIONS_NAME, clips)
    manifest = dataclasses.replace(CorpusManifest.load(source), name="my-features",
                                   files=(), archives=())
    (corpus / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    features = workdir / "my-features"
    rng = np.random.default_rng(0)
    for i, clip in enumerate(clips):
        for folder in ("text", "audio", "vision-utt"):
            (features / folder).mkdir(parents=True, exist_ok=True)
        np.save(features / "text" / f"{clip.clip_id}.npy",
                rng.standard_normal((3 + i, 8)).astype(np.float32))
        np.savez(features / "audio" / f"{clip.clip_id}.npz",
                 features=rng.standard_normal((10 + i, 4)), lengths=np.array([10 + i]))
        np.save(features / "vision-utt" / f"{clip.clip_id}.npy", rng.standard_normal(6))
    yield {"path": features, "annotations": corpus / ANNOTATIONS_NAME,
           "dirs": {"vision": "vision-utt"}}


CARD = SourceCard(
    title="Your own features: per-clip arrays plus SDME annotations",
    summary="A folder of per-clip feature arrays (.npy/.npz, one per clip and modality) plus "
            "an SDME annotations.csv, as a built dataset.",
    homepage="(your features' own: the extractor and corpus you used)",
    license="The corpus's own, as its sdme.json declares it (and the feature extractor's "
            "terms).",
    obtain="Extract the features yourself (e.g. with MERBench's scripts, one .npy per clip and "
           "modality), write the corpus's annotations.csv and sdme.json (sdme.schema), then "
           "`sdme import features --path DIR --annotations annotations.csv`.",
    citation="The corpus's own, as its sdme.json declares it, and the feature extractors'.")


@register_source("features", kind="built", options=FeaturesOptions, card=CARD, fixture=fixture,
                 dataset_name=_dataset_name)
def deliver(target: Path, *, path: str | os.PathLike, annotations: str | os.PathLike,
            manifest: str | os.PathLike | None = None, dirs: Mapping[str, str] | None = None,
            name: str | None = None, missing: str = "error", nonfinite: str = "error",
            seed: int = 0, progress: bool = False) -> ImportReport:
    """Imports the features folder ``path`` with ``annotations`` into ``target``
    (:func:`import_features`; ``name`` only names the target)."""
    return import_features(path, annotations, target, manifest=manifest, dirs=dirs,
                           missing=missing, nonfinite=nonfinite, seed=seed, progress=progress)


__all__ = ["EXTENSIONS", "FeaturesOptions", "ImportReport", "NPZ_KEY", "deliver",
           "import_features"]
