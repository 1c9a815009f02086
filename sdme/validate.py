"""Validation of a raw SDME corpus (``sdme validate <raw dir>``).

Every problem is reported, one line each, naming the file (and CSV line) — validation does not stop
at the first. Checked: the manifest (``sdme.schema``: field types, safe relative paths); each
listed file's presence, size and sha256, and that it resolves inside the corpus (a symbolic link
leaving it is refused, not read; so are ``sdme.json``, ``annotations.csv`` and each clip's media);
the annotations' encoding, header and rows (malformed rows, duplicate ``clip_id``, labels and
votes outside the taxonomy, ``start``/``end`` not finite or a negative ``start``, ``end <=
start``); each clip's media (present, the video decodes, the audio stream decodes); for a scored
corpus (``annotation_protocol.score_scale`` in ``sdme.json``, see ``sdme.scores``): a score on
every clip, inside the scale, ``label`` equal to the score's discretised class, and unimodal
scores and votes never mixed in one corpus.

Errors make the corpus invalid. Warnings do not, and say what ``sdme build`` will do, by the
same rules: a clip without an audio stream (built with its audio missing), an empty transcript
(``sdme.schema.empty_transcript``: the clip is dropped), ``end - start`` longer than the clip
file lasts by more than :data:`DURATION_SLACK` seconds and :data:`DURATION_RATIO` times, a file
not listed in ``sdme.json``. A clean corpus gets a summary: clips, speakers, videos, label and
deviation distributions, deviation per class, and per-modality Fleiss' kappa of the unimodal
votes.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sdme.fileio import check_files
from sdme.relevance import agreement_by_modality
from sdme.schema import (
    ANNOTATIONS_NAME,
    AUDIO_DIR,
    CLIPS_DIR,
    MANIFEST_NAME,
    MODALITIES,
    SCORE_COLUMN,
    SCORE_COLUMNS,
    SPLITS,
    VOTES_COLUMNS,
    CorpusManifest,
    FormatError,
    RawClip,
    empty_transcript,
    iter_annotations,
    list_corpus_files,
    parse_annotation_row,
    resolve_inside,
)
from sdme.scores import SCALE_KEY, ScoreScale, clip_relevance, discretise, manifest_scale

#: ``end - start`` may exceed the clip file's duration by this many seconds ...
DURATION_SLACK = 1.0
#: ... or this factor, whichever is larger, before validation warns.
DURATION_RATIO = 1.5


@dataclass(frozen=True)
class Problem:
    """One validation finding; ``str()`` gives the one-line report."""

    path: str
    message: str
    line: int | None = None
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{self.severity}: {where}: {self.message}"


@dataclass
class RawReport:
    """What validation found, plus a summary of a readable corpus."""

    raw_dir: Path
    problems: list[Problem] = field(default_factory=list)
    manifest: CorpusManifest | None = None
    clips: list[RawClip] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def summary(self) -> dict[str, object]:
        taxonomy = self.manifest.taxonomy if self.manifest else ()
        try:
            scale = manifest_scale(self.manifest) if self.manifest else None
        except ValueError:
            scale = None
        relevance = [clip_relevance(c, taxonomy, scale) for c in self.clips]
        deviation = Counter("n/a" if r.deviation is None else r.deviation for r in relevance)
        per_class: dict[str, dict[object, int]] = {}
        for clip, rel in zip(self.clips, relevance, strict=True):
            key = "n/a" if rel.deviation is None else rel.deviation
            per_class.setdefault(clip.label, Counter())[key] += 1
        return {
            "corpus": f"{self.manifest.name} {self.manifest.version}" if self.manifest else "?",
            "clips": len(self.clips),
            "speakers": len({c.speaker_id for c in self.clips}),
            "videos": len({c.video_id for c in self.clips}),
            "labels": dict(Counter(c.label for c in self.clips).most_common()),
            "deviation": dict(sorted(deviation.items(), key=lambda kv: str(kv[0]))),
            "deviation_per_class": {k: dict(sorted(v.items(), key=lambda kv: str(kv[0])))
                                    for k, v in sorted(per_class.items())},
            "fleiss_kappa": agreement_by_modality(self.clips, taxonomy),
        }


@dataclass
class MediaReport:
    """What probing a clip's media found.

    Attributes:
        errors: The media cannot be used (``sdme build`` drops the clip: ``decode_failed``).
        warnings: Valid data with a modality missing (``sdme build`` keeps the clip).
        duration: Seconds the clip file lasts (its video, else its audio), None if unknown.
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration: float | None = None


