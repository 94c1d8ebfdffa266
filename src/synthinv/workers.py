"""Rendering on every core: a process pool whose workers each hold their own synth engine.

Workers are forked, not spawned: a spawned worker pays the torch + synth import (about 3.5 s here) before
its first note, a forked one starts in milliseconds. They are forked when the pool is made (a first no-op
job), so callers make the pool before heavy torch work; each worker runs torch on one thread and builds
its own synth engine (the synth is copied through pickle, which drops an engine the parent had built).
A worker that dies (a native crash in a renderer) breaks the pool: it is rebuilt once and the job retried. Jobs are module-level functions `job(synth, *args)`, so the pool
does not care what they compute (bank features, search scores).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

import torch

from synthinv.errors import SynthinvError
from synthinv.synths.base import Synth

_SYNTH = None  # the worker's own synth (its engine is built on first render)


def _init_worker(synth: Synth) -> None:
    global _SYNTH
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops the search)
    torch.set_num_threads(1)
    _SYNTH = pickle.loads(pickle.dumps(synth))  # __getstate__ drops an engine inherited through fork


class _ByValue:
    """A tensor argument on its way to a worker, as a numpy array. torch pickles tensors for multiprocessing
    through shared memory: a new segment per tensor and its file descriptor passed through a socket, which
    cost the search's parent about twice the CPU of pickling the few kilobytes by value (bench_invert)."""

    __slots__ = ("array",)

    def __init__(self, tensor: torch.Tensor):
        self.array = tensor.detach().cpu().numpy()


def _call(job: Callable, args: tuple) -> Any:
    return job(_SYNTH, *(torch.from_numpy(a.array) if isinstance(a, _ByValue) else a for a in args))


def _by_value(args: tuple) -> tuple:
    return tuple(_ByValue(a) if isinstance(a, torch.Tensor) else a for a in args)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` inside, restored after. The parent of a pool samples models and
    scores a few candidates while its workers render: with more threads than free cores, torch's threads
    wait for each other (a 10-step flow sample took 1.6-12 s on 2 threads beside a busy core, 0.56 s on one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_workers() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class SynthPool:
    """`pool.map(job, [args, ...])` runs `job(synth, *args)` in worker processes, results in order.

    workers <= 1 runs everything in this process (tests, and machines with one core)."""

    def __init__(self, synth: Synth, workers: int | None = None):
        self.synth = synth
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._pool: cf.ProcessPoolExecutor | None = None
        if self.workers > 1:
            self._start()

    def _start(self) -> None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                            initializer=_init_worker, initargs=(self.synth,))
        self._pool.submit(os.getpid).result()  # a fork context starts every worker at the first job: now

    def map(self, job: Callable, arg_list: Sequence[tuple]) -> list:
        if self._pool is None:
            return [job(self.synth, *args) for args in arg_list]
        for _ in range(2):
            assert self._pool is not None
            try:
                return list(self._pool.map(_call, [job] * len(arg_list), [_by_value(a) for a in arg_list]))
            except BrokenProcessPool:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._start()
        raise SynthinvError(f"a {self.synth.name} render worker died twice on the same job (a crash in the "
                            "synth's native code); try a search budget of 0 or another sound")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> SynthPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
