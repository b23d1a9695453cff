"""Sequence aggregation components A_m (the paper's SAC, eq. 1 and section 5.6).

A_m turns the per-frame feature sequence F_m(x_m) into one temporal feature vector f_m. The paper
uses an LSTM (Table 1, 2, 3) and reports that a bidirectional LSTM and a Transformer whose encoded
outputs are averaged (ViT-like, section 5.6) work about as well.

Every aggregator has the same signature, `forward(x, lengths) -> [B, out_dim]` with x a padded
batch [B, T, D] and lengths [B] (long) the number of valid steps of each sequence; positions
t >= lengths[b] are padding and never influence the result.

Design choice (ONNX): no `pack_padded_sequence` and no Python control flow that depends on tensor
values. A unidirectional LSTM's output at step t depends only on steps <= t, so the state after the
last valid step is simply `output[b, lengths[b] - 1]`, read with `gather`. For the backward direction
each sequence is reversed *within its own length* (again a `gather`), which puts the valid steps
first; the backward LSTM then runs over them before it sees any padding. Both are plain tensor ops
that export to ONNX with dynamic batch and time axes and give exactly what packing gives (tested).
A length of 0 is clamped to 1 (the first, possibly padded, step): a missing modality is handled by
`FusionNet.forward_modality`, not by an empty sequence.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LSTMAggregator",
    "BiLSTMAggregator",
    "TransformerAggregator",
    "EncoderBlock",
    "make_aggregator",
    "valid_mask",
    "gather_last",
    "reverse_padded",
]


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, T] bool, True where t < lengths[b] (a valid, non-padded step)."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def _clamp_lengths(lengths: torch.Tensor, max_len: int, device: torch.device) -> torch.Tensor:
    return lengths.to(device=device, dtype=torch.long).clamp(1, max_len)


def gather_last(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """h[b, lengths[b] - 1, :] for every b: the output after the last valid step. [B, T, H] -> [B, H]."""
    idx = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h.size(2))
    return h.gather(1, idx).squeeze(1)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its valid length, leaving padding in place. [B, T, D] -> [B, T, D].

    Step t < L goes to L - 1 - t; steps t >= L stay. The map is its own inverse, so the same call
    turns the backward LSTM's outputs back into forward time order.
    """
    t = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # [1, T]
    L = lengths.unsqueeze(1)  # [B, 1]
    idx = torch.where(t < L, L - 1 - t, t)  # [B, T]
    return x.gather(1, idx.unsqueeze(2).expand(-1, -1, x.size(2)))


