"""Training with Lightning under a wall-clock and/or step budget: k-osc batches generated on the fly,
Dexed batches read from a generated dataset.

Why k-osc batches are made inside the training step: rendering k-osc audio for a whole batch is one
vectorised call, cheaper than any worker pipeline (benchmarks/bench_render.py measures it). Example i of the training
split is a pure function of (train seed, i), so a run is reproducible from its seed.

Dexed renders a note slower than a training step can afford (benchmarks/bench_render.py), so it trains from a dataset
(`synthinv generate`): shuffled (params, log-mel) batches from its shards; the time spent loading them
counts towards the budget. Its validation re-renders the sampled parameters and scores them by the
multi-scale mel distance (MSS) against the true audio; k-osc validates by LSD.

Why the learning rate follows *progress* (max of step and time fractions) instead of steps: a user gives
minutes, not steps; warm-up and cosine decay then fit whatever budget the machine affords.

Scale-out (`Scale`: accelerator, devices, nodes, strategy, precision) is Lightning's: with DDP every rank
trains on its own data - k-osc rank r of W draws batch step * W + r of the unlimited split, a dataset's
shards are dealt to the ranks (`ShardBatches`) - and `config.train.batch_size` is the batch *per rank*.
Rank 0 alone validates and writes checkpoints; its training clock is broadcast every step, so all ranks
follow the same learning rate and stop at the same step (per-rank clocks would stop them apart: a deadlock).
`last.ckpt` (Lightning's own checkpoint: weights, optimiser, step, elapsed budget, best weights so far) is
written beside model.ckpt every `save_every_minutes` and at the end; `resume=` continues from it.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from synthinv.build import build_model
from synthinv.checkpoint import CheckpointError, save_checkpoint
from synthinv.config import Config
from synthinv.data.shards import ShardDataset, finite_problem, shard_error
from synthinv.datasets import DatasetError, check_disjoint, first_examples, open_dataset
from synthinv.errors import UsageError
from synthinv.evaluation import (
    RANDOM_BASELINE_SEED,
    VAL_SEED,
    drawn_examples,
    lsd_of,
    mss_of,
    sample_params,
    split_batch,
)
from synthinv.models.grouping import model_grouping
from synthinv.models.sampler import Sampler
from synthinv.models.tokenisers import param2tok_assignment
from synthinv.synths.base import Synth

TRAIN_SEED_BASE = 1_000_000

# Lightning's start-up banners (GPU/TPU availability, tips) say nothing useful for a CPU run.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
log = logging.getLogger(__name__)  # one INFO line per validation: progress for runs without a progress bar
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
# resuming in place: the checkpoint folder holds the run's own last.ckpt
warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
# the batches are an endless stream (k-osc) or a re-shuffled dataset: restarting an epoch on resume is intended
warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")

LAST = "last.ckpt"  # the resumable state beside model.ckpt
RESUME_FORMAT = "synthinv-resume-1"


class StepCounter(IterableDataset):
    """Yields 0, 1, 2, ... forever: the step index is all a training step needs to make its batch."""

    def __iter__(self):
        step = 0
        while True:
            yield step
            step += 1


def lr_at(progress: float, base: float, warmup: float, min_ratio: float) -> float:
    """Linear warm-up over the first `warmup` fraction, then cosine decay to base * min_ratio."""
    if progress < warmup:
        return base * max(progress / warmup, 1e-3)
    frac = min((progress - warmup) / max(1 - warmup, 1e-9), 1.0)
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


@dataclass
class Scale:
    """Where training runs, in Lightning's terms: accelerator cpu|gpu|auto, devices per node, nodes,
    strategy auto|ddp, precision 32|bf16-mixed. The default is the single-CPU run."""

    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32"
    gpu_index: int | None = None  # cuda:N asked for by name (one device)

    @classmethod
    def from_device(cls, device: str) -> Scale:
        """The one-device Scale of a --device string (cpu, cuda, cuda:N)."""
        if device.startswith("cuda"):
            return cls("gpu", gpu_index=int(device[5:]) if ":" in device else None)
        return cls()


def launcher_found() -> bool:
    """True where a launcher starts one process per device on every node: SLURM (srun), torchrun, or
    Lightning's own variables (NODE_RANK + MASTER_ADDR set by the user on each node)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    manual = "NODE_RANK" in os.environ and "MASTER_ADDR" in os.environ
    return SLURMEnvironment.detect() or TorchElasticEnvironment.detect() or manual


