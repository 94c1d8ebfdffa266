"""Encoders: encoder input (k-osc: audio (N, T); Dexed: log-mel (N, 128, frames)) -> embedding (N, dim)."""

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


class Encoder(nn.Module):
    """Base of the encoders: encoder input -> embedding (N, dim)."""

    dim: int


class SpectrumCNN(Encoder):
    """1-D residual CNN over the log power spectrum, flattened (not pooled) so frequency position survives.

    audio (N, T) -> log spectrum (N, 1, T/2+1) -> stem (stride `stem_stride`) -> `blocks` x [ResBlock, stride-2 conv]
    -> flatten -> Linear -> (N, dim).
    """

    def __init__(self, n_samples: int, channels: int, blocks: int, kernel: int, dim: int, stem_stride: int):
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


class MelInput(Encoder):
    """What the mel encoders share: the expected (n_mels, frames) and the fixed standardisation
    x = (dB - offset) / scale, so a checkpoint's config says everything (no statistics are estimated)."""

    def __init__(self, n_mels: int, frames: int, offset: float, scale: float, dim: int):
        super().__init__()
        self.offset, self.scale = float(offset), float(scale)
        self.input_shape, self.dim = (n_mels, frames), dim

    def standardise(self, mel: torch.Tensor) -> torch.Tensor:
        """(N, n_mels, frames) in dB -> (N, 1, n_mels, frames) standardised; a one-line error for other shapes."""
        if tuple(mel.shape[1:]) != self.input_shape:
            raise ValueError(f"{type(self).__name__} expects log-mels of shape (N, {self.input_shape[0]}, "
                             f"{self.input_shape[1]}), got {tuple(mel.shape)}")
        return ((mel - self.offset) / self.scale)[:, None]


class MelCNN(MelInput):
    """2-D CNN over a log-mel spectrogram (the Dexed encoder): (N, n_mels, frames) in dB -> (N, dim).

    Input standardisation is a fixed affine map on dB, x = (dB - offset) / scale (the configs' (dB + 50) / 25:
    the -100 dB floor goes to -2, a full-scale partial near 0 dB to +2); no statistics are estimated, so
    the checkpoint's config says everything. Then a patchify stem (kernel = stride = `stem`, no overlap),
    and one stride-2 3x3 convolution per entry of `channels` (pre-activation: GroupNorm, GELU, conv), and
    the feature map is flattened (not pooled) so that both the frequency position (pitch, partials) and
    the time position (envelope) of each feature survive to the final Linear.

    The configs' sizes for (128, 151): stem 4 x 4 -> (8, 32, 37); stages of 16, 32, 64 channels -> (64, 4, 5);
    flatten 1280 -> 128; 189k weights, most of them in the final Linear.
    """

    def __init__(self, n_mels: int, frames: int, channels: tuple[int, ...], stem_channels: int, stem: int, dim: int,
                 offset: float, scale: float, groups: int = 4):
        super().__init__(n_mels, frames, offset, scale, dim)
        layers: list[nn.Module] = [nn.Conv2d(1, stem_channels, stem, stride=stem)]
        c_in = stem_channels
        for c in channels:
            layers += [nn.GroupNorm(min(groups, c_in), c_in), nn.GELU(), nn.Conv2d(c_in, c, 3, stride=2, padding=1)]
            c_in = c
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.net(torch.zeros(1, 1, n_mels, frames)).numel()
        self.head = nn.Sequential(nn.GroupNorm(min(groups, c_in), c_in), nn.GELU(), nn.Flatten(), nn.Linear(flat, dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(self.standardise(mel)))  # (N, dim)


class MelAST(MelInput):
    """AST-style encoder (the paper's choice for real synths), for comparison with MelCNN: non-overlapping
    `patch` x `patch` patches of the standardised log-mel -> linear patch embedding + learned positions ->
    pre-norm transformer -> the output at one learned query token -> (N, dim).

    (128, 151) with 16 x 16 patches: 8 x 9 = 72 patch tokens + 1 query (the last 7 frames are dropped).
    """

    def __init__(self, n_mels: int, frames: int, patch: int, d_model: int, layers: int, heads: int, ff: int, dim: int,
                 offset: float, scale: float):
        super().__init__(n_mels, frames, offset, scale, dim)
        self.embed = nn.Conv2d(1, d_model, patch, stride=patch)
        n_patches = (n_mels // patch) * (frames // patch)
        self.positions = nn.Parameter(0.02 * torch.randn(1, n_patches + 1, d_model))
        self.query = nn.Parameter(torch.zeros(1, 1, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.standardise(mel)).flatten(2).transpose(1, 2)  # (N, patches, d)
        tokens = torch.cat([self.query.expand(len(tokens), -1, -1), tokens], 1) + self.positions  # (N, 1 + patches, d)
        return self.head(self.body(tokens)[:, 0])  # (N, dim): the query token's output
