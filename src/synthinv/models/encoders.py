"""Encoders: encoder input (k-osc: audio (N, T); Dexed: log-mel (N, 128, frames)) -> embedding (N, dim)."""

from __future__ import annotations

import math

import torch
from torch import nn

from synthinv.features import encoder_input, hz_to_mel, mel_to_hz


class ResBlock1d(nn.Module):
    """Two same-width convolutions with a skip connection; GroupNorm keeps short runs stable."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.GroupNorm(1, channels), nn.GELU(), nn.Conv1d(channels, channels, kernel, padding=pad),
            nn.GroupNorm(1, channels), nn.GELU(), nn.Conv1d(channels, channels, kernel, padding=pad),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Module):
    """Base of the encoders: encoder input -> embedding (N, dim). An encoder with `context_tokens` m > 0 ends its
    embedding with m tokens of PEAK_FEATURES numbers each, for a transformer field to attend to (SpectrumCNN's
    peak_tokens); the first `cond_dim` numbers are the embedding proper."""

    dim: int
    context_tokens: int = 0
    peaks: SpectralPeaks | None  # set by add_peaks (a class-level None would hide the registered module)

    @property
    def cond_dim(self) -> int:
        return self.dim - PEAK_FEATURES * self.context_tokens

    def add_peaks(self, n_bins: int, peaks: int, hidden: int, tokens: bool) -> None:
        """With `peaks` > 0: a SpectralPeaks of an (N, n_bins) spectrum, added to the embedding (an MLP of width
        `hidden`) or, with `tokens`, appended as that many context tokens (self.dim grows by 3 per peak)."""
        # as tokens the raw peak features go to the field, so no MLP is built for them
        self.peaks = (None if not peaks else SpectralPeaks(n_bins, peaks) if tokens
                      else SpectralPeaks(n_bins, peaks, hidden, self.dim))
        self.context_tokens = peaks if tokens else 0
        self.dim += PEAK_FEATURES * self.context_tokens

    def with_peaks(self, out: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
        """out (N, cond_dim) with the peaks of spectrum (N, n_bins) added, or appended as context tokens."""
        if self.peaks is None:
            return out
        if self.context_tokens:
            return torch.cat([out, self.peaks.features(spectrum).flatten(1)], dim=1)  # (N, cond_dim + 3 peaks)
        return out + self.peaks(spectrum)


PEAK_FEATURES = 3  # per spectral peak: linear position, log position, level


class SpectralPeaks(nn.Module):
    """The `n` loudest local maxima of a scaled log power spectrum, read to a fraction of a bin, as an embedding.

    (N, F) -> per peak (bin position on a linear and on a log scale, each in [-1, 1], and its level), listed by
    position so the list does not depend on which oscillator made which peak -> (N, 3n) -> Linear, GELU, Linear
    -> (N, dim). A peak's position is refined by the parabola through its bin and the two beside it; the spectrum
    is mirrored at both ends (a real signal's spectrum is symmetric about 0 and Nyquist), so DC and Nyquist can
    be peaks. Fewer than n peaks: the rest sit at position -1 with the spectrum's lowest level.
    Why: the CNN reads even a resolved partial's frequency to a few semitones only, and frequency errors are
    most of a k-osc flow's LSD (results/kosc_error_breakdown.md); a peak list hands the positions over. Whether
    they are better added to the embedding (this module's MLP) or attended to as tokens (SpectrumCNN's
    peak_tokens): results/kosc_tune.md.
    """

    def __init__(self, n_bins: int, n: int, hidden: int | None = None, dim: int | None = None):
        super().__init__()
        self.n_bins, self.n = n_bins, n
        # no MLP without hidden and dim: the features alone (SpectrumCNN's peak_tokens passes them on as they are)
        self.mlp = (nn.Sequential(nn.Linear(PEAK_FEATURES * n, hidden), nn.GELU(), nn.Linear(hidden, dim))
                    if hidden is not None and dim is not None else None)

    def features(self, spectrum: torch.Tensor) -> torch.Tensor:
        """(N, F) scaled log power spectrum -> (N, n, 3): linear position, log position, level per peak."""
        padded = torch.cat([spectrum[:, 1:2], spectrum, spectrum[:, -2:-1]], dim=1)  # (N, F + 2)
        left, mid, right = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]  # each (N, F), centred on bin i
        floor = spectrum.amin(dim=1, keepdim=True)  # (N, 1)
        score = torch.where((mid > left) & (mid >= right), mid, floor - 1.0)  # non-peaks below every peak
        level, index = score.topk(self.n, dim=1)  # (N, n)
        found = level >= floor
        lo, hi = left.gather(1, index), right.gather(1, index)
        curvature = lo - 2 * level + hi  # < 0 at a strict maximum
        offset = torch.where(curvature < -1e-6, 0.5 * (lo - hi) / curvature.clamp(max=-1e-6), torch.zeros_like(level))
        position = (index + offset.clamp(-0.5, 0.5)).clamp(0, self.n_bins - 1)  # (N, n) in bins
        linear = position / (self.n_bins - 1) * 2 - 1
        log = torch.log2(1 + position) / math.log2(self.n_bins) * 2 - 1
        peaks = torch.stack([torch.where(found, linear, -torch.ones_like(linear)),
                             torch.where(found, log, -torch.ones_like(log)),
                             torch.where(found, level, floor.expand_as(level))], dim=-1)  # (N, n, 3)
        order = peaks[..., 0].argsort(dim=1)  # by position
        return peaks.gather(1, order[..., None].expand_as(peaks))

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        if self.mlp is None:
            raise RuntimeError("SpectralPeaks built without hidden and dim has no embedding; use features()")
        return self.mlp(self.features(spectrum).flatten(1))  # (N, dim)


class SpectrumCNN(Encoder):
    """1-D residual CNN over the log power spectrum, flattened (not pooled) so frequency position survives.

    audio (N, T) -> log spectrum (N, 1, T/2+1) -> stem (stride `stem_stride`) -> `blocks` x [ResBlock, stride-2 conv]
    -> flatten -> Linear -> (N, dim), plus, with `peaks` > 0, a SpectralPeaks embedding of the same spectrum; with
    `peak_tokens` the peaks' raw features are appended instead, (N, dim + 3 peaks), as context tokens for a
    transformer field.
    """

    def __init__(self, n_samples: int, channels: int, blocks: int, kernel: int, dim: int, stem_stride: int,
                 peaks: int = 0, peak_hidden: int = 128, peak_tokens: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(1, channels, kernel, stride=stem_stride, padding=kernel // 2)]
        for _ in range(blocks):
            layers += [ResBlock1d(channels, kernel), nn.Conv1d(channels, channels, 4, stride=2, padding=1)]
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.net(torch.zeros(1, 1, n_samples // 2 + 1)).numel()
        self.head = nn.Sequential(nn.GELU(), nn.Linear(flat, dim))
        self.dim = dim
        self.add_peaks(n_samples // 2 + 1, peaks, peak_hidden, peak_tokens)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = encoder_input(audio)[:, None, :]  # (N, 1, F)
        return self.with_peaks(self.head(self.net(x).flatten(1)), x[:, 0])  # (N, dim)


class MelInput(Encoder):
    """What the mel encoders share: the expected (n_mels, frames) and the fixed standardisation
    x = (dB - offset) / scale, so a checkpoint's config says everything (no statistics are estimated)."""

    def __init__(self, n_mels: int, frames: int, offset: float, scale: float, dim: int):
        super().__init__()
        self.offset, self.scale = float(offset), float(scale)
        self.input_shape, self.dim = (n_mels, frames), dim

    def standardise(self, mel: torch.Tensor) -> torch.Tensor:
        """(N, n_mels, frames) in dB -> (N, 1, n_mels, frames) standardised; a one-line error for other shapes."""
        if tuple(mel.shape[1:]) != self.input_shape:
            raise ValueError(f"{type(self).__name__} expects log-mels of shape (N, {self.input_shape[0]}, "
                             f"{self.input_shape[1]}), got {tuple(mel.shape)}")
        return ((mel - self.offset) / self.scale)[:, None]

    def add_pitch_input(self, sample_rate: int | None) -> None:
        """The pitch-aware input (None: none): the harmonic salience (MelPitch) projected to the embedding."""
        self.pitch = None if sample_rate is None else MelPitch(self.input_shape[0], sample_rate)
        self.pitch_proj = None if self.pitch is None else nn.Linear(self.pitch.n_candidates, self.dim)

    def with_pitch(self, mel: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """out (N, dim) plus the projected pitch salience of mel (N, n_mels, frames), where there is one."""
        if self.pitch is not None and self.pitch_proj is not None:
            out = out + self.pitch_proj(self.pitch(mel))  # (N, C) salience -> (N, dim)
        return out


class MelPitch(nn.Module):
    """A pitch feature read off the log-mel: harmonic salience over semitone candidates (no weights learned).

    (N, n_mels, frames) dB -> (N, n_candidates): for each candidate f0 (MIDI `low`..`high`, one per semitone),
    the weighted sum of the note's level at its first `harmonics` harmonics (weight decay^(h-1), linearly
    interpolated between the mel centres), on the time-averaged spectrum in dB below its loudest band
    (clipped at `range_db`); then standardised per example. One (n_candidates, n_mels) matrix product on
    the stored log-mel, so training reads it from the dataset and invert from the audio's log-mel, the same
    way, at ~0.4 ms per example; a projection of it is added to the MelCNN embedding (MelCNN(pitch_...)).

    Why a salience vector rather than one f0: FM patches often have a weak or missing fundamental and
    octave ambiguity, so the model gets every candidate to weigh. What it is worth, measured
    (scripts/pitch_feature_check.py, 512 Dexed Simple test sounds): the top candidate is the note for 27%,
    within a semitone for 38%, the right pitch class for 43%. The limit is the log-mel itself: its 25 ms
    window smears a partial over about +-40 Hz, several semitones below C3 (a sine is read right from
    MIDI 52 up, 6-8 semitones low below). An f0 tracked on the audio would be sharper but is not stored.
    """

    def __init__(self, n_mels: int, sample_rate: int, low: int = 24, high: int = 108, harmonics: int = 3,
                 decay: float = 0.3, range_db: float = 60.0):
        super().__init__()
        top = float(hz_to_mel(sample_rate / 2))
        centres = torch.linspace(0.0, top, n_mels + 2, dtype=torch.float64)[1:-1]  # (n_mels,) mel, HTK filters
        step = float(centres[1] - centres[0])
        f0 = 440.0 * 2.0 ** ((torch.arange(low, high + 1, dtype=torch.float64) - 69) / 12)  # (C,) Hz
        weights = torch.zeros(len(f0), n_mels, dtype=torch.float64)
        for h in range(1, harmonics + 1):
            pos = (hz_to_mel(h * f0) - centres[0]) / step  # (C,) fractional mel band of harmonic h
            inside = (pos >= 0) & (pos < n_mels - 1) & (h * f0 < sample_rate / 2)
            lo = pos.floor().long().clamp(0, n_mels - 2)
            frac = pos - lo
            rows = torch.arange(len(f0))[inside]
            weights[rows, lo[inside]] += decay ** (h - 1) * (1 - frac[inside])
            weights[rows, lo[inside] + 1] += decay ** (h - 1) * frac[inside]
        self.register_buffer("weights", weights.float())  # (C, n_mels)
        self.weights: torch.Tensor
        self.range_db, self.low, self.n_candidates = range_db, low, len(f0)
        self.f0 = mel_to_hz(hz_to_mel(f0))  # (C,) candidate f0s in Hz, for callers

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        power = torch.pow(10.0, mel / 10).mean(-1)  # (N, n_mels) time-averaged power
        db = 10 * power.clamp_min(1e-12).log10()
        level = (db - db.amax(1, keepdim=True)).clamp(min=-self.range_db)  # (N, n_mels) dB below the loudest band
        level = level - level.mean(1, keepdim=True)  # bands quieter than average count against a candidate
        salience = level @ self.weights.T  # (N, C)
        return (salience - salience.mean(1, keepdim=True)) / (salience.std(1, keepdim=True) + 1e-6)

    def midi(self, mel: torch.Tensor) -> torch.Tensor:
        """(N,) the most salient candidate as a MIDI note."""
        return self(mel).argmax(1) + self.low


class MelCNN(MelInput):
    """2-D CNN over a log-mel spectrogram (the Dexed encoder): (N, n_mels, frames) in dB -> (N, dim).

    Input standardisation is a fixed affine map on dB, x = (dB - offset) / scale (the configs' (dB + 50) / 25:
    the -100 dB floor goes to -2, a full-scale partial near 0 dB to +2); no statistics are estimated, so
    the checkpoint's config says everything. Then a patchify stem (kernel = stride = `stem`, no overlap),
    and one stride-2 3x3 convolution per entry of `channels` (pre-activation: GroupNorm, GELU, conv), and
    the feature map is flattened (not pooled) so that both the frequency position (pitch, partials) and
    the time position (envelope) of each feature survive to the final Linear.

    The configs' sizes for (128, 151): stem 4 x 4 -> (8, 32, 37); stages of 16, 32, 64 channels -> (64, 4, 5);
    flatten 1280 -> 128; 189k weights, most of them in the final Linear. With `peaks`, the loudest bands of the
    log-mel averaged over time, as SpectralPeaks (added to the embedding, or context tokens: Encoder.add_peaks).
    """

    def __init__(self, n_mels: int, frames: int, channels: tuple[int, ...], stem_channels: int, stem: int, dim: int,
                 offset: float, scale: float, groups: int = 4, pitch_sample_rate: int | None = None,
                 peaks: int = 0, peak_hidden: int = 128, peak_tokens: bool = False):
        super().__init__(n_mels, frames, offset, scale, dim)
        self.add_pitch_input(pitch_sample_rate)
        self.add_peaks(n_mels, peaks, peak_hidden, peak_tokens)  # of the time-averaged standardised log-mel
        layers: list[nn.Module] = [nn.Conv2d(1, stem_channels, stem, stride=stem)]
        c_in = stem_channels
        for c in channels:
            layers += [nn.GroupNorm(min(groups, c_in), c_in), nn.GELU(), nn.Conv2d(c_in, c, 3, stride=2, padding=1)]
            c_in = c
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.net(torch.zeros(1, 1, n_mels, frames)).numel()
        self.head = nn.Sequential(nn.GroupNorm(min(groups, c_in), c_in), nn.GELU(), nn.Flatten(), nn.Linear(flat, dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.standardise(mel)  # (N, 1, n_mels, frames)
        return self.with_peaks(self.with_pitch(mel, self.head(self.net(x))), x[:, 0].mean(dim=-1))  # (N, dim)


class MelPooled(MelInput):
    """An MLP over a coarse summary of the log-mel, the kind of summary the bank lookup ranks by: (N, n_mels,
    frames) dB -> relative to the example's peak, floored `range_db` below it -> `mel_pool` adjacent bands and
    `segments` equal stretches of time averaged -> (N, n_mels / mel_pool * segments), with the peak level
    beside it (relative dB drops it, and output levels are parameters) -> `layers` x [Linear, GELU] -> Linear
    -> (N, dim). Nothing spatial is left to learn, so it trains in fewer steps than the CNN; the optional
    pitch feature is added as in MelCNN.
    """

    def __init__(self, n_mels: int, frames: int, mel_pool: int, segments: int, hidden: int, layers: int, dim: int,
                 range_db: float = 80.0, pitch_sample_rate: int | None = None):
        super().__init__(n_mels, frames, offset=-50.0, scale=25.0, dim=dim)  # offset/scale: the peak level's map
        if n_mels % mel_pool or segments > frames:
            raise ValueError(f"MelPooled: {n_mels} mels do not split into groups of {mel_pool}, or {segments} "
                             f"segments exceed {frames} frames")
        self.mel_pool, self.segments, self.range_db = mel_pool, segments, float(range_db)
        width = n_mels // mel_pool * segments + 1
        mlp: list[nn.Module] = []
        for _ in range(layers):
            mlp += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        self.mlp = nn.Sequential(*mlp, nn.Linear(width, dim))
        self.add_pitch_input(pitch_sample_rate)

    def summary(self, mel: torch.Tensor) -> torch.Tensor:
        """(N, n_mels, frames) dB -> (N, n_mels / mel_pool * segments + 1), each value about in [-1, 1]."""
        x = self.standardise(mel)[:, 0]  # shape check; (N, M, F) as (dB + 50) / 25
        peak = x.amax(dim=(1, 2))  # (N,)
        relative = (x - peak[:, None, None]).clamp_min(-self.range_db / self.scale)  # (N, M, F)
        n, m, f = relative.shape
        bands = relative.reshape(n, m // self.mel_pool, self.mel_pool, f).mean(dim=2)  # (N, M / pool, F)
        pooled = nn.functional.adaptive_avg_pool1d(bands, self.segments)  # (N, M / pool, S)
        pooled = pooled * (2 * self.scale / self.range_db) + 1.0  # [-range, 0] dB -> [-1, 1]
        return torch.cat([pooled.flatten(1), peak[:, None]], dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.with_pitch(mel, self.mlp(self.summary(mel)))  # (N, dim)


class MelAST(MelInput):
    """AST-style encoder (the paper's choice for real synths), for comparison with MelCNN: non-overlapping
    `patch` x `patch` patches of the standardised log-mel -> linear patch embedding + learned positions ->
    pre-norm transformer -> the output at one learned query token -> (N, dim).

    (128, 151) with 16 x 16 patches: 8 x 9 = 72 patch tokens + 1 query (the last 7 frames are dropped).
    """

    def __init__(self, n_mels: int, frames: int, patch: int, d_model: int, layers: int, heads: int, ff: int, dim: int,
                 offset: float, scale: float):
        super().__init__(n_mels, frames, offset, scale, dim)
        self.embed = nn.Conv2d(1, d_model, patch, stride=patch)
        n_patches = (n_mels // patch) * (frames // patch)
        self.positions = nn.Parameter(0.02 * torch.randn(1, n_patches + 1, d_model))
        self.query = nn.Parameter(torch.zeros(1, 1, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.standardise(mel)).flatten(2).transpose(1, 2)  # (N, patches, d)
        tokens = torch.cat([self.query.expand(len(tokens), -1, -1), tokens], 1) + self.positions  # (N, 1 + patches, d)
        return self.head(self.body(tokens)[:, 0])  # (N, dim): the query token's output
