"""`sdme download hub` against a loopback fake Hub, and safe archive extraction.

The release each test publishes is a tiny raw corpus: sdme.json, annotations.csv, two clips in
clips/, and audio/ shipped as a tar.gz listed under the manifest's archives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import random
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from sdme.archive import UnsafeArchiveError, extract_archive
from sdme.fileio import check_files
from sdme.schema import (
    CorpusManifest,
    FileEntry,
    FormatError,
    RawClip,
    file_entry,
    make_manifest_files,
    write_annotations,
)
from sdme.sources import get_source
from sdme.sources._fakehub import serve_fake_hub
from sdme.sources.hub import SOURCE_RECORD, WORK_DIR, HubDownloadError, download

REPO = "sdme-test/tiny"


@pytest.fixture
def hub(tmp_path):
    with serve_fake_hub(tmp_path / "hf-home") as server:
        yield server


def _flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def make_release(root: Path, tamper: str | None = None, seed: int = 0) -> Path:
    """Writes a release folder (what the Hub repo holds) under ``root``; returns it.

    Args:
        tamper: A path whose published bytes differ from what sdme.json lists:
            ``clips/c1.mp4`` (a loose file), ``audio.tar.gz`` (the archive) or ``audio/c1.wav``
            (a member inside an archive whose own checksum is right).
        seed: Changes the contents, to publish a different commit.
    """
    rng = random.Random(seed)
    corpus, release = root / "corpus", root / "release"
    for folder in ("clips", "audio"):
        (corpus / folder).mkdir(parents=True)
    write_annotations(corpus / "annotations.csv", [
        RawClip("c1", "v1", "s1", 0.0, 1.5, "fine", "en", "neutral", ("neutral",), (), ()),
        RawClip("c2", "v1", "s2", 1.5, 3.0, "no!", "en", "anger", ("anger",), ("anger",), ()),
    ])
    (corpus / "clips" / "c1.mp4").write_bytes(rng.randbytes(3000))
    (corpus / "clips" / "c2.mp4").write_bytes(rng.randbytes(40_000))
    (corpus / "audio" / "c1.wav").write_bytes(rng.randbytes(2000))
    (corpus / "audio" / "c2.wav").write_bytes(rng.randbytes(2500))
    files = make_manifest_files(corpus)
    if tamper == "audio/c1.wav":
        _flip_byte(corpus / "audio" / "c1.wav")

    release.mkdir()
    shutil.copy(corpus / "annotations.csv", release)
    shutil.copytree(corpus / "clips", release / "clips")
    with tarfile.open(release / "audio.tar.gz", "w:gz") as tar:
        tar.add(corpus / "audio", arcname="audio")
    manifest = CorpusManifest(name="tiny", version="1.0.0", license="CC-BY-4.0", files=files,
                              archives=(file_entry(release, "audio.tar.gz"),))
    (release / "sdme.json").write_text(manifest.to_json(), encoding="utf-8")
    if tamper in ("clips/c1.mp4", "audio.tar.gz"):
        _flip_byte(release / tamper)
    return release


def test_hub_source_is_registered():
    assert get_source("hub").deliver is download


def test_full_download_verifies_and_records_commit(hub, tmp_path):
    release = make_release(tmp_path / "r")
    sha = hub.add_dataset(REPO, release)
    target = tmp_path / "data" / "raw" / "tiny"

    assert download(target, REPO, endpoint=hub.url) == target

    manifest = CorpusManifest.load(target)
    assert check_files(target, manifest.files) == []
    assert {e.path for e in manifest.files} == {"annotations.csv", "clips/c1.mp4",
                                               "clips/c2.mp4", "audio/c1.wav", "audio/c2.wav"}
    record = json.loads((target / SOURCE_RECORD).read_text())
    assert record["repo"] == REPO and record["commit"] == sha and record["revision"] is None
    assert record["endpoint"] == hub.url
    # Only the corpus is delivered: no archive, no work folder, no staging left behind.
    delivered = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert delivered == {e.path for e in manifest.files} | {"sdme.json", SOURCE_RECORD}
    assert not target.with_name("tiny.partial").exists()
    # Every file was fetched at the resolved commit, never at a branch name.
    resolves = [r.path for r in hub.requests if "/resolve/" in r.path]
    assert resolves and all(f"/resolve/{sha}/" in p for p in resolves)

    # Running it again finds the verified corpus in place and transfers nothing.
    seen = len(hub.requests)
    download(target, REPO, endpoint=hub.url)
    assert [r.path for r in hub.requests[seen:]] == [f"/api/datasets/{REPO}"]


def test_revision_is_resolved_and_pinned(hub, tmp_path):
    old_sha = hub.add_dataset(REPO, make_release(tmp_path / "old", seed=1), revision="v1.0")
    new_sha = hub.add_dataset(REPO, make_release(tmp_path / "new", seed=2))
    target = tmp_path / "tiny"

    download(target, REPO, revision="v1.0", endpoint=hub.url)
    record = json.loads((target / SOURCE_RECORD).read_text())
    assert (record["revision"], record["commit"]) == ("v1.0", old_sha)
    assert (target / "clips/c2.mp4").read_bytes() == (
        tmp_path / "old/release/clips/c2.mp4").read_bytes()

    download(target, REPO, endpoint=hub.url)  # the default branch replaces it
    assert json.loads((target / SOURCE_RECORD).read_text())["commit"] == new_sha
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("tiny")) == ["tiny"]

    with pytest.raises(HubDownloadError, match="revision 'nope' not found"):
        download(tmp_path / "other", REPO, revision="nope", endpoint=hub.url)
    with pytest.raises(HubDownloadError, match="'sdme-test/missing' not found"):
        download(tmp_path / "other", "sdme-test/missing", endpoint=hub.url)


def test_a_new_release_never_deletes_what_the_user_added(hub, tmp_path):
    """A corpus with files added or changed since it was downloaded (sdme annotate's database,
    an exported annotations.csv) is moved aside, whole, when a new release replaces it."""
    hub.add_dataset(REPO, make_release(tmp_path / "old", seed=1), revision="v1.0")
    new_sha = hub.add_dataset(REPO, make_release(tmp_path / "new", seed=2))
    target = tmp_path / "data" / "tiny"
    download(target, REPO, revision="v1.0", endpoint=hub.url)
    (target / ".annotate").mkdir()
    (target / ".annotate" / "votes.sqlite").write_bytes(b"votes")
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}

    download(target, REPO, endpoint=hub.url)
    assert json.loads((target / SOURCE_RECORD).read_text())["commit"] == new_sha
    assert not (target / ".annotate").exists()
    (aside,) = [p for p in target.parent.iterdir() if p.name.startswith("tiny.old-")]
    assert {p.relative_to(aside): p.read_bytes() for p in aside.rglob("*")
            if p.is_file()} == before


def test_interrupted_transfer_resumes_with_range(hub, tmp_path):
    hub.add_dataset(REPO, make_release(tmp_path / "r"))
    target = tmp_path / "tiny"
    staging = tmp_path / "tiny.partial"
    hub.drop_after["clips/c2.mp4"] = 10_000

    # endpoint=None: the download finds the fake Hub through HF_ENDPOINT.
    with pytest.raises(HubDownloadError, match="run the same command again") as err:
        download(target, REPO)
    assert "clips/c2.mp4" in str(err.value)
    assert not target.exists()
    partial = staging / WORK_DIR / "incomplete" / "clips" / "c2.mp4.incomplete"
    assert partial.stat().st_size == 10_000
    assert hub.range_requests() == []

    download(target, REPO)

    ranges = [r.headers["range"] for r in hub.range_requests("clips/c2.mp4")]
    assert ranges == ["bytes=10000-"]
    assert check_files(target, CorpusManifest.load(target).files) == []
    assert not staging.exists()


def test_resume_rechecks_files_from_the_earlier_attempt(hub, tmp_path):
    hub.add_dataset(REPO, make_release(tmp_path / "r"))
    target, staging = tmp_path / "tiny", tmp_path / "tiny.partial"
    hub.drop_after["clips/c2.mp4"] = 5_000
    with pytest.raises(HubDownloadError):
        download(target, REPO, endpoint=hub.url)
    _flip_byte(staging / "audio" / "c1.wav")  # damaged between attempts

    with pytest.raises(HubDownloadError, match="audio/c1.wav: sha256 differs"):
        download(target, REPO, endpoint=hub.url)
    assert not target.exists() and not (staging / "audio" / "c1.wav").exists()

    download(target, REPO, endpoint=hub.url)  # unpacks the archive again
    assert check_files(target, CorpusManifest.load(target).files) == []


@pytest.mark.parametrize("earlier_target", [False, True], ids=["fresh", "over-good-target"])
@pytest.mark.parametrize("bad", ["clips/c1.mp4", "audio.tar.gz", "audio/c1.wav"])
def test_checksum_mismatch_is_refused(hub, tmp_path, bad, earlier_target):
    target = tmp_path / "tiny"
    good_sha = None
    if earlier_target:
        good_sha = hub.add_dataset(REPO, make_release(tmp_path / "good", seed=5))
        download(target, REPO, endpoint=hub.url)
        before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    hub.add_dataset(REPO, make_release(tmp_path / "bad", tamper=bad))

    with pytest.raises(HubDownloadError) as err:
        download(target, REPO, endpoint=hub.url)

    assert bad in str(err.value)
    staging = tmp_path / "tiny.partial"
    assert not (staging / bad).exists()
    assert not list(staging.rglob(f"{Path(bad).name}*"))  # no partial copy kept either
    if earlier_target:
        assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
        assert json.loads((target / SOURCE_RECORD).read_text())["commit"] == good_sha
    else:
        assert not target.exists()


def test_unsafe_archive_in_release_is_refused(hub, tmp_path):
    release = make_release(tmp_path / "r")
    evil = tmp_path / "r" / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        _add_bytes(tar, "../evil", b"pwned")
    shutil.copy(evil, release / "audio.tar.gz")
    manifest = CorpusManifest.load(release)
    fixed = dataclasses.replace(manifest, archives=(file_entry(release, "audio.tar.gz"),))
    (release / "sdme.json").write_text(fixed.to_json(), encoding="utf-8")
    hub.add_dataset(REPO, release)
    target = tmp_path / "data" / "tiny"

    with pytest.raises(UnsafeArchiveError, match=r"audio\.tar\.gz.*'\.\./evil'"):
        download(target, REPO, endpoint=hub.url)
    assert not target.exists()
    assert not list(tmp_path.rglob("evil")) and not (tmp_path / "data" / "evil").exists()


def test_manifest_path_escaping_staging_is_refused(hub, tmp_path):
    release = make_release(tmp_path / "r")
    manifest = CorpusManifest.load(release)
    escape = FileEntry("../escape.txt", 5, hashlib.sha256(b"pwned").hexdigest())
    bad = dataclasses.replace(manifest, files=(*manifest.files, escape))
    (release / "sdme.json").write_text(bad.to_json(), encoding="utf-8")
    hub.add_dataset(REPO, {**{p.relative_to(release).as_posix(): p.read_bytes()
                              for p in release.rglob("*") if p.is_file()},
                           "../escape.txt": b"pwned"})

    with pytest.raises(FormatError, match=r"sdme\.json: files\[\d+\]\.path '\.\./escape.txt' "
                       r"must not have empty, '\.' or '\.\.' parts"):
        download(tmp_path / "tiny", REPO, endpoint=hub.url)
    assert not (tmp_path / "tiny").exists() and not list(tmp_path.rglob("escape.txt"))


# --- sdme.archive -------------------------------------------------------------------------------

def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def _bad_tar(path: Path, case: str) -> str:
    """Writes a tar with one safe file then the unsafe member ``case``; returns its name."""
    with tarfile.open(path, "w:gz") as tar:
        _add_bytes(tar, "ok/first.txt", b"fine")
        if case == "dotdot":
            _add_bytes(tar, "ok/../../evil", b"pwned")
            return "ok/../../evil"
        if case == "absolute":
            _add_bytes(tar, "/tmp/sdme-evil-absolute", b"pwned")
            return "/tmp/sdme-evil-absolute"
        if case == "symlink-out":
            _add_link(tar, "ok/link", "../../outside")
            return "ok/link"
        if case == "symlink-abs":
            _add_link(tar, "passwd", "/etc/passwd")
            return "passwd"
        if case == "hardlink-out":
            _add_link(tar, "hard", "../outside", tarfile.LNKTYPE)
            return "hard"
        if case == "device":
            info = tarfile.TarInfo("dev")
            info.type = tarfile.CHRTYPE
            tar.addfile(info)
            return "dev"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink-out", "symlink-abs",
                                  "hardlink-out", "device"])
def test_unsafe_tar_member_is_refused(tmp_path, case):
    archive = tmp_path / "a" / "release.tar.gz"
    archive.parent.mkdir()
    member = _bad_tar(archive, case)
    dest = tmp_path / "a" / "x" / "dest"

    with pytest.raises(UnsafeArchiveError) as err:
        extract_archive(archive, dest)

    assert "release.tar.gz" in str(err.value) and repr(member) in str(err.value)
    assert list(dest.rglob("*")) == []  # refused before anything was written
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "dest", "release.tar.gz", "x"]
    assert not Path("/tmp/sdme-evil-absolute").exists()


def _zip_symlink(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


@pytest.mark.parametrize("member", ["../evil", "/tmp/sdme-evil-zip", "link"])
def test_unsafe_zip_member_is_refused(tmp_path, member):
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/first.txt", b"fine")
        if member == "link":
            _zip_symlink(zf, member, "../../outside")
        else:
            zf.writestr(zipfile.ZipInfo(member), b"pwned")
    dest = tmp_path / "x" / "dest"

    with pytest.raises(UnsafeArchiveError) as err:
        extract_archive(archive, dest)

    assert "release.zip" in str(err.value) and repr(member) in str(err.value)
    assert list(dest.rglob("*")) == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dest", "release.zip", "x"]
    assert not Path("/tmp/sdme-evil-zip").exists()


def test_safe_archives_extract(tmp_path):
    tar_path, zip_path = tmp_path / "a.tar", tmp_path / "a.zip"
    with tarfile.open(tar_path, "w") as tar:
        _add_bytes(tar, "./clips/c1.mp4", b"one")
        _add_link(tar, "clips/latest.mp4", "c1.mp4")
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("clips/", b"")
        zf.writestr("clips/c2.mp4", b"two")

    assert extract_archive(tar_path, tmp_path / "t") == ["clips/c1.mp4", "clips/latest.mp4"]
    assert (tmp_path / "t/clips/latest.mp4").read_bytes() == b"one"
    assert extract_archive(zip_path, tmp_path / "z") == ["clips/c2.mp4"]
    assert (tmp_path / "z/clips/c2.mp4").read_bytes() == b"two"
    (tmp_path / "junk.bin").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="junk.bin: not a tar or zip"):
        extract_archive(tmp_path / "junk.bin", tmp_path / "j")


def test_cli_reports_an_unreachable_hub_without_a_traceback(tmp_path):
    from click.testing import CliRunner

    from sdme.cli import main

    # Port 9 on loopback: nothing listens, so the connection is refused at once.
    result = CliRunner().invoke(main, ["download", "hub", "--repo", "org/corpus", "--endpoint",
                                       "http://127.0.0.1:9", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "error:" in result.output and "run the same command again" in result.output
    assert "Traceback" not in result.output