def launched_rank() -> int:
    """This process's global rank as its launcher set it in the environment (torchrun RANK, srun
    SLURM_PROCID, Lightning's children LOCAL_RANK/NODE_RANK); 0 for a process no launcher started. Known
    before Lightning starts, so a command can leave its output to rank 0."""
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return max(int(os.environ.get(var, "0") or 0) for var in ("LOCAL_RANK", "NODE_RANK"))


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def check_scale(scale: Scale) -> Scale:
    """Refuse what this machine or launch cannot do (one line each), before the model is built; -> the
    Scale with accelerator 'auto' resolved."""
    if scale.accelerator not in ("cpu", "gpu", "auto"):
        raise UsageError(f"accelerator must be cpu, gpu or auto, got {scale.accelerator!r}")
    if scale.strategy not in ("auto", "ddp"):
        raise UsageError(f"strategy must be auto or ddp, got {scale.strategy!r}")
    if scale.precision not in ("32", "bf16-mixed"):
        raise UsageError(f"precision must be 32 or bf16-mixed, got {scale.precision!r}")
    if scale.devices < 1 or scale.num_nodes < 1:
        raise UsageError(f"devices and nodes must be at least 1, got {scale.devices} devices, {scale.num_nodes} nodes")
    gpus = torch.cuda.device_count()
    accelerator = ("gpu" if gpus else "cpu") if scale.accelerator == "auto" else scale.accelerator
    # under a launcher this process is one of `devices` and may see only its own share of the node
    here = 1 if launcher_found() else scale.devices
    if accelerator == "gpu" and here > gpus:
        raise UsageError(f"{scale.devices} GPU device(s) asked for, torch sees {gpus} here")
    if accelerator == "cpu" and here > usable_cpus():
        raise UsageError(f"{scale.devices} CPU processes asked for, this machine has {usable_cpus()} usable cores")
    if scale.num_nodes > 1 and not launcher_found():
        raise UsageError(f"{scale.num_nodes} nodes need a launcher that starts the processes on every node (srun "
                         "under SLURM, or torchrun); none found in this environment")
    if scale.precision == "bf16-mixed" and accelerator == "gpu" and not torch.cuda.is_bf16_supported():
        raise UsageError("bf16-mixed precision is not supported by this GPU; use precision 32")
    return Scale(accelerator, scale.devices, scale.num_nodes, scale.strategy, scale.precision, scale.gpu_index)


