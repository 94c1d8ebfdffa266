"""Putting candidates on the target's pitch, by its f0 (pYIN, the tracker the f0 metric uses).

synthinv.transpose lines spectra up, which needs no pitch tracker but can settle an octave or a fifth away
when the candidate's timbre differs; MSS then often prefers the wrong octave. For a pitched target, the
search starts are therefore moved to the target's f0 before CMA-ES runs (the note is not a searched
parameter, so the search keeps it): shift = the whole semitones between the two median f0s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from synthinv.synths.base import Synth
from synthinv.transpose import note_column, transpose_params

MIN_VOICED = 0.3  # share of frames pYIN must call voiced for a sound to count as pitched
STEADY_VOICED = 0.5  # a steady pitch: voiced on at least half the frames...
STEADY_CENTS = 50.0  # ...and three quarters of them within this many cents of the median
IN_TUNE_CENTS = 50.0  # a candidate is in tune when its f0 is this close to the target's (the f0 metric's bar)


def load_pitch_trackers() -> None:
    """Import librosa's pitch trackers and run each once on a short signal: the import (numba, scipy) takes
    seconds, which a process should pay before a time budget starts, and once before it forks workers."""
    import librosa

    from synthinv.metrics import F0

    x = np.sin(2 * np.pi * 220.0 * np.arange(4 * YIN_FRAME) / F0["sample_rate"]).astype(np.float32)
    librosa.yin(x, fmin=F0["fmin"], fmax=F0["fmax"], sr=F0["sample_rate"], frame_length=YIN_FRAME, center=False)
    librosa.pyin(x, fmin=F0["fmin"], fmax=F0["fmax"], sr=F0["sample_rate"], frame_length=F0["frame_length"],
                 hop_length=F0["hop_length"], resolution=F0["resolution"])


def median_f0(audio: torch.Tensor, sample_rate: int) -> np.ndarray:
    """audio (N, T) -> (N,) median f0 in Hz over voiced frames, NaN where fewer than MIN_VOICED are voiced."""
    from synthinv.metrics import f0_tracks

    return track_medians(f0_tracks(audio, sample_rate))


def track_medians(tracks: np.ndarray) -> np.ndarray:
    """f0 tracks (N, frames) (NaN = unvoiced) -> (N,) median f0 over voiced frames, NaN where fewer than
    MIN_VOICED are voiced."""
    voiced = np.isfinite(tracks)
    out = np.full(len(tracks), np.nan)
    for i, (track, v) in enumerate(zip(tracks, voiced)):
        if v.mean() >= MIN_VOICED:
            out[i] = float(np.median(track[v]))
    return out


def shifts_to(target_f0: float, f0: np.ndarray) -> torch.Tensor:
    """(N,) long: whole semitones that bring each f0 to target_f0 (0 where either is undefined)."""
    if not math.isfinite(target_f0):
        return torch.zeros(len(f0), dtype=torch.long)
    with np.errstate(invalid="ignore", divide="ignore"):
        semis = np.round(12 * np.log2(target_f0 / f0))
    return torch.from_numpy(np.where(np.isfinite(semis), semis, 0)).long()


def move_to_pitch(synth: Synth, params: torch.Tensor, target_f0: float,
                  f0: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """params (N, P) -> (params with the note moved to the target's f0, shift (N,) in semitones; 0 where the
    candidate is unpitched, already right, or the note would leave the synth's range). f0: the candidates'
    median f0s (N,) where the caller has them (tracked on a worker pool); else tracked here."""
    if note_column(synth.spec) is None or not math.isfinite(target_f0):
        return params, torch.zeros(len(params), dtype=torch.long)
    f0 = median_f0(synth.render(params), synth.sample_rate) if f0 is None else f0
    shift = shifts_to(target_f0, f0)
    moved, ok = transpose_params(synth.spec, params, shift)
    return moved, torch.where(ok, shift, 0)


def steady_pitch(tracks: np.ndarray) -> np.ndarray:
    """f0 tracks (N, frames) (NaN = unvoiced) -> (N,) bool: the sound holds one pitch (STEADY_VOICED of its
    frames voiced, three quarters of those within STEADY_CENTS of their median). Bells, glides and noise are
    not steady; what a listener would call the note of a pitched sound is."""
    out = np.zeros(len(tracks), dtype=bool)
    for i, track in enumerate(tracks):
        voiced = track[np.isfinite(track)]
        if len(voiced) and len(voiced) >= STEADY_VOICED * len(track):
            spread = np.abs(1200 * np.log2(voiced / np.median(voiced)))
            out[i] = np.percentile(spread, 75) <= STEADY_CENTS
    return out


# --- steering a search towards the target's pitch ---------------------------------------------------
# MSS hears little of a wrong note, so a search minimising MSS alone drifts off the target's pitch (carrier
# ratios are searched parameters). For a target with a steady pitch the search minimises MSS + a penalty
# for candidates whose f0 is off the target's, as cheaply as a fraction of a render: YIN (no HMM, unlike
# pYIN) on a few frames at the native rate, where the target is voiced.
SEARCH_PENALTY_DB = 1.0  # what a wrong note costs in the search: the finish's PITCH_TOLERANCE, one rule
PENALTY_FRAMES = 8  # YIN frames per candidate, spread over the target's voiced span
YIN_FRAME = 2048  # samples: the lag search needs frame - win >= sr / fmin (674 at 44.1 kHz, 65.4 Hz)
PERIODIC_WINDOW = 1024  # samples compared with the same span one target period later
# YIN always answers, even for noise or a clangorous FM tone that pYIN calls unvoiced (a miss for the f0
# metric); such a candidate does not repeat itself at the target's period. Periodicity relative to the
# target's own (examples/ood's notes: 0.96-1.00): no charge above 0.8 of it, the whole penalty below 0.5.
PERIODIC_FREE, PERIODIC_NONE = 0.8, 0.5


def periodicity(audio: np.ndarray, starts: tuple[int, ...], period: int) -> np.ndarray:
    """audio (N, T) -> (N,): median over the frames at `starts` of the normalised correlation between
    PERIODIC_WINDOW samples and the same span `period` samples later (1: repeats exactly)."""
    a = np.stack([audio[:, s:s + PERIODIC_WINDOW] for s in starts], axis=1)  # (N, K, W)
    b = np.stack([audio[:, s + period:s + period + PERIODIC_WINDOW] for s in starts], axis=1)  # (N, K, W)
    r = (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1) + 1e-20)  # (N, K)
    return np.median(r, axis=1)


@dataclass(frozen=True)
class PitchPenalty:
    """candidate audio (N, T) -> penalty in dB (N,): the larger of two charges, each from 0 to `penalty_db`:
    the pitch (0 within IN_TUNE_CENTS of the target's f0 by YIN, all of it a semitone off) and the
    periodicity at the target's period (PERIODIC_FREE / PERIODIC_NONE of the target's). `starts`: where the
    checked frames begin (samples)."""

    f0: float  # the target's median f0, Hz
    starts: tuple[int, ...]
    sample_rate: int
    target_periodicity: float
    penalty_db: float = SEARCH_PENALTY_DB

    @classmethod
    def for_target(cls, audio: torch.Tensor, track: np.ndarray, f0: float, sample_rate: int,
                   penalty_db: float = SEARCH_PENALTY_DB) -> PitchPenalty | None:
        """From the target's audio (T,), its pYIN track (frames at metrics.F0's hop) and median f0; None
        unless the target holds a steady pitch (a bell or a glide has no one note to keep)."""
        from synthinv.metrics import F0

        if not math.isfinite(f0) or not steady_pitch(track[None])[0]:
            return None
        voiced = np.flatnonzero(np.isfinite(track))
        hop = F0["hop_length"] * sample_rate / F0["sample_rate"]  # one track frame, in samples at sample_rate
        first, last = voiced[0] * hop, min(voiced[-1] * hop, audio.shape[-1] - YIN_FRAME)
        if last < first:
            return None
        starts = tuple(int(s) for s in np.linspace(first, last, PENALTY_FRAMES))
        x = np.asarray(audio, dtype=np.float32).reshape(1, -1)
        own = float(periodicity(x, starts, round(sample_rate / f0))[0])
        return cls(f0, starts, sample_rate, own, penalty_db)

    def cents(self, audio: torch.Tensor | np.ndarray) -> np.ndarray:
        """audio (N, T) -> (N,) |cents| between each candidate's median YIN f0 and the target's."""
        import librosa

        from synthinv.metrics import F0

        x = np.asarray(audio)
        frames = np.concatenate([x[:, s:s + YIN_FRAME] for s in self.starts], axis=1)  # (N, K * YIN_FRAME)
        f0 = librosa.yin(frames, fmin=F0["fmin"], fmax=F0["fmax"], sr=self.sample_rate, frame_length=YIN_FRAME,
                         hop_length=YIN_FRAME, center=False)  # (N, K): one value per checked frame
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs(1200 * np.log2(np.median(f0, axis=1) / self.f0))

    def __call__(self, audio: torch.Tensor | np.ndarray) -> np.ndarray:
        x = np.asarray(audio)
        off = np.nan_to_num(self.cents(x), nan=np.inf)  # silence: no pitch, as wrong as a wrong note
        wrong_note = np.clip((off - IN_TUNE_CENTS) / (100.0 - IN_TUNE_CENTS), 0.0, 1.0)
        r = periodicity(x, self.starts, round(self.sample_rate / self.f0)) / max(self.target_periodicity, 1e-6)
        aperiodic = np.clip((PERIODIC_FREE - r) / (PERIODIC_FREE - PERIODIC_NONE), 0.0, 1.0)
        return self.penalty_db * np.maximum(wrong_note, aperiodic)
