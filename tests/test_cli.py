"""The `synthinv` command end to end on tiny budgets, and its one-line errors on bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
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


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "no_such_method", "--out", "{tmp}/x", "--steps", "1"], "unknown method"),
        (["train", "flow_mlp", "--out", "{tmp}/x", "--budget", "0"], "positive"),
        (["train", "flow_mlp", "--out", "{tmp}/x"], "--budget"),
        (["train", "flow_mlp", "--out", "{tmp}/x", "--steps", "1", "--k", "0"], "--k"),
        (["evaluate", "{tmp}/missing.ckpt"], "not found"),
        (["evaluate", "{tmp}/junk.ckpt"], "not a"),
        (["experiment", "kosc", "--budget", "0", "--out", "{tmp}/r"], "positive"),
        (["experiment", "kosc", "--budget", "1", "--methods", "nope", "--out", "{tmp}/r"], "unknown method"),
        (["experiment", "kosc", "--out", "{tmp}/r"], "--budget"),
        (["train", "{tmp}/empty.yaml", "--out", "{tmp}/x", "--steps", "1"], "not a method config"),
        (["train", "{tmp}/broken.yaml", "--out", "{tmp}/x", "--steps", "1"], "not valid YAML"),
        (["train", "{tmp}/nofield.yaml", "--out", "{tmp}/x", "--steps", "1"], "model.field"),
        (["train", "flow_mlp", "--out", "{tmp}/junk.ckpt", "--steps", "1"], "not a directory"),
        (["invert", "examples/kosc4_heldout_0.wav", "--truth", "{tmp}/list.json", "--out", "{tmp}/inv"],
         "not a synthinv JSON preset"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, args, message, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # example paths are relative to the repository
    (tmp_path / "junk.ckpt").write_bytes(b"\x00not a checkpoint" * 10)
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "broken.yaml").write_text("model: {kind: flow\n  : [")
    (tmp_path / "nofield.yaml").write_text("model: {kind: flow}\ntrain: {}\nsample: {}\n")
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    result = invoke(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


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