class LSTMAggregator(nn.Module):
    """A_m of eq. (1) as an LSTM: f_m is the hidden state after the last valid step (the paper's SAC).

    Args:
        in_dim: per-step feature size (the extractor's out_dim).
        hidden: LSTM hidden size = out_dim.
        num_layers: stacked LSTM layers.
        dropout: dropout between stacked layers (as nn.LSTM; ignored when num_layers == 1).
    """

    def __init__(self, in_dim: int, hidden: int = 256, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = _clamp_lengths(lengths, x.size(1), x.device)
        h, _ = self.lstm(x)  # h[:, t] depends only on x[:, :t+1], so padding after L cannot reach h[:, L-1]
        return gather_last(h, lengths)


class BiLSTMAggregator(nn.Module):
    """A_m of eq. (1) as a bidirectional LSTM: f_m = [final forward state, final backward state].

    The final forward state is the output after the last valid step; the final backward state is
    the backward LSTM's output at step 0, after it has read the whole valid sequence in reverse.
    Layers are stacked as in nn.LSTM(bidirectional=True): layer k+1 reads the concatenation of both
    directions of layer k at each step. out_dim = 2 * hidden.
    """

    def __init__(self, in_dim: int, hidden: int = 256, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        dims = [in_dim] + [2 * hidden] * (num_layers - 1)
        # one single-layer LSTM per direction per layer: the backward pass must restart on the
        # length-reversed sequence, which nn.LSTM(bidirectional=True) cannot do without packing
        self.fwd = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.bwd = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.drop = nn.Dropout(dropout)
        self.out_dim = 2 * hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = _clamp_lengths(lengths, x.size(1), x.device)
        h = x
        for i, (f, b) in enumerate(zip(self.fwd, self.bwd)):
            if i > 0:
                h = self.drop(h)  # between layers only, like nn.LSTM's dropout
            hf, _ = f(h)
            hb, _ = b(reverse_padded(h, lengths))
            hb = reverse_padded(hb, lengths)  # back to forward time order for the next layer
            h = torch.cat([hf, hb], dim=2)
        last_fwd = gather_last(hf, lengths)
        last_bwd = hb[:, 0]  # the backward direction ends at step 0
        return torch.cat([last_fwd, last_bwd], dim=1)


def sinusoidal_encoding(max_len: int, dim: int) -> torch.Tensor:
    """The fixed positional encoding of Vaswani et al. 2017: [max_len, dim]."""
    pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(max_len, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return pe


class EncoderBlock(nn.Module):
    """Pre-LN Transformer encoder block (ViT / nanoGPT style): x + Attn(LN(x)), then x + MLP(LN(x)).

    Written out instead of nn.TransformerEncoderLayer because nn.MultiheadAttention computes
    reshape sizes with Python arithmetic on the batch size (bsz * num_heads), which the ONNX tracer
    freezes into constants, so an exported model then fails on any other batch size or length.
    Here every reshape keeps a -1 and attention is F.scaled_dot_product_attention.
    """

    def __init__(self, dim: int, heads: int, ff_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden={dim} must be divisible by heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))
        self.drop = nn.Dropout(dropout)

    def attention(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # 3 x [B, h, T, d]
        # attend: [B, 1, 1, T] bool, True for valid keys; padded keys get zero attention weight
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attend,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attention(self.ln1(x), attend))
        return x + self.drop(self.mlp(self.ln2(x)))


class TransformerAggregator(nn.Module):
    """A_m of eq. (1) as a Transformer encoder whose outputs are averaged (section 5.6, "Transformer(avg)").

    x -> Linear(in_dim, hidden) + positional encoding -> pre-LN encoder blocks -> LayerNorm
    -> mean of the encoded outputs over valid positions. Padded positions are excluded as keys in
    attention and from the average, following ViT's average-pooled variant rather than a class
    token (the paper: "the average feature is taken from the decoded outputs ... follows ViT").

    Args:
        in_dim: per-step feature size.
        hidden: model width d_model = out_dim; must be divisible by `heads`.
        num_layers: encoder blocks.
        heads: attention heads.
        dropout: dropout inside the blocks (attention weights, residual branches).
        ff_mult: feed-forward width = ff_mult * hidden.
        pos: "learned" (a trained table, as ViT) or "sinusoidal" (fixed) positional encoding.
        max_len: longest sequence the positional table covers.
    """

    def __init__(self, in_dim: int, hidden: int = 256, num_layers: int = 1, heads: int = 4,
                 dropout: float = 0.1, ff_mult: int = 4, pos: str = "learned", max_len: int = 512):
        super().__init__()
        if pos not in ("learned", "sinusoidal"):
            raise ValueError(f"pos must be 'learned' or 'sinusoidal', got {pos!r}")
        self.proj = nn.Linear(in_dim, hidden)
        self.pos_kind, self.max_len = pos, max_len
        if pos == "learned":
            self.pos = nn.Parameter(torch.randn(1, max_len, hidden) * 0.02)
        else:
            # not persistent: it is recomputed identically at construction, so keep it out of checkpoints
            self.register_buffer("pos", sinusoidal_encoding(max_len, hidden).unsqueeze(0), persistent=False)
        self.blocks = nn.ModuleList(EncoderBlock(hidden, heads, ff_mult, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden)
        self.out_dim = hidden

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Encoded sequence [B, T, hidden]; `valid` [B, T] bool marks non-padded steps."""
        h = self.proj(x) + self.pos[:, : x.size(1)].to(x.dtype)
        attend = valid[:, None, None, :]
        for blk in self.blocks:
            h = blk(h, attend)
        return self.norm(h)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        T = x.size(1)
        lengths = _clamp_lengths(lengths, T, x.device)
        valid = valid_mask(lengths, T)  # [B, T]
        h = self.encode(x, valid)
        # masked mean: padded outputs are computed but carry zero weight
        w = valid.unsqueeze(2).to(h.dtype)
        return (h * w).sum(1) / lengths.unsqueeze(1).to(h.dtype)


def aggregator_class(name: str) -> type[nn.Module]:
    """The class registered under `name` in `mrpn.registry.AGGREGATORS` (a class, or a class name here)."""
    from mrpn import registry

    spec = registry.AGGREGATORS.get(name)
    if spec is None:
        raise ValueError(f"unknown aggregator {name!r}; choose from {sorted(registry.AGGREGATORS)}")
    return spec.cls if callable(spec.cls) else globals()[spec.cls]


def make_aggregator(name: str, in_dim: int, hidden: int = 256, num_layers: int = 1,
                    dropout: float = 0.0, **kwargs) -> nn.Module:
    """Build A_m by registered name ("lstm", "bilstm", "transformer", ...). Extra kwargs go to the
    class (the Transformer's heads, ff_mult, pos, max_len)."""
    return aggregator_class(name)(in_dim, hidden, num_layers=num_layers, dropout=dropout, **kwargs)
