"""Models: equivariance of the fixed-token transformer field, Param2Tok, regression losses, and FlowModel's
use of the flow-matching parts (RK4 sampling, classifier-free guidance on a real field; the parts alone:
test_flow.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from conftest import randomise_adaln
from synthinv import synths
from synthinv.build import build_model
from synthinv.config import ConfigError, load_config, parse_config
from synthinv.flow import guided
from synthinv.models.fields import MLPField, TransformerField
from synthinv.models.flow import FlowModel
from synthinv.models.regression import RegressionModel
from synthinv.models.sampler import draw, takes_ode_settings
from synthinv.models.tokenisers import FixedSplit, Param2Tok
from synthinv.synths import UnknownSynthError
from synthinv.synths.kosc import to_tokens

K, P = 4, 12  # oscillators, parameters


def permute_groups(x: torch.Tensor, perm, width: int = 3) -> torch.Tensor:
    """(N, P) -> (N, P) with consecutive groups of `width` parameters reordered by `perm`."""
    return x.view(x.shape[0], -1, width)[:, list(perm)].reshape(x.shape)


def field_inputs(n: int = 6, p: int = P, cond_dim: int = 128, seed: int = 0):  # cond_dim: the encoder's dim
    """x (n, p), t (n,), emb (n, cond_dim)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, p, generator=gen), torch.rand(n, generator=gen), torch.randn(n, cond_dim, generator=gen)


@pytest.fixture
def flow_transformer(kosc4):
    torch.manual_seed(0)
    model = build_model(load_config("flow_transformer"), kosc4).eval()
    randomise_adaln(model)  # otherwise every block starts as the identity and attention is never exercised
    return model


# --- equivariance ---------------------------------------------------------------------------------


def test_transformer_field_is_permutation_equivariant(flow_transformer):
    field = flow_transformer.field
    assert isinstance(field, TransformerField) and isinstance(field.tokeniser, FixedSplit)
    x, t, emb = field_inputs(cond_dim=flow_transformer.encoder.dim)
    with torch.no_grad():
        out = field(x, t, emb)  # (6, 12)
        assert out.shape == x.shape
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            perm = torch.randperm(K, generator=gen).tolist()
            torch.testing.assert_close(field(permute_groups(x, perm), t, emb), permute_groups(out, perm),
                                       atol=1e-5, rtol=0)


def test_transformer_field_output_is_not_trivial(flow_transformer):
    """Guards the equivariance test: tokens must interact (attention) and the output must depend on x, t, emb."""
    field = flow_transformer.field
    x, t, emb = field_inputs(cond_dim=flow_transformer.encoder.dim)
    with torch.no_grad():
        out = field(x, t, emb)
        x2 = x.clone()
        x2[:, 0] += 1.0  # change oscillator 0 only
        changed = (field(x2, t, emb) - out).abs().view(6, K, 3)
        assert changed[:, 1:].max() > 1e-3  # ...and the other oscillators' outputs move: attention mixes tokens
        assert (field(x, 1 - t, emb) - out).abs().max() > 1e-3
        assert (field(x, t, -emb) - out).abs().max() > 1e-3


def test_mlp_field_is_not_equivariant(kosc4):
    torch.manual_seed(0)
    model = build_model(load_config("flow_mlp"), kosc4).eval()
    randomise_adaln(model)
    x, t, emb = field_inputs()
    with torch.no_grad():
        out = model.field(x, t, emb)
        diff = (model.field(permute_groups(x, [1, 0, 3, 2]), t, emb) - permute_groups(out, [1, 0, 3, 2])).abs()
    assert diff.max() > 1e-3



