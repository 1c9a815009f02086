"""Validation of a built SDME dataset (``sdme validate <built dir>``).

:func:`check_structure` is what a built dataset needs, short of its rows: the card, the
provenance, the three splits and every required column with its type (its docstring is the
list; the README repeats it). The benchmark refuses a dataset that fails it
(``benchmark.scoring.resolve_task_dataset``), so ``sdme validate --built`` and the benchmark
apply one definition. :func:`validate_built` then reads the parquet shards with pyarrow (batch
by batch, so memory stays flat) and reports every problem, each naming the file and, where
there is one, the row, column and clip:

- the card (``README.md``): YAML header with ``dataset_info.features``, ``configs`` whose data
  files exist, split sizes equal to the rows found;
- ``build_info.json``: a valid provenance record (``sdme.built.BuildInfo.load``, strict),
  counts per split equal to the rows found, and feature sizes equal to the card's;
- schema: every required column with its type (``sdme.built.dataset_features``), and the
  splits ``train``, ``validation`` and ``test``, none empty;
- features: vectors of the card's size, no NaN/inf, ``<m>_len`` equal to the sequence's rows,
  length 0 exactly for the modalities ``build_info.json`` records as missing;
- ``start``/``end``: both null (sources without times), or finite seconds with
  ``0 <= start <= end``;
- labels and votes inside the taxonomy; relevance fields equal to what ``sdme.relevance``
  computes from the stored votes — or, for a dataset whose ``build_info.json`` says its relevance
  comes from unimodal scores (``relevance.source == "unimodal_scores"``), what
  ``sdme.scores.score_relevance`` computes from ``score`` and ``score_<m>``; ``label`` equal to
  the discretised ``score`` where ``build_info.json`` records a ``label_rule``;
- optional columns (``sdme.built.OPTIONAL_COLUMNS``) of the right type; ``text_tokens`` with
  ``text_len`` rows;
- no duplicate clip, no dropped clip present, and no speaker or source video in two splits
  (a warning instead of an error when the corpus fixed its own splits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdme.built import (
    BUILD_INFO_NAME,
    CARD_NAME,
    CLIP_ID,
    END,
    FEAT,
    LABEL,
    LENGTH,
    OPTIONAL_COLUMNS,
    SCORE,
    SPEAKER_ID,
    START,
    TEXT_TOKENS,
    UNIMODAL_SCORE,
    VIDEO_ID,
    VOTES,
    BuildInfo,
    BuildInfoError,
    dataset_features,
)
from sdme.relevance import compute_relevance
from sdme.schema import MANIFEST_NAME, MODALITIES, SPLITS, RawClip
from sdme.scores import discretise, score_relevance


@dataclass(frozen=True)
class Problem:
    """One finding about a built dataset; ``str()`` gives the one-line report.

    Attributes:
        file: The file concerned (or the dataset folder).
        message: What is wrong.
        row: Row index inside ``file`` (0-based), where there is one.
        column: Column concerned, where there is one.
        clip_id: Clip concerned, where there is one.
        severity: ``"error"`` or ``"warning"``.
    """

    file: str
    message: str
    row: int | None = None
    column: str | None = None
    clip_id: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.clip_id is not None:
            where.append(f"clip {self.clip_id!r}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{self.severity}: {', '.join(where)}: {self.message}"


def _split_order(split: str) -> int:
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


def _front_matter(text: str) -> dict[str, Any] | None:
    import yaml

    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not match:
        return None
    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else None


def _storage_type(arrow_type: Any) -> Any:
    import pyarrow as pa

    return arrow_type.storage_type if isinstance(arrow_type, pa.ExtensionType) else arrow_type


def _storage(column: Any) -> Any:
    import pyarrow as pa

    return column.storage if isinstance(column, pa.ExtensionArray) else column


def _split_files(root: Path, card: dict[str, Any], problems: list[Problem]
                 ) -> dict[str, list[Path]]:
    readme = str(root / CARD_NAME)
    configs = card.get("configs") or []
    config = next((c for c in configs if c.get("config_name", "default") == "default"), None)
    if config is None:
        problems.append(Problem(readme, "YAML has no 'configs' entry named 'default'"))
        return {}
    files: dict[str, list[Path]] = {}
    for entry in config.get("data_files") or []:
        split, patterns = entry.get("split"), entry.get("path")
        if split not in SPLITS:
            problems.append(Problem(readme, f"configs data_files has unknown split {split!r}"))
            continue
        patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
        matched = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
        if not matched:
            problems.append(Problem(readme, f"split {split!r}: no file matches {patterns}"))
        files[split] = matched
    if not files:
        problems.append(Problem(readme, "configs names no data files"))
    listed = {p for ps in files.values() for p in ps}
    for path in sorted((root / "data").glob("*.parquet")):
        if path not in listed:
            problems.append(Problem(str(path), "not part of any split in README.md",
                                    severity="warning"))
    return files


def _batches(reader: Any, path: Path, problems: list[Problem]) -> Iterator[tuple[int, Any]]:
    try:
        offset = 0
        for batch in reader.iter_batches(batch_size=256):
            yield offset, batch
            offset += batch.num_rows
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        problems.append(Problem(str(path), f"unreadable parquet ({type(exc).__name__}: {exc})"))


def _check_features(path: Path, offset: int, batch: Any, clip_ids: list[str], m: str, dim: int,
                    missing: set[tuple[str, str]] | None, problems: list[Problem]) -> None:
    """Feature shapes and values; with the provenance's ``missing`` (None: unreadable, not
    checked), empty sequences exactly where it records a missing modality."""
    add = problems.append
    column, len_column = FEAT[m], LENGTH[m]
    outer = _storage(batch.column(column))
    lengths = batch.column(len_column).to_pylist()
    for r in np.flatnonzero(outer.is_null().to_numpy(zero_copy_only=False)):
        add(Problem(str(path), "null sequence (a missing modality is an empty [0, dim] one)",
                    row=offset + int(r), column=column, clip_id=clip_ids[r]))
    rows = outer.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    inner = outer.flatten()
    widths = inner.value_lengths().to_numpy(zero_copy_only=False)
    values = inner.flatten().to_numpy(zero_copy_only=False)
    row_of_vector = np.repeat(np.arange(len(rows)), rows.astype(np.int64))
    bad_width = np.unique(row_of_vector[widths != dim]) if len(widths) else []
    for r in bad_width:
        add(Problem(str(path), f"feature vectors are not {dim}-d as the card says",
                    row=offset + int(r), column=column, clip_id=clip_ids[r]))
    if len(values) and len(bad_width) == 0:
        finite = np.isfinite(values).reshape(-1, dim).all(axis=1)
        for r in np.unique(row_of_vector[~finite]):
            add(Problem(str(path), "NaN or inf in the features", row=offset + int(r),
                        column=column, clip_id=clip_ids[r]))
    for r, (n_rows, n_len) in enumerate(zip(rows, lengths, strict=True)):
        cid = clip_ids[r]
        if n_len is None:
            add(Problem(str(path), "length is null", row=offset + r, column=len_column,
                        clip_id=cid))
            continue
        if int(n_len) != int(n_rows):
            add(Problem(str(path), f"{len_column} is {int(n_len)} but {column} has "
                        f"{int(n_rows)} row(s)", row=offset + r, column=len_column, clip_id=cid))
        if missing is None:
            continue
        is_missing = (cid, m) in missing
        if int(n_rows) == 0 and not is_missing:
            add(Problem(str(path), f"empty {m} sequence, but build_info.json does not record "
                        f"the {m} modality as missing", row=offset + r, column=column,
                        clip_id=cid))
        elif int(n_rows) > 0 and is_missing:
            add(Problem(str(path), f"build_info.json records the {m} modality as missing, but "
                        f"the sequence has {int(n_rows)} row(s)", row=offset + r, column=column,
                        clip_id=cid))


def _check_tokens(path: Path, offset: int, batch: Any, clip_ids: list[str],
                  problems: list[Problem]) -> None:
    """``text_tokens`` has one row per text step."""
    rows = _storage(batch.column(TEXT_TOKENS)).value_lengths().fill_null(0).to_numpy(
        zero_copy_only=False)
    lengths = batch.column(LENGTH["text"]).to_numpy(zero_copy_only=False)
    for r in np.flatnonzero(rows != lengths):
        problems.append(Problem(str(path), f"{TEXT_TOKENS} has {int(rows[r])} row(s) but "
                                f"{LENGTH['text']} is {int(lengths[r])}", row=offset + int(r),
                                column=TEXT_TOKENS, clip_id=clip_ids[r]))


def _check_row(path: Path, row_index: int, row: dict[str, Any], taxonomy: list[str],
               problems: list[Problem], scales: dict[str, str | None] | None = None) -> None:
    add = problems.append
    cid = row[CLIP_ID]
    known = set(taxonomy)
    start, end = row.get(START), row.get(END)
    if (start, end) != (None, None) and (
            start is None or end is None or not (math.isfinite(start) and math.isfinite(end))
            or start < 0 or end < start):
        add(Problem(str(path), f"start {start!r} / end {end!r}: expected finite seconds with "
                    "0 <= start <= end (or both null)", row=row_index, column=START,
                    clip_id=cid))
    label = row[LABEL]
    if label is None or not 0 <= int(label) < len(taxonomy):
        add(Problem(str(path), f"label {label!r} outside the taxonomy's {len(taxonomy)} "
                    "classes", row=row_index, column=LABEL, clip_id=cid))
        return
    for m in MODALITIES:
        outside = sorted(set(row[VOTES[m]] or ()) - known)
        if outside:
            add(Problem(str(path), f"votes outside the taxonomy: {', '.join(outside)}",
                        row=row_index, column=VOTES[m], clip_id=cid))
            return
    clip = RawClip(clip_id=cid, video_id=row[VIDEO_ID] or "", speaker_id=row[SPEAKER_ID] or "",
                   start=0.0, end=0.0, text="", language="", label=taxonomy[int(label)],
                   **{VOTES[m]: tuple(row[VOTES[m]] or ()) for m in MODALITIES})
    scales = scales or {}
    if scales.get("label") and row.get(SCORE) is not None:
        want = discretise(row[SCORE], scales["label"])
        if want not in taxonomy or taxonomy.index(want) != int(label):
            add(Problem(str(path), f"label {taxonomy[int(label)]!r} does not follow from score "
                        f"{row['score']!r} by the {scales['label']} rule (gives {want!r})",
                        row=row_index, column=LABEL, clip_id=cid))
    if scales.get("relevance") and row.get(SCORE) is not None:
        unimodal = {m: row.get(UNIMODAL_SCORE[m]) for m in MODALITIES}
        expected = score_relevance(row[SCORE], unimodal, scales["relevance"]).as_row()
        source = "the stored scores"
    else:
        expected = compute_relevance(clip, taxonomy).as_row()
        source = "the stored votes"
    for column, want in expected.items():
        have = row[column]
        if isinstance(want, float) and have is not None:
            same = abs(float(have) - want) <= 1e-6
        else:
            same = have == want
        if not same:
            add(Problem(str(path), f"is {have!r} but {source} give {want!r}",
                        row=row_index, column=column, clip_id=cid))
    for column in (CLIP_ID, VIDEO_ID, SPEAKER_ID):
        if not row[column]:
            add(Problem(str(path), "empty identifier", row=row_index, column=column,
                        clip_id=cid or None))


@dataclass
class Structure:
    """What :func:`check_structure` found: the parts later checks read.

    Attributes:
        root: The dataset folder.
        problems: Every structural problem found.
        card: The card's YAML header (None: absent or unreadable).
        info: The provenance (None: absent or invalid).
        taxonomy: ``label``'s class names (empty: unreadable).
        dims: Feature size per modality, from the card.
        expected: The features the card must declare (``sdme.built.dataset_features``; None
            when the card is unreadable).
        files: The parquet shards of each split.
        rows: Rows of each readable shard.
        shards: The shards whose schema holds every required column with its type.
    """

    root: Path
    problems: list[Problem]
    card: dict[str, Any] | None = None
    info: BuildInfo | None = None
    taxonomy: list[str] = field(default_factory=list)
    dims: dict[str, int] = field(default_factory=dict)
    expected: Any = None
    files: dict[str, list[Path]] = field(default_factory=dict)
    rows: dict[Path, int] = field(default_factory=dict)
    shards: list[Path] = field(default_factory=list)


def check_structure(path: str | Path, *, shards: bool = True) -> Structure:
    """The built-dataset contract, short of reading rows: what ``sdme validate --built`` checks
    first and what the benchmark requires before it reads a dataset (one definition for both).

    A built dataset needs:

    1. ``README.md`` with a YAML header declaring the features of
       ``sdme.built.dataset_features`` (a ClassLabel ``label``; each modality's ``<m>_feat``
       ``Array2D(shape=(None, dim), float32)``) and a ``default`` config naming the data files
       of the splits ``train``, ``validation`` and ``test``, each matching at least one file;
    2. ``build_info.json``, a valid provenance record (``sdme.built.BuildInfo``: the source and
       its fingerprint, one extractor per modality whose ``dim`` is the card's, the card's
       taxonomy);
    3. parquet shards whose schema holds every column of ``dataset_features`` with its type
       (ids, ``text``, ``label``, votes, ``label_<m>``, ``relevance_<m>``, ``deviation``,
       ``<m>_feat``, ``<m>_len``), and at least one row in each of the three splits.

    Only the card, the provenance and each shard's footer are read; with ``shards=False``, not
    even the footers (the card's declared features stand for the shards' schema, and the
    provenance's counts for their rows): what ``benchmark tune`` checks, which never opens the
    test split.
    """
    import datasets
    import pyarrow.parquet as pq

    root = Path(path)
    out = Structure(root=root, problems=[])
    add = out.problems.append
    if not root.is_dir():
        add(Problem(str(root), "not a folder"))
        return out

    if (root / MANIFEST_NAME).is_file() and not (root / BUILD_INFO_NAME).is_file():
        add(Problem(str(root), "a raw corpus (it has sdme.json), not a built dataset: build it "
                    "with `sdme build`"))
        return out
    readme = root / CARD_NAME
    if not readme.is_file():
        add(Problem(str(readme), "dataset card missing"))
    else:
        out.card = _front_matter(readme.read_text(encoding="utf-8"))
        if out.card is None:
            add(Problem(str(readme), "no YAML header (--- ... ---) with dataset_info and configs"))
    info_path = root / BUILD_INFO_NAME
    if not info_path.is_file():
        add(Problem(str(info_path), "build provenance missing"))
    else:
        try:
            out.info = BuildInfo.load(info_path)
        except BuildInfoError as exc:
            add(Problem(str(info_path), str(exc).removeprefix(f"{info_path}: ")))
    if out.card is None:
        return out
    if not isinstance(out.card.get("dataset_info"), dict):
        add(Problem(str(readme), "no dataset_info in the YAML header: not a built dataset"))
        return out

    try:
        card_features = datasets.Features._from_yaml_list(out.card["dataset_info"]["features"])
    except Exception as exc:  # malformed YAML features raise anything from KeyError to TypeError
        add(Problem(str(readme), f"dataset_info.features unreadable ({type(exc).__name__}: "
                    f"{exc})"))
        return out
    label = card_features.get(LABEL)
    out.taxonomy = list(getattr(label, "names", None) or [])
    if not out.taxonomy:
        add(Problem(str(readme), "no ClassLabel 'label' feature", column=LABEL))
        return out
    for m in MODALITIES:
        shape = getattr(card_features.get(FEAT[m]), "shape", None)
        if not shape or len(shape) != 2 or not shape[1]:
            add(Problem(str(readme), "feature must be Array2D(shape=(None, dim), float32)",
                        column=FEAT[m]))
        else:
            out.dims[m] = int(shape[1])
    if len(out.dims) < len(MODALITIES):
        return out
    optional = [name for name in OPTIONAL_COLUMNS if name in card_features]
    out.expected = expected = dataset_features(out.taxonomy, out.dims, optional)
    for name, feature in expected.items():
        if name not in card_features:
            add(Problem(str(readme), "required feature missing", column=name))
        elif card_features[name] != feature:
            add(Problem(str(readme), f"feature is {card_features[name]!r}, expected "
                        f"{feature!r}", column=name))
    info = out.info
    if info is not None:
        for m in MODALITIES:
            ext = info.extractors.get(m)
            dim = ext.dim if ext is not None else None
            if dim != out.dims[m]:
                add(Problem(str(info_path), f"{m} extractor dim {dim!r} differs from "
                            f"the card's {out.dims[m]}", column=FEAT[m]))
        if info.taxonomy != out.taxonomy:
            add(Problem(str(info_path), f"taxonomy {info.taxonomy} differs from the card's "
                        f"ClassLabel names {out.taxonomy}", column=LABEL))

    out.files = _split_files(root, out.card, out.problems)
    rows: dict[str, int] = {}
    if not shards:
        rows = dict(info.counts.splits) if info is not None else {}
    for split, shard_paths in out.files.items():
        if not shards:
            continue
        rows[split] = 0
        for shard in shard_paths:
            try:
                parquet = pq.ParquetFile(shard)
                schema = parquet.schema_arrow
            except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
                add(Problem(str(shard), f"unreadable parquet ({type(exc).__name__}: {exc})"))
                continue
            rows[split] += parquet.metadata.num_rows
            out.rows[shard] = parquet.metadata.num_rows
            bad_schema = False
            for column in expected.arrow_schema:
                if column.name not in schema.names:
                    add(Problem(str(shard), "required column missing", column=column.name))
                    bad_schema = True
                elif _storage_type(schema.field(column.name).type) != _storage_type(column.type):
                    add(Problem(str(shard), f"type {schema.field(column.name).type} != "
                                f"{_storage_type(column.type)}", column=column.name))
                    bad_schema = True
            if not bad_schema:
                out.shards.append(shard)
    for split in SPLITS:
        if split not in out.files:
            add(Problem(str(readme), f"no {split!r} split (a built dataset has train, "
                        "validation and test: the benchmark trains, selects and scores on them)"))
        elif split in rows and rows[split] == 0 and out.files[split]:
            add(Problem(str(readme), f"split {split!r} has no rows"))
    return out


def structure_problems(path: str | Path, *, shards: bool = True) -> list[Problem]:
    """The errors of :func:`check_structure` (warnings left out)."""
    return errors(check_structure(path, shards=shards).problems)


def validate_built(path: str | Path) -> list[Problem]:
    """Checks a built dataset folder: :func:`check_structure`, then every row; returns every
    problem found (empty: valid).

    Warnings (``severity == "warning"``) do not make a dataset invalid.
    """
    import datasets

    structure = check_structure(path)
    problems = structure.problems
    add = problems.append
    root, card, info = structure.root, structure.card, structure.info
    taxonomy, dims, expected = structure.taxonomy, structure.dims, structure.expected
    if expected is None:
        return problems
    info_path = root / BUILD_INFO_NAME
    readme = root / CARD_NAME

    missing: set[tuple[str, str]] | None = None  # without provenance: not checked
    dropped: set[str] = set()
    corpus_split = False
    scales: dict[str, str | None] = {}  # score scales of label and relevance rules, if any
    if info is not None:
        missing = {(e.clip_id, e.modality) for e in info.missing}
        dropped = {e.clip_id for e in info.dropped}
        corpus_split = info.split.get("policy") == "corpus"
        if info.relevance_scale:
            scales["relevance"] = info.relevance_scale
        scales["label"] = info.label_scale

    import pyarrow.parquet as pq

    rows_per_split: dict[str, int] = {}
    seen_clips: dict[str, str] = {}
    speaker_splits: dict[str, set[str]] = {}
    video_splits: dict[str, set[str]] = {}
    scalar_columns = [n for n, f in expected.items() if not isinstance(f, datasets.Array2D)]
    good = set(structure.shards)
    for split, shard_paths in structure.files.items():
        rows_per_split[split] = 0
        for shard in shard_paths:
            rows_per_split[split] += structure.rows.get(shard, 0)
            if shard not in good:
                continue  # reported by check_structure
            parquet = pq.ParquetFile(shard)
            for offset, batch in _batches(parquet, shard, problems):
                scalars = batch.select(scalar_columns).to_pylist()
                clip_ids = [r[CLIP_ID] for r in scalars]
                for i, row in enumerate(scalars):
                    cid, r = row[CLIP_ID], offset + i
                    if cid in seen_clips:
                        add(Problem(str(shard), f"duplicate clip (also in {seen_clips[cid]})",
                                    row=r, column=CLIP_ID, clip_id=cid))
                    seen_clips[cid] = str(shard.relative_to(root))
                    if cid in dropped:
                        add(Problem(str(shard), "build_info.json records this clip as dropped",
                                    row=r, column=CLIP_ID, clip_id=cid))
                    speaker_splits.setdefault(row[SPEAKER_ID], set()).add(split)
                    video_splits.setdefault(row[VIDEO_ID], set()).add(split)
                    _check_row(shard, r, row, taxonomy, problems, scales)
                if TEXT_TOKENS in expected:
                    _check_tokens(shard, offset, batch, clip_ids, problems)
                for m in MODALITIES:
                    _check_features(shard, offset, batch, clip_ids, m, dims[m], missing,
                                    problems)

    severity = "warning" if corpus_split else "error"
    data_dir = str(root / "data")
    for column, kind, table in ((SPEAKER_ID, "speaker", speaker_splits),
                                (VIDEO_ID, "source video", video_splits)):
        for key, splits in sorted(table.items()):
            if len(splits) > 1:
                order = ", ".join(s for s in SPLITS if s in splits)
                add(Problem(data_dir, f"split leakage: {kind} {key!r} appears in {order}",
                            column=column, severity=severity))

    if card is not None:
        sizes = {s.get("name"): s.get("num_examples")
                 for s in (card.get("dataset_info") or {}).get("splits") or []}
        for split, n in rows_per_split.items():
            if split in sizes and sizes[split] != n:
                add(Problem(str(readme), f"split {split!r} has {n} rows but the card says "
                            f"{sizes[split]}"))
    if info is not None:
        counts = info.counts.splits
        for split in sorted(set(counts) | set(rows_per_split), key=_split_order):
            if counts.get(split) != rows_per_split.get(split):
                add(Problem(str(info_path), f"split {split!r}: counts say {counts.get(split)} "
                            f"rows, the data files hold {rows_per_split.get(split)}"))
    return problems


def errors(problems: list[Problem]) -> list[Problem]:
    """The problems that make a dataset invalid (warnings left out)."""
    return [p for p in problems if p.severity == "error"]


__all__ = ["Problem", "Structure", "check_structure", "errors", "structure_problems",
           "validate_built"]
