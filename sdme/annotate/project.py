"""An annotation project: a raw corpus opened for vote collection.

Everything lives in the corpus's hidden folder ``<raw>/.annotate/`` (see ``sdme.annotate``):
``annotate.sqlite3`` (the store), ``media/`` (isolated media), ``owner.token`` (the dashboard
credential, mode 0600), ``backups/`` (files replaced by export) and a ``.gitignore`` so a corpus
kept in git does not commit them. The corpus files themselves are only read here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sdme import paths
from sdme.annotate import WORK_DIR, AnnotateError
from sdme.annotate.media import PreparedMedia, load_prepared, prepare_media
from sdme.annotate.store import AnnotateSettings, Store
from sdme.schema import (
    ANNOTATIONS_NAME,
    MANIFEST_NAME,
    CorpusManifest,
    FormatError,
    RawClip,
    read_annotations,
)

DB_NAME = "annotate.sqlite3"
OWNER_TOKEN = "owner.token"
OWNER_NAME = "owner"
DEFAULT_URL = "http://127.0.0.1:8765"


@dataclass
class Project:
    """A corpus opened for annotation."""

    raw_dir: Path
    manifest: CorpusManifest
    clips: list[RawClip]
    store: Store
    media: PreparedMedia | None

    @property
    def taxonomy(self) -> tuple[str, ...]:
        return self.manifest.taxonomy

    @property
    def work_dir(self) -> Path:
        return self.raw_dir / WORK_DIR

    @property
    def settings(self) -> AnnotateSettings:
        return self.store.settings()

    @property
    def url(self) -> str:
        """Base URL for links (the last ``serve``'s, else the default)."""
        return self.store.get_meta("url") or DEFAULT_URL

    def link(self, token: str) -> str:
        return f"{self.url.rstrip('/')}/login?token={token}"

    def owner_token(self) -> str:
        """The dashboard token (made on first use, kept in ``owner.token`` readable by you only)."""
        path = self.work_dir / OWNER_TOKEN
        if path.is_file():
            token = path.read_text(encoding="utf-8").strip()
            if self.store.authenticate(token) is not None:
                return token
        token = self.store.add_person(OWNER_NAME, role="owner", rotate=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        return token

    def items_available(self) -> list[tuple[str, str, str]]:
        """``(clip_id, modality, clip_label)`` for every modality whose isolated file exists."""
        if self.media is None:
            return []
        modalities = self.settings.modalities
        return [(c.clip_id, m, c.label) for c in self.clips for m in modalities
                if self.media.path(c.clip_id, m) is not None]


def resolve_corpus(raw: str | os.PathLike, data_dir: str | None = None) -> Path:
    """A raw corpus folder given as a path, or by name in the data folder."""
    given = Path(raw).expanduser()
    if (given / MANIFEST_NAME).is_file():
        return given
    named = paths.raw_dir(str(raw), data_dir)
    if not given.exists() and (named / MANIFEST_NAME).is_file():
        return named
    raise AnnotateError(f"{given}: no raw corpus here (a folder with {MANIFEST_NAME} and "
                        f"{ANNOTATIONS_NAME}, or a corpus name in {paths.data_dir(data_dir)})")


def open_project(raw_dir: str | os.PathLike, *, prepare: bool = False, force: bool = False,
                 workers: int = 2, progress: Callable[[int, int], None] | None = None,
                 create: bool = True, **settings: object) -> Project:
    """Opens (and on first use creates) the annotation project of a raw corpus.

    Args:
        raw_dir: The raw corpus folder.
        prepare: Make or update the isolated media (see ``sdme.annotate.media``), then sync the
            items to annotate.
        force: Redo every clip's media.
        workers: ffmpeg processes at once when preparing.
        progress: ``(done, total)`` callback while preparing.
        create: False to fail when the corpus has no project yet.
        **settings: ``AnnotateSettings`` fields to change (None: keep); they are stored.

    Raises:
        AnnotateError: unreadable corpus files (named), bad settings, or a taxonomy that changed
            after votes were collected.
    """
    raw = Path(raw_dir)
    try:
        manifest = CorpusManifest.load(raw)
        clips = read_annotations(raw / ANNOTATIONS_NAME)
    except FormatError as exc:
        raise AnnotateError(str(exc)) from None
    work = raw / WORK_DIR
    if not create and not (work / DB_NAME).is_file():
        raise AnnotateError(f"{raw}: no annotation project yet (run `sdme annotate serve` or "
                            "`sdme annotate prepare` first)")
    work.mkdir(exist_ok=True)
    ignore = work / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# sdme annotate: database, isolated media, backups\n*\n",
                          encoding="utf-8")
    store = Store(work / DB_NAME)
    stored_taxonomy = store.get_meta("taxonomy")
    taxonomy = "\n".join(manifest.taxonomy)
    if stored_taxonomy is not None and stored_taxonomy != taxonomy and store.votes():
        raise AnnotateError(f"{raw / MANIFEST_NAME}: the taxonomy changed since votes were "
                            f"collected (was: {stored_taxonomy.replace(chr(10), ', ')}); "
                            "restore it or start a new project")
    store.set_meta("taxonomy", taxonomy)
    if any(v is not None for v in settings.values()) or store.get_meta("settings") is None:
        store.save_settings(store.settings(**settings))
    media = (prepare_media(raw, clips, force=force, workers=workers, progress=progress)
             if prepare else load_prepared(raw))
    project = Project(raw_dir=raw, manifest=manifest, clips=clips, store=store, media=media)
    if media is not None:
        store.sync_items(project.items_available())
    return project


__all__ = ["DB_NAME", "Project", "open_project", "resolve_corpus"]
