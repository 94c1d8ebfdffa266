"""Distances between predictions and truth. Each returns one value per example, shape (N,)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from synthinv.features import log_power_spectrum


def log_spectral_distance(pred_audio: torch.Tensor, true_audio: torch.Tensor) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): RMS over frequency bins of the dB difference of the power spectra."""
    diff = log_power_spectrum(pred_audio) - log_power_spectrum(true_audio)
    return diff.square().mean(dim=-1).sqrt()


def chamfer_distance(pred_tokens: torch.Tensor, true_tokens: torch.Tensor) -> torch.Tensor:
    """(N, k, d), (N, k, d) -> (N,): mean of row minima + mean of column minima of squared distances."""
    d2 = torch.cdist(pred_tokens, true_tokens).square()  # (N, k, k)
    return d2.min(dim=2).values.mean(dim=1) + d2.min(dim=1).values.mean(dim=1)


def assignment_mse(pred_tokens: torch.Tensor, true_tokens: torch.Tensor) -> torch.Tensor:
    """(N, k, d), (N, k, d) -> (N,): the smallest parameter MSE over permutations of the tokens.

    Found per example by the Hungarian algorithm on squared token distances.
    """
    d2 = torch.cdist(pred_tokens.double(), true_tokens.double()).square().cpu().numpy()  # (N, k, k)
    per_param = pred_tokens.shape[1] * pred_tokens.shape[2]
    costs = [d2[i][linear_sum_assignment(d2[i])].sum() / per_param for i in range(d2.shape[0])]
    return torch.from_numpy(np.asarray(costs)).float()


def param_mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """(N, P), (N, P) -> (N,): plain mean squared error, meaningful only when order is fixed (asym)."""
    return (pred - true).square().mean(dim=-1)
