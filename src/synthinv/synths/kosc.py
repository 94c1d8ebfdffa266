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

from synthinv.synths.base import Param, ParamSpec

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


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """A counter-based hash (SplitMix64 finaliser); uint64 arithmetic wraps by design."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hashed_uniform(seed: int, indices: np.ndarray, width: int) -> np.ndarray:
    """Uniform [-1, 1) numbers of shape (len(indices), width); row i depends only on (seed, indices[i]).

    This is what makes example i a pure function of (split seed, i) while a whole batch is drawn in one
    vectorised call (no per-example generator objects).
    """
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed], dtype=np.uint64))
        counters = indices.astype(np.uint64)[:, None] * np.uint64(width) + np.arange(width, dtype=np.uint64)
        bits = _splitmix64(counters ^ key)
    return ((bits >> np.uint64(11)).astype(np.float64) * 2.0**-53) * 2.0 - 1.0


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


class KOscSynth:
    """k band-limited oscillators, mean-mixed. `render(params (N, 3k)) -> audio (N, 1024)`."""

    name = "kosc"

    def __init__(self, k: int = 4, asym: bool = False, sample_rate: int = 44100, length: int = 1024):
        if k < 1:
            raise ValueError(f"k must be a positive number of oscillators, got {k}")
        self.k, self.asym, self.sample_rate, self.length = k, asym, sample_rate, length
        self.spec = kosc_spec(k, asym, sample_rate, length)

    @classmethod
    def from_settings(cls, settings: dict) -> KOscSynth:
        return cls(settings["k"], settings["asym"], settings["sample_rate"], settings["length"])

    def render(self, params: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        # Rendered `chunk` rows at a time (default: ~256k oscillator samples per chunk, 64 rows at k=4):
        # the (rows, k, T) temporaries then stay in cache, which measured 2-9x faster than one call over a
        # batch of 1024 (benchmarks/bench_render.py).
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

    def random_params(self, n: int, seed: int, offset: int = 0) -> torch.Tensor:
        return self.params_at(seed, np.arange(offset, offset + n))

    def params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        """Parameters of arbitrary example indices of a split (N, P)."""
        return torch.from_numpy(hashed_uniform(seed, np.asarray(indices), self.spec.size)).float()


def to_tokens(params: torch.Tensor, k: int) -> torch.Tensor:
    """(N, 3k) -> (N, k, 3): one token per oscillator."""
    return params.reshape(params.shape[0], k, PARAMS_PER_OSC)


def sort_by_frequency(params: torch.Tensor, k: int) -> torch.Tensor:
    """Reorder oscillators by ascending frequency parameter: the symmetry-breaking heuristic."""
    tokens = to_tokens(params, k)
    order = tokens[..., 0].argsort(dim=1)  # (N, k)
    return torch.gather(tokens, 1, order[..., None].expand_as(tokens)).reshape(params.shape)
