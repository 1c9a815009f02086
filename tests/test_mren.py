"""MREN's own parts: relevance attention, the RSE / human-relevance terms, the contrastive loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import baselines
from baselines import ModelOutput
from baselines.data import collate, synthetic_rows
from baselines.train import TrainConfig, fit, predict, seed_everything

DIMS = {"text": 6, "audio": 5, "vision": 4}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(**options):
    seed_everything(0)
    return baselines.create_model("mren", input_dims=DIMS, num_classes=3, hidden=16,
                                  dropout=0.0, **options)


def test_human_relevance_loss_is_kl_to_normalised_annotations() -> None:
    model = build()
    batch = collate(synthetic_rows(3, DIMS, 3, seed=0), input_dims=DIMS)
    present = torch.ones(3, 3, dtype=torch.bool)
    batch.relevance = {"text": torch.tensor([1.0, 1.0, float("nan")]),
                       "audio": torch.tensor([1.0, 0.0, float("nan")]),
                       "vision": torch.tensor([0.0, 0.0, 1.0])}
    # Sample 0 -> target (.5, .5, 0); sample 1 -> (1, 0, 0); sample 2 has one annotated
    # modality only and is skipped.
    matching = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    assert float(model.human_relevance_loss(matching, present, batch)) == pytest.approx(0.0,
                                                                                         abs=1e-5)
    uniform = torch.full((3, 3), 1 / 3)
    expected = (np.log(0.5 / (1 / 3)) + np.log(3.0)) / 2  # mean KL over the 2 valid samples
    assert float(model.human_relevance_loss(uniform, present, batch)) == pytest.approx(expected,
                                                                                       rel=1e-5)
    # A modality the sample lacks is left out and the weights renormalised over the rest.
    present[1, 1] = False
    partial = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.2, 0.3, 0.5]])
    assert float(model.human_relevance_loss(partial, present, batch)) == pytest.approx(
        np.log(2.0) / 2, rel=1e-5)


def test_rse_weights_each_modality_by_its_relevance() -> None:
    model = build()
    batch = collate(synthetic_rows(4, DIMS, 3, seed=0), input_dims=DIMS)
    out = model(batch)
    only_text = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    text_ce = torch.nn.functional.cross_entropy(out.modality_logits["text"], batch.labels)
    assert torch.allclose(model.rse_loss(out, batch, only_text), text_ce)
    # Gradients reach only the heads of modalities with weight.
    model.zero_grad()
    model.rse_loss(out, batch, only_text).backward()
    assert model.modality_heads["text"][0].weight.grad.abs().sum() > 0
    assert model.modality_heads["audio"][0].weight.grad is None or \
        model.modality_heads["audio"][0].weight.grad.abs().sum() == 0


def _contrastive(model, embeddings: dict[str, torch.Tensor], labels: torch.Tensor) -> float:
    out = ModelOutput(logits=torch.zeros(len(labels), 3), embeddings=embeddings)
    weights = torch.full((len(labels), 3), 1 / 3)
    present = torch.ones(len(labels), 3, dtype=torch.bool)
    return float(model.contrastive_loss(out, labels, weights, present))


def test_contrastive_loss_rewards_cross_modal_category_alignment() -> None:
    model = build(prototypes=False, temperature=0.5)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    centers = torch.nn.functional.normalize(torch.randn(3, 32, generator=torch.Generator()
                                                        .manual_seed(0)), dim=-1)
    aligned = {m: centers[labels] for m in DIMS}
    shuffled = {m: centers[labels[torch.tensor([2, 4, 0, 5, 1, 3])]] if m == "audio"
                else centers[labels] for m in DIMS}
    assert _contrastive(model, aligned, labels) < _contrastive(model, shuffled, labels)
    # With a single modality there is no cross-modal positive: the loss is 0, not NaN.
    single = build(prototypes=False)
    out = ModelOutput(logits=torch.zeros(6, 3), embeddings=aligned)
    present = torch.zeros(6, 3, dtype=torch.bool)
    present[:, 0] = True
    value = single.contrastive_loss(out, labels, torch.ones(6, 3), present)
    assert float(value) == 0.0


def test_prototypes_follow_the_classes_and_are_saved() -> None:
    model = build(prototype_momentum=0.5).train()
    batch = collate(synthetic_rows(12, DIMS, 3, seed=0), input_dims=DIMS)
    assert not model.prototype_ready.any()
    model.extra_losses(model(batch), batch)
    assert model.prototype_ready.all()  # every (modality, class) seen in the batch
    norms = model.prototype.norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    assert "prototype" in model.state_dict()
    frozen = model.prototype.clone()
    model.eval()
    model.extra_losses(model(batch), batch)  # evaluation does not move the prototypes
    assert torch.equal(frozen, model.prototype)


def test_continuous_categories_are_score_bins() -> None:
    model = baselines.create_model("mren", input_dims=DIMS, task="continuous",
                                   category_bounds=[-0.5, 0.5])
    scores = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0])
    assert model.categories(scores).tolist() == [0, 1, 1, 2, 2]
    assert model.prototype.shape[1] == 3


def test_uniform_ablation_gives_uniform_weights() -> None:
    model = build(relevance_attention=False)
    rows = synthetic_rows(4, DIMS, 3, seed=0)
    rows[0]["audio_feat"] = None
    out = model(collate(rows, input_dims=DIMS))
    assert out.relevance["audio"][0] == 0 and out.relevance["text"][0] == pytest.approx(0.5)
    assert out.relevance["vision"][1] == pytest.approx(1 / 3)


@pytest.mark.slow
def test_relevance_weights_single_out_deviating_modalities() -> None:
    """Trained on clips where a modality sometimes shows another class (human relevance 0),
    MREN gives those modalities lower weight on held-out clips than the agreeing ones."""
    train = synthetic_rows(96, DIMS, 3, seed=0, separation=3.0, deviation_prob=0.3)
    test = synthetic_rows(96, DIMS, 3, seed=1, separation=3.0, deviation_prob=0.3)
    model = build()
    fit(model, train, None, TrainConfig(epochs=15, batch_size=16, lr=5e-3, patience=0,
                                        device="cpu", progress=False))
    predictions = predict(model, test)
    deviating, agreeing = [], []
    for i, row in enumerate(test):
        for m in DIMS:
            (deviating if row[f"relevance_{m}"] == 0 else agreeing).append(
                predictions.relevance[m][i])
    assert len(deviating) > 30
    assert np.mean(deviating) < np.mean(agreeing) - 0.04
    assert np.mean(predictions.predicted() == predictions.labels) > 0.7
