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

Random patches come from one of two priors, recorded as spec.settings["prior"]:
- "patch" (default): `PATCH_PRIOR`, per-parameter mixtures that sound like DX7 patches (carriers loud and
  in ratio mode, modulator levels spread, envelopes that open, point masses such as "no LFO depth"), and
  near-silent draws (RMS below `synths.sampling.SILENCE_DBFS`) redrawn; see `sample_patch_native` and
  `DexedSynth.draw`. Measured on 200 patches (seed 1): uniform 28% near silent; patch prior 1.5% before
  redraws (0.6% over 480 patches of seeds 0 and 1), 0% after; median RMS -41 dBFS uniform, -26 dBFS prior.
- "uniform": every value of every parameter equally likely (about a quarter of these are near silent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthinv.errors import DependencyError
from synthinv.synths.base import GAIN, RETUNE, LogMelFeatures, Param, ParamSpec, SynthBase, SynthSettingsError
from synthinv.synths.sampling import draw_until_audible, hashed_uniform, redraw_seed

try:  # a declared dependency; if the wheel is missing, the rest of synthinv (k-osc) still imports
    import dexed
except ImportError:  # pragma: no cover - depends on the environment
    dexed = None

N_OPS = 6
VCED_SIZE = 156  # 155 voice bytes + the operator on/off byte Dexed's loader expects
NAME_SLICE = slice(145, 155)
TRANSPOSE_BYTE = 144
PLAYED_NOTES = (24, 108)  # C1-C8: the notes invert may play a patch at (pYIN tracks f0s from C2 to C7)
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


def _param(name: str, kind: str, rng: tuple, group: str) -> Param:
    return Param.categorical(name, rng, group) if kind == "categorical" else Param.discrete(name, rng[0], rng[1], group)


def _layout() -> tuple[list[tuple[str, str, tuple, str]], np.ndarray]:
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
    prior: str = "patch",
) -> ParamSpec:
    """The DX7 voice + MIDI note as a ParamSpec; the fixed note settings and the prior live in `settings`.

    The prior does not change what a parameter vector means, but it is part of the settings (and so of the
    spec hash) so that datasets and checkpoints say which distribution their examples came from."""
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
        "prior": prior,  # "patch" or "uniform": how random_params / params_at draw patches
    }
    return ParamSpec("dexed", tuple(params), settings)


def _require_dexed() -> None:
    if dexed is None:
        raise DependencyError("the Dexed synth needs dexed-py: pip install 'dexed-py==0.3.0'")


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


def _sysex_limits() -> tuple[np.ndarray, np.ndarray]:
    """Per VCED byte: the bit mask and the maximum that dexed-py's Patch.from_sysex -> to_sysex apply."""
    mask, top = np.full(VCED_SIZE, 0xFF, dtype=np.uint8), np.full(VCED_SIZE, 99, dtype=np.uint8)
    op_fields = {11: (0x03, 3), 12: (0x03, 3), 13: (0x07, 7), 14: (0x03, 3), 15: (0x07, 7), 17: (0x01, 1),
                 18: (0x1F, 31), 20: (0x0F, 14)}  # byte in the operator record: (mask, max); the rest 0..99
    for op in range(N_OPS):
        for off, (m, t) in op_fields.items():
            mask[21 * op + off], top[21 * op + off] = m, t
    for i, (m, t) in {134: (0x1F, 31), 135: (0x07, 7), 136: (0x01, 1), 141: (0x01, 1), 142: (0x07, 5), 143: (0x07, 7),
                      144: (0xFF, 48)}.items():
        mask[i], top[i] = m, t
    mask[NAME_SLICE], top[NAME_SLICE] = 0x7F, 0x7F  # ASCII
    return mask, top


_SYSEX_MASK, _SYSEX_MAX = _sysex_limits()


def dexed_sysex(vced: np.ndarray) -> np.ndarray:
    """VCED records (N, 156) uint8 -> the bytes dexed-py loads for them, (N, 156) uint8: what
    `dexed.Patch.from_sysex(bytes(v)).to_sysex()` gives (every field masked and clamped to its DX7 range,
    all operators on), computed for the whole batch at once instead of through two Python objects a row."""
    out = np.minimum(np.asarray(vced, dtype=np.uint8)[:, :VCED_SIZE] & _SYSEX_MASK, _SYSEX_MAX)
    out[:, VCED_SIZE - 1] = 0x3F
    return out


