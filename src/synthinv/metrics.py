"""Distances between predictions and truth. Each returns one value per example, shape (N,)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from synthinv.features import log_mel_spectrogram, log_power_spectrum


def log_spectral_distance(pred_audio: torch.Tensor, true_audio: torch.Tensor) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): RMS over frequency bins of the dB difference of the power spectra."""
    diff = log_power_spectrum(pred_audio) - log_power_spectrum(true_audio)
    return diff.square().mean(dim=-1).sqrt()


def chamfer_distance(pred_tokens: torch.Tensor, true_tokens: torch.Tensor) -> torch.Tensor:
    """(N, k, d), (N, k, d) -> (N,): mean of row minima + mean of column minima of squared distances."""
    d2 = torch.cdist(pred_tokens, true_tokens).square()  # (N, k, k)
    return d2.min(dim=2).values.mean(dim=1) + d2.min(dim=1).values.mean(dim=1)


def assignment_mse(pred_tokens: torch.Tensor, true_tokens: torch.Tensor) -> torch.Tensor:
    """(N, k, d), (N, k, d) -> (N,): the smallest parameter MSE over permutations of the tokens.

    Found per example by the Hungarian algorithm on squared token distances.
    """
    d2 = torch.cdist(pred_tokens.double(), true_tokens.double()).square().cpu().numpy()  # (N, k, k)
    per_param = pred_tokens.shape[1] * pred_tokens.shape[2]
    costs = [d2[i][linear_sum_assignment(d2[i])].sum() / per_param for i in range(d2.shape[0])]
    return torch.from_numpy(np.asarray(costs)).float()


def param_mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """(N, P), (N, P) -> (N,): plain mean squared error, meaningful only when order is fixed (asym)."""
    return (pred - true).square().mean(dim=-1)


def multiscale_spectral_distance(pred_audio: torch.Tensor, true_audio: torch.Tensor,
                                 ffts: tuple[int, ...] = (256, 512, 1024)) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): multi-resolution STFT distance, mean over FFT sizes of
    mean |log S_pred - log S_true| + ||S_pred - S_true||_F / ||S_true||_F (spectral convergence).

    The ranking score of `invert`: the log term hears quiet partials, the convergence term loud ones.
    FFT sizes larger than the signal are skipped. Not symmetric (the convergence term divides by truth).
    """
    total, used = torch.zeros(pred_audio.shape[0]), 0
    for n_fft in ffts:
        if n_fft > pred_audio.shape[-1]:
            continue
        window = torch.hann_window(n_fft, device=pred_audio.device)
        mag = [torch.stft(a, n_fft, n_fft // 4, window=window, return_complex=True).abs() for a in (pred_audio, true_audio)]
        log_term = (torch.log(mag[0] + 1e-5) - torch.log(mag[1] + 1e-5)).abs().mean(dim=(1, 2))
        convergence = (mag[0] - mag[1]).norm(dim=(1, 2)) / mag[1].norm(dim=(1, 2)).clamp_min(1e-8)
        total, used = total + (log_term + convergence).cpu(), used + 1
    if not used:
        raise ValueError(f"signal of {pred_audio.shape[-1]} samples is shorter than every FFT size {ffts}")
    return total / used


# (window ms, hop ms, mel bands) of the paper's multi-scale mel distance
MSS_SCALES = ((10.0, 5.0, 32), (25.0, 10.0, 64), (100.0, 50.0, 128))
MSS_RANGE_DB = 80.0  # each log-mel is floored this far below its own maximum
MSS_ABS_FLOOR_DB = -240.0  # absolute power floor before that (float32 power of a quiet tail reaches ~1e-20)


def relative_log_mel(audio: torch.Tensor, sample_rate: int, win_ms: float, hop_ms: float, n_mels: int,
                     range_db: float = MSS_RANGE_DB, sparse_filters: bool = False) -> torch.Tensor:
    """audio (N, T) -> log-mel in dB relative to each example's own maximum, floored at -range_db
    (N, n_mels, frames), values in [-range_db, 0]. The absolute floor (MSS_ABS_FLOOR_DB, -240 dB) sits far
    below any peak, so only the relative floor acts; a silent example (nothing above the absolute floor)
    is -range_db everywhere rather than a flat 0 dB."""
    mel = log_mel_spectrogram(audio, sample_rate, n_mels, win_ms, hop_ms, floor_db=MSS_ABS_FLOOR_DB,
                              sparse_filters=sparse_filters)
    peak = mel.amax(dim=(1, 2), keepdim=True)
    rel = (mel - peak).clamp_min(-range_db)
    return torch.where(peak > MSS_ABS_FLOOR_DB + range_db, rel, torch.full_like(rel, -range_db))


def mss_distance(pred_audio: torch.Tensor, true_audio: torch.Tensor, sample_rate: int,
                 scales: tuple[tuple[float, float, int], ...] = MSS_SCALES) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): the paper's multi-scale mel distance (MSS), in dB.

    At each scale (10/5 ms window/hop with 32 mels, 25/10 ms with 64, 100/50 ms with 128; Hann windows,
    HTK mels, `log_mel_spectrogram`) both log-mels are taken in dB relative to their own maximum and
    floored 80 dB below it; the distance is the mean absolute dB difference over bands and frames, and
    MSS is the mean over the scales. Symmetric, zero for identical audio, and blind to an overall gain
    (each spectrogram is relative to its own peak) except through the floor.
    """
    if pred_audio.shape != true_audio.shape:
        raise ValueError(f"pred and true audio differ in shape: {tuple(pred_audio.shape)} vs {tuple(true_audio.shape)}")
    total = torch.zeros(pred_audio.shape[0])
    for win_ms, hop_ms, n_mels in scales:
        a = relative_log_mel(pred_audio, sample_rate, win_ms, hop_ms, n_mels)
        b = relative_log_mel(true_audio, sample_rate, win_ms, hop_ms, n_mels)
        total += (a - b).abs().mean(dim=(1, 2)).cpu()
    return total / len(scales)


