"""Typed records of the SDME raw format: the corpus manifest (``sdme.json``) and raw clips.

The raw layout a source delivers (see ``cards/`` and ``README.md``)::

    <raw>/
      sdme.json            corpus manifest (CorpusManifest)
      annotations.csv      one row per clip (RawClip)
      clips/<clip_id>.mp4  video with its audio track (or audio/<clip_id>.wav beside it)

Corpora annotated with continuous scores rather than votes (CH-SIMS: a multimodal sentiment score
and one per modality, annotated with the modality isolated) add the optional columns ``score``
and ``score_<m>`` (:data:`SCORE_COLUMNS`) and declare the scale in ``sdme.json``
(``annotation_protocol.score_scale``, a scale of ``sdme.scores``); ``label`` is then the score
discretised by that scale's rule, and the relevance fields follow from the scores
(``sdme.scores``).

Everything that reads or writes these files goes through this module, so the format has one
definition. Errors name the file (and the row) and the problem. What is refused, in one place:

- ``sdme.json`` (:meth:`CorpusManifest.from_dict`): JSON nested over
  ``sdme.safe_json.MAX_DEPTH`` or with an oversized integer; a field of the wrong type, named
  (``annotation_protocol`` may be an object or a plain string, taken as its ``description``); a
  listed file path that is absolute, not in POSIX form, or has an empty, ``.`` or ``..`` part
  (:func:`relpath_problem`). A listed path that resolves outside the corpus through a symbolic
  link is refused where it would be read (:func:`resolve_inside`), before it is read.
- ``annotations.csv`` (:func:`iter_annotations`, :func:`parse_annotation_row`): text that is not
  UTF-8 or that ``csv`` cannot read (a field over its size limit); a row with the wrong number of
  fields, an empty ``clip_id`` or one with a path separator; ``start``/``end`` that are not
  finite numbers, or a negative ``start``.
- One rule for an empty transcript (:func:`empty_transcript`): ``sdme build`` drops the clip
  (``empty_text``) and ``sdme validate`` warns that it will.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST_NAME = "sdme.json"
ANNOTATIONS_NAME = "annotations.csv"
CLIPS_DIR = "clips"
AUDIO_DIR = "audio"

MODALITIES: tuple[str, ...] = ("text", "audio", "vision")
DEFAULT_TAXONOMY: tuple[str, ...] = (
    "neutral",
    "happiness",
    "sadness",
    "anger",
    "surprise",
    "fear",
    "disgust",
)
SPLITS: tuple[str, ...] = ("train", "validation", "test")
VOTE_SEPARATOR = ";"
#: Per modality: the ``annotations.csv`` column (and built-dataset column) of its votes.
VOTES_COLUMNS: dict[str, str] = {m: f"votes_{m}" for m in MODALITIES}

#: Largest ``sdme.json`` read (a manifest listing a million files is about 150 MB).
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

REQUIRED_COLUMNS: tuple[str, ...] = (
    "clip_id",
    "video_id",
    "speaker_id",
    "start",
    "end",
    "text",
    "language",
    "label",
    *VOTES_COLUMNS.values(),
)
#: The continuous multimodal score and, per modality, the unimodal score (optional columns).
SCORE_COLUMN = "score"
UNIMODAL_SCORE_COLUMNS: dict[str, str] = {m: f"score_{m}" for m in MODALITIES}
SCORE_COLUMNS: tuple[str, ...] = (SCORE_COLUMN, *UNIMODAL_SCORE_COLUMNS.values())
OPTIONAL_COLUMNS: tuple[str, ...] = ("split", *SCORE_COLUMNS)


class FormatError(ValueError):
    """A raw-corpus file that does not follow the SDME format.

    The message always starts with the offending file (and row, where there is one).
    """

    def __init__(self, path: str | Path, problem: str, row: int | None = None) -> None:
        where = f"{path}" if row is None else f"{path}:{row}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.row = row
        self.problem = problem


@dataclass(frozen=True)
class FileEntry:
    """One file of a corpus with its size in bytes and sha256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class CorpusManifest:
    """The contents of ``sdme.json``.

    Attributes:
        name: Short corpus name (also the folder name under the data dir).
        version: Corpus version string.
        license: SPDX identifier or free text.
        taxonomy: Emotion categories, in ClassLabel order.
        annotation_protocol: How labels and unimodal votes were collected (free-form mapping,
            e.g. ``{"annotators_per_modality": 5, "description": "..."}``; in ``sdme.json`` a
            plain string is accepted and becomes ``{"description": <string>}``).
        files: Every file of the unpacked corpus except ``sdme.json`` itself.
        archives: Release archives (tar/zip) that unpack into some of ``files``.
        description: One paragraph about the corpus.
        citation: BibTeX or free text.
        extra: Anything else the corpus wants to record.
    """

    name: str
    version: str
    license: str
    taxonomy: tuple[str, ...] = DEFAULT_TAXONOMY
    annotation_protocol: dict[str, Any] = field(default_factory=dict)
    files: tuple[FileEntry, ...] = ()
    archives: tuple[FileEntry, ...] = ()
    description: str = ""
    citation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["taxonomy"] = list(self.taxonomy)
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path = MANIFEST_NAME) -> CorpusManifest:
        """The manifest from its JSON object, every field checked (module docstring).

        Raises:
            FormatError: Naming ``source`` and the field.
        """
        if not isinstance(data, dict):
            raise FormatError(source, "manifest must be a JSON object")
        missing = [k for k in ("name", "version", "license") if not data.get(k)]
        if missing:
            raise FormatError(source, f"missing required field(s): {', '.join(missing)}")
        for key in ("name", "version", "license", "description", "citation"):
            value = data.get(key)
            if value is not None and (not isinstance(value, (str, int, float))
                                      or isinstance(value, bool)):
                raise FormatError(source, f"field {key!r} must be a string, got "
                                  f"{type(value).__name__}")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise FormatError(source, f"unsupported format_version {version!r} "
                              f"(this toolkit reads {FORMAT_VERSION})")
        raw_taxonomy = data.get("taxonomy") or DEFAULT_TAXONOMY
        if not isinstance(raw_taxonomy, (list, tuple)):
            raise FormatError(source, "field 'taxonomy' must be a list of distinct non-empty "
                              f"names, got {type(raw_taxonomy).__name__}")
        taxonomy = tuple(raw_taxonomy)
        if len(set(map(str, taxonomy))) != len(taxonomy) or not all(isinstance(t, str) and t
                                                                    for t in taxonomy):
            raise FormatError(source, "taxonomy must be a list of distinct non-empty names")
        protocol = data.get("annotation_protocol") or {}
        if isinstance(protocol, str):
            protocol = {"description": protocol}
        if not isinstance(protocol, dict):
            raise FormatError(source, "field 'annotation_protocol' must be an object (or a string, "
                              f"its description), got {type(protocol).__name__}")
        extra = data.get("extra") or {}
        if not isinstance(extra, dict):
            raise FormatError(source, f"field 'extra' must be an object, got "
                              f"{type(extra).__name__}")

        def entries(key: str) -> tuple[FileEntry, ...]:
            items = data.get(key) or ()
            if not isinstance(items, (list, tuple)):
                raise FormatError(source, f"field {key!r} must be a list of objects with path, "
                                  f"size and sha256, got {type(items).__name__}")
            out = []
            for i, item in enumerate(items):
                if not isinstance(item, dict) or not {"path", "size", "sha256"} <= set(item):
                    raise FormatError(source, f"{key}[{i}] needs path, size and sha256")
                path, size, digest = item["path"], item["size"], item["sha256"]
                if not isinstance(path, str):
                    raise FormatError(source, f"{key}[{i}].path must be a string")
                problem = relpath_problem(path)
                if problem:
                    raise FormatError(source, f"{key}[{i}].path {path!r} {problem}")
                if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                    raise FormatError(source, f"{key}[{i}].size must be a non-negative integer, "
                                      f"got {size!r}"[:200])
                if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
                    raise FormatError(source, f"{key}[{i}].sha256 must be 64 hex digits")
                out.append(FileEntry(path=path, size=size, sha256=digest.lower()))
            return tuple(out)

        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            license=str(data["license"]),
            taxonomy=taxonomy,
            annotation_protocol=dict(protocol),
            files=entries("files"),
            archives=entries("archives"),
            description=str(data.get("description") or ""),
            citation=str(data.get("citation") or ""),
            extra=dict(extra),
            format_version=version,
        )

    @classmethod
    def load(cls, path: str | Path) -> CorpusManifest:
        """Reads ``sdme.json`` (a file, or a raw folder containing one).

        Raises:
            FormatError: Missing, not UTF-8, not acceptable JSON (``sdme.safe_json``), or not a
                valid manifest; the message names the file (and the field).
        """
        from sdme import safe_json

        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        try:
            data = safe_json.load(path, max_bytes=MAX_MANIFEST_BYTES)
        except FileNotFoundError as exc:
            raise FormatError(path, "manifest not found") from exc
        except safe_json.JSONInputError as exc:
            raise FormatError(path, f"not valid UTF-8 JSON ({exc.problem})") from None
        except OSError as exc:
            raise FormatError(path, f"cannot be read ({exc.strerror or exc})") from None
        return cls.from_dict(data, source=path)

    def fingerprint(self) -> str:
        """sha256 of the canonical manifest JSON: names this exact corpus release."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RawClip:
    """One row of ``annotations.csv``.

    Attributes:
        votes_text: Labels annotators gave from the transcript alone (empty: not annotated).
        votes_audio: Labels from the audio alone.
        votes_vision: Labels from the muted video alone.
        split: The corpus's own split, or None to let the build assign one.
        score: The continuous multimodal score (scored corpora), or None.
        score_text: The continuous score of the transcript alone, or None (``score_audio``,
            ``score_vision`` likewise).
    """

    clip_id: str
    video_id: str
    speaker_id: str
    start: float
    end: float
    text: str
    language: str
    label: str
    votes_text: tuple[str, ...] = ()
    votes_audio: tuple[str, ...] = ()
    votes_vision: tuple[str, ...] = ()
    split: str | None = None
    score: float | None = None
    score_text: float | None = None
    score_audio: float | None = None
    score_vision: float | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def votes(self, modality: str) -> tuple[str, ...]:
        return getattr(self, VOTES_COLUMNS[modality])

    def unimodal_score(self, modality: str) -> float | None:
        """The modality's own continuous score, or None."""
        return getattr(self, UNIMODAL_SCORE_COLUMNS[modality])

    @property
    def has_scores(self) -> bool:
        """Whether the clip carries any continuous score."""
        return any(getattr(self, c) is not None for c in SCORE_COLUMNS)

    def to_row(self) -> dict[str, str]:
        row = {
            "clip_id": self.clip_id,
            "video_id": self.video_id,
            "speaker_id": self.speaker_id,
            "start": f"{self.start:.3f}",
            "end": f"{self.end:.3f}",
            "text": self.text,
            "language": self.language,
            "label": self.label,
        }
        for m in MODALITIES:
            row[VOTES_COLUMNS[m]] = VOTE_SEPARATOR.join(self.votes(m))
        row["split"] = self.split or ""
        for column in SCORE_COLUMNS:
            value = getattr(self, column)
            row[column] = "" if value is None else repr(float(value))
        return row


