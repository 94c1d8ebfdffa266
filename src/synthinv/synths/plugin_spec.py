"""Plugin synth spec files: which plugin to host, which of its parameters vary, which are held fixed.

A spec is a YAML file (shipped ones live in `synths/specs/`, e.g. `amsynth.yaml`; a user's own are found
in the folders on SYNTHINV_SPEC_PATH, and the file name is the `--synth` name):

    name: amsynth                   # = the file name (`--synth amsynth`; checkpoints and datasets record it)
    host: vst                       # vst: a VST2 .so / VST3 bundle; faust: a .dsp file (both via DawDreamer)
    plugin: [amsynth_vst.so]        # file names looked up in the standard plugin folders, or paths
    install: "apt-get install amsynth"  # what to tell the user when no file is found
    sample_rate: 44100
    note: {velocity: 100, duration: 1.0, release: 0.5, min: 48, max: 72}   # one MIDI note per example
    vary:                           # in this order; the MIDI note ("note.midi") is appended last
      - {name: amp_attack, low: 0.0, high: 0.3}                       # continuous (default kind)
      - {name: osc1_waveform, kind: categorical, choices: [sine, pulse, saw], values: [0.0, 0.25, 0.5]}
      - {name: osc2_pitch, kind: discrete, low: -12, high: 12}
    fixed: {master_vol: 0.67, reverb_wet: 0.0}

Values are *host* values: what the host's set_parameter takes. For a VST that is the plugin's own
normalised 0-1 value (DawDreamer's convention); for Faust the control's native value (Hz, seconds, ...).
So a continuous parameter's low/high are host values; a discrete or categorical one maps its grid point
or choice k to `values[k]`, by default k spread evenly over 0-1 for a VST (how VST2 hosts step a
parameter) and k itself (the native integer, or the choice index) for Faust.

`load_spec` validates the file (unknown keys, kinds, ranges, lengths) with one-line `SpecError`s; the
parameter names are checked against the plugin itself when it is loaded (`synths.plugin`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from synthinv.errors import SynthinvError
from synthinv.fileio import read_yaml
from synthinv.synths.base import Param, ParamSpec

SPEC_DIR = Path(__file__).parent / "specs"
HOSTS = ("vst", "faust")
NOTE_DEFAULTS = {"velocity": 100, "duration": 1.0, "release": 0.5, "min": 48, "max": 72, "pre_roll": 0.05}
NOTE_PARAM = "note.midi"
# Where plugins are looked for, in order (SYNTHINV_PLUGIN_PATH, colon-separated, comes first).
PLUGIN_DIRS = ("~/.vst3", "/usr/lib/vst3", "/usr/local/lib/vst3", "~/.vst", "/usr/lib/vst", "/usr/local/lib/vst",
               "/usr/lib/lxvst", "/usr/local/lib/lxvst")
_TOP_KEYS = {"name", "host", "plugin", "install", "sample_rate", "note", "vary", "fixed", "notes", "assumed", "code"}
_PARAM_KEYS = {"name", "kind", "low", "high", "scale", "choices", "values", "group"}


class SpecError(SynthinvError, ValueError):
    """A spec file that is missing, malformed, or names something the plugin does not have."""


class PluginNotFound(SpecError):
    """The plugin a spec names is not installed in any standard location."""


def shipped_specs() -> dict[str, Path]:
    """Spec files by synth name, e.g. {"amsynth": .../specs/amsynth.yaml}: the shipped ones, then the
    user's own from the folders on SYNTHINV_SPEC_PATH (colon-separated; a user's file of the same name wins)."""
    folders = [SPEC_DIR, *(Path(d).expanduser() for d in os.environ.get("SYNTHINV_SPEC_PATH", "").split(os.pathsep) if d)]
    return {p.stem: p for folder in folders for p in sorted(folder.glob("*.yaml"))}


def load_spec(path_or_name: str | Path) -> dict:
    """A validated spec dict from a shipped name ("amsynth") or a YAML path; `dir` records the file's folder."""
    path = Path(path_or_name)
    if path.suffix not in (".yaml", ".yml"):
        specs = shipped_specs()
        if str(path_or_name) not in specs:
            raise SpecError(f"no plugin spec named {path_or_name!r}; shipped: {', '.join(specs)} (or give a .yaml path)")
        path = specs[str(path_or_name)]
    raw = read_yaml(path, SpecError)
    if isinstance(raw, dict):
        raw.setdefault("name", path.stem)
        if raw["name"] != path.stem:  # `--synth NAME` finds the file by its name, checkpoints by the spec's
            raise SpecError(f"{path}: name {raw['name']!r} must match the file name {path.stem!r}")
    spec = validate_spec(raw, str(path))
    spec["dir"] = str(path.parent.resolve())
    if spec["host"] == "faust" and "code" not in spec:  # the DSP travels with the spec (checkpoints, manifests)
        spec["code"] = find_plugin(spec).read_text()
    return spec


