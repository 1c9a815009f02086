"""The ``folder`` source: register a user's own raw corpus that lives elsewhere on disk.

Nothing is copied: the corpus folder under the data dir becomes a symbolic link to the user's
folder, which must already follow the SDME raw layout (``sdme.json`` + ``annotations.csv``, see
``sdme/schema.py``). ``write_manifest`` writes the ``sdme.json`` such a folder needs, listing every
file with its size and sha256 (what ``sdme manifest DIR --name NAME`` runs). The raw source
``folder``: ``sdme download folder --path DIR [--name NAME]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdme.fileio import atomic_write_text
from sdme.schema import (
    ANNOTATIONS_NAME,
    DEFAULT_TAXONOMY,
    MANIFEST_NAME,
    CorpusManifest,
    make_manifest_files,
)
from sdme.sources import SourceCard, register_source


@dataclass(frozen=True)
class FolderOptions:
    """Options of ``sdme download folder``."""

    path: Path = field(metadata={
        "help": "Your raw corpus folder (with sdme.json and annotations.csv).",
        "exists": True, "path": "dir"})


@contextmanager
def fixture(workdir: Path) -> Iterator[dict[str, Any]]:
    """A user's raw corpus made of some of the sample's clips, in the SDME raw layout."""
    from sdme.sources.sample import write_subset

    yield {"path": write_subset(Path(workdir) / "my_corpus")}


def _dataset_name(options: Mapping[str, Any]) -> str:
    """The folder's name."""
    return Path(options["path"]).expanduser().resolve().name


CARD = SourceCard(
    title="Your own raw corpus",
    summary="Register a raw corpus that lives elsewhere (linked, not copied).",
    homepage="(the corpus's own page)",
    license="The corpus's own, as its sdme.json declares it.",
    obtain="Record or collect it yourself, lay it out as an SDME raw corpus (sdme.json, "
           "annotations.csv, clips/) and write its sdme.json with `sdme manifest DIR --name "
           "NAME`.",
    citation="The corpus's own, as its sdme.json declares it.")


@register_source("folder", kind="raw", options=FolderOptions, card=CARD, fixture=fixture,
                 dataset_name=_dataset_name)
def download(target: Path, path: str | os.PathLike, *, progress: bool = False) -> Path:
    """Makes ``target`` a symbolic link to the raw corpus folder ``path``.

    Args:
        target: Where the corpus is expected (``<data_dir>/raw/<name>``).
        path: The user's raw corpus folder, holding ``sdme.json`` and ``annotations.csv``.
        progress: Unused (nothing is copied).

    Returns:
        ``target``.

    Raises:
        FileNotFoundError: ``path`` is not a folder or lacks ``sdme.json`` / ``annotations.csv``.
        sdme.schema.FormatError: ``sdme.json`` is not a valid manifest.
        FileExistsError: ``target`` is a real folder or file (not a link); it is never replaced.
    """
    source = Path(path).expanduser().resolve()
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: not a folder; pass the folder of your raw corpus")
    missing = [n for n in (MANIFEST_NAME, ANNOTATIONS_NAME) if not (source / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{source}: missing {' and '.join(missing)}; an SDME raw corpus folder needs both "
            f"(write {MANIFEST_NAME} with `sdme manifest {source} --name NAME` once "
            "annotations.csv and the clips are in place)")
    CorpusManifest.load(source)  # a malformed manifest fails here, naming the file

    target = Path(target)
    if target.exists() and not target.is_symlink():
        if target.resolve() == source:
            return target  # the corpus already lives at the target
        raise FileExistsError(
            f"{target}: a real folder (not a link) is already there; refusing to replace it. "
            "Remove it or register the corpus under another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    link = target.with_name(f".{target.name}.link.tmp")
    link.unlink(missing_ok=True)
    link.symlink_to(source, target_is_directory=True)
    os.replace(link, target)  # replaces an old link atomically
    return target


def write_manifest(
    raw_dir: str | os.PathLike,
    name: str,
    version: str = "0.1.0",
    license: str = "unknown",
    taxonomy: Sequence[str] | None = None,
) -> Path:
    """Writes ``<raw_dir>/sdme.json`` listing every file of the corpus with size and sha256.

    An existing ``sdme.json`` is replaced (atomically). Hidden files and ``.cache`` folders are
    not listed (see ``sdme.schema.make_manifest_files``).

    Args:
        raw_dir: The raw corpus folder; it must hold ``annotations.csv``.
        name: Short corpus name.
        version: Corpus version string.
        license: SPDX identifier or free text.
        taxonomy: Emotion categories in label order; ``sdme.schema.DEFAULT_TAXONOMY`` if None.

    Returns:
        The path of the written ``sdme.json``.

    Raises:
        FileNotFoundError: ``raw_dir`` is not a folder or has no ``annotations.csv``.
        sdme.schema.FormatError: The name, version, license or taxonomy are invalid.
    """
    root = Path(raw_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    if not (root / ANNOTATIONS_NAME).is_file():
        raise FileNotFoundError(f"{root / ANNOTATIONS_NAME}: not found; write the annotations "
                                "before the manifest")
    manifest = CorpusManifest(
        name=name,
        version=version,
        license=license,
        taxonomy=tuple(taxonomy) if taxonomy is not None else DEFAULT_TAXONOMY,
        files=make_manifest_files(root),
    )
    out = root / MANIFEST_NAME
    text = manifest.to_json()
    CorpusManifest.from_dict(json.loads(text), source=out)  # same checks as load
    atomic_write_text(out, text)
    return out
