"""Audio features shared by the encoder and the log-spectral metric."""

from __future__ import annotations

import torch

POWER_FLOOR = 1e-8  # -80 dB: the floor of the reference LSD


def log_power_spectrum(audio: torch.Tensor) -> torch.Tensor:
    """audio: (N, T) -> power in dB (N, T // 2 + 1), rfft with forward norm, floored at -80 dB."""
    spectrum = torch.fft.rfft(audio, norm="forward")
    return 10.0 * torch.log10(spectrum.abs().square().clamp_min(POWER_FLOOR))


def encoder_input(audio: torch.Tensor) -> torch.Tensor:
    """The k-osc encoder sees the log spectrum, shifted and scaled to roughly zero mean, unit spread."""
    return (log_power_spectrum(audio) + 50.0) / 20.0