def rms_dbfs(audio: torch.Tensor) -> torch.Tensor:
    """audio (N, T) -> plain RMS over the whole note in dB re full scale 1.0 (N,); silence gives -inf-ish
    (floored at -200 dB). Not LUFS: no K-weighting or gating (pyloudnorm is not a dependency)."""
    audio = torch.as_tensor(audio)
    # a few rows at a time: the float64 copy of a whole batch (135 MB for 256 notes) would leave the cache
    rms = torch.cat([block.double().square().mean(dim=1).sqrt() for block in audio.split(8)]) if len(audio) else \
        audio.new_zeros(0, dtype=torch.float64)
    return (20 * torch.log10(rms.clamp_min(1e-10))).float()


def level_db(audio: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): RMS level of each sound relative to its target in dB (`rms_dbfs` difference).
    The ranking distances are gain-blind, so a candidate can sound right but much louder or quieter."""
    return rms_dbfs(audio) - rms_dbfs(target)


class MSSTarget:
    """`mss_distance` to one fixed target, its three relative log-mels computed once: a search scores
    thousands of candidates against the same sound, and recomputing the target doubled each score. The
    mel filters are applied as a sparse matrix (`log_mel_spectrogram(sparse_filters=True)`)."""

    def __init__(self, target: torch.Tensor, sample_rate: int, scales: tuple[tuple[float, float, int], ...] = MSS_SCALES):
        self.sample_rate, self.scales = sample_rate, scales
        self.length = target.shape[-1]
        self._target = [relative_log_mel(target.reshape(1, -1), sample_rate, *scale, sparse_filters=True)
                        for scale in scales]  # (1, M, F) each, computed as the candidates' are

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (N, T) -> MSS (N,) in dB against the target, equal to `mss_distance` to float tolerance."""
        if audio.shape[-1] != self.length:
            raise ValueError(f"audio has {audio.shape[-1]} samples, the target {self.length}")
        total = torch.zeros(audio.shape[0])
        for scale, target in zip(self.scales, self._target):
            mel = relative_log_mel(audio, self.sample_rate, *scale, sparse_filters=True)
            total += (mel - target).abs().mean(dim=(1, 2)).cpu()
        return total / len(self.scales)
