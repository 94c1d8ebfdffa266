"""Audio features shared by the encoder and the log-spectral metric."""

from __future__ import annotations

import functools
from typing import Any

import torch

POWER_FLOOR = 1e-8  # -80 dB: the floor of the reference LSD


def log_power_spectrum(audio: torch.Tensor) -> torch.Tensor:
    """audio: (N, T) -> power in dB (N, T // 2 + 1), rfft with forward norm, floored at -80 dB."""
    spectrum = torch.fft.rfft(audio, norm="forward")
    return 10.0 * torch.log10(spectrum.abs().square().clamp_min(POWER_FLOOR))


def encoder_input(audio: torch.Tensor) -> torch.Tensor:
    """The k-osc encoder sees the log spectrum, shifted and scaled to roughly zero mean, unit spread."""
    return (log_power_spectrum(audio) + 50.0) / 20.0


# --- log-mel spectrograms (the Dexed encoder's input and what dataset shards store) ---------------------

LOG_MEL_FLOOR_DB = -100.0  # power floor of log_mel_spectrogram (1e-10)
# The log-mel settings of dataset shards and of the Dexed encoder's input (data.generate.DEFAULT_FEATURES
# is the same dict; a test checks it): 128 HTK mels, 25 ms Hann window, 10 ms hop, as in the paper.
MEL_FEATURES: dict[str, Any] = {"kind": "log_mel", "n_mels": 128, "win_ms": 25.0, "hop_ms": 10.0}


def hz_to_mel(hz):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel):
    """Inverse of `hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular filters (n_mels, n_fft // 2 + 1), peak 1, centres evenly spaced on the HTK mel scale.

    Filter m rises linearly from centre m-1 to centre m and falls to centre m+1 (the n_mels + 2 edge
    frequencies span f_min..f_max), evaluated at the FFT bin frequencies k * sample_rate / n_fft.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2, dtype=torch.float64))
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft  # (F,)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1) each
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.minimum(rising, falling).clamp_min(0.0).float()


@functools.lru_cache(maxsize=8)
def _mel_setup(sample_rate: int, n_mels: int, win_ms: float, hop_ms: float) -> tuple[int, int, int, torch.Tensor, torch.Tensor]:
    win = int(round(win_ms * sample_rate / 1000))
    hop = int(round(hop_ms * sample_rate / 1000))
    # FFT size: the next power of two >= the window (zero padded). At 44.1 kHz that is 2048 points, 21.5 Hz
    # apart, and even the narrowest (lowest) of 128 HTK-mel filters still contains a bin.
    n_fft = 1 << (win - 1).bit_length()
    window = torch.hann_window(win, periodic=True, dtype=torch.float32)
    fb = mel_filterbank(sample_rate, n_fft, n_mels)
    return win, hop, n_fft, window, fb


def log_mel_spectrogram(audio: torch.Tensor, sample_rate: int, n_mels: int = MEL_FEATURES["n_mels"],
                        win_ms: float = MEL_FEATURES["win_ms"], hop_ms: float = MEL_FEATURES["hop_ms"],
                        floor_db: float = LOG_MEL_FLOOR_DB) -> torch.Tensor:
    """audio (N, T) -> log-mel power in dB (N, n_mels, frames), frames = 1 + T // hop; by default with the
    settings of MEL_FEATURES (the encoder input and what dataset shards store).

    A Hann window of `win_ms`, hop `hop_ms`, frames centred on t = k * hop (zero padding at both ends),
    power |STFT|^2 / (sum of window)^2 (a full-scale sine's peak bin reads about -6 dB), then HTK-mel
    triangles (`mel_filterbank`) and 10 log10, floored at `floor_db` (-100 dB: what dataset shards store). Rows are computed one at a time, so a
    row's features are bit-identical whatever batch it came in (batched FFT/GEMM kernels may reorder sums).
    (A search's scoring has its own faster path to the same values: `mss_target.MSSTarget`.)
    """
    audio = torch.as_tensor(audio, dtype=torch.float32)
    audio = audio[None] if audio.dim() == 1 else audio
    win, hop, n_fft, window, fb = _mel_setup(sample_rate, n_mels, float(win_ms), float(hop_ms))
    mel = audio.new_empty(len(audio), n_mels, 1 + audio.shape[-1] // hop)
    for row, out in zip(audio, mel):  # (T,), (n_mels, frames)
        spec = torch.stft(row, n_fft, hop_length=hop, win_length=win, window=window, center=True,
                          pad_mode="constant", return_complex=True)  # (F, frames)
        squares = torch.view_as_real(spec).square()  # re^2 and im^2 in one pass over contiguous memory
        power = squares[..., 0] + squares[..., 1]  # (F, frames)
        torch.mm(fb, power, out=out)
    scale = float(window.sum()) ** 2  # in place below: the same operations, without three (N, n_mels, frames) temporaries
    return mel.div_(scale).clamp_min_(10 ** (floor_db / 10)).log10_().mul_(10.0)
