"""Multimodal Transformer (MulT).

Tsai, Bai, Liang, Kolter, Morency and Salakhutdinov, "Multimodal Transformer for Unaligned
Multimodal Language Sequences", ACL 2019 (https://aclanthology.org/P19-1656/). Reference code:
https://github.com/yaohungt/Multimodal-Transformer (also ``models/singleTask/MULT.py`` in MMSA,
https://github.com/thuiar/MMSA).

As in the paper and its code:

* temporal convolution: each modality's features are projected to a common width ``hidden``
  by a bias-free 1-D convolution (kernel ``conv_kernel``; skipped when the width already
  matches and the kernel is 1), with input dropout on text;
* crossmodal transformers: for every target modality and every other (source) modality, a
  stack of ``num_layers`` pre-LayerNorm blocks whose attention takes queries from the target
  and keys/values from the source (the same LayerNorm normalises both), followed by a
  position-wise feed-forward block (4x wide), a final LayerNorm; inputs are scaled by
  ``sqrt(hidden)`` and get sinusoidal position encodings and embedding dropout;
* per target, the crossmodal outputs are concatenated and go through a self-attention
  transformer ("memory", ``memory_layers`` deep);
* the last step of each target's memory output is taken, the targets are concatenated, and a
  residual two-layer block plus a linear layer make the prediction.

SDME's adaptations: sequences are padded, so attention gets key-padding masks (the reference
code runs on fixed-length inputs without masks) and "last step" means the last *real* step
(``pool="mean"`` takes the masked mean instead); a convolution with a kernel above 1 uses
"same" padding so masks stay aligned; the modalities are whatever ``config.input_dims`` names
(at least two). A source modality that a sample lacks contributes nothing: its attention output
is zeroed (and attention never runs over an empty key set, so no NaN), which leaves that
branch a position-wise network over the target. A missing target modality gives a zero vector.
The reference code uses ``max(num_layers, 3)`` memory layers and ``num_layers`` of 4 to 5;
the defaults here are smaller for speed.

Registered: ``mult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from baselines.models.base import Batch, EmotionModel, ModelConfig, ModelOutput, register_model
from baselines.models.blocks import (
    attendable,
    masked_mean,
    modality_input,
    model_modalities,
    sinusoidal_positions,
)
from baselines.search import FloatRange, IntRange, SpaceSection

# ----------------------------------------------------------------------------- configuration


@dataclass
class MulTConfig(ModelConfig):
    """Options of MulT (``hidden`` is the common width ``d`` of every modality).

    Attributes:
        num_heads: attention heads (must divide ``hidden``).
        num_layers: blocks per crossmodal transformer.
        memory_layers: blocks per self-attention memory transformer.
        conv_kernel: kernel of the temporal convolution projection (odd).
        pool: ``"last"`` (last real step, as the paper) or ``"mean"``.
        attn_dropout: dropout on attention weights.
        relu_dropout: dropout inside the feed-forward blocks.
        res_dropout: dropout on each block's residual branch.
        embed_dropout: dropout after scaling and position encoding.
        text_dropout: dropout on the text input features.
        output_dropout: dropout in the residual output block.
    """

    search_space: ClassVar[SpaceSection] = {"dropout": None,  # unused: MulT has its own
                                            "num_layers": IntRange(1, 4),
                                            "attn_dropout": FloatRange(0.0, 0.3),
                                            "embed_dropout": FloatRange(0.0, 0.4)}

    num_heads: int = 4
    num_layers: int = 2
    memory_layers: int = 2
    conv_kernel: int = 1
    pool: Literal["last", "mean"] = "last"
    attn_dropout: float = 0.1
    relu_dropout: float = 0.1
    res_dropout: float = 0.1
    embed_dropout: float = 0.25
    text_dropout: float = 0.1
    output_dropout: float = 0.0


# ----------------------------------------------------------------------------- building blocks


class CrossmodalLayer(nn.Module):
    """One pre-LayerNorm block: (cross- or self-) attention, then a feed-forward block.

    Args:
        dim: model width.
        num_heads: attention heads.
        attn_dropout: dropout on attention weights.
        relu_dropout: dropout after the feed-forward ReLU.
        res_dropout: dropout on both residual branches.
    """

    def __init__(self, dim: int, num_heads: int, attn_dropout: float, relu_dropout: float,
                 res_dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=attn_dropout, batch_first=True)
        self.norm_attn = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout

    def forward(self, x: torch.Tensor, keys: torch.Tensor | None,
                key_mask: torch.Tensor) -> torch.Tensor:
        """``x`` [B, T, d] attends to ``keys`` [B, S, d] (itself when None) where ``key_mask``
        [B, S] is True; rows with no True key get no attention update."""
        query = self.norm_attn(x)
        source = query if keys is None else self.norm_attn(keys)
        attended, _ = self.attn(query, source, source, key_padding_mask=~attendable(key_mask),
                                need_weights=False)
        attended = attended * key_mask.any(dim=1).to(attended.dtype)[:, None, None]
        x = x + F.dropout(attended, self.res_dropout, self.training)
        h = F.dropout(F.relu(self.fc1(self.norm_ffn(x))), self.relu_dropout, self.training)
        return x + F.dropout(self.fc2(h), self.res_dropout, self.training)


class CrossmodalTransformer(nn.Module):
    """MulT's transformer encoder: scaled input + sinusoidal positions, blocks, final LayerNorm.

    With a source it is a crossmodal transformer (target queries, source keys/values); without
    one, a self-attention transformer.

    Args:
        dim: model width.
        num_heads: attention heads.
        num_layers: blocks.
        attn_dropout: see :class:`CrossmodalLayer`.
        relu_dropout: see :class:`CrossmodalLayer`.
        res_dropout: see :class:`CrossmodalLayer`.
        embed_dropout: dropout after scaling and position encoding.
    """

    def __init__(self, dim: int, num_heads: int, num_layers: int, attn_dropout: float = 0.0,
                 relu_dropout: float = 0.0, res_dropout: float = 0.0,
                 embed_dropout: float = 0.0) -> None:
        super().__init__()
        self.scale = math.sqrt(dim)
        self.embed_dropout = embed_dropout
        self.layers = nn.ModuleList([
            CrossmodalLayer(dim, num_heads, attn_dropout, relu_dropout, res_dropout)
            for _ in range(num_layers)])
        self.norm = nn.LayerNorm(dim)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scale * x + sinusoidal_positions(x.shape[1], x.shape[2], x.device, x.dtype)
        return F.dropout(x, self.embed_dropout, self.training)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, source: torch.Tensor | None = None,
                source_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, d] (and [B, S, d] source) → [B, T, d]."""
        x = self._embed(x)
        keys = None if source is None else self._embed(source)
        key_mask = mask if source is None else source_mask
        for layer in self.layers:
            x = layer(x, keys, key_mask)
        return self.norm(x)


