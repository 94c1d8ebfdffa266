"""Dataset directories: HDF5 shards written atomically, a manifest, validation, and a torch Dataset.

A dataset directory holds `manifest.json` and shards `shard_00000.h5`, `shard_00001.h5`, ...; shard k
holds examples k * shard_size .. min(n, (k + 1) * shard_size) - 1 as three HDF5 datasets:

    params  (count, P)               float32  normalised synth parameters (spec.size columns)
    mel     (count, n_mels, frames)  float16  log-mel power in dB (synthinv.features.log_mel_spectrogram),
                                              gzip-compressed per example (manifest "compression")
    index   (count,)                 int64    example indices (every example is a pure function of (seed, index))

Audio is not stored: it is re-rendered deterministically from `params` when needed.

A shard is written to a temporary file in the same directory and renamed (`os.replace`), so it is either
complete or absent. The manifest lists every planned shard; a finished one carries its sha256 and size.
It is rewritten atomically under a lock (`fcntl.flock` on `.lock`), so several processes generating
disjoint shard ranges (`--shards a:b`, e.g. a SLURM array) may share one directory.

    problems = check(out_dir)             # [] when every shard is present and valid
    ds = ShardDataset(out_dir)            # ds[i] -> (params (P,), mel (n_mels, frames)) float32 tensors
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import torch

from synthinv.errors import SynthinvError
from synthinv.fileio import write_json_atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, so run one generating process per directory
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
FORMAT = "synthinv-dataset/1"
LOCK = ".lock"
COMPRESSION = "gzip"  # of the mel array: "gzip" (shuffle + gzip 4, one chunk per example) or None


class DatasetError(SynthinvError, ValueError):
    """A dataset directory or shard that cannot be used as asked (one-line message)."""


def shard_name(k: int) -> str:
    return f"shard_{k:05d}.h5"


def shard_ranges(n: int, shard_size: int) -> list[tuple[int, int]]:
    """[(start, stop), ...] of every shard of an n-example dataset."""
    if n <= 0 or shard_size <= 0:
        raise DatasetError(f"n and shard_size must be positive, got n={n}, shard_size={shard_size}")
    return [(s, min(n, s + shard_size)) for s in range(0, n, shard_size)]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- the manifest -----------------------------------------------------------------------------------


def read_manifest(out_dir: Path) -> dict | None:
    """The manifest of `out_dir`, or None where there is none; DatasetError if it is not readable."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DatasetError(f"{path} is not a readable manifest ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a synthinv dataset manifest (format {manifest.get('format') if isinstance(manifest, dict) else None!r})")
    problem = manifest_problem(manifest)
    if problem:
        raise DatasetError(f"{path} is not a valid dataset manifest ({problem}); was it edited? "
                           "Rerun `synthinv generate` into a new folder")
    return manifest


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def manifest_problem(manifest: dict) -> str | None:
    """What is wrong with a manifest's structure, in words, or None: everything that reads it (check,
    generate, training) may then index it without a KeyError or TypeError."""
    for key in ("n", "shard_size", "seed", "params_dim"):
        if not _is_int(manifest.get(key)) or (key != "seed" and manifest[key] <= 0):
            return f"{key!r} is {manifest.get(key)!r}, not a positive integer" if key != "seed" else "no integer 'seed'"
    if not isinstance(manifest.get("spec_hash"), str):
        return "no 'spec_hash'"
    synth = manifest.get("synth")
    if not isinstance(synth, dict) or not isinstance(synth.get("name"), str) or not isinstance(synth.get("settings", {}), dict):
        return "'synth' is not {name, settings}"
    features = manifest.get("features")
    if not isinstance(features, dict) or not all(_is_int(features.get(k)) and features[k] > 0 for k in ("n_mels", "frames")):
        return "'features' lacks positive integer n_mels and frames"
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not shards:
        return "no 'shards' list"
    start = 0
    for k, entry in enumerate(shards):
        if not isinstance(entry, dict):
            return f"shard entry {k} is not an object"
        name = entry.get("file")
        # a bare file name: a manifest must not point outside its folder
        if not isinstance(name, str) or not name or name != Path(name).name or name.startswith("."):
            return f"shard entry {k} has file {name!r}, not a file name in the dataset folder"
        if entry.get("start") != start or not _is_int(entry.get("count")) or entry["count"] <= 0:
            return f"shard entry {k} ({name}) does not continue at example {start} with a positive count"
        if not (entry.get("sha256") is None or isinstance(entry["sha256"], str)) or \
                not (entry.get("bytes") is None or _is_int(entry["bytes"])):
            return f"shard entry {k} ({name}) has a malformed sha256 or size"
        start += entry["count"]
    if start != manifest["n"]:
        return f"its shards hold {start} examples, not n = {manifest['n']}"
    return None


