"""The synthetic k-oscillator synth of the paper, vectorised over the batch in torch.

Each oscillator has three normalised parameters [frequency, amplitude, waveform]; the flat vector is
oscillator-major: (N, 3k) = (N, k, 3).reshape. Frequency maps log-uniformly onto 20-4000 Hz, amplitude
onto [0, 1], and the waveform morphs sine (-1) -> square (0) -> sawtooth (+1), band-limited with polyBLEP.
The output is the mean of the oscillators, so permuting oscillators leaves the audio unchanged - unless
`asym` confines oscillator i to its own frequency band, which breaks the symmetry.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from synthinv.scoring import KOSC
from synthinv.synths.base import Param, ParamSpec, SynthBase, SynthSettingsError
from synthinv.synths.sampling import hashed_uniform
from synthinv.synths.tokens import sort_tokens, split_tokens

PARAMS_PER_OSC = 3
F_MIN, F_MAX = 20.0, 4000.0


def kosc_spec(k: int, asym: bool = False, sample_rate: int = 44100, length: int = 1024) -> ParamSpec:
    """The ParamSpec of a k-oscillator synth; with `asym`, oscillator i gets the i-th of k log bands."""
    edges = np.geomspace(F_MIN, F_MAX, k + 1) if asym else None
    params = []
    for i in range(k):
        lo, hi = (float(edges[i]), float(edges[i + 1])) if edges is not None else (F_MIN, F_MAX)
        g = f"osc{i}"
        params += [
            Param(f"osc{i}.freq", lo, hi, scale="log", group=g),
            Param(f"osc{i}.amp", 0.0, 1.0, group=g),
            Param(f"osc{i}.wave", -1.0, 1.0, group=g),
        ]
    settings = {"k": k, "asym": asym, "sample_rate": sample_rate, "length": length}
    return ParamSpec("kosc", tuple(params), settings)


def _poly_blep(phase: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """PolyBLEP residual that smooths a unit step at phase 0 (phase in [0, 1), dt = f / sr < 0.5).

    Written with clamps instead of branches: -(1 - phase/dt)^2 just after the step, (1 + (phase-1)/dt)^2
    just before it, zero elsewhere.
    """
    after = (1.0 - phase / dt).clamp_min(0.0)
    before = (1.0 + (phase - 1.0) / dt).clamp_min(0.0)
    return before * before - after * after


def oscillator_bank(freq_hz: torch.Tensor, wave: torch.Tensor, sample_rate: int, length: int) -> torch.Tensor:
    """freq_hz, wave: (N, k) -> waveforms (N, k, T) with the sine/square/saw morph, phase starting at 0."""
    n = torch.arange(length, dtype=torch.float32, device=freq_hz.device)
    dt = (freq_hz.float() / sample_rate)[..., None]  # (N, k, 1)
    phase = torch.frac(dt * n)  # (N, k, T)
    sine = torch.sin(2 * math.pi * phase)
    saw = 2 * phase - 1 - _poly_blep(phase, dt)
    # A square is the difference of two half-period-shifted saws. Built this way (rather than a sign
    # plus two corrections) it stays in [-1, 1] even where float32 rounds phase + 0.5 up to exactly 1.
    shifted = torch.frac(phase + 0.5)
    square = (2 * shifted - 1 - _poly_blep(shifted, dt)) - saw
    w = wave.float()[..., None]
    to_sine = (-w).clamp(0, 1)  # weight of sine for w in [-1, 0]
    to_saw = w.clamp(0, 1)  # weight of saw for w in [0, 1]
    out = to_sine * sine + to_saw * saw + (1 - to_sine - to_saw) * square
    return out


class KOscSynth(SynthBase):
    """k band-limited oscillators, mean-mixed. `render(params (N, 3k)) -> audio (N, 1024)`.

    Its per-synth choices: batches are rendered on the fly (no dataset), no patch bank (notes of 1024
    samples are too short for the bank's embedding), the multi-resolution STFT distance scores candidates
    (synthinv.scoring.KOSC), and the parameters are k oscillator tokens - interchangeable unless `asym`,
    in which case they are listed by ascending frequency (`canonical_order`)."""

    name = "kosc"
    trains_from_data = False
    spectrum_encoder = True
    uses_bank = False
    scoring = KOSC
    feature_settings = None  # the encoder takes the audio itself

    def __init__(self, k: int = 4, asym: bool = False, sample_rate: int = 44100, length: int = 1024):
        if k < 1:
            raise SynthSettingsError(f"k must be a positive number of oscillators, got {k}")
        self.k, self.asym, self.sample_rate, self.length = k, asym, sample_rate, length
        self.spec = kosc_spec(k, asym, sample_rate, length)
        self.n_tokens, self.symmetric = k, not asym

    @classmethod
    def from_settings(cls, settings: dict) -> KOscSynth:
        """From spec.settings (a checkpoint's) or a part of them: k (4), asym (False), sample_rate, length."""
        return cls(int(settings.get("k", 4)), bool(settings.get("asym", False)), int(settings.get("sample_rate", 44100)),
                   int(settings.get("length", 1024)))

    def render(self, params: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        # Rendered `chunk` rows at a time (default: ~256k oscillator samples per chunk, 64 rows at k=4):
        # the (rows, k, T) temporaries then stay in cache, which is faster than one call over a large
        # batch (benchmarks/bench_render.py).
        chunk = chunk or max(1, 2**18 // (self.k * self.length))
        native = self.spec.decode(params.float()).view(-1, self.k, PARAMS_PER_OSC)  # (N, k, 3)
        out = []
        for part in native.split(chunk):
            waves = oscillator_bank(part[..., 0], part[..., 2], self.sample_rate, self.length)  # (n, k, T)
            out.append((part[..., 1:2] * waves).mean(dim=1))  # (n, T)
        return torch.cat(out) if out else native.new_zeros(0, self.length)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """The encoder input of `audio` (N, T): the audio itself (SpectrumCNN computes its spectrum)."""
        return audio

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.length,)

    def params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        """Parameters of arbitrary example indices of a split (N, P)."""
        return torch.from_numpy(hashed_uniform(seed, np.asarray(indices), self.spec.size)).float()

    def canonical_order(self, params: torch.Tensor) -> torch.Tensor:
        """(N, 3k): symmetric oscillators by ascending frequency; with `asym` each keeps its own band's place."""
        return sort_by_frequency(params, self.k) if self.symmetric else params


def to_tokens(params: torch.Tensor, k: int) -> torch.Tensor:
    """(N, 3k) -> (N, k, 3): one token per oscillator."""
    return split_tokens(params, k)


def sort_by_frequency(params: torch.Tensor, k: int) -> torch.Tensor:
    """Reorder oscillators by ascending frequency parameter: the symmetry-breaking heuristic."""
    return sort_tokens(params, k)
