"""Collected votes into the corpus: ``votes_<m>`` of ``annotations.csv``, a side file, the manifest.

For every modality the project collects, ``votes_<m>`` of each clip becomes the labels of the
votes stored for that (clip, modality), in the order they were given; repeats (self-consistency
checks) are left out, skips are not votes. Every other column and row of ``annotations.csv``
is kept as it was (extra columns too). ``annotation_votes.csv`` (``sdme.annotate.VOTES_FILE``)
gets one row per vote, repeats included, with a pseudonymous annotator id, when the item was
served and answered, and where the vote came from: what Dawid-Skene-style models of annotator
reliability (Dawid & Skene, 1979, "Maximum likelihood estimation of observer error-rates using
the EM algorithm") need. ``sdme.json`` gets the new sizes and sha256 of both files and a line on
how the votes were collected.

The three files are first copied to ``<raw>/.annotate/backups/<UTC time>/``, then each is
replaced atomically (``sdme.fileio``): the side file, the annotations, and the manifest last.
If the run is cut between two replacements, ``sdme validate`` names the file whose checksum no
longer matches and running the export again completes it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sdme import __version__
from sdme.annotate import VOTES_FILE, AnnotateError
from sdme.annotate.project import open_project
from sdme.annotate.store import VoteRecord
from sdme.fileio import atomic_write_text
from sdme.schema import (
    ANNOTATIONS_NAME,
    MANIFEST_NAME,
    VOTE_SEPARATOR,
    CorpusManifest,
    FileEntry,
    file_entry,
)

VOTES_COLUMNS = ("clip_id", "modality", "annotator", "label", "repeat", "served_at",
                 "answered_at", "response_ms", "source")
BACKUPS_DIR = "backups"


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote.

    Attributes:
        votes: Votes written per modality (repeats excluded).
        clips_with_votes: Clips with at least one vote, per modality.
        backup: Folder holding the three files as they were before.
        left_out: Votes on clips no longer in ``annotations.csv``.
    """

    annotations: Path
    votes_file: Path
    manifest: Path
    backup: Path
    votes: dict[str, int]
    clips_with_votes: dict[str, int]
    left_out: int

    def summary(self) -> str:
        counts = ", ".join(f"{m} {self.votes[m]} votes on {self.clips_with_votes[m]} clips"
                           for m in self.votes)
        extra = f"; {self.left_out} vote(s) on clips no longer in the corpus left out" \
            if self.left_out else ""
        return (f"wrote {self.annotations} ({counts}){extra}, {self.votes_file.name} and "
                f"{self.manifest.name}; previous files kept in {self.backup}")


def _iso(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00",
                                                                                      "Z")


def votes_table(votes: list[VoteRecord]) -> str:
    """The side file's CSV text: one row per vote (repeats too), pseudonymous annotator ids."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(VOTES_COLUMNS)
    for v in votes:
        response = "" if v.served_at is None else round(1000 * (v.created_at - v.served_at))
        writer.writerow([v.clip_id, v.modality, f"a{v.annotator_id:03d}", v.label,
                         int(v.repeat), _iso(v.served_at), _iso(v.created_at), response,
                         v.source])
    return out.getvalue()


def _backup(raw: Path, work: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = work / BACKUPS_DIR / stamp
    n = 1
    while target.exists():
        n += 1
        target = work / BACKUPS_DIR / f"{stamp}-{n}"
    target.mkdir(parents=True)
    for name in (ANNOTATIONS_NAME, MANIFEST_NAME, VOTES_FILE):
        if (raw / name).is_file():
            shutil.copy2(raw / name, target / name)
    return target


def export_votes(raw_dir: str | Path) -> ExportReport:
    """Writes the collected votes into the corpus (see the module docstring).

    Raises:
        AnnotateError: no project or no votes yet, or unreadable corpus files (named).
    """
    project = open_project(raw_dir, create=False)
    raw, settings = project.raw_dir, project.settings
    votes = project.store.votes()
    if not votes:
        raise AnnotateError(f"{raw}: no votes collected yet; nothing exported "
                            f"({ANNOTATIONS_NAME} left as it is)")
    by_item: dict[tuple[str, str], list[str]] = defaultdict(list)
    for v in votes:
        if not v.repeat:
            by_item[(v.clip_id, v.modality)].append(v.label)

    path = raw / ANNOTATIONS_NAME
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    rows = list(reader)
    clip_ids = set()
    counts = {m: 0 for m in settings.modalities}
    clips_with = {m: 0 for m in settings.modalities}
    for row in rows:
        clip_ids.add(row["clip_id"].strip())
        for m in settings.modalities:
            labels = by_item.get((row["clip_id"].strip(), m), [])
            row[f"votes_{m}"] = VOTE_SEPARATOR.join(labels)
            counts[m] += len(labels)
            clips_with[m] += bool(labels)
    left_out = sum(len(labels) for (clip, _), labels in by_item.items() if clip not in clip_ids)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)

    people = {v.annotator_id for v in votes if not v.repeat}
    protocol = dict(project.manifest.annotation_protocol)
    protocol["annotators_per_modality"] = settings.votes_per_item
    protocol["unimodal_votes"] = (
        f"collected with sdme annotate (sdme {__version__}): each clip's "
        f"{', '.join(settings.modalities)} shown on its own to up to {settings.votes_per_item} "
        "annotators (transcript only; a file holding only the audio stream; a file holding "
        "only the video stream, no sound), an annotator seeing each clip in one modality only; "
        f"{len(people)} annotators, {sum(counts.values())} votes; one row per vote in "
        f"{VOTES_FILE}")

    backup = _backup(raw, project.work_dir)
    atomic_write_text(raw / VOTES_FILE, votes_table(votes))
    atomic_write_text(path, out.getvalue())
    entries = {e.path: e for e in project.manifest.files}
    for name in (ANNOTATIONS_NAME, VOTES_FILE):
        entries[name] = file_entry(raw, name)
    files: tuple[FileEntry, ...] = tuple(entries.values())
    manifest = replace(project.manifest, files=files, annotation_protocol=protocol)
    manifest_text = manifest.to_json()
    CorpusManifest.from_dict(json.loads(manifest_text), source=raw / MANIFEST_NAME)
    atomic_write_text(raw / MANIFEST_NAME, manifest_text)
    return ExportReport(annotations=path, votes_file=raw / VOTES_FILE,
                        manifest=raw / MANIFEST_NAME, backup=backup, votes=counts,
                        clips_with_votes=clips_with, left_out=left_out)


__all__ = ["VOTES_COLUMNS", "ExportReport", "export_votes", "votes_table"]
