"""Audio metrics for real synths (synthinv.metrics) on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synthinv.metrics import (
    audio_metrics,
    f0_cents_between,
    f0_error_cents,
    f0_tracks,
    mfcc_distance,
    rms_envelope_similarity,
    spectral_ot_distance,
)

SR = 44100
T = int(0.75 * SR)


def sine(hz: float, gain: float = 0.5, decay: float = 0.0) -> torch.Tensor:
    t = torch.arange(T, dtype=torch.float64) / SR
    return (gain * torch.sin(2 * math.pi * hz * t) * torch.exp(-decay * t)).float()


def harmonic(hz: float, harmonics: int, tilt: float = 1.0) -> torch.Tensor:
    """A tone (T,) with partials of amplitude 1 / h**tilt: more tilt, duller timbre."""
    t = torch.arange(T, dtype=torch.float64) / SR
    wave = sum(torch.sin(2 * math.pi * hz * h * t) / h**tilt for h in range(1, harmonics + 1))
    return (0.3 * wave / wave.abs().max()).float()


@pytest.fixture(scope="module")
def tones():
    return torch.stack([sine(220.0), harmonic(330.0, 8), sine(523.25, decay=3.0)])  # (3, T)


def test_zero_on_identical_input(tones):
    scores = audio_metrics(tones, tones.clone(), SR)
    for name in ("mss", "wmfcc", "sot", "f0_cents"):
        assert scores[name].shape == (3,), name
        torch.testing.assert_close(scores[name], torch.zeros(3), atol=1e-6, rtol=0, msg=name)
    torch.testing.assert_close(scores["rms_cos"], torch.ones(3), atol=1e-6, rtol=0)


def test_semitone_apart_is_about_100_cents():
    err = f0_error_cents(sine(440.0)[None], sine(466.16)[None], SR)
    assert err.shape == (1,)
    assert abs(err.item() - 100.0) < 12.0  # our pYIN pitch grid is 20 cents


def test_octave_is_1200_cents_and_a_quarter_tone_is_about_50():
    assert abs(f0_error_cents(sine(220.0)[None], sine(440.0)[None], SR).item() - 1200.0) < 12.0
    assert abs(f0_error_cents(sine(440.0 * 2 ** (0.5 / 12))[None], sine(440.0)[None], SR).item() - 50.0) < 12.0


def test_f0_undefined_for_noise_and_silence():
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(T).astype(np.float32) * 0.3)
    pred = torch.stack([noise, torch.zeros(T), sine(440.0)])
    true = torch.stack([sine(440.0), sine(440.0), torch.zeros(T)])
    err = f0_error_cents(pred, true, SR)
    assert torch.isnan(err).all()


def test_f0_cents_between_uses_only_frames_voiced_on_both_sides():
    pred = np.array([[440.0, np.nan, 466.16, 466.16], [np.nan, np.nan, 100.0, 100.0]])
    true = np.array([[440.0, 440.0, 440.0, np.nan], [200.0, 200.0, np.nan, np.nan]])
    err = f0_cents_between(pred, true)
    assert err[0].item() == pytest.approx(50.0, abs=0.1)  # median of 0 and 100 cents
    assert math.isnan(err[1].item())


def test_f0_tracks_shape_and_voicing():
    tracks = f0_tracks(torch.stack([sine(261.63), torch.zeros(T)]), SR)
    assert tracks.shape[0] == 2
    assert np.isfinite(tracks[0]).mean() > 0.8 and np.isnan(tracks[1]).all()
    assert np.nanmedian(tracks[0]) == pytest.approx(261.63, rel=0.01)


def test_ot_distance_grows_with_frequency_shift():
    base = sine(440.0)
    shifted = torch.stack([sine(440.0 * 2 ** (s / 12)) for s in (1, 4, 12, 24)])
    d = spectral_ot_distance(shifted, base.expand_as(shifted), SR)
    assert (d[1:] > d[:-1]).all(), d
    # all energy moved by k bins costs about k / bins; 440 -> 1760 Hz is 1320 Hz of 22050
    assert d[-1].item() == pytest.approx(1320 / 22050, rel=0.15)


def test_ot_distance_is_symmetric_and_in_unit_range(tones):
    other = tones.roll(1, dims=0)
    d = spectral_ot_distance(tones, other, SR)
    torch.testing.assert_close(d, spectral_ot_distance(other, tones, SR))
    assert ((d > 0) & (d <= 1)).all()


def test_rms_similarity_sees_an_envelope_change_but_not_gain():
    flat, decaying = sine(440.0), sine(440.0, decay=6.0)
    sim = rms_envelope_similarity(torch.stack([decaying, flat * 0.25]), torch.stack([flat, flat]), SR)
    assert sim[0] < 0.9
    assert sim[1].item() == pytest.approx(1.0, abs=1e-5)


def test_rms_similarity_of_silence():
    sim = rms_envelope_similarity(torch.stack([torch.zeros(T), torch.zeros(T)]), torch.stack([torch.zeros(T), sine(440.0)]), SR)
    assert sim.tolist() == [1.0, 0.0]


def test_mfcc_distance_positive_for_different_timbres():
    bright, dull = harmonic(220.0, 20, tilt=0.5), harmonic(220.0, 20, tilt=3.0)
    d_timbre = mfcc_distance(bright[None], dull[None], SR)
    d_gain = mfcc_distance(bright[None], bright[None] * 0.9, SR)
    assert d_timbre.item() > 5 * max(d_gain.item(), 1e-3)


def test_mfcc_dtw_forgives_a_delay_that_plain_does_not():
    tone = harmonic(220.0, 12) * torch.exp(-4 * torch.arange(T) / SR)
    late = torch.cat([torch.zeros(SR // 10), tone[: T - SR // 10]])
    plain = mfcc_distance(late[None], tone[None], SR, dtw=False)
    warped = mfcc_distance(late[None], tone[None], SR, dtw=True)
    assert warped < plain


def test_bad_shapes_and_nan_are_clear_errors(tones):
    with pytest.raises(ValueError, match="one shape"):
        spectral_ot_distance(tones, tones[:2], SR)
    bad = tones.clone()
    bad[0, 10] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mfcc_distance(bad, tones, SR)


def test_numpy_input_and_silent_examples_give_finite_scores(tones):
    silent = np.zeros((1, T), dtype=np.float32)
    pred = np.concatenate([silent, tones[1:].numpy()])
    scores = audio_metrics(pred, tones.numpy(), SR, f0=False)
    for name, value in scores.items():
        assert value.shape == (3,) and torch.isfinite(value).all(), name
    assert "f0_cents" not in scores


# --- in evaluate_rendered ------------------------------------------------------------------------------

def test_nan_mean_and_ci95_skips_undefined_examples():
    from synthinv.evaluation import nan_mean_and_ci95

    got = nan_mean_and_ci95("f0", torch.tensor([100.0, float("nan"), 300.0]))
    assert got["f0"] == pytest.approx(200.0) and got["f0_n"] == 2 and got["f0_ci95"] > 0
    assert nan_mean_and_ci95("f0", torch.tensor([float("nan")])) == {"f0": None, "f0_ci95": None, "f0_n": 0}


def test_the_interval_across_seeds_is_students_t_not_the_normal_one():
    """Three seeds 1, 2, 3: sd 1, so the half-width is t(0.975, 2 dof) = 4.303 over sqrt(3), not 1.96 over it."""
    from synthinv.evaluation import across_runs_ci95

    mean, half = across_runs_ci95([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0) and half == pytest.approx(4.3027 / 3**0.5, rel=1e-4)
    assert across_runs_ci95([5.0, 5.0]) == (5.0, 0.0)
    one_mean, one_half = across_runs_ci95([7.0])
    assert one_mean == 7.0 and np.isnan(one_half)


def test_a_table_cell_across_seeds_skips_missing_values():
    from synthinv.evaluation import across_runs_cell

    assert across_runs_cell([1.0, None, 3.0, 2.0]) == f"2.00 ± {4.3027 / 3**0.5:.2f}"
    assert across_runs_cell([None, None]) == "-"


def test_a_table_cell_over_sounds_is_the_normal_interval_and_signs_a_difference():
    from synthinv.evaluation import over_sounds_cell

    x = torch.tensor([1.0, 2.0, 3.0, 4.0])  # sd 1.291, so the half-width is 1.96 * 1.291 / 2
    assert over_sounds_cell(x) == "2.50 ± 1.27"
    assert over_sounds_cell(-x, signed=True) == "-2.50 ± 1.27" and over_sounds_cell(x, signed=True) == "+2.50 ± 1.27"


class NoteOfTruth(torch.nn.Module):
    """A stand-in Sampler that 'samples' fixed parameters whatever it hears: (N, ...) -> (N, P)."""

    stochastic = False

    def __init__(self, params: torch.Tensor):
        super().__init__()
        self.params, self.n_params = params, params.shape[1]

    def sample(self, cond, *, repeats=1, generator=None):
        return self.params[: len(cond)].repeat_interleave(repeats, 0)


def test_evaluate_rendered_reports_audio_metrics_next_to_random():
    pytest.importorskip("dexed")
    from synthinv import synths
    from synthinv.evaluation import TEST_SEED, drawn_examples, evaluate_rendered

    synth = synths.from_settings({"name": "dexed"})
    params, _, _ = drawn_examples(synth, TEST_SEED, 3)
    result = evaluate_rendered(NoteOfTruth(params), synth, n=3, steps=1, f0_examples=2)
    # the model answers with the true patches: zero distance, identical envelopes, random patches worse
    for name in ("mss", "wmfcc", "sot"):
        assert result[name] == pytest.approx(0.0, abs=1e-6) and result[f"{name}_random"] > 0, name
    assert result["rms_cos"] == pytest.approx(1.0, abs=1e-5) and result["rms_cos_random"] < 1.0
    assert result["f0_examples"] == 2 and result["f0_cents_n"] <= 2 and result["f0_cents_random_n"] <= 2
    assert result["f0_cents"] in (None, 0.0)
    off = evaluate_rendered(NoteOfTruth(params), synth, n=3, steps=1, audio_metrics=False)
    assert "wmfcc" not in off and off["mss"] == pytest.approx(0.0, abs=1e-6)


def test_notes_shorter_than_the_windows_still_score(recwarn):
    """The k-osc synth renders 1024 samples (23 ms), shorter than the 50 ms windows: zero padded, no error."""
    short = torch.stack([sine(440.0)[:1024], sine(880.0)[:1024]])
    scores = audio_metrics(short, short.flip(0), SR, f0=False)
    assert all(torch.isfinite(v).all() for v in scores.values())
    assert (scores["sot"] > 0).all() and (scores["wmfcc"] > 0).all()
    assert not [w for w in recwarn if "too large" in str(w.message)]
