"""The search's fast MSS (mss_target.MSSTarget) computes the reference metric (metrics.mss_distance)."""

import math

import pytest
import torch

from synthinv.metrics import MSS_ABS_FLOOR_DB, MSS_SCALES, log_mel_spectrogram, mss_distance, relative_db_
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


def _mss_on_every_nth_frame(audio: torch.Tensor, target: torch.Tensor, sample_rate: int, n: int) -> torch.Tensor:
    """The MSS with each scale's full log-mel cut to frames 0, n, 2n, ... before it is taken relative to its peak."""
    total = torch.zeros(len(audio))
    for win_ms, hop_ms, n_mels in MSS_SCALES:
        a, b = (relative_db_(log_mel_spectrogram(x, sample_rate, n_mels, win_ms, hop_ms,
                                                 floor_db=MSS_ABS_FLOOR_DB)[..., ::n].contiguous())
                for x in (audio, target.expand_as(audio)))
        total += (a - b).abs().mean(dim=(1, 2))
    return total / len(MSS_SCALES)


@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("sample_rate, length", [(44100, 66150), (22050, 11025)])
def test_the_search_estimate_is_the_mss_on_every_nth_frame(sample_rate, length, stride):
    audio = _signals(sample_rate, length)
    for target in (audio[0], audio[2], audio[6]):
        expected = _mss_on_every_nth_frame(audio, target, sample_rate, stride)
        got = MSSTarget(target, sample_rate, frame_stride=stride)(audio)
        assert torch.allclose(got, expected, atol=1e-3), (got, expected)
        # an estimate, not the full distance: the frames left out change it
        assert not torch.allclose(got, MSSTarget(target, sample_rate)(audio), atol=1e-2)
    with pytest.raises(ValueError, match="frame_stride"):
        MSSTarget(audio[0], sample_rate, frame_stride=0)


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
