"""The search's fast MSS (mss_target.MSSTarget) computes the reference metric (metrics.mss_distance)."""

import math

import pytest
import torch

from synthinv.metrics import mss_distance
from synthinv.mss_target import MSSTarget, _sounding_length


def _signals(sample_rate: int, length: int) -> torch.Tensor:
    """(7, T): noise with a rising level, a sine, a decaying square, a click, silence, a near-silent tail, a
    sine cut to digital silence part-way (frames past the cut are skipped by MSSTarget)."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(length) / sample_rate
    sine = 0.5 * torch.sin(2 * math.pi * 440.0 * t)
    square = torch.sign(torch.sin(2 * math.pi * 110.0 * t)) * torch.exp(-3 * t)
    click = torch.zeros(length)
    click[length // 3] = 1.0
    tail = sine * torch.exp(-40 * t)  # falls far below the 80 dB floor
    noise = torch.randn(length, generator=gen) * torch.linspace(0, 1, length)
    cut = sine.clone()
    cut[int(0.6 * length) + 7:] = 0.0
    return torch.stack([noise, sine, square, click, torch.zeros(length), tail, cut])


@pytest.mark.parametrize("sample_rate, length", [(44100, 66150), (22050, 11025), (48000, 5000)])
def test_fast_mss_equals_the_reference_metric(sample_rate, length):
    audio = _signals(sample_rate, length)
    for target in (audio[0], audio[1], audio[4], audio[6]):
        expected = mss_distance(audio, target.expand_as(audio), sample_rate)
        got = MSSTarget(target, sample_rate)(audio)
        assert torch.allclose(got, expected, atol=1e-3), (got, expected)


def test_fast_mss_is_zero_on_its_target_and_refuses_other_lengths():
    audio = _signals(44100, 22050)
    scorer = MSSTarget(audio[2], 44100)
    assert float(scorer(audio[2:3])[0]) == 0.0
    assert (scorer(audio[[0, 1, 3]]) > 1.0).all()
    with pytest.raises(ValueError, match="samples"):
        scorer(audio[:, :-1])


def test_the_silent_tail_is_measured_to_the_last_nonzero_sample():
    row = torch.zeros(100)
    assert _sounding_length(row) == 0
    row[41] = -1e-30
    assert _sounding_length(row) == 42
    row[-1] = 0.5
    assert _sounding_length(row) == 100