def test_mlp_field_reads_the_sound_at_its_input_only_with_cond_input():
    # adaLN starts at zero, so an untrained field sees the embedding only through the input layer, if at all
    torch.manual_seed(0)
    x, t, emb = torch.randn(4, 12), torch.rand(4), torch.randn(4, 16)
    other = torch.randn(4, 16)
    plain, fed = MLPField(12, 16, 32, 2), MLPField(12, 16, 32, 2, cond_input=True)
    with torch.no_grad():
        assert torch.equal(plain(x, t, emb), plain(x, t, other))
        assert (fed(x, t, emb) - fed(x, t, other)).abs().max() > 1e-3
    config = load_config("flow_mlp")
    config.model = dataclasses.replace(config.model, cond_input=True)
    assert build_model(config, synths.get("kosc", k=4)).field.inp.in_features == 12 + config.encoder.dim

# --- Param2Tok ------------------------------------------------------------------------------------


def block_assignment(n_tokens: int = K, width: int = 3) -> torch.Tensor:
    """(n, P) 0/1 matrix sending parameters 3i..3i+2 to token i: the assignment a fixed split would make."""
    a = torch.zeros(n_tokens, n_tokens * width)
    for i in range(n_tokens):
        a[i, i * width:(i + 1) * width] = 1.0
    return a


def test_param2tok_shapes_and_penalty():
    torch.manual_seed(0)
    tok = Param2Tok(P, K, 16, init_noise=1e-4)
    x = torch.randn(5, P)
    assert tok.encode(x).shape == (5, K, 16)
    assert tok.decode(torch.randn(5, K, 16)).shape == (5, P)
    # maximally symmetric start: A ~ 1/sqrt(nP) everywhere
    assert tok.penalty().item() == pytest.approx(1 / math.sqrt(K * P), rel=1e-3)
    with torch.no_grad():
        tok.assign.copy_(block_assignment())
    assert tok.penalty().item() == pytest.approx(P / (K * P))  # mean |A| of a hard assignment = 1/n
    tok.assign.data[0, 0] = -2.0  # the penalty is an L1 norm: sign does not matter
    assert tok.penalty().item() == pytest.approx((P - 1 + 2) / (K * P))


def test_param2tok_penalty_is_the_models_penalty(kosc4):
    torch.manual_seed(0)
    model = build_model(load_config("flow_param2tok"), kosc4)
    tok = model.field.tokeniser
    assert isinstance(tok, Param2Tok) and tok.assign.shape == (K, P)
    torch.testing.assert_close(model.penalty(), tok.assign.abs().mean())
    model.penalty().backward()
    assert tok.assign.grad is not None and tok.assign.grad.abs().sum() > 0


def test_param2tok_init_noise_comes_from_the_config(kosc4):
    """model.init_noise sets how far A and Z start from maximal symmetry (the paper's 1e-4 where a config says
    nothing; the k-osc config 1e-2)."""
    from synthinv.config import TransformerFlowConfig

    assert TransformerFlowConfig().init_noise == 1e-4
    config = load_config("flow_param2tok")
    spread = {}
    for noise in (None, 0.1):
        if noise is not None:
            config.model.init_noise = noise
        tok = build_model(config, kosc4).field.tokeniser
        spread[noise] = (tok.assign.std().item(), tok.z_in.std(dim=0).mean().item())
    assert spread[None][0] == pytest.approx(1e-2, rel=0.3) and spread[None][1] == pytest.approx(1e-2, rel=0.3)
    assert spread[0.1][0] == pytest.approx(0.1, rel=0.3) and spread[0.1][1] == pytest.approx(0.1, rel=0.3)


def tied_param2tok(seed: int = 0) -> Param2Tok:
    """Param2Tok with a hard oscillator assignment and per-role (freq/amp/wave) vectors shared across
    oscillators: it then computes exactly what a fixed split does, so it must be equivariant."""
    torch.manual_seed(seed)
    tok = Param2Tok(P, K, 16, init_noise=1e-4)
    with torch.no_grad():
        tok.assign.copy_(block_assignment())
        tok.z_in.copy_(torch.randn(3, 16).repeat(K, 1))
        tok.z_out.copy_(torch.randn(3, 16).repeat(K, 1))
    return tok


def small_transformer(tok) -> TransformerField:
    field = TransformerField(tok, cond_dim=8, d_model=16, layers=2, heads=2, ff=32).eval()
    randomise_adaln(field)
    return field


