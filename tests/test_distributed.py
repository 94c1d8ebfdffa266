"""Scale-out: DDP on 2 CPU processes (gloo) draws different data per rank and leaves a loadable checkpoint;
a run resumes from its last.ckpt (safely: a crafted file is refused, not run); a dataset's shards are dealt
evenly to the ranks; impossible launches are refused in one line."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from synthinv import synths
from synthinv.checkpoint import CheckpointError, load_checkpoint
from synthinv.cli import app
from synthinv.config import load_config
from synthinv.data.generate import generate
from synthinv.data.shards import ShardDataset
from synthinv.errors import UsageError
from synthinv.training import TRAIN_SEED_BASE, Scale, ShardBatches, check_scale, train, usable_cpus

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = ["--k", "2", "--batch-size", "16", "--threads", "1"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def fingerprint(synth, seed: int, number: int, batch: int) -> str:
    """What InversionModule records for k-osc batch `number` (its first example's parameters)."""
    first = synth.params_at(TRAIN_SEED_BASE + seed, [number * batch])[0]
    return hashlib.sha256(first.float().numpy().tobytes()).hexdigest()[:12]


def small_config(name: str = "regression_mse"):
    config = load_config(name)
    config.train.batch_size = 16
    config.sample.val_examples, config.sample.val_steps = 8, 2
    return config


# --- DDP --------------------------------------------------------------------------------------------


def test_ddp_on_two_cpu_processes_splits_the_data_and_resumes(tmp_path):
    """A single-process run of 4 steps, then `--resume` under DDP (2 gloo processes, Lightning's own
    launcher) to step 6: each rank draws batch step * 2 + rank, and the checkpoints load."""
    run = tmp_path / "run"
    first = invoke("train", "flow_mlp", "--out", run, "--steps", 4, "--resume", *TINY)
    assert first.exit_code == 0, first.output
    assert (run / "last.ckpt").is_file()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_JOB_NAME"):
        env.pop(var, None)
    done = subprocess.run([sys.executable, "-m", "synthinv.cli", "train", "flow_mlp", "--out", str(run), "--steps", "6",
                           "--resume", "--devices", "2", "--strategy", "ddp", *TINY],
                          env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("trained flow_mlp") == 1  # rank 1 says nothing
    meta = json.loads((run / "train.json").read_text())
    assert meta["world_size"] == 2 and meta["steps"] == 6 and meta["resumed_from"]
    synth = synths.from_settings({"name": "kosc", "k": 2})
    by_rank = {r["rank"]: r["first_batches"] for r in meta["ranks"]}
    assert sorted(by_rank) == [0, 1]
    for rank, seen in by_rank.items():  # steps 4 and 5, two ranks: batches 8, 10 (rank 0) and 9, 11 (rank 1)
        assert seen == [fingerprint(synth, 0, step * 2 + rank, 16) for step in (4, 5)]
    assert not set(by_rank[0]) & set(by_rank[1])
    assert [h["step"] for h in meta["history"]][:4] == [1, 2, 3, 4]  # the first run's validations are kept
    model, _, blob = load_checkpoint(run / "model.ckpt", expect_synth={"name": "kosc", "k": 2})
    assert blob["meta"]["world_size"] == 2
    state = torch.load(run / "last.ckpt", weights_only=True)
    assert state["global_step"] == 6 and state["optimizer_states"][0]["state"][0]["step"] == 6
    assert not list(tmp_path.glob(".*"))  # no partial folder of either rank


@pytest.mark.slow
def test_ddp_on_a_dexed_dataset_with_a_time_budget(tmp_path):
    """Two gloo ranks, each with a DataLoader worker, train Dexed from shards for a wall-clock budget: they
    stop together (rank 0's clock is broadcast; apart, they would hang) and draw disjoint stored examples."""
    data = tmp_path / "data"
    generate({"name": "dexed"}, 64, data, seed=0, shard_size=8, workers=1, progress=False)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "synthinv.cli", "train", "regression_mse", "--synth", "dexed",
                           "--data", str(data), "--out", str(run), "--budget", "0.05", "--devices", "2",
                           "--batch-size", "8", "--num-workers", "1", "--threads", "1"],
                          env=env, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stdout + done.stderr
    meta = json.loads((run / "train.json").read_text())
    assert meta["world_size"] == 2 and meta["steps"] > 0 and meta["train_seconds"] >= 3.0
    stored = ShardDataset(data)
    every = {hashlib.sha256(stored[i][0].numpy().tobytes()).hexdigest()[:12] for i in range(len(stored))}
    seen = [set(r["first_batches"][:4]) for r in meta["ranks"]]  # epoch 1: 64 examples = 2 ranks x 4 batches of 8
    assert len(seen) == 2 and all(s and s <= every for s in seen) and not seen[0] & seen[1]
    load_checkpoint(run / "model.ckpt")


# --- resume -------------------------------------------------------------------------------------------


class Stop(Exception):
    pass


def test_resume_continues_an_interrupted_run_where_it_stopped(tmp_path, monkeypatch):
    """A run killed at step 5 of 8 (last.ckpt saved every step) continues at step 5: same data, the
    optimiser's step count and the elapsed budget carried over."""
    from synthinv.training import InversionModule

    torch.set_num_threads(1)
    synth = synths.from_settings({"name": "kosc", "k": 2})
    config = small_config()
    whole = train(copy.deepcopy(config), synth, tmp_path / "whole", max_steps=8, progress_bar=False)
    steps_seen = []
    original = InversionModule.training_step

    def failing(self, batch, idx):
        if self.trainer.global_step == 5:
            raise Stop("killed")
        steps_seen.append(self.trainer.global_step)
        return original(self, batch, idx)

    monkeypatch.setattr(InversionModule, "training_step", failing)
    out = tmp_path / "broken"
    with pytest.raises(Stop):
        train(copy.deepcopy(config), synth, out, max_steps=8, progress_bar=False, save_every_minutes=1e-9)
    monkeypatch.setattr(InversionModule, "training_step", original)
    stored = torch.load(out / "last.ckpt", weights_only=True)
    assert stored["global_step"] == 5 and steps_seen == [0, 1, 2, 3, 4]
    seconds_before = stored["callbacks"]["BudgetAndValidation"]["train_seconds"]
    meta = train(copy.deepcopy(config), synth, out, max_steps=8, progress_bar=False, resume=out / "last.ckpt")
    assert meta["steps"] == 8 and meta["train_seconds"] >= round(seconds_before, 1)
    assert meta["ranks"][0]["first_batches"] == whole["ranks"][0]["first_batches"][5:8]
    assert torch.load(out / "last.ckpt", weights_only=True)["optimizer_states"][0]["state"][0]["step"] == 8
    load_checkpoint(out / "model.ckpt")


def test_resume_of_a_finished_budget_is_refused(tmp_path):
    run = tmp_path / "run"
    assert invoke("train", "regression_mse", "--out", run, "--steps", 2, "--resume", *TINY).exit_code == 0
    again = invoke("train", "regression_mse", "--out", run, "--steps", 2, "--resume", *TINY)
    assert again.exit_code == 2 and "larger budget" in again.output
    assert len(again.output.strip().splitlines()) == 1


@pytest.mark.parametrize("change, message", [
    (["regression_sort"], "another method"),
    (["regression_mse", "--k", "3"], "another synth"),
    (["regression_mse", "--seed", "1"], "another seed"),
    (["regression_mse", "--lr", "0.1"], "another config"),
])
def test_resume_with_other_settings_is_refused(tmp_path, change, message):
    run = tmp_path / "run"
    assert invoke("train", "regression_mse", "--out", run, "--steps", 1, "--resume", *TINY).exit_code == 0
    before = (run / "last.ckpt").read_bytes()
    result = invoke("train", *change[:1], "--out", run, "--steps", 4, "--resume", *TINY, *change[1:])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert (run / "last.ckpt").read_bytes() == before


class Payload:
    """Unpickling this calls os.system, which writes a file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_resume_file_is_refused_without_running_it(tmp_path):
    run = tmp_path / "run"
    assert invoke("train", "regression_mse", "--out", run, "--steps", 1, "--resume", *TINY).exit_code == 0
    marker = tmp_path / "pwned"
    state = torch.load(run / "last.ckpt", weights_only=True)
    state["synthinv"]["note"] = Payload(marker)
    torch.save(state, run / "last.ckpt")
    torch.load(run / "last.ckpt", weights_only=False)  # the payload is real: an unsafe load runs it
    assert marker.exists()
    marker.unlink()
    result = invoke("train", "regression_mse", "--out", run, "--steps", 3, "--resume", *TINY)
    assert result.exit_code == 2 and "not a safe resumable checkpoint" in result.output
    assert not marker.exists()


def test_resume_into_a_folder_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke("train", "regression_mse", "--out", tmp_path, "--steps", 1, "--resume", *TINY)
    assert result.exit_code == 2 and "no last.ckpt" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --- a dataset's shards over ranks --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """40 k-osc examples in 10 shards of 4 (the last ones full too)."""
    out = tmp_path_factory.mktemp("kosc_data")
    generate({"name": "kosc", "k": 2}, 40, out, seed=0, shard_size=4, workers=1, progress=False)
    return ShardDataset(out)


def rows(batches) -> list[bytes]:
    return [row.numpy().tobytes() for params, _ in batches for row in params]


@pytest.mark.parametrize("world, batch", [(2, 3), (3, 5)])
def test_shards_are_dealt_to_ranks_evenly_and_disjointly(shards, world, batch):
    for epoch in range(2):
        parts = []
        for rank in range(world):
            batches = ShardBatches(shards, batch, seed=7)
            batches.place(rank, world, epoch)
            parts.append(list(batches))
        assert len({len(p) for p in parts}) == 1 and len(parts[0]) > 0  # the same number of steps on every rank
        seen = [set(rows(p)) for p in parts]
        assert sum(len(s) for s in seen) == len(set().union(*seen)) == sum(len(p) * batch for p in parts)
        assert set().union(*seen) <= set(rows([(shards[i][0][None], None) for i in range(len(shards))]))


def test_one_rank_sees_what_it_saw_before(shards):
    """place(0, 1) is the single-process order, batch for batch."""
    plain, placed = ShardBatches(shards, 3, seed=7), ShardBatches(shards, 3, seed=7)
    placed.place(0, 1, 0)
    assert rows(plain) == rows(placed)


# --- refusals -----------------------------------------------------------------------------------------


@pytest.fixture
def no_launcher(monkeypatch):
    """An environment no launcher (SLURM, torchrun, Lightning's NODE_RANK/MASTER_ADDR) has touched."""
    for var in list(os.environ):
        if var.startswith(("SLURM_", "TORCHELASTIC_")) or var in ("NODE_RANK", "MASTER_ADDR", "GROUP_RANK"):
            monkeypatch.delenv(var)


def test_more_cpu_processes_than_cores_are_refused(no_launcher):
    result = invoke("train", "flow_mlp", "--out", "/nonexistent/run", "--steps", 1, "--devices", usable_cpus() + 1)
    assert result.exit_code == 2 and "usable cores" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_devices_without_gpus_are_refused(no_launcher):
    result = invoke("train", "flow_mlp", "--out", "/nonexistent/run", "--steps", 1, "--accelerator", "gpu")
    assert result.exit_code == 2 and "torch sees 0" in result.output


def test_nodes_without_a_launcher_are_refused(no_launcher, monkeypatch):
    result = invoke("train", "flow_mlp", "--out", "/nonexistent/run", "--steps", 1, "--num-nodes", 2)
    assert result.exit_code == 2 and "launcher" in result.output
    assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    check_scale(Scale(num_nodes=2))  # under SLURM it is accepted


@pytest.mark.parametrize("option, value", [("--precision", "16"), ("--strategy", "fsdp"), ("--accelerator", "tpu")])
def test_unknown_scale_values_are_refused(option, value):
    result = invoke("train", "flow_mlp", "--out", "/nonexistent/run", "--steps", 1, option, value)
    assert result.exit_code == 2 and value in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cpu_bf16_is_accepted():
    assert check_scale(Scale(precision="bf16-mixed")).precision == "bf16-mixed"
    with pytest.raises(UsageError):
        check_scale(Scale(devices=0))


def test_not_a_resume_state_is_refused(tmp_path):
    from synthinv.training import read_resume

    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a resumable"):
        read_resume(path, {})


# --- generation as a job array ------------------------------------------------------------------------


def test_generate_in_parts_gives_the_same_dataset_as_one_run(tmp_path):
    """Three array tasks (--part I/3) writing into one folder make the dataset one run makes; `data check`
    then finds it complete. An empty part (more parts than shards) does nothing."""
    common = ["generate", "--synth", "kosc", "--k", "2", "--n", 40, "--shard-size", 4, "--no-progress"]
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    assert invoke(*common, "--out", whole).exit_code == 0
    assert invoke("data", "check", parted).exit_code == 2  # nothing there yet
    for i in range(3):
        result = invoke(*common, "--out", parted, "--part", f"{i}/3")
        assert result.exit_code == 0, result.output
        check = invoke("data", "check", parted)
        assert (check.exit_code == 0) == (i == 2), check.output  # complete only once every part is written
    first, second = (json.loads((d / "manifest.json").read_text())["shards"] for d in (whole, parted))
    assert [s["sha256"] for s in first] == [s["sha256"] for s in second] and all(s["sha256"] for s in first)
    empty = invoke(*common, "--out", tmp_path / "none", "--part", "0/20")  # shards 0..0 of 10: none
    assert empty.exit_code == 0 and "nothing to do" in empty.output and not (tmp_path / "none").exists()


@pytest.mark.parametrize("part", ["3/3", "a/3", "1", "-1/2"])
def test_a_bad_part_is_refused(tmp_path, part):
    result = invoke("generate", "--synth", "kosc", "--n", 8, "--out", tmp_path / "d", "--part", part)
    assert result.exit_code == 2 and "--part" in result.output and len(result.output.strip().splitlines()) == 1


def test_under_slurm_each_task_is_one_of_the_devices(no_launcher, monkeypatch):
    """srun gives each task its own cores: 4 CPU processes on 2 visible cores are SLURM's to place."""
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    assert check_scale(Scale(devices=usable_cpus() + 2)).devices == usable_cpus() + 2


def test_an_incomplete_resume_state_is_refused(tmp_path):
    run = tmp_path / "run"
    assert invoke("train", "regression_mse", "--out", run, "--steps", 1, "--resume", *TINY).exit_code == 0
    state = torch.load(run / "last.ckpt", weights_only=True)
    del state["callbacks"]
    torch.save(state, run / "last.ckpt")
    result = invoke("train", "regression_mse", "--out", run, "--steps", 3, "--resume", *TINY)
    assert result.exit_code == 2 and "incomplete" in result.output
