"""scripts/dexed_simple_experiment.py end to end at a tiny scale: data, two methods, the table, resuming."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dexed")

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / "dexed_simple_experiment.py"), "--budget", "0.03",
           "--methods", "regression_mse,flow_mlp", "--jobs", "1", "--n-train", "64", "--n-val", "16", "--n-test", "8",
           "--eval-examples", "4", "--eval-steps", "2", "--candidates", "2", "--bank", "16",
           "--data", str(tmp_path / "data"), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "results"), *extra]
    env = {"PYTHONPATH": str(ROOT / "src"), "SYNTHINV_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def test_tiny_experiment_writes_every_column_and_resumes(tmp_path):
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "results" / "dexed_simple.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["method", "seed", "steps", "cpu_minutes", "mss", "mss_ci95", "mss_random", "wmfcc",
                             "f0_within_50c", "best_of_8_mss", "retrieval_mss"]
    by_method = {r["method"]: r for r in rows}
    assert set(by_method) == {"regression_mse", "flow_mlp"}
    assert by_method["regression_mse"]["best_of_8_mss"] == ""  # a regressor has one answer
    for r in rows:
        assert int(r["steps"]) > 0 and float(r["cpu_minutes"]) > 0
        assert 0 < float(r["mss"]) < 60 and 0 < float(r["retrieval_mss"]) < 60 and 0 < float(r["mss_random"]) < 60
    assert float(by_method["flow_mlp"]["best_of_8_mss"]) > 0
    md = (tmp_path / "results" / "dexed_simple.md").read_text()
    assert "MSS lookup" in md and "MSS random patch" in md
    again = run(tmp_path)  # every row done: nothing trained or scored again
    assert again.returncode == 0 and "seed 0: MSS" not in again.stdout
    first_steps = int(by_method["flow_mlp"]["steps"])
    # a run stopped part-way: its last.ckpt is there, its model.ckpt and row are not; a larger budget continues it
    (tmp_path / "runs" / "flow_mlp_s0" / "model.ckpt").unlink()
    (tmp_path / "results" / "dexed_simple" / "flow_mlp_s0.json").unlink()
    resumed = run(tmp_path, "--budget", "0.06")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with open(tmp_path / "results" / "dexed_simple.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["method"] == "flow_mlp")
    assert int(row["steps"]) > first_steps
