"""Safe file placement: nothing half-written ever replaces a good file or folder.

Writers put data in a temporary sibling and move it into place with ``os.replace`` (atomic on
one filesystem); folders are assembled in a staging sibling and swapped in whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sdme.schema import FileEntry, FormatError, resolve_inside, sha256_file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mkstemp_beside(path: Path) -> tuple[int, str]:
    """A temp file next to ``path`` with ordinary permissions (mkstemp alone makes it 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write to; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def swap_in_dir(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Moves a fully prepared ``staging`` folder to ``target``, replacing any old one."""
    staging, target = Path(staging), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    if old.exists():
        shutil.rmtree(old)


def move_aside(path: str | os.PathLike) -> Path:
    """Renames ``path`` (a file, folder or link) to a free sibling ``<name>.old-<UTC time>``,
    so that it can be replaced without deleting anything; returns the new path."""
    from datetime import UTC, datetime

    path = Path(path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.old-{stamp}")
    n = 1
    while os.path.lexists(aside):
        n += 1
        aside = path.with_name(f"{path.name}.old-{stamp}-{n}")
    os.replace(path, aside)
    return aside


def check_files(root: str | os.PathLike, entries: Sequence[FileEntry]) -> list[str]:
    """One message per listed file that is missing, differs in size or sha256, or resolves
    outside ``root`` (an unsafe path, or a symbolic link leaving it: refused, never read)."""
    root = Path(root)
    problems = []
    for entry in entries:
        try:
            path = resolve_inside(root, entry.path)
        except FormatError as exc:
            problems.append(str(exc))
            continue
        if not path.is_file():
            problems.append(f"{path}: listed in sdme.json but missing")
            continue
        size = path.stat().st_size
        if size != entry.size:
            problems.append(f"{path}: size {size} != {entry.size} in sdme.json")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{path}: sha256 differs from sdme.json")
    return problems
