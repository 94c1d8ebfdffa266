"""The sound surrogate puts candidates in order of predicted likeness, learns a smooth map from parameters to an
embedding, and refuses a file made for another synth."""

from __future__ import annotations

import json

import pytest
import torch

from synthinv.models.surrogate import EMBED_SCALE, SoundSurrogate, load_surrogate


def test_order_puts_the_nearest_predicted_embedding_first():
    torch.manual_seed(0)
    surrogate = SoundSurrogate(n_params=3, dim=5, width=16, layers=1).eval()
    candidates = torch.rand(7, 3) * 2 - 1  # (7, 3)
    with torch.no_grad():
        predicted = surrogate(candidates)  # (7, 5)
    target = predicted[4] + 1e-3  # nearest to candidate 4
    order = surrogate.order(candidates, target)
    assert order[0] == 4
    distances = (predicted - target).square().sum(1)
    assert torch.all(distances[order][1:] >= distances[order][:-1])  # non-decreasing


def fit(surrogate: SoundSurrogate, embedding, steps: int) -> SoundSurrogate:
    """Trained on uniform parameter draws against a known embedding function, as train_surrogate.py trains."""
    opt = torch.optim.Adam(surrogate.parameters(), lr=3e-3)
    for _ in range(steps):
        p = torch.rand(256, surrogate.n_params) * 2 - 1
        loss = ((surrogate(p) - embedding(p)) / EMBED_SCALE).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return surrogate


def test_it_learns_a_smooth_map_to_an_embedding():
    """Fitted to a known smooth function of 4 parameters, the held-out error falls well below the spread."""
    torch.manual_seed(0)
    weights = torch.randn(4, 6)

    def embedding(p: torch.Tensor) -> torch.Tensor:  # (N, 4) -> (N, 6) dB in [-80, 0]
        return -40.0 * (1 + torch.sin(p @ weights))

    surrogate = fit(SoundSurrogate(n_params=4, dim=6, width=64, layers=2), embedding, steps=400)
    held = torch.rand(512, 4) * 2 - 1
    with torch.no_grad():
        rmse = (surrogate(held) - embedding(held)).square().mean().sqrt()
    spread = (embedding(held) - embedding(held).mean(0)).square().mean().sqrt()
    assert rmse < 0.25 * spread, (rmse, spread)


def test_a_surrogate_for_another_synth_is_refused(tmp_path, kosc4):
    surrogate = SoundSurrogate(n_params=kosc4.spec.size, dim=4, width=8, layers=1)
    meta = {"synth": "dexed_simple", "spec_hash": "0123456789abcdef"}
    path = tmp_path / "s.pt"
    torch.save({"state_dict": surrogate.state_dict(), "settings": surrogate.settings(), "meta": json.dumps(meta)}, path)
    with pytest.raises(ValueError, match="not kosc"):
        load_surrogate(path, kosc4)
    meta["spec_hash"] = kosc4.spec.hash()
    torch.save({"state_dict": surrogate.state_dict(), "settings": surrogate.settings(), "meta": json.dumps(meta)}, path)
    loaded = load_surrogate(path, kosc4)
    assert not loaded.training and loaded.settings() == surrogate.settings()


def test_fourier_inputs_follow_a_parameter_the_sound_depends_on_sharply():
    """A sound that swings fast with one parameter (sin(6 pi x), like a detuned ratio) is fitted far closer with
    sin/cos input features than by the plain MLP at the same steps; settings round-trip the option."""

    def embedding(p: torch.Tensor) -> torch.Tensor:  # (N, 2) -> (N, 3) dB
        return -40.0 * (1 + torch.sin(6 * torch.pi * p[:, :1])) * torch.tensor([1.0, 0.5, 0.25]) + 10 * p[:, 1:]

    held = torch.rand(512, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    errors = {}
    for fourier in (0, 4):
        torch.manual_seed(0)
        surrogate = fit(SoundSurrogate(n_params=2, dim=3, width=64, layers=2, fourier=fourier), embedding, steps=300)
        with torch.no_grad():
            errors[fourier] = (surrogate(held) - embedding(held)).square().mean().sqrt().item()
        assert SoundSurrogate(**surrogate.settings()).settings() == surrogate.settings()
    assert errors[4] < 0.5 * errors[0], errors
