"""Out-of-distribution evaluation (synthinv.ood, `synthinv evaluate --audio-dir`) and the committed OOD set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from conftest import load_script
from synthinv.audio_io import AudioError
from synthinv.cli import app
from synthinv.ood import audio_files, evaluate_audio_dir, fmt, markdown_table, ood_out_dir

ROOT = Path(__file__).resolve().parents[1]
OOD = ROOT / "examples" / "ood"


def make_ood_script():
    return load_script("make_ood_set")


# --- the committed set ---------------------------------------------------------------------------------

def test_committed_ood_set_is_what_the_script_describes():
    script = make_ood_script()
    files = audio_files(OOD)
    expected = {f"{name}_{note}.wav" for name, _ in script.INSTRUMENTS for note in script.NOTES}
    assert {f.name for f in files} == expected
    assert sum(f.stat().st_size for f in files) <= 9_000_000
    for f in files:
        info = sf.info(str(f))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 1, 66150, "PCM_16"), f.name
        peak = np.abs(sf.read(str(f))[0]).max()
        assert peak == pytest.approx(0.5, abs=1e-3), f.name


def test_fluidsynth_renders_the_same_note_twice_identically(tmp_path):
    script = make_ood_script()
    pytest.importorskip("fluidsynth", exc_type=ImportError)  # pyfluidsynth + Debian's libfluidsynth
    if not script.SOUNDFONT.is_file():
        pytest.skip("fluid-soundfont-gm is not installed")
    first, second = script.render_note(0, 60), script.render_note(0, 60)
    assert first.shape == (66150,) and np.abs(first).max() > 0.01
    np.testing.assert_array_equal(first, second)
    # and the committed piano note is what the script makes today, sample for sample (each note renders in
    # a fresh process: this one has loaded other audio libraries, which can change fluidsynth's output)
    script.write_wav(tmp_path / "piano_50.wav", script.normalise(script.render_note(0, 50)), script.SAMPLE_RATE)
    committed, again = (sf.read(str(p / "piano_50.wav"), dtype="int16")[0] for p in (OOD, tmp_path))
    np.testing.assert_array_equal(committed, again)


# --- errors --------------------------------------------------------------------------------------------

def test_audio_dir_errors_are_one_line(tmp_path):
    with pytest.raises(AudioError, match="is not a directory"):
        audio_files(tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(AudioError, match="holds no audio files"):
        audio_files(tmp_path)


def test_out_dir_refuses_to_overwrite_without_force(tmp_path):
    (tmp_path / "ood.md").write_text("old")
    with pytest.raises(FileExistsError, match="already holds OOD tables"):
        ood_out_dir("model.ckpt", OOD, tmp_path, force=False)
    assert ood_out_dir("model.ckpt", OOD, tmp_path, force=True) == tmp_path
    assert ood_out_dir(tmp_path / "run" / "model.ckpt", OOD, None, False) == tmp_path / "run" / "ood_ood"


def test_undefined_is_written_as_a_word():
    assert fmt(float("nan"), "f0_cents") == "undefined" and fmt(None, "mss") == "undefined"
    assert fmt(103.4, "f0_cents") == "103" and fmt(0.12345, "sot") == "0.1235"


# --- end to end ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_sounds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sounds")
    for name in ("flute_65.wav", "marimba_50.wav"):
        shutil.copy(OOD / name, folder / name)
    (folder / "notes.txt").write_text("ignored: not audio")
    return folder


@pytest.fixture(scope="module")
def dexed_checkpoint(tmp_path_factory):
    """An untrained Dexed flow (the pipeline, not the quality, is under test)."""
    pytest.importorskip("dexed")
    from synthinv import synths
    from synthinv.build import build_model
    from synthinv.checkpoint import save_checkpoint
    from synthinv.config import load_config

    torch.manual_seed(0)
    synth = synths.from_settings({"name": "dexed"})
    config = load_config("flow_mlp", "dexed")
    path = tmp_path_factory.mktemp("dexed_run") / "model.ckpt"
    return save_checkpoint(path, build_model(config, synth).eval(), synth, config, {"steps": 0, "train_seconds": 0.0})


def test_evaluate_audio_dir_scores_each_file_against_random_patches(two_sounds, dexed_checkpoint):
    result = evaluate_audio_dir(dexed_checkpoint, two_sounds, candidates=2, steps=2, f0=False)  # f0: CLI test
    assert [r["file"] for r in result.rows] == ["flute_65.wav", "marimba_50.wav"]
    assert "f0_cents" not in result.rows[0]
    for row in result.rows:
        for name in ("mss", "wmfcc", "sot", "rms_cos"):
            assert np.isfinite(row[name]) and np.isfinite(row[f"{name}_random"]), name
            assert np.isfinite(row[f"{name}_lookup"]), name  # the bank lookup: the bar next to random patches
    s = result.summary
    assert s["files"] == 2 and s["candidates"] == s["model_candidates"] == s["random_candidates"] == 2
    assert s["mss"] == pytest.approx(np.mean([r["mss"] for r in result.rows]), rel=1e-5)
    assert s["train_steps"] == 0 and s["method"] == "flow_mlp"
    table = markdown_table(result)
    assert "| flute_65.wav |" in table and "mean ± 95%" in table and "model / lookup / random" in table


def test_cli_evaluate_audio_dir_writes_tables(two_sounds, dexed_checkpoint, tmp_path):
    out = tmp_path / "ood"
    args = ["evaluate", str(dexed_checkpoint), "--audio-dir", str(two_sounds), "--out", str(out), "--steps", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 files: mss" in result.output
    rows = (out / "ood.csv").read_text().splitlines()
    assert rows[0].startswith("file,mss,wmfcc,sot,rms_cos,f0_cents,") and len(rows) == 3
    summary = json.loads((out / "ood.json").read_text())["summary"]
    assert summary["files"] == 2 and summary["model_candidates"] == 1
    assert summary["f0_cents_n"] + summary["f0_cents_random_n"] >= 0 and "f0_cents_random" in summary
    again = CliRunner().invoke(app, args)  # no --force: refused before any work
    assert again.exit_code == 2 and "--force" in again.output
    both = CliRunner().invoke(app, args + ["--force", "--data", str(tmp_path)])
    assert both.exit_code == 2 and "exclude each other" in both.output


def test_cli_evaluate_audio_dir_without_audio_is_one_line(dexed_checkpoint, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", str(dexed_checkpoint), "--audio-dir", str(tmp_path)])
    assert result.exit_code == 2 and result.output.startswith("error:") and "no audio files" in result.output
