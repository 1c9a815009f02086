"""Tests of sdme.media: frame sampling (decord), audio decoding (torchcodec), faces (MTCNN).

Fixtures are real media written at test time (sdme.media.testing): H.264/AAC mp4 files of real
face photographs from scikit-image moving across the frame, with a tone.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("av")
pytest.importorskip("skimage")

from sdme.media import ClipError  # noqa: E402
from sdme.media import testing as mt  # noqa: E402
from sdme.media.audio import load_audio  # noqa: E402
from sdme.media.faces import FaceDetector, crop_faces, landmark_geometry  # noqa: E402
from sdme.media.video import read_frames, sample_indices  # noqa: E402

FACE = 96
SECONDS = 2.0
FPS = 25


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    mt.write_face_clip(root / "astronaut.mp4", mt.astronaut_face(FACE), seconds=SECONDS, fps=FPS)
    mt.write_face_clip(root / "silent.mp4", mt.astronaut_face(FACE), seconds=SECONDS, fps=FPS,
                       freq=None)
    mt.write_face_clip(root / "blank.mp4", None, seconds=SECONDS, fps=FPS)
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    return root


@pytest.fixture(scope="session")
def detector():
    return FaceDetector(device="cpu")


@pytest.fixture(scope="session")
def astronaut_frames(media_dir):
    return read_frames(media_dir / "astronaut.mp4", fps=5.0)


# --- frame sampling ---------------------------------------------------------------------------

def test_sample_indices_regular_grid():
    assert sample_indices(50, 25.0, 5.0).tolist() == list(range(0, 50, 5))
    assert sample_indices(52, 25.0, 5.0).tolist() == list(range(0, 51, 5))
    assert sample_indices(60, 30.0, 4.0).tolist() == [0, 7, 15, 22, 30, 37, 45, 52]
    # at or above the native rate every frame is taken once
    assert sample_indices(7, 25.0, 30.0).tolist() == list(range(7))
    # a clip shorter than one period still gives its first frame
    assert sample_indices(2, 25.0, 1.0).tolist() == [0]
    assert sample_indices(0, 25.0, 5.0).tolist() == []
    capped = sample_indices(250, 25.0, 5.0, max_frames=4)
    assert capped.tolist() == [0, 80, 165, 245]  # samples 0, 16, 33, 49 of 50
    with pytest.raises(ValueError):
        sample_indices(10, 25.0, 0.0)


def test_read_frames_rate_count_and_times(media_dir, astronaut_frames):
    video = astronaut_frames
    assert video.num_frames == int(SECONDS * FPS)
    assert video.native_fps == pytest.approx(FPS)
    assert video.frames.shape == (10, 144, 192, 3) and video.frames.dtype == torch.uint8
    np.testing.assert_array_equal(video.indices, np.arange(0, 50, 5))
    np.testing.assert_allclose(video.times, np.arange(10) * 0.2)
    faster = read_frames(media_dir / "astronaut.mp4", fps=10.0)
    assert len(faster.indices) == 20
    # the decoded frames are the written ones: the sampled frames equal the matching full-rate ones
    full = read_frames(media_dir / "astronaut.mp4", fps=FPS)
    assert len(full.indices) == 50
    assert torch.equal(full.frames[video.indices], video.frames)
    # and they show the moving face: the mean column of non-background pixels moves right
    columns = [(f.float() - 170).abs().sum(dim=(0, 2)) for f in video.frames]
    centroid = [float((c * torch.arange(len(c))).sum() / c.sum()) for c in columns]
    assert np.all(np.diff(centroid) > 5)


def test_read_frames_max_side_scales_down(media_dir, astronaut_frames):
    small = read_frames(media_dir / "astronaut.mp4", fps=5.0, max_side=96)
    assert small.frames.shape == (10, 72, 96, 3)
    np.testing.assert_array_equal(small.indices, astronaut_frames.indices)
    # the same picture, at half the size
    halved = astronaut_frames.frames.float().reshape(10, 72, 2, 96, 2, 3).mean(dim=(2, 4))
    assert (small.frames.float() - halved).abs().mean() < 6
    same = read_frames(media_dir / "astronaut.mp4", fps=5.0, max_side=400)
    assert torch.equal(same.frames, astronaut_frames.frames)


@pytest.mark.parametrize("name", ["corrupt.mp4", "missing.mp4"])
def test_read_frames_bad_file(media_dir, name):
    with pytest.raises(ClipError) as info:
        read_frames(media_dir / name)
    assert info.value.reason == "decode_failed"
    assert name in str(info.value)


# --- audio ------------------------------------------------------------------------------------

def _peak_hz(samples: torch.Tensor, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.numpy()))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_load_audio_decodes_aac_track(media_dir):
    wave = load_audio(media_dir / "astronaut.mp4")
    assert wave.sample_rate == 16_000 and wave.source_rate == 44_100
    assert wave.samples.ndim == 1 and wave.samples.dtype == torch.float32
    assert wave.duration == pytest.approx(SECONDS, abs=0.1)
    assert _peak_hz(wave.samples, 16_000) == pytest.approx(440, abs=2)
    middle = wave.samples[4000:-4000]
    assert float(middle.abs().max()) == pytest.approx(0.3, abs=0.03)


def test_load_audio_reads_wav_and_resamples(tmp_path):
    path = mt.write_wav(tmp_path / "a.wav", mt.tone(1.0, 1000.0, 0.5, 22_050), 22_050)
    wave = load_audio(path, sample_rate=8000)
    assert wave.sample_rate == 8000 and wave.source_rate == 22_050
    assert len(wave.samples) == pytest.approx(8000, abs=2)
    assert _peak_hz(wave.samples, 8000) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize(("name", "reason"), [("silent.mp4", "no_audio"),
                                              ("corrupt.mp4", "decode_failed"),
                                              ("missing.mp4", "decode_failed")])
def test_load_audio_errors(media_dir, name, reason):
    with pytest.raises(ClipError) as info:
        load_audio(media_dir / name)
    assert info.value.reason == reason
    assert name in str(info.value)


# --- faces ------------------------------------------------------------------------------------

def test_mtcnn_finds_and_tracks_the_face(detector, astronaut_frames):
    det = detector.detect(astronaut_frames.frames)
    assert det.found.mean() >= 0.9
    assert np.all(det.probs[det.found] > 0.9)
    boxes = det.boxes[det.found]
    # the box moves with the face: 2 px per written frame, i.e. 10 px per sampled frame
    left = mt.face_left_edges(50, FACE)[astronaut_frames.indices][det.found]
    offset = boxes[:, 0] - left
    assert np.ptp(offset) < 4
    assert 0 < offset.mean() < FACE
    assert np.all(boxes[:, 2] - boxes[:, 0] > 20)
    # landmarks lie inside their box, left eye left of right eye, eyes above the mouth
    lm = det.landmarks[det.found]
    assert np.all((lm[..., 0] >= boxes[:, None, 0] - 2) & (lm[..., 0] <= boxes[:, None, 2] + 2))
    assert np.all((lm[..., 1] >= boxes[:, None, 1] - 2) & (lm[..., 1] <= boxes[:, None, 3] + 2))
    assert np.all(lm[:, 0, 0] < lm[:, 1, 0])
    assert np.all(lm[:, :2, 1].max(axis=1) < lm[:, 3:, 1].min(axis=1))
    geometry = landmark_geometry(det)
    assert geometry.shape == (det.count, 16) and np.isfinite(geometry).all()
    # batching does not change the result
    small = FaceDetector(batch_size=3)
    again = small.detect(astronaut_frames.frames)
    np.testing.assert_array_equal(again.found, det.found)
    np.testing.assert_allclose(again.boxes[det.found], boxes, atol=0.5)


def test_no_face_in_blank_video(detector, media_dir):
    det = detector.detect(read_frames(media_dir / "blank.mp4").frames)
    assert det.count == 0
    assert np.isnan(det.boxes).all() and (det.probs == 0).all()
    assert detector.crops(read_frames(media_dir / "blank.mp4").frames, det, 16).shape == \
        (0, 1, 16, 16)


def test_selection_largest_picks_the_bigger_face(detector):
    frame = np.full((1, 200, 320, 3), 170, np.uint8)
    frame[0, 50:50 + 60, 20:20 + 60] = mt.astronaut_face(60)
    frame[0, 20:20 + 150, 150:150 + 150] = mt.astronaut_face(150)
    frames = torch.from_numpy(frame)
    largest = FaceDetector(selection="largest").detect(frames)
    assert largest.count == 1 and largest.boxes[0, 0] > 150


def test_crop_faces_geometry():
    # horizontal ramp: brightness grows with x
    ramp = np.tile(np.linspace(0, 255, 100), (100, 1)).astype(np.uint8)
    frames = torch.from_numpy(np.repeat(ramp[None, :, :, None], 3, axis=3))
    box = np.array([[30.0, 30.0, 70.0, 70.0]])
    level = np.array([[[40, 50], [60, 50], [50, 55], [42, 60], [58, 60]]], dtype=np.float32)
    upright = crop_faces(frames, np.array([0]), box, level, size=16, margin=0.0)
    assert upright.shape == (1, 1, 16, 16)
    crop = upright[0, 0].numpy()
    assert np.all(np.diff(crop.mean(axis=0)) > 0)           # still grows left to right
    assert np.ptp(crop.mean(axis=1)) < 0.02                  # and not top to bottom
    assert crop.min() == pytest.approx(0.3, abs=0.03) and crop.max() == pytest.approx(0.7, abs=0.03)
    # eyes on a vertical line (rotated face): the crop is turned so the eyes are level
    turned = level.copy()
    turned[0, 0], turned[0, 1] = [50, 40], [50, 60]
    rotated = crop_faces(frames, np.array([0]), box, turned, size=16, margin=0.0)[0, 0].numpy()
    assert np.all(np.diff(rotated.mean(axis=1)) < 0)         # the ramp now runs bottom to top
    assert np.ptp(rotated.mean(axis=0)) < 0.02
    rgb = crop_faces(frames, np.array([0, 0]), np.repeat(box, 2, 0), None, size=8,
                     grayscale=False)
    assert rgb.shape == (2, 3, 8, 8)


def test_detector_is_picklable_and_lazy(detector, astronaut_frames):
    detector.detect(astronaut_frames.frames[:1])
    clone = pickle.loads(pickle.dumps(detector))
    assert clone._mtcnn is None
    assert clone.detect(astronaut_frames.frames[:2]).count == 2
    assert math.isclose(detector.to("cpu").factor, 0.709)
    with pytest.raises(ValueError):
        FaceDetector(selection="nearest")
    with pytest.raises(ValueError):
        detector.detect(astronaut_frames.frames.numpy())


def test_clip_error_reasons_and_pickling(tmp_path):
    err = ClipError(tmp_path / "x.mp4", "no_face", "nothing there")
    assert str(err).startswith(str(tmp_path / "x.mp4"))
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.reason, again.detail) == (err.path, err.reason, err.detail)
    with pytest.raises(ValueError):
        ClipError("x", "bad_reason", "")