class InversionModule(L.LightningModule):
    """Wraps a FlowModel or RegressionModel. k-osc: the batch is generated from the global step (restored
    on resume) and this rank's place; with `from_data` the batch is (params (B, P), encoder input
    (B, n_mels, frames)) from `loader`, the DataLoader Lightning asks for through `train_dataloader`."""

    FINGERPRINTS = 8  # batches per rank whose fingerprint is kept (meta "ranks"): which data each rank saw

    def __init__(self, model, synth: Synth, config: Config, seed: int, from_data: bool = False,
                 loader: DataLoader | None = None, identity: dict | None = None):
        super().__init__()
        self.model, self.synth, self.config = model, synth, config
        self.batch_size = config.train.batch_size
        self.seed = seed
        self.train_seed = TRAIN_SEED_BASE + seed
        self.l1_weight = config.model.l1_weight
        self.from_data = from_data
        self.loader = loader if loader is not None else DataLoader(StepCounter(), batch_size=None)
        self.identity = identity or {}  # what a resume must match (stored in last.ckpt)
        self.seen: list[str] = []  # fingerprints of this rank's first batches

    def setup(self, stage: str) -> None:
        # every rank seeded the same (seed_everything): the noise, times and dropout of the flow loss would
        # repeat across ranks; ranks > 0 draw their own (rank 0 keeps the single-process stream)
        if self.global_rank > 0:
            torch.manual_seed(int.from_bytes(hashlib.sha256(f"{self.seed}/{self.global_rank}".encode()).digest()[:7], "big"))

    def train_dataloader(self) -> DataLoader:
        # called once the processes are up: a dataset's batches are split by this rank's place
        if isinstance(self.loader.dataset, ShardBatches):
            self.loader.dataset.place(self.global_rank, self.trainer.world_size, self.trainer.current_epoch)
        return self.loader

    def make_batch(self, step: int):
        """Batch number step * world + rank of the unlimited train split: ranks never draw the same examples."""
        number = step * self.trainer.world_size + self.global_rank
        idx = np.arange(number * self.batch_size, (number + 1) * self.batch_size)
        params = self.synth.params_at(self.train_seed, idx).to(self.device)  # (B, P)
        with torch.autocast(self.device.type, enabled=False):  # audio is rendered in float32 under bf16 too
            return params, self.synth.render(params)  # (B, T)

    def training_step(self, batch, _batch_idx):
        params, cond = batch if self.from_data else self.make_batch(self.trainer.global_step)
        if len(self.seen) < self.FINGERPRINTS:  # a few batches only: .cpu() waits for the device
            self.seen.append(hashlib.sha256(params[0].float().cpu().numpy().tobytes()).hexdigest()[:12])
        loss = self.model.loss(params, cond)
        total = loss + self.l1_weight * self.model.penalty() if self.l1_weight else loss
        self.log("loss", loss, prog_bar=True, on_step=True)
        return total

    def configure_optimizers(self):
        t = self.config.train
        assign = param2tok_assignment(self.model)
        if assign is None or t.assign_lr_scale == 1.0:  # one group, as every run before the setting existed
            return torch.optim.AdamW(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        rest = [p for p in self.model.parameters() if p is not assign]
        groups = [{"params": rest, "lr_scale": 1.0}, {"params": [assign], "lr_scale": t.assign_lr_scale}]
        return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["synthinv"] = {"format": RESUME_FORMAT, **self.identity}


class KOscValidation:
    """Validation LSD on the first `n` examples of the k-osc validation split (generated once)."""

    metric = "lsd"

    def __init__(self, n: int):
        self.n = n
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None

    def score(self, model: Sampler, synth: Synth, device, steps: int, guidance: float,
              temperature: float = 1.0) -> float:
        if self._data is None:
            self._data = split_batch(synth, VAL_SEED, self.n, device)
        params, audio = self._data
        pred = sample_params(model, audio, steps, guidance, seed=0, temperature=temperature)
        return lsd_of(synth, pred, audio).mean().item()

    def random_score(self, synth: Synth, device) -> float:
        """The score of random parameters (evaluation's random baseline) on the same sounds."""
        if self._data is None:
            self._data = split_batch(synth, VAL_SEED, self.n, device)
        audio = self._data[1]
        return lsd_of(synth, synth.params_at(RANDOM_BASELINE_SEED, np.arange(self.n)).to(audio.device), audio).mean().item()


class RenderedValidation:
    """Validation MSS (dB) for dataset-backed synths: sample parameters from the log-mel of `n` fixed
    examples, render them, compare with the true audio (re-rendered once from the true parameters).

    The examples are the first n of `val_dir`, or, without one, examples 0..n-1 drawn from VAL_SEED
    (`synth.draw`, features stored as float16 like a shard's)."""

    metric = "mss"

    def __init__(self, n: int, val_dir: Path | None = None):
        self.n, self.val_dir = n, val_dir
        self._data: tuple | None = None

    def load(self, synth: Synth):
        if self.val_dir is not None:
            return first_examples(self.val_dir, synth, self.n, role="validation")[:3]
        return drawn_examples(synth, VAL_SEED, self.n)

    def score(self, model: Sampler, synth: Synth, device, steps: int, guidance: float,
              temperature: float = 1.0) -> float:
        if self._data is None:
            self._data = self.load(synth)
        _, feats, audio = self._data
        pred = sample_params(model, feats.to(device), steps, guidance, seed=0, temperature=temperature).cpu()
        return mss_of(synth, pred, audio).mean().item()

    def random_score(self, synth: Synth, device) -> float:
        """The score of random prior patches (evaluation's random baseline) on the same sounds."""
        if self._data is None:
            self._data = self.load(synth)
        audio = self._data[2]
        random_params = drawn_examples(synth, RANDOM_BASELINE_SEED, len(audio))[0]  # Dexed: silent draws redrawn
        return mss_of(synth, random_params, audio).mean().item()


class BudgetAndValidation(L.Callback):
    """Sets the LR from progress, stops at the budget, validates (LSD for k-osc, MSS for dataset-backed
    synths) and keeps the best weights. With train.ema_decay it keeps an exponential moving average of the
    weights (torch's AveragedModel), and validates and keeps that average instead of the weights themselves.

    Validation time is excluded from the training clock so budgets compare training work alone. With
    `count_loading` the time between batches (loading from a dataset) counts as training time too. The clock
    is wall time (`time.perf_counter`), or with `cpu_clock` this process's CPU time (`time.process_time`):
    then runs sharing a busy machine each get the same work.
    """

    def __init__(self, config: Config, budget_s: float | None, max_steps: int | None, n_validations: int = 5,
                 validation=None, count_loading: bool = False, cpu_clock: bool = False):
        self.t, self.s = config.train, config.sample
        self.budget_s, self.max_steps = budget_s, max_steps
        self.val_points = [(i + 1) / n_validations for i in range(n_validations)]
        self.train_seconds, self.best_value = 0.0, math.inf
        self.best_state: dict[str, Any] | None = None
        self.history: list[dict] = []
        self.validation = validation or KOscValidation(self.s.val_examples)
        self.random_value: float | None = None  # validation score of random parameters, set at the first validation
        self.count_loading = count_loading
        self.clock = time.process_time if cpu_clock else time.perf_counter
        self._last = None
        self._last_end = None
        self.average: torch.optim.swa_utils.AveragedModel | None = None
        self._average_state: dict | None = None  # a resumed run's average, loaded into self.average at the start

    @property
    def metric(self) -> str:
        return self.validation.metric

    def progress(self, step: int) -> float:
        fractions = []
        if self.budget_s:
            fractions.append(self.train_seconds / self.budget_s)
        if self.max_steps:
            fractions.append(step / self.max_steps)
        return max(fractions)

    def sync_clock(self, trainer) -> None:
        """Every rank takes rank 0's training clock: the same progress, learning rate, validation points and
        stop step on all of them (one rank stopping alone would leave the others waiting forever)."""
        if trainer.world_size > 1:
            self.train_seconds = float(trainer.strategy.broadcast(self.train_seconds, src=0))

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        now = self.clock()
        if self._last is not None:
            self.train_seconds += now - self._last
        elif self.count_loading and self._last_end is not None:
            self.train_seconds += now - self._last_end  # fetching this batch from the dataset
        self.sync_clock(trainer)
        self._last = now
        lr = lr_at(self.progress(trainer.global_step), self.t.lr, self.t.warmup, self.t.min_lr_ratio)
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # Param2Tok's A may have a scale of its own

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.average is not None:
            self.average.update_parameters(module.model)
        self.train_seconds += self.clock() - self._last
        self.sync_clock(trainer)
        self._last = None
        progress = self.progress(trainer.global_step)
        if self.val_points and progress >= self.val_points[0]:
            while self.val_points and progress >= self.val_points[0]:
                self.val_points.pop(0)
            if trainer.is_global_zero:  # the other ranks wait for it in their next step's gradient exchange
                self.validate(trainer, module, float(outputs["loss"]))
        if progress >= 1.0:
            trainer.should_stop = True
        self._last_end = self.clock()

    def finished(self, step: int) -> bool:
        """True where a resumed run has already spent its budget."""
        return self.progress(step) >= 1.0

    @torch.no_grad()
    def validate(self, trainer, module, loss: float):
        model = (self.average.module if self.average is not None else module.model).eval()
        value = self.validation.score(cast(Sampler, model), module.synth, module.device, self.s.val_steps, self.s.guidance,
                                         self.s.temperature)
        model.train()
        if self.random_value is None:  # once per run: random parameters scored on the same sounds
            self.random_value = self.validation.random_score(module.synth, module.device)
        step = trainer.global_step
        key = f"val_{self.metric}"
        entry = {"step": step, "train_seconds": round(self.train_seconds, 1), "loss": loss, key: value}
        grouping = model_grouping(model, module.synth)  # Param2Tok only: how A groups columns, over training
        if grouping is not None:
            entry["grouping"] = round(grouping["score"], 4)
        self.history.append(entry)
        module.log(key, value, prog_bar=True, rank_zero_only=True)
        if value < self.best_value:
            self.best_value, self.best_state = value, copy.deepcopy(model.state_dict())
        log.info("step %d (%.0f s): loss %.4f, %s %.3f, best %.3f (random parameters %.3f)%s", step, self.train_seconds,
                 loss, key, value, self.best_value, self.random_value,
                 "" if grouping is None else f", Param2Tok grouping {grouping['score']:.2f} (chance {grouping['chance']:.2f})")

    def not_learning(self) -> str | None:
        """A one-line warning when the best validation score is no better than random parameters' (a run
        that diverged or collapsed: e.g. a learning rate too high for the model), else None."""
        if self.random_value is None or self.best_value < self.random_value:
            return None
        return (f"the best validation {self.metric.upper()} ({self.best_value:.3f}) is no better than random "
                f"parameters' ({self.random_value:.3f}): the model did not learn; try a lower --lr")

    def on_train_start(self, trainer, module):
        # a resumed run validates at the planned points still ahead of it (the budget may have grown)
        self.val_points = [p for p in self.val_points if p > self.progress(trainer.global_step)]
        if self.t.ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.average = AveragedModel(module.model, multi_avg_fn=get_ema_multi_avg_fn(self.t.ema_decay),
                                         use_buffers=True)
            if self._average_state is not None:
                self.average.load_state_dict(self._average_state)

    def state_dict(self) -> dict[str, Any]:
        """The elapsed budget and the best weights so far, stored in last.ckpt (tensors and plain values:
        it loads with torch's weights-only unpickler)."""
        return {"train_seconds": self.train_seconds, "best_value": self.best_value, "best_state": self.best_state,
                "history": self.history, "average": self.average.state_dict() if self.average is not None else None,
                "random_value": self.random_value}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_seconds, self.best_value = float(state_dict["train_seconds"]), float(state_dict["best_value"])
        self.best_state, self.history = state_dict["best_state"], list(state_dict["history"])
        self._average_state = state_dict.get("average")
        self.random_value = state_dict.get("random_value")  # absent from runs saved before it was kept


class TrainProgress(L.Callback):
    """A progress bar over what ends the run: steps of max_steps, or minutes of the budget (whichever is
    further along when both are given), with the loss and the last validation score. Lightning's own bar
    counts epochs, and the training data here is an endless stream (epoch 0 of -1)."""

    def __init__(self, budget: BudgetAndValidation, label: str):
        self.budget, self.label, self.bar = budget, label, None

    def on_train_start(self, trainer, module):
        if not trainer.is_global_zero:
            return
        from rich.markup import escape
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn(escape(self.label)), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                            TextColumn("{task.fields[where]}"), TimeElapsedColumn(), transient=False)
        self.bar.start()
        self.task = self.bar.add_task("", total=1.0, where="")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.bar is None:
            return
        b, step = self.budget, trainer.global_step
        parts = [f"step {step}" + (f"/{b.max_steps}" if b.max_steps else "")]
        if b.budget_s:
            parts.append(f"{b.train_seconds / 60:.1f}/{b.budget_s / 60:g} min")
        if outputs is not None and "loss" in outputs:
            parts.append(f"loss {float(outputs['loss']):.4f}")
        if b.history:
            parts.append(f"val {b.metric} {b.history[-1][f'val_{b.metric}']:.3f}")
        self.bar.update(self.task, completed=min(b.progress(step), 1.0), where=", ".join(parts))

    def _stop(self):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def on_train_end(self, trainer, module):
        self._stop()

    def on_exception(self, trainer, module, exception):
        self._stop()


