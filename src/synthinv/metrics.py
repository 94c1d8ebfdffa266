"""Distances between predictions and truth, parameters and audio: the one home of every metric. Each returns
one value per example, shape (N,)."""

from __future__ import annotations

import math
import warnings
from typing import Any

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


def match_tokens(pred_tokens: torch.Tensor, true_tokens: torch.Tensor) -> torch.Tensor:
    """(N, k, d), (N, k, d) -> (N, k, d): each example's predicted tokens reordered so that token j is the one
    paired with true token j by the permutation of least total squared distance (Hungarian algorithm)."""
    d2 = torch.cdist(pred_tokens.double(), true_tokens.double()).square().cpu().numpy()  # (N, k, k)
    order = np.stack([linear_sum_assignment(d2[i].T)[1] for i in range(d2.shape[0])])  # (N, k): pred row per true token
    return torch.gather(pred_tokens, 1, torch.from_numpy(order).to(pred_tokens.device)[..., None].expand_as(pred_tokens))


def assignment_mse(pred_tokens: torch.Tensor, true_tokens: torch.Tensor) -> torch.Tensor:
    """(N, k, d), (N, k, d) -> (N,): the smallest parameter MSE over permutations of the tokens."""
    matched = match_tokens(pred_tokens, true_tokens)
    return (matched.double() - true_tokens.double()).square().mean(dim=(1, 2)).float()


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
                     range_db: float = MSS_RANGE_DB) -> torch.Tensor:
    """audio (N, T) -> log-mel in dB relative to each example's own maximum, floored at -range_db
    (N, n_mels, frames), values in [-range_db, 0]. The absolute floor (MSS_ABS_FLOOR_DB, -240 dB) sits far
    below any peak, so only the relative floor acts; a silent example (nothing above the absolute floor)
    is -range_db everywhere rather than a flat 0 dB."""
    mel = log_mel_spectrogram(audio, sample_rate, n_mels, win_ms, hop_ms, floor_db=MSS_ABS_FLOOR_DB)
    return relative_db_(mel, range_db)


def relative_db_(mel_db: torch.Tensor, range_db: float = MSS_RANGE_DB) -> torch.Tensor:
    """Log-mel in dB (N, M, frames), in place -> relative to each row's maximum, floored at -range_db; a row
    with nothing above the absolute floor is -range_db everywhere. Shared with mss_target.MSSTarget."""
    peak = mel_db.amax(dim=(1, 2), keepdim=True)  # (N, 1, 1)
    mel_db.sub_(peak).clamp_min_(-range_db)
    mel_db[(peak <= MSS_ABS_FLOOR_DB + range_db).expand_as(mel_db)] = -range_db
    return mel_db


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


# --- audio metrics of real synths (the paper's, PAPER.md "Real synthesizers") -----------------------
# Audio metrics for real synths, as the paper computes them (PAPER.md, "Real synthesizers").
#
# Every function takes predicted and true audio (N, T) at one sample rate (torch or numpy) and returns one
# value per example, a float32 tensor (N,). Besides `mss_distance` above:
#
# - `mfcc_distance` (the paper's wMFCC): 20 MFCCs (50 ms window, 10 ms hop, 128 mels, librosa), L1 frame
#   cost averaged over the 20 coefficients, frames aligned by dynamic time warping and the total divided by
#   the warping path's length (`dtw=False`: plain frame-by-frame mean, for notes known to start together).
#   Lower is better. (PAPER.md does not say whether the frame cost sums or averages the coefficients; the
#   average gives values of the order of the MSS in dB, as in the paper's tables; the sum is 20x that.)
# - `spectral_ot_distance` (SOT): magnitude STFT (50 ms window, 20 ms hop), each frame normalised to sum 1,
#   1-D Wasserstein-1 between the frames = sum |CDF difference| / number of bins, mean over frames. In
#   [0, 1]; lower is better.
# - `rms_envelope_similarity`: cosine similarity of the RMS envelopes (50 ms frames, 25 ms hop). In
#   [0, 1], **higher** is better (as in the paper); blind to overall gain, sees the envelope's shape.
# - `f0_error_cents`: median over frames voiced on both sides of |1200 log2(f0_pred / f0_true)|, with f0
#   from librosa's probabilistic YIN (pYIN) at 16 kHz on a 20-cent grid; NaN ("undefined") where no frame
#   is voiced on both sides (noise, a click, silence).
#
#     from synthinv.metrics import audio_metrics
#     scores = audio_metrics(pred_audio, true_audio, 44100)   # {"wmfcc": (N,), "sot": (N,), ...}
MFCC: dict[str, Any] = {"n_mfcc": 20, "win_ms": 50.0, "hop_ms": 10.0, "n_mels": 128}
SOT = {"win_ms": 50.0, "hop_ms": 20.0, "floor_db": -80.0}  # floor: below each example's peak bin
RMS = {"win_ms": 50.0, "hop_ms": 25.0}
# pYIN: 16 kHz is ample for fundamentals up to C7 and much cheaper than 44.1 kHz; a 64 ms frame holds
# four periods of C2 (65 Hz), the lowest pitch searched; 32 ms hop; pitch states 0.2 semitone (20 cents)
# apart instead of librosa's 0.1: a smaller Viterbi pass, still finer than the 50-cent bar of the metric.
# A frame counts as voiced only if pYIN's voicing probability also reaches 0.25: its HMM alone marks
# frames of white noise voiced (at probability ~0.01), a clean or lightly noisy tone scores ~0.9.
F0: dict[str, Any] = {"sample_rate": 16000, "fmin": 65.41, "fmax": 2093.0, "frame_length": 1024,
                      "hop_length": 512, "resolution": 0.2, "min_voiced_prob": 0.25}

