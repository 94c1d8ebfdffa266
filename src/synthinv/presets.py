"""Preset files. JSON works for every synth (`write_json_preset`, `read_json_preset`); a synth's own format
comes from the synth (`Synth.write_preset`: Dexed's DX7 sysex, synths.dx7_sysex, whose readers and
writers are re-exported here; a VST plugin's state).

    write_json_preset("best.json", synth, params[0])
    write_native_preset("best/", synth, params[0])              # best/preset.syx for Dexed; None for k-osc
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from synthinv.errors import PresetError
from synthinv.synths.base import Synth
from synthinv.synths.dx7_sysex import (  # noqa: F401 - re-exported: the DX7 sysex files live with the synth
    read_syx_bank,
    read_syx_voice,
    voice_sysex,
    write_syx_bank,
    write_syx_voice,
)


def preset_dict(synth: Synth, params: torch.Tensor) -> dict:
    """params: (P,) normalised -> a self-describing preset: native values by name plus the raw vector."""
    native = synth.spec.decode(params[None].float())[0]
    return {
        "synth": synth.name,
        "settings": synth.spec.settings,
        "spec_hash": synth.spec.hash(),
        "parameters": {name: round(float(v), 6) for name, v in zip(synth.spec.names, native)},
        "normalised": [round(float(v), 6) for v in params.clamp(-1, 1)],
    }


def write_json_preset(path: Path, synth: Synth, params: torch.Tensor) -> Path:
    Path(path).write_text(json.dumps(preset_dict(synth, params), indent=2))
    return Path(path)


def preset_values(path: Path) -> tuple[dict, list[float]]:
    """-> (the preset's JSON object, its normalised values), refusing anything `write_json_preset` could not
    have written: not JSON, no "normalised" list, values that are not finite numbers in [-1, 1]."""
    if not Path(path).is_file():
        raise PresetError(f"preset file not found: {path}")
    try:
        data = json.loads(Path(path).read_text())
        values = data["normalised"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, TypeError, KeyError):
        raise PresetError(f"{path} is not a synthinv JSON preset") from None
    if not isinstance(values, list) or not values:
        raise PresetError(f"{path} is not a synthinv JSON preset (\"normalised\" is not a list of numbers)")
    for i, v in enumerate(values):
        # bool is an int to Python; JSON's NaN/Infinity parse as floats
        if isinstance(v, bool) or not isinstance(v, (int, float)) or abs(v) > 1 or not math.isfinite(v):
            raise PresetError(f"{path}: normalised value #{i} is {json.dumps(v)[:40]}, not a number in [-1, 1]")
    return data, [float(v) for v in values]


def read_json_preset(path: Path, synth: Synth) -> torch.Tensor:
    """-> (P,) normalised parameters; refuses a preset written for another synth or spec, or not one at all."""
    data, values = preset_values(path)
    spec_hash = data.get("spec_hash")
    if spec_hash != synth.spec.hash():
        raise PresetError(f"{path} is a preset for {data.get('synth')} spec {spec_hash}, not this synth")
    if len(values) != synth.spec.size:
        raise PresetError(f"{path} has {len(values)} normalised values, {synth.name} presets have {synth.spec.size}")
    return torch.tensor(values, dtype=torch.float32)


def write_native_preset(folder: Path, synth: Synth, params: torch.Tensor, name: str = "SYNTHINV") -> Path | None:
    """The synth's own preset format beside preset.json, where it has one (`Synth.write_preset`: Dexed's
    preset.syx, a VST plugin's state); else None (k-osc, Faust)."""
    return synth.write_preset(Path(folder), params, name)
