"""Probability paths: how training turns a (noise, data) pair and a time into an input and a target, and the
distributions training draws the time from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

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


TimeDistribution = Literal["uniform", "logit_normal"]
TIME_DISTRIBUTIONS: tuple[TimeDistribution, ...] = ("uniform", "logit_normal")


def sample_times(n: int, distribution: TimeDistribution, device: torch.device | str = "cpu") -> torch.Tensor:
    """n training times in (0, 1): "uniform", or "logit_normal" (sigmoid of a standard normal: most draws
    near the middle of the path, where the velocity is hardest to tell, few at the ends) -> (n,)."""
    if distribution == "uniform":
        return torch.rand(n, device=device)
    if distribution == "logit_normal":
        return torch.sigmoid(torch.randn(n, device=device))
    raise ValueError(f"unknown time distribution {distribution!r}; expected one of {', '.join(TIME_DISTRIBUTIONS)}")
