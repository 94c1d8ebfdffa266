"""Minibatch optimal-transport coupling (Tong et al. 2023, Pooladian et al. 2023): pair each data row with
the noise row that makes the batch's total squared distance smallest, so that paths cross less and the
learned field is straighter than with independent pairs."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment


def ot_pair_noise(noise: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """Reorder noise (B, P) so that row j pairs with data row j under the minimum total squared distance."""
    cost = torch.cdist(noise, data).square().detach().cpu().double().numpy()  # (B, B)
    rows, cols = linear_sum_assignment(cost)
    paired = torch.empty_like(noise)
    paired[torch.as_tensor(cols, device=noise.device)] = noise[torch.as_tensor(rows, device=noise.device)]
    return paired
