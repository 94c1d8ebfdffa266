"""How a rendered candidate is scored against the target sound: the distance invert ranks (and refines)
by, and the second opinion shown beside it. One entry per kind of synth, so the choice is made in one place.

Real synths (Dexed, plugins): MSS, the paper's gain-blind multi-scale mel distance. On 256 Dexed test sounds
the best of 8 flow samples by MSS scored 8.3 dB MSS, the best by a multi-resolution STFT distance 10.4 dB,
both before candidates were also moved to the target's pitch (that distance's log term floors quiet bins
and its convergence term hears only the loudest onset). Second
opinion: wMFCC (DTW-aligned MFCC distance), which the ranking does not use.
k-osc: its notes (1024 samples) are shorter than MSS's 100 ms window, so the multi-resolution STFT
distance ranks; LSD over the 1024-sample spectrum is the second opinion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from synthinv.metrics import MSSTarget, log_spectral_distance, mss_distance, multiscale_spectral_distance


def _mfcc_distance(audio: torch.Tensor, targets: torch.Tensor, sample_rate: int) -> torch.Tensor:
    from synthinv.audio_metrics import mfcc_distance  # librosa: imported only when a real synth is scored

    return mfcc_distance(audio, targets, sample_rate)


@dataclass(frozen=True)
class Scoring:
    label: str  # the ranking distance, as tables name it
    distance: Callable  # (audio (N, T), targets (N, T), sample_rate) -> (N,), lower is better
    check_key: str  # the second opinion's column in ranking.csv
    check_label: str
    check: Callable  # (audio (N, T), targets (N, T), sample_rate) -> (N,)


KOSC = Scoring("STFT distance", lambda a, t, sr: multiscale_spectral_distance(a, t),
               "lsd", "LSD (dB)", lambda a, t, sr: log_spectral_distance(a, t))
REAL_SYNTH = Scoring("MSS (dB)", mss_distance, "wmfcc", "wMFCC", _mfcc_distance)


def scoring(synth) -> Scoring:
    return KOSC if synth.name == "kosc" else REAL_SYNTH


def ranking_distance(synth, audio: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): what invert ranks (and refines) by, lower is better."""
    return scoring(synth).distance(audio, targets, synth.sample_rate)


def target_distance(synth, target: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """target (T,) -> a function audio (N, T) -> `ranking_distance` (N,) to that target. Real synths keep the
    target's MSS spectrograms (metrics.MSSTarget), so a search pays only for its candidates' spectrograms."""
    if scoring(synth) is REAL_SYNTH:
        return MSSTarget(target, synth.sample_rate)
    return lambda audio: ranking_distance(synth, audio, target.expand_as(audio))


def check_distance(synth, audio: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): the second opinion shown beside the ranking distance."""
    return scoring(synth).check(audio, targets, synth.sample_rate)
