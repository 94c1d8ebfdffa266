"""The FlowSynth-style baseline (models/vae_flow.py): the RealNVP's exactness, the loss, sampling,
checkpoints and the `synthinv train / evaluate / invert` path on a tiny Dexed dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from synthinv import synths
from synthinv.build import build_model
from synthinv.checkpoint import load_checkpoint, save_checkpoint
from synthinv.config import ConfigError, VAERealNVPConfig, load_config, parse_config
from synthinv.models.encoders import MelCNN, SpectrumCNN
from synthinv.models.sampler import draw
from synthinv.models.vae_flow import ConditionalRealNVP, MLPDecoder, VAEFlowModel


def randomise_couplings(flow: ConditionalRealNVP, std: float = 0.3, seed: int = 0) -> None:
    """Couplings start as the identity (zero last layer): give them weights so the tests see a real map."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for coupling in flow.couplings:
            last = coupling.net[-1]
            last.weight.copy_(torch.randn(last.weight.shape, generator=gen) * std)
            last.bias.copy_(torch.randn(last.bias.shape, generator=gen) * std)


# --- the RealNVP ----------------------------------------------------------------------------------


def test_realnvp_is_invertible_and_not_the_identity():
    torch.manual_seed(0)
    flow = ConditionalRealNVP(n_params=11, context=5, layers=6, hidden=32, scale_limit=2.0)
    randomise_couplings(flow)
    x, c = torch.randn(64, 11), torch.randn(64, 5)
    u, _ = flow(x, c)
    assert (u - x).abs().max() > 0.1  # it does something
    torch.testing.assert_close(flow.inverse(u, c), x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(flow(flow.inverse(x, c), c)[0], x, atol=1e-5, rtol=1e-5)


def test_every_column_is_transformed_by_each_pair_of_couplings():
    flow = ConditionalRealNVP(n_params=9, context=2, layers=4, hidden=8, scale_limit=2.0)
    for a, b in zip(flow.couplings[0::2], flow.couplings[1::2]):
        assert sorted(torch.cat([a.free, b.free]).tolist()) == list(range(9))
    assert not torch.equal(flow.couplings[0].free, flow.couplings[2].free)  # pairs split differently


def test_realnvp_log_det_matches_autograd_jacobian():
    torch.manual_seed(1)
    flow = ConditionalRealNVP(n_params=5, context=3, layers=4, hidden=16, scale_limit=2.0).double()
    randomise_couplings(flow, std=0.5, seed=1)
    x, c = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    _, logdet = flow(x, c)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda row: flow(row[None], c[i : i + 1])[0][0], x[i])  # noqa: B023 - (5, 5), run at once
        assert torch.allclose(logdet[i], torch.linalg.slogdet(jac).logabsdet, atol=1e-9)


def test_realnvp_log_prob_is_a_density():
    """Under a 1-D flow, exp(log p) integrates to 1 (trapezoid over a wide grid)."""
    torch.manual_seed(2)
    flow = ConditionalRealNVP(n_params=2, context=1, layers=2, hidden=8, scale_limit=2.0).double()
    randomise_couplings(flow, std=0.5, seed=2)
    grid = torch.linspace(-12, 12, 401, dtype=torch.float64)
    xs = torch.cartesian_prod(grid, grid)  # (401^2, 2)
    density = flow.log_prob(xs, torch.full((len(xs), 1), 0.3, dtype=torch.float64)).exp().reshape(401, 401)
    mass = torch.trapezoid(torch.trapezoid(density, grid), grid)
    assert mass.item() == pytest.approx(1.0, abs=1e-3)


# --- the model on a tiny synthetic problem --------------------------------------------------------


class TinyEncoder(nn.Module):
    def __init__(self, inp: int, dim: int = 16):
        super().__init__()
        self.net, self.dim = nn.Sequential(nn.Linear(inp, dim), nn.GELU(), nn.Linear(dim, dim)), dim

    def forward(self, x):
        return self.net(x)


def tiny_model(n_params: int = 6, inp: int = 12, **kw) -> VAEFlowModel:
    """The config's defaults, but a latent of 4 and small couplings; `kw` changes more of them."""
    c = VAERealNVPConfig(latent=4, flow_layers=4, flow_hidden=32, **kw)
    return VAEFlowModel(TinyEncoder(inp), MLPDecoder(c.latent, inp, hidden=32), nn.Identity(), n_params, latent=c.latent,
                        flow_layers=c.flow_layers, flow_hidden=c.flow_hidden, scale_limit=c.scale_limit, beta=c.beta,
                        kl_warmup_steps=c.kl_warmup_steps, dequant=c.dequant, temperature=c.temperature)


