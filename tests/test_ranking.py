"""Rank-and-pick (synthinv.ranking): scoring candidates against their targets and picking the closest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthinv.ranking import Ranked, closest_distinct, rank
from synthinv.scoring import ranking_distance
from synthinv.transpose import transpose_params


class CountingSynth:
    """Wraps a synth and counts its renders."""

    def __init__(self, synth):
        self.synth, self.renders = synth, 0

    def __getattr__(self, name):
        return getattr(self.synth, name)

    def render(self, params):
        self.renders += len(params)
        return self.synth.render(params)


def test_rank_scores_each_candidate_against_its_own_target(kosc4):
    params = kosc4.params_at(3, np.arange(6)) * 1.5  # partly out of range: rendered clamped
    targets = kosc4.render(kosc4.params_at(4, np.arange(6)))
    ranked = rank(kosc4, params, targets)
    torch.testing.assert_close(ranked.audio, kosc4.render(params.clamp(-1, 1)))
    torch.testing.assert_close(ranked.distance, ranking_distance(kosc4, ranked.audio, targets))
    assert torch.equal(ranked.params, params) and not ranked.shift.any()  # the proposals as given


def test_rank_uses_given_audio_without_rendering(kosc4):
    synth = CountingSynth(kosc4)
    params = kosc4.params_at(3, np.arange(4))
    audio = kosc4.render(params)
    ranked = rank(synth, params, audio.flip(0), audio=audio)
    assert synth.renders == 0 and ranked.audio is audio


def test_best_is_the_closest_of_each_group_first_of_equals():
    distance = torch.tensor([3.0, 1.0, 2.0, 5.0, 4.0, 4.0, 0.5, 0.5, 9.0])
    ranked = Ranked(torch.zeros(9, 2), torch.zeros(9, 4), distance, torch.zeros(9, dtype=torch.long))
    assert ranked.best(per_target=3).tolist() == [1, 4, 6]
    assert ranked.best(per_target=9).tolist() == [6]


def test_the_closest_candidate_of_a_target_is_picked(kosc4):
    truth = kosc4.params_at(9, np.arange(1))
    others = kosc4.params_at(10, np.arange(5))
    params = torch.cat([others[:3], truth, others[3:]])  # the truth is row 3 of 6
    ranked = rank(kosc4, params, kosc4.render(truth).expand(6, -1))
    assert ranked.best(per_target=6).tolist() == [3] and ranked.distance[3] == pytest.approx(0, abs=1e-6)


def test_closest_distinct_skips_repeated_keys():
    distance = torch.tensor([0.4, 0.1, 0.3, 0.2, 0.1])
    keys = ["a", "b", "a", "b", "c"]
    assert closest_distinct(distance, keys, 2) == [1, 4]  # equals: the first first
    assert closest_distinct(distance, keys, 5) == [1, 4, 2]  # only three keys differ
    assert closest_distinct(distance, list(range(5)), 5) == [1, 4, 3, 2, 0]


def test_transposed_candidates_are_kept_only_where_closer():
    pytest.importorskip("dexed")
    from synthinv.synths.dexed import DexedSynth

    dexed = DexedSynth()
    params = dexed.draw(11, np.arange(4))[0]
    targets = dexed.render(transpose_params(dexed.spec, params, torch.tensor([5, 5, 5, 5]))[0])  # a fourth up
    plain, moved = rank(dexed, params, targets), rank(dexed, params, targets, transpose=True)
    assert (moved.distance <= plain.distance).all() and moved.shift.any()
    kept = moved.shift == 0
    torch.testing.assert_close(moved.distance[kept], plain.distance[kept])
    torch.testing.assert_close(moved.distance, ranking_distance(dexed, moved.audio, targets))


def test_a_candidates_rank_distance_does_not_depend_on_the_others():
    """scripts/best_of_n.py ranks N_max candidates once and takes best of N among the first N for every N:
    exact only if each candidate's distance (transposition included) is the same ranked alone or in a crowd."""
    pytest.importorskip("dexed")
    from synthinv.synths.dexed import DexedSynth

    dexed = DexedSynth()
    params = dexed.draw(13, np.arange(6))[0]
    target = dexed.render(dexed.draw(14, np.arange(1))[0])[0]  # (T,)
    crowd = rank(dexed, params, target.expand(6, -1), transpose=True)
    first_two = rank(dexed, params[:2], target.expand(2, -1), transpose=True)
    torch.testing.assert_close(first_two.distance, crowd.distance[:2])
    assert torch.equal(first_two.shift, crowd.shift[:2])


def test_best_of_n_scores_a_folder_as_invert_prepares_it(tmp_path):
    """scripts/best_of_n.py --audio-dir: the files in name order, each the exact target `invert` would score."""
    pytest.importorskip("dexed")
    import argparse
    import shutil
    from pathlib import Path

    import soundfile as sf
    from scipy.signal import resample_poly

    from conftest import load_script
    from synthinv.pipeline import Inverter

    root = Path(__file__).resolve().parents[1]
    module = load_script("best_of_n")
    folder = tmp_path / "sounds"
    folder.mkdir()
    shutil.copy(root / "examples" / "ood" / "bass_43.wav", folder / "b.wav")
    mono, rate = sf.read(root / "examples" / "ood" / "flute_72.wav", dtype="float32")
    stereo_48k = resample_poly(mono, 160, 147).astype(np.float32)  # 44.1 -> 48 kHz, then two channels
    sf.write(folder / "a.wav", np.stack([stereo_48k, 0.5 * stereo_48k], axis=1), 48000)
    args = argparse.Namespace(audio_dir=folder, n=10, data=None)
    with Inverter("dexed-flow-mlp", workers=1, show_progress=False) as inverter:
        feats, audio = module.targets(args, inverter.synth)
        expected = torch.stack([inverter.prepare(folder / name).audio for name in ("a.wav", "b.wav")])  # (2, T)
        torch.testing.assert_close(audio, expected)
        torch.testing.assert_close(feats, inverter.synth.features(expected))
