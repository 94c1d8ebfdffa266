"""Dexed models end to end on a tiny generated dataset: the encoder input, each shipped Dexed config
(build, one training step, checkpoint round trip, evaluation), decoding before rendering, and the
one-line errors for a dataset that does not fit."""

from __future__ import annotations

import copy
import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

dexed = pytest.importorskip("dexed")  # dexed-py
pytest.importorskip("h5py")

from synthinv import synths  # noqa: E402
from synthinv.build import build_model  # noqa: E402
from synthinv.checkpoint import load_checkpoint, save_checkpoint, stored_config  # noqa: E402
from synthinv.cli import app  # noqa: E402
from synthinv.config import Config, ConfigError, builtin_configs, load_config, parse_config  # noqa: E402
from synthinv.data.generate import DEFAULT_FEATURES, generate  # noqa: E402
from synthinv.data.shards import ShardDataset  # noqa: E402
from synthinv.datasets import DatasetError, open_dataset  # noqa: E402
from synthinv.evaluation import best_of_candidates, evaluate_model, mss_of, sample_params  # noqa: E402
from synthinv.experiment import assignment_group_shares, plot_assignment  # noqa: E402
from synthinv.features import MEL_FEATURES  # noqa: E402
from synthinv.models.encoders import MelAST, MelCNN, MelPooled, SpectrumCNN  # noqa: E402
from synthinv.models.sampler import draw  # noqa: E402
from synthinv.training import ShardBatches, train  # noqa: E402

METHODS = ("flow_param2tok", "flow_mlp", "regression_mse", "vae_realnvp", "regression_mse_ast")


def tiny(config: Config) -> Config:
    config = copy.deepcopy(config)
    config.train.batch_size = 8
    config.sample.val_examples, config.sample.val_steps = 4, 2
    return config


