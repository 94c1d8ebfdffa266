"""The Param2Tok grouping score: 1 for a block-diagonal assignment, chance for a uniform one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthinv import synths
from synthinv.build import build_model
from synthinv.config import load_config
from synthinv.models.grouping import column_groups, grouping_chance, grouping_score, groups_covered

GROUPS = [f"osc{i}" for i in range(4) for _ in range(3)]  # k-osc k=4: 4 oscillators x 3 columns


def test_block_diagonal_scores_one_and_uniform_scores_chance():
    block = np.kron(np.eye(4), np.ones((1, 3)))  # (4, 12): token i draws from oscillator i only
    assert grouping_score(block, GROUPS) == pytest.approx(1.0)
    assert groups_covered(block, GROUPS) == 4
    assert grouping_score(np.full((4, 12), 0.3), GROUPS) == pytest.approx(0.25)
    assert grouping_chance(GROUPS) == pytest.approx(0.25)
    assert grouping_score(-block, GROUPS) == pytest.approx(1.0)  # |A|: signs do not matter


def test_score_falls_from_one_to_chance_as_the_blocks_blur():
    block, uniform = np.kron(np.eye(4), np.ones((1, 3))), np.ones((4, 12))
    scores = [grouping_score((1 - t) * block + t * uniform, GROUPS) for t in (0.0, 0.2, 0.5, 1.0)]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(1) and scores[-1] == pytest.approx(0.25)
    assert groups_covered(np.tile(block[:1], (4, 1)), GROUPS) == 1  # pure tokens, all on one oscillator


def test_a_fresh_param2tok_on_kosc_scores_near_chance():
    synth = synths.get("kosc", k=4)
    groups = column_groups(synth.spec)
    assert len(set(groups)) == 4
    config = load_config("flow_param2tok", "kosc")
    for noise, tolerance in ((1e-4, 0.01), (1e-2, 0.05)):  # the paper's init, and the config's less symmetric one
        config.model.init_noise = noise
        assign = build_model(config, synth).field.tokeniser.assign.detach()  # (4, 12), constant + noise
        assert grouping_score(assign, groups) == pytest.approx(grouping_chance(groups), abs=tolerance)
    with pytest.raises(ValueError, match="does not fit"):
        grouping_score(torch.ones(4, 11), groups)
