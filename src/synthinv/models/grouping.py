"""How well Param2Tok's learned assignment A groups parameters the way the synth does (k-osc: by oscillator).

    score = grouping_score(assign, groups)     # assign: A (n_tokens, P); groups: a label per column (P,)
    chance = grouping_chance(groups)           # the same score for a uniform A

For each token t, its mass is m_t = sum_p |A_tp| and its purity the largest share of that mass on one
group, max_g sum_{p in g} |A_tp| / m_t. The score is the mass-weighted mean purity over tokens: 1 when
every token draws from one group only (a block-diagonal A), and for a uniform A the largest group's share
of the columns (k-osc k=4: 0.25). `groups_covered` says how many groups are some token's main group (a
score of 1 with every token on the same oscillator is a grouping, but not the synth's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _shares(assign, groups: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """-> (per-token mass (n,), per-token share of mass on each group (n, G))."""
    a = np.abs(np.asarray(assign, dtype=np.float64))  # (n, P)
    if a.ndim != 2 or a.shape[1] != len(groups):
        raise ValueError(f"assignment of shape {a.shape} does not fit {len(groups)} column groups")
    names = list(dict.fromkeys(groups))
    labels = np.array([names.index(g) for g in groups])  # (P,)
    mass_by_group = np.stack([a[:, labels == g].sum(axis=1) for g in range(len(names))], axis=1)  # (n, G)
    mass = mass_by_group.sum(axis=1)  # (n,)
    return mass, mass_by_group / np.maximum(mass[:, None], 1e-300)


def grouping_score(assign, groups: Sequence[str]) -> float:
    """Mass-weighted mean over tokens of the largest share of a token's |A| on one group, in [chance, 1]."""
    mass, shares = _shares(assign, groups)
    return float((mass * shares.max(axis=1)).sum() / max(mass.sum(), 1e-300))


def grouping_chance(groups: Sequence[str]) -> float:
    """`grouping_score` of a uniform A: the largest group's share of the columns."""
    return grouping_score(np.ones((1, len(groups))), groups)


def groups_covered(assign, groups: Sequence[str]) -> int:
    """How many distinct groups are the main group (largest share) of at least one token."""
    _, shares = _shares(assign, groups)
    return len(set(shares.argmax(axis=1).tolist()))


def column_groups(spec) -> list[str]:
    """The group of every encoded column (`spec.size` of them), e.g. "op3" for op3.eg_rate1 or for each
    column of op3.osc_mode's one-hot block; "other" where a parameter has no group."""
    return [p.group or "other" for p in spec.params for _ in range(p.width)]


def model_grouping(model, synth) -> dict | None:
    """Param2Tok's grouping score of its assignment A by the synth's column groups (k-osc: oscillators; Dexed:
    op1..op6, global, note), with its chance level, the groups covered and their count; None for a model
    without a Param2Tok tokeniser."""
    from synthinv.models.tokenisers import param2tok_assignment

    assign = param2tok_assignment(model)
    if assign is None:
        return None
    groups = column_groups(synth.spec)
    return {"score": grouping_score(assign.detach(), groups), "chance": grouping_chance(groups),
            "covered": groups_covered(assign.detach(), groups), "groups": len(set(groups))}
