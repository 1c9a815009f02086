"""Hugging Face-format checkpoints (``baselines.checkpoint``): what ``save_pretrained`` writes,
what ``from_pretrained`` refuses, ``push_to_hub`` through the same files (the Hub API is replaced
by a recorder: no network), the model card, and checkpoints of the earlier format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import baselines
from baselines import EmotionModel
from baselines.checkpoint import CheckpointError, TaskInfo
from baselines.data import synthetic_rows
from baselines.models.mren import MREN
from baselines.models.tfn import TFN
from baselines.train import TrainConfig, fit, load_checkpoint, predict

DIMS = {"text": 6, "audio": 5, "vision": 4}
CLASSES = ["calm", "glad", "cross"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-epoch MREN written by fit, with its rows."""
    torch.manual_seed(0)
    rows = synthetic_rows(32, DIMS, len(CLASSES), seed=0, separation=3.0)
    model = baselines.create_model("mren", input_dims=DIMS, num_classes=len(CLASSES), hidden=16)
    out = tmp_path_factory.mktemp("ckpt") / "mren"
    fit(model, rows, rows[:8], TrainConfig(epochs=2, batch_size=8, device="cpu", progress=False,
                                           out_dir=str(out)),
        task_info=TaskInfo.for_model(model, class_names=CLASSES))
    return model, out, rows


def test_from_pretrained_rebuilds_the_model_with_its_buffers(trained):
    model, folder, rows = trained
    assert bool(model.prototype_ready.any())  # prototypes were learnt: a real buffer to keep
    loaded = EmotionModel.from_pretrained(folder)
    assert type(loaded) is MREN and not loaded.training
    assert torch.equal(loaded.prototype, model.prototype)
    assert torch.equal(loaded.prototype_ready, model.prototype_ready)
    assert loaded.task_info.class_names == CLASSES
    assert loaded.fit_summary["select_metric"] == "accuracy"
    assert MREN.from_pretrained(folder).config == model.config  # the class's own loader too
    np.testing.assert_array_equal(predict(loaded, rows).logits, predict(model, rows).logits)
    card = (folder / "README.md").read_text()
    assert "library_name: sdme" in card and "calm, glad, cross" in card
    assert f"Selected epoch {loaded.fit_summary['epoch']}" in card


def test_from_pretrained_refuses_what_does_not_fit(trained, tmp_path):
    _, folder, _ = trained
    with pytest.raises(CheckpointError, match="holds a 'mren' model .*not a TFN"):
        TFN.from_pretrained(folder)
    copy = tmp_path / "copy"
    copy.mkdir()
    config = json.loads((folder / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        EmotionModel.from_pretrained(copy)
    config["model_config"]["hidden"] = 8  # other sizes than the weights
    (copy / "config.json").write_text(json.dumps(config))
    (copy / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="model.safetensors: the weights do not fit"):
        EmotionModel.from_pretrained(copy)
    (copy / "config.json").write_text(json.dumps({"hidden_size": 8}))  # someone else's model
    with pytest.raises(CheckpointError, match="not an SDME model checkpoint"):
        EmotionModel.from_pretrained(copy)
    with pytest.raises(ValueError, match="2 class names for a model with 3 classes"):
        TaskInfo.for_model(EmotionModel.from_pretrained(folder), class_names=["a", "b"])


def test_push_to_hub_uploads_the_same_files(trained, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    model, folder, _ = trained
    model = EmotionModel.from_pretrained(folder)
    uploaded: dict[str, object] = {}

    def create_repo(self, repo_id, **kwargs):
        class Url(str):
            pass
        url = Url(f"https://huggingface.co/{repo_id}")
        url.repo_id = repo_id
        return url

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploaded["repo"] = repo_id
        uploaded["files"] = {p.name: p.read_bytes() for p in folder_path.iterdir()}
        return "commit-url"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    assert model.push_to_hub("someone/mren-test") == "commit-url"
    files = uploaded["files"]
    assert uploaded["repo"] == "someone/mren-test"
    assert set(files) == {"model.safetensors", "config.json", "README.md"}
    assert json.loads(files["config.json"]) == json.loads((folder / "config.json").read_text())
    assert files["model.safetensors"] == (folder / "model.safetensors").read_bytes()


def test_earlier_checkpoints_still_load(trained, tmp_path):
    from dataclasses import asdict

    model, _, rows = trained
    payload = {"format": "sdme-baselines-checkpoint", "version": 1, "model_name": "mren",
               "model_config": asdict(model.config), "train_config": None, "epoch": 1,
               "metrics": {"val_accuracy": 0.5}, "state_dict": model.state_dict()}
    torch.save(payload, tmp_path / "best.pt")
    for path in (tmp_path / "best.pt", tmp_path):  # the file, or the run folder holding it
        loaded = load_checkpoint(path)
        assert loaded.model_name == "mren" and loaded.fit_summary["epoch"] == 1
        np.testing.assert_array_equal(predict(loaded, rows).logits, predict(model, rows).logits)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint here"):
        load_checkpoint(tmp_path / "empty")
