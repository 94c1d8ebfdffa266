"""Score a model on a fixed split: sample parameters, re-render, compare with the truth."""

from __future__ import annotations

import time

import numpy as np
import torch

from synthinv.metrics import assignment_mse, chamfer_distance, log_spectral_distance, param_mse
from synthinv.synths.kosc import to_tokens

# Split seeds are fixed, not derived from the training seed, so every model sees the same val/test sets.
VAL_SEED, TEST_SEED, RANDOM_BASELINE_SEED = 2_000_003, 3_000_017, 4_000_037


def split_batch(synth, seed: int, n: int, device: str | torch.device = "cpu"):
    """(params (n, P), audio (n, T)) of examples 0..n-1 of a split."""
    params = synth.params_at(seed, np.arange(n)).to(device)
    return params, synth.render(params)


@torch.no_grad()
def sample_params(model, audio: torch.Tensor, steps: int, guidance: float, seed: int, batch: int = 256) -> torch.Tensor:
    """One parameter estimate per sound (N, P), sampled in chunks with a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([model.sample(a, steps=steps, guidance=guidance, generator=gen) for a in audio.split(batch)])


@torch.no_grad()
def lsd_of(synth, params: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    return log_spectral_distance(synth.render(params.clamp(-1, 1)), audio)


@torch.no_grad()
def evaluate_model(model, synth, n: int = 512, steps: int = 100, guidance: float = 2.0, seed: int = 0,
                   split_seed: int = TEST_SEED, device: str = "cpu") -> dict:
    """All k-osc metrics on n examples of a split, next to the random-parameter baseline LSD."""
    model = model.to(device).eval()
    params, audio = split_batch(synth, split_seed, n, device)
    start = time.perf_counter()
    pred = sample_params(model, audio, steps, guidance, seed)
    sample_seconds = time.perf_counter() - start
    k = synth.k
    rand = synth.params_at(RANDOM_BASELINE_SEED, np.arange(n)).to(device)
    result = {
        "lsd": lsd_of(synth, pred, audio).mean().item(),
        "lsd_random": lsd_of(synth, rand, audio).mean().item(),
        "chamfer": chamfer_distance(to_tokens(pred.clamp(-1, 1), k), to_tokens(params, k)).mean().item(),
        "assignment_mse": assignment_mse(to_tokens(pred.clamp(-1, 1), k), to_tokens(params, k)).mean().item(),
        "param_mse": param_mse(pred.clamp(-1, 1), params).mean().item(),
        "n": n, "steps": steps, "guidance": guidance, "sample_seconds": round(sample_seconds, 3),
    }
    return result
