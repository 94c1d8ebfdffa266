"""Training lowers the loss, checkpoints round-trip and refuse the wrong synth, evaluation reports sane
metrics (zero for an oracle)."""

from __future__ import annotations

import copy
import math
import os
import time

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from synthinv import synths
from synthinv.build import build_model
from synthinv.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, stored_config
from synthinv.config import Config, load_config
from synthinv.evaluation import TEST_SEED, VAL_SEED, evaluate_model, split_batch
from synthinv.training import lr_at, train

K, P = 4, 12


def small_config(name: str) -> Config:
    """A shipped config with a test-sized batch and validation."""
    config = load_config(name)
    config.train.batch_size = 64
    config.sample.val_examples, config.sample.val_steps = 32, 4
    return config


# --- the loss goes down ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["regression_mse", "flow_transformer"])
def test_adam_on_a_fixed_batch_lowers_the_loss(name, kosc4):
    torch.manual_seed(0)
    model = build_model(load_config(name), kosc4)
    params = kosc4.random_params(32, seed=0)  # (32, 12)
    audio = kosc4.render(params)  # (32, 1024)

    def fixed_loss() -> float:
        # the flow loss draws noise, t and dropout: fix them so before/after see the same draw
        torch.manual_seed(123)
        with torch.no_grad():
            return model.loss(params, audio).item()

    before = fixed_loss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(30):
        torch.manual_seed(1000 + step)
        loss = model.loss(params, audio)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss()
    assert after < 0.7 * before, (before, after)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short Lightning run shared by the tests below: 40 steps of regression_mse, batch 64."""
    torch.set_num_threads(1)
    synth = synths.from_settings({"name": "kosc", "k": K})
    config = small_config("regression_mse")
    out = tmp_path_factory.mktemp("run")
    meta = train(copy.deepcopy(config), synth, out, max_steps=40, seed=0, progress_bar=False)
    return config, synth, out, meta


def test_train_runs_the_requested_steps_and_validates(trained):
    config, _, out, meta = trained
    assert meta["steps"] == 40 and meta["max_steps"] == 40 and not meta["interrupted"]
    history = meta["history"]
    assert [h["step"] for h in history] == [8, 16, 24, 32, 40]  # 5 validations at 20 % progress each
    assert all(math.isfinite(h["loss"]) and math.isfinite(h["val_lsd"]) for h in history)
    assert meta["best_val_lsd"] == min(h["val_lsd"] for h in history)
    assert (out / "model.ckpt").is_file() and not list(out.glob(".*.tmp"))


def test_train_lowers_the_loss(trained):
    config, synth, out, meta = trained
    assert meta["history"][-1]["loss"] < meta["history"][0]["loss"]
    # held-out check: the saved model beats the identical initial model (train seeds with seed_everything)
    L.seed_everything(0, verbose=False)
    initial = build_model(config, synth).eval()
    model, _, _ = load_checkpoint(out / "model.ckpt")
    params, audio = split_batch(synth, TEST_SEED, 128)
    with torch.no_grad():
        before, after = initial.loss(params, audio).item(), model.loss(params, audio).item()
    assert after < 0.9 * before, (before, after)


def test_checkpoint_keeps_the_best_validation_weights(trained):
    config, synth, out, meta = trained
    model, _, blob = load_checkpoint(out / "model.ckpt", expect_synth={"name": "kosc", "k": K})
    assert blob["meta"]["best_val_lsd"] == meta["best_val_lsd"]
    assert stored_config(blob) == config
    # re-scoring the saved weights on the validation split gives the recorded best LSD
    result = evaluate_model(model, synth, n=config.sample.val_examples, steps=config.sample.val_steps,
                            guidance=config.sample.guidance, seed=0, split_seed=VAL_SEED)
    assert result["lsd"] == pytest.approx(meta["best_val_lsd"], rel=1e-4)
    # the run's random reference is evaluation's random baseline on the same validation sounds
    assert meta["random_val_lsd"] == pytest.approx(result["lsd_random"], rel=1e-4)
    # (40 steps of regression are not yet better than random parameters: the run says so)
    assert (meta["warning"] is not None) == (meta["best_val_lsd"] >= meta["random_val_lsd"])


class _ConstantValidation:
    """A validation whose model always scores `value`, against random parameters' `random`."""

    metric = "lsd"

    def __init__(self, value: float, random: float):
        self.value, self.random = value, random

    def score(self, *_args, **_kwargs) -> float:
        return self.value

    def random_score(self, *_args) -> float:
        return self.random