MediaProbe = Callable[[Path, Path], MediaReport]


def probe_media(video: Path, audio: Path) -> MediaReport:
    """Probes a clip's media: the video must decode a frame; the audio stream, when there is one,
    must open (no stream at all is a warning: the build keeps the clip with audio missing)."""
    from sdme.media.audio import is_missing_stream

    report = MediaReport()
    try:
        import decord

        reader = decord.VideoReader(str(video), num_threads=1)
        if len(reader) == 0:
            report.errors.append("video has no frames")
        else:
            reader[0].asnumpy()
            fps = float(reader.get_avg_fps())
            if fps > 0:
                report.duration = len(reader) / fps
    except Exception as exc:  # decord raises its own DECORDError and RuntimeError
        report.errors.append(f"video does not decode ({type(exc).__name__}: {str(exc)[:120]})")
    if report.errors and audio == video:
        return report  # an undecodable container has no usable audio either: say it once
    try:
        from torchcodec.decoders import AudioDecoder

        decoder = AudioDecoder(str(audio))  # raises when there is no audio stream
        if report.duration is None and decoder.metadata.duration_seconds:
            report.duration = float(decoder.metadata.duration_seconds)
    except Exception as exc:
        if is_missing_stream(exc):
            report.warnings.append("no audio track: `sdme build` keeps the clip with its audio "
                                   "missing")
        else:
            detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            report.errors.append(f"no decodable audio track ({detail})")
    return report


def _media_paths(raw_dir: Path, clip_id: str) -> tuple[Path, Path]:
    """The clip's video and audio paths, each checked to resolve inside the corpus.

    Raises:
        FormatError: One of them resolves outside it.
    """
    video = resolve_inside(raw_dir, f"{CLIPS_DIR}/{clip_id}.mp4")
    wav = f"{AUDIO_DIR}/{clip_id}.wav"
    if os.path.lexists(raw_dir / wav):
        return video, resolve_inside(raw_dir, wav)
    return video, video


def validate_raw(raw_dir: str | Path, *, check_media: bool = True,
                 probe: MediaProbe = probe_media) -> RawReport:
    """Checks a raw corpus folder and returns every problem found."""
    raw_dir = Path(raw_dir)
    report = RawReport(raw_dir=raw_dir)
    add = report.problems.append
    if not raw_dir.is_dir():
        add(Problem(str(raw_dir), "not a folder"))
        return report
    try:
        manifest = CorpusManifest.load(resolve_inside(raw_dir, MANIFEST_NAME))
    except FormatError as exc:
        add(Problem(exc.path, exc.problem, exc.row))
        return report
    report.manifest = manifest
    try:
        scale = manifest_scale(manifest)
    except ValueError as exc:
        add(Problem(str(raw_dir / MANIFEST_NAME), f"annotation_protocol.{SCALE_KEY}: {exc}"))
        scale = None

    for message in check_files(raw_dir, manifest.files):
        path, _, what = message.partition(": ")
        add(Problem(path, what))
    listed = {e.path for e in manifest.files}
    for entry in list_corpus_files(raw_dir):
        if entry not in listed:
            add(Problem(str(raw_dir / entry), "not listed in sdme.json", severity="warning"))

    annotations = raw_dir / ANNOTATIONS_NAME
    try:
        rows = list(iter_annotations(resolve_inside(raw_dir, ANNOTATIONS_NAME)))
    except FormatError as exc:
        add(Problem(exc.path, exc.problem, exc.row))
        return report

    seen: dict[str, int] = {}
    for line, row in rows:
        if isinstance(row, FormatError):
            add(Problem(row.path, row.problem, row.row))
            continue
        try:
            clip = parse_annotation_row(row, annotations, line)
        except FormatError as exc:
            add(Problem(exc.path, exc.problem, exc.row))
            continue
        where = str(annotations)
        bad = False
        if clip.clip_id in seen:
            add(Problem(where, f"duplicate clip_id {clip.clip_id!r} "
                        f"(first on line {seen[clip.clip_id]})", line))
            continue
        seen[clip.clip_id] = line
        for message in annotation_problems(clip, manifest.taxonomy, scale):
            add(Problem(where, message, line))
            bad = True
        if empty_transcript(clip):
            add(Problem(where, f"clip {clip.clip_id!r} has an empty transcript: `sdme build` "
                        "drops it (empty_text)", line, severity="warning"))
        try:
            video, audio = _media_paths(raw_dir, clip.clip_id)
        except FormatError as exc:
            add(Problem(exc.path, f"{exc.problem} (clip {clip.clip_id!r}, line {line})"))
            continue
        if not video.is_file():
            add(Problem(str(video), f"clip file missing (clip {clip.clip_id!r}, line {line})"))
            bad = True
        elif check_media:
            media = probe(video, audio)
            for message in media.errors:
                add(Problem(str(video), message))
                bad = True
            for message in media.warnings:
                add(Problem(str(video), message, severity="warning"))
            span = clip.end - clip.start
            if media.duration and span > max(media.duration + DURATION_SLACK,
                                             media.duration * DURATION_RATIO):
                add(Problem(where, f"end - start = {span:g} s, but the clip file "
                            f"{video.name} lasts {media.duration:.2f} s", line,
                            severity="warning"))
        if not bad:
            report.clips.append(clip)
    if not seen and not any(p.severity == "error" for p in report.problems):
        add(Problem(str(annotations), "no clips"))
    mixed = mixed_relevance_problem(report.clips)
    if mixed:
        add(Problem(str(annotations), mixed))
    return report


