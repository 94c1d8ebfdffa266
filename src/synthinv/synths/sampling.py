"""Reproducible random patches, shared by every synth: example i of a split is a pure function of (seed, i).

    u = hashed_uniform(seed, indices, width)             # (N, width) in [-1, 1), row i from (seed, indices[i])
    seed_j = redraw_seed(seed, j)                        # the split seed of redraw j (j = 0: the seed itself)
    params, audio = draw_until_audible(synth, indices, propose)   # near-silent draws proposed again

Counter-based hashing (SplitMix64) instead of generator objects lets a whole batch be drawn in one
vectorised call while each row still depends only on its own index, so datasets, banks and test splits
are the same whatever the batch size, worker count or shard range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from synthinv.metrics import rms_dbfs

if TYPE_CHECKING:
    from synthinv.synths.base import Synth

SILENCE_DBFS = -55.0  # plain RMS over the whole rendered note, in dB re full scale 1.0 (no LUFS weighting)
MAX_REDRAWS = 10


def splitmix64(z: np.ndarray) -> np.ndarray:
    """A counter-based hash (SplitMix64 finaliser) of uint64 values; uint64 arithmetic wraps by design."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hashed_uniform(seed: int, indices: np.ndarray, width: int) -> np.ndarray:
    """Uniform [-1, 1) numbers of shape (len(indices), width); row i depends only on (seed, indices[i])."""
    with np.errstate(over="ignore"):
        key = splitmix64(np.array([seed], dtype=np.uint64))
        counters = indices.astype(np.uint64)[:, None] * np.uint64(width) + np.arange(width, dtype=np.uint64)
        bits = splitmix64(counters ^ key)
    return ((bits >> np.uint64(11)).astype(np.float64) * 2.0**-53) * 2.0 - 1.0


def redraw_seed(seed: int, j: int) -> int:
    """The hashed_uniform seed of redraw j: the split seed itself for j = 0, a SplitMix64 of (seed, j) after."""
    if j == 0:
        return int(seed)
    with np.errstate(over="ignore"):
        z = np.array([seed], dtype=np.uint64) ^ (np.uint64(j) * np.uint64(0xD1B54A32D192ED03))
        return int(splitmix64(z)[0])


def draw_until_audible(synth: Synth, indices: np.ndarray,
                       propose: Callable[[int, np.ndarray], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(params (N, size), audio (N, T)) for example `indices`: `propose(j, indices)` gives draw j of those
    examples (a pure function of the split seed, j and the index); rows quieter than SILENCE_DBFS are
    proposed again with the next j, up to MAX_REDRAWS times (the last draw is kept if all were silent), so
    each row depends only on (seed, index), never on the batch it was drawn in."""
    params = torch.empty(len(indices), synth.spec.size)
    audio = torch.empty(len(indices), synth.length)
    todo = np.arange(len(indices))
    for j in range(MAX_REDRAWS + 1):
        p = propose(j, indices[todo])
        a = synth.render(p)
        params[todo], audio[todo] = p, a
        todo = todo[rms_dbfs(a).numpy() < SILENCE_DBFS]
        if len(todo) == 0:
            break
    return params, audio
