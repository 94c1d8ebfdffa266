"""The conditional flow-matching model: an audio encoder and a vector field, trained and sampled with the
parts in synthinv.flow (rectified path, minibatch OT coupling, classifier-free guidance, RK4)."""

from __future__ import annotations

import torch
from torch import nn

from synthinv.flow import (
    ProbabilityPath,
    RectifiedPath,
    TimeDistribution,
    drop_condition,
    guided,
    ot_pair_noise,
    sample_times,
    solve,
)
from synthinv.models.encoders import Encoder
from synthinv.models.fields import MLPField, TransformerField

DEFAULT_STEPS = 50  # RK4 steps of `sample`
DEFAULT_GUIDANCE = 2.0  # classifier-free guidance weight of `sample`


class FlowModel(nn.Module):
    """Encoder + vector field + a learned "no audio" embedding for classifier-free guidance.

    Training regresses the field onto the path's velocity: for data x1, noise x0 (OT-paired with the batch
    when `ot_coupling`) and t drawn from `times` (U(0, 1) by default), loss = |field(x_t, t, emb) - (x1 - x0)|^2
    (each column's square times `column_weights`, if given),
    with the audio embedding dropped to the null one with probability `cond_drop`. With `draws` > 1 each example gets that
    many (noise, t) draws on one encoding: an extra draw costs the field's share of a step, not the encoder's.
    Sampling solves dx/dt = guided velocity from noise at t = 0 to parameters at t = 1.

    The conditioning argument of `loss` and `sample` is the encoder's input, `synth.features(audio)`: the
    audio itself for k-osc (N, T), a log-mel (N, 128, frames) for Dexed.

    Usage (synthinv.build.build_model makes one from a config):
        field = MLPField(n_params=12, cond_dim=encoder.dim, width=192, layers=7)
        model = FlowModel(encoder, field, n_params=12, cond_drop=0.1, ot_coupling=True)
        loss = model.loss(params, audio)                        # training
        samples = model.sample(audio, steps=50, guidance=2.0)   # (N, P)
    """

    stochastic = True  # synthinv.models.sampler.Sampler: every sample is a new draw

    def __init__(self, encoder: Encoder, field: MLPField | TransformerField, n_params: int, cond_drop: float,
                 ot_coupling: bool, path: ProbabilityPath | None = None, draws: int = 1,
                 times: TimeDistribution = "uniform", column_weights: torch.Tensor | None = None):
        super().__init__()
        self.n_params = n_params
        self.encoder, self.field = encoder, field
        self.null_embedding = nn.Parameter(torch.zeros(encoder.dim))
        self.cond_drop, self.ot_coupling, self.draws, self.times = cond_drop, ot_coupling, draws, times
        self.path = path or RectifiedPath()
        # (P,) per-column weights of the loss (None: all 1); not saved: the config rebuilds them
        self.register_buffer("column_weights", column_weights, persistent=False)
        self.column_weights: torch.Tensor | None

    def loss(self, params: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """params: (B, P) in [-1, 1], cond: encoder input (B, ...) -> scalar CFM loss."""
        emb = drop_condition(self.encoder(cond), self.null_embedding, self.cond_drop)  # (B, dim)
        if self.draws > 1:
            emb, params = emb.repeat_interleave(self.draws, 0), params.repeat_interleave(self.draws, 0)  # (B * draws, .)
        noise = torch.randn_like(params)  # (B * draws, P)
        if self.ot_coupling:
            noise = ot_pair_noise(noise, params)
        t = sample_times(params.shape[0], self.times, params.device)  # (B * draws,)
        target = self.path.sample(noise, params, t)
        error = (self.field(target.x_t, t, emb) - target.velocity).square()  # (B * draws, P)
        return (error if self.column_weights is None else error * self.column_weights).mean()

    def penalty(self) -> torch.Tensor:
        return self.field.penalty()

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, *, repeats: int = 1, generator: torch.Generator | None = None,
               steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE, temperature: float = 1.0) -> torch.Tensor:
        """cond: encoder input (N, ...) -> `repeats` parameter samples per example (N * repeats, P), example
        i's at rows i*repeats ...; the encoder runs once per example. `steps` RK4 steps from t = 0 to 1 under
        guidance weight `guidance` (1: the conditional field alone), from noise scaled by `temperature` (below 1
        the samples crowd towards what the field makes of the noise's centre, 0: one deterministic answer).

        Samples are unbounded; callers clamp to [-1, 1] and let the synth decode (argmax for one-hot blocks)."""
        emb = self.encoder(cond).repeat_interleave(repeats, 0)  # (N * repeats, dim)
        noise = torch.randn(emb.shape[0], self.n_params, generator=generator).to(cond.device)  # (N * repeats, P)
        if temperature != 1.0:
            noise = noise * temperature
        return solve(guided(self.field, emb, self.null_embedding, guidance), noise, steps, method="rk4")

    @torch.no_grad()
    def refine(self, cond: torch.Tensor, start: torch.Tensor, t_start: float, *, generator: torch.Generator | None = None,
               steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE) -> torch.Tensor:
        """Samples that begin from given parameter sets: cond (N, ...) encoder input, start (N, P) -> (N, P).

        Each start is put on the training path at time t_start as if it were the data end, x = (1 - t_start)
        noise + t_start start, and the ODE is solved from there to t = 1 in `steps` RK4 steps: t_start 1
        returns the starts, 0 is `sample` (a new draw), in between the flow moves a start (a bank patch near
        the target) towards what it hears in cond, keeping more of the start the closer t_start is to 1."""
        if not 0.0 <= t_start <= 1.0:
            raise ValueError(f"t_start must be in [0, 1], got {t_start}")
        if t_start == 1.0:
            return start.clone()
        emb = self.encoder(cond)  # (N, dim)
        noise = torch.randn(start.shape, generator=generator).to(start.device)  # (N, P)
        x = (1.0 - t_start) * noise + t_start * start
        return solve(guided(self.field, emb, self.null_embedding, guidance), x, steps, method="rk4", t0=t_start)
