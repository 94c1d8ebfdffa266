"""SpectralPeaks, the encoders' optional peak list (k-osc: of the spectrum; Dexed: of the time-averaged log-mel):
positions to a fraction of a bin, listed by position, and filler where a spectrum has fewer peaks than asked for."""

from __future__ import annotations

import pytest
import torch

from conftest import freq_to_param
from synthinv import synths
from synthinv.build import build_model
from synthinv.config import load_config
from synthinv.features import encoder_input
from synthinv.models.encoders import SpectralPeaks
from synthinv.synths.kosc import KOscSynth

SR, T = 44100, 1024
BIN_HZ = SR / T
N_BINS = T // 2 + 1


def peak_bins(features: torch.Tensor) -> torch.Tensor:
    """(n, 3) features of one spectrum -> (n,) positions in bins, from the linear-scale column."""
    return (features[:, 0] + 1) / 2 * (N_BINS - 1)


def render(hz: list[float], wave: float = -1.0) -> torch.Tensor:
    """One note of len(hz) oscillators at full amplitude -> its scaled log spectrum (1, F)."""
    synth = KOscSynth(len(hz))
    params = torch.tensor([[freq_to_param(synth.spec, 3 * i, f), 1.0, wave] for i, f in enumerate(hz)]).reshape(1, -1)
    return encoder_input(synth.render(params))


@pytest.mark.parametrize("hz", [530.0, 1000.0, 2500.0, 3900.0])
def test_a_sine_is_read_to_a_fraction_of_a_bin(hz):
    features = SpectralPeaks(N_BINS, 4, 8, 8).features(render([hz]))[0]  # (4, 3)
    loudest = features[:, 2].argmax()
    assert abs(peak_bins(features)[loudest].item() - hz / BIN_HZ) < 0.25  # argmax of the spectrum alone: up to 0.5


def test_peaks_are_listed_by_position_whatever_made_them():
    spectrum = render([3000.0, 700.0, 1800.0])
    features = SpectralPeaks(N_BINS, 3, 8, 8).features(spectrum)[0]
    bins = peak_bins(features)
    assert bins.tolist() == sorted(bins.tolist())
    torch.testing.assert_close(bins, torch.tensor([700.0, 1800.0, 3000.0]) / BIN_HZ, atol=0.3, rtol=0)


def test_missing_peaks_sit_at_minus_one_with_the_lowest_level():
    spectrum = torch.full((1, N_BINS), -2.0)
    spectrum[0, 100] = 1.0  # one peak only
    features = SpectralPeaks(N_BINS, 3, 8, 8).features(spectrum)[0]
    assert features[:2].tolist() == [[-1.0, -1.0, -2.0]] * 2
    assert peak_bins(features)[2].item() == pytest.approx(100.0)
    assert features[2, 2].item() == 1.0


def test_the_peak_branch_is_built_from_the_config_and_changes_the_embedding():
    synth = synths.from_settings({"name": "kosc", "k": 4})
    config = load_config("flow_transformer")
    config.encoder.peaks, config.encoder.peak_tokens = 8, False  # the peaks through an MLP into the embedding
    torch.manual_seed(0)
    model = build_model(config, synth)
    audio = synth.render(synth.params_at(0, torch.arange(3).numpy()))
    with torch.no_grad():
        with_peaks = model.encoder(audio)
        model.encoder.peaks = None
        without = model.encoder(audio)
    assert with_peaks.shape == without.shape == (3, config.encoder.dim)
    assert not torch.allclose(with_peaks, without)


def peak_token_model(name: str = "flow_transformer"):
    synth = synths.from_settings({"name": "kosc", "k": 4})
    config = load_config(name)
    config.encoder.peaks, config.encoder.peak_tokens = 8, True
    torch.manual_seed(0)
    return build_model(config, synth), synth


