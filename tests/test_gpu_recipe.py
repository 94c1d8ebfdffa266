"""scripts/gpu_recipe.py at a tiny scale on CPU: data, training with the scaled batch, the scored result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dexed")

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_gpu_recipe_on_cpu(tmp_path):
    cmd = [sys.executable, str(ROOT / "scripts" / "gpu_recipe.py"), "--device", "cpu", "--n-train", "96",
           "--n-val", "8", "--n-test", "4", "--workers", "1", "--budget", "0.03", "--batch-size", "32",
           "--loader-workers", "0", "--shard-size", "32", "--eval-examples", "4", "--bank", "16",
           "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    env = {"PYTHONPATH": str(ROOT / "src"), "SYNTHINV_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["batch_size"] == 32 and result["lr"] == pytest.approx(1e-3 * (32 / 64) ** 0.5)
    assert result["train_examples"] == 96 and result["steps"] > 0
    assert 0 < result["mss"] < 60 and 0 < result["retrieval_mss"] < 60 and result["best_of_8_mss"] > 0
    assert len(list((tmp_path / "data" / "dexed_simple_train").glob("shard_*"))) == 3  # 96 examples in shards of 32
