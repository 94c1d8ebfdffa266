"""How a rendered candidate is scored against the target sound: the distance invert ranks (and refines)
by, and the second opinion shown beside it. Each synth names its `Scoring` (`Synth.scoring`), so the
choice is made once, by the synth, and everything that scores follows it.

REAL_SYNTH (Dexed, plugins; the default of SynthBase): MSS, the paper's gain-blind multi-scale mel
distance, which ranked best-of-n samples closer to the target than a multi-resolution STFT distance did
(that distance's log term floors quiet bins and its convergence term hears only the loudest onset).
Second opinion: wMFCC (DTW-aligned MFCC distance), which the ranking does not use.
KOSC: k-osc notes (1024 samples) are shorter than MSS's 100 ms window, so the multi-resolution STFT
distance ranks; LSD over the 1024-sample spectrum is the second opinion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from synthinv.metrics import log_spectral_distance, mss_distance, multiscale_spectral_distance
from synthinv.mss_target import MSSTarget

if TYPE_CHECKING:
    from synthinv.synths.base import Synth


def _mfcc_distance(audio: torch.Tensor, targets: torch.Tensor, sample_rate: int) -> torch.Tensor:
    from synthinv.metrics import mfcc_distance  # librosa: imported only when a real synth is scored

    return mfcc_distance(audio, targets, sample_rate)


@dataclass(frozen=True)
class Scoring:
    label: str  # the ranking distance, as tables name it
    distance: Callable  # (audio (N, T), targets (N, T), sample_rate) -> (N,), lower is better
    check_key: str  # the second opinion's column in ranking.csv
    check_label: str
    check: Callable  # (audio (N, T), targets (N, T), sample_rate) -> (N,)
    # (target (T,), sample_rate, frame_stride=1) -> audio (N, T) -> `distance` (N,) to that one target, with the
    # target's own share of the work done once (a search scores thousands of candidates against one sound);
    # frame_stride > 1 asks for a cheaper estimate of it (invert's search_frame_stride). None: none
    prepare: Callable | None = None


KOSC = Scoring("STFT distance", lambda a, t, sr: multiscale_spectral_distance(a, t),
               "lsd", "LSD (dB)", lambda a, t, sr: log_spectral_distance(a, t))
REAL_SYNTH = Scoring("MSS (dB)", mss_distance, "wmfcc", "wMFCC", _mfcc_distance, prepare=MSSTarget)


def scoring(synth: Synth) -> Scoring:
    """The synth's own choice (`Synth.scoring`)."""
    return synth.scoring


def ranking_distance(synth: Synth, audio: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): what invert ranks (and refines) by, lower is better."""
    return scoring(synth).distance(audio, targets, synth.sample_rate)


def target_distance(synth: Synth, target: torch.Tensor, frame_stride: int = 1) -> Callable[[torch.Tensor], torch.Tensor]:
    """target (T,) -> a function audio (N, T) -> `ranking_distance` (N,) to that target. A scoring with a
    `prepare` (MSS: mss_target.MSSTarget keeps the target's spectrograms) pays only for the candidates.
    frame_stride s > 1: an estimate on every s-th spectrogram frame (MSS; others ignore it), what a search
    scores by with invert's search_frame_stride (the finish re-ranks by the exact distance)."""
    how = scoring(synth)
    if how.prepare is not None:
        return how.prepare(target, synth.sample_rate, frame_stride=frame_stride)
    return lambda audio: ranking_distance(synth, audio, target.expand_as(audio))


def check_distance(synth: Synth, audio: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): the second opinion shown beside the ranking distance."""
    return scoring(synth).check(audio, targets, synth.sample_rate)
