"""The ``hub`` source: download an SDME raw release from a Hugging Face Hub *dataset* repo.

A release repo holds ``sdme.json`` (``sdme.schema.CorpusManifest``), the release archives it lists
under ``archives`` (tar or zip, unpacking into files listed under ``files``), and every listed file
that no archive carries. ``download``:

1. resolves ``revision`` (branch, tag or commit; the default branch if None) to a commit sha and
   fetches everything at that sha, so a branch that moves meanwhile cannot mix two releases;
2. assembles the corpus in a staging folder ``<target>.partial``. Each transfer is written to
   ``.cache/sdme-download/incomplete/<path>.incomplete`` there and kept when interrupted, so
   running the same command again resumes it with an HTTP ``Range`` request. A staging folder
   left by another repo or commit is discarded;
3. fetches ``sdme.json`` first, then checks every file against it (size and sha256): an archive
   before it is unpacked (safely, ``sdme.archive``, into a scratch folder), the unpacked members
   and the loose files as they arrive. A bad file is deleted from staging and named in the error;
4. only when everything verifies, swaps staging into ``target`` (``sdme.fileio.swap_in_dir``) with
   ``.sdme-source.json`` recording repo, requested revision, commit sha and endpoint (a hidden
   file, so it is not part of the manifest). The archives themselves are not kept. An earlier
   ``target`` is deleted only when it holds nothing but the release this source installed,
   unchanged; one holding anything else (files added or changed since, such as ``sdme
   annotate``'s ``.annotate/`` or an exported ``annotations.csv``) is moved aside to
   ``<name>.old-<UTC time>`` (``sdme.fileio.move_aside``), never deleted.

huggingface_hub (>= 2.4) resolves the revision (``HfApi.dataset_info``), builds the file URLs
(``hf_hub_url``), reads each file's metadata (``get_hf_file_metadata``: a ``HEAD`` giving
``X-Repo-Commit``, ``ETag`` and the size), provides the HTTP session and token headers and maps
HTTP errors. The byte transfer is done here because ``hf_hub_download`` 2.4 writes to a
process-unique temporary file that it deletes when the transfer fails (huggingface_hub PR #4228),
so an interrupted download could not resume in a later run. Files are fetched over plain HTTP(S)
from the ``resolve`` URL (Xet-backed files are served through its redirect too). The endpoint is
``endpoint``, else ``HF_ENDPOINT``, else https://huggingface.co.

The raw source ``hub``: ``sdme download hub --repo ORG/NAME [--revision REV] [--name NAME]
[--token TOKEN] [--endpoint URL]``. Its offline fixture publishes some of the sample's clips
(the clips in a tar archive) on a loopback fake Hub (``sdme.sources._fakehub``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import httpx2
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status
from huggingface_hub.utils import tqdm as hf_tqdm

from sdme.archive import extract_archive
from sdme.fileio import atomic_write_text, check_files, move_aside, swap_in_dir
from sdme.schema import (
    CLIPS_DIR,
    MANIFEST_NAME,
    CorpusManifest,
    FileEntry,
    FormatError,
    file_entry,
    relpath_problem,
    sha256_file,
)
from sdme.sources import SourceCard, SourceError, register_source

logger = logging.getLogger(__name__)

SOURCE_RECORD = ".sdme-source.json"
WORK_DIR = ".cache/sdme-download"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-")


class HubDownloadError(SourceError):
    """A hub download that could not complete; the message names the file and what to do."""


@dataclass(frozen=True)
class _Remote:
    repo: str
    commit: str
    endpoint: str | None
    token: str | None
    staging: Path
    revision: str | None

    def errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _hub_errors(what, self.staging, self.repo, self.revision, self.endpoint)

    def url(self, path: str) -> str:
        return hf_hub_url(self.repo, path, repo_type="dataset", revision=self.commit,
                          endpoint=self.endpoint)

    @property
    def where(self) -> str:
        return f"{self.repo}@{self.commit[:12]}"


def _resume_hint(staging: Path) -> str:
    return (f"What was already transferred is kept in {staging}; run the same command again "
            "to resume the download.")


@contextlib.contextmanager
def _hub_errors(what: str, staging: Path, repo: str, revision: str | None,
                endpoint: str | None) -> Iterator[None]:
    """Turns huggingface_hub / HTTP errors into HubDownloadError with a clear message."""
    hub = endpoint or constants.ENDPOINT
    try:
        yield
    except (httpx2.TransportError, OfflineModeIsEnabled) as exc:
        raise HubDownloadError(f"{what}: network error ({type(exc).__name__}: {exc}). "
                               f"{_resume_hint(staging)}") from exc
    except GatedRepoError as exc:
        raise HubDownloadError(f"dataset repo {repo!r} is gated: accept its conditions on the Hub "
                               "and pass a token (or log in with `hf auth login`)") from exc
    except RepositoryNotFoundError as exc:
        raise HubDownloadError(f"dataset repo {repo!r} not found on {hub} (check the name; a "
                               "private repo needs a token)") from exc
    except RevisionNotFoundError as exc:
        raise HubDownloadError(f"revision {revision!r} not found in dataset repo {repo!r} on "
                               f"{hub}") from exc
    except RemoteEntryNotFoundError as exc:
        hint = (" (an SDME release has sdme.json at the root of the repo)"
                if what == MANIFEST_NAME else "")
        raise HubDownloadError(f"{what}: not found in dataset repo {repo!r} at revision "
                               f"{revision or '(default branch)'}{hint}") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status is not None and (status >= 500 or status in (408, 429)):
            raise HubDownloadError(f"{what}: the Hub answered HTTP {status}. "
                                   f"{_resume_hint(staging)}") from exc
        raise HubDownloadError(f"{what}: {hub} answered HTTP {status}: {exc}") from exc


def _safe_relpath(path: str) -> bool:
    """A path of the corpus (``sdme.schema.relpath_problem``) that is not one of ours."""
    return (relpath_problem(path) is None and PurePosixPath(path).parts[0] != ".cache"
            and path not in (MANIFEST_NAME, SOURCE_RECORD))


def _check_manifest_paths(manifest: CorpusManifest, source: Path) -> None:
    for entry in (*manifest.files, *manifest.archives):
        if not _safe_relpath(entry.path):
            raise FormatError(source, f"unsafe or reserved file path {entry.path!r}")


def _entry_problem(path: Path, entry: FileEntry) -> str | None:
    size = path.stat().st_size
    if size != entry.size:
        return f"size {size} != {entry.size} in {MANIFEST_NAME}"
    if sha256_file(path) != entry.sha256:
        return f"sha256 differs from {MANIFEST_NAME}"
    return None


def _transfer(remote: _Remote, path: str, partial: Path, size: int | None) -> None:
    """Downloads ``path`` into ``partial``, resuming from the bytes already there."""
    have = partial.stat().st_size if partial.is_file() else 0
    if size is not None and have > size:
        partial.unlink()
        have = 0
    if size is not None and have == size:
        return
    headers = build_hf_headers(token=remote.token)
    headers["Accept-Encoding"] = "identity"
    if have:
        headers["Range"] = f"bytes={have}-"
        logger.info("resuming %s from byte %d", path, have)
    partial.parent.mkdir(parents=True, exist_ok=True)
    with get_session().stream("GET", remote.url(path), headers=headers, follow_redirects=True,
                              timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT) as response:
        if have and response.status_code == 416:
            partial.unlink()
            raise HubDownloadError(f"{path}: the server refused to resume from byte {have}; "
                                   f"the partial file was deleted. {_resume_hint(remote.staging)}")
        hf_raise_for_status(response)
        mode = "wb"
        if have and response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != have:
                partial.unlink()
                raise HubDownloadError(
                    f"{path}: the server resumed at the wrong offset "
                    f"({response.headers.get('Content-Range')!r} for byte {have}); the partial "
                    f"file was deleted. {_resume_hint(remote.staging)}")
            mode = "ab"
        with open(partial, mode) as fh, hf_tqdm(
            total=size, initial=have if mode == "ab" else 0, unit="B", unit_scale=True,
            desc=path, name="huggingface_hub.http_get", leave=False,
        ) as bar:
            for chunk in response.iter_bytes():  # as received: an interruption loses nothing
                fh.write(chunk)
                bar.update(len(chunk))
    got = partial.stat().st_size
    if size is not None and got != size:
        raise HubDownloadError(f"{path}: transfer ended after {got} of {size} bytes. "
                               f"{_resume_hint(remote.staging)}")


def _fetch(remote: _Remote, path: str, entry: FileEntry | None, dest: Path) -> None:
    """Makes ``dest`` hold the repo file ``path``, checked against ``entry`` when given.

    A file already at ``dest`` that matches ``entry`` (from an earlier attempt) is kept.
    """
    staging = remote.staging
    if dest.is_file():
        if entry is None or _entry_problem(dest, entry) is None:
            return
        dest.unlink()
    partial = staging / WORK_DIR / "incomplete" / f"{path}.incomplete"
    with remote.errors(path):
        meta = get_hf_file_metadata(remote.url(path), token=remote.token,
                                    endpoint=remote.endpoint)
        if meta.commit_hash != remote.commit:
            raise HubDownloadError(f"{path}: the server answered for commit {meta.commit_hash}, "
                                   f"not the requested {remote.commit}")
        if entry is not None and meta.size is not None and meta.size != entry.size:
            raise HubDownloadError(f"{path}: {remote.where} serves {meta.size} bytes but "
                                   f"{MANIFEST_NAME} lists {entry.size}; the release is "
                                   "inconsistent, refusing it")
        _transfer(remote, path, partial, meta.size)
    if entry is not None:
        problem = _entry_problem(partial, entry)
        if problem is not None:
            partial.unlink()
            raise HubDownloadError(f"{path}: downloaded from {remote.where}, but its {problem}: "
                                   f"the release on the Hub does not match its {MANIFEST_NAME}. "
                                   "The bad file was deleted and nothing was installed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, dest)


def _delete_bad(root: Path, entries: Sequence[FileEntry]) -> list[str]:
    """Checks ``entries`` under ``root``; deletes each bad file and returns one message per file."""
    problems = []
    for entry in entries:
        found = check_files(root, [entry])
        if found:
            (root / entry.path).unlink(missing_ok=True)
            problems.extend(found)
    return problems


def _unpack(remote: _Remote, manifest: CorpusManifest) -> tuple[dict[str, Path], set[str]]:
    """Fetches, checks and unpacks every archive.

    Returns:
        Each unpacked member with the marker file recording its archive as unpacked, and the
        members checked in this call (the others were unpacked and checked by an earlier one).
    """
    staging, work = remote.staging, remote.staging / WORK_DIR
    listed = {entry.path: entry for entry in manifest.files}
    produced: dict[str, Path] = {}
    checked: set[str] = set()
    for archive in manifest.archives:
        marker = work / "unpacked" / f"{archive.path}.json"
        if marker.is_file():
            done = json.loads(marker.read_text(encoding="utf-8"))
            if done.get("sha256") == archive.sha256:
                produced.update(dict.fromkeys(done["members"], marker))
                continue
        archive_file = work / "archives" / archive.path
        _fetch(remote, archive.path, archive, archive_file)
        scratch = work / "unpack"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            try:
                members = extract_archive(archive_file, scratch)
            except ValueError:
                archive_file.unlink()
                raise
            unlisted = [m for m in members if m not in listed]
            if unlisted:
                archive_file.unlink()
                raise HubDownloadError(f"{archive.path}: member {unlisted[0]!r} is not listed in "
                                       f"{MANIFEST_NAME} files; refusing the archive")
            for member in members:
                out = staging / member
                out.parent.mkdir(parents=True, exist_ok=True)
                if out.is_dir() and not out.is_symlink():
                    shutil.rmtree(out)
                os.replace(scratch / member, out)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        problems = _delete_bad(staging, [listed[m] for m in members])
        if problems:
            raise HubDownloadError(f"{archive.path} unpacked into files that do not match "
                                   f"{MANIFEST_NAME} (deleted): " + "; ".join(problems))
        produced.update(dict.fromkeys(members, marker))
        checked.update(members)
        atomic_write_text(marker, json.dumps({"sha256": archive.sha256, "members": members}))
        archive_file.unlink()
    return produced, checked


def _prepare_staging(staging: Path, record: dict[str, Any]) -> None:
    """Keeps staging from an earlier attempt at the same repo and commit; else starts anew."""
    if staging.is_symlink() or staging.is_file():
        staging.unlink()
    elif staging.is_dir():
        try:
            old = json.loads((staging / SOURCE_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if (old.get("repo"), old.get("commit")) == (record["repo"], record["commit"]):
            logger.info("resuming the download in %s", staging)
            return
        logger.info("discarding %s (another repo or commit)", staging)
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    atomic_write_text(staging / SOURCE_RECORD, json.dumps(record, indent=2) + "\n")


def _up_to_date(target: Path, record: dict[str, Any]) -> bool:
    """Whether ``target`` already holds this repo and commit, every file verified."""
    try:
        old = json.loads((target / SOURCE_RECORD).read_text(encoding="utf-8"))
        manifest = CorpusManifest.load(target)
    except (OSError, ValueError):
        return False
    if (old.get("repo"), old.get("commit")) != (record["repo"], record["commit"]):
        return False
    return not check_files(target, manifest.files)


def _only_ours(target: Path) -> bool:
    """Whether ``target`` holds nothing but a release this source installed, unchanged (so
    replacing it deletes nothing a user put there)."""
    try:
        record = json.loads((target / SOURCE_RECORD).read_text(encoding="utf-8"))
        manifest = CorpusManifest.load(target)
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or \
            record.get("manifest_fingerprint") != manifest.fingerprint():
        return False
    ours = {e.path for e in manifest.files} | {MANIFEST_NAME, SOURCE_RECORD}
    for path in target.rglob("*"):
        if (path.is_symlink() or not path.is_dir()) and \
                path.relative_to(target).as_posix() not in ours:
            return False
    return not check_files(target, manifest.files)


@dataclass(frozen=True)
class HubOptions:
    """Options of ``sdme download hub``."""

    repo: str = field(metadata={"help": "Hugging Face dataset repo, ORG/NAME."})
    revision: str | None = field(default=None, metadata={
        "help": "Branch, tag or commit (pinned to its commit)."})
    token: str | None = field(default=None, metadata={
        "help": "Hub token for private repos.", "envvar": "HF_TOKEN", "secret": True})
    endpoint: str | None = field(default=None, metadata={
        "help": "Hub endpoint (default: huggingface_hub's)."})


FIXTURE_REPO = "sdme-fixture/sample-subset"


@contextlib.contextmanager
def fixture(workdir: Path) -> Iterator[dict[str, Any]]:
    """A release of some of the sample's clips (the clips in ``clips.tar.gz``), served by a
    loopback fake Hub for the duration of the block."""
    from sdme.sources._fakehub import serve_fake_hub
    from sdme.sources.sample import write_subset

    release = write_subset(Path(workdir) / "release", name="sample-subset")
    with tarfile.open(release / "clips.tar.gz", "w:gz") as tar:
        tar.add(release / CLIPS_DIR, arcname=CLIPS_DIR)
    shutil.rmtree(release / CLIPS_DIR)
    manifest = CorpusManifest.load(release)
    manifest = replace(manifest, archives=(file_entry(release, "clips.tar.gz"),))
    (release / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    with serve_fake_hub(Path(workdir) / "hf-home") as hub:
        hub.add_dataset(FIXTURE_REPO, release)
        yield {"repo": FIXTURE_REPO, "endpoint": hub.url}


def _dataset_name(options: Mapping[str, Any]) -> str:
    """The repo's NAME."""
    return str(options["repo"]).rsplit("/", 1)[-1]