def _voice_name(name: str) -> bytes:
    """A DX7 voice name: exactly 10 printable ASCII characters."""
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in name)
    return clean[:10].ljust(10).encode("ascii")


class DexedSynth(LogMelFeatures, SynthBase):
    """The DX7 through dexed-py. `render(params (N, 225)) -> audio (N, T)` float32, deterministic.

    Beyond SynthBase's defaults it can retune a patch and change its level (RETUNE, GAIN), and writes its
    presets as DX7 sysex: one voice per .syx file, or 32-voice banks."""

    name = "dexed"
    n_operators = N_OPS
    capabilities = frozenset({RETUNE, GAIN})
    preset_bank_size = 32  # a DX7 bulk dump

    def __init__(
        self,
        sample_rate: int = 44100,
        note_duration: float = 1.0,
        release: float = 0.5,
        velocity: int = 100,
        transpose: int = 24,
        min_note: int = 48,
        max_note: int = 72,
        prior: str = "patch",
    ):
        _require_dexed()
        if prior not in PRIORS:
            raise SynthSettingsError(f"unknown prior {prior!r}; use one of {', '.join(PRIORS)}")
        if not (0 < velocity <= 127 and 0 <= min_note < max_note <= 127 and 0 <= transpose <= 48):
            raise SynthSettingsError(f"bad note settings: velocity {velocity}, notes {min_note}-{max_note}, transpose {transpose}")
        if note_duration <= 0 or release < 0:
            raise SynthSettingsError(f"note_duration must be > 0 and release >= 0, got {note_duration}, {release}")
        self.spec = dexed_spec(sample_rate, note_duration, release, velocity, transpose, min_note, max_note, prior)
        self.sample_rate, self.prior = sample_rate, prior
        self.note_duration, self.release, self.velocity, self.transpose = note_duration, release, velocity, transpose
        self.length = int((note_duration + release) * sample_rate)  # samples per note (T)
        self._engine: dexed.DexedSynth | None = None  # made on first render: cheap to build and to pickle

    @classmethod
    def from_settings(cls, settings: dict) -> DexedSynth:
        """From spec.settings (extra keys such as "name" are ignored, missing ones take the defaults)."""
        keys = ("sample_rate", "note_duration", "release", "velocity", "transpose", "min_note", "max_note", "prior")
        return cls(**{k: settings[k] for k in keys if k in settings})

    def over_whole_range(self) -> DexedSynth:
        """The same synth with its note parameter spanning PLAYED_NOTES: what invert plays patches at, so that a
        proposal drawn at notes 48-72 (the prior's range, the model's and the bank's) can move to a bass at
        MIDI 36 or a voice transposed two octaves down. Convert rows with `spec.convert`."""
        low, high = min(PLAYED_NOTES[0], self.spec.settings["min_note"]), max(PLAYED_NOTES[1], self.spec.settings["max_note"])
        return type(self).from_settings({**self.spec.settings, "min_note": low, "max_note": high})

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_engine"] = None  # each process builds its own engine
        return state

    # --- parameters <-> voices ------------------------------------------------------------------

    def voice_native(self, params) -> np.ndarray:
        """Normalised (N, size) -> native values of the whole DX7 voice + note (N, 145), the layout of
        `dexed_spec`: here the decoded row itself; a subset spec (DexedSimple) fills in its fixed fields."""
        return self.spec.decode(_as_2d(params).double()).numpy()

    def from_voice_native(self, native: np.ndarray) -> np.ndarray:
        """Whole-voice native values (N, 145) -> this spec's native values: the inverse of `voice_native`
        (a subset spec keeps its own columns and drops the fixed ones)."""
        return native

    def prior_native(self, seed: int, rows: np.ndarray, j: int) -> np.ndarray:
        """Draw j of the patch prior for example `rows` of split `seed`: this spec's native values (N, len(params))."""
        return sample_patch_native(prior_uniforms(seed, rows, j), self.spec)

    def to_vced(self, params, name: str = DEFAULT_NAME) -> np.ndarray:
        """Normalised (N, size) or (size,) -> VCED voice records (N, 156) uint8."""
        return native_to_vced(self.voice_native(params), self.transpose, name)

    def to_patch(self, params_row, name: str = DEFAULT_NAME) -> dexed.Patch:
        """One normalised row (225,) -> a dexed.Patch (the note pitch is not part of a voice)."""
        return dexed.Patch.from_sysex(bytes(self.to_vced(params_row, name)[0]))

    def from_patch(self, patch: dexed.Patch, note: int = 60) -> torch.Tensor:
        """A dexed.Patch (plus a MIDI note) -> one normalised row (225,). Its transposition is dropped."""
        return self.from_vced(np.frombuffer(patch.to_sysex(), dtype=np.uint8)[None], note)[0]

    def from_vced(self, vced: np.ndarray, note: int | np.ndarray = 60) -> torch.Tensor:
        """VCED voice records (N, >=155) -> normalised (N, 225)."""
        return self.spec.encode(torch.from_numpy(self.from_voice_native(vced_to_native(vced, note)))).float()

    def write_preset(self, folder: Path, params: torch.Tensor, name: str = DEFAULT_NAME) -> Path:
        """folder/preset.syx: one row (225,) as a single-voice DX7 sysex file (the note is not part of it)."""
        from synthinv.synths.dx7_sysex import write_syx_voice  # dx7_sysex builds on this module

        return write_syx_voice(Path(folder) / "preset.syx", params, self.spec, name=name)

    def write_preset_bank(self, path: Path, params: torch.Tensor, names: list[str]) -> Path:
        """Up to 32 rows (n, 225) as a 32-voice DX7 bank `path`.syx, padded with INIT VOICEs."""
        from synthinv.synths.dx7_sysex import write_syx_bank

        return write_syx_bank(Path(path).with_suffix(".syx"), params, self.spec, names)

    def notes(self, params) -> np.ndarray:
        """The MIDI note of each row (N,) int."""
        return self.spec.decode(_as_2d(params).double())[:, -1].round().long().numpy()

    def with_gain(self, params, gain_db) -> torch.Tensor:
        """params (N, 225), gain_db (N,) -> params about gain_db louder with the timbre kept: every carrier's
        output level (clamped to 0..99) stepped until that carrier, rendered alone, has moved by gain_db.

        Carriers are the operators the patch's algorithm sends to the output. Each is measured alone because
        equal steps do not give equal changes: a carrier that velocity sensitivity or keyboard scaling pushes
        past the DX7's level ceiling does not follow its first steps down, and moving the others without it
        would change the balance, i.e. the timbre. Costs a few renders per carrier."""
        from synthinv.metrics import rms_dbfs

        params = _as_2d(params)
        native = self.spec.decode(params.double())  # (N, 145)
        names = self.spec.names
        level_cols = [names.index(f"op{op}.output_level") for op in range(1, N_OPS + 1)]
        algorithm = native[:, names.index("global.algorithm")].long().numpy()
        carriers = _carrier_table()[algorithm]  # (N, 6) bool
        gain = torch.as_tensor(gain_db, dtype=torch.float64).reshape(-1).expand(len(native))  # (N,)
        rows, ops = np.nonzero(carriers & (gain.abs() >= DB_PER_LEVEL_STEP / 2).numpy()[:, None])  # (S,) each
        solo = native[rows].clone()  # (S, 145): one carrier sounding, the others silenced, modulators as they are
        for k, col in enumerate(level_cols):
            solo[torch.from_numpy(carriers[rows, k] & (ops != k)), col] = 0.0
        col_of = torch.tensor(level_cols)[torch.from_numpy(ops)]  # (S,) the solo carrier's output level column
        heard = rms_dbfs(self.render(self.spec.encode(solo).float())).double()  # (S,) dB
        goal = heard + gain[rows]
        level = solo[torch.arange(len(solo)), col_of]  # (S,) output levels, moved below
        step = torch.round(gain[rows] / DB_PER_LEVEL_STEP)
        todo = torch.ones(len(solo), dtype=torch.bool)
        for _ in range(GAIN_ROUNDS):
            moved = (level + step).clamp(0, 99)
            todo &= moved != level  # converged, or at the end of the range
            if not todo.any():
                break
            level = torch.where(todo, moved, level)
            solo[todo, col_of[todo]] = level[todo]
            now = heard.clone()
            now[todo] = rms_dbfs(self.render(self.spec.encode(solo[todo]).float())).double()
            # still at the ceiling (nothing heard): twice the last step; else the step the miss asks for
            step = torch.where((now - heard).abs() < 0.1, 2 * step, torch.round((goal - now) / DB_PER_LEVEL_STEP))
            step[~todo] = 0
            heard = now
        native[torch.from_numpy(rows), col_of] = level
        out = self.spec.encode(native).to(params.dtype)
        out[:, -1] = params[:, -1]  # the note column is untouched (re-encoding it is exact anyway)
        return out

    def retuned(self, params, cents) -> torch.Tensor:
        """params (N, 225), cents (N,) -> params whose ratio-mode operators all sound `cents` higher (coarse
        and fine re-chosen for the nearest DX7 ratio, within ~17 cents at ratio 1), so the note plays in tune
        without a whole-semitone step. Fixed-frequency operators do not follow the pitch, as on a DX7."""
        params = _as_2d(params)
        native = self.spec.decode(params.double())  # (N, 145)
        names = self.spec.names
        factor = 2.0 ** (torch.as_tensor(cents, dtype=torch.float64) / 1200.0)  # (N,)
        table, coarse, fine = _ratio_table()
        for op in range(1, N_OPS + 1):
            mode = native[:, names.index(f"op{op}.osc_mode")]
            c_col, f_col = names.index(f"op{op}.freq_coarse"), names.index(f"op{op}.freq_fine")
            ratio = _ratio(native[:, c_col], native[:, f_col]) * factor
            pos = torch.searchsorted(table, ratio.clamp(table[0], table[-1])).clamp(1, len(table) - 1)
            nearer_low = (ratio / table[pos - 1]).log().abs() < (table[pos] / ratio).log().abs()
            best = torch.where(nearer_low, pos - 1, pos)
            ratio_mode = mode == 0
            native[:, c_col] = torch.where(ratio_mode, coarse[best], native[:, c_col])
            native[:, f_col] = torch.where(ratio_mode, fine[best], native[:, f_col])
        return self.spec.encode(native).to(params.dtype)

    # --- rendering ------------------------------------------------------------------------------

    def render(self, params: torch.Tensor) -> torch.Tensor:
        """params (N, 225) normalised -> audio (N, T) float32 mono; the same params give the same audio."""
        native = self.voice_native(params)  # (N, 145), decoded once
        vced, notes = native_to_vced(native, self.transpose), np.rint(native[:, -1]).astype(int)
        if self._engine is None:
            self._engine = dexed.DexedSynth(sample_rate=float(self.sample_rate))
        # TODO(issue 4): a process pool for large N (one engine per worker, workers write the audio or
        # features to shard files themselves - moving audio back through the pool costs more than
        # rendering it, ~1.5 ms per 1.5 s note). A plain loop is enough for tests and small batches.
        out = np.zeros((len(vced), self.length), dtype=np.float32)
        raw = getattr(self._engine, "_synth", None)  # dexed-py's engine under its wrapper: takes the sysex bytes as they are
        for i, (voice, note) in enumerate(zip(dexed_sysex(vced) if raw is not None else vced, notes)):
            if raw is not None:
                raw.load_sysex(voice.tobytes())
            else:  # pragma: no cover - another dexed-py layout
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

    def params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        """Random patches at arbitrary example indices (N, 225); row i is a pure function of (seed, i).

        With prior="uniform", every native parameter takes each of its values with equal probability
        (categorical ones emit the one-hot block of the drawn choice); about a quarter are near silent.
        With prior="patch" (default), patches come from `PATCH_PRIOR` with near-silent ones redrawn, which
        needs a render per row: callers that want the audio too should use `draw` and render once.
        """
        if self.prior == "uniform":
            return self.uniform_params_at(seed, indices)
        return self.draw(seed, indices)[0]

    def uniform_params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        """The uniform prior at example indices (N, 225), whatever `self.prior` is."""
        u = hashed_uniform(seed, np.asarray(indices), len(self.spec.params))  # one draw per native param
        return self.spec.from_uniform(u)

    def draw(self, seed: int, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches of examples `indices` of split `seed` and their audio: (params (N, 225), audio (N, T)).

        prior="patch": draw j = 0 of example i comes from `prior_uniforms(seed, i, 0)`; every row whose
        audio is below `SILENCE_DBFS` (synths.sampling) is redrawn with j + 1, up to `MAX_REDRAWS` times (the
        last draw is kept if all were silent, which measured never happens). Each row therefore depends
        only on (seed, i), never on the batch it was drawn in.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if self.prior == "uniform":
            params = self.uniform_params_at(seed, indices)
            return params, self.render(params)
        def propose(j: int, rows: np.ndarray) -> torch.Tensor:
            return self.spec.encode(torch.from_numpy(self.prior_native(seed, rows, j))).float()

        return draw_until_audible(self, indices, propose)


def _ratio(coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """DX7 ratio-mode frequency multiplier: coarse (0 means 0.5) times 1 + fine / 100."""
    return torch.where(coarse == 0, 0.5, coarse) * (1.0 + fine / 100.0)


_RATIOS = None


def _ratio_table() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (coarse, fine) ratio, sorted: (ratios (3200,), their coarse, their fine) float64."""
    global _RATIOS
    if _RATIOS is None:
        coarse, fine = torch.meshgrid(torch.arange(32.0, dtype=torch.float64), torch.arange(100.0, dtype=torch.float64),
                                      indexing="ij")
        ratio = _ratio(coarse.flatten(), fine.flatten())
        order = ratio.argsort()
        _RATIOS = (ratio[order], coarse.flatten()[order], fine.flatten()[order])
    return _RATIOS


# --- the "patch" prior -------------------------------------------------------------------------------
#
# Each native parameter gets a mixture of integer-uniform ranges, written (weight, low, high); a point mass
# is (weight, v, v). Every mixture also carries `FULL_RANGE_WEIGHT` of the uniform prior over the whole
# range, so each value keeps some probability (a model trained on these data still sees every value).
# Operator fields have a carrier and a modulator mixture (carriers of the drawn algorithm from dexed-py's
# get_carriers); frequency fields depend on the drawn oscillator mode. Values are DX7 sysex units.
# The shape follows what makes DX7 factory voices audible and musical, with the 1 s note + 0.5 s release
# in mind: carriers attack fast-to-moderate, reach high levels and release within the window; modulators
# spread over the whole useful index range; fine frequency, detune, LFO depths, keyboard scaling and the
# pitch EG sit on their neutral value most of the time.

PRIORS = ("patch", "uniform")
FULL_RANGE_WEIGHT = 0.02
PITCH_EG_FLAT = 0.7  # probability of a flat pitch EG (levels 50, rates 99) - the usual DX7 setting
DB_PER_LEVEL_STEP = 0.75  # DX7 output level near the top of its scale
GAIN_ROUNDS = 6  # with_gain's measure-and-step rounds per carrier: one at a level ceiling needs several
CARRIER_STEPS_PER_DOUBLING = 8  # output level steps per 6 dB near the top of the DX7 scale (~0.75 dB/step)

_Mixture = tuple[tuple[float, int, int], ...]

PATCH_PRIOR: dict[str, dict[str, _Mixture]] = {
    # operator fields: {"carrier": ..., "modulator": ...} (one entry "any" when both share it)
    "eg_rate1": {"carrier": ((1.0, 60, 99),), "modulator": ((1.0, 35, 99),)},  # attack
    "eg_rate2": {"carrier": ((1.0, 25, 99),), "modulator": ((1.0, 15, 99),)},
    "eg_rate3": {"carrier": ((1.0, 15, 99),), "modulator": ((1.0, 5, 99),)},
    "eg_rate4": {"carrier": ((1.0, 30, 99),), "modulator": ((1.0, 20, 99),)},  # release
    "eg_level1": {"carrier": ((0.5, 99, 99), (0.5, 85, 98)), "modulator": ((0.4, 99, 99), (0.6, 50, 98))},
    "eg_level2": {"carrier": ((1.0, 60, 99),), "modulator": ((1.0, 25, 99),)},
    "eg_level3": {"carrier": ((0.25, 0, 0), (0.75, 40, 99)), "modulator": ((0.2, 0, 0), (0.8, 0, 99))},  # sustain
    "eg_level4": {"carrier": ((0.9, 0, 0), (0.1, 1, 30)), "modulator": ((0.8, 0, 0), (0.2, 1, 50))},
    "kbd_break_point": {"any": ((1.0, 0, 99),)},
    "kbd_left_depth": {"any": ((0.6, 0, 0), (0.4, 1, 60))},
    "kbd_right_depth": {"any": ((0.6, 0, 0), (0.4, 1, 60))},
    "kbd_left_curve": {"any": ((1.0, 0, 3),)},
    "kbd_right_curve": {"any": ((1.0, 0, 3),)},
    "kbd_rate_scaling": {"any": ((0.4, 0, 0), (0.6, 1, 7))},
    "amp_mod_sens": {"any": ((0.7, 0, 0), (0.3, 1, 3))},
    "key_vel_sens": {"any": ((1.0, 0, 7),)},
    # carriers: then lowered by CARRIER_STEPS_PER_DOUBLING * log2(number of carriers), so that a patch
    # with several carriers is about as loud as one with a single carrier (as in factory voices)
    "output_level": {"carrier": ((0.8, 85, 99), (0.2, 60, 84)), "modulator": ((0.1, 0, 0), (0.9, 25, 99))},
    "osc_mode": {"carrier": ((1.0, 0, 0),), "modulator": ((0.9, 0, 0), (0.1, 1, 1))},  # 0 = ratio
    # ratio mode (coarse 0 = x0.5); fixed mode: coarse 1/2/3 = 10/100/1000 Hz, fine spreads it
    "freq_coarse.ratio": {"carrier": ((0.1, 0, 0), (0.5, 1, 1), (0.2, 2, 2), (0.1, 3, 3), (0.1, 4, 4)),
                          "modulator": ((0.08, 0, 0), (0.3, 1, 1), (0.17, 2, 2), (0.12, 3, 3), (0.18, 4, 7),
                                        (0.1, 8, 14), (0.05, 15, 31))},
    "freq_coarse.fixed": {"any": ((0.2, 1, 1), (0.5, 2, 2), (0.3, 3, 3))},
    "freq_fine.ratio": {"any": ((0.6, 0, 0), (0.4, 1, 99))},
    "freq_fine.fixed": {"any": ((1.0, 0, 99),)},
    "detune": {"any": ((0.4, 7, 7), (0.6, 0, 14))},
    # global fields
    "algorithm": {"any": ((1.0, 0, 31),)},
    "feedback": {"any": ((0.3, 0, 0), (0.7, 1, 7))},
    "osc_key_sync": {"any": ((0.2, 0, 0), (0.8, 1, 1))},
    "lfo_speed": {"any": ((1.0, 0, 99),)},
    "lfo_delay": {"any": ((0.5, 0, 0), (0.5, 1, 99))},
    "lfo_pitch_mod_depth": {"any": ((0.6, 0, 0), (0.4, 1, 40))},
    "lfo_amp_mod_depth": {"any": ((0.6, 0, 0), (0.4, 1, 99))},
    "lfo_key_sync": {"any": ((1.0, 0, 1),)},
    "lfo_wave": {"any": ((1.0, 0, 5),)},
    "pitch_mod_sens": {"any": ((1.0, 0, 7),)},
    # pitch EG when not flat (probability 1 - PITCH_EG_FLAT): levels near 50 (no shift), rates spread
    **{f"pitch_eg_rate{k}": {"any": ((1.0, 30, 99),)} for k in range(1, 5)},
    **{f"pitch_eg_level{k}": {"any": ((0.4, 50, 50), (0.6, 30, 70))} for k in range(1, 5)},
    "note.midi": {"any": ((1.0, 48, 72),)},
}

_CARRIERS = None  # (32, 6) bool, filled on first use from dexed-py


def _carrier_table() -> np.ndarray:
    """(32, 6) bool: _carrier_table()[a, k] is True when op k+1 is a carrier in algorithm a+1."""
    global _CARRIERS
    if _CARRIERS is None:
        _require_dexed()
        table = np.zeros((32, N_OPS), dtype=bool)
        for a in range(32):
            table[a, dexed.get_carriers(a)] = True
        _CARRIERS = table
    return _CARRIERS


def prior_uniforms(seed: int, indices: np.ndarray, j: int = 0) -> np.ndarray:
    """Uniform [0, 1) numbers (N, 146, 2) for draw j of examples `indices`: two per native parameter (one
    picks the mixture component, one the value inside it) plus one row for the pitch-EG flat switch."""
    u = hashed_uniform(redraw_seed(seed, j), np.asarray(indices), 2 * (len(_FIELDS) + 2))
    return ((u + 1.0) / 2.0).reshape(len(indices), len(_FIELDS) + 2, 2)


def _sample_mixture(u: np.ndarray, mixture: _Mixture, low: int, high: int) -> np.ndarray:
    """u (N, 2) in [0, 1) -> integers (N,) from `mixture` plus FULL_RANGE_WEIGHT of uniform low..high."""
    comps = ((FULL_RANGE_WEIGHT, low, high),) + tuple(mixture)
    w = np.array([c[0] for c in comps], dtype=np.float64)
    lo = np.array([c[1] for c in comps], dtype=np.float64)
    hi = np.array([c[2] for c in comps], dtype=np.float64)
    cum = np.cumsum(w / w.sum())
    k = np.minimum(np.searchsorted(cum, u[:, 0], side="right"), len(comps) - 1)
    return np.minimum(lo[k] + np.floor(u[:, 1] * (hi[k] - lo[k] + 1)), hi[k])


def sample_patch_native(u: np.ndarray, spec: ParamSpec) -> np.ndarray:
    """`prior_uniforms` (N, 146, 2) -> native values (N, 145) from PATCH_PRIOR (note last, DX7 units)."""
    n, names = len(u), spec.names
    col = {name: i for i, name in enumerate(names)}
    bounds = {name: (int(p.low), int(p.high)) for name, p in zip(names, spec.params)}
    native = np.empty((n, len(names)), dtype=np.float64)

    def draw(name: str, key: str, role: str = "any") -> np.ndarray:
        return _sample_mixture(u[:, col[name]], PATCH_PRIOR[key][role], *bounds[name])

    for name in names:
        if name.startswith("global.") or name == "note.midi":
            key = name.removeprefix("global.")
            native[:, col[name]] = draw(name, key)
    algorithm = native[:, col["global.algorithm"]].astype(int)
    carriers = _carrier_table()[algorithm]  # (N, 6)
    for op in range(1, N_OPS + 1):
        is_carrier = carriers[:, op - 1]
        for field, *_ in _OP_FIELDS:
            name = f"op{op}.{field}"
            if field in ("freq_coarse", "freq_fine"):
                continue  # depend on the mode, below
            roles = PATCH_PRIOR[field]
            if "any" in roles:
                native[:, col[name]] = draw(name, field)
            else:
                native[:, col[name]] = np.where(is_carrier, draw(name, field, "carrier"), draw(name, field, "modulator"))
        level = col[f"op{op}.output_level"]
        quieter = np.rint(CARRIER_STEPS_PER_DOUBLING * np.log2(carriers.sum(axis=1)))
        native[:, level] = np.where(is_carrier, np.maximum(native[:, level] - quieter, 0), native[:, level])
        fixed = native[:, col[f"op{op}.osc_mode"]] == 1
        for field in ("freq_coarse", "freq_fine"):
            name = f"op{op}.{field}"
            ratio = PATCH_PRIOR[f"{field}.ratio"]
            if "any" in ratio:
                ratio_value = draw(name, f"{field}.ratio")
            else:
                ratio_value = np.where(is_carrier, draw(name, f"{field}.ratio", "carrier"),
                                       draw(name, f"{field}.ratio", "modulator"))
            native[:, col[name]] = np.where(fixed, draw(name, f"{field}.fixed"), ratio_value)
    flat = u[:, -1, 0] < PITCH_EG_FLAT
    for k in range(1, 5):
        native[flat, col[f"global.pitch_eg_rate{k}"]] = 99
        native[flat, col[f"global.pitch_eg_level{k}"]] = 50
    return native


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
