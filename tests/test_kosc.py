"""The k-oscillator synth: symmetry, waveforms, the counter-based data generator and the spec."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from conftest import freq_to_param
from synthinv.synths.base import ParamSpec
from synthinv.synths.kosc import F_MAX, F_MIN, KOscSynth, kosc_spec, sort_by_frequency, to_tokens

SR, T = 44100, 1024
BIN_HZ = SR / T  # rfft bin spacing of a 1024-sample frame


def one_osc(synth: KOscSynth, hz: float, wave: float, amp: float = 1.0) -> torch.Tensor:
    """(1, 3) normalised params of a single oscillator at `hz`, amplitude param `amp`, wave param `wave`."""
    return torch.tensor([[freq_to_param(synth.spec, 0, hz), amp, wave]])


def permute_oscillators(params: torch.Tensor, k: int, perm) -> torch.Tensor:
    """(N, 3k) -> (N, 3k) with the (N, k, 3) oscillator tokens reordered by `perm`."""
    return to_tokens(params, k)[:, list(perm)].reshape(params.shape)


# --- permutation symmetry -------------------------------------------------------------------------


def test_render_shape_and_determinism(kosc4):
    params = kosc4.random_params(8, seed=1)  # (8, 12)
    audio = kosc4.render(params)
    assert audio.shape == (8, T)
    assert torch.equal(audio, kosc4.render(params.clone()))
    assert torch.isfinite(audio).all()
    assert audio.abs().max() <= 1.0 + 1e-3  # mean of amplitude-<=1 waveforms (polyBLEP overshoot is tiny)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_permuting_oscillators_leaves_audio_unchanged(k):
    synth = KOscSynth(k)
    params = synth.random_params(16, seed=3)  # (16, 3k)
    audio = synth.render(params)
    gen = torch.Generator().manual_seed(k)
    for _ in range(5):
        perm = torch.randperm(k, generator=gen).tolist()
        permuted = permute_oscillators(params, k, perm)
        assert not torch.equal(permuted, params) or perm == list(range(k))
        torch.testing.assert_close(synth.render(permuted), audio, atol=1e-6, rtol=0)


def test_asym_variant_is_not_permutation_invariant():
    synth = KOscSynth(4, asym=True)
    params = synth.random_params(16, seed=3)
    audio = synth.render(params)
    # every non-identity permutation moves some oscillator into another band -> different audio
    for perm in itertools.permutations(range(4)):
        if perm == (0, 1, 2, 3):
            continue
        diff = (synth.render(permute_oscillators(params, 4, perm)) - audio).abs().max()
        assert diff > 1e-2, perm


def test_sort_by_frequency_is_a_sorted_permutation_with_the_same_audio(kosc4):
    params = kosc4.random_params(32, seed=5)
    sorted_params = sort_by_frequency(params, 4)
    tok, stok = to_tokens(params, 4), to_tokens(sorted_params, 4)
    assert (stok[:, 1:, 0] >= stok[:, :-1, 0]).all()  # ascending frequency
    for a, b in zip(tok, stok):  # same multiset of oscillator tokens
        assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, b.tolist()))
    torch.testing.assert_close(kosc4.render(sorted_params), kosc4.render(params), atol=1e-6, rtol=0)


# --- single-oscillator waveforms ------------------------------------------------------------------


@pytest.mark.parametrize("hz", [100.0, 440.0, 1000.0, 2500.0, 3900.0])
def test_sine_peaks_at_nearest_rfft_bin(hz):
    synth = KOscSynth(1)
    params = one_osc(synth, hz, wave=-1.0)
    native_hz = synth.spec.decode(params)[0, 0].item()
    assert native_hz == pytest.approx(hz, rel=1e-4)  # the inverse mapping agrees with spec.decode
    spectrum = torch.fft.rfft(synth.render(params)[0]).abs()
    assert spectrum.argmax().item() == round(native_hz / BIN_HZ)


def test_frequency_mapping_endpoints_and_amplitude():
    spec = kosc_spec(2)
    native = spec.decode(torch.tensor([[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 5.0, -5.0, 0.5]]))
    assert native[0, 0].item() == pytest.approx(F_MIN, rel=1e-5)
    assert native[0, 3].item() == pytest.approx(F_MAX, rel=1e-5)
    assert native[0, 1].item() == 0.0 and native[0, 4].item() == 1.0  # amplitude (x + 1) / 2
    assert native[1, 0].item() == pytest.approx(math.sqrt(F_MIN * F_MAX), rel=1e-5)  # log-uniform midpoint
    assert native[1, 1].item() == pytest.approx(0.5)
    assert native[1, 3].item() == pytest.approx(F_MAX, rel=1e-5)  # out-of-range values are clipped
    assert native[1, 4].item() == 0.0
    assert native[1, 5].item() == pytest.approx(0.5)  # waveform is linear in [-1, 1]


@pytest.mark.parametrize("m", [3, 17, 60])
def test_wave_minus_one_is_a_pure_sine(m):
    synth = KOscSynth(1)
    params = one_osc(synth, m * BIN_HZ, wave=-1.0)
    f = synth.spec.decode(params)[0, 0].double()
    n = torch.arange(T, dtype=torch.float64)
    expected = torch.sin(2 * math.pi * f * n / SR)
    torch.testing.assert_close(synth.render(params)[0].double(), expected, atol=2e-4, rtol=0)


def test_amplitude_scales_output_linearly():
    synth = KOscSynth(1)
    full = synth.render(one_osc(synth, 8 * BIN_HZ, wave=0.3, amp=1.0))
    half = synth.render(one_osc(synth, 8 * BIN_HZ, wave=0.3, amp=0.0))  # amp param 0 -> 0.5
    silent = synth.render(one_osc(synth, 8 * BIN_HZ, wave=0.3, amp=-1.0))
    torch.testing.assert_close(half, 0.5 * full, atol=1e-6, rtol=0)
    assert silent.abs().max() == 0


def harmonic_magnitudes(audio: torch.Tensor, m: int, count: int) -> torch.Tensor:
    """|rfft| at harmonics 1..count of a tone sitting exactly on bin m."""
    spectrum = torch.fft.rfft(audio.double()).abs()
    return spectrum[[m * h for h in range(1, count + 1)]]


@pytest.mark.parametrize("m", [4, 8, 16])
def test_wave_zero_is_a_square(m):
    # m periods per frame. m = 8 and 16 used to put one sample at 2.0 (float32 rounded phase + 0.5 to 1.0
    # just before the half-period edge); they stay as a regression test.
    synth = KOscSynth(1)
    audio = synth.render(one_osc(synth, m * BIN_HZ, wave=0.0))[0]
    at_rails = ((audio.abs() - 1).abs() < 1e-3).float().mean()
    assert at_rails > 0.9  # only the polyBLEP-smoothed samples next to each edge leave +-1
    assert abs(audio.mean().item()) < 1e-3  # 50 % duty cycle
    assert audio.abs().max() <= 1.0 + 1e-3
    h = harmonic_magnitudes(audio, m, 8)  # harmonics 1..8
    odd, even = h[0::2], h[1::2]
    assert even.max() < 0.01 * odd.min()  # a symmetric square has (almost) no even harmonics
    # odd harmonics fall off like 1/n: h3/h1 ~ 1/3, h5/h1 ~ 1/5
    assert (h[2] / h[0]).item() == pytest.approx(1 / 3, rel=0.05)
    assert (h[4] / h[0]).item() == pytest.approx(1 / 5, rel=0.05)


def test_wave_plus_one_is_a_saw():
    m = 8
    synth = KOscSynth(1)
    audio = synth.render(one_osc(synth, m * BIN_HZ, wave=1.0))[0]
    h = harmonic_magnitudes(audio, m, 4)
    # a sawtooth has every harmonic with magnitude ~1/n
    assert (h[1] / h[0]).item() == pytest.approx(1 / 2, rel=0.05)
    assert (h[2] / h[0]).item() == pytest.approx(1 / 3, rel=0.05)
    # and a ramp: mostly increasing sample to sample (falls only at the 8 resets)
    rising = (audio[1:] > audio[:-1]).float().mean()
    assert rising > 0.95


def test_waveform_morph_is_a_crossfade():
    synth = KOscSynth(1)
    hz = 5 * BIN_HZ
    sine, square, saw = (synth.render(one_osc(synth, hz, wave=w)) for w in (-1.0, 0.0, 1.0))
    mid_low = synth.render(one_osc(synth, hz, wave=-0.5))
    mid_high = synth.render(one_osc(synth, hz, wave=0.25))
    torch.testing.assert_close(mid_low, 0.5 * sine + 0.5 * square, atol=1e-5, rtol=0)
    torch.testing.assert_close(mid_high, 0.75 * square + 0.25 * saw, atol=1e-5, rtol=0)


# --- the data generator ---------------------------------------------------------------------------


def test_random_params_and_params_at_agree(kosc4):
    seed = 1234
    whole = kosc4.random_params(50, seed)  # (50, 12)
    assert whole.shape == (50, 12) and whole.dtype == torch.float32
    torch.testing.assert_close(kosc4.random_params(10, seed, offset=20), whole[20:30], atol=0, rtol=0)
    idx = np.array([49, 3, 3, 17, 0])
    torch.testing.assert_close(kosc4.params_at(seed, idx), whole[idx], atol=0, rtol=0)
    # example i depends only on (seed, i), not on the batch it is drawn in
    far = kosc4.params_at(seed, np.array([10_000_000]))
    torch.testing.assert_close(kosc4.random_params(1, seed, offset=10_000_000), far, atol=0, rtol=0)


def test_different_seeds_and_indices_differ(kosc4):
    a, b = kosc4.random_params(100, seed=1), kosc4.random_params(100, seed=2)
    assert (a - b).abs().mean() > 0.3  # independent uniforms differ by 2/3 on average
    assert len({tuple(r) for r in a.tolist()}) == 100  # no repeated examples
    assert not torch.equal(kosc4.random_params(5, seed=1, offset=1), a[:5])


def test_random_params_are_uniform_in_unit_interval(kosc4):
    x = kosc4.random_params(20_000, seed=7)  # (20000, 12)
    assert x.min() >= -1 and x.max() <= 1
    assert abs(x.mean().item()) < 0.01
    assert x.var().item() == pytest.approx(1 / 3, abs=0.01)
    # every column is uniform on its own: mean ~0 and 10 equal-width bins ~10 % each
    assert x.mean(0).abs().max() < 0.03
    hist = torch.histc(x, bins=10, min=-1, max=1) / x.numel()
    assert (hist - 0.1).abs().max() < 0.01
    # neighbouring parameters are uncorrelated
    corr = torch.corrcoef(x.T)
    assert (corr - torch.eye(12)).abs().max() < 0.05


# --- the spec -------------------------------------------------------------------------------------


def test_spec_hash_distinguishes_variants():
    h = kosc_spec(4).hash()
    assert h == kosc_spec(4).hash() == KOscSynth(4).spec.hash()  # stable
    assert h != kosc_spec(4, asym=True).hash()
    assert h != kosc_spec(8).hash()
    assert kosc_spec(8).hash() != kosc_spec(8, asym=True).hash()
    spec = kosc_spec(4, asym=True)
    assert ParamSpec.from_dict(spec.to_dict()).hash() == spec.hash()  # survives a checkpoint round trip


def test_spec_layout_is_oscillator_major():
    spec = kosc_spec(3)
    assert spec.size == 9
    assert spec.names[:6] == ["osc0.freq", "osc0.amp", "osc0.wave", "osc1.freq", "osc1.amp", "osc1.wave"]


@pytest.mark.parametrize("k", [1, 4, 8, 16])
def test_asym_bands_are_disjoint_and_cover_the_range(k):
    spec = kosc_spec(k, asym=True)
    bands = [(p.low, p.high) for p in spec.params if p.name.endswith(".freq")]
    assert len(bands) == k
    assert bands[0][0] == pytest.approx(F_MIN) and bands[-1][1] == pytest.approx(F_MAX)
    for (lo, hi), (next_lo, _) in zip(bands, bands[1:]):
        assert lo < hi
        assert hi == pytest.approx(next_lo)  # contiguous: no gap, no overlap
    # rendered examples keep oscillator i in band i
    synth = KOscSynth(k, asym=True)
    freqs = synth.spec.decode(synth.random_params(500, seed=0)).view(500, k, 3)[..., 0]
    lows = torch.tensor([b[0] for b in bands]) * (1 - 1e-5)
    highs = torch.tensor([b[1] for b in bands]) * (1 + 1e-5)
    assert ((freqs >= lows) & (freqs <= highs)).all()


def test_symmetric_spec_shares_one_band():
    spec = kosc_spec(4)
    for p in spec.params:
        if p.name.endswith(".freq"):
            assert (p.low, p.high, p.scale) == (F_MIN, F_MAX, "log")


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be"):
        KOscSynth(0)