# Which way each metric improves, for tables ("lower" / "higher").
BETTER = {"mss": "lower", "wmfcc": "lower", "sot": "lower", "rms_cos": "higher", "f0_cents": "lower"}


def _as_numpy(audio) -> np.ndarray:
    """(N, T) torch or numpy -> float32 numpy (N, T); a single (T,) signal becomes (1, T)."""
    x = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    x = x.astype(np.float32, copy=False)
    return x[None] if x.ndim == 1 else x


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_numpy(pred), _as_numpy(true)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"pred and true audio must both be (N, T) of one shape, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("audio contains NaN or infinite samples")
    return a, b


def _samples(ms: float, sample_rate: int) -> int:
    return int(round(ms * sample_rate / 1000))


# --- MFCC distance (wMFCC) ----------------------------------------------------------------------------

def mfccs(audio, sample_rate: int) -> np.ndarray:
    """audio (N, T) -> MFCCs (N, 20, frames) with the paper's settings (librosa; dB floored 80 dB below
    each example's peak)."""
    import librosa

    win = _samples(MFCC["win_ms"], sample_rate)
    with warnings.catch_warnings():  # a note shorter than the window (k-osc: 23 ms) is zero padded, as meant
        warnings.filterwarnings("ignore", message="n_fft=.* is too large")
        return librosa.feature.mfcc(y=_as_numpy(audio), sr=sample_rate, n_mfcc=MFCC["n_mfcc"], n_fft=win,
                                    hop_length=_samples(MFCC["hop_ms"], sample_rate), n_mels=MFCC["n_mels"])


