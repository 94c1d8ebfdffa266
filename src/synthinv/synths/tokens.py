"""Parameter vectors made of equal blocks ("tokens"): k-osc's oscillators, three columns each.

A synth whose parameters split this way says so with `Synth.n_tokens`; the models, metrics and report
use these helpers on any such synth, so none of them needs to know which synth it is.

    tokens = split_tokens(params, 4)      # (N, 12) -> (N, 4, 3)
    ordered = sort_tokens(params, 4)      # (N, 12), the 4 blocks in ascending order of their first column
"""

from __future__ import annotations

import torch


def split_tokens(params: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(N, P) -> (N, n_tokens, P // n_tokens): one row per block, in order."""
    return params.reshape(params.shape[0], n_tokens, -1)


def sort_tokens(params: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(N, P) -> (N, P) with the blocks reordered by ascending first column (k-osc: frequency)."""
    tokens = split_tokens(params, n_tokens)
    order = tokens[..., 0].argsort(dim=1)  # (N, n_tokens)
    return torch.gather(tokens, 1, order[..., None].expand_as(tokens)).reshape(params.shape)
