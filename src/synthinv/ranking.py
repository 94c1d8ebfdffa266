"""Rank-and-pick: candidate presets rendered, scored against their target sound by the synth's ranking
distance (synthinv.scoring), optionally each moved to the target's pitch, and the closest picked. What
`invert` returns first, what `evaluate` scores as best-of-N and what the OOD baselines keep all come from here.

    ranked = rank(synth, params, target.expand(len(params), -1), transpose=True)   # params (N, P), target (T,)
    best = ranked.best(per_target=len(params))                                      # (1,) row index
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

from synthinv.scoring import ranking_distance
from synthinv.transpose import align_to_target


@dataclass(frozen=True)
class Ranked:
    """Scored candidates: row i was scored against target row i."""

    params: torch.Tensor  # (N, P) as scored: a transposition where it was closer than the proposal
    audio: torch.Tensor  # (N, T)
    distance: torch.Tensor  # (N,) ranking distance to its target, lower is better
    shift: torch.Tensor  # (N,) long: semitones each row was transposed by (0: as proposed)

    def best(self, per_target: int) -> torch.Tensor:
        """(G,) row indices: the closest row of each of G consecutive groups of `per_target` candidates
        (one group per target; the first of equals)."""
        groups = self.distance.reshape(-1, per_target)  # (G, per_target)
        return torch.arange(groups.shape[0]) * per_target + groups.argmin(1)


def rank(synth, params: torch.Tensor, targets: torch.Tensor, *, audio: torch.Tensor | None = None,
         transpose: bool = False) -> Ranked:
    """Candidates params (N, P) scored against targets (N, T) by `ranking_distance`, rendered from the
    params clamped to [-1, 1] unless their `audio` (N, T) is given. With `transpose`, each row keeps the
    closer of itself and its likeliest transpositions to its target (synthinv.transpose.align_to_target)."""
    audio = synth.render(params.clamp(-1, 1)) if audio is None else audio
    distance = ranking_distance(synth, audio, targets)
    if not transpose:
        return Ranked(params, audio, distance, torch.zeros(len(params), dtype=torch.long))
    return Ranked(*align_to_target(synth, params, audio, targets, distance))


def closest_distinct(distance: torch.Tensor, keys: Sequence[Hashable], n: int) -> list[int]:
    """Indices of the `n` closest candidates (distance (N,), ascending, the first of equals first) whose
    keys differ: a candidate whose key an earlier one has is skipped. Fewer when fewer keys differ."""
    chosen, seen = [], set()
    for i in distance.argsort(stable=True).tolist():
        if keys[i] not in seen:
            seen.add(keys[i])
            chosen.append(i)
            if len(chosen) == n:
                break
    return chosen
