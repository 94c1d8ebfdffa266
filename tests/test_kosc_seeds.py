"""scripts/kosc_seeds.py over two tiny seeds of `synthinv experiment kosc`: per-seed rows, Param2Tok's
grouping read from each checkpoint, and the across-seeds table."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from conftest import load_script

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
    # the same runs' grouping over training (every validation logs it), drawn by scripts/grouping_curves.py
    runs = sorted(p.parent for p in (tmp_path / "runs").rglob("model.ckpt"))
    assert len(runs) == 2
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "grouping_curves.py"), *map(str, runs),
                           "--out", str(tmp_path / "curves.png")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("flow_param2tok:")]
    assert len(lines) == 2 and all(line.endswith("(chance 0.250)") for line in lines)
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_variant_table_groups_a_configs_seeds(tmp_path):
    import json

    row = {"budget_minutes": 8, "examples_per_second": 1000.0, "lsd_ci95": 0.07, "lsd_random": 10.0}
    for name, seed, lsd, steps in (("lean", 0, 9.0, 100), ("lean", 1, 9.2, 120), ("lean", 2, 9.1, 110), ("big", 0, 9.5, 50)):
        (tmp_path / f"{name}_s{seed}.json").write_text(json.dumps({**row, "method": f"{name}_s{seed}", "lsd": lsd,
                                                                   "steps": steps}))
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "kosc_variant.py"), "--table", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    table = (tmp_path.with_suffix(".md")).read_text()
    assert "| lean | 3 | 110 ± 25 | 9.100 ± 0.248 | 0.90 ± 0.25 |" in table  # t(2) 4.303 x 0.1 / sqrt(3)
    assert "| big |" not in table  # one seed: no interval
    assert "| " + str(tmp_path / "big_s0.json") + " | 0 |" in table


def test_a_grouping_already_in_the_table_is_kept_when_its_checkpoint_is_gone(tmp_path):
    import json

    kosc_seeds = load_script("kosc_seeds")
    root = tmp_path / "res"
    (root / "s0" / "kosc_k4").mkdir(parents=True)
    row = {"method": "flow_param2tok", "task": "sym", "steps": 10, "budget_minutes": 8, "lsd": 9.5, "lsd_ci95": 0.1,
           "lsd_random": 10.4}
    (root / "s0" / "kosc_k4" / "flow_param2tok.json").write_text(json.dumps(row))
    assert kosc_seeds.collect(root, tmp_path / "runs", 4)[0]["grouping"] is None  # no checkpoint, no table yet
    root.with_suffix(".csv").write_text("method,seed,grouping,grouping_chance\nflow_param2tok,0,0.58,0.25\n")
    (kept,) = kosc_seeds.collect(root, tmp_path / "runs", 4)
    assert (kept["grouping"], kept["grouping_chance"]) == (0.58, 0.25)
