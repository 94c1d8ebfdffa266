"""Dexed Simple: the DX7 voice cut down to what shapes most of its sound, as the paper's Surge XT Simple.

Kept (the spec, 75 native parameters, 112 encoded columns):

    op1 .. op6 (13 columns each)   EG rates 1-4 and levels 1-4, output level, oscillator mode (one-hot:
                                   ratio / fixed), frequency coarse, fine
    global (33 columns)            algorithm (one-hot, 32), feedback
    note (1 column)                MIDI note 48-72

Fixed at `FIXED` (DX7 sysex units, the INIT VOICE's values where it has them): keyboard level scaling
(depths 0), keyboard rate scaling 0, amp-mod and velocity sensitivity 0, detune centred, pitch EG flat,
LFO off (both depths 0), oscillator key sync on (every note starts at the same phase). Why these: re-drawn
from the patch prior one group at a time, each moves the sound much less than the kept fields do
(results/dexed_simple.md, "Which fields to fix"; scripts/dexed_simple_groups.py measures it).

Everything else is Dexed's: the same renderer, note settings, RETUNE / GAIN, .syx presets (always a whole
DX7 voice: the fixed fields are written with their values), and the patch prior (`PATCH_PRIOR`, drawn for
the whole voice, then the fixed fields set), with near-silent draws redrawn. The spec is named
"dexed_simple" and records the fixed values in its settings, so a Dexed Full dataset or checkpoint is
refused by name, and one made with other fixed values by its spec hash.

    synth = synths.get("dexed_simple")
    params = synth.random_params(8, seed=0)       # (8, 112)
    audio = synth.render(params)                  # (8, 66150) float32
"""

from __future__ import annotations

import numpy as np

from synthinv.synths.base import ParamSpec, SynthSettingsError
from synthinv.synths.dexed import N_OPS, DexedSynth, prior_uniforms, sample_patch_native

KEPT_OP_FIELDS = (*(f"eg_rate{i}" for i in range(1, 5)), *(f"eg_level{i}" for i in range(1, 5)),
                  "output_level", "osc_mode", "freq_coarse", "freq_fine")
KEPT_GLOBAL_FIELDS = ("algorithm", "feedback")

# the fixed fields, by group (as measured in scripts/dexed_simple_groups.py); op fields apply to all six
FIXED_GROUPS: dict[str, dict[str, int]] = {
    "keyboard level scaling": {"kbd_break_point": 39, "kbd_left_depth": 0, "kbd_right_depth": 0,
                               "kbd_left_curve": 0, "kbd_right_curve": 0},  # no scaling (break point C3)
    "rate scaling": {"kbd_rate_scaling": 0},
    "velocity sensitivity": {"key_vel_sens": 0},
    "amp-mod sensitivity": {"amp_mod_sens": 0},
    "detune": {"detune": 7},  # centre
    "pitch EG": {**{f"global.pitch_eg_rate{k}": 99 for k in range(1, 5)},
                 **{f"global.pitch_eg_level{k}": 50 for k in range(1, 5)}},  # flat: no pitch movement
    "LFO": {"global.lfo_speed": 35, "global.lfo_delay": 0, "global.lfo_pitch_mod_depth": 0,
            "global.lfo_amp_mod_depth": 0, "global.lfo_key_sync": 1, "global.lfo_wave": 0,
            "global.pitch_mod_sens": 3},  # INIT VOICE's LFO, with no depth: no vibrato or tremolo
    "osc key sync": {"global.osc_key_sync": 1},
}


def _voice_columns(group: dict[str, int]) -> dict[str, int]:
    """{whole-voice name: value}: op fields expanded to op1..op6."""
    out = {}
    for name, value in group.items():
        if name.startswith("global."):
            out[name] = value
        else:
            out.update({f"op{op}.{name}": value for op in range(1, N_OPS + 1)})
    return out


FIXED: dict[str, int] = {k: v for group in FIXED_GROUPS.values() for k, v in _voice_columns(group).items()}


def kept(name: str) -> bool:
    """Whether whole-voice parameter `name` is one of Dexed Simple's."""
    if name == "note.midi":
        return True
    field = name.split(".", 1)[1]
    return field in (KEPT_GLOBAL_FIELDS if name.startswith("global.") else KEPT_OP_FIELDS)


def simple_spec(full: ParamSpec) -> ParamSpec:
    """The Simple subset of a whole-voice Dexed spec (same order), its settings plus the fixed values."""
    params = tuple(p for p in full.params if kept(p.name))
    missing = set(full.names) - {p.name for p in params} - set(FIXED)
    assert not missing and not set(FIXED) & {p.name for p in params}, "each field is either kept or fixed"
    return ParamSpec("dexed_simple", params, {**full.settings, "fixed": dict(FIXED)})


class DexedSimpleSynth(DexedSynth):
    """Dexed with the `FIXED` fields held: `render(params (N, 112)) -> audio (N, T)` float32."""

    name = "dexed_simple"

    def __init__(self, sample_rate: int = 44100, note_duration: float = 1.0, release: float = 0.5, velocity: int = 100,
                 transpose: int = 24, min_note: int = 48, max_note: int = 72, prior: str = "patch",
                 fixed: dict | None = None):
        super().__init__(sample_rate, note_duration, release, velocity, transpose, min_note, max_note, prior)
        if fixed is not None and dict(fixed) != FIXED:  # a checkpoint or dataset of another Simple
            diff = sorted(k for k in set(fixed) | set(FIXED) if fixed.get(k) != FIXED.get(k))
            raise SynthSettingsError(f"this Dexed Simple fixes other values than the one recorded ({', '.join(diff[:4])}"
                                     f"{', ...' if len(diff) > 4 else ''}); it cannot use that model or dataset")
        self.full_spec = self.spec  # the whole voice: what is rendered and written to .syx
        self.spec = simple_spec(self.full_spec)
        names = self.full_spec.names
        self._kept = np.array([i for i, n in enumerate(names) if kept(n)])  # (75,) whole-voice columns kept
        self._fixed_row = np.zeros(len(names))  # (145,) the fixed values, in whole-voice layout
        for name, value in FIXED.items():
            self._fixed_row[names.index(name)] = value

    @classmethod
    def from_settings(cls, settings: dict) -> DexedSimpleSynth:
        keys = ("sample_rate", "note_duration", "release", "velocity", "transpose", "min_note", "max_note", "prior",
                "fixed")
        return cls(**{k: settings[k] for k in keys if k in settings})

    def voice_native(self, params) -> np.ndarray:
        """Normalised (N, 112) -> the whole voice's native values (N, 145), fixed fields filled in."""
        simple = super().voice_native(params)  # (N, 75)
        full = np.tile(self._fixed_row, (len(simple), 1))
        full[:, self._kept] = simple
        return full

    def from_voice_native(self, native: np.ndarray) -> np.ndarray:
        """(N, 145) -> (N, 75): a whole voice projected onto Simple (its fixed-field values are dropped)."""
        return np.asarray(native)[:, self._kept]

    def prior_native(self, seed: int, rows: np.ndarray, j: int) -> np.ndarray:
        """Dexed's patch prior for the whole voice (the same uniforms), then the fixed fields set: (N, 75)."""
        return self.from_voice_native(sample_patch_native(prior_uniforms(seed, rows, j), self.full_spec))

