"""Probability paths: how training turns a (noise, data) pair and a time into an input and a target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class PathSample:
    x_t: torch.Tensor  # (B, ...) the point of the path at time t
    velocity: torch.Tensor  # (B, ...) d x_t / dt there: what the vector field learns to predict


class ProbabilityPath(Protocol):
    def sample(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> PathSample:
        """x0: noise (B, ...), x1: data (B, ...), t: (B,) in [0, 1] -> the path's point and velocity."""
        ...


class RectifiedPath:
    """The straight path from noise to data (rectified flow, conditional OT):
    x_t = (1 - t) x0 + t x1, so d x_t / dt = x1 - x0, constant along the path.

    Usage:
        path = RectifiedPath()
        s = path.sample(noise, params, t)                         # noise, params: (B, P); t: (B,)
        loss = (field(s.x_t, t, emb) - s.velocity).square().mean()
    """

    def sample(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> PathSample:
        t = t.view(-1, *[1] * (x1.dim() - 1))  # (B, 1, ...): broadcasts over each example's values
        return PathSample(x_t=(1 - t) * x0 + t * x1, velocity=x1 - x0)