@pytest.fixture(scope="module")
def synth():
    return synths.from_settings({"name": "dexed"})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Training data (16 examples, seed 0, 2 shards) and validation/test data (8 examples, seed 1)."""
    root = tmp_path_factory.mktemp("dexed_data")
    generate({"name": "dexed"}, 16, root / "train", seed=0, shard_size=8, workers=1, progress=False)
    generate({"name": "dexed"}, 8, root / "val", seed=1, shard_size=8, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def runs(data, synth, tmp_path_factory):
    """One 2-step training run per shipped Dexed config -> {method: (run dir, meta)}."""
    torch.set_num_threads(1)
    out = {}
    for name in METHODS:
        run = tmp_path_factory.mktemp(name)
        meta = train(tiny(load_config(name, "dexed")), synth, run, max_steps=2, seed=0, progress_bar=False,
                     n_validations=1, data_dir=data / "train", val_dir=data / "val")
        out[name] = (run, meta)
    return out


# --- the encoder input ----------------------------------------------------------------------------


def test_features_are_what_the_shards_store(data, synth):
    assert MEL_FEATURES == {k: DEFAULT_FEATURES[k] for k in MEL_FEATURES}
    ds = ShardDataset(data / "train")
    assert ds.manifest["features"] == synth.feature_settings
    params, mel = zip(*(ds[i] for i in range(4)))
    feats = synth.features(synth.render(torch.stack(params)))
    assert feats.shape == (4, *synth.feature_shape) == (4, 128, 151)
    torch.testing.assert_close(torch.stack(mel), feats.half().float(), atol=0, rtol=0)  # float16 storage only


def test_kosc_features_are_the_audio(kosc4):
    audio = kosc4.render(kosc4.random_params(2, seed=0))
    assert kosc4.features(audio) is audio


def test_shard_batches_cover_every_example_once_per_epoch(data):
    ds = ShardDataset(data / "train")  # 16 examples in 2 shards of 8
    stored = torch.stack([ds[i][0] for i in range(len(ds))])
    batches = ShardBatches(ds, 6, seed=3)
    epochs = [list(batches) for _ in range(2)]
    for epoch in epochs:
        assert [len(p) for p, _ in epoch] == [6, 6]  # the partial batch of 4 is dropped
        for p, mel in epoch:
            assert mel.dtype == torch.float32 and mel.shape[1:] == (128, 151)
            # each row is a stored example, with its own mel
            rows = [(stored == row).all(1).nonzero().item() for row in p]
            assert len(set(rows)) == len(rows)
            torch.testing.assert_close(mel, torch.stack([ds[i][1] for i in rows]), atol=0, rtol=0)
    assert not torch.equal(epochs[0][0][0], epochs[1][0][0])  # a new order every epoch
    again = ShardBatches(ds, 6, seed=3)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epochs[0], list(again)))  # a pure function of the seed
    whole = list(ShardBatches(ds, 32, seed=0))  # smaller than a batch: one batch of everything
    assert len(whole) == 1 and len(whole[0][0]) == 16


def test_shard_cache_gives_the_same_batches_and_respects_its_cap(data):
    ds = ShardDataset(data / "train")
    plain, cached = ShardBatches(ds, 6, seed=3), ShardBatches(ds, 6, seed=3, cache_gb=1.0)
    for _ in range(2):  # the second epoch is served from the cache
        for (p0, m0), (p1, m1) in zip(plain, cached):
            assert torch.equal(p0, p1) and torch.equal(m0, m1)
    assert len(cached.cache) == 2 and not plain.cache
    one_shard = sum(a.nbytes for a in cached.cache[0]) / 2**30
    capped = ShardBatches(ds, 6, seed=3, cache_gb=1.5 * one_shard)
    list(capped)
    assert len(capped.cache) == 1  # a second shard would pass the cap


# --- building -------------------------------------------------------------------------------------


def test_ast_encoder_reads_patches_through_one_query_token():
    torch.manual_seed(0)
    enc = MelAST(n_mels=128, frames=151, patch=16, d_model=32, layers=1, heads=2, ff=64, dim=24, offset=-50.0,
                 scale=25.0).eval()
    mel = torch.randn(3, 128, 151) * 20 - 50
    out = enc(mel)
    assert out.shape == (3, 24) and enc.positions.shape == (1, 8 * 9 + 1, 32)
    changed = mel.clone()
    changed[1, :16, :16] += 30.0  # one patch of example 1
    again = enc(changed)
    assert torch.allclose(again[[0, 2]], out[[0, 2]], atol=1e-6)  # examples stay independent
    assert not torch.allclose(again[1], out[1])  # the query token hears that patch
    with pytest.raises(ValueError, match="MelAST expects"):
        enc(torch.zeros(1, 64, 151))
    raw = load_config("regression_mse", "dexed").to_dict()
    with pytest.raises(ConfigError, match="unknown encoder kind 'rnn'"):
        parse_config({**raw, "encoder": {**raw["encoder"], "kind": "rnn"}}, "dexed")


def test_pooled_encoder_hears_the_pooled_log_mel_and_its_level(synth):
    torch.manual_seed(0)
    enc = MelPooled(n_mels=128, frames=151, mel_pool=2, segments=16, hidden=32, layers=1, dim=24).eval()
    mel = (torch.randn(3, 128, 151) * 20 - 50).clamp_min(-100.0)
    summary = enc.summary(mel)
    assert summary.shape == (3, 64 * 16 + 1) and summary[:, :-1].abs().max() <= 1.0 + 1e-6
    # a pooled value is the mean of its two bands' dB below the peak, over its stretch of frames
    relative = (mel[0] - mel[0].max()).clamp_min(-80.0)
    assert torch.allclose(summary[0, 0], (relative[:2, :10].mean() / 40 + 1), atol=1e-5)
    louder = enc(mel + 6.0)  # the same shape 6 dB up: only the level input differs
    assert torch.allclose(enc.summary(mel + 6.0)[:, :-1], summary[:, :-1], atol=1e-5)
    assert not torch.allclose(louder, enc(mel))
    with pytest.raises(ValueError, match="MelPooled expects"):
        enc(torch.zeros(1, 64, 151))
    raw = load_config("flow_mlp", "dexed").to_dict()
    model = build_model(parse_config({**raw, "encoder": {"kind": "pooled", "pitch": True}}, "dexed"), synth)
    assert isinstance(model.encoder, MelPooled) and model.encoder.pitch is not None
    assert model.loss(synth.random_params(3, seed=5), mel).ndim == 0
    vae = load_config("vae_realnvp", "dexed").to_dict()
    with pytest.raises(ConfigError, match="MelPooled"):
        build_model(parse_config({**vae, "encoder": {"kind": "pooled"}}, "dexed"), synth)


def test_shipped_dexed_configs():
    assert set(builtin_configs("dexed")) == set(METHODS)
    assert load_config("flow_param2tok", "dexed").model.n_tokens == 16
    with pytest.raises(ConfigError, match="unknown method"):
        load_config("flow_transformer", "dexed")  # the fixed split is k-osc only


@pytest.mark.parametrize("name", METHODS)
def test_build_each_config(name, synth):
    torch.manual_seed(0)
    model = build_model(load_config(name, "dexed"), synth)
    assert isinstance(model.encoder, MelAST if name.endswith("_ast") else MelCNN) and model.encoder.input_shape == (128, 151)
    mel = torch.randn(3, 128, 151) * 20 - 50
    params = synth.random_params(3, seed=5)
    assert model.loss(params, mel).ndim == 0
    out = draw(model, mel, steps=2, guidance=2.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, synth.spec.size) == (3, 225) and torch.isfinite(out).all()


def test_kosc_still_gets_the_spectrum_encoder(kosc4):
    assert isinstance(build_model(load_config("flow_param2tok"), kosc4).encoder, SpectrumCNN)


def test_dexed_config_errors(synth):
    config = load_config("regression_mse", "dexed")
    for loss in ("chamfer", "sort"):
        config.model.loss = loss
        with pytest.raises(ConfigError, match="mse"):
            build_model(config, synth)
    config = load_config("flow_param2tok", "dexed")
    config.model.tokeniser = "fixed"
    with pytest.raises(ConfigError, match="param2tok"):
        build_model(config, synth)
    config.model.tokeniser, config.model.n_tokens = "param2tok", None
    with pytest.raises(ConfigError, match="n_tokens"):
        build_model(config, synth)


def test_sampled_params_are_clamped_and_decoded_before_rendering(synth):
    """A relaxed sample (one-hot blocks not +-1, values past the ends) renders as its decoded patch."""
    params = synth.random_params(3, seed=2)
    audio = synth.render(params)
    relaxed = params.clone()
    for p, s in zip(synth.spec.params, synth.spec.slices):
        if p.kind == "categorical":
            block = relaxed[:, s]
            relaxed[:, s] = torch.where(block > 0, 0.4, -0.7 + 0.1 * torch.rand_like(block))
        else:
            col = relaxed[:, s.start]
            relaxed[:, s.start] = torch.where(col.abs() == 1, col * 1.8, col)
    assert relaxed.abs().max() > 1
    assert torch.equal(mss_of(synth, relaxed, audio), torch.zeros(3))


# --- training, checkpoints, evaluation ------------------------------------------------------------


@pytest.mark.parametrize("name", METHODS)
def test_one_training_run_per_config(name, runs):
    run, meta = runs[name]
    assert meta["steps"] == 2 and meta["val_metric"] == "mss"
    assert meta["best_val_mss"] == min(h["val_mss"] for h in meta["history"]) and np.isfinite(meta["best_val_mss"])
    assert meta["data"]["examples"] == 16 and meta["data"]["seed"] == 0
    assert (run / "model.ckpt").is_file()


@pytest.mark.parametrize("name", METHODS)
def test_checkpoint_round_trip_and_evaluation(name, runs, data, synth):
    run, meta = runs[name]
    model, loaded_synth, blob = load_checkpoint(run / "model.ckpt", expect_synth={"name": "dexed"})
    assert loaded_synth.spec.hash() == synth.spec.hash() and blob["meta"]["best_val_mss"] == meta["best_val_mss"]
    # the saved weights re-score the validation examples to the recorded best MSS
    sample = stored_config(blob).sample
    result = evaluate_model(model, loaded_synth, n=sample.val_examples, steps=sample.val_steps,
                            guidance=sample.guidance, seed=0, data_dir=data / "val", train_seed=0)
    assert result["mss"] == pytest.approx(meta["best_val_mss"], rel=1e-5)
    assert meta["random_val_mss"] == pytest.approx(result["mss_random"], rel=1e-5)  # the run's random reference
    assert result["n"] == 4 and result["test"]["seed"] == 1
    for key in ("mss", "mss_random", "param_mse", "param_mse_random", "categorical_accuracy"):
        assert np.isfinite(result[key]), key
    assert result["mss_random"] > 0 and 0 <= result["categorical_accuracy"] <= 1
    # without a dataset: examples drawn from the test seed
    drawn = evaluate_model(model, loaded_synth, n=2, steps=2, guidance=2.0)
    assert drawn["n"] == 2 and drawn["test"]["drawn"] and np.isfinite(drawn["mss"])


def test_best_of_candidates_scores_what_invert_ranks_first(runs, data, synth):
    """Best-of-N scores, per sound, the candidate that invert's ranking distance puts first; a regressor has
    no candidates."""
    flow, _, _ = load_checkpoint(runs["flow_mlp"][0] / "model.ckpt")
    ds = ShardDataset(data / "val")
    params, feats = torch.stack([ds[i][0] for i in range(3)]), torch.stack([ds[i][1] for i in range(3)])
    audio = synth.render(params)
    result = best_of_candidates(flow, synth, feats, audio, params, candidates=4, steps=2, guidance=2.0, seed=5,
                                transpose=False)
    # the same candidates, scored one by one: rows i*4 .. i*4+3 belong to sound i
    cands = sample_params(flow, feats.repeat_interleave(4, 0), 2, 2.0, 6).clamp(-1, 1)
    per_candidate = mss_of(synth, cands, audio.repeat_interleave(4, 0)).reshape(3, 4)
    ranking = per_candidate  # Dexed candidates are ranked by MSS itself
    first = per_candidate[torch.arange(3), ranking.argmin(1)]
    assert result["candidates"] == 4
    assert result["mss_best_of"] == pytest.approx(first.mean().item(), rel=1e-5)
    assert per_candidate.min(1).values.mean().item() <= result["mss_best_of"] <= per_candidate.max(1).values.mean().item()
    chunked = best_of_candidates(flow, synth, feats, audio, params, candidates=4, steps=2, guidance=2.0, seed=5, chunk=2,
                                 transpose=False)
    assert chunked["mss_best_of"] == pytest.approx(result["mss_best_of"], rel=1e-6)  # chunks change memory only
    # trying each candidate at the target's pitch keeps the closer of the two: never worse
    moved = best_of_candidates(flow, synth, feats, audio, params, candidates=4, steps=2, guidance=2.0, seed=5)
    assert moved["transpose"] and 0 <= moved["transposed"] <= 1
    assert moved["mss_best_of"] <= result["mss_best_of"] + 1e-6
    regressor, _, _ = load_checkpoint(runs["regression_mse"][0] / "model.ckpt")
    assert best_of_candidates(regressor, synth, feats, audio, params, 4, 2, 2.0, 5) == {}


def test_best_of_candidates_with_a_ranker_scores_the_ranked_draws(runs, data, synth):
    """With a ranker the candidates are ranked_draw's (the nearest predicted among a pool), scored as without."""
    from synthinv.bank import embed
    from synthinv.models.sampler import ranked_draw
    from synthinv.models.surrogate import Ranker, SoundSurrogate

    flow, _, _ = load_checkpoint(runs["flow_mlp"][0] / "model.ckpt")
    ds = ShardDataset(data / "val")
    params, feats = torch.stack([ds[i][0] for i in range(3)]), torch.stack([ds[i][1] for i in range(3)])
    audio = synth.render(params)
    torch.manual_seed(0)
    ranker = Ranker(SoundSurrogate(synth.spec.size, embed(audio[:1], synth.sample_rate).shape[1], 16, 1).eval(), 6)
    result = best_of_candidates(flow, synth, feats, audio, params, candidates=2, steps=2, guidance=2.0, seed=5,
                                transpose=False, ranker=ranker, chunk=2)  # chunks of sounds: the same draws
    assert result["ranker_pool"] == 6
    cands = ranked_draw(flow, ranker, synth.spec, feats, embed(audio, synth.sample_rate), repeats=2,
                        generator=torch.Generator().manual_seed(6), steps=2, guidance=2.0)  # (6, P)
    per_candidate = mss_of(synth, cands, audio.repeat_interleave(2, 0)).reshape(3, 2)
    assert result["mss_best_of"] == pytest.approx(per_candidate.min(1).values.mean().item(), rel=1e-5)


