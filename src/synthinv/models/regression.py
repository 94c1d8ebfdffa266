"""Point-estimate regression baseline: encoder + residual MLP head, with three losses (k-osc) or MSE
(other synths). `audio` arguments are the encoder's input, `synth.features(audio)`."""

from __future__ import annotations

import torch
from torch import nn

from synthinv.metrics import chamfer_distance
from synthinv.models.encoders import Encoder
from synthinv.synths.tokens import sort_tokens, split_tokens

LOSSES = ("mse", "chamfer", "sort")


class ResidualMLP(nn.Module):
    """(N, dim) -> (N, out): Linear, `layers` x pre-norm residual blocks, Linear."""

    def __init__(self, dim: int, out: int, hidden: int, layers: int):
        super().__init__()
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
            for _ in range(layers)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class RegressionModel(nn.Module):
    """Predicts one parameter vector per sound.

    Losses: "mse" (plain), "chamfer" (set distance over oscillator tokens: blind to their order), "sort"
    (MSE against targets whose oscillators are sorted by frequency: a symmetry-breaking heuristic).
    """

    stochastic = False  # synthinv.models.sampler.Sampler: one answer per sound

    def __init__(self, encoder: Encoder, n_params: int, k: int | None, loss: str, hidden: int, layers: int):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown regression loss {loss!r}; choose from {', '.join(LOSSES)}")
        self.encoder, self.k, self.loss_name, self.n_params = encoder, k, loss, n_params
        self.head = ResidualMLP(encoder.dim, n_params, hidden, layers)

    def predict(self, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(audio))  # (N, P)

    def loss(self, params: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        pred = self.predict(audio)
        if self.loss_name == "chamfer":
            assert self.k is not None  # chamfer and sort need k-osc tokens (build_model checks)
            return chamfer_distance(split_tokens(pred, self.k), split_tokens(params, self.k)).mean()
        if self.loss_name == "sort":
            assert self.k is not None
            params = sort_tokens(params, self.k)
        return (pred - params).square().mean()

    def penalty(self) -> torch.Tensor:
        return self.head.inp.weight.new_zeros(())

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, *, repeats: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The Sampler interface: cond (N, ...) -> the prediction clamped to [-1, 1], `repeats` copies per
        example (N * repeats, P). A point estimate draws nothing, so `generator` is not used."""
        return self.predict(cond).clamp(-1, 1).repeat_interleave(repeats, 0)
