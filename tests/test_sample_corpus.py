"""The bundled sample corpus (sdme/data/sample), its ``sample`` source and its generator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sdme.fileio import check_files
from sdme.relevance import agreement_by_modality, compute_relevance
from sdme.schema import (
    ANNOTATIONS_NAME,
    DEFAULT_TAXONOMY,
    MANIFEST_NAME,
    CorpusManifest,
    clip_media_path,
    make_manifest_files,
    read_annotations,
)
from sdme.sources.sample import download, sample_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR = REPO_ROOT / "scripts" / "make_sample_corpus.py"
FPS = 15


@pytest.fixture(scope="module")
def manifest() -> CorpusManifest:
    return CorpusManifest.load(sample_dir())


@pytest.fixture(scope="module")
def clips():
    return read_annotations(sample_dir() / ANNOTATIONS_NAME)


def test_shipped_manifest_verifies(manifest):
    root = sample_dir()
    assert manifest.name == "sample"
    assert manifest.taxonomy == DEFAULT_TAXONOMY
    assert check_files(root, manifest.files) == []
    # The manifest lists exactly what is in the folder: nothing unlisted ships.
    assert make_manifest_files(root) == manifest.files
    listed = {f.path for f in manifest.files}
    assert {ANNOTATIONS_NAME, "README.md"} <= listed


def test_card_says_labels_are_constructed():
    card = (sample_dir() / "README.md").read_text(encoding="utf-8")
    assert "not human judgements" in card
    assert "scripts/make_sample_corpus.py" in card


def test_annotations_cover_classes_deviations_and_speakers(manifest, clips):
    assert len(clips) >= 24
    listed = {f.path for f in manifest.files}
    for clip in clips:
        assert f"clips/{clip.clip_id}.mp4" in listed
        assert clip.split is None, "split must be left to the build"
        assert 2.0 - 1e-6 <= clip.duration <= 4.0 + 1e-6, clip.clip_id
        assert clip.text.strip() and clip.language == "en"
    assert set(c.label for c in clips) == set(DEFAULT_TAXONOMY)

    deviations = Counter(compute_relevance(c, manifest.taxonomy).deviation for c in clips)
    assert all(deviations[level] >= 3 for level in range(4)), deviations

    speakers = {c.speaker_id for c in clips}
    assert len(speakers) >= 4
    by_video: dict[str, list] = {}
    for clip in clips:
        by_video.setdefault(clip.video_id, []).append(clip)
    for video_id, members in by_video.items():
        assert len({c.speaker_id for c in members}) == 1, video_id
        assert 2 <= len(members) <= 4, video_id
        members.sort(key=lambda c: c.start)
        for before, after in zip(members, members[1:], strict=False):
            assert after.start == pytest.approx(before.end), video_id

    # Simulated annotators agree well but not perfectly.
    for modality, kappa in agreement_by_modality(clips, manifest.taxonomy).items():
        assert kappa is not None and 0.3 < kappa < 0.95, (modality, kappa)


def test_every_clip_decodes_with_video_and_audio(clips):
    decord = pytest.importorskip("decord")
    torchaudio = pytest.importorskip("torchaudio")
    for clip in clips:
        path = clip_media_path(sample_dir(), clip.clip_id)
        video = decord.VideoReader(str(path))
        assert video.get_avg_fps() == pytest.approx(FPS)
        assert len(video) == round(clip.duration * FPS), clip.clip_id
        frame = video[len(video) // 2].asnumpy()
        assert frame.shape[0] == frame.shape[1] and 160 <= frame.shape[0] <= 224
        assert frame.std() > 10  # a picture, not a flat colour

        waveform, rate = torchaudio.load(str(path))
        assert rate == 16_000 and waveform.shape[0] == 1
        # AAC decoders return whole 1024-sample frames, hence the tolerance.
        assert abs(waveform.shape[1] / rate - clip.duration) < 0.15, clip.clip_id
        assert waveform.abs().max() > 0.02, f"{clip.clip_id}: silent audio"


def test_sample_source_downloads_and_is_idempotent(tmp_path, manifest):
    target = tmp_path / "raw" / "sample"
    assert download(target) == target
    assert check_files(target, manifest.files) == []
    assert (target / MANIFEST_NAME).read_bytes() == (sample_dir() / MANIFEST_NAME).read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["sample"]  # no staging left

    stamp = {p: p.stat().st_mtime_ns for p in target.rglob("*") if p.is_file()}
    inode = target.stat().st_ino
    download(target)
    assert target.stat().st_ino == inode
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*") if p.is_file()} == stamp

    # What a user adds beside an intact copy stays: the copy is current, nothing is rewritten.
    (target / ".annotate").mkdir()
    (target / ".annotate" / "votes.sqlite").write_bytes(b"votes")
    download(target)
    assert (target / ".annotate" / "votes.sqlite").read_bytes() == b"votes"


def test_sample_download_never_deletes_what_it_did_not_put_there(tmp_path, manifest):
    """A copy whose files changed (here: `sdme annotate export` rewrote annotations.csv and
    sdme.json, beside its `.annotate/` database) is refused, naming the difference; `--force`
    installs a fresh copy and moves the old folder aside, whole."""
    from sdme.sources import SourceError

    target = tmp_path / "raw" / "sample"
    download(target)
    (target / ".annotate").mkdir()
    (target / ".annotate" / "votes.sqlite").write_bytes(b"votes")
    edited = (target / ANNOTATIONS_NAME).read_text(encoding="utf-8") + "\n"
    (target / ANNOTATIONS_NAME).write_text(edited, encoding="utf-8")
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}

    with pytest.raises(SourceError, match=r"already holds something other than the bundled "
                       r"sample corpus.*annotations\.csv.*--force"):
        download(target)
    assert {p.relative_to(target): p.read_bytes() for p in target.rglob("*")
            if p.is_file()} == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["sample"]

    assert download(target, force=True) == target
    assert check_files(target, manifest.files) == []
    (aside,) = [p for p in target.parent.iterdir() if p.name.startswith("sample.old-")]
    assert {p.relative_to(aside): p.read_bytes() for p in aside.rglob("*")
            if p.is_file()} == before

    # Another kind of folder (no sdme.json) is refused the same way; an empty one is filled.
    other = tmp_path / "raw" / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SourceError, match="notes|sdme.json: missing"):
        download(other)
    assert (other / "notes.txt").read_text() == "mine"
    empty = tmp_path / "raw" / "empty"
    empty.mkdir()
    assert check_files(download(empty), manifest.files) == []


def test_cli_download_refuses_with_one_line(tmp_path):
    from click.testing import CliRunner

    from sdme.cli import main

    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(main, ["download", "--data-dir", str(data)]).exit_code == 0
    (data / "raw" / "sample" / ANNOTATIONS_NAME).write_text("changed\n", encoding="utf-8")
    result = runner.invoke(main, ["download", "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "refusing to replace it" in result.output and "Traceback" not in result.output
    forced = runner.invoke(main, ["download", "sample", "--force", "--data-dir", str(data)])
    assert forced.exit_code == 0, forced.output
    assert "moved the previous" in forced.output


def test_damaged_bundle_is_refused(tmp_path, monkeypatch, manifest):
    bundle = tmp_path / "bundle"
    shutil.copytree(sample_dir(), bundle)
    (bundle / ANNOTATIONS_NAME).write_text("clip_id\n")
    monkeypatch.setattr("sdme.sources.sample.sample_dir", lambda: bundle)
    target = tmp_path / "raw" / "sample"
    with pytest.raises(RuntimeError, match="annotations.csv"):
        download(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # nothing written


def test_sample_source_is_registered():
    from sdme.sources import get_source, list_sources

    assert get_source("sample").deliver is download
    assert {"sample", "hub", "folder"} <= set(list_sources("raw"))
    assert {"synth", "mmsa"} <= set(list_sources("built"))


@pytest.mark.slow
def test_faces_are_detectable_by_mtcnn(clips):
    """facenet-pytorch MTCNN (min_face_size 20) finds a face in >= 90% of sampled frames."""
    decord = pytest.importorskip("decord")
    torch = pytest.importorskip("torch")
    facenet = pytest.importorskip("facenet_pytorch")
    import numpy as np

    mtcnn = facenet.MTCNN(keep_all=False, min_face_size=20, device="cpu")
    frames = []
    for clip in clips:  # every 10th frame of every clip, detected in one batch (much faster)
        video = decord.VideoReader(str(clip_media_path(sample_dir(), clip.clip_id)))
        frames.append(video.get_batch(list(range(0, len(video), 10))).asnumpy())
    boxes, _ = mtcnn.detect(torch.from_numpy(np.concatenate(frames)))
    found = sum(b is not None for b in boxes)
    assert found / len(boxes) >= 0.9, f"faces found in {found}/{len(boxes)} frames"


@pytest.mark.slow
def test_generator_regenerates_the_shipped_corpus_byte_for_byte(tmp_path, manifest):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng); the generator "
                    "needs it to synthesise speech")
    out = tmp_path / "sample"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    result = subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deviation distribution" in result.stdout

    regenerated = CorpusManifest.load(out)
    shipped = {f.path: f.sha256 for f in manifest.files}
    got = {f.path: f.sha256 for f in regenerated.files}
    differing = sorted(p for p in shipped.keys() | got.keys() if shipped.get(p) != got.get(p))
    assert not differing, (
        f"regenerated files differ from sdme/data/sample: {differing[:5]} "
        f"(tools here: {json.dumps(regenerated.extra.get('tools'))}, shipped with "
        f"{json.dumps(manifest.extra.get('tools'))})")
    assert check_files(out, regenerated.files) == []
    assert (out / MANIFEST_NAME).read_bytes() == (sample_dir() / MANIFEST_NAME).read_bytes()