def test_param2tok_with_hard_tied_assignment_is_equivariant():
    field = small_transformer(tied_param2tok())
    x, t, emb = field_inputs(cond_dim=8)
    with torch.no_grad():
        out = field(x, t, emb)
        for perm in ([1, 0, 2, 3], [3, 2, 1, 0], [2, 3, 0, 1]):
            torch.testing.assert_close(field(permute_groups(x, perm), t, emb), permute_groups(out, perm),
                                       atol=1e-5, rtol=0)


def test_param2tok_with_untied_vectors_is_not_equivariant():
    tok = tied_param2tok()
    with torch.no_grad():
        tok.z_in.copy_(torch.randn(P, 16))  # each parameter its own vector: order now matters
    field = small_transformer(tok)
    x, t, emb = field_inputs(cond_dim=8)
    with torch.no_grad():
        out = field(x, t, emb)
        diff = (field(permute_groups(x, [1, 0, 3, 2]), t, emb) - permute_groups(out, [1, 0, 3, 2])).abs()
    assert diff.max() > 1e-3


# --- regression losses ----------------------------------------------------------------------------


@pytest.fixture
def regression_batch(kosc4):
    params = kosc4.random_params(16, seed=11)  # (16, 12)
    shuffled = permute_groups(params, [2, 0, 3, 1])
    audio = kosc4.render(params)
    torch.testing.assert_close(kosc4.render(shuffled), audio, atol=1e-6, rtol=0)  # same sounds
    return params, shuffled, audio


def regression(kosc4, loss: str) -> RegressionModel:
    torch.manual_seed(0)
    model = build_model(load_config(f"regression_{loss}"), kosc4).eval()
    assert isinstance(model, RegressionModel) and model.loss_name == loss
    return model


def test_chamfer_loss_ignores_oscillator_order(kosc4, regression_batch):
    params, shuffled, audio = regression_batch
    model = regression(kosc4, "chamfer")
    with torch.no_grad():
        torch.testing.assert_close(model.loss(shuffled, audio), model.loss(params, audio), atol=1e-6, rtol=0)


def test_mse_loss_depends_on_oscillator_order(kosc4, regression_batch):
    params, shuffled, audio = regression_batch
    model = regression(kosc4, "mse")
    with torch.no_grad():
        a, b = model.loss(params, audio), model.loss(shuffled, audio)
        torch.testing.assert_close(a, (model.predict(audio) - params).square().mean())
    assert (a - b).abs() > 1e-3


def test_sort_loss_is_mse_against_frequency_sorted_targets(kosc4, regression_batch):
    params, shuffled, audio = regression_batch
    model = regression(kosc4, "sort")
    # independent sort: per example, order oscillator tokens by their frequency parameter
    sorted_rows = [sorted(to_tokens(params, K)[i].tolist(), key=lambda tok: tok[0]) for i in range(16)]
    target = torch.tensor(sorted_rows).reshape(16, P)
    with torch.no_grad():
        expected = (model.predict(audio) - target).square().mean()
        torch.testing.assert_close(model.loss(params, audio), expected)
        torch.testing.assert_close(model.loss(shuffled, audio), expected)  # invariant to the given order


def test_regression_sample_is_clamped_prediction_repeated(kosc4, regression_batch):
    _, _, audio = regression_batch
    model = regression(kosc4, "mse")
    with torch.no_grad():
        model.head.out[1].bias.fill_(5.0)  # push predictions out of range
        expected = model.predict(audio).clamp(-1, 1)  # (16, P)
        torch.testing.assert_close(model.sample(audio), expected)
        torch.testing.assert_close(model.sample(audio, repeats=2), expected.repeat_interleave(2, 0))  # copies
    assert not model.stochastic and model.n_params == P


