"""Any plugin instrument (VST2, VST3) or Faust DSP as a synthinv synth, hosted headless by DawDreamer.

Host choice: DawDreamer (PyPI `dawdreamer`, pinned) for every plugin kind. It loads VST2 `.so` files on
Linux (Debian's `amsynth` ships only a VST2, /usr/lib/vst/amsynth_vst.so), VST3 bundles (Surge XT), and
compiles Faust DSP, so one render path serves all three. pedalboard hosts VST3 only (and nothing in
Debian bookworm is VST3) and has no Faust, so it would cover none of the synths testable here.

What varies and what is held fixed comes from a spec file (`synths.plugin_spec`, shipped ones in
`synths/specs/`). One example is one MIDI note: note-on after `pre_roll` seconds (smoothed parameters
settle from the plugin's defaults), held `duration` seconds, then `release` seconds of tail; the output
is mono (the mean of the plugin's channels), float32, `length = (duration + release) * sample_rate`.

Renders are independent and deterministic: every note sounds as on a fresh plugin instance, whatever was
rendered before. A reused VST instance does not (amsynth keeps per-key voice state and parameter history:
the same patch twice in a row differs by up to 0.9 in sample value) and a fresh one is slow, so VST notes
go through `plugin_server`, which forks from never-used instances. A Faust DSP is compiled once: DawDreamer
clears its state (`instanceClear`) before every render. `tests/test_plugin.py` and `tests/test_faust.py`
render patches after extreme ones and compare them with fresh instances bit for bit; speeds are in
results/generation_speed.md. SYNTHINV_PLUGIN_INSTANCES=fresh (or `DawDreamerHost(spec, fresh=True)`) makes
a fresh instance (VST) or compile (Faust) per note instead.

    synth = PluginSynth.from_settings({"name": "amsynth"})   # or PluginSynth.from_file("my.yaml")
    params = synth.random_params(4, seed=0)                   # (4, size) normalised, from (seed, index)
    audio = synth.render(params)                              # (4, T) float32
    synth.save_state(params[0], "preset.fxb")                 # the plugin's own state (VST)

The synth object is picklable and cheap: the DawDreamer engine is made on first render, in whichever
process renders (one per `synthinv generate` worker).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthinv.synths import plugin_server
from synthinv.synths.base import LogMelFeatures, SynthBase
from synthinv.synths.plugin_spec import NOTE_PARAM, SpecError, find_plugin, load_spec, param_spec, validate_spec
from synthinv.synths.sampling import draw_until_audible, hashed_uniform, redraw_seed

BLOCK_SIZE = 512  # DawDreamer's processing block (samples); the note timing is sample-exact regardless


def _require_dawdreamer():
    try:
        import dawdreamer
    except ImportError:  # pragma: no cover - depends on the environment
        raise SpecError("plugin synths need DawDreamer: pip install dawdreamer==0.9.0 (scripts/setup.sh does)") from None
    return dawdreamer


@contextlib.contextmanager
def _quiet():
    """Silence fds 1 and 2 while a plugin loads: DawDreamer/JUCE and amsynth print several lines per
    instance ("Attempting to load VST", Gtk warnings), one instance per note. Errors still raise."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1), os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _snake(name: str) -> str:
    """"A Osc 1 Pitch" -> "a_osc_1_pitch": specs may name a plugin's parameters either way (pedalboard,
    which the paper's Surge XT code used, exposes them in this snake case)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class DawDreamerHost:
    """One DawDreamer engine. `render` gives every note the audio of a fresh instrument: through a fork
    server (VST), by reusing the compiled DSP (Faust), or, with `fresh`, by making one (see the module doc)."""

    def __init__(self, spec: dict, fresh: bool = False):
        self.daw = _require_dawdreamer()
        self.spec, self.kind = spec, spec["host"]
        self.sample_rate = spec["sample_rate"]
        self.engine = self.daw.RenderEngine(self.sample_rate, BLOCK_SIZE)
        self.path = None if self.kind == "faust" else find_plugin(spec)
        self.fresh = fresh or os.environ.get(plugin_server.ENV, "").lower() == "fresh" or (
            self.kind == "vst" and not plugin_server.available())
        self._count = 0
        self._proc: Any = None  # the current instrument (DawDreamer processor)
        self._server: plugin_server.ForkServer | None = None
        self._faust_names: frozenset | None = None  # the parameters set since the last compile (reuse needs the same)
        names = self.parameter_names()
        names.update({_snake(n): a for n, a in list(names.items()) if _snake(n) not in names})
        self.address = {}  # spec name -> what set_parameter takes (VST: index; Faust: full address)
        for name in [p["name"] for p in spec["vary"]] + list(spec["fixed"]):
            name_found = name if name in names else _snake(name)
            if name_found not in names:
                close = difflib.get_close_matches(name, list(names), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else f"; it has {', '.join(list(names)[:8])}, ..."
                raise SpecError(f"{spec['name']}: the plugin has no parameter {name!r}{hint}")
            self.address[name] = names[name_found]

    def new_instrument(self):
        """A fresh plugin instance (VST) or a freshly compiled DSP (Faust) in the engine's graph."""
        self._faust_names = None
        with _quiet():
            if self.kind == "faust":  # one processor, recompiled: a new Faust processor after
                if self._proc is None:  # remove_processor fails to compile ("undefined symbol : process")
                    self._proc = self.engine.make_faust_processor("synth")
                    self._proc.num_voices = 1  # a MIDI instrument: freq / gain / gate come from the note
                    self._proc.set_dsp_string(self.spec["code"])
                proc = self._proc
                proc.clear_midi()
                try:
                    proc.compile()
                except RuntimeError as exc:
                    raise SpecError(f"{self.spec['name']}: the Faust DSP does not compile: {str(exc).splitlines()[0]}") from None
            else:
                if self._proc is not None:
                    self.engine.remove_processor(self._proc.get_name())
                self._count += 1
                proc = self.engine.make_plugin_processor(f"synth{self._count}", str(self.path))
        self.engine.load_graph([(proc, [])])
        self._proc = proc
        return proc

    def parameter_names(self) -> dict:
        """{parameter name: set_parameter key} of the plugin (VST: name -> index; Faust: the address
        without its first component, e.g. "osc1/wave" -> "/subtractive3/osc1/wave")."""
        desc = self.describe()
        if self.kind == "faust":
            return {d["name"].split("/", 2)[-1]: d["name"] for d in desc}
        return {d["name"]: d["index"] for d in desc}

    def describe(self) -> list[dict]:
        """DawDreamer's description of every parameter of a fresh instance, plus "value": the host value
        it starts at (VST2 plugins such as amsynth report every defaultValue as 0)."""
        proc = self.new_instrument()
        desc = proc.get_parameters_description()
        if self.kind == "vst":
            for d in desc:
                d["value"] = float(proc.get_parameter(d["index"]))
        return desc

    @property
    def server(self) -> plugin_server.ForkServer:
        """The fork server of this plugin (VST), started on first use in the process that renders."""
        if self._server is None:
            if self.path is None:
                raise SpecError(f"{self.spec['name']}: a Faust DSP is not rendered by the fork server")
            self._server = plugin_server.ForkServer(self.path, self.sample_rate, BLOCK_SIZE)
        return self._server

    def close(self) -> None:
        """Stop the fork server, if one runs (it also stops when this process exits)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def render(self, values: dict[str, float], note: int, velocity: int, duration: float, release: float,
               pre_roll: float, length: int) -> np.ndarray:
        """One note as a fresh instrument plays it -> mono audio (length,) float32. values: {name: host value}."""
        return self.render_notes([(values, note)], velocity, duration, release, pre_roll, length)[0]

    def render_notes(self, notes: list[tuple[dict[str, float], int]], velocity: int, duration: float, release: float,
                     pre_roll: float, length: int) -> np.ndarray:
        """[({name: host value}, MIDI note), ...] -> (len(notes), length) float32: each note as a fresh
        instrument plays it, `pre_roll` s after the start, held `duration` s (`release` is in `length`)."""
        start = int(round(pre_roll * self.sample_rate))
        total = start + length + int(0.01 * self.sample_rate)
        if self.kind == "vst" and not self.fresh:
            return self.server.render([({self.address[n]: float(v) for n, v in values.items()}, note) for values, note in notes],
                                      velocity, pre_roll, duration, total, start, length)
        out = np.zeros((len(notes), length), dtype=np.float32)
        for k, (values, note) in enumerate(notes):
            if self.kind == "faust" and not self.fresh and self._faust_names == frozenset(values):
                proc = self._proc  # compiled already; DawDreamer's reset (instanceClear) clears it before rendering
                proc.clear_midi()
            else:
                proc = self.new_instrument()
                self._faust_names = frozenset(values)
            for name, value in values.items():
                if self.kind == "faust":  # a polyphonic Faust processor ignores set_parameter (measured: no
                    proc.set_automation(self.address[name], np.full(total, float(value), dtype=np.float32))  # effect)
                else:
                    proc.set_parameter(self.address[name], float(value))
            proc.add_midi_note(int(note), int(velocity), float(pre_roll), float(duration))
            self.engine.render(total / self.sample_rate)
            audio = np.asarray(self.engine.get_audio(), dtype=np.float32)  # (channels, samples)
            mono = audio.mean(axis=0)[start : start + length]
            out[k, : len(mono)] = mono
        return out

    @property
    def state_suffix(self) -> str:
        """VST2 (.so): the plugin writes a VST bank chunk ("CcnK"/"FBCh"), i.e. an .fxb a DAW can load;
        VST3: JUCE's state blob for DawDreamer's load_state (not a .vstpreset)."""
        return ".fxb" if self.path is not None and self.path.suffix == ".so" else ".state"

    def save_state(self, values: dict[str, float], path: Path) -> None:
        """The plugin's own state with `values` set, written by the plugin (see `state_suffix`)."""
        proc = self.new_instrument()
        for name, value in values.items():
            proc.set_parameter(self.address[name], float(value))
        proc.save_state(str(path))

    def load_state(self, path: Path) -> dict[str, float]:
        """Load a state file into a fresh instance; -> {name: host value} of every spec parameter."""
        proc = self.new_instrument()
        with _quiet():
            if Path(path).suffix in (".fxb", ".fxp"):  # VST2: load_state's reload makes amsynth call Gtk, which exits headless
                ok = proc.load_preset(str(path))
            else:
                ok = proc.load_state(str(path))
        if ok is False:
            raise SpecError(f"{path}: the plugin did not accept this state file")
        return {name: float(proc.get_parameter(addr)) for name, addr in self.address.items()}


