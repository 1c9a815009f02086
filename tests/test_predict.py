"""``python -m baselines predict``, end to end: a model trained for two epochs on a tiny dataset
built from the bundled sample with real, fast extractors (a tiny BERT made offline, log-mel,
MTCNN face crops), saved by ``fit`` as a Hugging Face-format checkpoint, run on sample clips
decoded again by the extractors re-created from the checkpoint's provenance."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from builddoubles import write_raw_corpus
from click.testing import CliRunner

import baselines
from baselines.__main__ import main
from baselines.checkpoint import TaskInfo
from baselines.inference import Predictor
from baselines.train import TrainConfig, fit, predict
from sdme.build import build
from sdme.features.text import tiny_encoder
from sdme.loading import feature_dims, load_dataset
from sdme.media.testing import write_face_clip
from sdme.schema import CorpusManifest, clip_media_path, read_annotations
from sdme.sources.sample import sample_dir

PARAMS = {"audio": {"n_mels": 8, "hop_ms": 50.0},
          "vision": {"fps": 1.0, "max_frames": 2, "crop_size": 8}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(checkpoint folder, built dataset folder, sample corpus) for a two-epoch MREN."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("predict")
    sample = sample_dir()
    manifest = CorpusManifest.load(sample)
    clips, speakers = [], set()
    for clip in read_annotations(sample / "annotations.csv"):  # one clip per speaker
        if clip.speaker_id not in speakers:
            clips.append(clip)
            speakers.add(clip.speaker_id)
    raw = write_raw_corpus(root / "raw", clips,
                           {c.clip_id: clip_media_path(sample, c.clip_id) for c in clips},
                           name="sample-tiny", taxonomy=manifest.taxonomy)
    encoder = tiny_encoder(root / "tiny-bert")
    built = root / "built"
    build(raw, built, text_encoder="hf", progress=False, device="cpu",
          extractor_params={"text": {"model": str(encoder), "max_length": 32}, **PARAMS})
    data = load_dataset(built)
    torch.manual_seed(0)
    model = baselines.create_model("mren", input_dims=feature_dims(data),
                                   num_classes=len(manifest.taxonomy), hidden=16)
    fit(model, data["train"], data["validation"],
        TrainConfig(epochs=2, batch_size=4, device="cpu", progress=False,
                    out_dir=str(root / "mren")),
        task_info=TaskInfo.for_model(model, dataset=built))
    yield root / "mren", built, sample
    torch.set_num_threads(threads)


def test_checkpoint_records_what_predict_needs(trained):
    checkpoint, built, _ = trained
    config = json.loads((checkpoint / "config.json").read_text())
    dataset = config["task"]["dataset"]
    assert config["task"]["class_names"] == list(CorpusManifest.load(sample_dir()).taxonomy)
    assert {m: e["name"] for m, e in dataset["extractors"].items()} == {
        "text": "hf", "audio": "logmel", "vision": "face"}
    assert dataset["extractors"]["audio"]["options"]["n_mels"] == 8
    assert dataset["extractors"]["text"]["params"]["config_sha256"]
    card = (checkpoint / "README.md").read_text()
    assert "library_name: sdme" in card and "| vision | `face` v1 |" in card


def test_predict_decodes_like_the_build(trained):
    """A clip of the training data, decoded again from the checkpoint's provenance, gives the
    features the dataset holds, hence the same prediction."""
    checkpoint, built, sample = trained
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    row = load_dataset(built, split="train", format="numpy")[0]
    row_out = predict(predictor.model, [row], TrainConfig(device="cpu", progress=False))
    features, missing = predictor.features(clip_media_path(sample, row["clip_id"]),
                                           text=row["text"])
    assert missing == {}
    for m in ("text", "audio", "vision"):
        np.testing.assert_allclose(features[f"{m}_feat"], row[f"{m}_feat"], atol=1e-5)
    [result] = predictor.predict([clip_media_path(sample, row["clip_id"])],
                                 {str(clip_media_path(sample, row["clip_id"])): row["text"]})
    names = predictor.task.class_names
    assert result.emotion == names[int(row_out.predicted()[0])]


def test_cli_json_reports_each_clip_and_keeps_going(trained, tmp_path):
    checkpoint, _, sample = trained
    clips = read_annotations(sample / "annotations.csv")
    spoken = tmp_path / "spoken.mp4"
    shutil.copyfile(clip_media_path(sample, clips[0].clip_id), spoken)
    (tmp_path / "spoken.txt").write_text(clips[0].text, encoding="utf-8")  # sidecar transcript
    silent = tmp_path / "untranscribed.mp4"
    shutil.copyfile(clip_media_path(sample, clips[1].clip_id), silent)
    faceless = write_face_clip(tmp_path / "faceless.mp4", None, seconds=1.0)
    (tmp_path / "faceless.txt").write_text("Nobody is here.", encoding="utf-8")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4)
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(checkpoint), str(spoken), str(broken),
                                  str(silent), str(faceless), "--json", "--device", "cpu"])
    assert result.exit_code == 1  # one clip failed; the others were predicted
    assert result.stderr.strip().splitlines() == [
        f"error: {broken}: decode_failed: not a readable video (Invalid data found when "
        "processing input)"]
    out = json.loads(result.stdout)
    names = out["classes"]
    assert out["model"] == "mren" and names == list(CorpusManifest.load(sample).taxonomy)
    by_clip = {c["clip"]: c for c in out["clips"]}
    assert list(by_clip) == [str(spoken), str(broken), str(silent), str(faceless)]
    assert set(by_clip[str(broken)]) == {"clip", "error"}
    expected_missing = {str(spoken): set(), str(silent): {"text"}, str(faceless): {"vision"}}
    for clip, missing in expected_missing.items():
        got = by_clip[clip]
        assert set(got["missing"]) == missing
        assert "--text" in got["missing"].get("text", "--text")
        assert "no_face" in got["missing"].get("vision", "no_face")
        assert got["emotion"] in names and list(got["probabilities"]) == names
        assert sum(got["probabilities"].values()) == pytest.approx(1.0)
        assert max(got["probabilities"], key=got["probabilities"].get) == got["emotion"]
        present = {"text", "audio", "vision"} - missing
        assert set(got["relevance"]) == present == set(got["modalities"])
        # each modality's relevance on its own [0, 1] scale (ModelOutput's contract)
        assert all(0.0 <= r <= 1.0 for r in got["relevance"].values())
        for own in got["modalities"].values():
            assert own["emotion"] in names

    text = runner.invoke(main, ["predict", str(checkpoint), str(silent), "--text",
                                clips[1].text, "--device", "cpu"])
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"{silent}: ") and lines[1].startswith("  probabilities: ")
    assert any(line.startswith("  relevance:     text ") for line in lines)
    assert not any("missing" in line for line in lines)


def test_cli_refuses_extractors_that_would_decode_differently(trained):
    checkpoint, _, sample = trained
    clip = str(clip_media_path(sample, read_annotations(sample / "annotations.csv")[0].clip_id))
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(checkpoint), clip, "--param",
                                  "audio.hop_ms=20", "--device", "cpu"])
    assert result.exit_code == 2
    assert "hop_ms: 50.0 -> 20.0" in result.stderr and "--allow-mismatch" in result.stderr
    result = runner.invoke(main, ["predict", str(checkpoint), clip, "--param",
                                  "audio.hop_ms=20", "--allow-mismatch", "--device", "cpu"])
    assert result.exit_code == 0, result.output  # same sizes: it runs, at the user's word
    result = runner.invoke(main, ["predict", str(checkpoint), clip, clip, "--text", "hi"])
    assert result.exit_code == 2 and "one clip" in result.stderr


def test_earlier_checkpoint_needs_the_dataset(trained, tmp_path):
    """A ``best.pt`` of the earlier format records no provenance: predict says to pass
    ``--dataset``, and runs with it."""
    checkpoint, built, sample = trained
    model = baselines.EmotionModel.from_pretrained(checkpoint)
    payload = {"format": "sdme-baselines-checkpoint", "version": 1, "model_name": "mren",
               "model_config": json.loads((checkpoint / "config.json").read_text())[
                   "model_config"], "train_config": None, "epoch": 1, "metrics": {},
               "state_dict": model.state_dict()}
    torch.save(payload, tmp_path / "best.pt")
    clip = str(clip_media_path(sample, read_annotations(sample / "annotations.csv")[0].clip_id))
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(tmp_path / "best.pt"), clip])
    assert result.exit_code == 2 and "--dataset" in result.stderr
    result = runner.invoke(main, ["predict", str(tmp_path), clip, "--dataset", str(built),
                                  "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    new = runner.invoke(main, ["predict", str(checkpoint), clip, "--json", "--device", "cpu"])
    assert json.loads(result.stdout)["clips"] == json.loads(new.stdout)["clips"]
