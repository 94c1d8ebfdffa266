"""Metrics: LSD against an independent NumPy reference, set distances against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthinv.metrics import assignment_mse, chamfer_distance, log_spectral_distance, match_tokens, param_mse
from synthinv.synths.kosc import to_tokens


def permute_tokens(tokens: torch.Tensor, seed: int) -> torch.Tensor:
    """(N, k, d) -> (N, k, d) with a different random token order per example."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([row[torch.randperm(row.shape[0], generator=gen)] for row in tokens])


# --- log-spectral distance ------------------------------------------------------------------------


@pytest.fixture
def two_audio_batches(kosc4):
    a = kosc4.render(kosc4.random_params(8, seed=0))  # (8, 1024)
    b = kosc4.render(kosc4.random_params(8, seed=1))
    return a, b


def test_lsd_zero_on_identical_audio(two_audio_batches):
    a, _ = two_audio_batches
    lsd = log_spectral_distance(a, a.clone())
    assert lsd.shape == (8,)
    assert torch.equal(lsd, torch.zeros(8))


def test_lsd_positive_and_symmetric(two_audio_batches):
    a, b = two_audio_batches
    ab, ba = log_spectral_distance(a, b), log_spectral_distance(b, a)
    assert (ab > 1.0).all()  # different random sounds are dB apart
    torch.testing.assert_close(ab, ba, atol=0, rtol=0)


def test_lsd_matches_paper_definition(two_audio_batches):
    """rfft with forward norm, 10 log10(max(|X|^2, 1e-8)), RMS over bins - recomputed in NumPy."""
    a, b = two_audio_batches

    def db(x):
        spec = np.fft.rfft(x.double().numpy(), axis=-1) / x.shape[-1]
        return 10 * np.log10(np.maximum(np.abs(spec) ** 2, 1e-8))

    expected = np.sqrt(((db(a) - db(b)) ** 2).mean(-1))
    np.testing.assert_allclose(log_spectral_distance(a, b).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_lsd_of_a_gain_change_is_its_db_value():
    # scaling by 10 shifts every bin above the floor by 20 dB; a tone far above the floor everywhere is
    # hard to make, so use white noise (every bin well above -80 dB)
    torch.manual_seed(0)
    x = torch.randn(4, 1024)
    torch.testing.assert_close(log_spectral_distance(10 * x, x), torch.full((4,), 20.0), atol=1e-3, rtol=0)


def test_lsd_floor_makes_silence_comparable():
    silence = torch.zeros(2, 1024)
    assert torch.equal(log_spectral_distance(silence, silence), torch.zeros(2))
    tiny = torch.full((2, 1024), 1e-9)  # below the -80 dB floor in every bin
    assert torch.equal(log_spectral_distance(tiny, silence), torch.zeros(2))


# --- chamfer distance -----------------------------------------------------------------------------


def chamfer_reference(p: torch.Tensor, q: torch.Tensor) -> float:
    """Loop version for one example: mean of row minima + mean of column minima of squared distances."""
    d2 = [[float(((pi - qj) ** 2).sum()) for qj in q] for pi in p]
    rows = np.mean([min(r) for r in d2])
    cols = np.mean([min(d2[i][j] for i in range(len(p))) for j in range(len(q))])
    return rows + cols


def test_chamfer_zero_on_identical_and_permuted_tokens():
    torch.manual_seed(0)
    tokens = torch.rand(6, 4, 3) * 2 - 1  # (N, k, d)
    assert chamfer_distance(tokens, tokens.clone()).abs().max() < 1e-6
    assert chamfer_distance(permute_tokens(tokens, 1), tokens).abs().max() < 1e-6


def test_chamfer_positive_and_matches_reference():
    torch.manual_seed(1)
    p, q = torch.rand(6, 4, 3) * 2 - 1, torch.rand(6, 4, 3) * 2 - 1
    got = chamfer_distance(p, q)
    assert got.shape == (6,) and (got > 0).all()
    expected = torch.tensor([chamfer_reference(a, b) for a, b in zip(p, q)], dtype=torch.float32)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_chamfer_is_blind_to_multiplicity():
    # the known weakness of Chamfer: predicting one true token twice costs only the missed token's column
    true = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0]]])
    pred = torch.tensor([[[0.0, 0, 0], [0.0, 0, 0]]])
    assert chamfer_distance(pred, true).item() == pytest.approx(0.5)  # rows 0, cols (0 + 1) / 2


# --- assignment MSE -------------------------------------------------------------------------------


def brute_force_assignment_mse(p: torch.Tensor, q: torch.Tensor) -> float:
    """min over permutations of the plain MSE between permuted prediction tokens and the truth."""
    k = p.shape[0]
    return min(float((p[list(perm)] - q).square().mean()) for perm in itertools.permutations(range(k)))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_assignment_mse_equals_brute_force(k):
    gen = torch.Generator().manual_seed(k)
    p = torch.rand(5, k, 3, generator=gen) * 2 - 1
    q = torch.rand(5, k, 3, generator=gen) * 2 - 1
    got = assignment_mse(p, q)
    assert got.shape == (5,)
    expected = torch.tensor([brute_force_assignment_mse(a, b) for a, b in zip(p, q)], dtype=torch.float32)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert (got <= param_mse(p.flatten(1), q.flatten(1)) + 1e-6).all()  # never worse than the given order


def test_assignment_mse_zero_for_permuted_tokens():
    torch.manual_seed(2)
    tokens = torch.rand(6, 8, 3) * 2 - 1
    assert assignment_mse(permute_tokens(tokens, 3), tokens).abs().max() < 1e-6


def test_match_tokens_undoes_a_permutation_and_pairs_near_tokens():
    tokens = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(match_tokens(permute_tokens(tokens, 3), tokens), tokens, rtol=0, atol=0)
    noisy = permute_tokens(tokens, 4) + 1e-3  # each predicted token still nearest its own true one
    torch.testing.assert_close(match_tokens(noisy, tokens), tokens + 1e-3)


def test_assignment_mse_scale():
    # one token off by 1 in one coordinate out of k*d = 2*3 numbers -> MSE 1/6
    true = torch.zeros(1, 2, 3)
    pred = true.clone()
    pred[0, 1, 2] = 1.0
    assert assignment_mse(pred, true).item() == pytest.approx(1 / 6)


# --- param MSE ------------------------------------------------------------------------------------


def test_param_mse_equals_torch_mse(kosc4):
    a, b = kosc4.random_params(10, seed=0), kosc4.random_params(10, seed=1)
    torch.testing.assert_close(param_mse(a, b), F.mse_loss(a, b, reduction="none").mean(-1))
    assert param_mse(a, b).mean().item() == pytest.approx(F.mse_loss(a, b).item(), rel=1e-6)


def test_param_mse_sees_order_where_set_metrics_do_not(kosc4):
    params = kosc4.random_params(10, seed=4)
    tokens = to_tokens(params, 4)
    shuffled = tokens[:, [1, 0, 3, 2]]
    assert (param_mse(shuffled.flatten(1), params) > 1e-3).all()
    assert assignment_mse(shuffled, tokens).abs().max() < 1e-6


def test_level_is_the_rms_ratio_in_db():
    from synthinv.metrics import level_db

    target = torch.ones(3, 100)
    levels = level_db(torch.ones(100) * torch.tensor([[1.0], [0.1], [2.0]]), target)
    assert levels[0].item() == pytest.approx(0.0, abs=1e-6)
    assert levels[1].item() == pytest.approx(-20.0, abs=1e-4)
    assert levels[2].item() == pytest.approx(6.0206, abs=1e-3)
