"""Sharded, parallel, resumable dataset generation: synth settings + seed -> a dataset directory.

    result = generate({"name": "dexed"}, n=100_000, out_dir="data/dexed", seed=0, workers=8)
    result = generate({"name": "dexed"}, n=100_000, out_dir="data/dexed", seed=0, shards=(0, 10))  # part

Example i is a pure function of (synth settings, seed, i) - `synth.draw(seed, [i])` (Dexed: the prior with
near-silent redraws, audio included; k-osc: `params_at` + `render`) - so a shard's bytes do not depend on
the worker count, the shard range, or whether the run was interrupted.

Each worker process builds one synth (pool initializer), renders its shard in chunks of `CHUNK` examples,
computes the log-mel features and writes the shard file itself (`shards.write_shard`: temp file + rename);
only the shard's checksum travels back through the pool, never audio. The main process records each
finished shard in the manifest. A rerun skips shards whose file matches the manifest's sha256 and
rewrites missing, truncated or corrupt ones; a manifest written for other settings is refused.
On Ctrl-C the shards being rendered are finished and recorded (workers ignore SIGINT), then it stops.

Workers are spawned (fresh interpreters), so a script calling `generate(..., workers=2)` needs the usual
`if __name__ == "__main__":` guard; the `synthinv` command has it.
"""

from __future__ import annotations

import concurrent.futures as cf
import errno
import multiprocessing
import signal
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthinv.data import shards as sh
from synthinv.errors import UsageError
from synthinv.features import MEL_FEATURES, log_mel_spectrogram
from synthinv.progress import progress_bar
from synthinv import synths
from synthinv.synths.base import Synth, draw_examples

CHUNK = 64  # examples rendered and featurised at once inside a worker (bounds its audio memory)
DEFAULT_FEATURES = dict(MEL_FEATURES)  # the encoder's input settings (synthinv.features), stored with every shard

_WORKER: dict = {}  # per-process state: the synth and feature settings (set by _init_worker)


@dataclass
class GenerateResult:
    """What a `generate` call did."""

    out_dir: Path
    written: list[int] = field(default_factory=list)  # shards written by this call
    skipped: list[int] = field(default_factory=list)  # already complete, left as they were
    rewritten: list[int] = field(default_factory=list)  # recorded before but failed their checksum (subset of written)
    examples: int = 0  # examples written by this call
    seconds: float = 0.0
    bytes_per_example: float | None = None  # measured over every finished shard of the dataset
    complete: bool = False  # every shard of the whole dataset is finished
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, examples) per shard done

    @property
    def examples_per_s(self) -> float:
        """Over the whole call, start-up (synth, pool) included."""
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_examples_per_s(self) -> float | None:
        """Between the first and the last finished shard: the rate once workers are up (None if < 2 shards)."""
        if len(self.timeline) < 2 or self.timeline[-1][0] <= self.timeline[0][0]:
            return None
        return sum(c for _, c in self.timeline[1:]) / (self.timeline[-1][0] - self.timeline[0][0])


def _build(synth_settings: dict) -> Synth:
    return synths.from_settings(dict(synth_settings))


def _init_worker(synth_settings: dict, features: dict, in_pool: bool = True) -> None:
    if in_pool:  # Ctrl-C is the main process's business: it lets running shards finish, then stops
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)  # one process per core; rendering and FFTs are per example anyway
    _WORKER["synth"] = _build(synth_settings)
    _WORKER["features"] = features


def render_shard(synth: Synth, features: dict, seed: int, start: int, stop: int, on_chunk=None) -> dict[str, np.ndarray]:
    """Examples start..stop-1 -> {"params" (n, P) float32, "mel" (n, n_mels, frames) float16, "index" (n,)}."""
    index = np.arange(start, stop, dtype=np.int64)
    params = np.empty((len(index), synth.spec.size), dtype=np.float32)
    mel = np.empty((len(index), features["n_mels"], features["frames"]), dtype=np.float16)
    for a in range(0, len(index), CHUNK):
        idx = index[a : a + CHUNK]
        p, audio = draw_examples(synth, seed, idx)
        params[a : a + len(idx)] = p.numpy()
        mel[a : a + len(idx)] = log_mel_spectrogram(audio, synth.sample_rate, features["n_mels"],
                                                    features["win_ms"], features["hop_ms"]).numpy()
        if on_chunk:
            on_chunk(len(idx))
    return {"params": params, "mel": mel, "index": index}


ShardTask = tuple[str, int, int, int, int, dict, Any]  # _shard_task's arguments before on_chunk


