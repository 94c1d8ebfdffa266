"""The generative baseline of the FlowSynth family: a VAE on the encoder's input (log-mel for Dexed, log
spectrum for k-osc) whose latent z conditions a RealNVP density over the synth parameters.

    mel (N, 128, 151) --MelCNN--> (mu, logvar) (N, Z) --z--> decoder --> reconstructed mel (N, 128, 151)
                                                          \\--> conditional RealNVP: p(params | z) over (N, P)

Loss (every term per dimension, so its size does not depend on the mel size or the number of columns):
    recon  = mean squared error per reconstructed value (the standardised input the encoder sees)
    kl     = KL(q(z | x) || N(0, I)) summed over z, divided by the number of reconstructed values: with
             recon as MSE per value, recon + kl is the Gaussian ELBO (sigma^2 = 1/2) per value
    nll    = -log p(params + noise | z) / P, with small Gaussian dequantisation noise, because one-hot
             blocks sit exactly at +-1 and a density on them could collapse to an unbounded likelihood
    loss   = recon + beta_t * kl + nll,   beta_t = beta * min(1, step / kl_warmup_steps)

Unlike FlowSynth's deterministic latent -> parameter flow (which needs dim z = P), the RealNVP here is a
*conditional* density, so z can be small (32-64) and the model can still return several answers per sound.
Also simpler than FlowSynth (PAPER.md): the posterior is a plain diagonal Gaussian (no normalising flow on
the latent), and the parameter loss is that one likelihood, not cross-entropy per one-hot block plus MSE.
Sampling encodes the sound to the posterior *mean* of z (no latent noise: the sound is given) and draws
the diversity from the RealNVP's base noise. It has no `steps` or `guidance`, unlike FlowModel: the RealNVP
is inverted exactly in one pass, and there is no unconditional branch.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from synthinv.features import encoder_input
from synthinv.models.encoders import Encoder

# --- the conditional RealNVP ----------------------------------------------------------------------


def half_split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of 0..n-1 into (kept, free) index sets of sizes n // 2 and n - n // 2."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n // 2].sort().values, perm[n // 2 :].sort().values


class AffineCoupling(nn.Module):
    """y_free = x_free * exp(s) + t, y_kept = x_kept, with (s, t) = net(x_kept, context).

    s is soft-clipped to (-scale_limit, scale_limit) so that one layer can neither explode nor vanish the
    data; the last layer starts at zero, so every coupling begins as the identity."""

    kept: torch.Tensor  # buffers
    free: torch.Tensor

    def __init__(self, kept: torch.Tensor, free: torch.Tensor, context: int, hidden: int, scale_limit: float):
        super().__init__()
        self.register_buffer("kept", kept)
        self.register_buffer("free", free)
        self.scale_limit = float(scale_limit)
        self.net = nn.Sequential(
            nn.Linear(len(kept) + context, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, 2 * len(free)),
        )
        last = cast(nn.Linear, self.net[-1])
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def shift_and_log_scale(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(torch.cat([x[:, self.kept], context], 1))  # (N, 2 * F)
        log_s, t = h.chunk(2, 1)  # (N, F) each
        return self.scale_limit * torch.tanh(log_s / self.scale_limit), t

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, P) -> (y (N, P), log|det dy/dx| (N,))."""
        log_s, t = self.shift_and_log_scale(x, context)
        y = x.index_copy(1, self.free, x[:, self.free] * log_s.exp() + t)
        return y, log_s.sum(1)

    def inverse(self, y: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """y (N, P) -> x (N, P); the kept half is unchanged, so (s, t) are recomputed from y exactly."""
        log_s, t = self.shift_and_log_scale(y, context)
        return y.index_copy(1, self.free, (y[:, self.free] - t) * (-log_s).exp())


class ConditionalRealNVP(nn.Module):
    """p(x | c) for x (N, P): `layers` affine couplings, data -> base N(0, I) in `forward`.

    Layers come in pairs over one seeded random half split: the first transforms one half given the other,
    the second the reverse, so every column is transformed once per pair and each pair mixes a different
    split of the columns (a fixed permutation between pairs)."""

    def __init__(self, n_params: int, context: int, layers: int, hidden: int, scale_limit: float, seed: int = 0):
        super().__init__()
        couplings = []
        for i in range(layers):
            kept, free = half_split(n_params, seed + i // 2)
            if i % 2:
                kept, free = free, kept
            couplings.append(AffineCoupling(kept, free, context, hidden, scale_limit))
        self.couplings = nn.ModuleList(couplings)
        self.n_params = n_params

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, P) -> (u (N, P) in base space, log|det du/dx| (N,))."""
        logdet = x.new_zeros(x.shape[0])
        for coupling in self.couplings:
            x, ld = coupling(x, context)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, u: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """u (N, P) in base space -> x (N, P)."""
        for coupling in reversed(self.couplings):
            u = cast(AffineCoupling, coupling).inverse(u, context)
        return u

    def log_prob(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """log p(x | context) (N,) by change of variables under the standard normal base."""
        u, logdet = self(x, context)
        return Normal(0.0, 1.0).log_prob(u).sum(1) + logdet


# --- decoders and reconstruction targets ----------------------------------------------------------


class MelTarget(nn.Module):
    """What the mel decoder reconstructs: the log-mel standardised as MelCNN sees it, (dB - offset) / scale."""

    def __init__(self, offset: float, scale: float):
        super().__init__()
        self.offset, self.scale = float(offset), float(scale)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.offset) / self.scale  # (N, n_mels, frames)


class SpectrumTarget(nn.Module):
    """What the k-osc decoder reconstructs: the scaled log power spectrum SpectrumCNN sees (N, T // 2 + 1)."""

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return encoder_input(audio)


class MelDecoder(nn.Module):
    """z (N, Z) -> standardised log-mel (N, n_mels, frames): MelCNN mirrored.

    Linear to the encoder's last feature map (C, H, W), one stride-2 transposed convolution per encoder
    stage (channels reversed), a transposed patchify (kernel = stride = stem) to one channel, then cropped
    to (n_mels, frames): the stride-2 stages round sizes up on the way down, so the way up overshoots."""

    def __init__(self, latent: int, feature_shape: tuple[int, int, int], channels: tuple[int, ...], stem_channels: int,
                 stem: int, out_shape: tuple[int, int], groups: int = 4):
        super().__init__()
        self.feature_shape, self.out_shape = tuple(feature_shape), tuple(out_shape)
        self.inp = nn.Linear(latent, math.prod(feature_shape))
        layers: list[nn.Module] = []
        widths = list(channels)[::-1] + [stem_channels]  # e.g. 64, 32, 16, 8
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.GroupNorm(min(groups, c_in), c_in), nn.GELU(),
                       nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
        layers += [nn.GroupNorm(min(groups, stem_channels), stem_channels), nn.GELU(),
                   nn.ConvTranspose2d(stem_channels, 1, stem, stride=stem)]
        self.net = nn.Sequential(*layers)
        c, h, w = feature_shape
        up = 2 ** len(channels) * stem
        if h * up < out_shape[0] or w * up < out_shape[1]:
            raise ValueError(f"MelDecoder from {feature_shape} reaches {(h * up, w * up)}, short of {out_shape}")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.inp(z).view(z.shape[0], *self.feature_shape)  # (N, C, H, W)
        x = self.net(x)[:, 0]  # (N, H * 2^stages * stem, W * ...)
        return x[:, : self.out_shape[0], : self.out_shape[1]]  # (N, n_mels, frames)


class MLPDecoder(nn.Module):
    """z (N, Z) -> (N, out): two hidden layers; the k-osc spectrum decoder."""

    def __init__(self, latent: int, out: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


# --- the model ------------------------------------------------------------------------------------


class VAEFlowModel(nn.Module):
    """VAE on the encoder input + conditional RealNVP p(params | z); a synthinv.models.sampler.Sampler.

    Usage (synthinv.build.build_model makes one from a config; the sizes are VAERealNVPConfig's):
        model = build_model(load_config("vae_realnvp", "dexed"), synth)
        loss = model.loss(params, mel)                       # training (counts steps for the KL warm-up)
        samples = model.sample(mel, generator=gen)           # (N, P), unbounded like a flow's samples
    """

    steps_seen: torch.Tensor  # a buffer
    stochastic = True  # Sampler: every sample is a new draw of the RealNVP's base noise

    def __init__(self, encoder: Encoder, decoder: nn.Module, target: nn.Module, n_params: int, latent: int,
                 flow_layers: int, flow_hidden: int, scale_limit: float, beta: float, kl_warmup_steps: int,
                 dequant: float, temperature: float):
        super().__init__()
        self.encoder, self.decoder, self.target = encoder, decoder, target
        self.to_latent = nn.Linear(encoder.dim, 2 * latent)  # -> (mu, logvar)
        self.flow = ConditionalRealNVP(n_params, latent, flow_layers, flow_hidden, scale_limit)
        self.n_params, self.latent = n_params, latent
        self.beta, self.kl_warmup_steps = float(beta), int(kl_warmup_steps)
        self.dequant, self.temperature = float(dequant), float(temperature)
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))  # training steps, for the warm-up
        self.last_parts: dict[str, float] = {}

    def encode(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cond: encoder input (N, ...) -> posterior mean and log-variance of z, (N, Z) each."""
        mu, logvar = self.to_latent(self.encoder(cond)).chunk(2, 1)
        return mu, logvar.clamp(-12.0, 8.0)  # keeps exp(logvar) finite early in training

    def beta_now(self) -> float:
        warm = min(1.0, int(self.steps_seen) / self.kl_warmup_steps) if self.kl_warmup_steps > 0 else 1.0
        return self.beta * warm

    def loss(self, params: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """params: (B, P) in [-1, 1], cond: encoder input (B, ...) -> scalar loss (module docstring)."""
        mu, logvar = self.encode(cond)
        posterior = Normal(mu, (0.5 * logvar).exp())
        z = posterior.rsample()  # (B, Z)
        target = self.target(cond)
        recon = (self.decoder(z) - target).square().mean()
        kl = kl_divergence(posterior, Normal(0.0, 1.0)).sum(1).mean() / target[0].numel()
        noisy = params + self.dequant * torch.randn_like(params)
        nll = -self.flow.log_prob(noisy, z).mean() / self.n_params
        beta = self.beta_now()
        if self.training:
            self.steps_seen += 1
        self.last_parts = {"recon": recon.item(), "kl": kl.item(), "nll": nll.item(), "beta": beta}
        return recon + beta * kl + nll

    def penalty(self) -> torch.Tensor:
        return self.to_latent.weight.new_zeros(())

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, *, repeats: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """cond: encoder input (N, ...) -> `repeats` parameter samples per example (N * repeats, P).

        z is the posterior mean; base noise (times `temperature`) is drawn from `generator` and mapped
        through the inverse RealNVP."""
        mu = self.encode(cond)[0].repeat_interleave(repeats, 0)  # (N * repeats, latent)
        u = torch.randn(mu.shape[0], self.n_params, generator=generator).to(cond.device) * self.temperature
        return self.flow.inverse(u, mu)
