"""Vector fields v(x_t, t | audio embedding): a residual MLP and a permutation-equivariant transformer.

Both condition on c = time_embedding(t) + embedding through adaptive layer norm (adaLN-zero: each block
starts as the identity, so an untrained field is a plain linear read-out of its input).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synthinv.models.tokenisers import FixedSplit, Param2Tok


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t: (N,) in [0, 1] -> (N, dim) sinusoidal features over log-spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), half, device=t.device))
    angles = t[:, None] * freqs[None] * 2 * math.pi
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TimeEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_features(t, self.dim))


class AdaLN(nn.Module):
    """Produces `n` (shift, scale, gate) triples from the condition; zero-initialised."""

    def __init__(self, cond_dim: int, width: int, n: int):
        super().__init__()
        self.n = n
        self.proj = nn.Linear(cond_dim, 3 * n * width)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, cond: torch.Tensor) -> list[torch.Tensor]:
        return list(self.proj(F.gelu(cond)).unsqueeze(-2).chunk(3 * self.n, dim=-1))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class ResMLPBlock(nn.Module):
    def __init__(self, width: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
        self.ada = AdaLN(cond_dim, width, 1)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = (m.squeeze(-2) for m in self.ada(cond))
        return h + gate * self.mlp(modulate(self.norm(h), shift, scale))


class MLPField(nn.Module):
    """Non-equivariant baseline: residual MLP on the flat parameter vector. (N, P) -> (N, P).

    With `cond_input` the audio embedding also goes into the input layer beside x_t, so the first hidden state
    already depends on the sound rather than only on the blocks' adaLN shifts and scales."""

    def __init__(self, n_params: int, cond_dim: int, width: int, layers: int, cond_input: bool = False):
        super().__init__()
        self.time = TimeEmbedding(cond_dim)
        self.cond_input = cond_input
        self.inp = nn.Linear(n_params + (cond_dim if cond_input else 0), width)
        self.blocks = nn.ModuleList(ResMLPBlock(width, cond_dim) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, n_params)

    def forward(self, x: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        cond = self.time(t) + emb  # (N, cond_dim)
        h = self.inp(torch.cat([x, emb], dim=1) if self.cond_input else x)  # (N, width)
        for block in self.blocks:
            h = block(h, cond)
        return self.out(self.norm(h))

    def penalty(self) -> torch.Tensor:
        return self.out.weight.new_zeros(())


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention over a few tokens: q, k, v (N, heads, n, d_head) -> (N, heads, n, d_head). Under CPU
    bfloat16 autocast as plain matmuls, which ran faster there than torch's fused kernel at these sizes
    (benchmarks/bench_train.py --bf16); otherwise the fused kernel."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        weights = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (N, heads, n, n)
        return weights.softmax(-1) @ v
    return F.scaled_dot_product_attention(q, k, v)


class TransformerBlock(nn.Module):
    """Pre-norm self-attention + feed-forward, both adaLN-modulated; no positional information anywhere."""

    def __init__(self, d_model: int, heads: int, ff: int, cond_dim: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model, elementwise_affine=False)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model, elementwise_affine=False)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Linear(ff, d_model))
        self.ada = AdaLN(cond_dim, d_model, 2)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        s1, c1, g1, s2, c2, g2 = self.ada(cond)  # each (N, 1, d)
        b, n, d = x.shape
        q, k, v = self.qkv(modulate(self.norm1(x), s1, c1)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        att = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (N, heads, n, d_head)
        x = x + g1 * self.proj(att.transpose(1, 2).reshape(b, n, d))
        return x + g2 * self.ff(modulate(self.norm2(x), s2, c2))


class TransformerField(nn.Module):
    """Equivariant field: tokenise (N, P) -> (N, n, d), transformer blocks, detokenise -> (N, P).

    With a FixedSplit tokeniser, permuting oscillators in x permutes the output identically (exact
    equivariance); with Param2Tok the learned assignment decides how much symmetry is kept. With
    `context_tokens` m > 0 the embedding ends with m tokens of `context_features` numbers (the encoder's
    spectral peaks): each is projected to d_model and joins the sequence, so a parameter token can attend to
    the peak it should copy; they are not permuted with the parameter tokens and are dropped at the output,
    so the equivariance is unchanged.
    """

    def __init__(self, tokeniser: FixedSplit | Param2Tok, cond_dim: int, d_model: int, layers: int, heads: int,
                 ff: int, context_tokens: int = 0, context_features: int = 3):
        super().__init__()
        self.tokeniser = tokeniser
        self.cond_dim, self.context_tokens, self.context_features = cond_dim, context_tokens, context_features
        self.time = TimeEmbedding(cond_dim)
        self.context = nn.Linear(context_features, d_model) if context_tokens else None
        self.blocks = nn.ModuleList(TransformerBlock(d_model, heads, ff, cond_dim) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        cond = self.time(t) + emb[:, :self.cond_dim]  # (N, cond_dim)
        h = self.tokeniser.encode(x)  # (N, n, d)
        n = h.shape[1]
        if self.context is not None:
            ctx = emb[:, self.cond_dim:].reshape(len(emb), self.context_tokens, self.context_features)  # (N, m, f)
            h = torch.cat([h, self.context(ctx)], dim=1)  # (N, n + m, d)
        for block in self.blocks:
            h = block(h, cond)
        return self.tokeniser.decode(self.norm(h[:, :n]))

    def penalty(self) -> torch.Tensor:
        return self.tokeniser.penalty()