def annotation_problems(clip: RawClip, taxonomy: Sequence[str],
                        scale: ScoreScale | None) -> list[str]:
    """What is wrong with one row of ``annotations.csv`` beyond its format (media aside): label
    and votes outside the taxonomy, ``end <= start``, an unknown split, and the scores of a
    scored corpus. One message each; used by :func:`validate_raw` and by the sources that read
    SDME annotations without media (``sdme import features``)."""
    known = set(taxonomy)
    problems = []
    if clip.label not in known:
        problems.append(f"label {clip.label!r} not in taxonomy {list(taxonomy)}")
    for m in MODALITIES:
        outside = sorted(set(clip.votes(m)) - known)
        if outside:
            problems.append(f"{VOTES_COLUMNS[m]} has label(s) outside the taxonomy: "
                            f"{', '.join(outside)}")
    problems += _score_problems(clip, scale, known)
    if clip.end <= clip.start:
        problems.append(f"end ({clip.end}) <= start ({clip.start})")
    if clip.split is not None and clip.split not in SPLITS:
        problems.append(f"split {clip.split!r} is not train, validation or test")
    return problems


def mixed_relevance_problem(clips: Sequence[RawClip]) -> str | None:
    """The problem of a corpus with both unimodal scores and votes (relevance must come from
    one of them, ``sdme.scores.clip_relevance``), or None."""
    voted = [m for m in MODALITIES if any(c.votes(m) for c in clips)]
    scored = [m for m in MODALITIES if any(c.unimodal_score(m) is not None for c in clips)]
    if voted and scored:
        return (f"unimodal scores ({', '.join(scored)}) and votes ({', '.join(voted)}) in one "
                "corpus: relevance must come from one of them")
    return None


def _score_problems(clip: RawClip, scale: ScoreScale | None, taxonomy: set[str]) -> list[str]:
    """What is wrong with a clip's continuous scores (``sdme.scores``), one message each."""
    if scale is None:
        if clip.has_scores:
            return [f"clip {clip.clip_id!r} has scores but {MANIFEST_NAME} declares no "
                    f"annotation_protocol.{SCALE_KEY}"]
        return []
    if clip.score is None:
        return [f"the corpus declares the score scale {scale.name!r}: clip {clip.clip_id!r} "
                f"needs a {SCORE_COLUMN}"]
    problems = []
    for column in SCORE_COLUMNS:
        value = getattr(clip, column)
        if value is not None and not scale.low <= value <= scale.high:
            problems.append(f"{column} {value:g} is outside the {scale.name} scale "
                            f"[{scale.low:g}, {scale.high:g}]")
    want = discretise(clip.score, scale)
    if want not in taxonomy:
        problems.append(f"the {scale.name} rule gives {want!r}, which is not in the taxonomy")
    elif clip.label != want:
        problems.append(f"label {clip.label!r} does not follow from {SCORE_COLUMN} "
                        f"{clip.score:g} by the {scale.name} rule ({scale.rule}): it gives "
                        f"{want!r}")
    return problems


__all__ = ["DURATION_RATIO", "DURATION_SLACK", "MediaReport", "Problem", "RawReport",
           "annotation_problems", "mixed_relevance_problem",
           "probe_media", "validate_raw"]
