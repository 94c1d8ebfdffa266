"""Dexed (a DX7 emulation, via dexed-py) as a synth on the normalised encoding.

The spec is the whole DX7 voice - every field of the 155-byte single-voice (VCED) sysex record - except
the transposition, which is held fixed (the note pitch is a parameter instead), plus the MIDI note:

    op1 .. op6 (28 columns each)   EG rates 1-4 and levels 1-4, keyboard break point, left/right depth,
                                   left/right curve (one-hot, 4), rate scaling, amp-mod sensitivity,
                                   velocity sensitivity, output level, oscillator mode (one-hot: ratio /
                                   fixed), frequency coarse, fine, detune
    global (57 columns)            pitch EG rates 1-4 and levels 1-4, algorithm (one-hot, 32), feedback,
                                   oscillator key sync (one-hot), LFO speed, delay, pitch-mod depth,
                                   amp-mod depth, LFO key sync (one-hot), LFO wave (one-hot, 6),
                                   pitch-mod sensitivity
    note (1 column)                MIDI note 48-72

145 native parameters, 225 encoded columns. Every numeric DX7 field is "discrete" (its integer grid spread
evenly over [-1, 1]), so encode -> decode is exact. Operators are numbered as on the DX7 front panel
(op1 = dexed `Patch.op[0]`); algorithm choices are labelled "1".."32" (native value = sysex byte 0-31).

A note is rendered the same way every time (spec.settings): `note_duration` seconds held, `release`
seconds after note-off, at `velocity`, mono float32 at `sample_rate`. The output is Dexed's own scale,
not normalised: one full-level carrier peaks near 1.0, so a patch with six carriers can reach about 6.

    synth = DexedSynth()
    params = synth.random_params(8, seed=0)       # (8, 225), a pure function of (seed, index)
    audio = synth.render(params)                  # (8, 66150) float32
    patch = synth.to_patch(params[0])             # a dexed.Patch; see synthinv.presets for .syx files
"""

from __future__ import annotations

import numpy as np
import torch

from synthinv.synths.base import Param, ParamSpec
from synthinv.synths.kosc import hashed_uniform

try:  # a declared dependency; if the wheel is missing, the rest of synthinv (k-osc) still imports
    import dexed
except ImportError:  # pragma: no cover - depends on the environment
    dexed = None

N_OPS = 6
VCED_SIZE = 156  # 155 voice bytes + the operator on/off byte Dexed's loader expects
NAME_SLICE = slice(145, 155)
TRANSPOSE_BYTE = 144
CURVES = ("-lin", "-exp", "+exp", "+lin")  # DX7 keyboard level scaling curves, sysex values 0-3
LFO_WAVES = ("triangle", "saw_down", "saw_up", "square", "sine", "s&h")  # sysex values 0-5
DEFAULT_NAME = "SYNTHINV"

# (name, kind, range or choices, byte offset inside one operator's 21-byte VCED record)
_OP_FIELDS = (
    *((f"eg_rate{i + 1}", "discrete", (0, 99), i) for i in range(4)),
    *((f"eg_level{i + 1}", "discrete", (0, 99), 4 + i) for i in range(4)),
    ("kbd_break_point", "discrete", (0, 99), 8),
    ("kbd_left_depth", "discrete", (0, 99), 9),
    ("kbd_right_depth", "discrete", (0, 99), 10),
    ("kbd_left_curve", "categorical", CURVES, 11),
    ("kbd_right_curve", "categorical", CURVES, 12),
    ("kbd_rate_scaling", "discrete", (0, 7), 13),
    ("amp_mod_sens", "discrete", (0, 3), 14),
    ("key_vel_sens", "discrete", (0, 7), 15),
    ("output_level", "discrete", (0, 99), 16),
    ("osc_mode", "categorical", ("ratio", "fixed"), 17),
    ("freq_coarse", "discrete", (0, 31), 18),
    ("freq_fine", "discrete", (0, 99), 19),
    ("detune", "discrete", (0, 14), 20),  # 7 = centre
)
# (name, kind, range or choices, absolute VCED byte offset)
_GLOBAL_FIELDS = (
    *((f"pitch_eg_rate{i + 1}", "discrete", (0, 99), 126 + i) for i in range(4)),
    *((f"pitch_eg_level{i + 1}", "discrete", (0, 99), 130 + i) for i in range(4)),  # 50 = no shift
    ("algorithm", "categorical", tuple(str(a) for a in range(1, 33)), 134),
    ("feedback", "discrete", (0, 7), 135),
    ("osc_key_sync", "categorical", ("off", "on"), 136),
    ("lfo_speed", "discrete", (0, 99), 137),
    ("lfo_delay", "discrete", (0, 99), 138),
    ("lfo_pitch_mod_depth", "discrete", (0, 99), 139),
    ("lfo_amp_mod_depth", "discrete", (0, 99), 140),
    ("lfo_key_sync", "categorical", ("off", "on"), 141),
    ("lfo_wave", "categorical", LFO_WAVES, 142),
    ("pitch_mod_sens", "discrete", (0, 7), 143),
)


