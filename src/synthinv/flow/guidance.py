"""Classifier-free guidance (Ho & Salimans 2022): one field learns both the conditional velocity and, with
the condition replaced by a learned "no audio" embedding, the unconditional one; sampling extrapolates
from the second towards the first."""

from __future__ import annotations

from collections.abc import Callable

import torch

# field(x (N, P), t (N,), emb (N, D)) -> velocity (N, P)
ConditionalField = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def drop_condition(emb: torch.Tensor, null: torch.Tensor, p: float) -> torch.Tensor:
    """Training: each row of emb (B, D) replaced by the null embedding (D,) with probability p."""
    drop = torch.rand(emb.shape[0], 1, device=emb.device) < p  # (B, 1)
    return torch.where(drop, null.expand_as(emb), emb)


def guided(field: ConditionalField, emb: torch.Tensor, null: torch.Tensor, weight: float):
    """The guided velocity v(x, t) = v(x, t | null) + weight * (v(x, t | emb) - v(x, t | null)) for the
    conditions emb (N, D): weight 1 is the conditional field alone (one call), weight 0 the unconditional
    one; otherwise both halves go through the field in one batched call.

    Usage:
        v = guided(model.field, emb, model.null_embedding, weight=2.0)
        x1 = solve(v, noise, steps=50)
    """

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # x (N, P), t (N,) -> (N, P)
        if weight == 1.0:
            return field(x, t, emb)
        v = field(torch.cat([x, x]), torch.cat([t, t]), torch.cat([emb, null.expand_as(emb)]))  # (2N, P)
        v_cond, v_uncond = v.chunk(2)
        return v_uncond + weight * (v_cond - v_uncond)

    return velocity