class ShardBatches(IterableDataset):
    """Shuffled training batches (params (B, P), log-mel (B, n_mels, frames)) float32 from whole shards.

    Each epoch visits the shards in a random order, reads each one whole (one HDF5 read is cheaper than
    per-example `ShardDataset` indexing through a collating DataLoader), and
    yields its examples in a random order, carrying a partial batch over to the next shard. Examples are
    independent draws, so batches drawn this way are as random as globally shuffled ones. The last partial
    batch of an epoch is dropped, unless the dataset is smaller than one batch. With DataLoader workers each
    takes every num_workers-th shard. The order is a pure function of (seed, epoch).

    Under DDP (`place`: rank r of W) the epoch's shard order is dealt to the ranks - rank r's worker w
    takes every (W * workers)-th shard from r * workers + w - and every rank yields the same number of
    batches (the fewest any rank's shards make): ranks that ran out at different steps would deadlock.
    """

    def __init__(self, dataset: ShardDataset, batch_size: int, seed: int, cache_gb: float = 0.0):
        self.dataset, self.batch_size, self.seed, self.epoch = dataset, int(batch_size), int(seed), 0
        self.rank, self.world = 0, 1
        # Decompressed shards kept in memory up to cache_gb: after the first epoch a step reads no gzip
        # (about 13 ms of a 40-60 ms step at batch 64 on one CPU thread).
        self.cache_bytes = cache_gb * 2**30
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def place(self, rank: int, world: int, epoch: int = 0) -> None:
        """This copy serves rank `rank` of `world`, from epoch `epoch` (a resumed run's)."""
        self.rank, self.world, self.epoch = int(rank), int(world), int(epoch)

    def _read(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        import h5py

        if s in self.cache:
            return self.cache[s]
        entry = self.dataset.shards[s]
        with h5py.File(self.dataset.out_dir / entry["file"], "r") as f:
            arrays = f["params"][()], f["mel"][()]
        # the parameters were checked before step one (ShardDataset verify); the log-mels are checked as they
        # are read, since decompressing them all up front would cost an epoch
        problem = finite_problem({"mel": arrays[1]})
        if problem:
            raise shard_error(self.dataset.out_dir, entry, problem)
        if sum(a.nbytes + b.nbytes for a, b in self.cache.values()) + arrays[0].nbytes + arrays[1].nbytes <= self.cache_bytes:
            self.cache[s] = arrays
        return arrays

    def _batches_each(self, order: np.ndarray, worker: int, workers: int) -> int | None:
        """Under DDP the batches worker w of every rank yields this epoch: the fewest any rank's share of
        `order` makes (shard sizes are in the manifest, so every rank computes the same); None: no cap."""
        if self.world == 1:
            return None
        counts = np.array([int(self.dataset.shards[int(s)]["count"]) for s in order])
        stride = self.world * workers
        return min(int(counts[r * workers + worker :: stride].sum()) // self.batch_size for r in range(self.world))

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        everything = rng.permutation(len(self.dataset.shards))
        cap = self._batches_each(everything, worker, workers)
        order = everything[self.rank * workers + worker :: self.world * workers]
        small = len(self.dataset) < self.batch_size and self.world == 1
        params_left, mel_left = None, None
        yielded = 0
        for s in order:
            if cap is not None and yielded >= cap:
                return
            params, mel = self._read(int(s))
            perm = rng.permutation(len(params))
            params, mel = params[perm], mel[perm]
            if params_left is not None:
                params, mel = np.concatenate([params_left, params]), np.concatenate([mel_left, mel])
            full = len(params) // self.batch_size * self.batch_size
            for a in range(0, full, self.batch_size):
                if cap is not None and yielded >= cap:
                    return
                yield (torch.from_numpy(params[a : a + self.batch_size]),
                       torch.from_numpy(mel[a : a + self.batch_size].astype(np.float32)))
                yielded += 1
            params_left, mel_left = params[full:], mel[full:]
        if small and params_left is not None and len(params_left):
            yield torch.from_numpy(params_left), torch.from_numpy(mel_left.astype(np.float32))


def check_shard_split(ds: ShardDataset, batch_size: int, world: int, workers: int) -> None:
    """Under DDP every rank's loader process needs a batch of shards each epoch, whatever the shuffle:
    refuse a dataset too small to deal out (the smallest shards are the worst case)."""
    parts = world * max(workers, 1)
    if world == 1:
        return
    counts = sorted(int(e["count"]) for e in ds.shards)
    if len(counts) < parts or sum(counts[: len(counts) // parts]) < batch_size:
        raise DatasetError(f"{ds.out_dir} has {len(counts)} shards of up to {max(counts)} examples: too few to give "
                           f"each of {world} ranks x {max(workers, 1)} loader processes a batch of {batch_size} every "
                           "epoch; generate it with a smaller shard size, or train on fewer devices")


def dataset_loader(data_dir: Path, synth: Synth, config: Config, seed: int = 0,
                   pin_memory: bool = False) -> tuple[DataLoader, dict]:
    """A DataLoader of shuffled (params, log-mel) batches over the finished shards of `data_dir` (see
    `ShardBatches`; config train.num_workers loader processes; train.cache_gb of decompressed shards kept
    in memory; `pin_memory` for a GPU: page-locked batches copy to it asynchronously), and a summary of
    the data."""
    ds = open_dataset(data_dir, synth, role="training", allow_other_prior=False, verify=True)  # before step one
    workers = config.train.num_workers
    batches = ShardBatches(ds, config.train.batch_size, TRAIN_SEED_BASE + seed, cache_gb=config.train.cache_gb)
    loader = DataLoader(batches, batch_size=None, num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=pin_memory)
    info = {"dir": str(data_dir), "examples": len(ds), "seed": int(ds.manifest["seed"]), "n": int(ds.manifest["n"]),
            "spec_hash": ds.manifest["spec_hash"], "features": ds.manifest["features"]}
    return loader, info


# --- resuming -------------------------------------------------------------------------------------


def run_identity(config: Config, synth: Synth, seed: int, data_info: dict) -> dict:
    """What a resumed run must share with the run that wrote last.ckpt (plain values)."""
    data = {k: data_info[k] for k in ("seed", "n", "spec_hash")} if data_info else None
    return {"method": config.name, "synth": {"name": synth.name, **synth.spec.settings}, "spec_hash": synth.spec.hash(),
            "config": config.to_dict(), "seed": int(seed), "data": data}


def _first_difference(old, new, where: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = _first_difference(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    return None if old == new else f"{where} {old!r}, not {new!r}"


def read_resume(path: Path, identity: dict) -> dict:
    """last.ckpt read without running code (`safe_load`), refused unless it was written by a run of this
    method, synth, config, seed and dataset; -> the Lightning checkpoint dict."""
    from synthinv.checkpoint import safe_load

    blob = safe_load(path, "resumable checkpoint")
    stored = blob.get("synthinv") if isinstance(blob, dict) else None
    if not isinstance(stored, dict) or stored.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"{path} is not a resumable synthinv training state ({LAST} written by `synthinv train`)")
    for key, what in (("method", "method"), ("synth", "synth"), ("spec_hash", "parameter spec"), ("seed", "seed"),
                      ("data", "training dataset"), ("config", "config")):
        found = _first_difference(stored.get(key), identity[key], key)
        if found:
            raise CheckpointError(f"{path} was written by a run with another {what} ({found}): it cannot be "
                                  "resumed with these settings")
    return blob


def check_not_finished(blob: dict, budget: BudgetAndValidation, path: Path) -> None:
    """Refuse a resume whose stored state has already spent the budget given now (it would train one step more)."""
    probe = copy.copy(budget)
    try:
        probe.load_state_dict(blob["callbacks"][budget.state_key])
        step = int(blob["global_step"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path} is an incomplete training state (no step or budget); it cannot be resumed") from None
    if probe.finished(step):
        raise UsageError(f"{path} has trained {step} steps in {probe.train_seconds / 60:.1f} min, the whole budget "
                         "given now; give a larger budget or more steps to continue it")


# --- the run --------------------------------------------------------------------------------------


def trainer_options(scale: Scale) -> dict:
    """Lightning Trainer arguments for `scale`: DDP (gloo on CPU, NCCL on GPU, Lightning's choice) for
    more than one process; under SLURM, Lightning's SLURMEnvironment without its own requeue checkpoint
    (a requeued job resumes from last.ckpt, see README)."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    from lightning.pytorch.strategies import DDPStrategy

    devices: Any = [scale.gpu_index] if scale.gpu_index is not None else scale.devices
    options: dict[str, Any] = {"accelerator": scale.accelerator, "devices": devices, "num_nodes": scale.num_nodes,
                               "precision": "32-true" if scale.precision == "32" else scale.precision}
    if scale.strategy == "ddp" or scale.devices * scale.num_nodes > 1:
        options["strategy"] = DDPStrategy()
    if SLURMEnvironment.detect():
        options["plugins"] = [SLURMEnvironment(auto_requeue=False)]
    return options


def gather_seen(module: InversionModule, trainer) -> list[dict]:
    """Every rank's batch count and first fingerprints (rank 0 reports them: which data each rank saw)."""
    mine = {"rank": trainer.global_rank, "first_batches": module.seen}
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return [mine]
    everyone: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(everyone, mine)
    return everyone


def train(config: Config, synth: Synth, out: Path | None, budget_minutes: float | None = None,
          max_steps: int | None = None, seed: int = 0, device: str = "cpu", progress_bar: bool = True,
          n_validations: int = 5, data_dir: Path | None = None, val_dir: Path | None = None,
          scale: Scale | None = None, resume: Path | None = None, save_every_minutes: float = 10.0,
          cpu_clock: bool = False) -> dict:
    """Train `config` on `synth`; writes out/model.ckpt (best validation score) and out/last.ckpt (the
    resumable state, also every `save_every_minutes` of wall-clock) and returns the run's metadata.

    k-osc: batches generated on the fly, validation LSD (meta "best_val_lsd"). Dataset-backed synths
    (Dexed): `data_dir` is required (a `synthinv generate` directory for this synth), `val_dir` optional
    (default: examples drawn from the validation seed); validation MSS (meta "best_val_mss").
    scale: devices and precision (default: one `device`). resume: a last.ckpt to continue from (same
    method, synth, config, seed and dataset; the budget given now is the total). cpu_clock: count the budget
    in this process's CPU time, not wall time (BudgetAndValidation). Under DDP every rank calls this; rank 0
    writes (`out` may be None on the others)."""
    if not budget_minutes and not max_steps:
        raise UsageError("give a time budget (minutes > 0) or a number of steps > 0")
    if not (save_every_minutes > 0):
        raise UsageError(f"save_every_minutes must be positive, got {save_every_minutes}")
    from_data = synth.trains_from_data
    if from_data and data_dir is None:
        raise DatasetError(f"{synth.name} trains from a generated dataset: give data_dir, a dataset generated for it")
    if not from_data and (data_dir is not None or val_dir is not None):
        raise DatasetError(f"{synth.name} generates its training batches on the fly; it takes no dataset")
    scale = check_scale(scale or Scale.from_device(device))
    world = scale.devices * scale.num_nodes
    L.seed_everything(seed, verbose=False)
    model = build_model(config, synth)
    loader: DataLoader | None = None
    data_info: dict = {}
    validation = None
    if from_data:
        assert data_dir is not None  # checked above
        loader, data_info = dataset_loader(Path(data_dir), synth, config, seed, pin_memory=scale.accelerator == "gpu")
        train_data = cast(ShardBatches, loader.dataset).dataset
        check_shard_split(train_data, config.train.batch_size, world, config.train.num_workers)
        if val_dir is not None:
            val_manifest = open_dataset(val_dir, synth, role="validation", verify=True).manifest
            check_disjoint(train_data.manifest, val_manifest["seed"], "validation", str(val_dir))
        else:
            check_disjoint(train_data.manifest, VAL_SEED, "validation", f"drawn from seed {VAL_SEED}")
        validation = RenderedValidation(config.sample.val_examples, Path(val_dir) if val_dir else None)
    identity = run_identity(config, synth, seed, data_info)
    budget = BudgetAndValidation(config, budget_minutes * 60 if budget_minutes else None, max_steps, n_validations,
                                 validation=validation, count_loading=from_data, cpu_clock=cpu_clock)
    if resume is not None:
        check_not_finished(read_resume(Path(resume), identity), budget, Path(resume))
    module = InversionModule(model, synth, config, seed, from_data=from_data, loader=loader, identity=identity)
    callbacks: list[L.Callback] = [budget, periodic_saver(out, save_every_minutes)]
    if progress_bar and sys.stderr.isatty():  # logs and tests get the INFO line per validation instead
        callbacks.append(TrainProgress(budget, f"training {config.name}"))
    trainer = L.Trainer(
        **trainer_options(scale), max_epochs=-1, max_steps=-1,
        gradient_clip_val=config.train.grad_clip, callbacks=callbacks, logger=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
        num_sanity_val_steps=0, default_root_dir=out,
    )
    trainer.fit(module, ckpt_path=resume, weights_only=True)
    trainer.save_checkpoint(Path(out or ".") / LAST)  # every rank takes part; rank 0 writes
    ranks = gather_seen(module, trainer)
    meta = run_meta(config, trainer, budget, scale, seed, budget_minutes, max_steps, resume)
    meta["ranks"] = ranks
    if from_data:
        meta["data"] = data_info
        meta["val_data"] = str(val_dir) if val_dir is not None else f"drawn: seed {VAL_SEED}, examples 0..{config.sample.val_examples - 1}"
        if data_info["examples"] < config.train.batch_size:  # every batch is the whole (small) dataset
            meta["examples_per_second"] = round(trainer.global_step * data_info["examples"] / max(budget.train_seconds, 1e-9), 1)
    if trainer.is_global_zero and out is not None:
        save_checkpoint(Path(out) / "model.ckpt", model.cpu(), synth, config, meta, state_dict=budget.best_state)
    return meta


def periodic_saver(out: Path | None, every_minutes: float) -> L.Callback:
    """Lightning's ModelCheckpoint writing out/last.ckpt every `every_minutes` of wall-clock (its time check is
    broadcast from rank 0, so the ranks save together)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    class PeriodicSave(ModelCheckpoint):
        @property
        def state_key(self) -> str:  # the same whatever the interval: a resume may choose another
            return "PeriodicSave"

    return PeriodicSave(dirpath=out, filename=Path(LAST).stem, train_time_interval=timedelta(minutes=every_minutes),
                        save_top_k=1, save_on_train_epoch_end=False, enable_version_counter=False)


def run_meta(config: Config, trainer, budget: BudgetAndValidation, scale: Scale, seed: int,
             budget_minutes: float | None, max_steps: int | None, resume: Path | None) -> dict:
    steps, world = trainer.global_step, trainer.world_size
    return {
        "steps": steps, "train_seconds": round(budget.train_seconds, 1),
        "examples_per_second": round(steps * config.train.batch_size * world / max(budget.train_seconds, 1e-9), 1),
        f"best_val_{budget.metric}": budget.best_value, "val_metric": budget.metric, "history": budget.history,
        f"random_val_{budget.metric}": budget.random_value, "warning": budget.not_learning(),
        "seed": seed, "budget_minutes": budget_minutes, "max_steps": max_steps, "torch_threads": torch.get_num_threads(),
        "interrupted": bool(trainer.interrupted), "accelerator": scale.accelerator, "world_size": world,
        "precision": scale.precision, "batch_size_per_rank": config.train.batch_size,
        "resumed_from": str(resume) if resume is not None else None,
    }
