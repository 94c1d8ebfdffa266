"""Fixed-step ODE solvers for dx/dt = v(x, t), from t0 to t1, on any velocity callable.

Usage:
    x1 = solve(lambda x, t: -x, torch.ones(4, 3), steps=20, method="rk4")   # ~ exp(-1)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # v(x (N, ...), t (N,)) -> dx/dt (N, ...)
Step = Callable[[Velocity, torch.Tensor, torch.Tensor, float], torch.Tensor]


def euler_step(v: Velocity, x: torch.Tensor, t: torch.Tensor, dt: float) -> torch.Tensor:
    """One Euler step: x + dt v(x, t); first order, one velocity call."""
    return x + dt * v(x, t)


def rk4_step(v: Velocity, x: torch.Tensor, t: torch.Tensor, dt: float) -> torch.Tensor:
    """One classical Runge-Kutta step: fourth order, four velocity calls."""
    k1 = v(x, t)
    k2 = v(x + 0.5 * dt * k1, t + 0.5 * dt)
    k3 = v(x + 0.5 * dt * k2, t + 0.5 * dt)
    k4 = v(x + dt * k3, t + dt)
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


SOLVERS: dict[str, Step] = {"euler": euler_step, "rk4": rk4_step}


def solve(v: Velocity, x0: torch.Tensor, steps: int, method: str = "rk4", t0: float = 0.0,
          t1: float = 1.0) -> torch.Tensor:
    """Integrate from x0 (N, ...) at t0 to t1 in `steps` equal steps of `method` ("euler" or "rk4")."""
    if method not in SOLVERS:
        raise ValueError(f"unknown ODE solver {method!r}; use {' or '.join(SOLVERS)}")
    if steps < 1:
        raise ValueError(f"an ODE solve needs at least one step, got {steps}")
    step, dt, x = SOLVERS[method], (t1 - t0) / steps, x0
    for i in range(steps):
        t = torch.full((x.shape[0],), t0 + i * dt, device=x.device)  # (N,)
        x = step(v, x, t, dt)
    return x
