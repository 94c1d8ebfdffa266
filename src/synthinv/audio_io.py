"""Reading a user's sound into what a model expects, saying what was done to it.

Any file libsndfile reads (wav, flac, ogg, aiff, ...), mono or multichannel, any rate and length, becomes
a mono float32 tensor at the synth's rate and length. Problems that make inversion meaningless (missing,
unreadable, empty, NaN, silent) raise AudioError with a one-line message; fixable ones are fixed and
reported in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from synthinv.errors import SynthinvError

MAX_SECONDS_READ = 60.0  # a 10-minute file is not read whole: the note we model is near its start
SILENCE_RMS = 1e-5  # -100 dBFS
ONSET_DB = -40.0  # the note starts where the signal first rises above peak - 40 dB


class AudioError(SynthinvError, ValueError):
    """The file cannot be inverted (missing, not audio, empty, NaN, silent)."""


@dataclass
class LoadedSound:
    audio: torch.Tensor  # (T,) mono float32 at the synth's rate, trimmed/padded to the synth's length
    notes: list[str] = field(default_factory=list)  # what was done, in words
    f0: float | None = None  # median f0 in Hz (NaN: unpitched), tracked by the pipeline when it needs it
    f0_track: np.ndarray | None = None  # (frames,) pYIN f0 in Hz, NaN where unvoiced; tracked with `f0`


def write_wav(path: Path, audio: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Mono float audio -> 16-bit wav (peak-safe: clipped to [-1, 1])."""
    data = np.asarray(audio, dtype=np.float32).clip(-1, 1)
    sf.write(str(path), data, sample_rate, subtype="PCM_16")


def read_mono(path: str | Path) -> tuple[np.ndarray, int, list[str]]:
    """(samples (T,), sample rate, notes); raises AudioError on anything that is not usable audio (missing,
    unreadable, empty, NaN, silent in the part read: the first MAX_SECONDS_READ seconds)."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not a sound file")
    if not path.is_file():
        raise AudioError(f"sound file not found: {path}")
    try:
        info = sf.info(str(path))
        frames = min(info.frames, int(MAX_SECONDS_READ * info.samplerate))
        data, rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{path} is not a readable audio file ({str(exc).splitlines()[0][:80]})") from None
    notes = []
    if info.frames > frames:
        notes.append(f"read the first {MAX_SECONDS_READ:.0f} s of {info.frames / info.samplerate:.1f} s")
    if data.shape[0] == 0:
        raise AudioError(f"{path} contains no audio samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{path} contains NaN or infinite samples")
    if data.shape[1] > 1:
        notes.append(f"mixed {data.shape[1]} channels to mono")
    mono = data.mean(axis=1)
    if float(np.abs(mono).max()) < SILENCE_RMS:  # checked here, so `synthinv.checks` refuses it before a model loads
        if info.frames > frames:  # the note may well be later in the file: say that it was not read
            raise AudioError(f"the first {MAX_SECONDS_READ:.0f} s of {path} are silent (peak below -100 dBFS) and "
                             f"only those are read of its {info.frames / info.samplerate:.1f} s; cut the file to "
                             "start near the note")
        raise AudioError(f"{path} is silent (peak below -100 dBFS)")
    clipped = float(np.mean(np.abs(mono) >= 0.999))
    if clipped > 0.01:
        notes.append(f"warning: {clipped:.0%} of samples are clipped; the spectrum will show distortion")
    return mono, rate, notes


def prepare_sound(path: str | Path, sample_rate: int, length: int,
                  rms_range: tuple[float, float] | None = None) -> LoadedSound:
    """Read, mix to mono, resample, start at the onset, trim/pad to `length`, bring loudness into `rms_range`.

    Loudness is changed only when it lies outside the range the synth produces (`rms_range`, e.g. its 5th
    to 95th percentile), because level is itself a parameter of most synths.
    """
    mono, rate, notes = read_mono(path)
    if rate != sample_rate:
        ratio = Fraction(sample_rate, rate).limit_denominator(1000)
        mono = resample_poly(mono, ratio.numerator, ratio.denominator).astype(np.float32)
        notes.append(f"resampled {rate} Hz -> {sample_rate} Hz")
    peak = float(np.abs(mono).max())  # not silent (read_mono): the RMS check comes after trimming, on the part the model hears
    onset = int(np.argmax(np.abs(mono) >= peak * 10 ** (ONSET_DB / 20)))
    if onset > sample_rate // 100:  # shorter leads (a synth's first samples, an attack ramp) are part of the note
        mono = mono[onset:]
        notes.append(f"skipped {onset / sample_rate * 1000:.1f} ms of near-silence before the onset")
    if len(mono) > length:
        notes.append(f"kept the first {length / sample_rate:.3f} s of {len(mono) / sample_rate:.3f} s (the model's note length)")
        mono = mono[:length]
    elif len(mono) < length:
        notes.append(f"padded with {length - len(mono)} samples of silence to the model's length "
                     f"({length} samples, {length / sample_rate:.3f} s)")
        mono = np.pad(mono, (0, length - len(mono)))
    rms = float(np.sqrt(np.mean(mono**2)))
    if rms < SILENCE_RMS:
        raise AudioError(f"{path} is silent in the part the model hears (RMS below -100 dBFS)")
    if rms_range and not rms_range[0] <= rms <= rms_range[1]:
        gain = min(max(rms, rms_range[0]), rms_range[1]) / rms
        mono = mono * gain
        notes.append(f"changed loudness by {20 * np.log10(gain):+.1f} dB into the synth's range")
    return LoadedSound(torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32)), notes)
