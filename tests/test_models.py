"""Every registered model, on tiny batches: forward, backward, shapes, NaN and relevance checks.

Parametrized over ``baselines.list_models()``: registering a model adds it here with no test code.
"""

from __future__ import annotations

import math

import pytest
import torch

import baselines
from baselines import Batch, ModelOutput
from baselines.data import collate, synthetic_rows

MODELS = baselines.list_models()
DIMS = {"text": 6, "audio": 5, "vision": 4}
NUM_CLASSES = 3
B = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(name: str, task: str = "discrete", dims: dict[str, int] | None = None):
    torch.manual_seed(0)
    return baselines.create_model(name, input_dims=dict(dims or DIMS), num_classes=NUM_CLASSES,
                                  task=task, hidden=16, dropout=0.1)


def make_batch(case: str, task: str = "discrete") -> Batch:
    rows = synthetic_rows(B, DIMS, NUM_CLASSES, task=task, seed=3, min_len=1, max_len=5)
    if case == "missing":
        # sample 0 lacks text, sample 1 has only text, sample 2 lacks vision, sample 3 is whole.
        rows[0]["text_feat"] = None
        rows[0]["relevance_text"] = None
        rows[1]["audio_feat"] = rows[1]["vision_feat"] = None
        rows[2]["vision_feat"] = None
        rows[2]["relevance_audio"] = float("nan")  # known modality, unknown relevance
    batch = collate(rows, input_dims=DIMS, task=task)
    if case == "absent":  # a modality dropped from the whole batch (robustness condition)
        del batch.features["audio"], batch.masks["audio"], batch.relevance["audio"]
    return batch


def present_of(batch: Batch, modality: str) -> torch.Tensor:
    mask = batch.masks.get(modality)
    return torch.zeros(batch.size, dtype=torch.bool) if mask is None else mask.any(-1)


def check_output(model, batch: Batch, out: ModelOutput) -> None:
    out_dim = NUM_CLASSES if model.config.task == "discrete" else 1
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (B, out_dim)
    assert torch.isfinite(out.logits).all()
    for m, logits in out.modality_logits.items():
        assert logits.shape == (B, out_dim), m
        assert torch.isfinite(logits).all(), m
    for m, emb in out.embeddings.items():
        assert emb.shape[0] == B and torch.isfinite(emb).all(), m
    if out.relevance:
        weights = torch.stack([out.relevance[m] for m in out.relevance], dim=1).float()
        present = torch.stack([present_of(batch, m) for m in out.relevance], dim=1)
        assert weights.shape == (B, len(out.relevance))
        assert torch.isfinite(weights).all()
        assert (weights >= 0).all() and (weights <= 1).all()
        assert torch.all(weights[~present] == 0), "a missing modality got relevance"
        # Each relevance is on its own [0, 1] scale (ModelOutput's contract): no sum to 1.


@pytest.mark.parametrize("case", ["full", "missing", "absent", "continuous"])
@pytest.mark.parametrize("name", MODELS)
def test_forward_backward(name: str, case: str) -> None:
    task = "continuous" if case == "continuous" else "discrete"
    model = build(name, task)
    model.train()
    batch = make_batch("missing" if case == "continuous" else case, task)
    out = model(batch)
    check_output(model, batch, out)

    terms = {"task": model.task_loss(out, batch), **model.extra_losses(out, batch)}
    for key, value in terms.items():
        assert value.dim() == 0 and torch.isfinite(value), key
    sum(terms.values()).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads, "no parameter received a gradient"
    for pname, grad in grads.items():
        assert torch.isfinite(grad).all(), f"non-finite gradient in {pname}"
    assert any(g.abs().sum() > 0 for g in grads.values())


