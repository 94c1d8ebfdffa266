"""The `synthinv` command end to end on tiny budgets (its one-line errors on bad input: test_bad_input.py)."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from synthinv.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_subcommands():
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("train", "evaluate", "experiment"):
        assert name in result.output


def test_train_then_evaluate(tmp_path):
    run = tmp_path / "run"
    result = invoke("train", "flow_mlp", "--out", run, "--steps", 6, "--batch-size", 32, "--k", 2)
    assert result.exit_code == 0, result.output
    assert (run / "model.ckpt").is_file()
    assert json.loads((run / "train.json").read_text())["steps"] == 6

    result = invoke("evaluate", run / "model.ckpt", "--n", 16, "--steps", 3)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 16 and metrics["lsd"] > 0 and metrics["lsd_random"] > 0

    # an existing metrics file or run directory is not overwritten without --force
    before = (run / "metrics.json").read_text()
    result = invoke("evaluate", run / "model.ckpt", "--n", 8, "--steps", 2)
    assert result.exit_code == 2 and "--force" in result.output
    assert (run / "metrics.json").read_text() == before
    ckpt_bytes = (run / "model.ckpt").read_bytes()
    result = invoke("train", "flow_mlp", "--out", run, "--steps", 2)
    assert result.exit_code == 2 and "already exists" in result.output
    assert (run / "model.ckpt").read_bytes() == ckpt_bytes


def test_experiment_runs_and_resumes(tmp_path):
    out, runs = tmp_path / "results", tmp_path / "runs"
    common = ["experiment", "kosc", "--k", 2, "--budget", 0.02, "--eval-examples", 16, "--eval-steps", 2,
              "--out", out, "--runs", runs, "--no-progress"]
    result = invoke(*common, "--methods", "regression_mse,flow_param2tok")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "kosc_k2.csv")))
    assert [r["method"] for r in rows] == ["regression_mse", "flow_param2tok"]
    assert all(float(r["lsd"]) > 0 for r in rows)
    for name in ("kosc_k2.md", "kosc_k2_lsd.png", "kosc_k2_param2tok.png"):
        assert (out / name).is_file()
    grouping = json.loads((out / "kosc_k2" / "flow_param2tok.json").read_text())["grouping"]  # Param2Tok rows only
    assert 0.5 <= grouping["score"] <= 1 and grouping["chance"] == 0.5 and grouping["groups"] == 2
    assert "grouping" not in json.loads((out / "kosc_k2" / "regression_mse.json").read_text())

    # a second call skips what is done and only runs the new method
    stamp = (out / "kosc_k2" / "regression_mse.json").stat().st_mtime_ns
    result = invoke(*common, "--methods", "regression_mse,regression_sort")
    assert result.exit_code == 0, result.output
    assert "already done" in result.output
    assert (out / "kosc_k2" / "regression_mse.json").stat().st_mtime_ns == stamp
    assert len(list(csv.DictReader(open(out / "kosc_k2.csv")))) == 3

    # --eval-only re-scores finished runs with new settings and trains nothing
    steps_before = json.loads((out / "kosc_k2" / "regression_sort.json").read_text())["steps"]
    result = invoke(*common[:-7], "--eval-examples", 8, "--eval-steps", 2, "--out", out, "--runs", runs,
                    "--no-progress", "--eval-only")
    assert result.exit_code == 0, result.output
    row = json.loads((out / "kosc_k2" / "regression_sort.json").read_text())
    assert row["n"] == 8 and row["steps"] == steps_before and "lsd_ci95" in row
