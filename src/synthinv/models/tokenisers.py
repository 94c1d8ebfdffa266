"""Tokenisers: flat parameters (N, P) <-> tokens (N, n, d) for the equivariant transformer field."""

from __future__ import annotations

import math

import torch
from torch import nn


class FixedSplit(nn.Module):
    """One token per group of `width` consecutive parameters (an oscillator), shared linear maps.

    Because every token uses the same weights, permuting groups in the input permutes the tokens.
    """

    def __init__(self, n_params: int, width: int, d_model: int):
        super().__init__()
        if n_params % width:
            raise ValueError(f"{n_params} parameters do not split into tokens of {width}")
        self.width, self.n_tokens = width, n_params // width
        self.inp = nn.Linear(width, d_model)
        self.out = nn.Linear(d_model, width)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.inp(x.reshape(x.shape[0], self.n_tokens, self.width))  # (N, n, d)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(tokens).reshape(tokens.shape[0], -1)  # (N, P)

    def penalty(self) -> torch.Tensor:
        return self.inp.weight.new_zeros(())


class Param2Tok(nn.Module):
    """Learned parameter-to-token map: X0 = A h(diag(x) Z); back: out_p = <z'_p, (A^T X_L)_p>.

    Z, Z': (P, d) per-parameter vectors; h: a per-row FFN; A: (n, P) soft assignment of parameters to
    tokens, shared by both directions and pushed towards sparsity by `penalty()` = mean |A|.
    Initialised maximally symmetric (A constant, all z_p equal, plus 1e-4 noise) so that training breaks
    the symmetry only where the data demand it.
    """

    def __init__(self, n_params: int, n_tokens: int, d_model: int, init_noise: float):
        super().__init__()
        self.n_tokens = n_tokens
        self.assign = nn.Parameter(
            torch.full((n_tokens, n_params), 1.0 / math.sqrt(n_tokens * n_params))
            + init_noise * torch.randn(n_tokens, n_params)
        )
        z_in, z_out = torch.randn(1, d_model), torch.randn(1, d_model) / math.sqrt(d_model)
        self.z_in = nn.Parameter(z_in.repeat(n_params, 1) + init_noise * torch.randn(n_params, d_model))
        self.z_out = nn.Parameter(z_out.repeat(n_params, 1) + init_noise * torch.randn(n_params, d_model))
        self.row_ffn = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.row_ffn(x[..., None] * self.z_in)  # (N, P, d)
        return torch.einsum("np,bpd->bnd", self.assign, rows)  # (N, n, d)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        rows = torch.einsum("np,bnd->bpd", self.assign, tokens)  # (N, P, d)
        return (rows * self.z_out).sum(-1)  # (N, P)

    def penalty(self) -> torch.Tensor:
        return self.assign.abs().mean()


def param2tok_assignment(model: nn.Module) -> nn.Parameter | None:
    """A model's Param2Tok assignment A (n tokens, P), or None for a model without a Param2Tok tokeniser."""
    tokeniser = getattr(getattr(model, "field", None), "tokeniser", None)
    return tokeniser.assign if isinstance(tokeniser, Param2Tok) else None