class PluginSynth(LogMelFeatures, SynthBase):
    """A plugin instrument as a synth on the normalised encoding (see the module doc); its own preset
    format is the plugin's state (VST only)."""

    def __init__(self, spec: dict):
        self.spec_dict = spec
        self.name = spec["name"]
        self.spec = param_spec(spec)
        self.sample_rate = spec["sample_rate"]
        note = spec["note"]
        self.velocity, self.note_duration, self.release = note["velocity"], note["duration"], note["release"]
        self.pre_roll = note["pre_roll"]
        self.length = int(round((self.note_duration + self.release) * self.sample_rate))  # samples per note (T)
        self.has_note_param = note["min"] < note["max"]
        if spec["host"] == "vst":
            find_plugin(spec)  # a missing plugin is a one-line error now, not in a worker later
        self._host: DawDreamerHost | None = None  # made on first use, in the process that renders

    @classmethod
    def from_settings(cls, settings: dict) -> PluginSynth:
        """From spec.settings ({"spec": ...}, as checkpoints and manifests store it) or just {"name": shipped}."""
        if "spec" in settings:
            return cls(validate_spec(settings["spec"], f"{settings.get('name', 'plugin')} settings"))
        extra = set(settings) - {"name"}
        if extra:
            raise SpecError(f"plugin synth {settings.get('name')!r} takes no settings {sorted(extra)} (they live in its spec file)")
        return cls(load_spec(settings["name"]))

    @classmethod
    def from_file(cls, path: str | Path) -> PluginSynth:
        return cls(load_spec(Path(path)))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_host"] = None  # each process builds its own engine
        return state

    @property
    def host(self) -> DawDreamerHost:
        if self._host is None:
            self._host = DawDreamerHost(self.spec_dict)
        return self._host

    # --- parameters <-> host values --------------------------------------------------------------

    def host_values(self, params_row: torch.Tensor) -> tuple[dict[str, float], int]:
        """One normalised row (size,) -> ({name: host value} of fixed and varied parameters, MIDI note)."""
        return self.host_notes(torch.as_tensor(params_row)[None])[0]

    def host_notes(self, params: torch.Tensor) -> list[tuple[dict[str, float], int]]:
        """Normalised rows (N, size) -> [({name: host value}, MIDI note), ...] (decoded in one go)."""
        natives = self.spec.decode(torch.as_tensor(params).double()).numpy()  # (N, len(params))
        out = []
        for native in natives:
            values = dict(self.spec_dict["fixed"])
            for p, v in zip(self.spec_dict["vary"], native):
                values[p["name"]] = float(v) if p["kind"] == "continuous" else p["values"][int(round(v)) - (p["low"] if p["kind"] == "discrete" else 0)]
            note = int(round(native[-1])) if self.has_note_param else int(self.spec_dict["note"]["min"])
            out.append((values, note))
        return out

    def params_from_host(self, values: dict[str, float], note: int | None = None) -> torch.Tensor:
        """{name: host value} (e.g. from a loaded state) -> one normalised row (size,); discrete and
        categorical values snap to the nearest grid value."""
        native = []
        for p in self.spec_dict["vary"]:
            v = values[p["name"]]
            if p["kind"] == "continuous":
                native.append(v)
            else:
                k = int(np.argmin(np.abs(np.asarray(p["values"]) - v)))
                native.append(k + (p["low"] if p["kind"] == "discrete" else 0))
        if self.has_note_param:
            native.append(self.spec_dict["note"]["min"] if note is None else note)
        return self.spec.encode(torch.tensor([native], dtype=torch.float64))[0].float()

    # --- rendering ------------------------------------------------------------------------------

    def render(self, params: torch.Tensor) -> torch.Tensor:
        """params (N, size) normalised -> audio (N, T) float32 mono; the same params give the same audio."""
        params = torch.as_tensor(params)
        params = params[None] if params.dim() == 1 else params
        notes = self.host_notes(params)
        if not notes:
            return torch.zeros(0, self.length)
        return torch.from_numpy(self.host.render_notes(notes, self.velocity, self.note_duration, self.release,
                                                       self.pre_roll, self.length))

    def save_state(self, params_row: torch.Tensor, path: str | Path) -> Path:
        """Write the plugin's own state for one normalised row (the note pitch is not part of it)."""
        if self.spec_dict["host"] == "faust":
            raise SpecError(f"{self.name} is a Faust DSP: it has no plugin state (its preset is the JSON)")
        values, _ = self.host_values(params_row)
        self.host.save_state(values, Path(path))
        return Path(path)

    def write_preset(self, folder: Path, params: torch.Tensor, name: str = "") -> Path | None:
        """A VST plugin's own state as folder/preset.fxb (VST2) or preset.state (VST3); None for Faust."""
        if self.spec_dict["host"] != "vst":
            return None
        return self.save_state(params, Path(folder) / f"preset{self.host.state_suffix}")

    def load_state(self, path: str | Path, note: int | None = None) -> torch.Tensor:
        """A state file written by `save_state` (or by a DAW) -> one normalised row (size,)."""
        return self.params_from_host(self.host.load_state(Path(path)), note)

    # --- sampling: uniform over the spec, near-silent draws redrawn -------------------------------

    def random_params(self, n: int, seed: int, offset: int = 0) -> torch.Tensor:
        """(n, size) parameters of examples offset..offset+n-1 of split `seed` (see `draw`)."""
        return self.params_at(seed, np.arange(offset, offset + n))

    def params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        """(N, size) parameters of examples `indices`; needs renders (silent draws are redrawn)."""
        return self.draw(seed, indices)[0]

    def draw(self, seed: int, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(params (N, size), audio (N, T)) of examples `indices` of split `seed`. Draw j of example i is
        uniform over the spec (each grid value / choice equally likely) from hashed uniforms of
        (seed j, i); rows quieter than SILENCE_DBFS are redrawn up to MAX_REDRAWS times, as for Dexed,
        so every row depends only on (seed, i)."""
        indices = np.asarray(indices, dtype=np.int64)

        def propose(j: int, rows: np.ndarray) -> torch.Tensor:
            return self.spec.from_uniform(hashed_uniform(redraw_seed(seed, j), rows, len(self.spec.params)))

        return draw_until_audible(self, indices, propose)


def describe_plugin(path: str | Path) -> list[dict]:
    """Every parameter of the plugin at `path` (VST .so / .vst3, or a Faust .dsp): index, name, default
    (the host value a fresh instance starts at), text (the plugin's display of it), min, max, discrete."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SpecError(f"plugin not found: {path}")
    faust = path.suffix == ".dsp"
    spec: dict[str, Any] = {"name": path.stem, "host": "faust" if faust else "vst", "plugin": [str(path.resolve())],
                            "vary": [], "fixed": {}, "sample_rate": 44100}
    if faust:
        try:
            spec["code"] = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path} is not a readable Faust DSP text file ({type(exc).__name__})") from None
    try:
        desc = DawDreamerHost(spec).describe()
    except RuntimeError as exc:  # DawDreamer's message for a file that is no plugin or does not compile
        raise SpecError(f"{path}: could not load it as a {'Faust DSP' if faust else 'plugin'} ({str(exc).splitlines()[0]})") from None
    out = []
    for d in desc:
        if faust:
            out.append({"index": d["index"], "name": d["name"].split("/", 2)[-1], "default": float(d["value"]),
                        "text": f"{d['value']:g}", "min": float(d["min"]), "max": float(d["max"]),
                        "discrete": bool(d["isDiscrete"])})
        else:
            out.append({"index": d["index"], "name": d["name"], "default": d["value"],
                        "text": str(d.get("currentValText", d.get("text", ""))), "min": 0.0, "max": 1.0,
                        "discrete": bool(d.get("isDiscrete"))})
    return out


def spec_skeleton(path: str | Path, params: list[dict], name: str | None = None) -> str:
    """A starting spec YAML for the plugin at `path`: every parameter varied over its whole range,
    with its current value as a comment; edit it, moving parameters to `fixed` as wanted."""
    path = Path(path).expanduser().resolve()
    faust = path.suffix == ".dsp"
    lines = [f"# spec skeleton written by `synthinv synth describe {path}`: edit before use",
             f"name: {name or path.stem.replace(' ', '_').lower()}", f"host: {'faust' if faust else 'vst'}",
             f"plugin: [{path.name if faust else str(path)!r}]", "sample_rate: 44100",
             "note: {velocity: 100, duration: 1.0, release: 0.5, min: 48, max: 72}", "vary:"]
    for p in params:
        lines.append(f"  - {{name: {p['name']!r}, low: {p['min']:g}, high: {p['max']:g}}}  # #{p['index']}, now {p['text']}")
    lines += ["fixed: {}", ""]
    return "\n".join(lines)


__all__ = ["PluginSynth", "DawDreamerHost", "describe_plugin", "spec_skeleton", "NOTE_PARAM"]
