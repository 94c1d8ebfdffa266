"""Moving candidates to the target's pitch (synthinv.transpose)."""

import numpy as np
import pytest
import torch

from synthinv.scoring import ranking_distance
from synthinv.transpose import align_to_target, note_column, semitone_shifts, transpose_params

SR = 44100


def harmonic_tone(f0: float, seconds: float = 0.5, partials: int = 8) -> torch.Tensor:
    """A tone with decaying harmonics (T,): a stand-in for any pitched sound."""
    t = np.arange(int(seconds * SR)) / SR
    return torch.from_numpy(sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, partials + 1))).float()


@pytest.fixture(scope="module")
def dexed():
    pytest.importorskip("dexed")
    from synthinv.synths.dexed import DexedSynth

    return DexedSynth()


def test_shift_of_harmonic_tones_is_the_interval_between_them():
    base = 220.0
    intervals = [-19, -12, -7, -1, 0, 3, 12, 17]
    candidates = torch.stack([harmonic_tone(base) for _ in intervals])  # (8, T), all at 220 Hz
    targets = torch.stack([harmonic_tone(base * 2 ** (s / 12)) for s in intervals])
    assert semitone_shifts(candidates, targets, SR, max_shift=24)[:, 0].tolist() == intervals


def test_shift_ignores_a_different_spectral_envelope():
    """Same pitch, brighter timbre (more, stronger partials): no transposition."""
    dull = harmonic_tone(330.0, partials=3)[None]
    bright = torch.from_numpy(sum(np.sin(2 * np.pi * 330.0 * k * np.arange(SR // 2) / SR) for k in range(1, 20))).float()[None]
    assert semitone_shifts(dull, bright, SR, max_shift=24).item() == 0  # (1, 1)


def test_transpose_params_moves_only_the_note_and_stays_in_range(dexed):
    spec = dexed.spec
    col, low, high = note_column(spec)
    native = spec.decode(dexed.random_params(4, seed=3)).clone()
    native[:, -1] = torch.tensor([48.0, 60.0, 70.0, 72.0])  # the note is the last native value
    params = spec.encode(native).float()
    moved, ok = transpose_params(spec, params, torch.tensor([-1, 5, 5, 0]))
    assert ok.tolist() == [False, True, False, False]  # 47 and 75 are outside 48-72; 0 is no move
    after = spec.decode(moved)
    assert after[:, -1].tolist() == [48.0, 65.0, 70.0, 72.0]
    assert torch.equal(after[:, :-1], spec.decode(params)[:, :-1])


def test_dexed_transpositions_are_recovered(dexed):
    """Rendering a patch and the same patch s semitones up: the estimate is s for most patches (measured 94%
    of 91 test patches; the misses are patches whose spectrum is nearly shift-invariant, e.g. noise-like)."""
    params = dexed.draw(11, np.arange(24))[0]
    shifts = torch.randint(-10, 11, (24,), generator=torch.Generator().manual_seed(0))
    moved, ok = transpose_params(dexed.spec, params, shifts)
    estimate = semitone_shifts(dexed.render(params[ok]), dexed.render(moved[ok]), dexed.sample_rate, 24)[:, 0]
    assert (estimate == shifts[ok]).float().mean() >= 0.8


def test_align_keeps_the_closer_of_each_pair_and_finds_a_transposed_truth(dexed):
    native = dexed.spec.decode(dexed.draw(5, np.arange(6))[0])
    native[:, -1] = 60  # mid-range, so every shift below stays inside MIDI 48-72
    truth = dexed.spec.encode(native).float()  # (6, P)
    shifts = torch.tensor([7, -5, 12, 3, 0, -2])
    wrong, ok = transpose_params(dexed.spec, truth, shifts)  # the right patch on the wrong note
    assert ok.tolist() == [True] * 4 + [False, True]
    targets, audio = dexed.render(truth), dexed.render(wrong)
    distance = ranking_distance(dexed, audio, targets)
    params, new_audio, new_distance, applied = align_to_target(dexed, wrong, audio, targets, distance)
    assert (new_distance <= distance).all()  # never worse: the original is kept unless the move is closer
    assert torch.equal(ranking_distance(dexed, new_audio, targets), new_distance)  # audio and distance agree
    assert torch.equal(dexed.render(params), new_audio)  # params and audio agree
    recovered = (applied == -shifts) & (new_distance < 1e-3)  # back on the true note: identical audio
    assert recovered.sum() >= 4
    assert applied[4] == 0 and torch.equal(params[4], wrong[4])  # already right: left alone


def test_synths_without_a_note_parameter_are_left_alone(kosc4):
    params = kosc4.random_params(3, seed=0)
    audio = kosc4.render(params)
    targets = audio.roll(1, 0)
    distance = ranking_distance(kosc4, audio, targets)
    out = align_to_target(kosc4, params, audio, targets, distance)
    assert out[0] is params and out[1] is audio and out[2] is distance and not out[3].any()


def test_short_sounds_use_a_shorter_window():
    """A note shorter than the 8192-sample window still gets a shift (a 0.1 s tone, 4410 samples)."""
    a, b = harmonic_tone(330.0, seconds=0.1)[None], harmonic_tone(330.0 * 2 ** (5 / 12), seconds=0.1)[None]
    assert semitone_shifts(a, b, SR, max_shift=12)[0, 0].item() == 5
