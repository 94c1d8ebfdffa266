"""The shipped models: listed, loadable against this version's synth specs, and used by `invert` by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from synthinv.checkpoint import load_checkpoint
from synthinv.cli import app
from synthinv.zoo import DEFAULT_MODEL, DEFAULT_SYNTH, shipped_models

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_every_default_model_is_shipped_with_a_card():
    shipped = shipped_models()
    assert DEFAULT_SYNTH in DEFAULT_MODEL
    for synth, name in DEFAULT_MODEL.items():
        assert name in shipped, f"default model for {synth} is not shipped"
        assert (shipped[name].with_suffix(".md")).is_file()


@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_shipped_checkpoint_loads_for_this_synth_spec(name):
    if name.startswith("dexed"):
        pytest.importorskip("dexed")
    model, synth, blob = load_checkpoint(shipped_models()[name])  # refuses a spec this version does not have
    assert synth.spec.hash() == blob["spec_hash"]
    if name in DEFAULT_MODEL.values():
        assert DEFAULT_MODEL[synth.name] == name  # a default model is the default of its own synth


def test_models_command_lists_them():
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0
    for name in shipped_models():
        assert name in result.output


def test_invert_without_synth_or_model_uses_the_shipped_dexed_model(tmp_path):
    pytest.importorskip("dexed")
    out = tmp_path / "inv"
    result = CliRunner().invoke(app, ["invert", str(EXAMPLES / "dexed_heldout_0.wav"), "--candidates", "2", "--steps", "4",
                                      "--budget", "3",
                                      "--truth", str(EXAMPLES / "dexed_heldout_0.json"), "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synth"] == "dexed" and summary["model"].endswith(f"{DEFAULT_MODEL['dexed']}.ckpt")
    assert (out / "candidate_01" / "preset.syx").stat().st_size == 163  # a DX7 single-voice sysex
    assert "MSS (dB)" in result.output and "wMFCC" in result.output
    assert summary["budget"] == 3 and summary["renders"] >= summary["proposals"] == 96  # model + bank proposals


def test_a_given_model_names_its_own_synth(tmp_path):
    out = tmp_path / "inv"
    kosc_model = shipped_models()[DEFAULT_MODEL["kosc"]]
    result = CliRunner().invoke(app, ["invert", str(EXAMPLES / "kosc4_heldout_0.wav"), "--model", str(kosc_model),
                                      "--budget", "0", "--candidates", "2", "--steps", "2", "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["synth"] == "kosc"
    # ...and a synth that contradicts the model is refused in one line
    refused = CliRunner().invoke(app, ["invert", str(EXAMPLES / "kosc4_heldout_0.wav"), "--model", str(kosc_model),
                                       "--synth", "dexed", "--out", str(tmp_path / "no"), "--threads", "1"])
    assert refused.exit_code == 2 and "error:" in refused.output and not (tmp_path / "no").exists()


@pytest.mark.parametrize("synth_name", ["dexed", "dexed_simple"])
def test_the_default_dexed_models_carry_their_rankers(synth_name):
    """Their best of N is the N nearest by predicted sound among a pool of samples (results/README.md, issue #12)."""
    pytest.importorskip("dexed")
    from synthinv.checkpoint import read_checkpoint
    from synthinv.models.surrogate import ranker_from_checkpoint

    path = shipped_models()[DEFAULT_MODEL[synth_name]]
    _, synth, _ = load_checkpoint(path)
    ranker = ranker_from_checkpoint(read_checkpoint(path), synth, str(path))  # refused for another spec
    assert ranker is not None and ranker.pool == 512
    assert ranker.surrogate.n_params == synth.spec.size


def test_dexed_flow_mlp_ranked_is_the_pinned_dexed_flow_plus_a_ranker():
    """The ranked model's flow is dexed-flow-mlp's, weight for weight: tests/test_pinned_flows.py pins it, and the
    pages measured on dexed-flow-mlp describe its samples."""
    pytest.importorskip("dexed")
    models = shipped_models()
    ranked, _, ranked_blob = load_checkpoint(models["dexed-flow-mlp-ranked"])
    plain, _, plain_blob = load_checkpoint(models["dexed-flow-mlp"])
    assert "ranker" in ranked_blob and "ranker" not in plain_blob
    for (name, a), (_, b) in zip(ranked.state_dict().items(), plain.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
