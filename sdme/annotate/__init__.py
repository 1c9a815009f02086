"""``sdme annotate``: collect per-modality votes in the browser, with modality isolation on files.

SDME defines a clip's relevance annotations from unimodal votes: labels given by annotators who
saw the transcript only, heard the audio only, or watched the video with no sound (see
``sdme.relevance``). This package is the tool that collects them:

- ``media``       — isolated media made once per corpus: the video with its audio stream removed
  from the file (remuxed, not re-encoded, when the codec plays in browsers), the audio alone,
  the transcript alone; kept in the hidden folder ``<raw>/.annotate/`` so the corpus manifest
  never lists it.
- ``store``       — SQLite storage (WAL, ``synchronous=FULL``: an acknowledged vote survives a
  crash) of annotators, items, assignments and votes, and the assignment rules: k votes per
  (clip, modality); an annotator who has seen a clip in one modality never gets it in another
  (a primary key, not a convention); optional repeated items to measure self-consistency.
- ``project``     — opens a corpus for annotation (manifest, clips, media, store, settings).
- ``dashboard``   — progress, per-modality Fleiss' kappa and per-annotator agreement, computed
  with ``sdme.relevance`` (the project's one kappa and majority rule).
- ``app`` / ``server`` — the web app (FastAPI on Starlette, served by uvicorn on loopback).
- ``export``      — votes into ``annotations.csv`` and the manifest, atomically, with a backup
  and a per-vote side file (``annotation_votes.csv``) for Dawid-Skene-style models.
- ``labelstudio`` — interop with Label Studio: labelling configs and tasks pointing at the
  isolated media, and import of Label Studio's JSON export.
- ``cli``         — the ``sdme annotate`` click group (imports the heavy parts lazily).

Importing this package is cheap (no FastAPI, no PyAV).
"""

from __future__ import annotations

WORK_DIR = ".annotate"
"""Hidden folder inside the raw corpus that holds the database, media and backups."""

VOTES_FILE = "annotation_votes.csv"
"""Per-vote side file written by export: who voted what, when (listed in ``sdme.json``)."""

INSTRUCTIONS = {
    "text": "Read the transcript. Which emotion do the words express?",
    "audio": "Listen to the voice. Which emotion does it express?",
    "vision": "Watch the face (there is no sound). Which emotion does it express?",
}
"""What an annotator is asked, per modality (the web page and Label Studio configs)."""


class AnnotateError(Exception):
    """A problem the user can fix; the message names the file or setting and the problem."""


__all__ = ["INSTRUCTIONS", "VOTES_FILE", "WORK_DIR", "AnnotateError"]
