"""A learned stand-in for render + embed: a patch's bank embedding (synthinv.bank.embed) predicted from its
parameters, so that many proposals can be put in order of likeness to a target before any is rendered.

Why: a flow's best of N is limited by which N of its samples get rendered and ranked. Ordering a larger pool of
samples by their *true* embedding distance to the target first (which renders them all) makes the best of the
first N much closer (results/dexed_simple_best_of_n.md); the surrogate orders them at the cost of one MLP pass.

    surrogate = SoundSurrogate(n_params=112, dim=1024)             # trained by scripts/train_surrogate.py
    order = surrogate.order(candidates, target_embedding)         # (M,) nearest predicted first
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

EMBED_SCALE = 80.0  # the bank embedding is dB relative to the note's peak, floored at -80: /80 -> [-1, 0]


class SoundSurrogate(nn.Module):
    """(N, P) normalised parameters -> (N, D) predicted bank embedding (dB). Residual MLP blocks of `width`.

    `fourier` > 0: each parameter also enters as sin and cos of 2^k * pi * x for k < fourier, so the MLP can
    follow a sound that changes quickly with one parameter (a frequency ratio detuned by a hundredth)."""

    def __init__(self, n_params: int, dim: int, width: int = 512, layers: int = 4, fourier: int = 0):
        super().__init__()
        self.n_params, self.dim, self.width, self.layers, self.fourier = n_params, dim, width, layers, fourier
        self.octaves: torch.Tensor
        self.register_buffer("octaves", torch.pi * 2.0 ** torch.arange(fourier), persistent=False)  # (fourier,)
        self.stem = nn.Linear(n_params * (1 + 2 * fourier), width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(),
                                                  nn.Linear(width, width)) for _ in range(layers))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        if self.fourier:
            angles = (params[:, :, None] * self.octaves).flatten(1)  # (N, P * fourier)
            params = torch.cat([params, angles.sin(), angles.cos()], dim=1)  # (N, P * (1 + 2 fourier))
        h = self.stem(params)  # (N, width)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h) * EMBED_SCALE  # (N, D) dB

    def settings(self) -> dict:
        return {"n_params": self.n_params, "dim": self.dim, "width": self.width, "layers": self.layers,
                "fourier": self.fourier}

    @torch.no_grad()
    def order(self, candidates: torch.Tensor, target_embedding: torch.Tensor) -> torch.Tensor:
        """candidates (M, P), target_embedding (D,) -> (M,) indices, nearest predicted embedding first."""
        distance = (self(candidates) - target_embedding).square().sum(dim=1)  # (M,)
        return distance.argsort()


def load_surrogate(path, synth) -> SoundSurrogate:
    """A scripts/train_surrogate.py file -> the surrogate in eval mode; refused for another synth spec."""
    from synthinv.checkpoint import safe_load

    return surrogate_from_stored(safe_load(path, "surrogate"), synth, str(path))


def surrogate_from_stored(stored: dict, synth, source: str) -> SoundSurrogate:
    """{"state_dict", "settings", "meta"} (a surrogate file, or a checkpoint's "ranker") -> the surrogate in eval
    mode; refused for another synth spec. `source` names where it came from in the error."""
    import json

    meta = json.loads(stored["meta"])
    if meta["spec_hash"] != synth.spec.hash():
        raise ValueError(f"{source} holds a surrogate for {meta['synth']} spec {meta['spec_hash']}, not {synth.name} "
                         f"spec {synth.spec.hash()}")
    model = SoundSurrogate(**stored["settings"])
    model.load_state_dict(stored["state_dict"])
    return model.eval()


@dataclass
class Ranker:
    """Which of a model's samples to propose: `pool` samples are drawn per sound and put in order by the
    surrogate's predicted embedding distance to the target's (synthinv.models.sampler.ranked_draw)."""

    surrogate: SoundSurrogate
    pool: int


def ranker_from_checkpoint(blob: dict, synth, source: str = "checkpoint") -> Ranker | None:
    """A checkpoint's ranker (stored under "ranker" by scripts/attach_ranker.py), or None if it has none."""
    from synthinv.checkpoint import CheckpointError

    stored = blob.get("ranker")
    if stored is None:
        return None
    try:
        return Ranker(surrogate_from_stored(stored, synth, source), int(stored["pool"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # another spec, or a damaged entry
        raise CheckpointError(f"{source}: its ranker cannot be used ({exc})") from None


def stored_ranker(surrogate_file: dict, pool: int) -> dict:
    """A surrogate file's contents as a checkpoint's "ranker" entry, with the pool to draw from."""
    if pool < 1:
        raise ValueError(f"a ranker's pool must be at least 1 sample, got {pool}")
    return {"state_dict": surrogate_file["state_dict"],
            "settings": surrogate_file["settings"], "meta": surrogate_file["meta"], "pool": int(pool)}
