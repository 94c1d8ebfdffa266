"""Search on real renders: improve the best proposals by minimising the ranking distance, under a deadline.

The space is split by kind. Numeric parameters (discrete grids and continuous values, the note excluded:
the pitch is fixed before the search) are searched by CMA-ES in the encoded [-1, 1] space, one run per
start; categorical parameters (Dexed's algorithm, waveforms, curves, oscillator modes) are not rounded
out of a continuous relaxation: each start keeps its own choices (starts are picked to differ in them),
and a coordinate sweep tries every choice of every categorical parameter on the best patch found.

Every candidate is rendered and scored in the worker pool (synthinv.workers) against the target's cached
spectrograms (scoring.target_distance), so both cores render and score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from synthinv.scoring import target_distance
from synthinv.synths.base import Synth
from synthinv.transpose import NOTE_PARAM
from synthinv.workers import SynthPool

SIGMA0 = 0.15  # initial CMA step in encoded units ([-1, 1]): about 7 steps of a 0-99 DX7 grid


_TARGETS: dict = {}  # per worker: the scorer of the target it saw last (a search asks thousands of times)


@dataclass(frozen=True)
class LevelPenalty:
    """candidate audio (N, T) -> dB (N,): 0 within `free_db` of the target's RMS level, then `per_db` for
    every dB further, at most `cap_db`. MSS is gain-blind, yet a DX7 patch moved to the target's level after
    the search sounds different (its envelopes run in dB from a fixed floor, and the engine seems to have a
    fixed floor of its own): searched near the level the preset must play at, the finish has little left to move."""

    target_dbfs: float  # the target's RMS level (metrics.rms_dbfs)
    free_db: float = 3.0  # issue 10's tolerance for the first candidate's level
    per_db: float = 0.05
    cap_db: float = 1.0

    def __call__(self, audio: torch.Tensor | np.ndarray) -> np.ndarray:
        from synthinv.metrics import rms_dbfs

        off = np.abs(rms_dbfs(torch.as_tensor(audio)).numpy() - self.target_dbfs)
        return np.clip((off - self.free_db) * self.per_db, 0.0, self.cap_db)


Penalty = Callable[[torch.Tensor], np.ndarray]  # candidate audio (N, T) -> dB added to its distance (N,)


def _score_job(synth: Synth, key: str, target: torch.Tensor, params: torch.Tensor,
               penalties: tuple[Penalty, ...] = (), frame_stride: int = 1) -> np.ndarray:
    """In a worker: render params (N, P) and score them against `target` (T,) -> (N,) distances (on every
    `frame_stride`-th frame: scoring.target_distance), plus the penalties (what a wrong note or level costs)."""
    if (key, frame_stride) not in _TARGETS:
        _TARGETS.clear()
        _TARGETS[key, frame_stride] = target_distance(synth, target, frame_stride)
    audio = synth.render(params.clamp(-1, 1))  # (N, T)
    distance = _TARGETS[key, frame_stride](audio).numpy()
    return distance + sum((penalty(audio) for penalty in penalties), np.zeros_like(distance))


class Objective:
    """Renders and scores parameter sets (N, P) -> distances (N,) on the pool, counting renders and keeping
    the best seen. `stop` (a deadline, Ctrl-C) is checked by the search between batches. With `penalties`
    (synthinv.pitch.PitchPenalty, LevelPenalty) the distances are MSS + what a wrong note or level costs,
    so the search keeps the target's pitch and level; the finish re-scores what it returns by the ranking
    distance alone. frame_stride > 1: the distances are the ranking distance estimated on every s-th frame (at 2,
    about half the scoring work; not the default: results/invert_search_stride.md)."""

    def __init__(self, pool: SynthPool, target: torch.Tensor, key: str, on_best: Callable | None = None,
                 penalties: tuple[Penalty, ...] = (), frame_stride: int = 1):
        self.pool, self.target, self.key, self.penalties = pool, target, key, tuple(penalties)
        self.frame_stride = frame_stride
        self.renders, self.best = 0, float("inf")
        self.best_params: torch.Tensor | None = None
        self.on_best = on_best

    def __call__(self, params: torch.Tensor) -> np.ndarray:
        if not len(params):
            return np.zeros(0)
        chunks = [c for c in torch.tensor_split(params, self.pool.workers) if len(c)]
        out = np.concatenate(self.pool.map(_score_job, [(self.key, self.target, c, self.penalties, self.frame_stride)
                                                     for c in chunks]))
        self.renders += len(params)
        i = int(np.argmin(out))
        if out[i] < self.best:
            self.best, self.best_params = float(out[i]), params[i].clone()
            if self.on_best:
                self.on_best(self.best, self.renders)
        return out


def search_columns(spec) -> tuple[np.ndarray, list[slice]]:
    """(numeric encoded columns searched by CMA-ES, one-hot slices of the categorical parameters)."""
    numeric, categorical = [], []
    for p, s in zip(spec.params, spec.slices):
        if p.kind == "categorical":
            categorical.append(s)
        elif p.name != NOTE_PARAM:
            numeric.append(s.start)
    return np.array(numeric, dtype=np.int64), categorical


class _Pycma:
    """pycma's ask/tell. Chosen over the `cmaes` package by measurement (results/invert_search.md): where
    many start values sit on the [-1, 1] bounds, as in DX7 patches, cmaes's bounded sampling rejects most
    draws and costs more than the renders."""

    def __init__(self, x0: np.ndarray, sigma: float, seed: int, popsize: int | None):
        import cma

        opts = {"bounds": [-1.0, 1.0], "seed": seed + 1, "verbose": -9}
        if popsize:
            opts["popsize"] = popsize
        self.es = cma.CMAEvolutionStrategy(x0, sigma, opts)

    def ask(self) -> np.ndarray:
        self.solutions = self.es.ask()
        return np.asarray(self.solutions)

    def tell(self, values: np.ndarray) -> None:
        self.es.tell(self.solutions, list(values))




def cma_run(objective: Objective, start: torch.Tensor, columns: np.ndarray, deadline: float,
            max_renders: int | None = None, sigma: float = SIGMA0, seed: int = 0,
            popsize: int | None = None, stop: Callable[[], bool] = lambda: False) -> tuple[torch.Tensor, float]:
    """CMA-ES on `columns` of `start` (P,) until the deadline (time.perf_counter) or `max_renders`;
    -> (best params (P,), its distance)."""
    if not len(columns):  # a synth with categorical parameters only: the sweep is the whole search
        return start.clone(), float("inf")
    opt = _Pycma(start[columns].double().numpy(), sigma, seed, popsize)
    best, best_value, used = start.clone(), float("inf"), 0
    while time.perf_counter() < deadline and not stop() and (max_renders is None or used < max_renders):
        x = opt.ask()  # (lambda, len(columns))
        batch = start.expand(len(x), -1).clone()
        batch[:, columns] = torch.from_numpy(np.clip(x, -1, 1)).float()
        values = objective(batch)
        used += len(batch)
        opt.tell(values)
        i = int(np.argmin(values))
        if values[i] < best_value:
            best, best_value = batch[i].clone(), float(values[i])
    return best, best_value


def categorical_sweep(objective: Objective, start: torch.Tensor, start_value: float, slices: list[slice],
                      deadline: float, stop: Callable[[], bool] = lambda: False) -> tuple[torch.Tensor, float]:
    """Try every choice of each categorical parameter in turn on `start` (P,), keeping any that lowers the
    distance (one pass, one batch per parameter)."""
    best, best_value = start.clone(), start_value
    for s in slices:
        if time.perf_counter() >= deadline or stop():
            break
        width = s.stop - s.start
        batch = best.expand(width, -1).clone()
        batch[:, s] = torch.where(torch.eye(width, dtype=torch.bool), 1.0, -1.0)  # each one-hot choice
        values = objective(batch)
        i = int(np.argmin(values))
        if values[i] < best_value:
            best, best_value = batch[i].clone(), float(values[i])
    return best, best_value


@dataclass
class SearchResult:
    found: list[tuple[torch.Tensor, float, str]] = field(default_factory=list)  # (params (P,), distance, how)
    renders: int = 0
    interrupted: bool = False


def search(objective: Objective, starts: list[tuple[torch.Tensor, float]], spec, deadline: float, seed: int = 0,
           stop: Callable[[], bool] = lambda: False) -> SearchResult:
    """From each start (params (P,), distance) a CMA-ES run on the numeric parameters, the time left shared
    evenly; then a categorical sweep on the best result, and CMA-ES again from there with what is left."""
    columns, categorical = search_columns(spec)
    result = SearchResult()
    if not starts or time.perf_counter() >= deadline:
        return result
    now = time.perf_counter()
    starts_deadline = now + (0.7 if categorical else 1.0) * (deadline - now)  # the rest: sweep + a last run
    for i, (start, value) in enumerate(starts):
        share = (starts_deadline - time.perf_counter()) / (len(starts) - i)
        params, dist = cma_run(objective, start, columns, time.perf_counter() + share, seed=seed + i, stop=stop)
        if dist < value:
            result.found.append((params, dist, f"searched from {i + 1}"))
    best = min([(p, d) for p, d, _ in result.found] + list(starts), key=lambda t: t[1])
    if categorical:
        swept, swept_value = categorical_sweep(objective, *best, categorical, deadline, stop)
        if swept_value < best[1]:
            result.found.append((swept, swept_value, "categorical sweep"))
            best = (swept, swept_value)
        params, dist = cma_run(objective, best[0], columns, deadline, sigma=SIGMA0 / 3, seed=seed + 99, stop=stop)
        if dist < best[1]:
            result.found.append((params, dist, "searched again after the sweep"))
    result.renders = objective.renders
    result.interrupted = stop()
    return result