def empty_transcript(clip: RawClip) -> bool:
    """The one rule for an empty transcript (nothing but whitespace): ``sdme build`` drops such
    a clip (reason ``empty_text``) and ``sdme validate`` warns that it will."""
    return not (clip.text or "").strip()


def relpath_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file of a corpus (None when it can): it must be relative, in
    POSIX form (``/`` separators, no backslash or NUL), with no empty, ``.`` or ``..`` part."""
    if not path:
        return "is empty"
    if "\\" in path or "\x00" in path:
        return "must use '/' separators (no backslash or NUL)"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "must be relative to the corpus folder, not absolute"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "must not have empty, '.' or '..' parts (it must stay inside the corpus)"
    return None


def resolve_inside(root: str | Path, relpath: str) -> Path:
    """``root / relpath``, once checked to resolve inside ``root`` (symbolic links followed);
    call it before reading a file a manifest or a clip id names.

    Raises:
        FormatError: The path is unsafe (:func:`relpath_problem`) or resolves outside ``root``.
    """
    problem = relpath_problem(relpath)
    path = Path(root) / relpath
    if problem:
        raise FormatError(path, f"path {relpath!r} {problem}")
    base = os.path.realpath(root)
    if os.path.commonpath([base, os.path.realpath(path)]) != base:
        raise FormatError(path, "resolves outside the corpus folder (a symbolic link?); "
                          "refused, not read")
    return path


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(root: str | Path, relpath: str) -> FileEntry:
    """A file's entry for ``sdme.json``; it must resolve inside ``root``
    (:func:`resolve_inside`)."""
    path = resolve_inside(root, relpath)
    return FileEntry(path=relpath, size=path.stat().st_size, sha256=sha256_file(path))


def parse_votes(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(VOTE_SEPARATOR) if v.strip())


def parse_annotation_row(row: dict[str, str], path: str | Path, line: int) -> RawClip:
    """Turns one CSV row into a RawClip; raises FormatError naming file and line."""
    if None in row or any(v is None for v in row.values()):
        raise FormatError(path, "malformed row (wrong number of fields)", line)
    clip_id = (row.get("clip_id") or "").strip()
    if not clip_id:
        raise FormatError(path, "empty clip_id", line)
    if "/" in clip_id or "\\" in clip_id or clip_id in (".", ".."):
        raise FormatError(path, f"clip_id {clip_id!r} must not contain path separators", line)
    try:
        start = float(row["start"])
        end = float(row["end"])
    except (TypeError, ValueError) as exc:
        raise FormatError(path, f"start/end must be numbers ({exc})", line) from exc
    if not (math.isfinite(start) and math.isfinite(end)):
        raise FormatError(path, f"start/end must be finite numbers of seconds, got start="
                          f"{row['start'].strip()!r}, end={row['end'].strip()!r}", line)
    if start < 0:
        raise FormatError(path, f"start ({start:g}) must not be negative", line)
    split = (row.get("split") or "").strip() or None
    scores = {column: _parse_score(row.get(column), column, path, line) for column in SCORE_COLUMNS}
    return RawClip(
        clip_id=clip_id,
        video_id=row["video_id"].strip(),
        speaker_id=row["speaker_id"].strip(),
        start=start,
        end=end,
        text=row["text"],
        language=row["language"].strip(),
        label=row["label"].strip(),
        votes_text=parse_votes(row["votes_text"]),
        votes_audio=parse_votes(row["votes_audio"]),
        votes_vision=parse_votes(row["votes_vision"]),
        split=split,
        **scores,
    )


def _parse_score(value: str | None, column: str, path: str | Path, line: int) -> float | None:
    """An optional score cell: empty is None; otherwise a finite number."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise FormatError(path, f"{column} {text!r} is not a number", line) from None
    if not math.isfinite(number):
        raise FormatError(path, f"{column} {text!r} is not a finite number", line)
    return number