def test_loss_is_finite_and_falls_on_a_tiny_problem():
    """Params are a fixed function of an 'input' vector; 60 Adam steps on one batch lower every term."""
    torch.manual_seed(0)
    cond = torch.randn(64, 12)
    params = torch.tanh(cond[:, :6] + 0.5 * cond[:, 6:])  # (64, 6)
    model = tiny_model(kl_warmup_steps=20)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = model.loss(params, cond)
        assert torch.isfinite(loss)
        first = first or dict(model.last_parts, loss=loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = dict(model.last_parts, loss=loss.item())
    assert last["loss"] < first["loss"] - 0.3, (first, last)
    assert last["nll"] < first["nll"] and last["recon"] < first["recon"]
    assert int(model.steps_seen) == 60 and last["beta"] == model.beta == 1.0


def test_kl_warm_up_counts_training_steps_only():
    model = tiny_model(beta=0.5, kl_warmup_steps=4)
    cond, params = torch.randn(8, 12), torch.rand(8, 6) * 2 - 1
    assert model.beta_now() == 0.0
    model.loss(params, cond)
    model.loss(params, cond)
    assert model.beta_now() == pytest.approx(0.25)
    model.eval().loss(params, cond)  # a validation loss does not advance the warm-up
    assert model.beta_now() == pytest.approx(0.25)
    for _ in range(5):
        model.train().loss(params, cond)
    assert model.beta_now() == 0.5


def test_sample_follows_the_generator_and_has_no_ode_settings():
    torch.manual_seed(0)
    model = tiny_model().eval()
    randomise_couplings(model.flow)
    cond = torch.randn(5, 12)
    a = model.sample(cond, generator=torch.Generator().manual_seed(3))
    b = model.sample(cond, generator=torch.Generator().manual_seed(3))
    c = model.sample(cond, generator=torch.Generator().manual_seed(4))
    assert a.shape == (5, 6) and torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(TypeError, match="guidance"):  # the RealNVP is inverted exactly: nothing to guide
        model.sample(cond, guidance=2.0)
    # draw() samples it without the flow's settings, the same as asking it directly
    assert torch.equal(draw(model, cond, steps=7, guidance=3.0, generator=torch.Generator().manual_seed(3)), a)


def test_repeats_are_consecutive_draws_for_each_sound():
    torch.manual_seed(0)
    model = tiny_model().eval()
    randomise_couplings(model.flow)
    cond = torch.randn(2, 12)
    out = model.sample(cond, repeats=3, generator=torch.Generator().manual_seed(0))  # (2 * 3, 6)
    assert out.shape == (6, 6) and not torch.equal(out[0], out[1])
    model.temperature = 0.0  # every draw the mode: rows of one sound agree, the two sounds differ
    out = model.sample(cond, repeats=3)
    assert torch.equal(out[0], out[2]) and torch.equal(out[3], out[5]) and not torch.equal(out[0], out[3])


def test_temperature_scales_the_base_noise():
    """Temperature 0 maps the base's mode for every draw; lower temperatures give a narrower spread."""
    torch.manual_seed(0)
    model = tiny_model().eval()
    randomise_couplings(model.flow)
    cond = torch.randn(1, 12).expand(256, 12)  # one sound, 256 samples

    def spread(t: float, seed: int) -> torch.Tensor:
        model.temperature = t
        return model.sample(cond, generator=torch.Generator().manual_seed(seed)).std(0).mean()

    model.temperature = 0.0
    a = model.sample(cond[:2], generator=torch.Generator().manual_seed(1))
    b = model.sample(cond[:2], generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert spread(0.0, 1) == 0 and spread(0.3, 1) < spread(1.0, 1)


# --- built from configs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dexed_synth():
    pytest.importorskip("dexed")
    return synths.from_settings({"name": "dexed"})


def test_dexed_config_builds_a_mel_vae_of_the_right_size(dexed_synth):
    torch.manual_seed(0)
    config = load_config("vae_realnvp", "dexed")
    model = build_model(config, dexed_synth)
    assert isinstance(model.encoder, MelCNN) and model.encoder.input_shape == (128, 151)
    assert config.encoder == load_config("flow_mlp", "dexed").encoder  # the same encoder as our flows
    assert 1_000_000 <= sum(p.numel() for p in model.parameters()) <= 2_000_000
    mel = torch.randn(3, 128, 151) * 20 - 50
    assert model.decoder(torch.zeros(3, model.latent)).shape == (3, 128, 151)
    loss = model.loss(dexed_synth.random_params(3, seed=5), mel)
    assert loss.ndim == 0 and torch.isfinite(loss)
    out = model.eval().sample(mel, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 225) and torch.isfinite(out).all()


def test_kosc_gets_a_spectrum_vae(kosc4):
    config = load_config("flow_mlp")
    config.model = VAERealNVPConfig(latent=8, flow_layers=2, flow_hidden=32)
    model = build_model(config, kosc4)
    assert isinstance(model.encoder, SpectrumCNN)
    params = kosc4.params_at(0, np.arange(4))
    audio = kosc4.render(params)
    assert torch.isfinite(model.loss(params, audio))
    assert model.sample(audio, generator=torch.Generator().manual_seed(0)).shape == (4, kosc4.spec.size)


@pytest.mark.parametrize("change, message", [
    ({"flow_layers": 3}, "even flow_layers"),
    ({"latent": 0}, "latent >= 1"),
    ({"beta": -1}, "beta must be >= 0"),
    ({"hidden": 64}, "unknown vae_realnvp model setting.s. hidden"),
])
def test_config_errors_are_one_line(change, message):
    raw = load_config("vae_realnvp", "dexed").to_dict()
    with pytest.raises(ConfigError, match=message) as err:
        parse_config({**raw, "model": {**raw["model"], **change}}, "dexed", source="my.yaml")
    assert "\n" not in str(err.value) and str(err.value).startswith("my.yaml: ")


def test_checkpoint_round_trip_gives_identical_samples(dexed_synth, tmp_path):
    torch.manual_seed(0)
    config = load_config("vae_realnvp", "dexed")
    model = build_model(config, dexed_synth)
    randomise_couplings(model.flow)
    model.steps_seen.fill_(123)
    path = save_checkpoint(tmp_path / "model.ckpt", model.eval(), dexed_synth, config, {"note": "test"})
    loaded, _, blob = load_checkpoint(path, expect_synth={"name": "dexed"})
    assert blob["config"]["model"]["kind"] == "vae_realnvp" and int(loaded.steps_seen) == 123  # stored as plain values
    mel = torch.randn(2, 128, 151) * 20 - 50
    a = model.sample(mel, generator=torch.Generator().manual_seed(1))
    b = loaded.sample(mel, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


# --- the CLI: train, evaluate, invert -------------------------------------------------------------


@pytest.fixture(scope="module")
def dexed_data(dexed_synth, tmp_path_factory):
    pytest.importorskip("h5py")
    from synthinv.data.generate import generate

    root = tmp_path_factory.mktemp("vae_dexed_data")
    generate({"name": "dexed"}, 16, root / "train", seed=0, shard_size=8, workers=1, progress=False)
    generate({"name": "dexed"}, 8, root / "val", seed=1, shard_size=8, workers=1, progress=False)
    return root


def test_cli_train_evaluate_invert(dexed_data, dexed_synth, tmp_path):
    from synthinv.audio_io import write_wav
    from synthinv.cli import app

    runner = CliRunner()
    invoke = lambda *a: runner.invoke(app, [str(x) for x in a])  # noqa: E731
    run = tmp_path / "run"
    result = invoke("train", "vae_realnvp", "--synth", "dexed", "--data", dexed_data / "train", "--val-data",
                    dexed_data / "val", "--out", run, "--steps", 3, "--batch-size", 8, "--threads", 1)
    assert result.exit_code == 0, result.output
    info = json.loads((run / "train.json").read_text())
    assert info["method"] == "vae_realnvp" and info["steps"] == 3 and np.isfinite(info["best_val_mss"])

    result = invoke("evaluate", run / "model.ckpt", "--data", dexed_data / "val", "--n", 3, "--threads", 1)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == "vae_realnvp" and metrics["n"] == 3
    assert np.isfinite(metrics["mss"]) and metrics["mss_random"] > 0 and 0 <= metrics["categorical_accuracy"] <= 1

    _, audio = dexed_synth.draw(7, np.arange(1))
    write_wav(tmp_path / "note.wav", audio[0], dexed_synth.sample_rate)
    result = invoke("invert", "--budget", 0, tmp_path / "note.wav", "--synth", "dexed", "--model", run / "model.ckpt",
                    "--candidates", 3, "--out", tmp_path / "inv", "--threads", 1)
    assert result.exit_code == 0, result.output
    ranking = (tmp_path / "inv" / "ranking.csv").read_text().strip().splitlines()
    assert len(ranking) == 1 + 3  # a sampling model gets every candidate it is asked for, unlike a regressor
    for i in (1, 2, 3):
        assert (tmp_path / "inv" / f"candidate_{i:02d}" / "preset.syx").is_file()