def write_manifest(out_dir: Path, manifest: dict) -> None:
    """Atomically (temp file + rename) write `manifest`."""
    write_json_atomic(Path(out_dir) / MANIFEST, manifest, indent=1)


@contextlib.contextmanager
def manifest_lock(out_dir: Path):
    """Exclusive lock for read-modify-write of the manifest (no-op where fcntl is missing)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(Path(out_dir) / LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _existing_manifest(out_dir: Path) -> dict:
    """read_manifest where generate has written one (it is missing only if deleted meanwhile)."""
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise DatasetError(f"{Path(out_dir) / MANIFEST} has gone; rerun `synthinv generate`")
    return manifest


def record_shard(out_dir: Path, k: int, sha256: str, size: int) -> dict:
    """Mark shard k complete in the manifest (under the lock) and update bytes per example."""
    with manifest_lock(out_dir):
        manifest = _existing_manifest(out_dir)
        manifest["shards"][k].update(sha256=sha256, bytes=size)
        done = [s for s in manifest["shards"] if s.get("sha256")]
        manifest["bytes_per_example"] = round(sum(s["bytes"] for s in done) / sum(s["count"] for s in done), 1)
        write_manifest(out_dir, manifest)
    return manifest


def forget_shards(out_dir: Path, ks) -> dict:
    """Clear the records of shards `ks` (about to be rewritten), so the manifest never vouches for a file
    that is missing or being replaced; -> the manifest."""
    with manifest_lock(out_dir):
        manifest = _existing_manifest(out_dir)
        for k in ks:
            manifest["shards"][k].update(sha256=None, bytes=None)
        write_manifest(out_dir, manifest)
    return manifest


def completed(manifest: dict) -> int:
    """Number of shards the manifest records as written."""
    return sum(1 for s in manifest["shards"] if s.get("sha256"))


def identity(manifest: dict) -> dict:
    """What must match for two runs to write the same dataset."""
    keys = ("synth", "spec_hash", "seed", "sample_rate", "n", "shard_size", "features", "compression")
    return {k: manifest.get(k) for k in keys}


def describe_mismatch(existing: dict, wanted: dict) -> str:
    """'seed 0 vs 1; synth settings (prior 'uniform' vs 'patch')': what differs between two manifests."""
    a, b = identity(existing), identity(wanted)
    diffs: list[str] = []
    for key in a:
        if a[key] == b[key] or (key == "spec_hash" and diffs):  # a settings change also changes the hash
            continue
        if key == "synth" and (a[key] or {}).get("name") == (b[key] or {}).get("name"):
            old, new = a[key].get("settings", {}), b[key].get("settings", {})
            changed = [f"{k} {old.get(k)!r} vs {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
            diffs.append(f"synth settings: {', '.join(changed)}")
        elif key == "synth":
            diffs.append(f"synth {(a[key] or {}).get('name')!r} vs {(b[key] or {}).get('name')!r}")
        else:
            diffs.append(f"{key} {a[key]!r} vs {b[key]!r}")
    return "; ".join(diffs)


# --- shard files ------------------------------------------------------------------------------------


def write_shard(path: Path, params: np.ndarray, mel: np.ndarray, index: np.ndarray, attrs: dict,
                compression: str | None = COMPRESSION) -> tuple[str, int]:
    """Write one shard atomically (temp file in the same folder, then os.replace); -> (sha256, bytes).

    With compression="gzip" the mel array is stored in one HDF5 chunk per example, byte-shuffled and
    gzip level 4 compressed: about 2.7x smaller (many log-mel cells sit on the -100 dB floor), for about a
    tenth more CPU time per example; reading one example decompresses one chunk.

    The bytes are a pure function of the inputs (no timestamps), so regenerated shards are bit-identical.
    A failure (e.g. a full disk) removes the temporary file and re-raises; the final path is never partial.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("params", data=np.asarray(params, dtype=np.float32), track_times=False)
            mel = np.asarray(mel, dtype=np.float16)
            packed = {"chunks": (1, *mel.shape[1:]), "compression": "gzip", "compression_opts": 4, "shuffle": True}
            f.create_dataset("mel", data=mel, track_times=False, **(packed if compression and len(mel) else {}))
            f.create_dataset("index", data=np.asarray(index, dtype=np.int64), track_times=False)
            for key, value in attrs.items():
                f.attrs[key] = value
        with open(tmp, "rb+") as f:  # data on disk before the rename makes it visible
            os.fsync(f.fileno())
        digest, size = file_sha256(tmp), tmp.stat().st_size
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest, size


