"""`sdme download folder` (a link to the user's own raw corpus) and `write_manifest`."""

from __future__ import annotations

import json

import pytest

from sdme.fileio import check_files
from sdme.schema import DEFAULT_TAXONOMY, CorpusManifest, FormatError, RawClip, write_annotations
from sdme.sources import get_source
from sdme.sources.folder import download, write_manifest


def make_corpus(root):
    (root / "clips").mkdir(parents=True)
    write_annotations(root / "annotations.csv", [
        RawClip("c1", "v1", "s1", 0.0, 2.0, "hello", "en", "happiness", ("happiness",), (), ()),
    ])
    (root / "clips" / "c1.mp4").write_bytes(b"\x00\x01" * 500)
    (root / ".DS_Store").write_bytes(b"hidden files are not part of the corpus")
    return root


def test_folder_source_is_registered():
    assert get_source("folder").deliver is download


def test_write_manifest_lists_and_verifies_every_file(tmp_path):
    corpus = make_corpus(tmp_path / "mine")

    path = write_manifest(corpus, "mine", version="2.0", license="CC-BY-4.0")

    assert path == corpus / "sdme.json"
    manifest = CorpusManifest.load(path)
    assert (manifest.name, manifest.version, manifest.license) == ("mine", "2.0", "CC-BY-4.0")
    assert manifest.taxonomy == DEFAULT_TAXONOMY
    assert [e.path for e in manifest.files] == ["annotations.csv", "clips/c1.mp4"]
    assert check_files(corpus, manifest.files) == []
    (corpus / "clips" / "c1.mp4").write_bytes(b"changed")
    assert check_files(corpus, manifest.files)  # the listing really pins the contents

    write_manifest(corpus, "mine", taxonomy=["pos", "neg"])  # rewrites in place
    again = CorpusManifest.load(corpus)
    assert again.taxonomy == ("pos", "neg") and check_files(corpus, again.files) == []
    assert not [p for p in corpus.iterdir() if p.name.endswith(".tmp")]


def test_write_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotations.csv"):
        write_manifest(tmp_path, "empty")
    corpus = make_corpus(tmp_path / "c")
    with pytest.raises(FormatError, match="taxonomy"):
        write_manifest(corpus, "c", taxonomy=["a", "a"])
    assert not (corpus / "sdme.json").exists()


def test_folder_source_links_the_corpus(tmp_path):
    first = make_corpus(tmp_path / "first")
    second = make_corpus(tmp_path / "second")
    write_manifest(first, "first")
    write_manifest(second, "second")
    target = tmp_path / "data" / "raw" / "mine"

    assert download(target, path=str(first)) == target
    assert target.is_symlink() and target.resolve() == first.resolve()
    assert json.loads((target / "sdme.json").read_text())["name"] == "first"

    download(target, path=str(second))  # an old link is replaced
    assert target.is_symlink() and target.resolve() == second.resolve()


def test_folder_source_missing_manifest_suggests_sdme_manifest(tmp_path):
    corpus = make_corpus(tmp_path / "mine")
    target = tmp_path / "raw" / "mine"

    with pytest.raises(FileNotFoundError, match=r"missing sdme\.json.*sdme manifest"):
        download(target, path=str(corpus))
    assert not target.exists() and not target.is_symlink()
    with pytest.raises(FileNotFoundError, match="not a folder"):
        download(target, path=str(tmp_path / "nowhere"))


def test_folder_source_never_replaces_a_real_folder(tmp_path):
    corpus = make_corpus(tmp_path / "mine")
    write_manifest(corpus, "mine")
    target = tmp_path / "raw" / "mine"
    (target / "clips").mkdir(parents=True)
    (target / "keep.txt").write_text("downloaded earlier")

    with pytest.raises(FileExistsError, match="real folder"):
        download(target, path=str(corpus))
    assert (target / "keep.txt").read_text() == "downloaded earlier"
    assert download(corpus, path=str(corpus)) == corpus  # already in place: nothing to do
