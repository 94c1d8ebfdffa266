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
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import cast

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from synthinv.build import build_model
from synthinv.checkpoint import save_checkpoint
from synthinv.config import Config
from synthinv.data.shards import ShardDataset, finite_problem, shard_error
from synthinv.datasets import DatasetError, check_disjoint, first_examples, open_dataset
from synthinv.errors import UsageError
from synthinv.evaluation import VAL_SEED, drawn_examples, lsd_of, mss_of, sample_params, split_batch
from synthinv.models.sampler import Sampler
from synthinv.synths.base import Synth

TRAIN_SEED_BASE = 1_000_000

# Lightning's start-up banners (GPU/TPU availability, tips) say nothing useful for a CPU run.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
log = logging.getLogger(__name__)  # one INFO line per validation: progress for runs without a progress bar
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*does not have many workers.*")


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


class InversionModule(L.LightningModule):
    """Wraps a FlowModel or RegressionModel. k-osc: the batch is generated from the step index; with
    `from_data` the batch is (params (B, P), encoder input (B, n_mels, frames)) from a DataLoader."""

    def __init__(self, model, synth: Synth, config: Config, seed: int, from_data: bool = False):
        super().__init__()
        self.model, self.synth, self.config = model, synth, config
        self.batch_size = config.train.batch_size
        self.train_seed = TRAIN_SEED_BASE + seed
        self.l1_weight = config.model.l1_weight
        self.from_data = from_data

    def make_batch(self, step: int):
        idx = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        params = self.synth.params_at(self.train_seed, idx).to(self.device)  # (B, P)
        return params, self.synth.render(params)  # (B, T)

    def training_step(self, batch, _batch_idx):
        params, cond = batch if self.from_data else self.make_batch(int(batch))
        loss = self.model.loss(params, cond)
        total = loss + self.l1_weight * self.model.penalty() if self.l1_weight else loss
        self.log("loss", loss, prog_bar=True, on_step=True)
        return total

    def configure_optimizers(self):
        t = self.config.train
        return torch.optim.AdamW(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)


class KOscValidation:
    """Validation LSD on the first `n` examples of the k-osc validation split (generated once)."""

    metric = "lsd"

    def __init__(self, n: int):
        self.n = n
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None

    def score(self, model: Sampler, synth: Synth, device, steps: int, guidance: float) -> float:
        if self._data is None:
            self._data = split_batch(synth, VAL_SEED, self.n, device)
        params, audio = self._data
        pred = sample_params(model, audio, steps, guidance, seed=0)
        return lsd_of(synth, pred, audio).mean().item()


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

    def score(self, model: Sampler, synth: Synth, device, steps: int, guidance: float) -> float:
        if self._data is None:
            self._data = self.load(synth)
        _, feats, audio = self._data
        pred = sample_params(model, feats.to(device), steps, guidance, seed=0).cpu()
        return mss_of(synth, pred, audio).mean().item()


