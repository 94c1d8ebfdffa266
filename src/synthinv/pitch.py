"""Putting candidates on the target's pitch, by its f0 (pYIN, the tracker the f0 metric uses).

synthinv.transpose lines spectra up, which needs no pitch tracker but can settle an octave or a fifth away
when the candidate's timbre differs; MSS then often prefers the wrong octave. For a pitched target, the
search starts are therefore moved to the target's f0 before CMA-ES runs (the note is not a searched
parameter, so the search keeps it): shift = the whole semitones between the two median f0s.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from synthinv.synths.base import Synth
from synthinv.transpose import note_column, transpose_params

MIN_VOICED = 0.3  # share of frames pYIN must call voiced for a sound to count as pitched
STEADY_VOICED = 0.5  # a steady pitch: voiced on at least half the frames...
STEADY_CENTS = 50.0  # ...and three quarters of them within this many cents of the median
IN_TUNE_CENTS = 50.0  # a candidate is in tune when its f0 is this close to the target's (the f0 metric's bar)


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


def move_to_pitch(synth: Synth, params: torch.Tensor, target_f0: float) -> tuple[torch.Tensor, torch.Tensor]:
    """params (N, P) -> (params with the note moved to the target's f0, shift (N,) in semitones; 0 where the
    candidate is unpitched, already right, or the note would leave the synth's range)."""
    if note_column(synth.spec) is None or not math.isfinite(target_f0):
        return params, torch.zeros(len(params), dtype=torch.long)
    shift = shifts_to(target_f0, median_f0(synth.render(params), synth.sample_rate))
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
