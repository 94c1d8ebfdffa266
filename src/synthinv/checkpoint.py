"""Self-contained checkpoints: weights + synth settings + spec (with hash) + config + training metadata."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from synthinv import synths
from synthinv.build import build_model
from synthinv.config import Config, parse_config
from synthinv.errors import SynthinvError
from synthinv.synths import Synth

FORMAT = "synthinv-checkpoint-1"


class CheckpointError(SynthinvError, ValueError):
    """A checkpoint that is missing, not ours, or made for a different synth."""


def save_checkpoint(path: Path, model, synth: Synth, config: Config, meta: dict, state_dict: dict | None = None) -> Path:
    """Write atomically (temp file + rename) so an interrupted save never leaves a half file. The config is
    stored as plain values (Config.to_dict), read back by `stored_config`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "synth": {"name": synth.name, **synth.spec.settings},
        "spec": synth.spec.to_dict(),
        "spec_hash": synth.spec.hash(),
        "config": config.to_dict(),
        "meta": meta,
        "state_dict": state_dict if state_dict is not None else model.state_dict(),
    }
    return write_blob(path, blob)


def write_blob(path: Path, blob: dict) -> Path:
    """A checkpoint's dict written atomically (temp file + rename): an interrupted write leaves no half file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # fileio's naming: errors map it back to `path`
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def safe_load(path: str | Path, what: str = "checkpoint"):
    """A torch file read without running code: torch's weights-only unpickler admits tensors and plain
    containers only, so a crafted file (a pickle whose loading calls a function) is refused, not run."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):  # a pickle naming a function or class to call: refused before it ran
            raise CheckpointError(f"{path} is not a safe {what}: it asks to run code or build objects "
                                  "when opened, so it was not loaded") from None
        raise CheckpointError(f"{path} is not a readable {what} (not a weights-only torch file)") from None
    except Exception as exc:  # torch raises many kinds for a bad file
        raise CheckpointError(f"{path} is not a readable {what} ({type(exc).__name__})") from None


def read_checkpoint(path: str | Path) -> dict:
    """The stored dict, read without running code (`safe_load`)."""
    blob = safe_load(path)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a synthinv checkpoint")
    return blob


def stored_config(blob: dict, path: str | Path = "checkpoint") -> Config:
    """The typed config a checkpoint's blob stores (errors name `path`)."""
    return parse_config(blob["config"], blob["synth"].get("name", "kosc"), source=str(path))


def load_checkpoint(path: str | Path, expect_synth: dict | None = None):
    """-> (model in eval mode, synth, blob). `expect_synth` (e.g. {"name": "kosc", "k": 4}) must match."""
    path = Path(path)
    blob = read_checkpoint(path)
    for key, want in (expect_synth or {}).items():
        have = blob["synth"].get(key)
        if have != want:
            raise CheckpointError(f"{path} was trained for synth {key}={have!r}, not {want!r}")
    try:
        synth = synths.from_settings(blob["synth"])
    except (SynthinvError, KeyError, TypeError, ValueError) as exc:  # settings this synthinv cannot build
        raise CheckpointError(f"{path}: cannot build its synth {blob['synth'].get('name')!r} ({exc})") from None
    if synth.spec.hash() != blob["spec_hash"]:
        raise CheckpointError(f"{path} has parameter spec {blob['spec_hash']}, this synth has {synth.spec.hash()}")
    model = build_model(stored_config(blob, path), synth)
    model.load_state_dict(blob["state_dict"])
    return model.eval(), synth, blob
