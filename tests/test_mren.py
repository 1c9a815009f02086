"""MREN's own parts: relevance gates that switch a modality off, the Bayes fusion, the RSE loss
on human per-modality labels and its weak form, the human relevance term, the contrastive loss,
the ablations, and learning per-modality semantics and relevance on synthetic rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import baselines
from baselines import ModelOutput
from baselines.data import collate, synthetic_rows
from baselines.train import TrainConfig, fit, predict, seed_everything
from benchmark.metrics import relevance_auroc

DIMS = {"text": 6, "audio": 5, "vision": 4}
MODS = tuple(DIMS)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(name: str = "mren", **options):
    seed_everything(0)
    return baselines.create_model(name, input_dims=DIMS, num_classes=3, hidden=16,
                                  dropout=0.0, **options)


def batch_of(n: int = 6, seed: int = 0, **kwargs):
    return collate(synthetic_rows(n, DIMS, 3, seed=seed, **kwargs), input_dims=DIMS)


# ----------------------------------------------------------------------------- fusion


def test_a_closed_gate_switches_the_modality_off() -> None:
    model = build().eval()
    z = torch.randn(4, 3, 3)
    present = torch.ones(4, 3, dtype=torch.bool)
    gates = torch.zeros(4, 3, 3)
    gates[:, 2] = -30.0  # vision off
    logits, _, _ = model._channel_fusion(z, gates, present)
    other = z.clone()
    other[:, 2] = torch.randn(4, 3) * 10  # whatever vision says
    assert torch.allclose(torch.softmax(logits, -1),
                          torch.softmax(model._channel_fusion(other, gates, present)[0], -1),
                          atol=1e-5)
    # An open gate lets it matter.
    gates[:, 2] = 0.0
    assert not torch.allclose(model._channel_fusion(z, gates, present)[0],
                              model._channel_fusion(other, gates, present)[0])


def test_relevance_is_a_probability_per_modality_not_a_share() -> None:
    model = build().eval()
    with torch.no_grad():
        out = model(batch_of(8))
    weights = torch.stack([out.relevance[m] for m in MODS], 1)
    assert ((weights >= 0) & (weights <= 1)).all()
    assert not torch.allclose(weights.sum(1), torch.ones(8), atol=1e-3)
    # It is the posterior probability that the modality shows the clip's class:
    # sum_y p(y | x) P(e_m = y | x_m, y).
    posterior = torch.softmax(out.logits, -1)
    expected = (posterior.unsqueeze(1) * out.aux["conditional"]).sum(-1)
    assert torch.allclose(weights, expected, atol=1e-6)


def test_fusion_agrees_with_bayes_rule_on_a_small_case() -> None:
    """Brute force: p(y | x) ∝ prior(y) prod_m sum_e P(e | y) L_m(e), with
    P(e | y) = rho[y] [e = y] + (1 - rho[y]) D[y, e]."""
    model = build().eval()
    k = 3
    with torch.no_grad():
        model.deviation_logits.normal_()
        model.log_prior.normal_()
        model.class_prior.normal_()
    z = torch.randn(2, 3, k)
    gates = torch.randn(2, 3, k)
    present = torch.tensor([[True, True, True], [True, False, True]])
    logits, _, _ = model._channel_fusion(z, gates, present)
    rho = torch.sigmoid(gates)
    dev = torch.softmax(model.deviation_logits, -1)
    for b in range(2):
        scores = []
        for y in range(k):
            total = model.class_prior[y].item()
            for m in range(3):
                if not present[b, m]:
                    continue
                lik = torch.softmax(z[b, m], -1) / model.log_prior[m].exp()
                channel = (1 - rho[b, m, y]) * dev[m, y] + rho[b, m, y] * torch.eye(k)[y]
                total += float(torch.log((channel * lik).sum()).detach())
            scores.append(total)
        assert torch.allclose(torch.softmax(logits[b], -1),
                              torch.softmax(torch.tensor(scores), -1), atol=1e-5)


# ----------------------------------------------------------------------------- losses


def test_rse_uses_human_modality_labels_where_known() -> None:
    model = build(contrastive=False)
    batch = batch_of(6, deviation_prob=0.5)
    out = model(batch)
    human = model.human_modality_labels(batch, out.aux["present"])
    assert torch.equal(human, torch.stack([batch.modality_labels[m] for m in MODS], 1))
    expected = torch.stack([torch.nn.functional.cross_entropy(
        out.modality_logits[m], batch.modality_labels[m], reduction="none") for m in MODS],
        1).mean()
    assert torch.allclose(model.rse_loss(out, batch, human), expected, atol=1e-6)
    # A label outside the model's classes is refused by name.
    batch.modality_labels["text"][0] = 5
    with pytest.raises(ValueError, match="label_<m> class index"):
        model.human_modality_labels(batch, out.aux["present"])


def test_weak_form_without_human_labels_is_the_posterior_of_the_shown_class() -> None:
    model = build("mren-no-human")
    batch = batch_of(6)
    out = model(batch)
    human = model.human_modality_labels(batch, out.aux["present"])
    assert (human == -1).all()  # label_<m> is in the batch but ignored
    targets = model.weak_targets(out, batch)
    assert torch.allclose(targets.sum(-1), torch.ones(6, 3), atol=1e-5)
    assert not targets.requires_grad
    # An open gate makes it the clip label; a shut one (deviation table still uniform) leaves
    # the modality's own reading, not pulled towards the clip label.
    y = batch.labels
    with torch.no_grad():
        out.aux["gates"].fill_(30.0)
    assert torch.allclose(model.weak_targets(out, batch),
                          torch.nn.functional.one_hot(y, 3).float().unsqueeze(1).expand(-1, 3, -1),
                          atol=1e-6)
    with torch.no_grad():
        out.aux["gates"].fill_(-30.0)
    z = torch.stack([out.modality_logits[m] for m in MODS], 1).detach()
    assert torch.allclose(model.weak_targets(out, batch), torch.softmax(z, -1), atol=1e-6)
    # Without relevance estimation the weak target is the clip label.
    plain = build("mren-no-relevance", human=False)
    out = plain(batch)
    assert torch.equal(plain.weak_targets(out, batch).argmax(-1),
                       y.unsqueeze(1).expand(-1, 3))


def test_human_relevance_term_is_bce_of_the_conditional_relevance() -> None:
    model = build()
    batch = batch_of(4)
    batch.relevance = {"text": torch.tensor([1.0, 0.0, float("nan"), 1.0]),
                       "audio": torch.tensor([float("nan")] * 4),
                       "vision": torch.tensor([0.5, 1.0, 0.0, 0.0])}
    out = model(batch)
    loss = model.human_relevance_loss(out, batch)
    p = out.aux["conditional"].detach().gather(
        -1, batch.labels.view(-1, 1, 1).expand(-1, 3, 1))[..., 0]
    pairs = [(0, 0, 1.0), (1, 0, 0.0), (3, 0, 1.0), (0, 2, 0.5), (1, 2, 1.0), (2, 2, 0.0),
             (3, 2, 0.0)]
    expected = np.mean([-(t * np.log(float(p[b, m])) + (1 - t) * np.log(1 - float(p[b, m])))
                        for b, m, t in pairs])
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-4)
    batch.relevance = {m: torch.full((4,), float("nan")) for m in MODS}
    assert model.human_relevance_loss(out, batch) is None


def _contrastive(model, embeddings: dict[str, torch.Tensor], labels: torch.Tensor) -> float:
    out = ModelOutput(logits=torch.zeros(len(labels), 3), embeddings=embeddings)
    weights = torch.ones(len(labels), 3)
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
    # Per-(sample, modality) categories: a deviating audio that shows its own class is
    # aligned when its category is the class it shows.
    shown = torch.stack([labels, labels[torch.tensor([2, 4, 0, 5, 1, 3])], labels], 1)
    out = ModelOutput(logits=torch.zeros(6, 3), embeddings=shuffled)
    ones, present = torch.ones(6, 3), torch.ones(6, 3, dtype=torch.bool)
    assert float(model.contrastive_loss(out, shown, ones, present)) == pytest.approx(
        _contrastive(model, aligned, labels), rel=1e-5)
    # With a single modality there is no cross-modal positive: the loss is 0, not NaN.
    present = torch.zeros(6, 3, dtype=torch.bool)
    present[:, 0] = True
    assert float(model.contrastive_loss(ModelOutput(logits=torch.zeros(6, 3),
                                                    embeddings=aligned),
                                        labels, ones, present)) == 0.0


def test_contrastive_categories_follow_the_shown_class() -> None:
    model = build()
    batch = batch_of(8, deviation_prob=0.5)
    out = model(batch)
    human = model.human_modality_labels(batch, out.aux["present"])
    categories, weights = model.contrastive_targets(out, batch, human)
    assert torch.equal(categories, human) and (weights == 1).all()
    weak = build("mren-no-human")
    out = weak(batch)
    categories, weights = weak.contrastive_targets(
        out, batch, weak.human_modality_labels(batch, out.aux["present"]))
    assert torch.equal(categories, batch.labels.unsqueeze(1).expand(-1, 3))
    assert torch.allclose(weights, torch.stack([out.relevance[m] for m in MODS], 1))


def test_prototypes_follow_the_classes_and_are_saved() -> None:
    model = build(prototype_momentum=0.5).train()
    batch = batch_of(12)
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


def test_continuous_task_gates_and_categories() -> None:
    model = baselines.create_model("mren", input_dims=DIMS, task="continuous",
                                   category_bounds=[-0.5, 0.5])
    scores = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0])
    assert model.categories(scores).tolist() == [0, 1, 1, 2, 2]
    assert model.prototype.shape[1] == 3
    s = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    present = torch.ones(2, 3, dtype=torch.bool)
    rho = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert model._gated_mean(s, rho, present).tolist() == [1.0, 2.0]  # all shut: plain mean


# ----------------------------------------------------------------------------- ablations


@pytest.mark.parametrize(("name", "switch"), [
    ("mren-no-relevance", "relevance"), ("mren-no-rse", "rse"),
    ("mren-no-contrastive", "contrastive"), ("mren-no-human", "human")])
def test_each_ablation_switches_off_one_part(name: str, switch: str) -> None:
    full, ablated = build(), build(name)
    changed = {k for k, v in vars(full.config).items() if getattr(ablated.config, k) != v}
    assert changed == {switch}
    batch = batch_of(6, deviation_prob=0.4)
    out = ablated(batch)
    losses = ablated.extra_losses(out, batch)
    if switch == "relevance":
        assert out.relevance == {} and "human_relevance" not in losses
    if switch in ("rse", "contrastive"):
        assert switch not in losses
    if switch == "human":
        assert "human_relevance" not in losses
        other = batch_of(6, deviation_prob=0.4)
        other.modality_labels = {m: (v + 1) % 3 for m, v in other.modality_labels.items()}
        assert torch.equal(ablated.extra_losses(out, other)["rse"], losses["rse"])


# ----------------------------------------------------------------------------- learning


@pytest.mark.slow
def test_learns_modality_semantics_and_switches_deviating_modalities_off() -> None:
    """Trained on clips where each modality shows another class 30% of the time (with
    label_<m> and relevance_<m>), MREN's heads read what each modality shows and, on held-out
    clips where at most one modality deviates (where the clip's class is recoverable), its
    relevance singles out the deviating modality and its prediction is right."""
    options = dict(separation=3.0, deviation_prob=0.3)
    train = synthetic_rows(240, DIMS, 3, seed=0, **options)
    test = synthetic_rows(150, DIMS, 3, seed=1, **options)
    model = build(encoder="mean")
    fit(model, train, None, TrainConfig(epochs=12, batch_size=16, lr=5e-3, patience=0,
                                        device="cpu", progress=False))
    hidden = [{k: v for k, v in r.items() if not k.startswith(("label_", "relevance_"))}
              for r in test]
    predictions = predict(model, hidden)
    deviation = np.array([sum(r[f"relevance_{m}"] == 0 for m in MODS) for r in test])
    weights, relevant, heads = [], [], []
    for i, row in enumerate(test):
        for m in MODS:
            heads.append(predictions.modality_logits[m][i].argmax() == row[f"label_{m}"])
            if deviation[i] <= 1:
                weights.append(predictions.relevance[m][i])
                relevant.append(row[f"relevance_{m}"] == 1.0)
    assert np.mean(heads) > 0.85
    assert sum(not r for r in relevant) > 30
    assert relevance_auroc(np.array(weights), np.array(relevant)) > 0.95
    correct = predictions.predicted() == predictions.labels
    assert correct[deviation <= 1].mean() > 0.85
