"""The pretrained-encoder extractors beyond the contract test: the speech encoders' layer, stride
and pooling; the image encoders on the face pipeline's crops; the ``hf`` text encoder with a
Chinese tokenizer; provenance hashes; re-creating an extractor from its build record. Every model
is a tiny one made from a config offline (``tiny_speech_model``, ``tiny_image_model``), run on
real clips of the bundled sample."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from sdme.built import ExtractorRecord
from sdme.features import ClipError, ProvenanceMismatch, create_extractor, recreate_extractor
from sdme.features.image import tiny_image_model
from sdme.features.speech import tiny_speech_model
from sdme.media.audio import load_audio
from sdme.media.testing import write_face_clip
from sdme.schema import ANNOTATIONS_NAME, clip_audio_path, read_annotations
from sdme.sources.sample import sample_dir

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sample():
    raw = sample_dir()
    return raw, read_annotations(raw / ANNOTATIONS_NAME)[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {"wav2vec2": tiny_speech_model(root / "w2v", "wav2vec2"),
            "hubert": tiny_speech_model(root / "hubert", "hubert"),
            "clip": tiny_image_model(root / "clip", "clip"),
            "vit": tiny_image_model(root / "vit", "vit")}


def record_of(extractor) -> ExtractorRecord:
    info = extractor.info
    return ExtractorRecord(**info.to_dict(), fingerprint=info.fingerprint(),
                           options=extractor.options)


def test_speech_layer_stride_and_pooling(models, sample):
    raw, clip = sample
    last = create_extractor("audio", "wav2vec2", model=str(models["wav2vec2"]))
    feats = last.extract(raw, clip)
    samples = load_audio(clip_audio_path(raw, clip.clip_id)).samples.numel()
    frames = 1 + (samples - 400) // 320  # wav2vec 2.0's 25 ms receptive field, 20 ms hop
    assert feats.shape == (frames, 16) and feats.dtype == np.float32
    assert last.info.params["layer"] == 2 and last.info.params["frame_ms"] == 20.0

    strided = create_extractor("audio", "wav2vec2", model=str(models["wav2vec2"]), stride=4)
    pooled = strided.extract(raw, clip)
    assert pooled.shape == (math.ceil(frames / 4), 16)
    np.testing.assert_allclose(pooled[0], feats[:4].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(pooled[-1], feats[4 * (len(pooled) - 1):].mean(axis=0), atol=1e-5)
    utterance = create_extractor("audio", "wav2vec2", model=str(models["wav2vec2"]),
                                 pooling="utterance")
    np.testing.assert_allclose(utterance.extract(raw, clip), feats.mean(axis=0, keepdims=True),
                               atol=1e-5)

    first = create_extractor("audio", "wav2vec2", model=str(models["wav2vec2"]), layer=0)
    assert first.extract(raw, clip).shape == feats.shape
    assert not np.allclose(first.extract(raw, clip), feats)
    same = create_extractor("audio", "wav2vec2", model=str(models["wav2vec2"]), layer=2)
    assert same.info.fingerprint() == last.info.fingerprint()  # -1 and 2 are the same layer
    assert first.info.fingerprint() != last.info.fingerprint()


def test_speech_encoders_say_what_is_wrong(models, tmp_path):
    with pytest.raises(ValueError, match=r"'hubert' audio extractor needs local weights: set "
                                         r"model=.*--param audio.model=PATH"):
        create_extractor("audio", "hubert")
    with pytest.raises(FileNotFoundError, match="not found locally.*model="):
        create_extractor("audio", "wavlm", model=str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="a 'hubert' model; the 'audio/wav2vec2' extractor"):
        create_extractor("audio", "wav2vec2", model=str(models["hubert"]))
    with pytest.raises(ValueError, match="layer 3 does not exist"):
        create_extractor("audio", "hubert", model=str(models["hubert"]), layer=3)
    with pytest.raises(ValueError, match="pooling"):
        create_extractor("audio", "hubert", model=str(models["hubert"]), pooling="max")
    short = create_extractor("audio", "hubert", model=str(models["hubert"]))
    with pytest.raises(ClipError) as info:
        short.features(torch.zeros(200), "x.wav")
    assert info.value.reason == "no_audio"


def test_provenance_hashes_config_and_weights(models, tmp_path):
    base = create_extractor("audio", "wav2vec2", model=str(models["wav2vec2"]))
    params = base.info.params
    assert params["model"] == "w2v" and params["model_type"] == "wav2vec2"
    assert all(len(params[k]) == 64 for k in ("config_sha256", "preprocessor_sha256",
                                              "weights_sha256"))
    # same config, other weights: another weights hash, another fingerprint (feature cache key)
    from transformers import AutoModel

    other = tmp_path / "w2v"
    model = AutoModel.from_pretrained(models["wav2vec2"])
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    model.save_pretrained(other)
    for name in ("preprocessor_config.json",):
        (other / name).write_bytes((models["wav2vec2"] / name).read_bytes())
    moved = create_extractor("audio", "wav2vec2", model=str(other)).info.params
    assert moved["config_sha256"] == params["config_sha256"]
    assert moved["weights_sha256"] != params["weights_sha256"]


def test_image_encoders_embed_the_face_crops(models, sample, tmp_path):
    raw, clip = sample
    faces = create_extractor("vision", "face", fps=2.0).extract(raw, clip)
    clip_default = create_extractor("vision", "clip", model=str(models["clip"]), fps=2.0)
    embeds = clip_default.extract(raw, clip)
    assert embeds.shape == (len(faces), 8)  # one projected embedding per frame with a face
    assert clip_default.info.params["output"] == "image_embeds"
    hidden = create_extractor("vision", "clip", model=str(models["clip"]), fps=2.0, layer=-1)
    assert hidden.extract(raw, clip).shape == (len(faces), 16)
    cls = create_extractor("vision", "vit", model=str(models["vit"]), fps=2.0)
    mean = create_extractor("vision", "vit", model=str(models["vit"]), fps=2.0, pooling="mean")
    a, b = cls.extract(raw, clip), mean.extract(raw, clip)
    assert a.shape == b.shape == (len(faces), 16) and not np.allclose(a, b)
    assert cls.info.params["image_size"] == 32
    with pytest.raises(ValueError, match="a CLIP model; use the 'clip' vision extractor"):
        create_extractor("vision", "vit", model=str(models["clip"]))
    blank = tmp_path / "raw"
    write_face_clip(blank / "clips" / "blank.mp4", None, seconds=1.0)
    with pytest.raises(ClipError) as info:
        cls.extract(blank, replace(clip, clip_id="blank"))
    assert info.value.reason == "no_face"


def test_hf_text_encoder_takes_a_chinese_tokenizer(tmp_path, sample):
    """A Chinese encoder is a local folder like any other: its own tokenizer splits CJK text
    into characters (BERT's basic tokenizer), each a token of the sequence."""
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertTokenizer

    raw, clip = sample
    text = "我今天很开心"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"我你他今天明很不开心难过的了"]
    folder = tmp_path / "tiny-chinese-bert"
    BertTokenizer(vocab={token: i for i, token in enumerate(vocab)},
                  tokenize_chinese_chars=True).save_pretrained(folder)
    torch.manual_seed(0)
    AutoModel.from_config(BertConfig(vocab_size=len(vocab), hidden_size=16,
                                     num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64)
                          ).save_pretrained(folder)
    extractor = create_extractor("text", "hf", model=str(folder), max_length=6)
    assert extractor.info.params["preprocessor_sha256"]  # the vocabulary is in the provenance
    feats = create_extractor("text", "hf", model=str(folder)).extract(
        raw, replace(clip, text=text, language="zh"))
    assert feats.shape == (len(text) + 2, 16)  # [CLS] + one token per character + [SEP]
    tokenizer = AutoTokenizer.from_pretrained(folder)  # what the extractor loads
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.convert_ids_to_tokens(ids)[1:-1] == list(text)
    truncated = extractor.extract(raw, replace(clip, text=text))
    assert truncated.shape == (6, 16)


def test_recreate_extractor_from_its_record(models, sample):
    raw, clip = sample
    made = create_extractor("audio", "hubert", model=str(models["hubert"]), layer=1, stride=2)
    assert made.options == {"model": str(models["hubert"]), "revision": None, "layer": 1,
                            "pooling": "frames", "stride": 2}
    again = recreate_extractor("audio", record_of(made))
    assert again.info == made.info
    np.testing.assert_array_equal(again.extract(raw, clip), made.extract(raw, clip))

    logmel = create_extractor("audio", "logmel", n_mels=12, hop_ms=20.0)
    legacy = replace(record_of(logmel), options=None)  # build_info.json before ``options``
    assert recreate_extractor("audio", legacy).info == logmel.info
    with pytest.raises(ProvenanceMismatch, match=r"hop_ms: 20.0 -> 10.0"):
        recreate_extractor("audio", record_of(logmel), overrides={"hop_ms": 10.0})
    assert recreate_extractor("audio", record_of(logmel), overrides={"hop_ms": 10.0},
                              check=False).info.params["hop_ms"] == 10.0
    with pytest.raises(KeyError, match="bert"):
        recreate_extractor("text", replace(record_of(logmel), name="bert"))