def _param(name: str, kind: str, rng, group: str) -> Param:
    return Param.categorical(name, rng, group) if kind == "categorical" else Param.discrete(name, *rng, group)


def _layout() -> tuple[list[tuple[str, str, object, str]], np.ndarray]:
    """Spec fields (name, kind, range, group) in order, and the VCED byte of each (note excluded)."""
    fields, offsets = [], []
    for op in range(1, N_OPS + 1):
        base = (N_OPS - op) * 21  # the sysex record stores OP6 first
        for name, kind, rng, off in _OP_FIELDS:
            fields.append((f"op{op}.{name}", kind, rng, f"op{op}"))
            offsets.append(base + off)
    for name, kind, rng, off in _GLOBAL_FIELDS:
        fields.append((f"global.{name}", kind, rng, "global"))
        offsets.append(off)
    return fields, np.array(offsets)


_FIELDS, VCED_OFFSETS = _layout()  # VCED_OFFSETS[i]: sysex byte of native parameter i (all but the note)


def dexed_spec(
    sample_rate: int = 44100,
    note_duration: float = 1.0,
    release: float = 0.5,
    velocity: int = 100,
    transpose: int = 24,
    min_note: int = 48,
    max_note: int = 72,
) -> ParamSpec:
    """The DX7 voice + MIDI note as a ParamSpec; the fixed note settings live in `settings`."""
    params = [_param(name, kind, rng, group) for name, kind, rng, group in _FIELDS]
    params.append(Param.discrete("note.midi", min_note, max_note, group="note"))
    settings = {
        "sample_rate": sample_rate,
        "note_duration": note_duration,
        "release": release,
        "velocity": velocity,
        "transpose": transpose,  # 24 = C3, i.e. no transposition
        "min_note": min_note,
        "max_note": max_note,
    }
    return ParamSpec("dexed", tuple(params), settings)


def _require_dexed() -> None:
    if dexed is None:
        raise ImportError("the Dexed synth needs dexed-py: pip install 'dexed-py==0.3.0'")


def _as_2d(params) -> torch.Tensor:
    params = torch.as_tensor(params)
    return params[None] if params.dim() == 1 else params


def native_to_vced(native: np.ndarray, transpose: int = 24, name: str = DEFAULT_NAME) -> np.ndarray:
    """Native values (N, 145) (note last, ignored) -> VCED voice records (N, 156) uint8."""
    native = np.asarray(native)
    vced = np.zeros((native.shape[0], VCED_SIZE), dtype=np.uint8)
    vced[:, VCED_OFFSETS] = np.rint(native[:, : len(VCED_OFFSETS)]).astype(np.uint8)
    vced[:, TRANSPOSE_BYTE] = transpose
    vced[:, NAME_SLICE] = np.frombuffer(_voice_name(name), dtype=np.uint8)
    vced[:, 155] = 0x3F  # all six operators on
    return vced


def vced_to_native(vced: np.ndarray, note: int | np.ndarray = 60) -> np.ndarray:
    """VCED voice records (N, >=155) -> native values (N, 145), with `note` in the last column.

    The transposition and the name are not parameters and are dropped."""
    vced = np.asarray(vced)
    native = np.empty((vced.shape[0], len(VCED_OFFSETS) + 1), dtype=np.float64)
    native[:, :-1] = vced[:, VCED_OFFSETS]
    native[:, -1] = note
    return native


def _voice_name(name: str) -> bytes:
    """A DX7 voice name: exactly 10 printable ASCII characters."""
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in name)
    return clean[:10].ljust(10).encode("ascii")


