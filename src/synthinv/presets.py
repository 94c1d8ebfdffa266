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
        return _from_other_range(path, data, values, synth)
    if len(values) != synth.spec.size:
        raise PresetError(f"{path} has {len(values)} normalised values, {synth.name} presets have {synth.spec.size}")
    return torch.tensor(values, dtype=torch.float32)


def _from_other_range(path: Path, data: dict, values: list[float], synth: Synth) -> torch.Tensor:
    """A preset of the same synth and parameters whose spec differs only in ranges (invert writes Dexed presets
    over the whole note range, the model's spec spans notes 48-72), re-encoded for `synth`; refused when a
    value lies outside this spec's range or the spec is another synth's."""
    from synthinv import synths

    refused = PresetError(f"{path} is a preset for {data.get('synth')} spec {data.get('spec_hash')}, not this synth")
    if data.get("synth") != synth.name or not isinstance(data.get("settings"), dict):
        raise refused
    try:
        theirs = synths.get(synth.name, **{k: v for k, v in data["settings"].items() if k != "name"}).spec
    except (ValueError, TypeError):
        raise refused from None
    if theirs.hash() != data.get("spec_hash") or theirs.names != synth.spec.names:
        raise refused
    if len(values) != theirs.size:
        raise PresetError(f"{path} has {len(values)} normalised values, {synth.name} presets have {theirs.size}")
    row = torch.tensor(values, dtype=torch.float64)[None]
    mine = theirs.convert(row, synth.spec)
    if not torch.allclose(synth.spec.decode(mine), theirs.decode(row), atol=1e-6):
        outside = [n for n, a, b in zip(theirs.names, synth.spec.decode(mine)[0], theirs.decode(row)[0]) if abs(a - b) > 1e-6]
        raise PresetError(f"{path}: {', '.join(outside[:3])} outside the range of this synth's spec")
    return mine[0].float()


def write_native_preset(folder: Path, synth: Synth, params: torch.Tensor, name: str = "SYNTHINV") -> Path | None:
    """The synth's own preset format beside preset.json, where it has one (`Synth.write_preset`: Dexed's
    preset.syx, a VST plugin's state); else None (k-osc, Faust)."""
    return synth.write_preset(Path(folder), params, name)