def mfcc_distance(pred, true, sample_rate: int, dtw: bool = True) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): mean |difference| over the 20 MFCCs of two frames, summed along the DTW path
    and divided by its length (`dtw=True`, the paper's wMFCC) or averaged frame by frame (`dtw=False`)."""
    import librosa

    a, b = _pair(pred, true)
    ma, mb = mfccs(a, sample_rate), mfccs(b, sample_rate)  # (N, 20, frames) each
    if not dtw:
        return torch.from_numpy(np.abs(ma - mb).mean(axis=(1, 2))).float()
    out = np.empty(len(a))
    for i in range(len(a)):
        cost, path = librosa.sequence.dtw(ma[i], mb[i], metric="cityblock")
        out[i] = cost[-1, -1] / len(path) / ma.shape[1]  # cityblock sums the coefficients
    return torch.from_numpy(out).float()


# --- spectral optimal transport (SOT) -----------------------------------------------------------------

def frame_distributions(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """audio (N, T) -> magnitude spectra as distributions over bins (N, frames, bins), each frame summing
    to 1. Magnitudes are floored 80 dB below the example's loudest bin, so a silent frame is a flat
    distribution rather than 0/0 (and an all-silent example is flat everywhere)."""
    win, hop = _samples(SOT["win_ms"], sample_rate), _samples(SOT["hop_ms"], sample_rate)
    window = torch.hann_window(win, dtype=torch.float64)
    mag = torch.stft(audio.double(), win, hop, window=window, pad_mode="constant",  # zeros: works below 25 ms too
                     return_complex=True).abs()  # (N, bins, frames)
    peak = mag.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    mag = mag.maximum(peak * 10 ** (SOT["floor_db"] / 20))
    return (mag / mag.sum(dim=1, keepdim=True)).transpose(1, 2)


def spectral_ot_distance(pred, true, sample_rate: int) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): mean over frames of the 1-D Wasserstein-1 distance between the normalised
    magnitude spectra, measured in bins and divided by the number of bins (so in [0, 1]): moving all
    energy by k bins costs k / bins."""
    a, b = (torch.from_numpy(x) for x in _pair(pred, true))
    pa, pb = frame_distributions(a, sample_rate), frame_distributions(b, sample_rate)  # (N, frames, bins)
    w1 = (pa.cumsum(-1) - pb.cumsum(-1)).abs().sum(-1) / pa.shape[-1]  # (N, frames)
    return w1.mean(-1).float()


# --- RMS envelope -------------------------------------------------------------------------------------

def rms_envelopes(audio, sample_rate: int) -> np.ndarray:
    """audio (N, T) -> RMS envelopes (N, frames), 50 ms frames every 25 ms (librosa, centred frames)."""
    import librosa

    return librosa.feature.rms(y=_as_numpy(audio), frame_length=_samples(RMS["win_ms"], sample_rate),
                               hop_length=_samples(RMS["hop_ms"], sample_rate))[:, 0, :]


def rms_envelope_similarity(pred, true, sample_rate: int) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): cosine similarity of the RMS envelopes, in [0, 1], higher is better.

    Two silent examples count as identical (1); silence against sound shares no shape (0)."""
    a, b = _pair(pred, true)
    ea, eb = rms_envelopes(a, sample_rate).astype(np.float64), rms_envelopes(b, sample_rate).astype(np.float64)
    na, nb = np.linalg.norm(ea, axis=1), np.linalg.norm(eb, axis=1)
    silent_a, silent_b = na < 1e-9, nb < 1e-9
    cos = (ea * eb).sum(1) / np.maximum(na * nb, 1e-30)
    cos = np.where(silent_a | silent_b, (silent_a & silent_b).astype(float), cos)
    return torch.from_numpy(cos).float()


# --- f0 -----------------------------------------------------------------------------------------------

def f0_tracks(audio, sample_rate: int) -> np.ndarray:
    """audio (N, T) -> f0 in Hz per frame (N, frames), NaN where pYIN finds the frame unvoiced (or voiced
    with probability below 0.25).

    The slowest metric here (the first call in a fresh environment also compiles librosa's numba kernels,
    cached on disk afterwards)."""
    import librosa

    x = _as_numpy(audio)
    if sample_rate != F0["sample_rate"]:
        x = librosa.resample(x, orig_sr=sample_rate, target_sr=F0["sample_rate"], axis=-1)
    tracks = []
    for row in x:  # pYIN's Viterbi decoding is per signal
        if not np.any(row):  # silence: unvoiced everywhere (pYIN would divide by zero)
            tracks.append(np.full(1 + len(row) // F0["hop_length"], np.nan))
            continue
        f0, voiced, prob = librosa.pyin(row, fmin=F0["fmin"], fmax=F0["fmax"], sr=F0["sample_rate"],
                                        frame_length=F0["frame_length"], hop_length=F0["hop_length"],
                                        resolution=F0["resolution"])
        tracks.append(np.where(voiced & (prob >= F0["min_voiced_prob"]), f0, np.nan))
    return np.stack(tracks)


def f0_cents_between(pred_f0: np.ndarray, true_f0: np.ndarray) -> torch.Tensor:
    """f0 tracks (N, frames) x 2 (NaN = unvoiced) -> (N,): median |cents| over frames voiced in both,
    NaN where there is no such frame. The median keeps a stray octave jump at the onset from dominating."""
    both = np.isfinite(pred_f0) & np.isfinite(true_f0)
    cents = np.abs(1200.0 * np.log2(np.where(both, pred_f0, 1.0) / np.where(both, true_f0, 1.0)))
    out = np.array([np.median(c[m]) if m.any() else math.nan for c, m in zip(cents, both)])
    return torch.from_numpy(out).float()


def f0_error_cents(pred, true, sample_rate: int) -> torch.Tensor:
    """(N, T), (N, T) -> (N,): f0 error in cents where a pitch is defined on both sides, else NaN."""
    a, b = _pair(pred, true)
    return f0_cents_between(f0_tracks(a, sample_rate), f0_tracks(b, sample_rate))


# --- all at once --------------------------------------------------------------------------------------

def audio_metrics(pred, true, sample_rate: int, f0: bool = True, true_f0: np.ndarray | None = None) -> dict:
    """{"mss", "wmfcc", "sot", "rms_cos"[, "f0_cents"]}: each (N,). `true_f0` (from `f0_tracks`) saves
    re-tracking the same targets when several predictions are scored against them."""
    a, b = _pair(pred, true)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = {"mss": mss_distance(ta, tb, sample_rate), "wmfcc": mfcc_distance(a, b, sample_rate),
           "sot": spectral_ot_distance(a, b, sample_rate), "rms_cos": rms_envelope_similarity(a, b, sample_rate)}
    if f0:
        tf0 = f0_tracks(b, sample_rate) if true_f0 is None else true_f0
        out["f0_cents"] = f0_cents_between(f0_tracks(a, sample_rate), tf0)
    return out
