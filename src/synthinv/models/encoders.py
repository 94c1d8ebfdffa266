"""Audio encoders: audio (N, T) -> embedding (N, dim)."""

from __future__ import annotations

import torch
from torch import nn

from synthinv.features import encoder_input


class ResBlock1d(nn.Module):
    """Two same-width convolutions with a skip connection; GroupNorm keeps short runs stable."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.GroupNorm(1, channels), nn.GELU(), nn.Conv1d(channels, channels, kernel, padding=pad),
            nn.GroupNorm(1, channels), nn.GELU(), nn.Conv1d(channels, channels, kernel, padding=pad),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SpectrumCNN(nn.Module):
    """1-D residual CNN over the log power spectrum, flattened (not pooled) so frequency position survives.

    audio (N, T) -> log spectrum (N, 1, T/2+1) -> stem (stride `stem_stride`) -> `blocks` x [ResBlock, stride-2 conv]
    -> flatten -> Linear -> (N, dim).
    """

    def __init__(self, n_samples: int = 1024, channels: int = 16, blocks: int = 3, kernel: int = 7, dim: int = 128,
                 stem_stride: int = 4):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(1, channels, kernel, stride=stem_stride, padding=kernel // 2)]
        for _ in range(blocks):
            layers += [ResBlock1d(channels, kernel), nn.Conv1d(channels, channels, 4, stride=2, padding=1)]
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.net(torch.zeros(1, 1, n_samples // 2 + 1)).numel()
        self.head = nn.Sequential(nn.GELU(), nn.Linear(flat, dim))
        self.dim = dim

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = encoder_input(audio)[:, None, :]  # (N, 1, F)
        return self.head(self.net(x).flatten(1))  # (N, dim)
