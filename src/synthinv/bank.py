"""A bank of rendered prior patches per synth spec, and nearest-neighbour lookup in it.

A lookup among a few thousand random patches out-sounds a model that has not learned the synth (see
results/invert_search.md), and it costs one matrix product per query, so `invert` proposes the bank's
nearest patches beside the model's samples. The bank is built once per (synth spec, seed, size), cached in
the user's cache folder, and reused by every later `invert` and `evaluate`.

Contents (an .npz): params (n, P) float16 (exact for grids of up to ~1000 steps, which every discrete
parameter of our synths is), embedding (n, D) float16 and a JSON header (spec hash, seed, size, embedding
settings). Row i is `draw_examples(synth, seed, [i])`: a pure function of (seed, i), so a bank is the same
on every machine; BANK_SEED is a split of its own, disjoint from training, validation and test seeds.

Embedding: a gain-blind log-mel (dB relative to the note's own peak, floored 80 dB below it, like MSS),
64 mel bands, averaged over EMBED_SEGMENTS equal stretches of the note: timbre and envelope, not level.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthinv.errors import SynthinvError
from synthinv.metrics import relative_log_mel
from synthinv.progress import progress_bar
from synthinv.synths.base import Synth, draw_examples
from synthinv.workers import SynthPool

BANK_SEED = 5_000_029
# seeds examples are drawn from elsewhere: the dataset splits of scripts/dexed_experiment.py (1, 2, 3) and
# evaluation's VAL_SEED, TEST_SEED, RANDOM_BASELINE_SEED; the bank must not share one
RESERVED_SEEDS = (1, 2, 3, 2_000_003, 3_000_017, 4_000_037)
DEFAULT_BANK_SIZE = 16384  # $SYNTHINV_BANK_SIZE overrides it (tests use a tiny bank)
MAX_BANK_SIZE = 1 << 20
EMBED: dict[str, Any] = {"version": 1, "n_mels": 64, "win_ms": 25.0, "hop_ms": 10.0, "segments": 16}
CHUNK = 1024  # examples per job and per resumable part file


class BankError(SynthinvError):
    """A bank that cannot be built or used (bad size or seed, a bank of another synth)."""


def cache_dir() -> Path:
    """$SYNTHINV_CACHE, else $XDG_CACHE_HOME/synthinv, else ~/.cache/synthinv."""
    if os.environ.get("SYNTHINV_CACHE"):
        return Path(os.environ["SYNTHINV_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "synthinv"


def embed(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """audio (N, T) -> (N, n_mels * segments) float32: the relative log-mel averaged over equal stretches."""
    mel = relative_log_mel(audio, sample_rate, EMBED["win_ms"], EMBED["hop_ms"], EMBED["n_mels"])  # (N, M, F)
    segments = torch.tensor_split(mel, EMBED["segments"], dim=-1)
    return torch.stack([s.mean(dim=-1) for s in segments], dim=-1).flatten(1)  # (N, M * S)


def _bank_chunk(synth: Synth, seed: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    params, audio = draw_examples(synth, seed, np.arange(start, stop))
    return params.numpy().astype(np.float16), embed(audio, synth.sample_rate).numpy().astype(np.float16)


@dataclass
class Bank:
    params: torch.Tensor  # (n, P) float32 (stored as float16)
    embedding: torch.Tensor  # (n, D) float32
    header: dict

    def __len__(self) -> int:
        return len(self.params)

    def nearest(self, audio: torch.Tensor, sample_rate: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """target audio (T,) -> (indices (k,), squared L2 embedding distances (k,)), nearest first.
        Brute force: one (n, D) product, milliseconds for 65,536 patches (benchmarks/bench_bank.py)."""
        return self.nearest_embedding(embed(audio.reshape(1, -1), sample_rate)[0], k)

    def nearest_embedding(self, query: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """query (D,) -> (indices (k,), squared L2 distances (k,)), nearest first."""
        d2 = self._norms - 2 * (self.embedding @ query) + query.square().sum()  # (n,)
        k = min(k, len(self))
        d2, idx = torch.topk(d2, k, largest=False)
        return idx, d2

    def __post_init__(self):
        self._norms = self.embedding.square().sum(dim=1)  # (n,)


def default_bank_size() -> int:
    raw = os.environ.get("SYNTHINV_BANK_SIZE")
    if raw is None:
        return DEFAULT_BANK_SIZE
    try:
        return int(raw)
    except ValueError:
        raise BankError(f"SYNTHINV_BANK_SIZE must be a whole number of patches, not {raw!r}") from None


def bank_path(synth: Synth, n: int, seed: int = BANK_SEED) -> Path:
    return cache_dir() / "banks" / f"{synth.name}-{synth.spec.hash()}-seed{seed}-n{n}.npz"


def check_bank_request(n: int, seed: int, reserved: tuple[int, ...] = ()) -> None:
    if not 1 <= n <= MAX_BANK_SIZE:
        raise BankError(f"a bank holds 1 to {MAX_BANK_SIZE} patches, not {n}")
    if seed in RESERVED_SEEDS + tuple(reserved):
        raise BankError(f"bank seed {seed} is a training, validation or test split's seed; use another")


def build_bank(synth: Synth, n: int = DEFAULT_BANK_SIZE, seed: int = BANK_SEED, workers: int | None = None,
               path: Path | None = None, show_progress: bool = True) -> Path:
    """Render n prior patches and store their embedding. Resumable: finished chunks are kept in a
    .parts folder beside the bank until it is complete; the bank file appears atomically."""
    check_bank_request(n, seed)
    path = Path(path) if path else bank_path(synth, n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second build of the same bank waits, then finds it made
        if not path.exists():
            _build(synth, n, seed, workers, path, show_progress)
    return path


def _build(synth: Synth, n: int, seed: int, workers: int | None, path: Path, show_progress: bool) -> None:
    parts = path.with_name(f"{path.stem}.v{EMBED['version']}.parts")  # parts of another version are not reused
    parts.mkdir(exist_ok=True)
    header = {"format": "synthinv-bank-1", "synth": synth.name, "spec_hash": synth.spec.hash(), "seed": seed,
              "n": n, "embedding": EMBED, "sample_rate": synth.sample_rate}
    chunks = [(seed, s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    todo = [c for c in chunks if not (parts / f"{c[1]:08d}.npz").exists()]
    with SynthPool(synth, workers) as pool, progress_bar(n, f"bank of {n} {synth.name} patches",
                                                         enabled=None if show_progress else False) as advance:
        advance(n - sum(c[2] - c[1] for c in todo))
        step = max(1, pool.workers)
        for i in range(0, len(todo), step):
            batch = todo[i: i + step]
            for (_, start, stop), (params, emb) in zip(batch, pool.map(_bank_chunk, batch)):
                tmp = parts / f".{start:08d}.tmp.npz"
                np.savez(tmp, params=params, embedding=emb)
                os.replace(tmp, parts / f"{start:08d}.npz")
                advance(stop - start)
    params, emb = [], []
    for _, start, _ in chunks:
        with np.load(parts / f"{start:08d}.npz") as z:  # closed at once: a big bank has a thousand parts
            params.append(z["params"])
            emb.append(z["embedding"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, params=np.concatenate(params), embedding=np.concatenate(emb), header=np.array(json.dumps(header)))
    os.replace(tmp, path)
    shutil.rmtree(parts, ignore_errors=True)


def load_bank(path: Path, synth: Synth) -> Bank:
    """Read and check a bank file; BankError names what is wrong (corrupt, another synth or spec)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            params, emb = z["params"], z["embedding"]
        n = int(header["n"])  # a header that is not ours fails here too, and the bank is rebuilt
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise BankError(f"bank {path} is corrupt ({type(exc).__name__})") from None
    if header.get("spec_hash") != synth.spec.hash() or header.get("synth") != synth.name:
        raise BankError(f"bank {path} was built for {header.get('synth')} spec {header.get('spec_hash')}, "
                        f"not {synth.name} spec {synth.spec.hash()}")
    if header.get("embedding") != EMBED or params.shape != (n, synth.spec.size) or len(emb) != n:
        raise BankError(f"bank {path} is corrupt or from another version (shapes or embedding settings differ)")
    if not (np.isfinite(params).all() and np.isfinite(emb).all()):
        raise BankError(f"bank {path} is corrupt (non-finite values)")
    return Bank(torch.from_numpy(params.astype(np.float32)), torch.from_numpy(emb.astype(np.float32)), header)


def get_bank(synth: Synth, n: int | None = None, seed: int = BANK_SEED, workers: int | None = None,
             say=print, show_progress: bool = True, reserved: tuple[int, ...] = ()) -> Bank:
    """The cached bank for this synth spec, built first if missing; a corrupt one is rebuilt. `reserved`:
    more seeds the bank must not share (the model's training split)."""
    n = default_bank_size() if n is None else n
    check_bank_request(n, seed, reserved)
    path = bank_path(synth, n, seed)
    if path.exists():
        try:
            return load_bank(path, synth)
        except BankError as exc:
            say(f"{exc}: rebuilding it")
            path.unlink()
    else:
        say(f"building the {synth.name} patch bank once ({n} patches, cached in {path.parent})")
    return load_bank(build_bank(synth, n, seed, workers, path, show_progress), synth)
