"""Conditional flow matching: rectified path, minibatch OT coupling, classifier-free guidance, RK4.

Path: x_t = (1 - t) x0 + t x1 with x0 ~ N(0, I) noise and x1 the parameters; target velocity x1 - x0.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from synthinv.models.encoders import Encoder
from synthinv.models.fields import MLPField, TransformerField


def ot_pair_noise(noise: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """Reorder noise (B, P) so that row j pairs with data row j under the minimum total squared distance."""
    cost = torch.cdist(noise, data).square().detach().cpu().double().numpy()  # (B, B)
    rows, cols = linear_sum_assignment(cost)
    paired = torch.empty_like(noise)
    paired[torch.as_tensor(cols, device=noise.device)] = noise[torch.as_tensor(rows, device=noise.device)]
    return paired


class FlowModel(nn.Module):
    """Encoder + vector field + a learned 'no audio' embedding for classifier-free guidance.

    The conditioning `audio` argument of `loss` and `sample` is the encoder's input, `synth.features(audio)`:
    the audio itself for k-osc (N, T), a log-mel (N, 128, frames) for Dexed.

    Usage:
        model = FlowModel(SpectrumCNN(), MLPField(n_params=12), n_params=12)
        loss = model.loss(params, audio)                  # training
        samples = model.sample(audio, steps=50, guidance=2.0)  # (N, P)
    """

    def __init__(self, encoder: Encoder, field: MLPField | TransformerField, n_params: int, cond_drop: float = 0.1,
                 ot_coupling: bool = True):
        super().__init__()
        self.n_params = n_params
        self.encoder, self.field = encoder, field
        self.null_embedding = nn.Parameter(torch.zeros(encoder.dim))
        self.cond_drop, self.ot_coupling = cond_drop, ot_coupling

    def loss(self, params: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """params: (B, P) in [-1, 1], audio: encoder input (B, ...) -> scalar CFM loss."""
        emb = self.encoder(audio)  # (B, dim)
        drop = torch.rand(emb.shape[0], 1, device=emb.device) < self.cond_drop
        emb = torch.where(drop, self.null_embedding.expand_as(emb), emb)
        noise = torch.randn_like(params)
        if self.ot_coupling:
            noise = ot_pair_noise(noise, params)
        t = torch.rand(params.shape[0], device=params.device)
        x_t = (1 - t[:, None]) * noise + t[:, None] * params
        return (self.field(x_t, t, emb) - (params - noise)).square().mean()

    def penalty(self) -> torch.Tensor:
        return self.field.penalty()

    def guided_velocity(self, x: torch.Tensor, t: torch.Tensor, emb: torch.Tensor, guidance: float) -> torch.Tensor:
        """v_uncond + guidance * (v_cond - v_uncond), both halves in one batched call."""
        if guidance == 1.0:
            return self.field(x, t, emb)
        null = self.null_embedding.expand_as(emb)
        v = self.field(torch.cat([x, x]), torch.cat([t, t]), torch.cat([emb, null]))
        v_cond, v_uncond = v.chunk(2)
        return v_uncond + guidance * (v_cond - v_uncond)

    @torch.no_grad()
    def sample(self, audio: torch.Tensor, steps: int = 50, guidance: float = 2.0,
               generator: torch.Generator | None = None, repeats: int = 1) -> torch.Tensor:
        """audio: encoder input (N, ...) -> `repeats` parameter samples per example (N * repeats, P), by RK4
        from t=0 to t=1 (example i's samples at rows i*repeats ...); the encoder runs once per example.

        Samples are unbounded; callers clamp to [-1, 1] and let the synth decode (argmax for one-hot blocks)."""
        emb = self.encoder(audio).repeat_interleave(repeats, 0)  # (N * repeats, dim)
        x = torch.randn(emb.shape[0], self.n_params, generator=generator).to(audio.device)
        dt = 1.0 / steps
        for i in range(steps):
            t = torch.full((x.shape[0],), i * dt, device=x.device)
            k1 = self.guided_velocity(x, t, emb, guidance)
            k2 = self.guided_velocity(x + 0.5 * dt * k1, t + 0.5 * dt, emb, guidance)
            k3 = self.guided_velocity(x + 0.5 * dt * k2, t + 0.5 * dt, emb, guidance)
            k4 = self.guided_velocity(x + dt * k3, t + dt, emb, guidance)
            x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x
