"""The flow-matching parts alone (synthinv.flow): the ODE solvers, the rectified path, minibatch OT
pairing and classifier-free guidance, each on small hand-made inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from synthinv.flow import RectifiedPath, drop_condition, guided, ot_pair_noise, solve

P = 12

# --- ODE solvers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method, steps, tol", [("euler", 200, 5e-3), ("rk4", 10, 2e-5)])
def test_solvers_integrate_exponential_decay(method, steps, tol):
    x0 = torch.tensor([[1.0], [2.0], [-0.5]], dtype=torch.float64)
    for t1 in (0.5, 1.0, 2.0):
        x = solve(lambda x, t: -x, x0, steps, method=method, t1=t1)  # dx/dt = -x  ->  x0 exp(-t)
        torch.testing.assert_close(x, x0 * math.exp(-t1), atol=tol, rtol=0)


def test_euler_is_first_order_and_rk4_fourth_order():
    x0 = torch.ones(1, 1, dtype=torch.float64)

    def error(method, steps):
        return abs(solve(lambda x, t: -x, x0, steps, method=method).item() - math.exp(-1))

    # halving the step divides the error by 2^order
    assert math.log2(error("euler", 20) / error("euler", 40)) == pytest.approx(1, abs=0.1)
    assert math.log2(error("rk4", 8) / error("rk4", 16)) == pytest.approx(4, abs=0.1)


def test_solver_passes_each_row_its_time():
    seen = []

    def v(x, t):
        seen.append(t.clone())
        assert t.shape == (x.shape[0],)
        return torch.ones_like(x)

    solve(v, torch.zeros(3, 2), steps=2, method="euler", t0=0.25, t1=0.75)
    torch.testing.assert_close(torch.stack(seen), torch.tensor([[0.25] * 3, [0.5] * 3]))


def test_time_dependent_velocity_and_a_run_backwards():
    # dx/dt = 3 t^2 -> x(1) - x(0) = 1 (RK4 is exact for it); integrating from 1 back to 0 undoes it
    v = lambda x, t: 3 * t[:, None] ** 2 * torch.ones_like(x)  # noqa: E731
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    x1 = solve(v, x0, steps=3)
    torch.testing.assert_close(x1, x0 + 1, atol=1e-6, rtol=0)
    torch.testing.assert_close(solve(v, x1, steps=3, t0=1.0, t1=0.0), x0, atol=1e-6, rtol=0)


def test_solver_refuses_unknown_methods_and_zero_steps():
    with pytest.raises(ValueError, match="unknown ODE solver 'midpoint'"):
        solve(lambda x, t: x, torch.zeros(1, 1), 4, method="midpoint")
    with pytest.raises(ValueError, match="at least one step"):
        solve(lambda x, t: x, torch.zeros(1, 1), 0)


# --- the rectified path ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, P), (3, 4, 7)])
def test_path_velocity_is_the_time_derivative_of_x_t(shape):
    gen = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(shape, generator=gen, dtype=torch.float64), torch.randn(shape, generator=gen, dtype=torch.float64)
    t = torch.rand(shape[0], generator=gen, dtype=torch.float64) * 0.8 + 0.1
    path, h = RectifiedPath(), 1e-4
    s = path.sample(x0, x1, t)
    finite_difference = (path.sample(x0, x1, t + h).x_t - path.sample(x0, x1, t - h).x_t) / (2 * h)
    torch.testing.assert_close(s.velocity, finite_difference, atol=1e-8, rtol=0)
    assert s.x_t.shape == shape


def test_path_starts_at_noise_and_ends_at_data():
    x0, x1 = torch.randn(4, P), torch.randn(4, P)
    path = RectifiedPath()
    torch.testing.assert_close(path.sample(x0, x1, torch.zeros(4)).x_t, x0)
    torch.testing.assert_close(path.sample(x0, x1, torch.ones(4)).x_t, x1)
    mixed = path.sample(x0, x1, torch.tensor([0.0, 1.0, 0.0, 1.0])).x_t  # one time per row
    torch.testing.assert_close(mixed[::2], x0[::2])
    torch.testing.assert_close(mixed[1::2], x1[1::2])


# --- minibatch OT coupling ------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 2, 3, 4, 5, 6])
def test_ot_pair_noise_is_the_optimal_permutation(batch):
    gen = torch.Generator().manual_seed(batch)
    for _ in range(4):
        noise, data = torch.randn(batch, P, generator=gen), torch.rand(batch, P, generator=gen) * 2 - 1
        paired = ot_pair_noise(noise, data)
        # a permutation of the noise rows: every paired row is exactly one noise row, each used once
        source = [int(np.flatnonzero((noise == row).all(1).numpy())[0]) for row in paired]
        assert sorted(source) == list(range(batch))
        cost = ((paired - data) ** 2).sum().item()
        brute = min(((noise[list(p)] - data) ** 2).sum().item() for p in itertools.permutations(range(batch)))
        assert cost == pytest.approx(brute, rel=1e-5)
        assert cost <= ((noise - data) ** 2).sum().item() + 1e-5  # never worse than the given pairing


# --- classifier-free guidance ---------------------------------------------------------------------


class CountingField:
    """field(x, t, emb) = x * t + emb[:, :P] ** 2: the condition matters, non-linearly; calls are counted."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x, t, emb):
        self.calls += 1
        return x * t[:, None] + emb[:, : x.shape[1]] ** 2


def guidance_inputs():
    gen = torch.Generator().manual_seed(2)
    x, t = torch.randn(5, P, generator=gen), torch.rand(5, generator=gen)
    emb, null = torch.randn(5, 16, generator=gen), torch.randn(16, generator=gen)
    return x, t, emb, null


def test_guidance_zero_and_one_are_the_unconditional_and_conditional_velocities():
    x, t, emb, null = guidance_inputs()
    field = CountingField()
    v_cond, v_uncond = field(x, t, emb), field(x, t, null.expand_as(emb))
    assert (v_cond - v_uncond).abs().max() > 1e-2  # the condition matters, so the test can fail
    field.calls = 0
    torch.testing.assert_close(guided(field, emb, null, 1.0)(x, t), v_cond)
    assert field.calls == 1  # weight 1 needs no unconditional half
    torch.testing.assert_close(guided(field, emb, null, 0.0)(x, t), v_uncond)
    torch.testing.assert_close(guided(field, emb, null, 3.0)(x, t), v_uncond + 3 * (v_cond - v_uncond))
    assert field.calls == 3  # the two halves of a guided velocity share one batched call


def test_condition_dropout_rate():
    emb, null = torch.ones(4000, 3), torch.zeros(3)
    torch.manual_seed(0)
    assert torch.equal(drop_condition(emb, null, 0.0), emb)
    assert torch.equal(drop_condition(emb, null, 1.0), null.expand_as(emb))
    dropped = drop_condition(emb, null, 0.25)
    assert ((dropped == 0).all(1) | (dropped == 1).all(1)).all()  # whole rows, never parts of one
    assert (dropped[:, 0] == 0).float().mean().item() == pytest.approx(0.25, abs=0.03)
