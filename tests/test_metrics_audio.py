"""The real-synth audio metric: the paper's multi-scale mel distance (MSS)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synthinv.features import log_mel_spectrogram
from synthinv.metrics import MSS_SCALES, mss_distance, relative_log_mel

SR = 44100
T = SR // 2  # half a second


def tone(hz: float, gain: float = 0.5, harmonics: int = 8, decay: float = 3.0) -> torch.Tensor:
    """A decaying harmonic tone (T,) with partials 1/h, like a soft sawtooth."""
    t = torch.arange(T, dtype=torch.float64) / SR
    wave = sum(torch.sin(2 * math.pi * hz * h * t) / h for h in range(1, harmonics + 1))
    return (gain * wave * torch.exp(-decay * t) / 2).float()


@pytest.fixture(scope="module")
def tones():
    return torch.stack([tone(220.0), tone(330.0, 0.3), tone(523.25, 0.2, harmonics=3)])  # (3, T)


def test_scales_are_the_papers():
    assert MSS_SCALES == ((10.0, 5.0, 32), (25.0, 10.0, 64), (100.0, 50.0, 128))


def test_zero_on_identical_audio(tones):
    d = mss_distance(tones, tones.clone(), SR)
    assert d.shape == (3,)
    assert torch.equal(d, torch.zeros(3))


def test_symmetric(tones):
    other = tones.roll(1, dims=0)
    torch.testing.assert_close(mss_distance(tones, other, SR), mss_distance(other, tones, SR), atol=0, rtol=0)
    assert (mss_distance(tones, other, SR) > 1.0).all()


def test_a_pitch_shift_costs_more_than_a_small_gain_change(tones):
    semitone_up = torch.stack([tone(220.0 * 2 ** (1 / 12)), tone(330.0 * 2 ** (1 / 12), 0.3),
                               tone(523.25 * 2 ** (1 / 12), 0.2, harmonics=3)])
    gain = mss_distance(tones * 0.8, tones, SR)
    shift = mss_distance(semitone_up, tones, SR)
    assert (shift > 1.0).all(), shift
    assert (gain < 0.01).all(), gain  # each log-mel is relative to its own maximum
    assert (shift > 100 * gain).all()


def test_gain_invariant_even_for_quiet_sounds(tones):
    # the relative floor (80 dB below the peak) acts, not the -100 dB absolute floor of the stored features
    quiet = tones * 1e-3  # -60 dB
    assert (mss_distance(quiet, tones, SR) < 0.01).all()


def test_relative_log_mel_is_within_range_and_peaks_at_zero(tones):
    rel = relative_log_mel(tones, SR, 25.0, 10.0, 64)
    assert rel.shape == (3, 64, 1 + T // 441)
    assert torch.allclose(rel.amax(dim=(1, 2)), torch.zeros(3))
    assert rel.min() >= -80.0


def test_matches_a_direct_computation(tones):
    """Mean over scales of mean |dB_a - max dB_a - (dB_b - max dB_b)| with both floored at -80 dB."""
    a, b = tones, tones.roll(1, dims=0)
    expected = np.zeros(3)
    for win, hop, mels in MSS_SCALES:
        ra, rb = (log_mel_spectrogram(x, SR, mels, win, hop, floor_db=-240.0).double().numpy() for x in (a, b))
        ra = np.maximum(ra - ra.max(axis=(1, 2), keepdims=True), -80)
        rb = np.maximum(rb - rb.max(axis=(1, 2), keepdims=True), -80)
        expected += np.abs(ra - rb).mean(axis=(1, 2)) / len(MSS_SCALES)
    np.testing.assert_allclose(mss_distance(a, b, SR).numpy(), expected, rtol=1e-5, atol=1e-4)


def test_silence(tones):
    silent = torch.zeros(2, T)
    assert torch.equal(mss_distance(silent, silent.clone(), SR), torch.zeros(2))
    # silence is the floor everywhere (not a flat 0 dB that a loud, dense sound would nearly match)
    assert (mss_distance(silent, tones[:2], SR) > 10).all()
    assert torch.equal(relative_log_mel(silent, SR, 25.0, 10.0, 64), torch.full((2, 64, 1 + T // 441), -80.0))


def test_shape_mismatch_is_refused(tones):
    with pytest.raises(ValueError, match="shape"):
        mss_distance(tones, tones[:, :-1], SR)