def last_step(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The output at each row's last real step [B, d]; zeros for rows without one."""
    index = (mask.sum(dim=1) - 1).clamp(min=0)
    picked = h[torch.arange(h.shape[0], device=h.device), index]
    return picked * mask.any(dim=1, keepdim=True).to(picked.dtype)


# ----------------------------------------------------------------------------- model


class MulT(EmotionModel):
    """Temporal conv projection → crossmodal transformers → memory → last step → residual MLP."""

    config_class = MulTConfig

    def __init__(self, config: MulTConfig) -> None:
        super().__init__(config)
        self.modalities = model_modalities(config)
        if len(self.modalities) < 2:
            raise ValueError(f"MulT needs at least two modalities, input_dims has "
                             f"{self.modalities}")
        if config.conv_kernel < 1 or config.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be a positive odd number, got "
                             f"{config.conv_kernel}")
        d, n = config.hidden, len(self.modalities)
        memory_dim = (n - 1) * d
        for width in (d, memory_dim):
            if width % config.num_heads:
                raise ValueError(f"num_heads={config.num_heads} must divide {width}")

        def crossmodal(dim: int, layers: int) -> CrossmodalTransformer:
            return CrossmodalTransformer(dim, config.num_heads, layers, config.attn_dropout,
                                         config.relu_dropout, config.res_dropout,
                                         config.embed_dropout)

        self.proj = nn.ModuleDict({
            m: nn.Identity() if config.input_dims[m] == d and config.conv_kernel == 1
            else nn.Conv1d(config.input_dims[m], d, config.conv_kernel,
                           padding=config.conv_kernel // 2, bias=False)
            for m in self.modalities})
        self.cross = nn.ModuleDict({
            f"{target}_with_{source}": crossmodal(d, config.num_layers)
            for target in self.modalities for source in self.modalities if source != target})
        self.memory = nn.ModuleDict({m: crossmodal(memory_dim, config.memory_layers)
                                     for m in self.modalities})
        combined = n * memory_dim
        self.proj1 = nn.Linear(combined, combined)
        self.proj2 = nn.Linear(combined, combined)
        self.out_layer = nn.Linear(combined, config.out_dim)

    def _project(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        out = {}
        for m in self.modalities:
            x, mask = modality_input(batch, m, self.config.input_dims[m])
            if m == "text":
                x = F.dropout(x, self.config.text_dropout, self.training)
            x = x * mask.unsqueeze(-1).to(x.dtype)
            if isinstance(self.proj[m], nn.Identity):
                h = x
            else:  # Conv1d works on [B, D, T]
                h = self.proj[m](x.transpose(1, 2)).transpose(1, 2)
            out[m] = (h * mask.unsqueeze(-1).to(h.dtype), mask)
        return out

    def forward(self, batch: Batch) -> ModelOutput:
        projected = self._project(batch)
        embeddings = {}
        for target in self.modalities:
            x, mask = projected[target]
            branches = [self.cross[f"{target}_with_{source}"](x, mask, *projected[source])
                        for source in self.modalities if source != target]
            h = self.memory[target](torch.cat(branches, dim=-1), mask)
            embeddings[target] = (last_step(h, mask) if self.config.pool == "last"
                                  else masked_mean(h, mask))
        last_hs = torch.cat([embeddings[m] for m in self.modalities], dim=-1)
        hidden = F.dropout(F.relu(self.proj1(last_hs)), self.config.output_dropout,
                           self.training)
        logits = self.out_layer(self.proj2(hidden) + last_hs)
        return ModelOutput(logits=logits, embeddings=embeddings)


# ----------------------------------------------------------------------------- registered models

register_model("mult", MulT, description="Multimodal Transformer.")
