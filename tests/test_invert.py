"""`synthinv invert` end to end on a tiny model: ranked candidates, presets, report, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthinv import synths
from synthinv.cli import app
from synthinv.config import load_config
from synthinv.presets import read_json_preset
from synthinv.training import train

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kosc4_heldout_0.wav"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A flow and a regression checkpoint for k=4, a few steps each (quality is not the point here)."""
    root = tmp_path_factory.mktemp("models")
    synth = synths.from_settings({"name": "kosc", "k": 4})
    paths = {}
    for name in ("flow_mlp", "regression_mse"):
        config = load_config(name)
        config.train.batch_size = 32
        config.sample.val_examples, config.sample.val_steps = 16, 2
        train(config, synth, root / name, max_steps=3, progress_bar=False, n_validations=1)
        paths[name] = root / name / "model.ckpt"
    return paths


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_invert_writes_ranked_candidates_and_report(tiny_models, tmp_path):
    from synthinv.audio_io import write_wav

    synth = synths.from_settings({"name": "kosc", "k": 4})
    truth = synth.random_params(1, seed=99)
    write_wav(tmp_path / "target.wav", synth.render(truth)[0], synth.sample_rate)
    out = tmp_path / "inv"
    result = invoke("invert", "--budget", 0, tmp_path / "target.wav", "--model", tiny_models["flow_mlp"], "--candidates", 5,
                    "--steps", 4, "--refine", 40, "--out", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "ranking.csv")))
    assert len(rows) == 6  # 5 samples + 1 refined
    distances = [float(r["distance"]) for r in rows]
    assert distances == sorted(distances)
    assert any(r["source"] == "refined from #1" for r in rows)
    for r in rows:  # every candidate is a loadable preset that re-renders to its audio
        params = read_json_preset(out / r["folder"] / "preset.json", synth)
        assert params.shape == (12,) and (out / r["folder"] / "audio.wav").is_file()
    html = (out / "report.html").read_text()
    assert "candidate_01" in html and "refinement" in html
    assert json.loads((out / "summary.json").read_text())["refine_budget"] == 40
    assert not list(tmp_path.glob(".inv.partial-*"))


def test_refinement_never_makes_the_best_worse(tiny_models, tmp_path):
    from synthinv.pipeline import invert

    synth = synths.from_settings({"name": "kosc", "k": 4})
    from synthinv.audio_io import write_wav

    write_wav(tmp_path / "t.wav", synth.render(synth.random_params(1, seed=5))[0], synth.sample_rate)
    plain = invert(tmp_path / "t.wav", str(tiny_models["flow_mlp"]), candidates=4, steps=4, budget=0)
    refined = invert(tmp_path / "t.wav", str(tiny_models["flow_mlp"]), candidates=4, steps=4, refine_budget=60, budget=0)
    assert refined.candidates[0].distance <= plain.candidates[0].distance + 1e-6
    assert refined.refine_gain >= 1.0 - 1e-6


def test_regression_model_gives_one_candidate_and_says_so(tiny_models, tmp_path):
    out = tmp_path / "inv"
    result = invoke("invert", "--budget", 0, EXAMPLE, "--model", tiny_models["regression_mse"],
                    "--candidates", 4, "--out", out)
    assert result.exit_code == 0, result.output
    assert "one answer" in result.output
    assert len(list(csv.DictReader(open(out / "ranking.csv")))) == 1


def test_regression_model_refuses_guidance(tiny_models, tmp_path):
    out = tmp_path / "inv"
    result = invoke("invert", "--budget", 0, EXAMPLE, "--model", tiny_models["regression_mse"], "--guidance", 3,
                    "--out", out)
    assert result.exit_code == 2, result.output
    assert "guidance is a flow's sampler setting" in result.output and "regression" in result.output
    assert not out.exists()
    scored = invoke("evaluate", tiny_models["regression_mse"], "--n", 4, "--guidance", 3, "--out", tmp_path / "m.json")
    assert scored.exit_code == 2 and "--guidance is for flow models" in scored.output
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda p: p / "missing.wav", [], "not found"),
        (lambda p: (p / "x.wav").write_bytes(b"RIFF garbage") and p / "x.wav", [], "not a readable audio file"),
        (lambda p: p / "silent.wav", [], "silent"),
        (lambda p: EXAMPLE, ["--synth", "dexed"], "trained for synth name='kosc'"),
        (lambda p: EXAMPLE, ["--candidates", 0], "at least 1"),
    ],
)
def test_bad_input_leaves_no_output(tiny_models, tmp_path, make, args, message):
    import numpy as np
    import soundfile as sf

    sf.write(str(tmp_path / "silent.wav"), np.zeros(2048, np.float32), 44100)
    out = tmp_path / "inv"
    result = invoke("invert", "--budget", 0, make(tmp_path), "--model", tiny_models["flow_mlp"], "--out", out, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".inv.partial-*"))


def test_existing_output_is_kept_without_force(tiny_models, tmp_path):
    out = tmp_path / "inv"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = invoke("invert", "--budget", 0, EXAMPLE, "--model", tiny_models["flow_mlp"], "--out", out)
    assert result.exit_code == 2 and "--force" in result.output
    assert (out / "mine.txt").read_text() == "keep me"
