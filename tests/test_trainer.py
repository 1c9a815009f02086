"""The one trainer: learning on synthetic data, reproducibility, checkpoints, YAML configs, hooks.

Training runs use ``baselines.data.synthetic_rows`` (class-dependent means per modality), tiny
dimensions and a single torch thread so that each stays well under a few seconds on 2 cores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

import baselines
from baselines.data import collate, synthetic_rows
from baselines.train import (
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    load_config,
    predict,
    resolve_amp,
    save_checkpoint,
    seed_everything,
    selection_metrics,
)

MODELS = baselines.list_models()
DIMS = {"text": 6, "audio": 5, "vision": 4}
NUM_CLASSES = 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(name: str, seed: int = 0, task: str = "discrete", **options):
    seed_everything(seed)
    options = {"hidden": 16, "dropout": 0.0, **options}
    return baselines.create_model(name, input_dims=DIMS, num_classes=NUM_CLASSES, task=task,
                                  **options)


def legacy_payload(model, name: str) -> dict:
    """A checkpoint in the earlier format (``best.pt``), as ``save_checkpoint`` wrote it."""
    from dataclasses import asdict

    return {"format": "sdme-baselines-checkpoint", "version": 1, "model_name": name,
            "model_config": asdict(model.config), "train_config": None, "epoch": 0,
            "metrics": {}, "state_dict": {k: v.detach().cpu()
                                          for k, v in model.state_dict().items()}}


def cpu_config(**values) -> TrainConfig:
    base = {"epochs": 12, "batch_size": 16, "lr": 5e-3, "patience": 0, "device": "cpu",
            "progress": False}
    return TrainConfig(**{**base, **values})


@pytest.fixture(scope="module")
def train_rows():
    return synthetic_rows(64, DIMS, NUM_CLASSES, seed=0, separation=3.0)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_fits_a_learnable_set(name: str, train_rows) -> None:
    model = build(name)
    before = evaluate(model, train_rows, cpu_config()).metrics["accuracy"]
    result = fit(model, train_rows, None, cpu_config())
    after = evaluate(model, train_rows, cpu_config()).metrics["accuracy"]
    assert after >= 0.9, f"{name}: training accuracy {after:.3f} (before {before:.3f})"
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.best_epoch == len(result.history) - 1  # no validation: the last epoch


def test_continuous_task_fits(train_rows) -> None:
    rows = synthetic_rows(64, DIMS, task="continuous", seed=0, separation=3.0)
    model = build("mren", task="continuous")
    start = evaluate(model, rows, cpu_config()).metrics["mae"]
    result = fit(model, rows, rows[:32], cpu_config(epochs=15))
    assert result.select_metric == "mae"
    assert evaluate(model, rows, cpu_config()).metrics["mae"] < 0.5 * start


def test_same_seed_same_numbers(train_rows) -> None:
    runs = []
    for seed in (0, 0, 1):
        model = build("mren", seed=seed, dropout=0.2)
        result = fit(model, train_rows, train_rows[:32], cpu_config(epochs=3, seed=seed))
        runs.append(([h["loss"] for h in result.history], predict(model, train_rows).logits))
    (loss_a, logits_a), (loss_b, logits_b), (loss_c, logits_c) = runs
    assert loss_a == loss_b
    assert np.array_equal(logits_a, logits_b)
    assert loss_a != loss_c  # the seed matters (the comparison above can fail)
    assert not np.array_equal(logits_a, logits_c)


def test_selection_on_validation_and_early_stopping(tmp_path, train_rows) -> None:
    val = synthetic_rows(24, DIMS, NUM_CLASSES, seed=9, separation=3.0)
    model = build("early_fusion")
    config = cpu_config(epochs=40, patience=2, select_metric="loss", out_dir=str(tmp_path))
    result = fit(model, train_rows, val, config)
    val_losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(val_losses))
    assert result.best_score == pytest.approx(min(val_losses))
    # Patience: it stopped two epochs after the best one, or ran out of epochs.
    assert len(result.history) == min(result.best_epoch + 3, 40)
    assert result.stopped_early == (len(result.history) < 40)
    # The weights left in the model are the selected ones.
    assert evaluate(model, val, config).metrics["loss"] == pytest.approx(result.best_score,
                                                                         rel=1e-5)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(len(result.history)))


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip(tmp_path, name: str, train_rows) -> None:
    model = build(name)
    fit(model, train_rows[:32], None, cpu_config(epochs=1))  # moves weights off their init
    path = save_checkpoint(tmp_path / "ckpt", model, name, cpu_config(), epoch=0)
    assert {p.name for p in path.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    loaded = load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.model_name == name
    assert loaded.config == model.config
    expected_state = model.state_dict()  # parameters and buffers (prototypes, centres, ...)
    assert set(loaded.state_dict()) == set(expected_state)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected_state[key]), key
    expected = predict(model, train_rows)
    got = predict(loaded, train_rows)
    assert got.ids == expected.ids
    assert np.array_equal(got.logits, expected.logits)
    for m in expected.relevance:
        assert np.array_equal(got.relevance[m], expected.relevance[m])


def test_fit_writes_checkpoint_and_resolved_config(tmp_path, train_rows) -> None:
    model = build("mren")
    config = cpu_config(epochs=2, out_dir=str(tmp_path / "run"))
    result = fit(model, train_rows, train_rows[:16], config)
    assert result.checkpoint == tmp_path / "run"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model_name"] == "mren"
    assert saved["training"]["epoch"] == result.best_epoch
    assert saved["training"]["train_config"]["epochs"] == 2
    assert saved["training"]["metrics"]["val_accuracy"] == result.best_score
    assert not list((tmp_path / "run").glob(".*"))  # staged writes leave nothing behind
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"] == "mren"
    assert saved["model_config"]["input_dims"] == DIMS
    assert load_config(tmp_path / "run" / "config.yaml") == config  # the file reads back
    loaded = load_checkpoint(result.checkpoint)
    assert np.array_equal(predict(loaded, train_rows).logits, predict(model, train_rows).logits)


def test_checkpoint_written_before_shared_encoder_options_loads(tmp_path, train_rows) -> None:
    # best.pt as written before TFN's config gained ``num_heads`` (and with a tuple, as
    # ``dataclasses.asdict`` stored ``sequence_modalities`` then).
    model = build("tfn")
    payload = legacy_payload(model, "tfn")
    del payload["model_config"]["num_heads"]
    payload["model_config"]["sequence_modalities"] = ("text",)
    path = tmp_path / "best.pt"
    torch.save(payload, path)
    loaded = load_checkpoint(path)
    assert loaded.model_name == "tfn" and loaded.config == model.config
    assert np.array_equal(predict(loaded, train_rows).logits, predict(model, train_rows).logits)


def test_bad_checkpoint_is_named(tmp_path) -> None:
    path = tmp_path / "junk.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="junk.pt.*not an SDME baselines checkpoint"):
        load_checkpoint(path)


def test_yaml_config_and_overrides(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("lr: 0.01\nepochs: 7\nbatch_size: 8\nout_dir: null\n")
    config = load_config(path, epochs=3, device="cpu")
    assert (config.lr, config.epochs, config.batch_size, config.device) == (0.01, 3, 8, "cpu")
    assert config.weight_decay == TrainConfig().weight_decay  # untouched default
    # Command-line style string overrides are parsed to the field's type.
    config = load_config(path, lr="1e-4", patience="0", max_len="50", progress="false")
    assert config.lr == pytest.approx(1e-4) and config.patience == 0
    assert config.max_len == 50 and config.progress is False
    assert load_config(None, seed=4).seed == 4
    with pytest.raises(ValueError, match="did you mean 'epochs'"):
        load_config(path, epoch=3)
    with pytest.raises(ValueError, match="batch_size"):
        load_config(path, batch_size="many")
    path.write_text("- lr\n")
    with pytest.raises(ValueError, match="train.yaml: expected a mapping"):
        load_config(path)


def test_amp_resolution() -> None:
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) is None
    assert resolve_amp("off", cpu) is None
    assert resolve_amp("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="CUDA"):
        resolve_amp("fp16", cpu)


def test_bf16_autocast_on_cpu_trains(train_rows) -> None:
    model = build("mren")
    result = fit(model, train_rows[:32], None, cpu_config(epochs=2, amp="bf16"))
    assert all(np.isfinite(h["loss"]) for h in result.history)
    assert predict(model, train_rows, cpu_config(amp="bf16")).logits.dtype == np.float32


def test_mren_ablation_switches_change_losses() -> None:
    batch = collate(synthetic_rows(8, DIMS, NUM_CLASSES, seed=2), input_dims=DIMS)
    no_relevance = collate([{k: v for k, v in row.items() if not k.startswith("relevance_")}
                            for row in synthetic_rows(8, DIMS, NUM_CLASSES, seed=2)],
                           input_dims=DIMS)

    def loss_names(name: str, data=batch, **options) -> set[str]:
        model = build(name, **options).train()
        return set(model.extra_losses(model(data), data))

    assert loss_names("mren") == {"rse", "channel", "human_relevance", "contrastive"}
    assert loss_names("mren", data=no_relevance) == {"rse", "channel", "contrastive"}
    assert loss_names("mren-no-rse") == {"channel", "human_relevance", "contrastive"}
    assert loss_names("mren-no-contrastive") == {"rse", "channel", "human_relevance"}
    assert loss_names("mren-no-human") == {"rse", "channel", "contrastive"}
    assert loss_names("mren-no-relevance") == {"rse", "contrastive"}
    assert loss_names("mren", rse=False, contrastive=False, relevance=False) == set()
    # The trainer reports exactly these terms.
    model = build("mren-no-contrastive")
    history = fit(model, [*synthetic_rows(16, DIMS, NUM_CLASSES)], None,
                  cpu_config(epochs=1)).history
    assert {"loss", "task", "rse", "channel", "human_relevance"} <= set(history[0])
    assert "contrastive" not in history[0]


def test_trains_from_parquet_through_datasets(tmp_path, train_rows) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [{**row, **{f"{m}_feat": row[f"{m}_feat"].tolist() for m in DIMS}}
            for row in train_rows[:40]]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "train.parquet"))
    data = datasets.load_dataset("parquet", data_files=str(tmp_path / "train.parquet"),
                                 split="train", cache_dir=str(tmp_path / "cache"))
    model = build("mren")
    fit(model, data, data, cpu_config(epochs=8))
    predictions = predict(model, data)
    assert predictions.ids == [row["clip_id"] for row in rows]
    assert np.mean(predictions.predicted() == predictions.labels) >= 0.9
    assert set(predictions.relevance) == set(DIMS)
    streamed = data.to_iterable_dataset()  # rows streamed from Arrow, not held in a list
    assert np.array_equal(predict(model, streamed).logits, predictions.logits)


def test_one_shot_iterator_is_refused(train_rows) -> None:
    with pytest.raises(ValueError, match="one-shot iterator"):
        fit(build("early_fusion"), iter(train_rows), None, cpu_config(epochs=1))


def test_selection_metrics_values() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])
    labels = np.array([0, 1, 1, 1])
    metrics = selection_metrics("discrete", logits, labels)
    assert metrics["accuracy"] == pytest.approx(0.5)
    # class 0: P=1/3, R=1 -> F1=0.5; class 1: P=1, R=1/3 -> F1=0.5
    assert metrics["macro_f1"] == pytest.approx(0.5)
    reg = selection_metrics("continuous", np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 3.0,
                                                                                      3.0]))
    assert reg["mae"] == pytest.approx(2 / 3)


class _HookedModel(baselines.EmotionModel):
    """A tiny model that uses every trainer hook (not registered: it is local to this test)."""

    def __init__(self, config: baselines.ModelConfig) -> None:
        super().__init__(config)
        self.frozen = torch.nn.Linear(DIMS["text"], NUM_CLASSES)
        self.head = torch.nn.Linear(DIMS["text"], NUM_CLASSES)
        self.epochs_seen: list[int] = []

    def forward(self, batch):
        from baselines.models.blocks import masked_mean

        pooled = masked_mean(batch.features["text"], batch.masks["text"])
        return baselines.ModelOutput(logits=self.head(pooled) + self.frozen(pooled))

    def extra_losses(self, output, batch):
        return {"l2": 1e-3 * output.logits.pow(2).mean()}

    def param_groups(self, lr, weight_decay):
        return [{"params": self.head.parameters(), "lr": lr, "weight_decay": weight_decay},
                {"params": self.frozen.parameters(), "lr": 0.0, "weight_decay": 0.0}]

    def on_epoch_start(self, epoch):
        self.epochs_seen.append(epoch)


def test_trainer_uses_model_hooks(train_rows) -> None:
    seed_everything(0)
    model = _HookedModel(baselines.ModelConfig(input_dims={"text": DIMS["text"]},
                                               num_classes=NUM_CLASSES))
    frozen = model.frozen.weight.detach().clone()
    head = model.head.weight.detach().clone()
    result = fit(model, train_rows, None, cpu_config(epochs=3))
    assert model.epochs_seen == [0, 1, 2]
    assert torch.equal(model.frozen.weight, frozen)  # lr 0 from param_groups
    assert not torch.equal(model.head.weight, head)
    assert all("l2" in h and h["loss"] == pytest.approx(h["task"] + h["l2"])
               for h in result.history)
    with pytest.raises(ValueError, match="registered name"):
        fit(model, train_rows, None, cpu_config(epochs=1, out_dir="unused"))


def test_predict_variants_reads_each_batch_once(train_rows) -> None:
    from dataclasses import replace

    from baselines.train import predict_variants

    model = build("late_fusion")
    seen: list[int] = []

    def variants(batch):
        seen.append(batch.size)
        yield "", batch
        yield "doubled", replace(batch, features={m: 2 * f for m, f in batch.features.items()})

    out = predict_variants(model, train_rows, cpu_config(), variants)
    assert list(out) == ["", "doubled"] and sum(seen) == len(train_rows)  # one pass
    assert np.array_equal(out[""].logits, predict(model, train_rows, cpu_config()).logits)
    doubled = [{**r, **{f"{m}_feat": 2 * r[f"{m}_feat"] for m in DIMS}} for r in train_rows]
    assert np.allclose(out["doubled"].logits, predict(model, doubled, cpu_config()).logits,
                       atol=1e-5)

    batches: list[int] = []

    def uneven(batch):  # a variant that only the second batch has
        batches.append(batch.size)
        yield "", batch
        if len(batches) == 2:
            yield "late", batch

    with pytest.raises(ValueError, match="variants"):
        predict_variants(model, train_rows, cpu_config(), uneven)

    # Batches and their variants are made one batch ahead on another thread: an error there
    # reaches the caller as it was raised, at that batch, and nothing is left running.
    import threading

    def failing(batch):
        batches.append(batch.size)
        if len(batches) == 3:
            raise RuntimeError("variant maker broke at batch 2")
        yield "", batch

    batches.clear()
    with pytest.raises(RuntimeError, match="broke at batch 2"):
        predict_variants(model, train_rows, cpu_config(batch_size=8), failing)
    assert len(batches) == 3
    assert not [t for t in threading.enumerate() if t.name == "predict-ahead"]


def test_an_error_making_batches_leaves_no_dataloader_workers(train_rows) -> None:
    import multiprocessing

    from baselines.train import predict_variants

    model = build("late_fusion")

    def broken(batch):
        raise RuntimeError("no variants today")
        yield "", batch  # pragma: no cover - makes it a generator

    with pytest.raises(RuntimeError, match="no variants today"):
        predict_variants(model, train_rows, cpu_config(batch_size=8, num_workers=2), broken)
    assert not multiprocessing.active_children()  # ended with the error, not at a later gc


def test_predict_takes_batches_made_under_inference_mode(train_rows) -> None:
    model = build("early_fusion")
    with torch.inference_mode():
        batch = collate(train_rows[:6], input_dims=DIMS)
    assert np.array_equal(predict(model, batch, cpu_config()).logits,
                          predict(model, train_rows[:6], cpu_config()).logits)


def test_batches_are_made_one_ahead_of_the_predictions() -> None:
    """The background maker holds at most the batch after the one being predicted."""
    import time

    from sdme.loading import Ahead as _Ahead

    made: list[int] = []

    def items():
        for k in range(6):
            made.append(k)
            yield k

    ahead = _Ahead(items(), length=6)
    assert len(ahead) == 6
    seen = []
    for item in ahead:
        seen.append(item)
        time.sleep(0.05)  # time enough for the maker to run further if it could
        assert len(made) <= item + 2, (item, made)
    ahead.close()
    assert seen == list(range(6))


def test_one_log_line_per_epoch_when_stderr_is_not_a_terminal(train_rows, capsys) -> None:
    """Off a terminal (logs, nohup, CI) each epoch prints epoch, train loss, validation score
    and seconds, with the numbers the history holds; progress=False prints nothing."""
    import re

    model = build("early_fusion")
    result = fit(model, train_rows, train_rows[:24], cpu_config(epochs=3, seed=4,
                                                                progress=True))
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    for line, record in zip(lines, result.history, strict=True):
        match = re.fullmatch(r"seed 4 epoch (\d)/3: train loss (\d+\.\d{4}), val accuracy "
                             r"(\d\.\d{4})( \(best\))?, (\d+\.\d) s", line)
        assert match, line
        assert int(match.group(1)) == record["epoch"] + 1
        assert float(match.group(2)) == pytest.approx(record["loss"], abs=5e-5)
        assert float(match.group(3)) == pytest.approx(record["val_accuracy"], abs=5e-5)
        assert float(match.group(5)) == pytest.approx(record["seconds"], abs=0.05)
    assert "(best)" in lines[result.best_epoch]
    fit(build("early_fusion"), train_rows, None, cpu_config(epochs=2))  # progress=False
    assert capsys.readouterr().err == ""


def test_first_fit_maps_modality_label_names_with_the_task_info_taxonomy() -> None:
    """Plain rows whose label_<m> are class names train on a fresh model when task_info names
    the classes (the loader is made after the model learns its taxonomy)."""
    from baselines.checkpoint import TaskInfo

    names = ["a", "b", "c"]
    rows = [{**row, **{f"label_{m}": names[int(row["label"])] for m in DIMS}}
            for row in synthetic_rows(16, DIMS, NUM_CLASSES, seed=3)]
    model = build("mren")
    result = fit(model, rows, None, cpu_config(epochs=1),
                 task_info=TaskInfo.for_model(model, class_names=names))
    assert len(result.history) == 1 and model.task_info.class_names == names
    with pytest.raises(ValueError, match="label_text is a class name"):
        fit(build("mren"), [dict(row, label_text="b") for row in rows][:4] + rows[4:], None,
            cpu_config(epochs=1), task_info=TaskInfo.for_model(build("mren")))
