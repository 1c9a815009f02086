"""Safe extraction of release archives (tar, tar.gz/bz2/xz, zip).

Every member is checked before anything is written: absolute paths, ``..`` escapes, links that
point outside the destination, and device files or FIFOs are refused with an error naming the
archive and the member. Tar archives are then extracted with the standard library's ``'data'``
filter (PEP 706), which repeats the path checks and drops unsafe permission bits, so a member that
slips past one layer is still stopped by the other.

Sources: PEP 706 (https://peps.python.org/pep-0706/), the ``tarfile`` extraction-filter and
``zipfile`` documentation of Python 3.11+, and lhotse's ``safe_extract`` (Apache-2.0; read, not
copied) for the idea of refusing a whole archive before writing any member.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath


class UnsafeArchiveError(ValueError):
    """An archive member that would be written outside the destination or is not a plain file.

    The message starts with the archive and the member.
    """

    def __init__(self, archive: str | Path, member: str, problem: str) -> None:
        super().__init__(f"{archive}: member {member!r} {problem}; refusing to extract")
        self.archive = str(archive)
        self.member = member
        self.problem = problem


def _member_path(archive: Path, name: str) -> PurePosixPath:
    """The member's normalised relative path, or UnsafeArchiveError if it could escape."""
    if "\\" in name:
        raise UnsafeArchiveError(archive, name, "contains a backslash")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise UnsafeArchiveError(archive, name, "has an absolute path")
    if ".." in path.parts:
        raise UnsafeArchiveError(archive, name, "escapes the destination with '..'")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise UnsafeArchiveError(archive, name, "has an empty path")
    return PurePosixPath(*parts)


def _inside(dest: Path, candidate: Path) -> bool:
    return candidate == dest or dest in candidate.parents


def _check_link(archive: Path, dest: Path, name: str, link_dir: Path, target: str) -> None:
    """Refuses a link whose target (relative to ``link_dir``) resolves outside ``dest``."""
    if not target or PurePosixPath(target).is_absolute() or "\\" in target:
        raise UnsafeArchiveError(archive, name, f"is a link to an absolute path ({target!r})")
    resolved = Path(os.path.normpath(link_dir / target))
    if not _inside(dest, resolved):
        raise UnsafeArchiveError(archive, name, f"is a link pointing outside ({target!r})")


def _check_tar(archive: Path, tar: tarfile.TarFile, dest: Path) -> list[str]:
    names = []
    links: set[PurePosixPath] = set()
    for member in tar.getmembers():
        rel = _member_path(archive, member.name)
        if any(parent in links for parent in rel.parents):
            raise UnsafeArchiveError(archive, member.name, "lies under a linked folder")
        if member.isdev() or member.isfifo():
            raise UnsafeArchiveError(archive, member.name, "is a device file or FIFO")
        if member.issym():
            _check_link(archive, dest, member.name, (dest / rel).parent, member.linkname)
            links.add(rel)
        elif member.islnk():
            # Hard-link targets are relative to the archive root.
            _check_link(archive, dest, member.name, dest, member.linkname)
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(archive, member.name, "is not a file, folder or link")
        if not member.isdir():
            names.append(rel.as_posix())
    return names


def _check_zip(archive: Path, zf: zipfile.ZipFile, dest: Path) -> list[str]:
    names = []
    for info in zf.infolist():
        rel = _member_path(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            target = zf.read(info).decode("utf-8", "replace")
            _check_link(archive, dest, info.filename, (dest / rel).parent, target)
            raise UnsafeArchiveError(archive, info.filename,
                                     "is a symbolic link (not supported in zip archives)")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise UnsafeArchiveError(archive, info.filename, "is a device file or FIFO")
        if not info.is_dir():
            names.append(rel.as_posix())
    return names


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> list[str]:
    """Extracts a tar (plain or compressed) or zip archive into ``dest``, refusing unsafe members.

    All members are checked before the first one is written, so a refused archive leaves
    ``dest`` as it was.

    Args:
        archive: The archive file; its format is detected from its contents, not its name.
        dest: The folder to extract into (created if missing).

    Returns:
        The relative POSIX paths of the extracted non-folder members (files and links), in
        archive order.

    Raises:
        UnsafeArchiveError: A member has an absolute path, escapes with ``..``, is a link
            pointing outside ``dest``, or is a device file.
        ValueError: The file is neither a tar nor a zip archive, or is corrupt.
    """
    archive = Path(archive)
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                names = _check_zip(archive, zf, dest)
                for info in zf.infolist():
                    rel = _member_path(archive, info.filename)
                    out = dest / rel
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"{archive}: corrupt zip archive ({exc})") from exc
        return names
    try:
        with tarfile.open(archive) as tar:
            names = _check_tar(archive, tar, dest)
            try:
                tar.extractall(dest, filter="data")
            except tarfile.FilterError as exc:
                member = exc.tarinfo.name if exc.tarinfo is not None else "?"
                raise UnsafeArchiveError(archive, member, str(exc)) from exc
    except tarfile.ReadError as exc:
        raise ValueError(f"{archive}: not a tar or zip archive, or corrupt ({exc})") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise ValueError(f"{archive}: corrupt tar archive ({exc})") from exc
    return names
