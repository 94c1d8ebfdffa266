"""benchmarks/bench_gpu.py runs end to end at a tiny scale on CPU and reports figures it measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_gpu_measures_kosc_and_dexed_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu", "--seconds", "1",
                           "--methods", "regression_mse", "--precision", "32", "--batch-size", "8",
                           "--dexed-examples", "16", "--shard-size", "8", "--workers", "1", "--threads", "1",
                           "--json", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(out.read_text())["results"]
    assert [(r["synth"], r["precision"]) for r in rows] == [("kosc", "32"), ("dexed", "32")]
    for r in rows:
        # trained for about the asked second of in-step time, and the rate is what those steps give
        assert r["steps"] > 0 and 1.0 <= r["train_seconds"] < 30
        assert r["examples_per_s"] == pytest.approx(r["steps"] * 8 / r["train_seconds"], rel=0.1)
        assert 0 < r["wall_examples_per_s"] < r["examples_per_s"]
    assert "examples/s" in done.stdout