def test_peak_tokens_reach_the_field_and_keep_it_permutation_equivariant():
    from conftest import randomise_adaln

    model, synth = peak_token_model()
    randomise_adaln(model)
    audio = synth.render(synth.params_at(0, torch.arange(6).numpy()))
    emb = model.encoder(audio)  # (6, 128 + 8 * 3)
    assert emb.shape == (6, 128 + 24) and model.encoder.cond_dim == 128 and model.null_embedding.shape == (152,)
    assert model.encoder.peaks.mlp is None  # the raw features go to the field: no embedding MLP to carry unused
    gen = torch.Generator().manual_seed(3)
    x, t = torch.randn(6, 12, generator=gen), torch.rand(6, generator=gen)
    perm = [3, 1, 0, 2]

    def permute(v: torch.Tensor) -> torch.Tensor:
        return v.view(6, 4, 3)[:, perm].reshape(6, 12)

    with torch.no_grad():
        out = model.field(x, t, emb)
        torch.testing.assert_close(model.field(permute(x), t, emb), permute(out), atol=1e-5, rtol=0)
        other_peaks = emb.clone()
        other_peaks[:, 128:] = other_peaks[:, 128:].flip(0)  # another sound's peaks, same embedding proper
        assert (model.field(x, t, other_peaks) - out).abs().max() > 1e-3


def test_peak_tokens_need_a_transformer_field():
    from synthinv.config import ConfigError

    with pytest.raises(ConfigError, match="peak_tokens needs a transformer field"):
        peak_token_model("flow_mlp")


def dexed_simple_model(peaks: int, tokens: bool, name: str = "flow_param2tok"):
    synth = synths.from_settings({"name": "dexed_simple"})
    config = load_config(name, "dexed_simple")
    config.encoder.peaks, config.encoder.peak_tokens = peaks, tokens
    torch.manual_seed(0)
    return build_model(config, synth), synth


def test_the_mel_encoder_hands_the_time_averaged_log_mels_peaks_to_the_field():
    """Dexed: the peaks are read off the log-mel averaged over time, in mel bands; as tokens they reach the
    Param2Tok field after the embedding proper."""
    model, synth = dexed_simple_model(4, tokens=True)
    n_mels, frames = synth.feature_shape
    mel = torch.full((2, n_mels, frames), -90.0)  # dB
    mel[0, 30], mel[0, 70, : frames // 2] = -10.0, -20.0  # a steady partial and one that stops half-way
    mel[1, 50] = -30.0
    with torch.no_grad():
        emb = model.encoder(mel)
    dim = model.encoder.cond_dim
    assert emb.shape == (2, dim + 4 * 3) and model.encoder.context_tokens == 4
    peaks = emb[:, dim:].view(2, 4, 3)
    bands = (peaks[..., 0] + 1) / 2 * (n_mels - 1)  # linear position -> mel band
    torch.testing.assert_close(bands[0, -2:], torch.tensor([30.0, 70.0]))  # listed by position, filler first
    assert peaks[0, -2, 2] > peaks[0, -1, 2]  # the steady partial is louder on average
    assert bands[1, -1].item() == pytest.approx(50.0) and (peaks[1, :-1, 0] == -1).all()
    from conftest import randomise_adaln

    randomise_adaln(model)  # otherwise every block starts as the identity and the context is never attended to
    x, t = torch.randn(2, synth.spec.size), torch.rand(2)
    with torch.no_grad():
        other = emb.clone()
        other[:, dim:] = other[:, dim:].flip(0)  # the other sound's peaks, same embedding proper
        assert (model.field(x, t, emb) - model.field(x, t, other)).abs().max() > 1e-4


def test_mel_peaks_without_tokens_are_added_to_the_embedding():
    model, synth = dexed_simple_model(8, tokens=False, name="flow_mlp")
    mel = -50.0 + 25.0 * torch.randn(3, *synth.feature_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        with_peaks = model.encoder(mel)
        model.encoder.peaks = None
        without = model.encoder(mel)
    assert with_peaks.shape == without.shape == (3, model.encoder.dim) and model.encoder.context_tokens == 0
    assert not torch.allclose(with_peaks, without)