class BudgetAndValidation(L.Callback):
    """Sets the LR from progress, stops at the budget, validates (LSD for k-osc, MSS for dataset-backed
    synths) and keeps the best weights.

    Validation time is excluded from the training clock so budgets compare training work alone. With
    `count_loading` the time between batches (loading from a dataset) counts as training time too.
    """

    def __init__(self, config: Config, budget_s: float | None, max_steps: int | None, n_validations: int = 5,
                 validation=None, count_loading: bool = False):
        self.t, self.s = config.train, config.sample
        self.budget_s, self.max_steps = budget_s, max_steps
        self.val_points = [(i + 1) / n_validations for i in range(n_validations)]
        self.train_seconds, self.best_value, self.best_state = 0.0, math.inf, None
        self.history: list[dict] = []
        self.validation = validation or KOscValidation(self.s.val_examples)
        self.count_loading = count_loading
        self._last = None
        self._last_end = None

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

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        now = time.perf_counter()
        if self._last is not None:
            self.train_seconds += now - self._last
        elif self.count_loading and self._last_end is not None:
            self.train_seconds += now - self._last_end  # fetching this batch from the dataset
        self._last = now
        lr = lr_at(self.progress(trainer.global_step), self.t.lr, self.t.warmup, self.t.min_lr_ratio)
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = lr

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.train_seconds += time.perf_counter() - self._last
        self._last = None
        progress = self.progress(trainer.global_step)
        if self.val_points and progress >= self.val_points[0]:
            while self.val_points and progress >= self.val_points[0]:
                self.val_points.pop(0)
            self.validate(trainer, module, float(outputs["loss"]))
        if progress >= 1.0:
            trainer.should_stop = True
        self._last_end = time.perf_counter()

    @torch.no_grad()
    def validate(self, trainer, module, loss: float):
        model = module.model.eval()
        value = self.validation.score(model, module.synth, module.device, self.s.val_steps, self.s.guidance)
        model.train()
        step = trainer.global_step
        key = f"val_{self.metric}"
        self.history.append({"step": step, "train_seconds": round(self.train_seconds, 1), "loss": loss, key: value})
        module.log(key, value, prog_bar=True)
        if value < self.best_value:
            self.best_value, self.best_state = value, copy.deepcopy(model.state_dict())
        log.info("step %d (%.0f s): loss %.4f, %s %.3f, best %.3f", step, self.train_seconds, loss, key, value,
                 self.best_value)