CARD = SourceCard(
    title="An SDME raw release on the Hugging Face Hub",
    summary="An SDME raw release from a Hugging Face dataset repo (verified, resumable).",
    homepage="https://huggingface.co/datasets (the release's dataset repo)",
    license="The release's own, as its sdme.json declares it.",
    obtain="Publish or find a dataset repo holding sdme.json, its archives and files; gated "
           "or private repos need a token (--token or HF_TOKEN).",
    citation="The release's own, as its sdme.json declares it.")


@register_source("hub", kind="raw", options=HubOptions, card=CARD, fixture=fixture,
                 dataset_name=_dataset_name)
def download(
    target: Path,
    repo: str,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    *,
    progress: bool = False,
) -> Path:
    """Downloads an SDME raw release from the Hugging Face Hub dataset repo ``repo``.

    Args:
        target: The raw corpus folder to deliver (``<data_dir>/raw/<name>``). It is replaced
            only once the whole release has been downloaded and verified.
        repo: The dataset repo id, ``namespace/name``.
        revision: Branch, tag or commit; the repo's default branch if None. It is resolved to a
            commit sha first and everything is fetched at that sha.
        token: A Hub token for private or gated repos (default: huggingface_hub's own lookup).
        endpoint: The Hub endpoint (default: ``HF_ENDPOINT`` or https://huggingface.co).
        progress: Unused (huggingface_hub shows its own transfer bars).

    Returns:
        ``target``.

    Raises:
        HubDownloadError: The repo, revision or a file cannot be found, a file differs from
            ``sdme.json``, or the network failed (the message says to run again to resume).
        sdme.archive.UnsafeArchiveError: A release archive has a member that would escape.
        sdme.schema.FormatError: The repo's ``sdme.json`` is not a valid manifest.
    """
    target = Path(target)
    staging = target.with_name(f"{target.name}.partial")
    endpoint = endpoint.rstrip("/") if endpoint else None
    with _hub_errors(repo, staging, repo, revision, endpoint):
        info = HfApi(endpoint=endpoint, token=token).dataset_info(repo, revision=revision)
    if not info.sha:
        raise HubDownloadError(f"dataset repo {repo!r}: the Hub did not report a commit sha")
    record: dict[str, Any] = {
        "source": "hub",
        "repo": repo,
        "revision": revision,
        "commit": info.sha,
        "endpoint": endpoint or constants.ENDPOINT,
    }
    if _up_to_date(target, record):
        logger.info("%s already holds %s at %s", target, repo, info.sha)
        return target
    _prepare_staging(staging, record)
    remote = _Remote(repo=repo, commit=info.sha, endpoint=endpoint, token=token, staging=staging,
                     revision=revision)

    manifest_path = staging / MANIFEST_NAME
    _fetch(remote, MANIFEST_NAME, None, manifest_path)
    try:
        manifest = CorpusManifest.load(manifest_path)
        _check_manifest_paths(manifest, manifest_path)
    except FormatError:
        manifest_path.unlink()
        raise

    produced, checked = _unpack(remote, manifest)
    for entry in manifest.files:
        if entry.path not in produced:
            _fetch(remote, entry.path, entry, staging / entry.path)
            checked.add(entry.path)
    unchecked = [e for e in manifest.files if e.path not in checked]
    problems = _delete_bad(staging, unchecked)
    if problems:
        for entry in unchecked:  # unpack again, next time, the archives of deleted members
            if entry.path in produced and not (staging / entry.path).exists():
                produced[entry.path].unlink(missing_ok=True)
        raise HubDownloadError("files do not match sdme.json (deleted; run again to fetch them "
                               "anew): " + "; ".join(problems))

    shutil.rmtree(staging / WORK_DIR, ignore_errors=True)
    cache = staging / ".cache"
    if cache.is_dir() and not any(cache.iterdir()):
        cache.rmdir()
    record["manifest_fingerprint"] = manifest.fingerprint()
    atomic_write_text(staging / SOURCE_RECORD, json.dumps(record, indent=2) + "\n")
    if os.path.lexists(target) and not (target.is_dir() and not target.is_symlink()
                                        and not any(target.iterdir())) \
            and not _only_ours(target):
        aside = move_aside(target)
        logger.warning("%s held files this download did not put there: moved aside to %s",
                       target, aside)
    swap_in_dir(staging, target)
    return target