def test_only_a_flow_takes_ode_settings(kosc4, regression_batch):
    """draw() gives steps and guidance to a flow, where they change the samples; a regression model has none
    (its sample() refuses them) and draw() samples it without them."""
    _, _, audio = regression_batch
    model = regression(kosc4, "mse")
    with pytest.raises(TypeError, match="steps"):
        model.sample(audio, steps=3)
    assert not takes_ode_settings(model)
    torch.testing.assert_close(draw(model, audio[:2], steps=3, guidance=5.0), model.sample(audio[:2]))
    torch.manual_seed(0)
    flow = build_model(load_config("flow_mlp"), kosc4).eval()
    randomise_adaln(flow)
    assert takes_ode_settings(flow) and flow.stochastic

    def flow_draw(steps, guidance):
        return draw(flow, audio[:2], steps=steps, guidance=guidance, generator=torch.Generator().manual_seed(0))

    torch.testing.assert_close(flow_draw(3, 2.0), flow.sample(audio[:2], steps=3, guidance=2.0,
                                                              generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(flow_draw(3, 2.0), flow_draw(3, 0.5)) and not torch.equal(flow_draw(3, 2.0), flow_draw(1, 2.0))


def test_unknown_regression_loss_raises(kosc4):
    with pytest.raises(ValueError, match="unknown regression loss"):
        RegressionModel(nn.Identity(), P, K, loss="l1", hidden=32, layers=1)


# --- the RK4 sampler ------------------------------------------------------------------------------


class TinyEncoder(nn.Module):
    """audio (N, T) -> (N, 4): the first four samples; enough to satisfy FlowModel."""

    dim = 4

    def forward(self, audio):
        return audio[:, :4]


class FunctionField(nn.Module):
    """v(x, t, emb) = fn(x, t), counting calls."""

    def __init__(self, fn):
        super().__init__()
        self.fn, self.calls = fn, 0

    def forward(self, x, t, emb):
        self.calls += 1
        return self.fn(x, t)

    def penalty(self):
        return torch.zeros(())


def sample_with(fn, steps: int, guidance: float = 2.0, n: int = 3, n_params: int = 6):
    """-> (starting noise (n, n_params), RK4 result (n, n_params), the field)."""
    field = FunctionField(fn)
    model = FlowModel(TinyEncoder(), field, n_params, cond_drop=0.1, ot_coupling=True)
    audio = torch.randn(n, 16)
    noise = torch.randn(n, n_params, generator=torch.Generator().manual_seed(5))
    out = model.sample(audio, steps=steps, guidance=guidance, generator=torch.Generator().manual_seed(5))
    return noise, out, field


def test_rk4_constant_velocity_moves_noise_by_exactly_c():
    c = torch.tensor([0.5, -1.0, 2.0, 0.0, 0.25, -3.0])
    for steps, guidance in ((1, 1.0), (7, 2.0), (20, 0.0)):
        noise, out, field = sample_with(lambda x, t: c.expand_as(x), steps, guidance)
        torch.testing.assert_close(out, noise + c, atol=1e-5, rtol=0)
        assert field.calls == 4 * steps  # four stages per step (guided halves share one batched call)


def test_rk4_integrates_time_dependence_exactly_for_cubics():
    # dx/dt = 4 t^3 -> x(1) = x(0) + 1; Simpson's rule inside RK4 is exact for cubics (Euler is not)
    noise, out, _ = sample_with(lambda x, t: 4 * t[:, None] ** 3 * torch.ones_like(x), steps=3)
    torch.testing.assert_close(out, noise + 1, atol=1e-5, rtol=0)


def test_rk4_linear_field_matches_the_rk4_growth_factor():
    # dx/dt = x: one RK4 step multiplies by 1 + h + h^2/2 + h^3/6 + h^4/24
    steps = 5
    h = 1 / steps
    factor = (1 + h + h**2 / 2 + h**3 / 6 + h**4 / 24) ** steps
    noise, out, _ = sample_with(lambda x, t: x, steps=steps)
    torch.testing.assert_close(out, noise * factor, atol=1e-5, rtol=1e-5)
    assert abs(factor - math.e) < 1e-3  # and that is close to the true flow e^1



def test_temperature_scales_the_starting_noise():
    """The identity field (v = x) carries noise x0 to about e * x0, so the result scales with the noise: at
    temperature 0.5 half the temperature-1 sample, at 0 exactly 0 whatever the generator."""
    field = FunctionField(lambda x, t: x)
    model = FlowModel(TinyEncoder(), field, 6, cond_drop=0.1, ot_coupling=True)
    audio = torch.randn(3, 16)

    def sample(temperature, seed=5):
        return model.sample(audio, steps=4, generator=torch.Generator().manual_seed(seed), temperature=temperature)

    assert sample(1.0).abs().min() > 1e-3  # nonzero, so the scaling below can fail
    torch.testing.assert_close(sample(0.5), 0.5 * sample(1.0), atol=1e-6, rtol=1e-6)
    assert torch.equal(sample(0.0, seed=1), torch.zeros(3, 6)) and torch.equal(sample(0.0, seed=2), torch.zeros(3, 6))
    torch.testing.assert_close(draw(model, audio, steps=4, generator=torch.Generator().manual_seed(5), temperature=0.5),
                               sample(0.5))


def test_refine_keeps_the_start_at_one_and_is_a_fresh_sample_at_zero():
    """t_start 1: the starts come back; 0: exactly `sample` from the same noise; in between, the identity field
    (v = x) carries the path point x = (1 - t) noise + t start from t to 1, a factor e^(1 - t)."""
    field = FunctionField(lambda x, t: x)
    model = FlowModel(TinyEncoder(), field, 6, cond_drop=0.1, ot_coupling=True)
    audio, start = torch.randn(3, 16), torch.randn(3, 6)

    def gen():
        return torch.Generator().manual_seed(5)

    assert torch.equal(model.refine(audio, start, 1.0, generator=gen()), start)
    torch.testing.assert_close(model.refine(audio, start, 0.0, generator=gen(), steps=4),
                               model.sample(audio, generator=gen(), steps=4))
    noise = torch.randn(3, 6, generator=gen())
    torch.testing.assert_close(model.refine(audio, start, 0.5, generator=gen(), steps=8),
                               (0.5 * noise + 0.5 * start) * math.exp(0.5), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="t_start"):
        model.refine(audio, start, 1.5)

# --- classifier-free guidance ---------------------------------------------------------------------


def test_guidance_one_is_the_conditional_velocity(flow_transformer):
    model = flow_transformer
    with torch.no_grad():
        model.null_embedding.copy_(torch.randn(model.null_embedding.shape))
        x, t, emb = field_inputs(cond_dim=model.encoder.dim)
        null = model.null_embedding.expand_as(emb)
        v_cond, v_uncond = model.field(x, t, emb), model.field(x, t, null)
        assert (v_cond - v_uncond).abs().max() > 1e-3  # the embedding matters, so the test can fail
        def velocity(weight):
            return guided(model.field, emb, model.null_embedding, weight)(x, t)

        torch.testing.assert_close(velocity(1.0), v_cond, atol=1e-5, rtol=0)
        # the batched path: v_uncond + g (v_cond - v_uncond), so g = 0 is unconditional and the map is affine
        torch.testing.assert_close(velocity(0.0), v_uncond, atol=1e-5, rtol=0)
        v2 = velocity(2.0)
        torch.testing.assert_close(v2, 2 * v_cond - v_uncond, atol=1e-4, rtol=0)
        torch.testing.assert_close(0.5 * (v2 + v_uncond), velocity(1.0), atol=1e-4, rtol=0)


def test_condition_dropout_routes_gradient_to_null_embedding(kosc4):
    params = kosc4.random_params(8, seed=0)
    audio = kosc4.render(params)
    for drop in (0.0, 1.0):
        torch.manual_seed(0)
        model = build_model(load_config("flow_transformer"), kosc4)
        randomise_adaln(model)
        model.cond_drop = drop
        loss = model.loss(params, audio)
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        enc_grad = sum(p.grad.abs().sum() for p in model.encoder.parameters() if p.grad is not None)
        null_grad = model.null_embedding.grad.abs().sum()
        if drop == 0.0:  # always conditioned: the null embedding is never used
            assert enc_grad > 0 and null_grad == 0
        else:  # always dropped: the audio encoder gets no signal
            assert enc_grad == 0 and null_grad > 0


def test_flow_sample_is_seeded(flow_transformer, kosc4):
    audio = kosc4.render(kosc4.random_params(4, seed=0))
    a = flow_transformer.sample(audio, steps=2, generator=torch.Generator().manual_seed(3))
    b = flow_transformer.sample(audio, steps=2, generator=torch.Generator().manual_seed(3))
    c = flow_transformer.sample(audio, steps=2, generator=torch.Generator().manual_seed(4))
    assert a.shape == (4, P) and torch.equal(a, b) and not torch.equal(a, c)


# --- wiring ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["flow_mlp", "flow_transformer", "flow_param2tok", "regression_mse",
                                  "regression_chamfer", "regression_sort"])