def _shard_task(out_dir: str, k: int, start: int, stop: int, seed: int, attrs: dict, compression, on_chunk=None):
    """Render shard k and write its file (in a worker, or inline); -> (k, sha256, bytes)."""
    data = render_shard(_WORKER["synth"], _WORKER["features"], seed, start, stop, on_chunk)
    digest, size = sh.write_shard(Path(out_dir) / sh.shard_name(k), data["params"], data["mel"], data["index"],
                                  {**attrs, "shard": k, "start": start, "count": stop - start}, compression)
    return k, digest, size


def feature_settings(synth: Synth, features: dict | None = None) -> dict:
    """The stored feature settings, with the frame count this synth's note length gives."""
    f = {**DEFAULT_FEATURES, **(features or {})}
    f["win_ms"], f["hop_ms"], f["n_mels"] = float(f["win_ms"]), float(f["hop_ms"]), int(f["n_mels"])
    hop = int(round(f["hop_ms"] * synth.sample_rate / 1000))
    f["frames"] = 1 + synth.length // hop
    return f


def plan_manifest(synth: Synth, n: int, seed: int, shard_size: int, features: dict, compression: str | None = sh.COMPRESSION) -> dict:
    """The manifest of a fresh dataset (every shard pending)."""
    return {
        "format": sh.FORMAT,
        "synth": {"name": synth.name, "settings": synth.spec.settings},
        "spec_hash": synth.spec.hash(),
        "seed": int(seed),
        "sample_rate": int(synth.sample_rate),
        "n": int(n),
        "shard_size": int(shard_size),
        "features": features,
        "compression": compression,
        "params_dim": int(synth.spec.size),
        "stored": {"params": "float32 (n, P)", "mel": "float16 (n, n_mels, frames), dB", "index": "int64 (n,)"},
        "bytes_per_example": None,
        "shards": [{"file": sh.shard_name(k), "start": a, "count": b - a, "sha256": None, "bytes": None}
                   for k, (a, b) in enumerate(sh.shard_ranges(n, shard_size))],
    }


def parse_shards(text: str) -> tuple[int, int]:
    """'a:b' -> (a, b): shards a, a+1, ..., b-1 (b may be empty: to the end, as `a:`)."""
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        a = int(parts[0]) if parts[0] else 0
        b = int(parts[1]) if parts[1] else -1
    except ValueError:
        raise sh.DatasetError(f"shards must look like a:b (shards a to b-1, e.g. 0:10), got {text!r}") from None
    return a, b


def open_dataset(out_dir: Path, wanted: dict) -> dict:
    """Create the manifest, or check that the existing one is for the same dataset; -> the manifest."""
    def refusal(existing: dict | None) -> sh.DatasetError | None:
        if existing is None:
            other = sorted(p.name for p in out_dir.iterdir() if p.name != sh.LOCK) if out_dir.is_dir() else []
            if other:
                return sh.DatasetError(f"{out_dir} is not empty and holds no {sh.MANIFEST} (found {other[0]}); "
                                       "choose an empty or new folder")
        elif sh.identity(existing) != sh.identity(wanted):
            return sh.DatasetError(f"{out_dir} holds another dataset ({sh.describe_mismatch(existing, wanted)}); "
                                   "choose another folder or delete it")
        return None

    # refused before the lock file is made: a folder that is not this dataset's is left exactly as it was
    problem = refusal(sh.read_manifest(out_dir)) if out_dir.is_dir() else None
    if problem:
        raise problem
    out_dir.mkdir(parents=True, exist_ok=True)
    with sh.manifest_lock(out_dir):
        existing = sh.read_manifest(out_dir)  # again under the lock: another process may have written it since
        problem = refusal(existing)
        if problem:
            raise problem
        if existing is None:
            sh.write_manifest(out_dir, wanted)
            return wanted
        return existing