@pytest.mark.parametrize("value, warned", [(10.5, True), (10.4, True), (8.0, False)])
def test_a_run_no_better_than_random_parameters_is_flagged(value, warned):
    """A run that collapsed (results/kosc_cpu12_notes.md: a k-osc flow whose validation LSD stayed above
    random parameters') ends with a warning naming both scores; one that learned ends without."""
    from types import SimpleNamespace

    from synthinv.training import BudgetAndValidation

    budget = BudgetAndValidation(small_config("regression_mse"), None, 10, validation=_ConstantValidation(value, 10.4))
    model = nn.Linear(1, 1)
    module = SimpleNamespace(model=model, synth=None, device="cpu", log=lambda *a, **k: None)
    budget.validate(SimpleNamespace(global_step=5), module, loss=1.0)
    assert budget.random_value == 10.4 and budget.history[0]["val_lsd"] == value
    warning = budget.not_learning()
    assert (warning is not None) == warned
    if warned:
        assert f"{value:.3f}" in warning and "10.400" in warning and "--lr" in warning


def test_ema_keeps_and_saves_the_moving_average_of_the_weights(monkeypatch, tmp_path):
    """train.ema_decay d: the saved weights are e_1 = w_1, e_k = d e_(k-1) + (1 - d) w_k over the weights after
    each step, not the last weights; validation scores that average."""
    from synthinv.training import InversionModule

    torch.set_num_threads(1)
    synth = synths.from_settings({"name": "kosc", "k": 2})
    config = small_config("regression_mse")
    config.train.ema_decay = 0.6
    after_each_step: list[dict] = []

    def record(self, outputs, batch, batch_idx):
        after_each_step.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})

    monkeypatch.setattr(InversionModule, "on_train_batch_end", record, raising=False)
    meta = train(copy.deepcopy(config), synth, tmp_path, max_steps=5, progress_bar=False, n_validations=1)
    assert len(after_each_step) == 5
    expected = dict(after_each_step[0])
    for weights in after_each_step[1:]:
        expected = {k: 0.6 * expected[k] + 0.4 * w if w.is_floating_point() else w for k, w in weights.items()}
    model, _, _ = load_checkpoint(tmp_path / "model.ckpt")
    saved = model.state_dict()
    assert any(not torch.allclose(saved[k], after_each_step[-1][k]) for k in saved)  # not the last weights
    for k in saved:
        torch.testing.assert_close(saved[k], expected[k], rtol=1e-5, atol=1e-6)
    rescored = evaluate_model(model, synth, n=config.sample.val_examples, steps=config.sample.val_steps,
                              guidance=config.sample.guidance, seed=0, split_seed=VAL_SEED)
    assert rescored["lsd"] == pytest.approx(meta["best_val_lsd"], rel=1e-4)


def test_a_resumed_run_continues_its_moving_average(tmp_path):
    torch.set_num_threads(1)
    synth = synths.from_settings({"name": "kosc", "k": 2})
    config = small_config("regression_mse")
    config.train.ema_decay = 0.9
    train(copy.deepcopy(config), synth, tmp_path, max_steps=3, progress_bar=False, n_validations=1)
    first = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"]["BudgetAndValidation"]["average"]
    assert int(first["n_averaged"]) == 3
    train(copy.deepcopy(config), synth, tmp_path, max_steps=5, progress_bar=False, n_validations=1,
          resume=tmp_path / "last.ckpt")
    second = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"]["BudgetAndValidation"]["average"]
    assert int(second["n_averaged"]) == 5  # 3 steps before the resume, 2 after: the average went on


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_ema_decay_outside_zero_one_is_refused(decay):
    from synthinv.config import ConfigError, parse_config

    raw = load_config("regression_mse").to_dict()
    raw["train"]["ema_decay"] = decay
    with pytest.raises(ConfigError, match="ema_decay must be between 0 and 1"):
        parse_config(raw)


def test_a_cpu_clock_budget_ignores_time_the_process_spends_waiting(monkeypatch, tmp_path):
    """Each step sleeps 0.2 s (wall time, no CPU): a 0.6 s wall budget stops after a few steps, the same budget
    on the CPU clock runs to its step cap."""
    from synthinv.training import InversionModule

    torch.set_num_threads(1)
    synth = synths.from_settings({"name": "kosc", "k": 2})
    config = small_config("regression_mse")
    config.train.batch_size = 16
    original = InversionModule.training_step

    def sleepy(self, batch, idx):
        time.sleep(0.2)
        return original(self, batch, idx)

    monkeypatch.setattr(InversionModule, "training_step", sleepy)
    budget = 0.6 / 60
    wall = train(copy.deepcopy(config), synth, tmp_path / "wall", budget_minutes=budget, max_steps=12,
                 progress_bar=False, n_validations=1)
    cpu = train(copy.deepcopy(config), synth, tmp_path / "cpu", budget_minutes=budget, max_steps=12,
                progress_bar=False, n_validations=1, cpu_clock=True)
    assert wall["steps"] <= 4 and cpu["steps"] == 12, (wall["steps"], cpu["steps"])