def test_save_load_gives_identical_predictions(synth, tmp_path):
    torch.manual_seed(0)
    config = load_config("flow_param2tok", "dexed")
    model = build_model(config, synth).eval()
    path = save_checkpoint(tmp_path / "model.ckpt", model, synth, config, {"note": "test"})
    loaded, _, _ = load_checkpoint(path)
    mel = torch.randn(2, 128, 151) * 20 - 50
    a = model.sample(mel, steps=2, generator=torch.Generator().manual_seed(1))
    b = loaded.sample(mel, steps=2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_assignment_plot_groups_by_operator(runs, tmp_path):
    run, _ = runs["flow_param2tok"]
    assert plot_assignment(run / "model.ckpt", tmp_path / "a.png", "Param2Tok |A|, Dexed")
    assert (tmp_path / "a.png").stat().st_size > 1000
    assert not plot_assignment(runs["flow_mlp"][0] / "model.ckpt", tmp_path / "b.png", "no Param2Tok")
    model, synth, _ = load_checkpoint(run / "model.ckpt")
    groups, shares = assignment_group_shares(model.field.tokeniser.assign.detach(), synth.spec)
    assert groups == ["op1", "op2", "op3", "op4", "op5", "op6", "global", "note"]
    assert shares.shape == (16, 8) and np.allclose(shares.sum(1), 1)


# --- datasets that do not fit ---------------------------------------------------------------------


def test_wrong_dataset_errors(data, synth, runs, tmp_path):
    kosc_dir = tmp_path / "kosc"
    generate({"name": "kosc", "k": 2}, 8, kosc_dir, seed=0, shard_size=8, workers=1, progress=False)
    with pytest.raises(DatasetError, match="'kosc' dataset"):
        open_dataset(kosc_dir, synth)
    with pytest.raises(DatasetError, match="'kosc' dataset"):
        train(tiny(load_config("regression_mse", "dexed")), synth, tmp_path / "r", max_steps=1, data_dir=kosc_dir,
              progress_bar=False)
    other = tmp_path / "vel90"
    generate({"name": "dexed", "velocity": 90}, 2, other, seed=5, shard_size=2, workers=1, progress=False)
    with pytest.raises(DatasetError, match="velocity 90 vs 100"):
        open_dataset(other, synth, role="test")
    with pytest.raises(DatasetError, match="needs|give data_dir"):
        train(tiny(load_config("regression_mse", "dexed")), synth, tmp_path / "r", max_steps=1, progress_bar=False)
    # validation or test examples from the training split are refused
    with pytest.raises(DatasetError, match="same split"):
        train(tiny(load_config("regression_mse", "dexed")), synth, tmp_path / "r", max_steps=1, progress_bar=False,
              data_dir=data / "train", val_dir=data / "train")
    model, _, _ = load_checkpoint(runs["regression_mse"][0] / "model.ckpt")
    with pytest.raises(DatasetError, match="same split"):
        evaluate_model(model, synth, n=2, steps=1, data_dir=data / "train", train_seed=0)


def test_cli_train_and_evaluate_dexed(data, tmp_path):
    runner = CliRunner()
    invoke = lambda *a: runner.invoke(app, [str(x) for x in a])  # noqa: E731
    run = tmp_path / "run"
    result = invoke("train", "regression_mse", "--synth", "dexed", "--data", data / "train", "--val-data", data / "val",
                    "--out", run, "--steps", 2, "--batch-size", 8, "--threads", 1)
    assert result.exit_code == 0, result.output
    assert "best validation MSS" in result.output
    info = json.loads((run / "train.json").read_text())
    assert info["synth"] == "dexed" and info["steps"] == 2
    result = invoke("evaluate", run / "model.ckpt", "--data", data / "val", "--n", 3, "--steps", 2)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["mss"] >= 0 and metrics["mss_random"] > 0

    # one-line errors
    kosc_dir = tmp_path / "kosc"
    generate({"name": "kosc", "k": 2}, 8, kosc_dir, seed=3, shard_size=8, workers=1, progress=False)
    cases = [
        (["train", "flow_mlp", "--synth", "dexed", "--out", tmp_path / "x", "--steps", 1], "--data"),
        (["train", "flow_mlp", "--synth", "dexed", "--data", kosc_dir, "--out", tmp_path / "x", "--steps", 1], "kosc"),
        (["train", "flow_mlp", "--synth", "dexed", "--data", tmp_path / "nope", "--out", tmp_path / "x", "--steps", 1],
         "not found"),
        (["train", "flow_mlp", "--data", data / "train", "--out", tmp_path / "x", "--steps", 1], "--synth dexed"),
        (["train", "flow_transformer", "--synth", "dexed", "--data", data / "train", "--out", tmp_path / "x",
          "--steps", 1], "unknown method"),
        (["evaluate", run / "model.ckpt", "--data", kosc_dir, "--force", "--n", 2], "kosc"),
        (["evaluate", run / "model.ckpt", "--data", data / "train", "--force", "--n", 2], "same split"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, (args, result.output)
    assert not (tmp_path / "x").exists()  # nothing created by a refused run


def test_invert_a_dexed_sound_writes_loadable_syx(runs, synth, tmp_path):
    """invert on Dexed: encoder sees the log-mel, every candidate gets a .syx that reads back to its preset."""
    from synthinv.audio_io import write_wav
    from synthinv.pipeline import invert, write_inversion
    from synthinv.presets import read_json_preset, read_syx_voice

    truth, audio = synth.draw(7, np.arange(1))
    write_wav(tmp_path / "note.wav", audio[0], synth.sample_rate)
    result = invert(tmp_path / "note.wav", str(runs["flow_mlp"][0] / "model.ckpt"), synth_name="dexed",
                    candidates=2, steps=2, budget=0)
    out = write_inversion(result, tmp_path / "inv")
    wide = synth.over_whole_range()  # what invert plays candidates on
    assert result.synth.spec.hash() == wide.spec.hash()
    for folder in ("candidate_01", "candidate_02"):
        patch = read_syx_voice(out / folder / "preset.syx")
        from_json = wide.from_patch(patch)  # .syx -> normalised params (note from the default)
        stored = read_json_preset(out / folder / "preset.json", wide)
        native_syx, native_json = wide.spec.decode(from_json[None])[0], wide.spec.decode(stored[None])[0]
        assert torch.equal(native_syx[:-1], native_json[:-1])  # every voice parameter; the note is not in a voice
    # Dexed candidates are ranked by MSS (the paper's metric), with wMFCC beside it as a second opinion
    from synthinv.metrics import mfcc_distance

    rows = list(csv.DictReader(open(out / "ranking.csv")))
    assert "wmfcc" in rows[0] and "lsd" not in rows[0]
    ranked = rows[1:] if "in tune: ranked first" in rows[0]["source"] else rows  # else by distance
    assert [float(r["distance"]) for r in ranked] == sorted(float(r["distance"]) for r in ranked)
    best = result.candidates[0]
    expected = mss_of(wide, best.params[None], result.target.audio[None])[0].item()
    assert float(rows[0]["distance"]) == pytest.approx(expected, abs=1e-3)
    wmfcc = mfcc_distance(best.audio[None], result.target.audio[None], synth.sample_rate)[0].item()
    assert float(rows[0]["wmfcc"]) == pytest.approx(wmfcc, abs=1e-3)
    assert "<th>MSS (dB)</th><th>wMFCC</th>" in (out / "report.html").read_text()
    # the ranking is gain-blind, so the level of each candidate against the target is shown beside it
    rms = lambda x: x.square().mean().sqrt().item()  # noqa: E731
    expected_level = 20 * np.log10(rms(best.audio) / rms(result.target.audio))
    assert float(rows[0]["level_db"]) == pytest.approx(expected_level, abs=0.01)


def test_invert_transposition_never_ranks_worse_and_is_reported(runs, synth, tmp_path):
    """Same seed, same samples: with --transpose every candidate is the closer of itself and its move to the
    target's pitch, so the sorted distances are never worse; moved ones say so in their source."""
    from synthinv.audio_io import write_wav
    from synthinv.pipeline import invert

    write_wav(tmp_path / "note.wav", synth.draw(8, np.arange(1))[1][0], synth.sample_rate)
    ckpt = str(runs["flow_mlp"][0] / "model.ckpt")
    plain = invert(tmp_path / "note.wav", ckpt, synth_name="dexed", candidates=6, steps=2, transpose=False, budget=0)
    moved = invert(tmp_path / "note.wav", ckpt, synth_name="dexed", candidates=6, steps=2, budget=0)
    before, after = [c.distance for c in plain.candidates], [c.distance for c in moved.candidates]
    assert all(a <= b + 1e-6 for a, b in zip(after, before))
    n_moved = sum("note" in c.source for c in moved.candidates)
    assert moved.settings["transposed"] == n_moved and plain.settings["transposed"] == 0
    assert not n_moved or any("moved to the target's pitch" in m for m in moved.messages)