def remove_stale_temps(out_dir: Path, ks) -> None:
    """Delete temporary files left by killed runs for shards `ks` (only those: other processes may be
    writing other shards of the same directory)."""
    for k in ks:
        for tmp in Path(out_dir).glob(f".{shard_name(k)}.*.tmp"):
            tmp.unlink(missing_ok=True)


def shard_is_complete(out_dir: Path, entry: dict) -> bool:
    """True when the manifest marks the shard done and the file has the recorded size and sha256."""
    path = Path(out_dir) / entry["file"]
    if not entry.get("sha256") or not path.is_file() or path.stat().st_size != entry.get("bytes"):
        return False
    return file_sha256(path) == entry["sha256"]


def check_shard(out_dir: Path, entry: dict, manifest: dict) -> list[str]:
    """Problems of one shard (one line each): missing, wrong checksum, unreadable, shapes, index, values."""
    path = Path(out_dir) / entry["file"]
    name = entry["file"]
    if not entry.get("sha256"):
        return [f"{name}: not generated yet (rerun generate to complete the dataset)"]
    if not path.is_file():
        return [f"{name}: missing (the manifest says it was written)"]
    mismatch = path.stat().st_size != entry["bytes"] or file_sha256(path) != entry["sha256"]
    problem = [f"{name}: sha256 or size differs from the manifest (truncated or corrupt; rerun generate to rewrite it)"] if mismatch else []
    count, start = entry["count"], entry["start"]
    feats = manifest["features"]
    want = {"params": ((count, manifest["params_dim"]), np.float32),
            "mel": ((count, feats["n_mels"], feats["frames"]), np.float16),
            "index": ((count,), np.int64)}
    try:
        with h5py.File(path, "r") as f:
            for key, (shape, dtype) in want.items():
                if key not in f:
                    problem.append(f"{name}: no {key!r} dataset")
                    continue
                data = f[key]
                if data.shape != shape or data.dtype != dtype:
                    problem.append(f"{name}: {key} is {data.dtype}{list(data.shape)}, expected {np.dtype(dtype)}{list(shape)}")
                    continue
                values = data[()]
                if key == "index" and not np.array_equal(values, np.arange(start, start + count)):
                    problem.append(f"{name}: index is not {start}..{start + count - 1}")
                elif key != "index" and not np.isfinite(values).all():
                    problem.append(f"{name}: {key} has {int((~np.isfinite(values)).sum())} non-finite values")
                elif key == "params" and np.abs(values).max(initial=0) > 1:
                    problem.append(f"{name}: params outside [-1, 1]")
    except (OSError, KeyError, ValueError) as exc:
        reason = str(exc).split("(")[-1].rstrip(")").strip() or type(exc).__name__  # h5py nests its messages in ()
        what = "truncated or corrupt, " if mismatch else ""
        return [f"{name}: {what}cannot be read as HDF5 ({reason}); rerun generate to rewrite it"]
    return problem


def quick_check_shard(out_dir: Path, entry: dict, manifest: dict) -> str | None:
    """What makes a finished shard unusable for training, or None: missing, a size or sha256 other than the
    manifest's, or parameters that are not finite numbers in [-1, 1] (what the optimiser would choke on).
    Cheaper than `check_shard`: hashing a file is much faster than decompressing its log-mels, whose
    values the training loop checks as it reads them (`finite_problem`)."""
    path = Path(out_dir) / entry["file"]
    if not path.is_file():
        return "missing (the manifest says it was written)"
    if path.stat().st_size != entry.get("bytes"):
        return f"{path.stat().st_size} bytes where the manifest says {entry.get('bytes')} (truncated or replaced)"
    if file_sha256(path) != entry["sha256"]:
        return "sha256 differs from the manifest (corrupt)"
    want = {"params": (entry["count"], manifest["params_dim"]),
            "mel": (entry["count"], manifest["features"]["n_mels"], manifest["features"]["frames"])}
    try:
        with h5py.File(path, "r") as f:
            for key, shape in want.items():
                if key not in f or f[key].shape != shape:
                    return f"{key} is {list(f[key].shape) if key in f else 'missing'}, expected {list(shape)}"
            return finite_problem({"params": f["params"][()]})
    except (OSError, KeyError, ValueError) as exc:
        return f"cannot be read as HDF5 ({str(exc).split('(')[-1].rstrip(')').strip() or type(exc).__name__})"


