"""Transposing candidates to the target's pitch: a flow sample often has the right timbre on the wrong note.

On a DX7 the heard pitch is the MIDI note times the carriers' frequency ratios, so the note a model
predicts from a mel spectrogram is often off by an octave or a fifth (the exact note was right for only
5-9% of Dexed test sounds with every model). For a synth whose spec has a MIDI-note parameter
("note.midi"), each candidate's spectrum is compared with the target's on a log-frequency axis, where a
transposition is a shift; the likeliest whole-semitone shifts (three: a candidate of another timbre often
lines up almost as well an octave or a fifth away) are applied to the note parameter, the transposed
candidates are rendered, and whichever of them and the original the ranking distance prefers is kept. The
spectra are averaged over time, so this needs no pitch tracker and works for inharmonic (FM) sounds too.
"""

from __future__ import annotations

import math

import torch

from synthinv.scoring import ranking_distance
from synthinv.synths.base import Synth

NOTE_PARAM = "note.midi"
N_FFT = 8192  # 5.4 Hz bins at 44.1 kHz: finer than a semitone (7.7 Hz) above 130 Hz
BINS_PER_SEMITONE = 4
F_MIN = 50.0  # Hz: the lowest frequency on the log axis
FLOOR_DB = 80.0  # the profile is floored this far below its peak, so silence does not dominate
TRIES = 3  # transpositions tried per candidate (best-of-8 MSS on 128 Dexed test sounds: 1 -> 7.63 dB,
#            3 -> 7.35, 5 -> 7.26; none: 8.3)


def note_column(spec) -> tuple[int, float, float] | None:
    """(encoded column, lowest note, highest note) of the spec's MIDI-note parameter, None without one."""
    for p, s in zip(spec.params, spec.slices):
        if p.name == NOTE_PARAM and p.kind == "discrete":
            return s.start, p.low, p.high
    return None


def log_frequency_profile(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(N, T) -> (N, B): time-averaged magnitude in dB above a floor 80 dB under its peak, sampled at
    BINS_PER_SEMITONE points per semitone from F_MIN up to the Nyquist frequency (linear interpolation),
    less its average over the surrounding octave (negative parts dropped)."""
    n_fft = min(N_FFT, 2 ** int(math.log2(audio.shape[-1])))  # short notes: the longest window that fits
    window = torch.hann_window(n_fft, dtype=audio.dtype)
    mag = torch.stft(audio, n_fft, hop_length=n_fft // 2, window=window, return_complex=True).abs().mean(-1)  # (N, F)
    db = 20 * torch.log10(mag + 1e-12)
    db = (db - db.amax(dim=1, keepdim=True) + FLOOR_DB).clamp_min(0)  # (N, F), 0 = at or below the floor
    n_points = int(BINS_PER_SEMITONE * 12 * math.log2(0.5 * sample_rate / F_MIN))
    freqs = F_MIN * 2 ** (torch.arange(n_points, dtype=audio.dtype) / (12 * BINS_PER_SEMITONE))  # (B,)
    pos = (freqs * n_fft / sample_rate).clamp(max=db.shape[1] - 1.001)  # fractional STFT bin of each point
    low = pos.floor().long()
    frac = pos - low
    profile = db[:, low] * (1 - frac) + db[:, low + 1] * frac  # (N, B)
    # Keep the peaks (partials) above the local level, so the broad spectral envelope, which a candidate of
    # another timbre shapes differently, does not decide the shift.
    k = 12 * BINS_PER_SEMITONE + 1  # one octave
    local = torch.nn.functional.avg_pool1d(profile[:, None], k, stride=1, padding=k // 2, count_include_pad=False)[:, 0]
    return (profile - local).clamp_min(0)  # (N, B)


def semitone_shifts(audio: torch.Tensor, target: torch.Tensor, sample_rate: int, max_shift: int,
                    tries: int = 1) -> torch.Tensor:
    """Candidates (N, T) vs targets (N, T) -> (N, tries) long, best first: the whole-semitone transpositions
    (-max..max) that best line the candidate's log-frequency profile up with its target's (correlation over
    the overlap)."""
    cand, targ = log_frequency_profile(audio, sample_rate), log_frequency_profile(target, sample_rate)  # (N, B)
    n_bins = cand.shape[1]
    scores = []
    for s in range(-max_shift, max_shift + 1):
        k = s * BINS_PER_SEMITONE  # transposing the candidate up by s moves its profile k bins right
        a = cand[:, max(0, -k): n_bins - max(0, k)]
        b = targ[:, max(0, k): n_bins - max(0, -k)]
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        scores.append((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-9))
    return torch.stack(scores, 1).topk(tries, dim=1).indices - max_shift  # (N, tries)


def transpose_params(spec, params: torch.Tensor, shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised params (N, P) moved by `shifts` (N,) semitones on the note parameter ->
    (params (N, P), moved (N,) bool: the shift is non-zero and the new note is inside the spec's range)."""
    column = note_column(spec)
    if column is None:
        raise ValueError(f"{spec.synth} has no {NOTE_PARAM} parameter to transpose")
    col, low, high = column
    note = low + torch.round((params[:, col].clamp(-1, 1) + 1) / 2 * (high - low))  # (N,) as the spec decodes it
    new_note = note + shifts.to(params.dtype)
    moved = (shifts != 0) & (new_note >= low) & (new_note <= high)
    out = params.clone()
    out[moved, col] = (2 * (new_note[moved] - low) / (high - low) - 1).to(params.dtype)
    return out, moved


def align_to_target(synth: Synth, params: torch.Tensor, audio: torch.Tensor, targets: torch.Tensor, distance: torch.Tensor,
                    tries: int = TRIES) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep, per candidate, the closest of itself and its `tries` likeliest transpositions to the target.

    params (N, P), audio (N, T), targets (N, T), distance (N,) by `ranking_distance(synth, audio, targets)`
    -> (params, audio, distance, shift (N,) long: semitones applied, 0 where the original was kept).
    Renders only the transpositions that move the note inside its range (at most N * tries). A synth
    without a note parameter gets everything back unchanged."""
    shift = torch.zeros(len(params), dtype=torch.long)
    column = note_column(synth.spec)
    if column is None or not len(params):
        return params, audio, distance, shift
    _, low, high = column
    shifts = semitone_shifts(audio, targets, synth.sample_rate, int(high - low), tries)  # (N, tries): whole note range
    params, audio, distance = params.clone(), audio.clone(), distance.clone()
    originals = params.clone()
    for t in range(tries):
        moved_params, moved = transpose_params(synth.spec, originals, shifts[:, t])
        rows = moved.nonzero().squeeze(1)  # (M,)
        if not len(rows):
            continue
        new_audio = synth.render(moved_params[rows])  # (M, T)
        new_distance = ranking_distance(synth, new_audio, targets[rows])  # (M,)
        better = new_distance < distance[rows]
        keep = rows[better]
        params[keep], audio[keep], distance[keep] = moved_params[keep], new_audio[better], new_distance[better]
        shift[keep] = shifts[keep, t]
    return params, audio, distance, shift