def validate_spec(raw, where: str = "spec") -> dict:
    """Check a parsed spec and fill defaults; -> a new dict (the stored form, JSON-safe)."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a plugin spec is a YAML mapping with name, host, plugin and vary")
    unknown = set(raw) - _TOP_KEYS - {"dir"}
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    spec = copy.deepcopy(raw)
    for key in ("name", "host", "plugin", "vary"):
        if key not in spec:
            raise SpecError(f"{where}: missing {key!r}")
    if spec["host"] not in HOSTS:
        raise SpecError(f"{where}: host must be one of {HOSTS}, got {spec['host']!r}")
    if isinstance(spec["plugin"], str):
        spec["plugin"] = [spec["plugin"]]
    spec["sample_rate"] = int(spec.get("sample_rate", 44100))
    note = {**NOTE_DEFAULTS, **(spec.get("note") or {})}
    if set(note) - set(NOTE_DEFAULTS):
        raise SpecError(f"{where}: note takes {sorted(NOTE_DEFAULTS)}, got {sorted(set(note) - set(NOTE_DEFAULTS))}")
    if not (0 < note["velocity"] <= 127 and 0 <= note["min"] <= note["max"] <= 127):
        raise SpecError(f"{where}: note needs 0 < velocity <= 127 and 0 <= min <= max <= 127, got {note}")
    if note["duration"] <= 0 or note["release"] < 0 or note["pre_roll"] < 0:
        raise SpecError(f"{where}: note needs duration > 0, release >= 0, pre_roll >= 0, got {note}")
    spec["note"] = note
    fixed = spec.get("fixed") or {}
    if not isinstance(fixed, dict) or not all(isinstance(v, (int, float)) for v in fixed.values()):
        raise SpecError(f"{where}: fixed maps parameter names to numbers")
    spec["fixed"] = {str(k): float(v) for k, v in fixed.items()}
    if not isinstance(spec["vary"], list) or not spec["vary"]:
        raise SpecError(f"{where}: vary must be a non-empty list of parameters")
    spec["vary"] = [_validate_param(p, spec["host"], where) for p in spec["vary"]]
    names = [p["name"] for p in spec["vary"]]
    dupes = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(spec["fixed"])))
    if dupes:
        raise SpecError(f"{where}: parameter(s) {dupes} listed twice (in vary and/or fixed)")
    return spec


def _validate_param(p, host: str, where: str) -> dict:
    if not isinstance(p, dict) or "name" not in p:
        raise SpecError(f"{where}: each vary entry is a mapping with at least a name, got {p!r}")
    p = dict(p)
    name, kind = str(p["name"]), p.setdefault("kind", "continuous")
    if set(p) - _PARAM_KEYS:
        raise SpecError(f"{where}: {name}: unknown key(s) {sorted(set(p) - _PARAM_KEYS)}")
    if kind == "categorical":
        if not p.get("choices") or len(p["choices"]) < 2:
            raise SpecError(f"{where}: {name}: a categorical parameter needs at least 2 choices")
        p["choices"] = [str(c) for c in p["choices"]]
        n = len(p["choices"])
    elif kind == "discrete":
        if "low" not in p or "high" not in p or int(p["low"]) != p["low"] or int(p["high"]) != p["high"] or p["high"] <= p["low"]:
            raise SpecError(f"{where}: {name}: a discrete parameter needs integer low < high")
        p["low"], p["high"] = int(p["low"]), int(p["high"])
        n = p["high"] - p["low"] + 1
    elif kind == "continuous":
        p.setdefault("low", 0.0), p.setdefault("high", 1.0)
        p["low"], p["high"] = float(p["low"]), float(p["high"])
        if not p["low"] < p["high"]:
            raise SpecError(f"{where}: {name}: needs low < high, got {p['low']}, {p['high']}")
        if p.get("scale", "linear") not in ("linear", "log") or (p.get("scale") == "log" and p["low"] <= 0):
            raise SpecError(f"{where}: {name}: scale is linear or log (log needs low > 0)")
        if "values" in p:
            raise SpecError(f"{where}: {name}: only discrete and categorical parameters take values")
        return p
    else:
        raise SpecError(f"{where}: {name}: unknown kind {kind!r}; use continuous, discrete or categorical")
    if "values" in p:
        if len(p["values"]) != n:
            raise SpecError(f"{where}: {name}: {len(p['values'])} values for {n} grid points/choices")
        p["values"] = [float(v) for v in p["values"]]
    else:  # VST: the grid spread over the plugin's 0-1 range; Faust: the native integer / choice index
        first = p["low"] if kind == "discrete" else 0
        p["values"] = [k / (n - 1) for k in range(n)] if host == "vst" else [float(first + k) for k in range(n)]
    return p


def param_spec(spec: dict) -> ParamSpec:
    """The synthinv ParamSpec of a validated spec: the varied parameters in order, then the MIDI note
    (a discrete parameter when note min < max). settings = {"spec": the whole spec}, so checkpoints and
    dataset manifests rebuild exactly this synth, even from a user's own spec file."""
    params = []
    for p in spec["vary"]:
        if p["kind"] == "categorical":
            params.append(Param.categorical(p["name"], p["choices"], group=p.get("group")))
        elif p["kind"] == "discrete":
            params.append(Param.discrete(p["name"], p["low"], p["high"], group=p.get("group")))
        else:
            params.append(Param(p["name"], p["low"], p["high"], scale=p.get("scale", "linear"), group=p.get("group")))
    note = spec["note"]
    if note["min"] < note["max"]:
        params.append(Param.discrete(NOTE_PARAM, note["min"], note["max"], group="note"))
    stored = {k: v for k, v in spec.items() if k != "dir"}  # where the file sits is not part of the synth
    return ParamSpec(spec["name"], tuple(params), {"spec": stored})


def plugin_dirs() -> list[Path]:
    extra = [d for d in os.environ.get("SYNTHINV_PLUGIN_PATH", "").split(os.pathsep) if d]
    return [Path(d).expanduser() for d in (*extra, *PLUGIN_DIRS)]


def find_plugin(spec: dict) -> Path:
    """The plugin (or Faust .dsp) file a spec names: a path as given (relative ones also next to the spec
    file), else the first name found in `plugin_dirs()`; PluginNotFound (one line) when none is."""
    names = spec["plugin"]
    for name in names:
        path = Path(name).expanduser()
        candidates = [path] if path.is_absolute() else [Path(spec.get("dir", ".")) / path, *(d / path for d in plugin_dirs())]
        for c in candidates:
            if c.exists():
                return c
    what = spec.get("install") or "install the plugin"
    looked = "next to the spec" if spec["host"] == "faust" else f"in {', '.join(str(d) for d in plugin_dirs())}"
    raise PluginNotFound(f"{spec['name']}: plugin {' / '.join(names)} not found {looked}; {what} "
                         "(or set SYNTHINV_PLUGIN_PATH to its folder)")
