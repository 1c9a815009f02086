"""Building blocks shared by the models in ``baselines.models``.

Every model receives a :class:`~baselines.models.base.Batch` in which any modality may be missing,
either for some samples (an all-False mask row) or for the whole batch (the modality's key is
absent). The helpers here make that case safe by construction: a missing modality encodes to a
zero vector, never to NaN, and attention/softmax never runs over an empty set.

Public API (kept stable; other model files build on it):

* :func:`masked_mean` — mean over real steps; zeros for all-False rows.
* :func:`masked_softmax` — softmax over the True entries only; all-False rows give zeros.
* :func:`present_mask` — [B] bool, True where a sample has the modality.
* :func:`model_modalities` — the modalities a config has inputs for, in canonical order.
* :func:`mlp` — Linear → ReLU → Dropout → Linear.
* :class:`SubNet` — TFN-style three-layer sub-network on a pooled vector (Zadeh et al., 2017).
* :func:`attendable` — a key mask that never leaves a row with nothing to attend to.
* :class:`SequenceEncoder` — ([B,T,D], [B,T]) → [B,hidden]; ``kind`` is ``"gru"``,
  ``"transformer"`` or ``"mean"``; :meth:`SequenceEncoder.steps` gives per-step outputs.
* :class:`EncoderConfig` — the options of a model's sequence encoders (``encoder``,
  ``num_layers``, ``num_heads``), a :class:`~baselines.models.base.ModelConfig` to subclass.
* :func:`sequence_encoder` / :func:`modality_encoders` — one encoder, or one per modality, built
  from an :class:`EncoderConfig`.
* :func:`encode_modalities` — run one encoder per modality, zeros for modalities not in the batch.
* :func:`modality_input` — a modality's (features, mask), a zero step with a False mask when
  the batch lacks it.
* :func:`reuse_encodings` / :func:`encode_once` — within one batch's variants (the benchmark's
  robustness conditions), a modality's encoding is computed once per input tensor and reused
  by every variant that leaves that modality untouched.

Masks are assumed to be left-aligned (real steps first, then padding), which is what
``baselines.data.collate`` produces; ``"gru"`` relies on it (it packs by length), the other kinds
do not.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import typing
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from baselines.models.base import MODALITIES, Batch, ModelConfig
from baselines.search import IntRange, SpaceSection

EncoderKind = Literal["gru", "transformer", "mean"]
ENCODER_KINDS: tuple[str, ...] = typing.get_args(EncoderKind)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` [B, T, D] over the steps where ``mask`` [B, T] is True.

    Returns:
        [B, D]; rows whose mask is all False are zeros (not NaN).
    """
    weights = mask.to(x.dtype)
    # One batched product reads x once (x * weights would first write a masked copy of it);
    # kept in x's dtype under autocast, as the elementwise form was.
    with torch.autocast(x.device.type, enabled=False):
        total = torch.bmm(weights.unsqueeze(1), x).squeeze(1)
    count = weights.sum(dim=1, keepdim=True).clamp(min=1.0)
    return total / count


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` over the entries where ``mask`` is True.

    Masked-out entries get weight 0; a row with no True entry is all zeros (not NaN). The
    computation runs in float32 so that weights sum to 1 under mixed precision too.
    """
    scores = scores.float().masked_fill(~mask, float("-inf"))
    any_present = mask.any(dim=dim, keepdim=True)
    scores = torch.where(any_present, scores, torch.zeros_like(scores))
    weights = torch.softmax(scores, dim=dim)
    return weights * mask.to(weights.dtype)


def _reference(batch: Batch) -> torch.Tensor:
    return next(iter(batch.masks.values()))


def present_mask(batch: Batch, modality: str) -> torch.Tensor:
    """[B] bool: True where the sample has at least one real step of ``modality``.

    A modality absent from the batch altogether gives an all-False mask.
    """
    mask = batch.masks.get(modality)
    if mask is None:
        ref = _reference(batch)
        return torch.zeros(ref.shape[0], dtype=torch.bool, device=ref.device)
    return mask.any(dim=-1)


def model_modalities(config: ModelConfig) -> list[str]:
    """The modalities with an entry in ``config.input_dims``, canonical order first.

    Raises:
        ValueError: if the config has no input dims (they come from the dataset).
    """
    if not config.input_dims:
        raise ValueError("model config has no input_dims; set them from the dataset, e.g. "
                         "input_dims={'text': 384, 'audio': 88, 'vision': 512}")
    known = [m for m in MODALITIES if m in config.input_dims]
    return known + sorted(m for m in config.input_dims if m not in MODALITIES)


def mlp(in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Two-layer perceptron: Linear → ReLU → Dropout → Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, out_dim))


class SubNet(nn.Module):
    """Three-layer sub-network on a pooled vector, after TFN's ``SubNet`` (Zadeh et al., 2017).

    TFN uses BatchNorm; this uses LayerNorm so that a batch of one, or a batch in which every
    sample lacks the modality (zero input), behaves the same in training and evaluation.

    Args:
        in_dim: input size.
        hidden: output size (and inner size).
        dropout: dropout after the normalisation.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim), nn.Dropout(dropout),
            nn.Linear(in_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_dim] → [B, hidden]."""
        return self.net(x)


def attendable(mask: torch.Tensor) -> torch.Tensor:
    """The key-padding mask [B, T] with step 0 opened for rows that have no True step.

    Attention over an empty key set normalises over nothing (NaN); such a row attends to step 0
    instead, and its output must be discarded (zeroed) by the caller.
    """
    attend = mask.clone()
    attend[:, 0] |= ~mask.any(dim=1)
    return attend


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Fixed sinusoidal position encodings [length, dim] (Vaswani et al., 2017)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    half = (dim + 1) // 2
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32)
                     * (-math.log(10000.0) / max(half, 1)))
    table = torch.zeros(length, 2 * half, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table[:, :dim].to(dtype)


class SequenceEncoder(nn.Module):
    """Encodes a padded feature sequence of one modality into one vector per sample.

    ``forward(x [B,T,D], mask [B,T]) -> [B, hidden]``. Rows whose mask is all False (the
    modality is missing for that sample) come out as zeros, with finite gradients.

    Kinds:
        ``"gru"``: input projection, a GRU over the real steps (packed by length), last state.
        ``"transformer"``: input projection + sinusoidal positions, a pre-norm Transformer
            encoder with key-padding masks, masked mean over the steps.
        ``"mean"``: masked mean of the inputs, then a two-layer MLP (no temporal modelling).

    Args:
        in_dim: feature size D of the modality.
        hidden: output size.
        kind: one of :data:`ENCODER_KINDS`.
        dropout: dropout inside the encoder.
        num_layers: GRU / Transformer layers.
        num_heads: attention heads (``"transformer"``; must divide ``hidden``).
    """

    def __init__(self, in_dim: int, hidden: int, kind: str = "gru", dropout: float = 0.0,
                 num_layers: int = 1, num_heads: int = 4) -> None:
        super().__init__()
        if kind not in ENCODER_KINDS:
            raise ValueError(f"unknown encoder kind {kind!r}; known: {', '.join(ENCODER_KINDS)}")
        self.kind = kind
        self.hidden = hidden
        if kind == "mean":
            self.net = mlp(in_dim, hidden, hidden, dropout)
            self.step_proj = nn.Linear(in_dim, hidden)
        elif kind == "gru":
            self.proj = nn.Sequential(nn.Linear(in_dim, hidden), nn.Dropout(dropout))
            self.rnn = nn.GRU(hidden, hidden, num_layers=num_layers, batch_first=True,
                              dropout=dropout if num_layers > 1 else 0.0)
        else:
            if hidden % num_heads:
                raise ValueError(f"hidden={hidden} is not divisible by num_heads={num_heads}")
            self.proj = nn.Linear(in_dim, hidden)
            layer = nn.TransformerEncoderLayer(hidden, num_heads, dim_feedforward=2 * hidden,
                                               dropout=dropout, batch_first=True,
                                               norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, num_layers,
                                                     enable_nested_tensor=False)
            self.norm = nn.LayerNorm(hidden)

    def steps(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-step outputs [B, T, hidden]; zeros at padded steps and for missing rows."""
        mask = mask.bool()
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.hidden)
        if self.kind == "mean":
            out = self.step_proj(x)
        elif self.kind == "gru":
            out = self._gru(x, mask)[0]
        else:
            out = self._transformer(x, mask)
        return out * mask.unsqueeze(-1).to(out.dtype)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, T, D], [B, T] → [B, hidden]; zeros where the mask row is all False."""
        mask = mask.bool()
        present = mask.any(dim=-1, keepdim=True)
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], self.hidden)
        if self.kind == "mean":
            out = self.net(masked_mean(x, mask))
        elif self.kind == "gru":
            out = self._gru(x, mask)[1]
        else:
            out = masked_mean(self._transformer(x, mask), mask)
        return out * present.to(out.dtype)

    def _gru(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The GRU runs over the padded batch and the state at each row's last real step is
        # gathered: with left-aligned masks and a unidirectional GRU that state is exactly
        # the one packing gives (later, padded steps cannot change it). Packed sequences are
        # not used: on CPU their backward is quadratic in the sequence length (each step's
        # slice of the packed data back-propagates through a zero-filled copy of all of it,
        # ``aten::slice_backward``), which made a batch twice as long cost ~4x.
        out, _ = self.rnn(self.proj(x))
        last = mask.sum(dim=1).clamp(min=1) - 1  # a missing row reads step 0 (then zeroed)
        index = last.view(-1, 1, 1).expand(-1, 1, out.shape[-1])
        return out, out.gather(1, index).squeeze(1)

    def _transformer(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device, h.dtype)
        # Missing rows attend to step 0; their output is zeroed by the caller.
        return self.norm(self.transformer(h, src_key_padding_mask=~attendable(mask)))


@dataclass
class EncoderConfig(ModelConfig):
    """Options of a model's :class:`SequenceEncoder` s (one per modality).

    Attributes:
        encoder: the encoder kind, one of :data:`ENCODER_KINDS`.
        num_layers: GRU / Transformer layers.
        num_heads: attention heads (``encoder="transformer"``; must divide the encoder width).
    """

    search_space: ClassVar[SpaceSection] = {"num_layers": IntRange(1, 2)}

    encoder: EncoderKind = "gru"
    num_layers: int = 1
    num_heads: int = 4


def sequence_encoder(config: EncoderConfig, modality: str,
                     hidden: int | None = None) -> SequenceEncoder:
    """The :class:`SequenceEncoder` of ``modality`` as ``config`` describes it.

    Args:
        config: the model's config (input size, dropout and encoder options).
        modality: the modality (a key of ``config.input_dims``).
        hidden: output size (default ``config.hidden``).
    """
    return SequenceEncoder(config.input_dims[modality], hidden or config.hidden,
                           kind=config.encoder, dropout=config.dropout,
                           num_layers=config.num_layers, num_heads=config.num_heads)


def modality_encoders(config: EncoderConfig,
                      modalities: Iterable[str] | None = None) -> nn.ModuleDict:
    """One :func:`sequence_encoder` per modality, ``config.hidden`` wide.

    Args:
        config: the model's config.
        modalities: which ones, in order (default :func:`model_modalities`).
    """
    modalities = model_modalities(config) if modalities is None else modalities
    return nn.ModuleDict({m: sequence_encoder(config, m) for m in modalities})


_ENCODINGS: contextvars.ContextVar[dict[tuple[int, int, int], tuple] | None] = (
    contextvars.ContextVar("baselines_reused_encodings", default=None))


@contextlib.contextmanager
def reuse_encodings() -> Iterator[None]:
    """Within the block, :func:`encode_once` computes each (encoder, features, mask) once.

    ``baselines.train.predict_variants`` opens one block per batch around the batch's variants
    (the clean batch and each robustness condition): a condition perturbs one modality, or
    drops it, and hands the others' tensors on unchanged, so their encodings are the clean
    ones. Inputs are recognised by identity (the very tensor objects) and their in-place
    version counters, never by value; the block holds weak references to them (a perturbed
    input is freed once its variants are done, and an entry whose input is gone, or was
    changed in place, never matches again). Only outside autograd
    (``torch.no_grad``, as prediction runs) is anything reused: a training step always encodes.
    A model whose modalities meet before their encoders (MulT's cross-modal attention) simply
    does not call :func:`encode_once` and is unaffected.
    """
    token = _ENCODINGS.set({})
    try:
        yield
    finally:
        _ENCODINGS.reset(token)


def encode_once(encoder: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                x: torch.Tensor, mask: torch.Tensor, key: object = None) -> torch.Tensor:
    """``encoder(x, mask)``, computed once per ``(key, x, mask)`` inside :func:`reuse_encodings`.

    ``encoder`` must depend on nothing but its two inputs and its own (frozen) weights: a
    per-modality encoder in evaluation mode. Its output must not be changed in place.

    Args:
        encoder: the per-modality computation.
        x: the modality's features [B, T, D].
        mask: its mask [B, T].
        key: what identifies the computation (default: ``encoder``; pass the module when
            ``encoder`` is a closure made anew on each call).
    """
    cache = _ENCODINGS.get()
    if cache is None or torch.is_grad_enabled() or x.is_inference() or mask.is_inference():
        return encoder(x, mask)  # (inference tensors keep no version counter to check)
    owner = encoder if key is None else key
    slot = (id(owner), id(x), id(mask))
    versions = (x._version, mask._version)  # bumped by every in-place change
    hit = cache.get(slot)
    if (hit is not None and hit[0] is owner and hit[1]() is x and hit[2]() is mask
            and hit[3] == versions):
        return hit[4]
    out = encoder(x, mask)
    cache[slot] = (owner, weakref.ref(x), weakref.ref(mask), versions, out)
    return out


def encode_modalities(encoders: Mapping[str, nn.Module], batch: Batch,
                      hidden: int) -> dict[str, torch.Tensor]:
    """Applies ``encoders[m]`` to each modality; zeros [B, hidden] for modalities not in the batch.

    Each encoding goes through :func:`encode_once` (reused across a batch's variants).

    Args:
        encoders: modality -> module mapping (x, mask) to [B, hidden].
        batch: the batch.
        hidden: output size, used for the zeros of absent modalities.
    """
    ref = _reference(batch)
    out: dict[str, torch.Tensor] = {}
    for m, encoder in encoders.items():
        if m in batch.features:
            out[m] = encode_once(encoder, batch.features[m], batch.masks[m])
        else:
            dtype = next((f.dtype for f in batch.features.values()), torch.float32)
            out[m] = torch.zeros(ref.shape[0], hidden, device=ref.device, dtype=dtype)
    return out


def modality_input(batch: Batch, modality: str, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A modality's ``(features [B, T, dim], mask [B, T])``, also when the batch lacks it.

    A modality absent from the batch comes back as one zero step with an all-False mask, the same
    thing a sample missing the modality looks like, so models need only one code path.
    (Added for the fusion baselines, which feed raw sequences to their own layers.)
    """
    if modality in batch.features:
        return batch.features[modality], batch.masks[modality].bool()
    ref = _reference(batch)
    dtype = next((f.dtype for f in batch.features.values()), torch.float32)
    return (torch.zeros(ref.shape[0], 1, dim, device=ref.device, dtype=dtype),
            torch.zeros(ref.shape[0], 1, device=ref.device, dtype=torch.bool))