@pytest.mark.parametrize("name", MODELS)
def test_eval_is_deterministic_and_batch_independent(name: str) -> None:
    model = build(name).eval()
    batch = make_batch("missing")
    with torch.no_grad():
        first, second = model(batch).logits, model(batch).logits
        # The first sample alone gives the same output as inside the batch (no leakage
        # between samples through padding or batch statistics).
        alone = collate(synthetic_rows(B, DIMS, NUM_CLASSES, seed=3, min_len=1, max_len=5)[3:],
                        input_dims=DIMS)
        single = model(alone).logits
    assert torch.equal(first, second)
    assert torch.allclose(single[0], first[3], atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_robustness_variants_predict_as_if_each_were_alone(name: str) -> None:
    """In ``predict_variants`` a modality's encoding is reused across a batch's variants
    (``blocks.reuse_encodings``): each variant's logits equal the model's on that variant alone,
    bit for bit, under a drop, per-modality and all-modality noise, with clips lacking one."""
    from baselines.train import make_config, predict_variants
    from benchmark.robustness import BatchConditions

    model = build(name).eval()
    rows = synthetic_rows(10, DIMS, NUM_CLASSES, seed=4, min_len=1, max_len=5,
                          missing_prob=0.2)
    conditions = BatchConditions(["drop:audio", "noise:text:0.5", "noise:all:1"],
                                 dict.fromkeys(DIMS, 1.0), seed=0, modalities=list(DIMS))
    made: list[tuple[str, Batch]] = []

    def variants(batch):
        for name_, variant in conditions(batch):
            made.append((name_, variant))
            yield name_, variant

    out = predict_variants(model, rows, make_config(batch_size=4, progress=False), variants)
    with torch.no_grad():
        for k, (condition, variant) in enumerate(made):
            batch_index, size = k // 4, variant.size
            alone = model(variant).logits.numpy()
            start = batch_index * 4
            assert (out[condition].logits[start:start + size] == alone).all(), condition


def test_an_encoding_is_reused_only_for_the_same_tensors_outside_autograd() -> None:
    from baselines.models.blocks import encode_once, reuse_encodings

    calls: list[int] = []

    def encoder(x, mask):
        calls.append(1)
        return x.sum(1)

    x, mask = torch.ones(2, 3, 4), torch.ones(2, 3, dtype=torch.bool)
    with torch.no_grad():
        encode_once(encoder, x, mask)
        encode_once(encoder, x, mask)
        assert len(calls) == 2  # outside a block nothing is kept
        with reuse_encodings():
            first = encode_once(encoder, x, mask)
            assert encode_once(encoder, x, mask) is first and len(calls) == 3
            encode_once(encoder, x.clone(), mask)  # equal values, another tensor: encoded
            encode_once(lambda a, b: a.sum(1), x, mask)  # another computation: encoded
            assert len(calls) == 4
    with reuse_encodings():  # a training step (autograd on) always encodes
        encode_once(encoder, x, mask)
        encode_once(encoder, x, mask)
    assert len(calls) == 6
    with torch.no_grad(), reuse_encodings():  # an input changed in place is encoded anew
        before = encode_once(encoder, x, mask)
        x.mul_(2)
        after = encode_once(encoder, x, mask)
    assert len(calls) == 8 and torch.equal(after, 2 * before)


@pytest.mark.parametrize("name", MODELS)
def test_input_dims_come_from_config(name: str) -> None:
    wider = {m: d + 3 for m, d in DIMS.items()}
    model = build(name, dims=wider).eval()
    batch = collate(synthetic_rows(B, wider, NUM_CLASSES, seed=1), input_dims=wider)
    with torch.no_grad():
        assert model(batch).logits.shape == (B, NUM_CLASSES)
    with pytest.raises(RuntimeError):
        model(make_batch("full"))  # features of the old sizes do not fit


@pytest.mark.parametrize("name", MODELS)
def test_unknown_option_is_rejected(name: str) -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        baselines.create_model(name, input_dims=DIMS, no_such_option=1)


def test_registry_names_unknown_model() -> None:
    with pytest.raises(KeyError, match="Did you mean 'mren'"):
        baselines.create_model("mrem")


@pytest.mark.parametrize("name", MODELS)
def test_no_nan_when_every_sample_lacks_a_modality(name: str) -> None:
    model = build(name)
    rows = synthetic_rows(B, DIMS, NUM_CLASSES, seed=5)
    for row in rows:
        row["vision_feat"] = None
    batch = collate(rows, input_dims=DIMS)
    out = model(batch)
    loss = model.task_loss(out, batch) + sum(model.extra_losses(out, batch).values(),
                                             torch.zeros(()))
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", MODELS)
def test_registered_model_builds_its_config_class(name: str) -> None:
    spec = baselines.MODELS.get(name)
    assert baselines.MODELS.meta(name)["description"]
    model = build(name)
    assert isinstance(model, spec.model_class)
    assert type(model.config) is spec.model_class.config_class
    assert model.model_name == name


def test_options_are_typed_and_checked_by_the_config_class() -> None:
    # Strings from YAML or the command line are parsed to each field's type.
    model = baselines.create_model("tfn", input_dims=DIMS, hidden="8", dropout="0.25",
                                   sequence_modalities="[text, audio]", post_fusion_dim=4)
    assert (model.config.hidden, model.config.dropout) == (8, 0.25)
    assert model.config.sequence_modalities == ("text", "audio")
    assert baselines.create_model("mren", input_dims=DIMS, rse_weight="1e-2").config.rse_weight \
        == pytest.approx(0.01)
    with pytest.raises(baselines.ModelConfigError, match="did you mean 'hidden'"):
        baselines.create_model("late_fusion", input_dims=DIMS, hiden=8)
    with pytest.raises(ValueError, match="'encoder': 'lstm' is not one of"):
        baselines.create_model("misa", input_dims=DIMS, encoder="lstm")
    with pytest.raises(ValueError, match="'task': 'regression'"):
        baselines.create_model("early_fusion", input_dims=DIMS, task="regression")


def test_variants_are_declared_as_data() -> None:
    assert not baselines.create_model("mren-no-rse", input_dims=DIMS).config.rse
    assert baselines.create_model("mren-no-rse", input_dims=DIMS, rse=True).config.rse
    assert baselines.create_model("mren", input_dims=DIMS).config.rse
    # A fixed option may be repeated (a checkpoint's config does) but not changed.
    assert baselines.create_model("audio_only", input_dims=DIMS,
                                  modality="audio").config.modality == "audio"
    with pytest.raises(ValueError, match="fixed to 'text'.*use 'vision_only' instead"):
        baselines.create_model("text_only", input_dims=DIMS, modality="vision")


def test_register_model_forms() -> None:
    from baselines.models.late_fusion import LateFusion

    def plain_factory(**options):
        """A factory function, timm's form."""
        return LateFusion(LateFusion.config_class(**options))

    try:
        baselines.register_model("test-factory")(plain_factory)
        spec = baselines.register_model("test-variant", LateFusion,
                                        defaults={"unimodal_loss_weight": 0.0})
        assert "test-variant" in baselines.list_models()
        assert baselines.create_model("test-factory", input_dims=DIMS).model_name == \
            "test-factory"
        assert baselines.MODELS.meta("test-factory")["description"] == \
            "A factory function, timm's form."
        assert baselines.create_model("test-variant", input_dims=DIMS).config \
            == spec.config(input_dims=DIMS)
        assert spec.config(input_dims=DIMS).unimodal_loss_weight == 0.0
        with pytest.raises(baselines.ModelConfigError, match="no_such"):
            baselines.register_model("test-bad", LateFusion, defaults={"no_such": 1})
        assert "test-bad" not in baselines.list_models()
    finally:
        for name in ("test-factory", "test-variant", "test-bad"):
            baselines.MODELS.unregister(name)


def test_gru_encoder_reads_each_rows_last_real_step() -> None:
    """The padded GRU's gathered state is the one packing by length gives (the reference),
    with the same gradients, so dropping packing (quadratic backward on CPU) changes no result.
    """
    from baselines.models.blocks import SequenceEncoder

    torch.manual_seed(0)
    encoder = SequenceEncoder(5, 8, kind="gru", num_layers=2)
    lengths = torch.tensor([4, 1, 3, 0])  # the last row lacks the modality
    x = torch.randn(4, 4, 5)
    mask = torch.arange(4).unsqueeze(0) < lengths.unsqueeze(1)
    x = (x * mask.unsqueeze(-1)).requires_grad_()
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        encoder.proj(x), lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
    reference = encoder.rnn(packed)[1][-1] * mask.any(-1, keepdim=True)
    (grad_ref,) = torch.autograd.grad(reference.sum(), x)
    got = encoder(x, mask)
    (grad_got,) = torch.autograd.grad(got.sum(), x)
    assert torch.allclose(got, reference, atol=1e-6)
    assert torch.allclose(grad_got, grad_ref, atol=1e-6)
    assert torch.equal(got[3], torch.zeros(8))