class TrainProgress(L.Callback):
    """A progress bar over what ends the run: steps of max_steps, or minutes of the budget (whichever is
    further along when both are given), with the loss and the last validation score. Lightning's own bar
    counts epochs, and the training data here is an endless stream (epoch 0 of -1)."""

    def __init__(self, budget: BudgetAndValidation, label: str):
        self.budget, self.label, self.bar = budget, label, None

    def on_train_start(self, trainer, module):
        from rich.markup import escape
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn(escape(self.label)), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                            TextColumn("{task.fields[where]}"), TimeElapsedColumn(), transient=False)
        self.bar.start()
        self.task = self.bar.add_task("", total=1.0, where="")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
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
    """

    def __init__(self, dataset: ShardDataset, batch_size: int, seed: int, cache_gb: float = 0.0):
        self.dataset, self.batch_size, self.seed, self.epoch = dataset, int(batch_size), int(seed), 0
        # Decompressed shards kept in memory up to cache_gb: after the first epoch a step reads no gzip
        # (about 13 ms of a 40-60 ms step at batch 64 on one CPU thread).
        self.cache_bytes = cache_gb * 2**30
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

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

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(len(self.dataset.shards))[worker::workers]
        small = len(self.dataset) < self.batch_size
        params_left, mel_left = None, None
        for s in order:
            params, mel = self._read(int(s))
            perm = rng.permutation(len(params))
            params, mel = params[perm], mel[perm]
            if params_left is not None:
                params, mel = np.concatenate([params_left, params]), np.concatenate([mel_left, mel])
            full = len(params) // self.batch_size * self.batch_size
            for a in range(0, full, self.batch_size):
                yield (torch.from_numpy(params[a : a + self.batch_size]),
                       torch.from_numpy(mel[a : a + self.batch_size].astype(np.float32)))
            params_left, mel_left = params[full:], mel[full:]
        if small and params_left is not None and len(params_left):
            yield torch.from_numpy(params_left), torch.from_numpy(mel_left.astype(np.float32))


def dataset_loader(data_dir: Path, synth: Synth, config: Config, seed: int = 0) -> tuple[DataLoader, dict]:
    """A DataLoader of shuffled (params, log-mel) batches over the finished shards of `data_dir` (see
    `ShardBatches`; config train.num_workers loader processes; train.cache_gb of decompressed shards kept
    in memory), and a summary of the data."""
    ds = open_dataset(data_dir, synth, role="training", allow_other_prior=False, verify=True)  # before step one
    workers = config.train.num_workers
    batches = ShardBatches(ds, config.train.batch_size, TRAIN_SEED_BASE + seed, cache_gb=config.train.cache_gb)
    loader = DataLoader(batches, batch_size=None, num_workers=workers, persistent_workers=workers > 0)
    info = {"dir": str(data_dir), "examples": len(ds), "seed": int(ds.manifest["seed"]), "n": int(ds.manifest["n"]),
            "spec_hash": ds.manifest["spec_hash"], "features": ds.manifest["features"]}
    return loader, info


def train(config: Config, synth: Synth, out: Path, budget_minutes: float | None = None, max_steps: int | None = None,
          seed: int = 0, device: str = "cpu", progress_bar: bool = True, n_validations: int = 5,
          data_dir: Path | None = None, val_dir: Path | None = None) -> dict:
    """Train `config` on `synth`; writes out/model.ckpt (best validation score) and returns its metadata.

    k-osc: batches generated on the fly, validation LSD (meta "best_val_lsd"). Dataset-backed synths
    (Dexed): `data_dir` is required (a `synthinv generate` directory for this synth), `val_dir` optional
    (default: examples drawn from the validation seed); validation MSS (meta "best_val_mss")."""
    if not budget_minutes and not max_steps:
        raise UsageError("give a time budget (minutes > 0) or a number of steps > 0")
    from_data = synth.trains_from_data
    if from_data and data_dir is None:
        raise DatasetError(f"{synth.name} trains from a generated dataset: give data_dir, a dataset generated for it")
    if not from_data and (data_dir is not None or val_dir is not None):
        raise DatasetError(f"{synth.name} generates its training batches on the fly; it takes no dataset")
    L.seed_everything(seed, verbose=False)
    model = build_model(config, synth)
    module = InversionModule(model, synth, config, seed, from_data=from_data)
    if from_data:
        assert data_dir is not None  # checked above
        loader, data_info = dataset_loader(Path(data_dir), synth, config, seed)
        train_manifest = cast(ShardBatches, loader.dataset).dataset.manifest
        if val_dir is not None:
            val_manifest = open_dataset(val_dir, synth, role="validation", verify=True).manifest
            check_disjoint(train_manifest, val_manifest["seed"], "validation", str(val_dir))
        else:
            check_disjoint(train_manifest, VAL_SEED, "validation", f"drawn from seed {VAL_SEED}")
        validation = RenderedValidation(config.sample.val_examples, Path(val_dir) if val_dir else None)
    else:
        loader, data_info, validation = DataLoader(StepCounter(), batch_size=None), {}, None
    budget = BudgetAndValidation(config, budget_minutes * 60 if budget_minutes else None, max_steps, n_validations,
                                 validation=validation, count_loading=from_data)
    callbacks: list[L.Callback] = [budget]
    if progress_bar and sys.stderr.isatty():  # logs and tests get the INFO line per validation instead
        callbacks.append(TrainProgress(budget, f"training {config.name}"))
    trainer = L.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1, max_epochs=-1, max_steps=-1,
        gradient_clip_val=config.train.grad_clip, callbacks=callbacks, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, loader)
    steps = trainer.global_step
    meta = {
        "steps": steps, "train_seconds": round(budget.train_seconds, 1),
        "examples_per_second": round(steps * config.train.batch_size / max(budget.train_seconds, 1e-9), 1),
        f"best_val_{budget.metric}": budget.best_value, "val_metric": budget.metric, "history": budget.history,
        "seed": seed, "budget_minutes": budget_minutes, "max_steps": max_steps, "torch_threads": torch.get_num_threads(),
        "interrupted": bool(trainer.interrupted),
    }
    if from_data:
        meta["data"] = data_info
        meta["val_data"] = str(val_dir) if val_dir is not None else f"drawn: seed {VAL_SEED}, examples 0..{config.sample.val_examples - 1}"
        if data_info["examples"] < config.train.batch_size:  # every batch is the whole (small) dataset
            meta["examples_per_second"] = round(steps * data_info["examples"] / max(budget.train_seconds, 1e-9), 1)
    save_checkpoint(Path(out) / "model.ckpt", model.cpu(), synth, config, meta, state_dict=budget.best_state)
    return meta
