"""The built-dataset contract: column names, the features schema, provenance, the one writer.

A built SDME dataset is what ``sdme build``, the synthetic corpus and every built source (MMSA's
feature files, ...) produce, and what ``sdme.loading``, ``sdme.validate_built``, the export and
the benchmark read::

    <out_dir>/
      README.md                               dataset card (YAML: dataset_info + configs)
      build_info.json                         provenance (:class:`BuildInfo`)
      data/<split>-NNNNN-of-NNNNN.parquet     shards, one row per clip

This module is that contract's one definition:

- **Columns.** The names of every column (:data:`FEAT`, :data:`LENGTH`, :data:`VOTES`,
  :data:`UNIMODAL_LABEL`, :data:`RELEVANCE`, :data:`UNIMODAL_SCORE` map a modality to its
  column; the other names are constants) and the ``datasets.Features`` schema
  (:func:`dataset_features`): ids, ``text``, ``label`` (ClassLabel), the relevance fields,
  per-modality feature sequences ``Array2D(shape=(None, dim), float32)`` and their lengths,
  plus the optional columns of scored corpora (:data:`OPTIONAL_COLUMNS`).
- **Provenance.** :class:`BuildInfo`, the typed record of ``build_info.json`` (toolkit version,
  source and its fingerprint, extractors with versions and parameters, counts, split report,
  data files, every dropped clip and missing modality, timings, and the moments of every
  split's feature values, :class:`FeatureStats`), loaded and saved strictly
  (:meth:`BuildInfo.load` from a dataset folder or the file itself).
- **Writing.** :func:`write_built_dataset`, the one function that writes a built dataset:
  rows stream into parquet shards (``sdme.writer``, which also sums each split's feature
  values into its :class:`FeatureStats`, so that no reader has to scan the features for
  them), then the card (``sdme.card``) and the provenance are written and the staging folder
  replaces ``out_dir`` whole.

The module is a little over 600 lines because the contract (columns, schema, provenance
records, the writer's entry point) is kept in one place.

The layout follows the Hugging Face file-based dataset conventions
(https://huggingface.co/docs/hub/datasets-manual-configuration), so plain
``datasets.load_dataset(out_dir)`` reads it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdme.config import ConfigError, check_keys, field_hints, from_mapping
from sdme.schema import (
    MODALITIES,
    SCORE_COLUMN,
    UNIMODAL_SCORE_COLUMNS,
    VOTES_COLUMNS,
    CorpusManifest,
    RawClip,
)

if TYPE_CHECKING:
    import datasets

    from sdme.scores import ScoreScale

BUILD_INFO_NAME = "build_info.json"
CARD_NAME = "README.md"
DATA_DIRNAME = "data"
DEFAULT_SHARD_ROWS = 1000
DEFAULT_SHARD_BYTES = 256 << 20  # feature bytes per shard

# --- columns -------------------------------------------------------------------------------------

CLIP_ID = "clip_id"
VIDEO_ID = "video_id"
SPEAKER_ID = "speaker_id"
START = "start"
END = "end"
TEXT = "text"
LANGUAGE = "language"
LABEL = "label"
DEVIATION = "deviation"
#: Continuous (multimodal) score of corpora scored rather than categorised (optional).
SCORE = SCORE_COLUMN
#: BERT input ids, attention mask and segment ids per text step, ``[text_len, 3]`` int32, as
#: MMSA's files carry them (optional).
TEXT_TOKENS = "text_tokens"

#: Per modality: labels annotators gave from that modality alone (list of strings).
VOTES: Mapping[str, str] = VOTES_COLUMNS
#: Per modality: the majority of its votes (or the discretised unimodal score).
UNIMODAL_LABEL: Mapping[str, str] = {m: f"label_{m}" for m in MODALITIES}
#: Per modality: how far it expresses ``label``, in [0, 1].
RELEVANCE: Mapping[str, str] = {m: f"relevance_{m}" for m in MODALITIES}
#: Per modality: the feature sequence, ``[length, dim]`` float32.
FEAT: Mapping[str, str] = {m: f"{m}_feat" for m in MODALITIES}
#: Per modality: rows of the feature sequence (0: the modality is missing).
LENGTH: Mapping[str, str] = {m: f"{m}_len" for m in MODALITIES}
#: Per modality: the unimodal score (CH-SIMS; optional).
UNIMODAL_SCORE: Mapping[str, str] = UNIMODAL_SCORE_COLUMNS

#: Columns a built dataset may add after the required ones (``dataset_features(optional=...)``).
OPTIONAL_COLUMNS: tuple[str, ...] = (SCORE, *UNIMODAL_SCORE.values(), TEXT_TOKENS)


def dataset_features(taxonomy: Sequence[str], dims: Mapping[str, int],
                     optional: Iterable[str] = ()) -> datasets.Features:
    """The ``datasets.Features`` of a built SDME dataset.

    Feature sequences are ``Array2D(shape=(None, dim), dtype="float32")``: variable length,
    fixed vector size; ``datasets`` returns them as ``[T, dim]`` arrays/tensors under the numpy
    and torch formats.

    Args:
        taxonomy: Class names of ``label``.
        dims: Feature vector size per modality.
        optional: Names from :data:`OPTIONAL_COLUMNS` to add after the required columns.

    Raises:
        ValueError: An unknown optional column.
    """
    from datasets import Array2D, ClassLabel, Features, List, Value

    optional = set(optional)
    unknown = sorted(optional - set(OPTIONAL_COLUMNS))
    if unknown:
        raise ValueError(f"unknown optional column(s) {unknown}; known: {list(OPTIONAL_COLUMNS)}")

    spec: dict[str, Any] = {
        CLIP_ID: Value("string"),
        VIDEO_ID: Value("string"),
        SPEAKER_ID: Value("string"),
        START: Value("float32"),
        END: Value("float32"),
        TEXT: Value("string"),
        LANGUAGE: Value("string"),
        LABEL: ClassLabel(names=list(taxonomy)),
    }
    spec.update({VOTES[m]: List(Value("string")) for m in MODALITIES})
    spec.update({UNIMODAL_LABEL[m]: Value("string") for m in MODALITIES})
    spec.update({RELEVANCE[m]: Value("float32") for m in MODALITIES})
    spec[DEVIATION] = Value("int8")
    spec.update({FEAT[m]: Array2D(shape=(None, int(dims[m])), dtype="float32")
                 for m in MODALITIES})
    spec.update({LENGTH[m]: Value("int32") for m in MODALITIES})
    extra: dict[str, Any] = {name: Value("float32") for name in (SCORE, *UNIMODAL_SCORE.values())}
    extra[TEXT_TOKENS] = Array2D(shape=(None, 3), dtype="int32")
    spec.update({name: extra[name] for name in OPTIONAL_COLUMNS if name in optional})
    return Features(spec)


def clip_row(clip: RawClip, taxonomy: Sequence[str], scale: ScoreScale | None = None,
             unimodal: Sequence[str] = ()) -> dict[str, Any]:
    """The annotation columns of a raw clip's row: ids, times, text, ``label`` (its index in
    ``taxonomy``), the votes and the relevance fields (``sdme.scores.clip_relevance``: from the
    votes, or from the unimodal scores of a scored corpus).

    Args:
        clip: The raw clip.
        taxonomy: Class names of ``label``.
        scale: The corpus's score scale (``sdme.scores.manifest_scale``); with it, ``score`` is
            written too.
        unimodal: Modalities whose ``score_<m>`` column the dataset has.
    """
    from sdme.scores import clip_relevance

    row: dict[str, Any] = {
        CLIP_ID: clip.clip_id,
        VIDEO_ID: clip.video_id,
        SPEAKER_ID: clip.speaker_id,
        START: clip.start,
        END: clip.end,
        TEXT: clip.text,
        LANGUAGE: clip.language,
        LABEL: list(taxonomy).index(clip.label),
    }
    row.update({VOTES[m]: list(clip.votes(m)) for m in MODALITIES})
    if scale is not None:
        row[SCORE] = clip.score
        row.update({UNIMODAL_SCORE[m]: clip.unimodal_score(m) for m in unimodal})
    row.update(clip_relevance(clip, taxonomy, scale).as_row())
    return row


# --- provenance ----------------------------------------------------------------------------------

class BuildInfoError(ValueError):
    """A ``build_info.json`` that is absent, not JSON, or not a valid provenance record."""


def _without_none(record: Any) -> dict[str, Any]:
    """A record's fields in order, optional (None) ones left out, nested records as dicts."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is None and f.default is None:
            continue
        out[f.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.to_dict() if hasattr(value, "to_dict") else _without_none(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _record(cls: type, data: Any, what: str, source: str | None = None) -> Any:
    """``cls`` from a JSON mapping: unknown keys (close match), missing fields, types."""
    prefix = f"{source}: " if source else ""
    if not isinstance(data, Mapping):
        raise BuildInfoError(f"{prefix}{what}: expected an object, got {type(data).__name__}")
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    absent = [name for name in required if name not in data]
    if absent:
        raise BuildInfoError(f"{prefix}{what}: missing field {absent[0]!r}")
    try:
        return from_mapping(cls, data, what=what)
    except ConfigError as exc:
        raise BuildInfoError(f"{prefix}{exc}") from None


@dataclass(frozen=True)
class ClipEvent:
    """A clip that lost a modality or was dropped.

    Attributes:
        clip_id: The clip.
        modality: ``text``, ``audio`` or ``vision``.
        reason: Why: ``decode_failed``, ``no_audio``, ``no_face``, ``empty_text``,
            ``extractor_error`` (``sdme build``), or what a source records (``nonfinite``, ...).
        detail: What went wrong, naming the file where there is one.
        action: ``"dropped"`` (no row for the clip) or ``"missing"`` (row kept, modality empty).
    """

    clip_id: str
    modality: str
    reason: str
    detail: str
    action: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class SourceRecord:
    """Where the rows came from.

    Attributes:
        name: Corpus name.
        title: Full corpus name, where the source gives one.
        version: Corpus (or file, or generator) version.
        license: The corpus license.
        fingerprint: sha256 identifying the exact input (manifest, file, generator config).
        extra: Anything else the source records (file, sha256, verified, synthetic, ...),
            written after the fields above.
    """

    name: str
    title: str | None = None
    version: str
    license: str
    fingerprint: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = _without_none(dataclasses.replace(self, extra={}))
        out.pop("extra")
        out.update(_plain(self.extra))
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> SourceRecord:
        if not isinstance(data, Mapping):
            return _record(cls, data, "source", source)
        names = set(field_hints(cls)) - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        return _record(cls, {**known, "extra": extra}, "source", source)


@dataclass(frozen=True, kw_only=True)
class ExtractorRecord:
    """What produced one modality's features (``sdme.features.ExtractorInfo`` plus its
    fingerprint; sources of released features describe their own).

    Attributes:
        name: Extractor name.
        version: Its version.
        modality: The modality (recorded by ``sdme build``).
        dim: Feature vector size.
        params: Fully resolved parameters.
        fingerprint: sha256 of the above: what the features depend on.
        options: The parameters the extractor was created with (``sdme.features.
            create_extractor``'s keywords, local model paths included), from which
            ``sdme.features.recreate_extractor`` makes it again; not part of the fingerprint.
    """

    name: str
    version: str
    modality: str | None = None
    dim: int
    params: dict[str, Any]
    fingerprint: str
    options: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class FeatureRecord:
    """Where one modality's features are: the sequence column, its length column, the size."""

    column: str
    length_column: str
    dim: int

    @classmethod
    def of(cls, modality: str, dim: int) -> FeatureRecord:
        return cls(column=FEAT[modality], length_column=LENGTH[modality], dim=int(dim))


@dataclass(frozen=True, kw_only=True)
class FeatureStats:
    """Moments of all of one modality's feature values in one split (real steps only).

    Attributes:
        values: How many values (steps x feature size, over every row of the split).
        mean: Their mean.
        std: Their standard deviation, ``sqrt(E[x^2] - E[x]^2)`` (population), 0 when there
            are none.
    """

    values: int
    mean: float
    std: float


@dataclass(frozen=True, kw_only=True)
class Counts:
    """Clip counts.

    Attributes:
        raw_clips: Clips in the input.
        rows: Rows written.
        splits: Rows per split.
        dropped: Clips dropped.
        missing: Missing sequences per modality.
        deviation: Rows per deviation level (where the producer counts them).
    """

    raw_clips: int
    rows: int
    splits: dict[str, int]
    dropped: int
    missing: dict[str, int]
    deviation: dict[str, int] | None = None


@dataclass(frozen=True, kw_only=True)
class Policy:
    """What happens to clips that cannot yield a modality.

    Attributes:
        dropped: Reasons that drop a clip.
        missing: Reasons that keep a clip with the modality missing.
        nonfinite: What is done with NaN/inf feature values, where the source has a policy.
        description: The policy in words (for the card).
    """

    dropped: list[str]
    missing: list[str]
    nonfinite: str | None = None
    description: str


def _migrate_timings(timings: Any) -> Any:
    """Old ``sdme build`` timings: ``extract_<m>_cpu`` were summed wall seconds."""
    if not isinstance(timings, Mapping):
        return timings
    out = dict(timings)
    for m in MODALITIES:
        legacy = f"extract_{m}_cpu"
        if legacy in out and f"clips_{m}_wall" not in out:
            out[f"clips_{m}_wall"] = out.pop(legacy)
    return out


@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    """The provenance of a built dataset: ``build_info.json``, typed.

    Fields are written in this order; optional ones (None) are left out. The sections that
    only some producers write (``generator``, ``score``, ``label_rule``, ``relevance``,
    ``nonfinite``, ``warnings``, ``cache``) and the producer-specific ``build`` and ``split``
    records are plain JSON objects.

    Attributes:
        sdme_version: Toolkit version that wrote the dataset.
        created: UTC time, ISO 8601.
        source: The input.
        generator: The generator and its full configuration (synthetic corpora).
        extractors: Per modality, what made the features.
        features: Per modality, the feature columns and size.
        feature_stats: Per split and modality, the moments of its feature values (written by
            :func:`write_built_dataset`; absent in datasets made before it recorded them).
        taxonomy: ``label`` class names in order.
        languages: Languages of the transcripts.
        score: The ``score`` column's scale (scored corpora).
        label_rule: How ``label`` follows from ``score`` (``{"scale": ..., "rule": ...}``).
        relevance: Where the relevance fields come from (``{"source": "votes" |
            "unimodal_scores" | "none", ...}``); votes when absent.
        nonfinite: NaN/inf values found in the input and the policy applied.
        counts: Clip counts.
        policy: The dropped/missing policy.
        split: How the splits were made (``sdme.splits.SplitReport.to_dict``).
        data_files: Parquet shards per split, relative to the dataset folder.
        dropped: Every dropped clip.
        missing: Every missing modality sequence.
        warnings: Non-fatal findings about the input.
        build: Producer parameters (device, workers, seed, shard sizes, ...).
        cache: Feature-cache statistics (``sdme build``).
        timings: Seconds per stage (for ``sdme build``, wall and CPU seconds under explicit
            names: ``sdme.build``'s module docstring). Records written before those names had
            ``extract_<modality>_cpu``, summed *wall* seconds: they load as
            ``clips_<modality>_wall``.
    """

    sdme_version: str
    created: str
    source: SourceRecord
    generator: dict[str, Any] | None = None
    extractors: dict[str, ExtractorRecord]
    features: dict[str, FeatureRecord]
    feature_stats: dict[str, dict[str, FeatureStats]] | None = None
    taxonomy: list[str]
    languages: list[str]
    score: dict[str, Any] | None = None
    label_rule: dict[str, Any] | None = None
    relevance: dict[str, Any] | None = None
    nonfinite: dict[str, Any] | None = None
    counts: Counts
    policy: Policy
    split: dict[str, Any]
    data_files: dict[str, list[str]]
    dropped: list[ClipEvent]
    missing: list[ClipEvent]
    warnings: list[str] | None = None
    build: dict[str, Any]
    cache: dict[str, Any] | None = None
    timings: dict[str, float]

    # --- reading the record -------------------------------------------------------------------

    @property
    def dims(self) -> dict[str, int]:
        """Feature vector size per modality."""
        return {m: self.features[m].dim for m in MODALITIES if m in self.features}

    @property
    def relevance_scale(self) -> str | None:
        """The score scale relevance is derived from, when it comes from unimodal scores."""
        relevance = self.relevance or {}
        return relevance.get("scale") if relevance.get("source") == "unimodal_scores" else None

    @property
    def label_scale(self) -> str | None:
        """The score scale ``label`` is derived from, where a label rule is recorded."""
        return (self.label_rule or {}).get("scale")

    # --- JSON -----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, fields in order, optional ones left out."""
        return _without_none(self)

    def to_json(self) -> str:
        """The text of ``build_info.json``."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str | os.PathLike | None = None) -> BuildInfo:
        """Strictly parses a provenance mapping.

        Raises:
            BuildInfoError: Not an object, an unknown or missing field (the message names the
                file, the field and a close match), or a value of the wrong type.
        """
        where = str(source) if source is not None else None
        prefix = f"{where}: " if where else ""
        if not isinstance(data, Mapping):
            raise BuildInfoError(f"{prefix}expected a JSON object, got {type(data).__name__}")
        try:
            check_keys(data, field_hints(cls), "build_info")
        except ConfigError as exc:
            raise BuildInfoError(f"{prefix}{exc}") from None
        values = dict(data)

        def nested(key: str, parse: Callable[[Any], Any]) -> None:
            if key in values:
                values[key] = parse(values[key])

        def per_modality(record: type, key: str) -> Callable[[Any], dict[str, Any]]:
            def parse(value: Any) -> dict[str, Any]:
                if not isinstance(value, Mapping):
                    raise BuildInfoError(f"{prefix}{key}: expected an object per modality")
                return {str(m): _record(record, v, f"{key}.{m}", where) for m, v in value.items()}
            return parse

        def events(key: str) -> Callable[[Any], list[ClipEvent]]:
            def parse(value: Any) -> list[ClipEvent]:
                if not isinstance(value, list):
                    raise BuildInfoError(f"{prefix}{key}: expected a list of clip events")
                return [_record(ClipEvent, e, f"{key}[{i}]", where) for i, e in enumerate(value)]
            return parse

        def stats_per_split(value: Any) -> dict[str, dict[str, FeatureStats]]:
            if not isinstance(value, Mapping):
                raise BuildInfoError(f"{prefix}feature_stats: expected an object per split")
            return {str(split): per_modality(FeatureStats, f"feature_stats.{split}")(stats)
                    for split, stats in value.items()}

        nested("source", lambda v: SourceRecord.from_dict(v, where))
        nested("extractors", per_modality(ExtractorRecord, "extractors"))
        nested("features", per_modality(FeatureRecord, "features"))
        nested("feature_stats", stats_per_split)
        nested("counts", lambda v: _record(Counts, v, "counts", where))
        nested("policy", lambda v: _record(Policy, v, "policy", where))
        nested("dropped", events("dropped"))
        nested("missing", events("missing"))
        nested("timings", _migrate_timings)
        return _record(cls, values, "build_info", where)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BuildInfo:
        """Reads ``build_info.json`` from a built dataset folder (or the file itself).

        Raises:
            BuildInfoError: Absent, unreadable, not JSON or not a valid record (naming the file).
        """
        from sdme import safe_json

        path = Path(path)
        if path.is_dir():
            path = path / BUILD_INFO_NAME
        try:
            data = safe_json.load(path)  # nesting and integer literals bounded
        except FileNotFoundError:
            raise BuildInfoError(f"{path}: build provenance missing (not a built SDME "
                                 "dataset)") from None
        except (OSError, safe_json.JSONInputError) as exc:
            raise BuildInfoError(f"{path}: not valid JSON ({getattr(exc, 'problem', exc)})"
                                 ) from None
        return cls.from_dict(data, path)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes ``build_info.json`` atomically into a folder (or to the given file)."""
        from sdme.fileio import atomic_write_text

        path = Path(path)
        if path.is_dir():
            path = path / BUILD_INFO_NAME
        BuildInfo.from_dict(self.to_dict(), path)  # what is written must load
        atomic_write_text(path, self.to_json())
        return path


# --- writing -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Written:
    """What :func:`write_built_dataset` wrote, for the producer's provenance.

    Attributes:
        counts: Rows per split, in the order written.
        data_files: Shards per split, relative to the dataset folder.
        split_bytes: In-memory Arrow size of each split (for the card).
        shard_rows: Most rows per shard.
        shard_bytes: Most feature bytes per shard.
        feature_stats: Per split and modality, the moments of the feature values written.
    """

    counts: dict[str, int]
    data_files: dict[str, list[str]]
    split_bytes: dict[str, int]
    shard_rows: int
    shard_bytes: int
    feature_stats: dict[str, dict[str, FeatureStats]] = field(default_factory=dict)


Provenance = Callable[[Written], BuildInfo]


def write_built_dataset(out_dir: str | os.PathLike, *, features: datasets.Features,
                        splits: Iterable[tuple[str, Iterable[Mapping[str, Any]]]],
                        provenance: Provenance, manifest: CorpusManifest,
                        sections: Mapping[str, str] | None = None,
                        shard_rows: int | None = None,
                        shard_bytes: int | None = None) -> BuildInfo:
    """Writes a built dataset: every producer's one way to do it.

    Rows stream into parquet shards in a staging folder beside ``out_dir``; then
    ``provenance`` makes the :class:`BuildInfo` (it sees what was written; the moments of the
    feature values the writer summed are added as its ``feature_stats`` unless it sets them),
    the card is rendered from it and the manifest, both are written, and the staging folder
    replaces ``out_dir`` whole. A failure at any point leaves ``out_dir`` as it was.

    Args:
        out_dir: The built dataset folder.
        features: The dataset's features (:func:`dataset_features`); rows use its column names.
        splits: ``(split, rows)`` pairs, each split once; rows are dicts keyed by column name,
            consumed lazily (feature columns: ``[T, dim]`` arrays, None for an empty one).
        provenance: Makes the provenance once the rows are written; its ``data_files`` and
            ``counts.splits`` must be what was written.
        manifest: The input corpus's manifest (name, license, taxonomy, description, citation
            for the card).
        sections: Card sections replaced by producers other than ``sdme build``
            (``sdme.card.SECTIONS``).
        shard_rows: Most rows per parquet shard (default :data:`DEFAULT_SHARD_ROWS`).
        shard_bytes: Most feature bytes per shard (default :data:`DEFAULT_SHARD_BYTES`).

    Returns:
        The provenance written.

    Raises:
        sdme.writer.WriteError: A row that does not fit the features, or a provenance that
            disagrees with what was written.
    """
    from sdme import card
    from sdme.writer import BuiltDatasetWriter, WriteError

    with BuiltDatasetWriter(out_dir, features, shard_rows=shard_rows or DEFAULT_SHARD_ROWS,
                            shard_bytes=shard_bytes or DEFAULT_SHARD_BYTES) as writer:
        for split, rows in splits:
            writer.write_split(split, rows)
        written = Written(counts=dict(writer.counts), data_files=dict(writer.data_files),
                          split_bytes=dict(writer.split_bytes), shard_rows=writer.shard_rows,
                          shard_bytes=writer.shard_bytes,
                          feature_stats=dict(writer.feature_stats))
        info = provenance(written)
        if info.feature_stats is None:
            info = dataclasses.replace(info, feature_stats=written.feature_stats)
        BuildInfo.from_dict(info.to_dict(), Path(out_dir) / BUILD_INFO_NAME)  # it must load
        if info.data_files != written.data_files or info.counts.splits != written.counts:
            raise WriteError(f"{out_dir}: the provenance's data_files or split counts differ "
                             "from what was written")
        text = card.render_card(manifest=manifest, features=features, build_info=info,
                                split_bytes=written.split_bytes, sections=sections)
        writer.commit(info.to_json(), text)
    return info


def utc_now() -> str:
    """The ``created`` time stamp of a :class:`BuildInfo`."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


__all__ = [
    "BUILD_INFO_NAME", "CARD_NAME", "CLIP_ID", "DATA_DIRNAME", "DEFAULT_SHARD_BYTES",
    "DEFAULT_SHARD_ROWS", "DEVIATION", "END", "FEAT", "LABEL", "LANGUAGE", "LENGTH",
    "OPTIONAL_COLUMNS", "RELEVANCE", "SCORE", "SPEAKER_ID", "START", "TEXT", "TEXT_TOKENS",
    "UNIMODAL_LABEL", "UNIMODAL_SCORE", "VIDEO_ID", "VOTES", "BuildInfo", "BuildInfoError",
    "ClipEvent", "Counts", "ExtractorRecord", "FeatureRecord", "FeatureStats",
    "Policy", "SourceRecord",
    "Written", "clip_row", "dataset_features", "utc_now", "write_built_dataset",
]
