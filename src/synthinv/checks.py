"""Cheap checks of what a command was given, run before a model is loaded or any work is done.

A mistake in an option, an output path or an input file should cost a second and leave nothing behind,
not surface after minutes of sampling (or as a traceback while writing the results). Every check raises a
SynthinvError subclass (OutputExistsError for an output that is in the way) with a one-line message that
names the option or the path as the user gave it. The option names are the command's; library callers pass
`prefix=""` where a check names options, so their messages name the argument instead ("candidates").

    check_invert(sound, out, candidates=8, steps=50, guidance=None, refine=0, truth=None, force=False)
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from synthinv.errors import OutputExistsError, UsageError

# Candidates are sampled, rendered and scored as one batch (and evaluate does so for every test sound):
# 1024 Dexed notes are about 270 MB of audio already; far more only ends in a failed allocation.
MAX_CANDIDATES = 1024
# evaluate renders its n test sounds (and as many random patches) at once.
MAX_EVAL_EXAMPLES = 8192
MAX_BATCH_SIZE = 65536
# generate holds a whole shard in memory (38.6 kB of Dexed log-mel per example) and lists every shard in its
# manifest: caps far above real use that stop a typo from allocating gigabytes.
MAX_SHARD_SIZE = 16384
MAX_SHARDS = 100_000
MAX_WORKERS = 512
MAX_THREADS = 1024
MAX_NAME_BYTES = 220  # 255, less room for the ".NAME.partial-PID" temporary name output is written under first
# Seeds feed numpy (uint32 for seeding, uint64 hashing) and torch; this range means the same in all of them.
MAX_SEED = 2**31 - 1


def check_count(flag: str, value: int | None, low: int = 1, high: int | None = None, why: str = "") -> None:
    """An integer option within [low, high] (None: not given, nothing to check)."""
    if value is None:
        return
    if value < low or (high is not None and value > high):
        span = f"at least {low}" + (f" and at most {high}" if high is not None else "")
        raise UsageError(f"{flag} must be {span}, got {value}" + (f" ({why})" if why else ""))


def check_number(flag: str, value: float | None, positive: bool = False) -> None:
    """A float option that is finite (nan and inf parse as floats but mean nothing here), and > 0 if asked."""
    if value is None:
        return
    if not math.isfinite(value):
        raise UsageError(f"{flag} must be a finite number, got {value}")
    if positive and value <= 0:
        raise UsageError(f"{flag} must be a positive number, got {value}")


def check_sampling(candidates: int, steps: int, guidance: float | None, refine: int = 0, prefix: str = "--") -> None:
    """invert's (and evaluate's) sampling options; `prefix` goes before their names in messages."""
    check_count(f"{prefix}candidates", candidates, 1, MAX_CANDIDATES, "they are sampled and rendered as one batch")
    check_count(f"{prefix}steps", steps, 1)
    check_number(f"{prefix}guidance", guidance)
    check_count(f"{prefix}refine", refine, 0, why="a render budget; 0 turns refinement off")


def check_seed(seed: int | None) -> None:
    check_count("--seed", seed, 0, MAX_SEED)


def check_threads(threads: int | None) -> None:
    check_count("--threads", threads, 1, MAX_THREADS)


def check_device(device: str) -> None:
    """cpu, or cuda[:N] where torch sees that GPU (Lightning would fail only after the model is built)."""
    if device == "cpu":
        return
    if device != "cuda" and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise UsageError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    import torch

    index = int(device[5:]) if ":" in device else 0
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: no such CUDA device here (torch sees {torch.cuda.device_count()}); "
                         "use --device cpu")


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")  # pragma: no cover - the root always exists


def check_name_lengths(path: Path, flag: str = "--out") -> None:
    """File systems take names of at most 255 bytes, and output is first written under a longer temporary
    name; checked before the path is even looked at (that would fail too, with the system's words)."""
    for part, limit in [(part, 255) for part in path.parts[:-1]] + [(path.name, MAX_NAME_BYTES)]:
        if len(os.fsencode(part)) > limit:
            raise UsageError(f"cannot write {flag} {path}: the name {part[:24]}... is longer than {limit} bytes")


def check_writable(path: Path, flag: str = "--out") -> None:
    """`path` (absent or present) can be created or replaced: its nearest existing folder is a folder we
    can write in. Tried for real with a probe folder (removed at once), because permission bits do not
    tell about read-only mounts, /proc or a root user."""
    check_name_lengths(path, flag)
    where = _nearest_existing(path.parent if path.exists() else path)
    if not where.is_dir():
        raise UsageError(f"cannot write {flag} {path}: {where} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".synthinv-probe-", dir=where))
    except OSError as exc:
        raise UsageError(f"cannot write {flag} {path}: {where} is not writable ({exc.strerror or exc})") from None


def check_not_holding(out: Path, inputs=(), flag: str = "--out") -> None:
    """Refuse an output folder that --force would delete together with the inputs, the working directory or
    the home folder (`--out . --force` must not empty the current folder)."""
    target = out.resolve()
    kept = [(Path.cwd(), "the current folder"), (Path.home(), "your home folder")]
    kept += [(Path(p), str(p)) for p in inputs if p is not None]
    for path, what in kept:
        path = path.resolve()
        if target == path or target in path.parents:
            raise UsageError(f"{flag} {out} holds {what}, which replacing it would delete; choose another {flag}")


def check_out_folder(out: Path, force: bool, inputs=(), flag: str = "--out", empty_ok: bool = False) -> None:
    """An output folder that will be written whole (or replaced with --force): not a file, not in the
    way without --force (`empty_ok`: an empty one is fine), not holding the inputs, writable."""
    out = Path(out)
    check_name_lengths(out, flag)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutputExistsError(f"{out} exists and is not a directory; choose another {flag}")
        if not force and not (empty_ok and not any(out.iterdir())):
            what = "already exists and is not empty" if empty_ok else "already exists"
            raise OutputExistsError(f"{out} {what}; pass --force to overwrite it or choose another {flag}")
        check_not_holding(out, inputs, flag)
    check_writable(out, flag)


def check_out_file(out: Path, force: bool, flag: str = "--out") -> None:
    """An output file: not a folder, not in the way without --force, its folder creatable and writable."""
    out = Path(out)
    check_name_lengths(out, flag)
    if out.is_dir():
        raise OutputExistsError(f"{flag} {out} is a folder; give a file name")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; pass --force to overwrite it")
    check_writable(out, flag)


def check_truth(truth: Path | None) -> None:
    """A --truth preset that is readable JSON with finite normalised values (its length is checked against
    the synth once the checkpoint says which synth it is)."""
    if truth is None:
        return
    from synthinv.presets import preset_values

    preset_values(truth)


def check_sound(sound: Path) -> None:
    """The sound is readable audio with a non-silent part (synthinv.audio_io.read_mono)."""
    from synthinv.audio_io import read_mono

    read_mono(sound)


def check_invert(sound: Path, out: Path, candidates: int = 8, steps: int = 50, guidance: float | None = None,
                 refine: int = 0, truth: Path | None = None, force: bool = False, threads: int | None = None,
                 model: str | None = None, seed: int | None = None) -> None:
    """Everything `synthinv invert` can check before loading a model, cheapest first."""
    check_sampling(candidates, steps, guidance, refine)
    check_threads(threads)
    check_seed(seed)
    check_out_folder(out, force, inputs=(sound, truth, model if model and Path(model).exists() else None))
    check_truth(truth)
    check_sound(sound)


def check_generate(n: int, shard_size: int, workers: int, out: Path, seed: int = 0) -> None:
    """`synthinv generate`'s sizes and output folder (which it may resume into, so an existing one is fine)."""
    check_count("--n", n, 1)
    check_seed(seed)
    check_count("--shard-size", shard_size, 1, MAX_SHARD_SIZE, "a shard is rendered in memory")
    check_count("--workers", workers, 1, MAX_WORKERS)
    if -(-n // shard_size) > MAX_SHARDS:
        raise UsageError(f"--n {n} in shards of {shard_size} makes {-(-n // shard_size)} shards, more than "
                         f"{MAX_SHARDS}; pass a larger --shard-size")
    out = Path(out)
    check_name_lengths(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a directory; choose another --out")
    check_writable(out)