def _decode_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FormatError(path, f"not valid UTF-8 (byte {exc.start})", line) from exc


def iter_annotations(path: str | Path) -> Iterable[tuple[int, dict[str, str] | FormatError]]:
    """Yields ``(line, row)`` for each data row, or ``(line, FormatError)`` for a bad one.

    Used by validation, which reports every problem instead of stopping at the first.
    Raises FormatError for problems that make the whole file unreadable (encoding, header).
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "annotations file not found")
    text = _decode_utf8(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:  # e.g. a field over csv's size limit
        raise FormatError(path, f"unreadable CSV header ({exc})", 1) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FormatError(path, f"missing column(s): {', '.join(missing)}", 1)
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FormatError(path, f"unreadable CSV ({exc})", reader.line_num + 1) from None
        line = reader.line_num
        if None in row or any(v is None for v in row.values()):
            yield line, FormatError(path, "malformed row (wrong number of fields)", line)
        else:
            yield line, row


def read_annotations(path: str | Path) -> list[RawClip]:
    """Reads ``annotations.csv`` strictly: the first problem raises FormatError."""
    clips = []
    for line, row in iter_annotations(path):
        if isinstance(row, FormatError):
            raise row
        clips.append(parse_annotation_row(row, path, line))
    return clips


def write_annotations(path: str | Path, clips: Sequence[RawClip]) -> None:
    """Writes ``annotations.csv``: the required columns and ``split``, plus the score columns
    when any clip has a score."""
    columns = list(REQUIRED_COLUMNS) + ["split"]
    if any(c.has_scores for c in clips):
        columns += list(SCORE_COLUMNS)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n",
                                extrasaction="ignore")
        writer.writeheader()
        for clip in clips:
            writer.writerow(clip.to_row())


def clip_media_path(raw_dir: str | Path, clip_id: str) -> Path:
    """Path of a clip's video file."""
    return Path(raw_dir) / CLIPS_DIR / f"{clip_id}.mp4"


def clip_audio_path(raw_dir: str | Path, clip_id: str) -> Path:
    """Where a clip's audio lives: ``audio/<id>.wav`` if present, else the mp4's audio track."""
    wav = Path(raw_dir) / AUDIO_DIR / f"{clip_id}.wav"
    return wav if wav.exists() else clip_media_path(raw_dir, clip_id)


def list_corpus_files(raw_dir: str | Path) -> list[str]:
    """Relative paths of a corpus's files: everything but sdme.json and hidden paths, sorted."""
    root = Path(raw_dir)
    return sorted(
        rel.as_posix()
        for rel in (p.relative_to(root) for p in root.rglob("*") if p.is_file())
        if rel.as_posix() != MANIFEST_NAME and not any(part.startswith(".") for part in rel.parts)
    )


def make_manifest_files(raw_dir: str | Path) -> tuple[FileEntry, ...]:
    """Every corpus file (see list_corpus_files) with its size and sha256."""
    return tuple(file_entry(raw_dir, rel) for rel in list_corpus_files(raw_dir))
