"""A learned stand-in for render + embed: a patch's bank embedding (synthinv.bank.embed) predicted from its
parameters, so that many proposals can be put in order of likeness to a target before any is rendered.

Why: a flow's best of N is limited by which N of its samples get rendered and ranked. Ordering a larger pool of
samples by their *true* embedding distance to the target first (which renders them all) makes the best of the
first N much closer (results/dexed_simple_best_of_n.md); the surrogate orders them at the cost of one MLP pass.

    surrogate = SoundSurrogate(n_params=112, dim=1024)             # trained by scripts/train_surrogate.py
    order = surrogate.order(candidates, target_embedding)         # (M,) nearest predicted first
"""

from __future__ import annotations

import torch
from torch import nn

EMBED_SCALE = 80.0  # the bank embedding is dB relative to the note's peak, floored at -80: /80 -> [-1, 0]


class SoundSurrogate(nn.Module):
    """(N, P) normalised parameters -> (N, D) predicted bank embedding (dB). Residual MLP blocks of `width`."""

    def __init__(self, n_params: int, dim: int, width: int = 512, layers: int = 4):
        super().__init__()
        self.n_params, self.dim, self.width, self.layers = n_params, dim, width, layers
        self.stem = nn.Linear(n_params, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(),
                                                  nn.Linear(width, width)) for _ in range(layers))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        h = self.stem(params)  # (N, width)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h) * EMBED_SCALE  # (N, D) dB

    def settings(self) -> dict:
        return {"n_params": self.n_params, "dim": self.dim, "width": self.width, "layers": self.layers}

    @torch.no_grad()
    def order(self, candidates: torch.Tensor, target_embedding: torch.Tensor) -> torch.Tensor:
        """candidates (M, P), target_embedding (D,) -> (M,) indices, nearest predicted embedding first."""
        distance = (self(candidates) - target_embedding).square().sum(dim=1)  # (M,)
        return distance.argsort()


def load_surrogate(path, synth) -> SoundSurrogate:
    """A scripts/train_surrogate.py file -> the surrogate in eval mode; refused for another synth spec."""
    import json

    blob = torch.load(path, weights_only=True, map_location="cpu")
    meta = json.loads(blob["meta"])
    if meta["spec_hash"] != synth.spec.hash():
        raise ValueError(f"{path} is a surrogate for {meta['synth']} spec {meta['spec_hash']}, not {synth.name} "
                         f"spec {synth.spec.hash()}")
    model = SoundSurrogate(**blob["settings"])
    model.load_state_dict(blob["state_dict"])
    return model.eval()