def test_every_shipped_config_builds_and_samples(name, kosc4):
    torch.manual_seed(0)
    model = build_model(load_config(name), kosc4).eval()
    audio = kosc4.render(kosc4.random_params(2, seed=0))
    out = draw(model, audio, steps=1, guidance=2.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, P) and torch.isfinite(out).all()


def test_bad_configs_raise_config_error(kosc4):
    with pytest.raises(ConfigError, match="unknown method"):
        load_config("no_such_method")
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/config.yaml")
    with pytest.raises(UnknownSynthError, match="unknown synth"):
        synths.from_settings({"name": "moog", "k": 4})
    base = load_config("flow_transformer").to_dict()
    for key, value, message in (("kind", "gan", "unknown model kind"), ("field", "rnn", "unknown model field"),
                                ("tokeniser", "bpe", "unknown model tokeniser 'bpe'; use fixed, param2tok")):
        with pytest.raises(ConfigError, match=message):
            parse_config({**base, "model": {**base["model"], key: value}}, "kosc")


class CountingEncoder(TinyEncoder):
    def __init__(self):
        super().__init__()
        self.rows: list[int] = []

    def forward(self, audio):
        self.rows.append(audio.shape[0])
        return audio[:, :4]


class RecordingField(nn.Module):
    """v = 0, recording what the loss feeds it: every x_t, t and embedding."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, x, t, emb):
        self.seen.append((x, t, emb))
        return torch.zeros_like(x)

    def penalty(self):
        return torch.zeros(())


def test_draws_give_each_example_several_noise_and_time_draws_on_one_encoding():
    encoder, field = CountingEncoder(), RecordingField()
    model = FlowModel(encoder, field, 6, cond_drop=0.0, ot_coupling=False, draws=3)
    params, audio = torch.rand(5, 6) * 2 - 1, torch.randn(5, 16)  # (B, P), (B, T)
    loss = model.loss(params, audio)
    assert encoder.rows == [5]  # one encoding per example
    x_t, t, emb = field.seen[0]
    assert x_t.shape == (15, 6) and t.shape == (15,)
    torch.testing.assert_close(emb, audio[:, :4].repeat_interleave(3, 0))  # example i's rows 3i..3i+2
    assert len(set(t.tolist())) == 15  # every draw its own time
    # with a zero field the loss is the mean squared velocity (x1 - x0) over every draw: recover the noise
    # from x_t = (1 - t) x0 + t x1 and check the loss is computed on all 15 rows
    x1 = params.repeat_interleave(3, 0)
    x0 = (x_t - t[:, None] * x1) / (1 - t[:, None])
    torch.testing.assert_close(loss, (x1 - x0).square().mean(), rtol=1e-4, atol=1e-5)


def test_zero_draws_is_refused():
    base = load_config("flow_mlp").to_dict()
    with pytest.raises(ConfigError, match="draws .* must be >= 1"):
        parse_config({**base, "model": {**base["model"], "draws": 0}}, "kosc")


def test_logit_normal_times_reach_the_field_and_a_config_names_them(kosc4):
    """model.times in a config reaches FlowModel, whose loss then draws t = sigmoid(N(0, 1)): most times near
    the middle of the path (a uniform draw puts half of them in [0.25, 0.75], a logit-normal 73%)."""
    base = load_config("flow_mlp").to_dict()
    config = parse_config({**base, "model": {**base["model"], "times": "logit_normal"}}, "kosc")
    assert build_model(config, kosc4).times == "logit_normal"
    encoder, field = CountingEncoder(), RecordingField()
    model = FlowModel(encoder, field, 6, cond_drop=0.0, ot_coupling=False, draws=4000, times="logit_normal")
    model.loss(torch.rand(2, 6) * 2 - 1, torch.randn(2, 16))
    t = field.seen[0][1]  # (8000,)
    middle = ((t > 0.25) & (t < 0.75)).float().mean().item()
    assert 0.71 < middle < 0.75  # P(|z| < log 3) = 0.728 for z ~ N(0, 1); sampling error 0.005
    torch.testing.assert_close(t.logit().std(), torch.tensor(1.0), atol=0.05, rtol=0)
    with pytest.raises(ConfigError, match="times"):
        parse_config({**base, "model": {**base["model"], "times": "beta"}}, "kosc")


def test_loss_weights_scale_the_named_fields_columns_and_a_typo_is_refused(kosc4):
    """model.loss_weight_fields / loss_weight: those fields' columns weigh loss_weight against 1 elsewhere, the
    weights scaled to mean 1; with a zero field (v = 0) the loss is then the weighted mean of the squared velocity."""
    base = load_config("flow_mlp").to_dict()
    config = parse_config({**base, "model": {**base["model"], "loss_weight_fields": ["freq"], "loss_weight": 3.0}}, "kosc")
    weights = build_model(config, kosc4).column_weights
    fields = [c.split(".", 1)[-1] for c in kosc4.spec.columns]  # (12,) freq, amp, ... per oscillator
    raw = torch.tensor([3.0 if f == "freq" else 1.0 for f in fields])
    torch.testing.assert_close(weights, raw / raw.mean())
    assert build_model(load_config("flow_mlp"), kosc4).column_weights is None
    field = RecordingField()
    model = FlowModel(CountingEncoder(), field, 12, cond_drop=0.0, ot_coupling=False, column_weights=weights)
    params = torch.rand(5, 12) * 2 - 1
    loss = model.loss(params, torch.randn(5, 16))
    x_t, t, _ = field.seen[0]
    noise = (x_t - t[:, None] * params) / (1 - t[:, None])  # the rectified path: x_t = (1 - t) noise + t params
    torch.testing.assert_close(loss, ((params - noise).square() * weights).mean())
    for weight in (2.0, 1.0):  # a typo is refused even where the weight leaves the loss as it was
        with pytest.raises(ConfigError, match="frq"):
            build_model(parse_config({**base, "model": {**base["model"], "loss_weight_fields": ["frq"],
                                                        "loss_weight": weight}}, "kosc"), kosc4)


def test_attention_under_cpu_bf16_autocast_matches_the_fused_kernel_and_keeps_equivariance(flow_transformer):
    """Under bf16 autocast the field's attention is plain matmuls (fields.attention); it must compute what the
    fused kernel computes (to bfloat16's precision) and the field must stay permutation-equivariant."""
    from synthinv.models.fields import attention

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(8, 4, 4, 16, generator=gen) for _ in range(3))  # (N, heads, n, d_head)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = attention(q, k, v)
    assert plain.dtype == torch.bfloat16  # the plain path ran (the fused kernel keeps float32 under autocast)
    torch.testing.assert_close(plain.float(), torch.nn.functional.scaled_dot_product_attention(q, k, v),
                               atol=0.03, rtol=0.03)
    field = flow_transformer.field
    x, t, emb = field_inputs(cond_dim=flow_transformer.encoder.dim)
    perm = [2, 0, 3, 1]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, permuted = field(x, t, emb), field(permute_groups(x, perm), t, emb)
    torch.testing.assert_close(permuted.float(), permute_groups(out, perm).float(), atol=2e-2, rtol=0)