def test_bf16_mixed_training_runs_the_field_under_cpu_autocast(monkeypatch, kosc4, tmp_path):
    """Scale(precision="bf16-mixed") on the CPU: the training steps' field runs under bfloat16 autocast (its
    attention takes the plain-matmul path), validation and the saved model stay float32, the run records it."""
    from synthinv.models import fields
    from synthinv.training import Scale

    seen: list[bool] = []
    original = fields.attention

    def spy(q, k, v):
        seen.append(torch.is_autocast_enabled("cpu"))
        return original(q, k, v)

    monkeypatch.setattr(fields, "attention", spy)
    config = small_config("flow_transformer")
    meta = train(copy.deepcopy(config), kosc4, tmp_path, max_steps=3, progress_bar=False, n_validations=1,
                 scale=Scale(precision="bf16-mixed"))
    assert meta["precision"] == "bf16-mixed" and meta["steps"] == 3
    assert True in seen and False in seen  # training under autocast, validation sampling outside it
    model, _, _ = load_checkpoint(tmp_path / "model.ckpt")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_train_needs_a_budget(kosc4, tmp_path):
    with pytest.raises(ValueError, match="budget"):
        train(small_config("regression_mse"), kosc4, tmp_path)


def test_lr_schedule_warmup_then_cosine():
    base, warmup, floor = 1e-3, 0.1, 0.02
    assert lr_at(0.0, base, warmup, floor) == pytest.approx(base * 1e-3)  # never exactly zero
    assert lr_at(0.05, base, warmup, floor) == pytest.approx(base / 2)
    assert lr_at(warmup, base, warmup, floor) == pytest.approx(base)
    assert lr_at(1.0, base, warmup, floor) == pytest.approx(base * floor)
    assert lr_at(5.0, base, warmup, floor) == pytest.approx(base * floor)  # past the budget: stays at the floor
    decay = [lr_at(p, base, warmup, floor) for p in np.linspace(warmup, 1.0, 20)]
    assert all(a > b for a, b in zip(decay, decay[1:]))


# --- checkpoints ----------------------------------------------------------------------------------


@pytest.fixture
def saved(kosc4, tmp_path):
    """A freshly built flow_transformer (with non-trivial AdaLN) saved to tmp_path/model.ckpt."""
    from conftest import randomise_adaln

    torch.manual_seed(0)
    config = load_config("flow_transformer")
    model = build_model(config, kosc4).eval()
    randomise_adaln(model)
    path = save_checkpoint(tmp_path / "sub" / "model.ckpt", model, kosc4, config, {"note": "test"})
    return model, path


def test_checkpoint_round_trip_gives_identical_predictions(kosc4, saved):
    model, path = saved
    loaded, synth, blob = load_checkpoint(path)
    assert not loaded.training
    assert synth.k == K and synth.spec.hash() == kosc4.spec.hash() == blob["spec_hash"]
    assert blob["meta"] == {"note": "test"}
    audio = kosc4.render(kosc4.random_params(4, seed=0))
    a = model.sample(audio, steps=3, generator=torch.Generator().manual_seed(0))
    b = loaded.sample(audio, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    for (name, p), (_, q) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(p, q), name


def test_checkpoint_for_another_k_is_refused(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match=r"k=4.*not 8"):
        load_checkpoint(path, expect_synth={"k": 8})
    with pytest.raises(CheckpointError, match="asym"):
        load_checkpoint(path, expect_synth={"asym": True})
    load_checkpoint(path, expect_synth={"name": "kosc", "k": 4, "asym": False})  # a match loads


def test_checkpoint_with_a_different_spec_is_refused(saved):
    _, path = saved
    blob = torch.load(path, weights_only=True)
    blob["spec_hash"] = "0" * 16
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match="spec"):
        load_checkpoint(path)


def test_not_a_checkpoint_is_refused(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)  # a torch file, but not ours
    with pytest.raises(CheckpointError, match="not a synthinv checkpoint"):
        load_checkpoint(other)


def test_missing_checkpoint_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path)  # a directory is not a checkpoint either


def test_save_is_atomic(kosc4, saved):
    model, path = saved
    assert sorted(os.listdir(path.parent)) == ["model.ckpt"]  # no temp file left behind
    save_checkpoint(path, model, kosc4, load_config("flow_transformer"), {"second": True})  # overwrite in place
    assert torch.load(path, weights_only=True)["meta"] == {"second": True}


