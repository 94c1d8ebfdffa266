"""benchmarks/bench_train_dexed.py runs end to end on a tiny generated Dexed Simple dataset and reports figures
it measured."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_train_dexed_times_data_and_model(tmp_path):
    out = tmp_path / "train_dexed.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train_dexed.py"), "--quick",
                           "--examples", "256", "--shard-size", "64", "--methods", "regression_mse",
                           "--variants", "batch256", "channels_last", "bf16", "--steps", "2", "--threads", "1",
                           "--json", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())["results"]

    read = results["read"]  # the whole dataset, twice: from the files, then from RAM
    assert read["examples"] == 256 and read["shards"] == 4
    assert read["epoch1_examples"] == read["epoch2_examples"] == 256  # 4 whole batches of 64
    assert read["epoch1_ms_per_example"] > 0 and read["epoch2_ms_per_example"] > 0
    assert read["ram_bytes"] > read["file_bytes"] > 0  # gzip-compressed on disk

    rows = results["cases"]
    variants = ("batch256", "channels_last", "bf16")
    assert [(r["method"], r["variant"]) for r in rows] == [("regression_mse", v) for v in variants]
    for r in rows:
        assert len(r["raw"]["data_s"]) == len(r["raw"]["model_s"]) == 2
        assert r["data_ms_mean"] > 0 and r["model_ms_mean"] > 0 and 0 < r["data_share"] < 1
        assert r["steps_per_s"] > 0 and r["examples_per_s"] == pytest.approx(r["steps_per_s"] * r["batch"], rel=1e-6)
        assert r["peak_rss_mib"] >= r["rss_built_mib"] > 0 and r["n_parameters"] > 0
        assert math.isfinite(r["loss_first"]) and math.isfinite(r["loss_last"])
    big, cl, bf16 = rows
    assert big["batch"] == 256 and big["lr"] == pytest.approx(2 * cl["lr"])  # sqrt(256 / 64) = 2
    assert cl["batch"] == bf16["batch"] == 64 and cl["conv_layers"] > 0
    assert "steps/s" in done.stdout and "ms/ex (files)" in done.stdout
