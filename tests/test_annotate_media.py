"""Isolated media of ``sdme annotate``: checked with the ffprobe/ffmpeg programs, not our code."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace

import pytest
from annotatehelpers import CLIPS, prepared_corpus, small_corpus

from sdme.annotate import WORK_DIR
from sdme.annotate.media import load_prepared, prepare_media
from sdme.schema import list_corpus_files, read_annotations
from sdme.validate import validate_raw

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs FFmpeg's programs")


def streams(path) -> list[str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return [s["codec_type"] for s in json.loads(out.stdout)["streams"]]


def packet_hash(path, kind: str) -> str:
    """sha256 of a stream's packets: equal before and after means remuxed, not re-encoded."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:{kind[0]}",
                          "-c", "copy", "-f", "streamhash", "-hash", "sha256", "-"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().split("=", 1)[1]


def test_each_file_holds_one_modality_and_streams_are_copied(tmp_path_factory):
    raw = prepared_corpus(tmp_path_factory)
    media = load_prepared(raw)
    clips = {c.clip_id: c for c in read_annotations(raw / "annotations.csv")}
    assert sorted(media.clips) == sorted(CLIPS)
    for cid in CLIPS:
        vision, audio = media.path(cid, "vision"), media.path(cid, "audio")
        assert streams(vision) == ["video"]  # the sound is not in the file
        assert streams(audio) == ["audio"]
        assert media.read_text(cid) == clips[cid].text
        assert media.clips[cid].notes == ()
    source = raw / "clips" / f"{CLIPS[0]}.mp4"
    assert streams(source) == ["video", "audio"]
    assert packet_hash(media.path(CLIPS[0], "vision"), "video") == packet_hash(source, "video")
    assert packet_hash(media.path(CLIPS[0], "audio"), "audio") == packet_hash(source, "audio")
    # The hidden folder is never part of the corpus: not listed, no validation warning.
    assert not any(p.startswith(WORK_DIR) for p in list_corpus_files(raw))
    report = validate_raw(raw, check_media=False)
    assert report.ok and report.problems == []


def test_other_codecs_are_reencoded_and_missing_streams_reported(tmp_path):
    raw = small_corpus(tmp_path / "raw", ["vid01_00", "vid02_00", "vid03_00"])
    src = raw / "clips" / "vid01_00.mp4"
    # vid01_00: MPEG-4 part 2 video (not playable everywhere) + its audio as audio/<id>.wav
    (raw / "audio").mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-map", "0:a", "-c:a", "pcm_s16le",
                    str(raw / "audio" / "vid01_00.wav")], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-map", "0:v", "-c:v", "mpeg4",
                    "-metadata", "title=The meeting starts at ten.", str(tmp_path / "v.mp4")],
                   check=True)
    shutil.move(tmp_path / "v.mp4", src)
    # vid02_00: no audio stream at all
    other = raw / "clips" / "vid02_00.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(other), "-map", "0:v", "-c", "copy",
                    str(tmp_path / "n.mp4")], check=True)
    shutil.move(tmp_path / "n.mp4", other)

    # vid03_00: not a media file at all
    (raw / "clips" / "vid03_00.mp4").write_bytes(b"\x00" * 4096)

    media = prepare_media(raw, read_annotations(raw / "annotations.csv"))
    first = media.clips["vid01_00"]
    assert first.audio == "audio/vid01_00.wav" and streams(media.path("vid01_00", "audio")) == \
        ["audio"]
    assert any("re-encoded to H.264" in n for n in first.notes)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                            "stream=codec_name:format_tags", "-of", "json",
                            str(media.path("vid01_00", "vision"))],
                           capture_output=True, text=True, check=True)
    info = json.loads(probe.stdout)
    assert [s["codec_name"] for s in info["streams"]] == ["h264"]
    assert "title" not in info["format"].get("tags", {})  # metadata could carry the transcript
    second = media.clips["vid02_00"]
    assert second.audio is None and media.path("vid02_00", "audio") is None
    assert any("no audio stream" in n for n in second.notes)
    assert streams(media.path("vid02_00", "vision")) == ["video"]
    broken = media.clips["vid03_00"]  # its text can still be annotated; the rest is reported
    assert (broken.vision, broken.audio, broken.text) == (None, None, "text/vid03_00.txt")
    assert any("cannot read the media file" in n for n in broken.notes)


def test_prepare_again_redoes_only_changed_clips(tmp_path_factory, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(prepared_corpus(tmp_path_factory), raw)
    clips = read_annotations(raw / "annotations.csv")
    before = {cid: (raw / WORK_DIR / "media" / c.vision).stat().st_mtime_ns
              for cid, c in load_prepared(raw).clips.items()}
    changed = [c if c.clip_id != "vid02_00" else replace(c, text="A new transcript.")
               for c in clips]
    media = prepare_media(raw, changed)
    after = {cid: (media.root / c.vision).stat().st_mtime_ns for cid, c in media.clips.items()}
    assert {k for k in after if after[k] != before[k]} == {"vid02_00"}
    assert media.read_text("vid02_00") == "A new transcript."
    assert media.read_text("vid01_00") == clips[0].text
    # A clip gone from the corpus loses its files.
    media = prepare_media(raw, [c for c in changed if c.clip_id != "vid03_00"])
    assert "vid03_00" not in media.clips
    assert not (media.root / "vision" / "vid03_00.mp4").exists()