# --- evaluation -----------------------------------------------------------------------------------


class Oracle(nn.Module):
    """A Sampler that returns the true parameters of split examples 0..n-1 (optionally with oscillators
    reordered)."""

    stochastic = False

    def __init__(self, params: torch.Tensor, perm=None):
        super().__init__()
        tokens = params.view(params.shape[0], K, 3)
        self.answer = (tokens[:, perm] if perm else tokens).reshape(params.shape)
        self.n_params = params.shape[1]

    def sample(self, audio, *, repeats=1, generator=None):
        return self.answer[: audio.shape[0]].repeat_interleave(repeats, 0)


METRIC_KEYS = {"lsd", "lsd_ci95", "lsd_random", "lsd_random_ci95", "chamfer", "assignment_mse", "param_mse", "n", "sample_steps", "guidance",
               "temperature", "sample_seconds"}


def test_evaluate_model_reports_finite_metrics(kosc4):
    torch.manual_seed(0)
    model = build_model(load_config("regression_mse"), kosc4)
    result = evaluate_model(model, kosc4, n=16, steps=2, guidance=2.0)
    assert set(result) == METRIC_KEYS
    assert all(math.isfinite(result[k]) for k in METRIC_KEYS)
    assert result["n"] == 16 and result["lsd"] > 0 and result["lsd_random"] > 5  # random params are far off


def test_evaluate_model_scores_an_oracle_perfectly(kosc4):
    params, _ = split_batch(kosc4, TEST_SEED, 32)
    exact = evaluate_model(Oracle(params), kosc4, n=32)
    assert exact["lsd"] == 0 and exact["chamfer"] < 1e-6 and exact["assignment_mse"] < 1e-6
    assert exact["param_mse"] == 0 and exact["lsd_random"] > 5
    # reordered oscillators: the same sounds and sets, only the order-aware param MSE notices
    shuffled = evaluate_model(Oracle(params, perm=[3, 1, 0, 2]), kosc4, n=32)
    assert shuffled["lsd"] < 1e-2 and shuffled["chamfer"] < 1e-6 and shuffled["assignment_mse"] < 1e-6
    assert shuffled["param_mse"] > 0.1
    assert shuffled["lsd_random"] == exact["lsd_random"]  # the baseline does not depend on the model


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_param2toks_assignment_can_learn_at_a_rate_of_its_own(kosc4, tmp_path, scale):
    """train.assign_lr_scale: A in a group of its own whose learning rate follows the schedule times the scale;
    at 1 the optimiser is the single group every earlier run had."""
    from synthinv.build import build_model
    from synthinv.training import InversionModule

    config = load_config("flow_param2tok")
    config.train.assign_lr_scale = scale
    model = build_model(config, kosc4)
    optimiser = InversionModule(model, kosc4, config, seed=0).configure_optimizers()
    if scale == 1.0:
        assert len(optimiser.param_groups) == 1
    else:
        rest, assign = optimiser.param_groups
        assert assign["params"] == [model.field.tokeniser.assign] and assign["lr_scale"] == scale
        assert len(rest["params"]) == len(list(model.parameters())) - 1
    meta = train(config, kosc4, tmp_path / "run", max_steps=3, seed=0, progress_bar=False)
    assert meta["steps"] == 3


def test_assign_lr_scale_must_be_positive():
    from synthinv.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="assign_lr_scale"):
        TrainConfig(batch_size=8, lr=1e-3, warmup=0.05, min_lr_ratio=0.02, assign_lr_scale=0.0)


def test_validation_records_param2tok_grouping_over_training():
    """Each validation of a Param2Tok model logs its assignment's grouping score (issue #12: the score over
    training); other models' history has no such key."""
    from types import SimpleNamespace

    from synthinv.models.grouping import model_grouping
    from synthinv.training import BudgetAndValidation

    synth = synths.from_settings({"name": "kosc", "k": K})
    for method, grouped in [("flow_param2tok", True), ("regression_mse", False)]:
        config = small_config(method)
        model = build_model(config, synth)
        budget = BudgetAndValidation(config, None, 10, validation=_ConstantValidation(9.0, 10.4))
        module = SimpleNamespace(model=model, synth=synth, device="cpu", log=lambda *a, **k: None)
        budget.validate(SimpleNamespace(global_step=5), module, loss=1.0)
        entry = budget.history[0]
        assert ("grouping" in entry) == grouped
        if grouped:
            assert entry["grouping"] == pytest.approx(model_grouping(model, synth)["score"], abs=1e-4)
