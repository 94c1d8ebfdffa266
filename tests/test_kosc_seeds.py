"""scripts/kosc_seeds.py over two tiny seeds of `synthinv experiment kosc`: per-seed rows, Param2Tok's
grouping read from each checkpoint, and the across-seeds table."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_two_seeds_give_rows_groupings_and_an_across_seeds_line(tmp_path):
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    for seed in (0, 1):
        cmd = [sys.executable, "-c", "from synthinv.cli import app; app()", "experiment", "kosc", "--budget", "0.01", "--methods", "flow_param2tok",
               "--seed", str(seed), "--out", str(tmp_path / "res" / f"s{seed}"), "--runs", str(tmp_path / "runs" / f"s{seed}"),
               "--threads", "1", "--eval-examples", "8", "--eval-steps", "2", "--no-progress"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "kosc_seeds.py"), "--root", str(tmp_path / "res"),
                           "--runs", str(tmp_path / "runs")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "res.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["seed"]) for r in rows] == [("flow_param2tok", "0"), ("flow_param2tok", "1")]
    for r in rows:
        assert float(r["grouping_chance"]) == 0.25  # k = 4 oscillators, a uniform A
        assert 0.25 <= float(r["grouping"]) <= 1.0
        assert abs(float(r["lsd_below_random"]) - (float(r["lsd_random"]) - float(r["lsd"]))) < 1e-9
    table = (tmp_path / "res.md").read_text()
    assert "| flow_param2tok | 0,1 |" in table