def finite_problem(arrays: dict[str, np.ndarray]) -> str | None:
    """'params has 3 non-finite values' (or values outside [-1, 1]) for shard arrays, or None."""
    for key, values in arrays.items():
        bad = int(values.size - np.isfinite(values).sum())
        if bad:
            return f"{key} has {bad} non-finite values"
        if key == "params" and np.abs(values).max(initial=0) > 1:
            return "params outside [-1, 1]"
    return None


def shard_error(out_dir: Path, entry: dict, problem: str) -> DatasetError:
    """The one-line refusal for an unusable shard: which file, what is wrong, what to do."""
    return DatasetError(f"{Path(out_dir) / entry['file']}: {problem}; run `synthinv data check {out_dir}` and rerun "
                        "`synthinv generate` with the dataset's options to rewrite it")


def check(out_dir: Path) -> list[str]:
    """Validate a dataset directory: every shard in the manifest opens, has the right shapes, count,
    indices and sha256, and holds finite values. -> problems, one line each ([] when all is well)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return [f"{out_dir}: no such directory"]
    try:
        manifest = read_manifest(out_dir)
    except DatasetError as exc:
        return [str(exc)]
    if manifest is None:
        return [f"{out_dir}: no {MANIFEST} (not a synthinv dataset)"]
    problems = []
    for entry in manifest["shards"]:
        problems += check_shard(out_dir, entry, manifest)
    return problems


def load_shard(path: Path) -> dict[str, np.ndarray]:
    """A whole shard as arrays: {"params", "mel", "index"}."""
    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in ("params", "mel", "index")}


# --- reading for training ---------------------------------------------------------------------------


class ShardDataset(torch.utils.data.Dataset):
    """The finished shards of a dataset directory as a map-style torch Dataset.

    `ds[i] -> (params (P,), mel (n_mels, frames))` float32 tensors, i over the examples of the complete
    shards in index order (a dataset still being generated gives the shards finished so far; `indices`
    maps positions to example indices). Files are opened lazily, once per process, so it works with
    DataLoader workers. `verify`: refuse (DatasetError naming the shard) a recorded shard that is missing,
    fails its checksum or holds unusable parameters (`quick_check_shard`), rather than fail mid-run.

        ds = ShardDataset("data/dexed")
        loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2)
    """

    def __init__(self, out_dir: Path | str, verify: bool = False):
        self.out_dir = Path(out_dir)
        manifest = read_manifest(self.out_dir)
        if manifest is None:
            raise DatasetError(f"{self.out_dir} holds no {MANIFEST}; generate a dataset there first")
        self.manifest: dict = manifest
        if verify:  # every shard the manifest records as written must be there and intact
            self.shards = [e for e in self.manifest["shards"] if e.get("sha256")]
            for entry in self.shards:
                problem = quick_check_shard(self.out_dir, entry, self.manifest)
                if problem:
                    raise shard_error(self.out_dir, entry, problem)
        else:
            self.shards = [e for e in self.manifest["shards"] if e.get("sha256") and (self.out_dir / e["file"]).is_file()]
        if not self.shards:
            raise DatasetError(f"{self.out_dir} has no finished shards yet")
        self._offsets = np.cumsum([0] + [e["count"] for e in self.shards])
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def indices(self) -> np.ndarray:
        """Example index (seed-relative) of every position (len,)."""
        return np.concatenate([np.arange(e["start"], e["start"] + e["count"]) for e in self.shards])

    def _file(self, s: int) -> h5py.File:
        if os.getpid() != self._pid:  # a DataLoader worker: never share HDF5 handles across processes
            self._files, self._pid = {}, os.getpid()
        if s not in self._files:
            self._files[s] = h5py.File(self.out_dir / self.shards[s]["file"], "r")
        return self._files[s]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} examples")
        s = bisect.bisect_right(self._offsets, i) - 1
        f, j = self._file(s), i - int(self._offsets[s])
        params = torch.from_numpy(f["params"][j])
        mel = torch.from_numpy(f["mel"][j].astype(np.float32))
        return params, mel

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"] = {}
        return state