def generate(synth_settings: dict, n: int, out_dir: Path | str, seed: int, shard_size: int = 1024, workers: int = 1,
             shards: tuple[int, int] | None = None, progress: bool = True, features: dict | None = None,
             compression: str | None = sh.COMPRESSION) -> GenerateResult:
    """Write (or complete) the dataset of `n` examples of split `seed` in `out_dir`; see the module doc.

    synth_settings: what `synths.from_settings` takes, e.g. {"name": "dexed"} or {"name": "kosc", "k": 4}.
    shards: (a, b) writes only shards a..b-1 (b = -1: to the last), for spreading one dataset over jobs.
    workers: processes rendering shards in parallel (1: in this process, no pool).
    features: log-mel settings (DEFAULT_FEATURES); compression: of the stored mel ("gzip" or None).
    Raises DatasetError (a ValueError) for a manifest of another dataset or a bad shard range, and
    OSError(ENOSPC) for a full disk; in every case the shards finished so far are kept and recorded.
    """
    start_time = time.perf_counter()
    out_dir = Path(out_dir)
    if workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    synth = _build(synth_settings)
    feats = feature_settings(synth, features)
    if compression not in ("gzip", None):
        raise UsageError(f"compression must be 'gzip' or None, got {compression!r}")
    planned = plan_manifest(synth, n, seed, shard_size, feats, compression)
    n_shards = len(planned["shards"])  # an existing manifest must match the plan, so it has as many
    a, b = shards if shards is not None else (0, n_shards)
    b = n_shards if b == -1 else b
    if not 0 <= a < b <= n_shards:  # refused before anything is written: a wrong range must not leave a manifest
        raise sh.DatasetError(f"shard range {a}:{b} is outside this dataset's {n_shards} shards (0:{n_shards})")
    manifest = open_dataset(out_dir, planned)

    result = GenerateResult(out_dir)
    sh.remove_stale_temps(out_dir, range(a, b))
    pending = []
    for k in range(a, b):
        entry = manifest["shards"][k]
        if sh.shard_is_complete(out_dir, entry):
            result.skipped.append(k)
        else:
            pending.append(k)
            if entry.get("sha256"):
                result.rewritten.append(k)
    if result.rewritten:
        manifest = sh.forget_shards(out_dir, result.rewritten)
    full_settings = {"name": synth.name, **synth.spec.settings}
    attrs = {"synth": synth.name, "spec_hash": manifest["spec_hash"], "seed": int(seed)}
    tasks = [(str(out_dir), k, manifest["shards"][k]["start"], manifest["shards"][k]["start"] + manifest["shards"][k]["count"],
              int(seed), attrs, compression) for k in pending]
    total = sum(t[3] - t[2] for t in tasks)

    def finished(k: int, digest: str, size: int) -> None:
        nonlocal manifest
        manifest = sh.record_shard(out_dir, k, digest, size)
        result.written.append(k)
        result.examples += manifest["shards"][k]["count"]
        result.timeline.append((time.perf_counter() - start_time, manifest["shards"][k]["count"]))

    with progress_bar(total, f"{synth.name} -> {out_dir}", enabled=progress) as advance:
        try:
            if workers == 1 or len(tasks) <= 1:
                _run_inline(full_settings, feats, tasks, finished, advance)
            else:
                _run_pool(full_settings, feats, tasks, finished, advance, min(workers, len(tasks)))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                done = sh.completed(manifest)
                raise OSError(errno.ENOSPC, f"disk full while writing to {out_dir}: {done} of {n_shards} shards are "
                                            "complete and kept; free some space and rerun the same command to resume") from exc
            raise
        except BrokenProcessPool:
            done = sh.completed(manifest)
            raise sh.DatasetError(f"a worker process died (out of memory or killed?); {done} of {n_shards} shards "
                                  f"in {out_dir} are complete and kept; rerun the same command to resume") from None

    result.written.sort()
    result.seconds = time.perf_counter() - start_time
    result.bytes_per_example = manifest.get("bytes_per_example")
    result.complete = sh.completed(manifest) == n_shards
    return result


def _run_inline(settings: dict, feats: dict, tasks: list[ShardTask], finished, advance) -> None:
    threads = torch.get_num_threads()
    try:
        _init_worker(settings, feats, in_pool=False)  # also one torch thread, as in the pool, so the numbers are the same
        for task in tasks:
            finished(*_shard_task(*task, on_chunk=advance))
    finally:
        torch.set_num_threads(threads)
        _WORKER.clear()


def _run_pool(settings: dict, feats: dict, tasks: list[ShardTask], finished, advance, workers: int) -> None:
    # "spawn": fresh interpreters, never a fork of a process whose torch/OpenMP threads are running
    pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_init_worker, initargs=(settings, feats))
    futures = {pool.submit(_shard_task, *task): task for task in tasks}
    recorded = set()
    try:
        for future in cf.as_completed(futures):
            finished(*future.result())  # re-raises a worker's exception here
            recorded.add(future)
            task = futures[future]
            advance(task[3] - task[2])
        pool.shutdown(wait=True)  # workers exit before we return (they would compete for the cores)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # let running shards finish, then keep them
        for future in futures:
            if future not in recorded and future.done() and not future.cancelled() and future.exception() is None:
                try:
                    finished(*future.result())
                except Exception:  # pragma: no cover - recording failed too (e.g. the same full disk)
                    pass
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
