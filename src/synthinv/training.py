"""Training with Lightning on batches generated on the fly, under a wall-clock and/or step budget.

Why batches are made inside the training step: rendering k-osc audio for a whole batch is one
vectorised call (measured by benchmarks/bench_render.py), cheaper than any worker pipeline. Example i of the training
split is a pure function of (train seed, i), so a run is reproducible from its seed.

Why the learning rate follows *progress* (max of step and time fractions) instead of steps: a user gives
minutes, not steps; warm-up and cosine decay then fit whatever budget the machine affords.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from synthinv.build import build_model
from synthinv.checkpoint import save_checkpoint
from synthinv.evaluation import VAL_SEED, lsd_of, sample_params, split_batch

TRAIN_SEED_BASE = 1_000_000

# Lightning's start-up banners (GPU/TPU availability, tips) say nothing useful for a CPU run.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
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
    """Wraps a FlowModel or RegressionModel; the batch is generated from the step index."""

    def __init__(self, model, synth, config: dict, seed: int):
        super().__init__()
        self.model, self.synth, self.config = model, synth, config
        self.batch_size = config["train"]["batch_size"]
        self.train_seed = TRAIN_SEED_BASE + seed
        self.l1_weight = config["model"].get("l1_weight", 0.0)

    def make_batch(self, step: int):
        idx = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        params = self.synth.params_at(self.train_seed, idx).to(self.device)  # (B, P)
        return params, self.synth.render(params)  # (B, T)

    def training_step(self, step, _batch_idx):
        params, audio = self.make_batch(int(step))
        loss = self.model.loss(params, audio)
        total = loss + self.l1_weight * self.model.penalty() if self.l1_weight else loss
        self.log("loss", loss, prog_bar=True, on_step=True)
        return total

    def configure_optimizers(self):
        t = self.config["train"]
        return torch.optim.AdamW(self.model.parameters(), lr=t["lr"], weight_decay=t.get("weight_decay", 0.0))


class BudgetAndValidation(L.Callback):
    """Sets the LR from progress, stops at the budget, validates by LSD and keeps the best weights.

    Validation time is excluded from the training clock so budgets compare training work alone.
    """

    def __init__(self, config: dict, budget_s: float | None, max_steps: int | None, n_validations: int = 5):
        self.t, self.s = config["train"], config["sample"]
        self.budget_s, self.max_steps = budget_s, max_steps
        self.val_points = [(i + 1) / n_validations for i in range(n_validations)]
        self.train_seconds, self.best_lsd, self.best_state, self.history = 0.0, math.inf, None, []
        self._val_data = None
        self._last = None

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
        self._last = now
        lr = lr_at(self.progress(trainer.global_step), self.t["lr"], self.t["warmup"], self.t["min_lr_ratio"])
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

    @torch.no_grad()
    def validate(self, trainer, module, loss: float):
        model = module.model.eval()
        if self._val_data is None:
            self._val_data = split_batch(module.synth, VAL_SEED, self.s["val_examples"], module.device)
        params, audio = self._val_data
        pred = sample_params(model, audio, self.s["val_steps"], self.s["guidance"], seed=0)
        lsd = lsd_of(module.synth, pred, audio).mean().item()
        model.train()
        step = trainer.global_step
        self.history.append({"step": step, "train_seconds": round(self.train_seconds, 1), "loss": loss, "val_lsd": lsd})
        module.log("val_lsd", lsd, prog_bar=True)
        if lsd < self.best_lsd:
            self.best_lsd, self.best_state = lsd, copy.deepcopy(model.state_dict())


def train(config: dict, synth, out: Path, budget_minutes: float | None = None, max_steps: int | None = None,
          seed: int = 0, device: str = "cpu", progress_bar: bool = True, n_validations: int = 5) -> dict:
    """Train `config` on `synth`; writes out/model.ckpt (best validation LSD) and returns its metadata."""
    if not budget_minutes and not max_steps:
        raise ValueError("give a time budget (minutes > 0) or a number of steps > 0")
    L.seed_everything(seed, verbose=False)
    model = build_model(config, synth)
    module = InversionModule(model, synth, config, seed)
    budget = BudgetAndValidation(config, budget_minutes * 60 if budget_minutes else None, max_steps, n_validations)
    trainer = L.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1, max_epochs=-1, max_steps=-1,
        gradient_clip_val=config["train"].get("grad_clip"), callbacks=[budget], logger=False,
        enable_checkpointing=False, enable_progress_bar=progress_bar, enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, DataLoader(StepCounter(), batch_size=None))
    steps = trainer.global_step
    meta = {
        "steps": steps, "train_seconds": round(budget.train_seconds, 1),
        "examples_per_second": round(steps * config["train"]["batch_size"] / max(budget.train_seconds, 1e-9), 1),
        "best_val_lsd": budget.best_lsd, "history": budget.history, "seed": seed,
        "budget_minutes": budget_minutes, "max_steps": max_steps, "torch_threads": torch.get_num_threads(),
        "interrupted": bool(trainer.interrupted),
    }
    save_checkpoint(Path(out) / "model.ckpt", model.cpu(), synth, config, meta, state_dict=budget.best_state)
    return meta
