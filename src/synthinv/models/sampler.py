"""The sampler interface: what inversion, evaluation and training's validation need from a model.

Every model here (FlowModel, VAEFlowModel, RegressionModel) implements `Sampler`. Only a flow solves an
ODE, so only FlowModel.sample takes `steps` and `guidance`; `draw` is the one place that passes them.
"""

from __future__ import annotations

from typing import Protocol, Self

import torch

from synthinv.models.flow import DEFAULT_GUIDANCE, DEFAULT_STEPS, FlowModel
from synthinv.models.regression import RegressionModel
from synthinv.models.surrogate import Ranker
from synthinv.models.vae_flow import VAEFlowModel
from synthinv.synths.base import ParamSpec


class Sampler(Protocol):
    """Proposes synth parameters for sounds.

    `sample(cond, repeats=r, generator=g)`: cond is the encoder input `synth.features(audio)` (N, ...); the
    result (N * r, P) holds example i's r proposals at rows i*r .. i*r + r - 1, in the normalised encoding
    but not clamped (callers clamp to [-1, 1]). `generator` seeds the draw. A point estimate (`stochastic`
    False: regression) returns r copies of its one answer, so callers ask it for one.
    """

    @property
    def n_params(self) -> int: ...

    @property
    def stochastic(self) -> bool: ...

    def sample(self, cond: torch.Tensor, *, repeats: int = 1,
               generator: torch.Generator | None = None) -> torch.Tensor: ...

    def eval(self) -> Self: ...

    def to(self, device: str | torch.device) -> Self: ...


def takes_ode_settings(model: Sampler) -> bool:
    """True for a flow, whose samples depend on `steps` and `guidance`."""
    return isinstance(model, FlowModel)


def draw(model: Sampler, cond: torch.Tensor, *, repeats: int = 1, generator: torch.Generator | None = None,
         steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE, temperature: float = 1.0) -> torch.Tensor:
    """model.sample(cond, ...) -> (N * repeats, P). `steps`, `guidance` and `temperature` (the scale of the
    starting noise) say how a flow solves its ODE;
    a model that solves none (the VAE's RealNVP is inverted exactly, regression predicts) is sampled
    without them: callers that let a user choose them refuse them first (`takes_ode_settings`)."""
    if isinstance(model, FlowModel):
        return model.sample(cond, repeats=repeats, generator=generator, steps=steps, guidance=guidance,
                            temperature=temperature)
    return model.sample(cond, repeats=repeats, generator=generator)


@torch.no_grad()
def ranked_draw(model: Sampler, ranker: Ranker, spec: ParamSpec, cond: torch.Tensor, targets: torch.Tensor, *,
                repeats: int, generator: torch.Generator | None = None, steps: int = DEFAULT_STEPS,
                guidance: float = DEFAULT_GUIDANCE, temperature: float = 1.0) -> torch.Tensor:
    """cond (N, ...) encoder inputs, targets (N, D) their sounds' bank embeddings (synthinv.bank.embed) ->
    (N * repeats, P) as `draw` lays them out: per sound, max(repeats, ranker.pool) samples are drawn and snapped
    to the synth's grid (what a render plays, and what the surrogate was trained on), and the `repeats` whose
    predicted embedding lies nearest the target's are kept, nearest first. Within [-1, 1] (snapping clips)."""
    kept = []
    for i in range(len(cond)):
        pool = draw(model, cond[i:i + 1], repeats=max(repeats, ranker.pool), generator=generator, steps=steps,
                    guidance=guidance, temperature=temperature)  # (pool, P)
        pool = spec.snap(pool)  # clipped, discrete values on their grid, one-hot blocks exact
        kept.append(pool[ranker.surrogate.order(pool, targets[i])[:repeats]])
    return torch.cat(kept)


def _conforms(flow: FlowModel, vae: VAEFlowModel, regression: RegressionModel) -> list[Sampler]:
    """Never called: the type checker verifies here that every model implements Sampler."""
    return [flow, vae, regression]
