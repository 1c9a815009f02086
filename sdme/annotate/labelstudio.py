"""Interop with Label Studio (https://labelstud.io, Apache-2.0) for teams that already use it.

**Export.** One Label Studio project per modality, since a labelling config shows one kind of
object: ``<out>/<modality>/config.xml`` (the taxonomy as ``<Choices>`` with hotkeys 1..9) and
``<out>/<modality>/tasks.json`` (``[{"data": {"clip_id", "modality", <object>}}]``). Audio and
video tasks point at the *isolated* files (``sdme.annotate.media``), through Label Studio's
local-files URLs (``/data/local-files/?d=<path>``, with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED
=true`` and ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` set to the media folder) or any other
``url_prefix``; text tasks carry the transcript itself. Label Studio cannot enforce "one modality
per clip per annotator" across projects: give each annotator one modality's project only.

**Import.** Label Studio's JSON export ("Label Studio JSON format of annotated tasks",
https://labelstud.io/guide/export.html): a list of tasks, each with ``data`` (ours carries
``clip_id`` and ``modality``) and ``annotations``, each annotation with ``id``, ``completed_by``
(a user id, or a user object in some exports), ``was_cancelled``, ``created_at`` and ``result``
regions whose ``value.choices`` holds the chosen label. Cancelled (skipped) annotations and
``predictions`` are ignored. Annotators become ``labelstudio:<user id>``; each vote is keyed by
task and annotation id, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from sdme.annotate import INSTRUCTIONS, AnnotateError
from sdme.annotate.project import Project
from sdme.annotate.store import ImportedVote
from sdme.fileio import atomic_write_text

SOURCE = "labelstudio"
LOCAL_FILES_PREFIX = "/data/local-files/?d="
CONTROL_NAME = "emotion"
_OBJECTS = {"text": ("Text", "text"), "audio": ("Audio", "audio"), "vision": ("Video", "video")}


def labelling_config(modality: str, taxonomy: Sequence[str]) -> str:
    """A Label Studio labelling config: the modality's object and one single choice."""
    tag, key = _OBJECTS[modality]
    choices = "\n".join(
        f"    <Choice value={quoteattr(name)}" + (f' hotkey="{i + 1}"' if i < 9 else "") + "/>"
        for i, name in enumerate(taxonomy))
    return (f"<View>\n  <Header value={quoteattr(INSTRUCTIONS[modality])}/>\n"
            f'  <{tag} name="{key}" value="${key}"/>\n'
            f'  <Choices name="{CONTROL_NAME}" toName="{key}" choice="single-radio" '
            f'showInline="true" required="true">\n{choices}\n  </Choices>\n</View>\n')


def export_labelstudio(project: Project, out_dir: str | Path,
                       url_prefix: str = LOCAL_FILES_PREFIX) -> dict[str, int]:
    """Writes a labelling config and tasks per modality; returns the task count per modality.

    Args:
        project: An opened project whose media are prepared.
        out_dir: Folder to write ``<modality>/config.xml`` and ``<modality>/tasks.json`` into.
        url_prefix: Put before each media file's path relative to the media folder (URL-quoted).
    """
    if project.media is None:
        raise AnnotateError(f"{project.raw_dir}: media not prepared (run `sdme annotate "
                            "prepare` first)")
    out = Path(out_dir)
    counts = {}
    for m in project.settings.modalities:
        tasks = []
        for clip in project.clips:
            path = project.media.path(clip.clip_id, m)
            if path is None:
                continue
            key = _OBJECTS[m][1]
            value = (project.media.read_text(clip.clip_id) or "").strip() if m == "text" else \
                url_prefix + quote(path.relative_to(project.media.root.resolve()).as_posix())
            tasks.append({"data": {"clip_id": clip.clip_id, "modality": m, key: value}})
        atomic_write_text(out / m / "config.xml", labelling_config(m, project.taxonomy))
        atomic_write_text(out / m / "tasks.json",
                          json.dumps(tasks, indent=1, ensure_ascii=False) + "\n")
        counts[m] = len(tasks)
    atomic_write_text(out / "README.txt", (
        "Label Studio projects for sdme annotate (one per modality).\n"
        "Create a project per folder: paste config.xml as its labelling interface, import "
        "tasks.json.\nMedia URLs start with "
        f"{url_prefix!r}; for local files start Label Studio with\n"
        "  LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true \\\n"
        f"  LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={project.media.root.resolve()} label-studio\n"
        "and add that folder as a 'Local files' source storage in each project's settings.\n"
        "Give each annotator ONE of these projects: an annotator must not see a clip in two "
        "modalities.\nBring the votes back with: sdme annotate labelstudio import "
        f"{project.raw_dir} EXPORT.json\n"))
    return counts


def _time(value: Any) -> float:
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return 0.0


def read_labelstudio_export(path: str | Path, taxonomy: Sequence[str]) -> list[ImportedVote]:
    """The votes in a Label Studio JSON export; raises AnnotateError naming file and task."""
    path = Path(path)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotateError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(tasks, list):
        raise AnnotateError(f"{path}: expected a list of tasks (Label Studio's 'JSON' export)")
    known = set(taxonomy)
    votes = []
    for n, task in enumerate(tasks):
        if not isinstance(task, dict) or "data" not in task:
            raise AnnotateError(f"{path}: task {n}: no 'data' (export as 'JSON', not "
                                "'JSON-MIN' or CSV)")
        where = f"{path}: task {task.get('id', n)}"
        data = task["data"] if isinstance(task["data"], dict) else {}
        clip_id, modality = data.get("clip_id"), data.get("modality")
        if not isinstance(clip_id, str) or modality not in _OBJECTS:
            raise AnnotateError(f"{where}: data needs 'clip_id' and 'modality' (tasks made by "
                                "`sdme annotate labelstudio export` have them)")
        for annotation in task.get("annotations") or ():
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            user = annotation.get("completed_by")
            if isinstance(user, dict):
                user = user.get("id", user.get("email"))
            if user is None or "id" not in annotation:
                raise AnnotateError(f"{where}: an annotation lacks 'id' or 'completed_by'")
            chosen = [c for r in annotation.get("result") or ()
                      if isinstance(r, dict) and r.get("type") == "choices"
                      and r.get("from_name", CONTROL_NAME) == CONTROL_NAME
                      for c in (r.get("value") or {}).get("choices") or ()]
            if not chosen:
                continue  # submitted without a choice: no vote
            if len(chosen) != 1:
                raise AnnotateError(f"{where}: annotation {annotation['id']} has "
                                    f"{len(chosen)} choices; one label per vote")
            if chosen[0] not in known:
                raise AnnotateError(f"{where}: label {chosen[0]!r} is not in the taxonomy "
                                    f"({', '.join(taxonomy)})")
            votes.append(ImportedVote(
                annotator=f"{SOURCE}:{user}", clip_id=clip_id, modality=modality,
                label=chosen[0],
                created_at=_time(annotation.get("created_at") or annotation.get("updated_at")),
                source_ref=f"{task.get('id', n)}:{annotation['id']}"))
    return votes


def import_labelstudio(project: Project, export_file: str | Path) -> dict[str, list[str]]:
    """Adds the votes of a Label Studio JSON export to the project (see ``Store.import_votes``)."""
    votes = read_labelstudio_export(export_file, project.taxonomy)
    try:
        return project.store.import_votes(SOURCE, votes)
    except AnnotateError as exc:
        raise AnnotateError(f"{export_file}: {exc}") from None


__all__ = ["LOCAL_FILES_PREFIX", "export_labelstudio", "import_labelstudio", "labelling_config",
           "read_labelstudio_export"]