class DexedSynth:
    """The DX7 through dexed-py. `render(params (N, 225)) -> audio (N, T)` float32, deterministic."""

    name = "dexed"
    n_operators = N_OPS

    def __init__(
        self,
        sample_rate: int = 44100,
        note_duration: float = 1.0,
        release: float = 0.5,
        velocity: int = 100,
        transpose: int = 24,
        min_note: int = 48,
        max_note: int = 72,
    ):
        _require_dexed()
        if not (0 < velocity <= 127 and 0 <= min_note < max_note <= 127 and 0 <= transpose <= 48):
            raise ValueError(f"bad note settings: velocity {velocity}, notes {min_note}-{max_note}, transpose {transpose}")
        if note_duration <= 0 or release < 0:
            raise ValueError(f"note_duration must be > 0 and release >= 0, got {note_duration}, {release}")
        self.spec = dexed_spec(sample_rate, note_duration, release, velocity, transpose, min_note, max_note)
        self.sample_rate = sample_rate
        self.note_duration, self.release, self.velocity, self.transpose = note_duration, release, velocity, transpose
        self.length = int((note_duration + release) * sample_rate)  # samples per note (T)
        self._engine = None  # created on first render, so the object stays cheap to build and to pickle

    @classmethod
    def from_settings(cls, settings: dict) -> "DexedSynth":
        """From spec.settings (extra keys such as "name" are ignored, missing ones take the defaults)."""
        keys = ("sample_rate", "note_duration", "release", "velocity", "transpose", "min_note", "max_note")
        return cls(**{k: settings[k] for k in keys if k in settings})

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_engine"] = None  # each process builds its own engine
        return state

    # --- parameters <-> voices ------------------------------------------------------------------

    def to_vced(self, params, name: str = DEFAULT_NAME) -> np.ndarray:
        """Normalised (N, 225) or (225,) -> VCED voice records (N, 156) uint8."""
        native = self.spec.decode(_as_2d(params).double()).numpy()
        return native_to_vced(native, self.transpose, name)

    def to_patch(self, params_row, name: str = DEFAULT_NAME) -> "dexed.Patch":
        """One normalised row (225,) -> a dexed.Patch (the note pitch is not part of a voice)."""
        return dexed.Patch.from_sysex(bytes(self.to_vced(params_row, name)[0]))

    def from_patch(self, patch: "dexed.Patch", note: int = 60) -> torch.Tensor:
        """A dexed.Patch (plus a MIDI note) -> one normalised row (225,). Its transposition is dropped."""
        return self.from_vced(np.frombuffer(patch.to_sysex(), dtype=np.uint8)[None], note)[0]

    def from_vced(self, vced: np.ndarray, note: int | np.ndarray = 60) -> torch.Tensor:
        """VCED voice records (N, >=155) -> normalised (N, 225)."""
        return self.spec.encode(torch.from_numpy(vced_to_native(vced, note))).float()

    def notes(self, params) -> np.ndarray:
        """The MIDI note of each row (N,) int."""
        return self.spec.decode(_as_2d(params).double())[:, -1].round().long().numpy()

    # --- rendering ------------------------------------------------------------------------------

    def render(self, params: torch.Tensor) -> torch.Tensor:
        """params (N, 225) normalised -> audio (N, T) float32 mono; the same params give the same audio."""
        native = self.spec.decode(_as_2d(params).double()).numpy()  # (N, 145), decoded once
        vced, notes = native_to_vced(native, self.transpose), np.rint(native[:, -1]).astype(int)
        if self._engine is None:
            self._engine = dexed.DexedSynth(sample_rate=float(self.sample_rate))
        # TODO(issue 4): a process pool for large N (one engine per worker, workers write the audio or
        # features to shard files themselves - moving audio back through the pool costs more than
        # rendering it, ~1.5 ms per 1.5 s note). A plain loop is enough for tests and small batches.
        out = np.zeros((len(vced), self.length), dtype=np.float32)
        for i, (voice, note) in enumerate(zip(vced, notes)):
            self._engine.load_patch(dexed.Patch.from_sysex(bytes(voice)))
            audio = self._engine.render(
                midi_note=int(note),
                velocity=self.velocity,
                note_duration=self.note_duration,
                render_duration=self.note_duration + self.release,
            )
            n = min(len(audio), self.length)
            out[i, :n] = audio[:n]
        return torch.from_numpy(out)

    # --- sampling -------------------------------------------------------------------------------

    def random_params(self, n: int, seed: int, offset: int = 0) -> torch.Tensor:
        """(n, 225) uniformly random patches offset..offset+n-1 of split `seed` (see `params_at`)."""
        return self.params_at(seed, np.arange(offset, offset + n))

    def params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        """Uniform patches at arbitrary example indices (N, 225); row i is a pure function of (seed, i).

        Every native parameter takes each of its values with equal probability (categorical ones emit
        the one-hot block of the drawn choice). No prior yet: about a fifth of these are near silent.
        """
        u = hashed_uniform(seed, np.asarray(indices), len(self.spec.params))  # one draw per native param
        return self.spec.from_uniform(u)


def init_vced(name: str = "INIT VOICE") -> np.ndarray:
    """The DX7's INIT VOICE as a VCED record (156,): algorithm 1, op1 alone at output level 99, every EG
    at rates 99 and levels 99/99/99/0, pitch EG flat, LFO triangle at speed 35 with key sync, PMS 3."""
    _require_dexed()
    patch = dexed.Patch(name)
    patch.algorithm, patch.feedback, patch.osc_key_sync, patch.transpose = 0, 0, True, 24
    patch.lfo.speed, patch.lfo.delay, patch.lfo.pitch_mod_depth, patch.lfo.amp_mod_depth = 35, 0, 0, 0
    patch.lfo.sync, patch.lfo.wave, patch.pitch_mod_sensitivity = True, 0, 3
    for i, op in enumerate(patch.op):
        op.output_level = 99 if i == 0 else 0
    return np.frombuffer(patch.to_sysex(), dtype=np.uint8).copy()
