"""The public API as the README shows it: `import synthinv`, one call, typed results, the synth registry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import synthinv

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light_and_lists_its_api():
    code = "import sys, synthinv; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    for name in synthinv.__all__:
        assert getattr(synthinv, name) is not None
    with pytest.raises(AttributeError):
        synthinv.no_such_thing  # noqa: B018


def test_invert_returns_ranked_candidates_with_writers(tmp_path):
    pytest.importorskip("dexed")
    result = synthinv.invert(ROOT / "examples" / "dexed_heldout_0.wav", candidates=2, budget=0, steps=4)
    assert isinstance(result, synthinv.Inversion) and len(result.candidates) == 2
    best = result.candidates[0]
    assert best.distance <= result.candidates[1].distance
    assert best.params.shape == (225,) and best.audio.shape == (result.synth.length,)
    assert best.preset["note.midi"] in range(24, 109) and best.preset["global.algorithm"] in [str(a) for a in range(1, 33)]
    assert best.write_native(tmp_path / "v").stat().st_size == 163  # a DX7 single voice
    assert best.write_json(tmp_path / "p.json").is_file() and best.write_audio(tmp_path / "a.wav").is_file()
    assert (result.write(tmp_path / "all") / "report.html").is_file()


def test_errors_are_synthinv_errors():
    with pytest.raises(synthinv.SynthinvError, match="not found"):
        synthinv.invert("no_such_file.wav", budget=0)
    with pytest.raises(synthinv.SynthinvError, match="budget"):
        synthinv.invert(ROOT / "examples" / "dexed_heldout_0.wav", budget=-1)
    with pytest.raises(synthinv.SynthinvError, match="unknown synth"):
        synthinv.synths.get("moog")


def test_synth_registry_builds_synths_with_settings():
    kosc = synthinv.synths.get("kosc", k=3)
    assert kosc.k == 3 and "dexed" in synthinv.synths.available()
    net, synth = synthinv.load_model("kosc4-flow-transformer", synth="kosc")
    assert synth.name == "kosc" and not net.training
    with torch.no_grad():
        assert net.sample(synth.features(synth.render(synth.random_params(2, seed=0))), steps=2).shape == (2, synth.spec.size)


def test_readme_python_example_runs():
    """The README's one-liner, exactly as written there."""
    readme = (ROOT / "README.md").read_text()
    line = re.search(r'^python -c "(import synthinv;.*)"$', readme, re.M)
    assert line, "the README shows a python -c example"
    out = subprocess.run([sys.executable, "-c", line.group(1)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) > 0
