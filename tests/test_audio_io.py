"""Reading users' sounds: every bad file is a one-line AudioError, every fix is reported."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from synthinv.audio_io import AudioError, prepare_sound

SR, LENGTH = 44100, 1024


def tone(seconds: float, rate: int = SR, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write(tmp_path, name, data, rate=SR, subtype="FLOAT"):
    path = tmp_path / name
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def write_text(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.wav", "not found"),
        (lambda p: write_text(p / "notes.wav", "hello, not audio"), "not a readable audio file"),
        (lambda p: write(p, "empty.wav", np.zeros(0, np.float32)), "no audio"),
        (lambda p: write(p, "nan.wav", np.where(np.arange(2048) == 7, np.nan, 0.1).astype(np.float32)), "NaN"),
        (lambda p: write(p, "silent.wav", np.zeros(4096, np.float32)), "silent"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, make, message):
    with pytest.raises(AudioError, match=message) as info:
        prepare_sound(make(tmp_path), SR, LENGTH)
    assert "\n" not in str(info.value)


def test_stereo_other_rate_is_mixed_and_resampled(tmp_path):
    path = write(tmp_path, "stereo48k.flac", tone(0.5, rate=48000, channels=2), rate=48000, subtype="PCM_16")
    sound = prepare_sound(path, SR, LENGTH)
    assert sound.audio.shape == (LENGTH,)
    notes = " ".join(sound.notes)
    assert "mixed 2 channels" in notes and "resampled 48000 Hz -> 44100 Hz" in notes
    # the 440 Hz tone survives resampling at the right bin
    spectrum = np.abs(np.fft.rfft(sound.audio.numpy()))
    assert abs(spectrum.argmax() * SR / LENGTH - 440) < SR / LENGTH


def test_short_file_is_padded_and_long_file_trimmed(tmp_path):
    short = prepare_sound(write(tmp_path, "short.wav", tone(0.01)), SR, LENGTH)
    assert short.audio.shape == (LENGTH,) and any("padded" in n for n in short.notes)
    assert short.audio[-100:].abs().max() == 0  # padding is silence
    long = prepare_sound(write(tmp_path, "long.wav", tone(3.0)), SR, LENGTH)
    assert long.audio.shape == (LENGTH,) and any("kept the first" in n for n in long.notes)


def test_onset_is_found_and_loudness_brought_into_range(tmp_path):
    data = np.concatenate([np.zeros(5000, np.float32), tone(0.2) * 0.01])  # quiet tone after silence
    sound = prepare_sound(write(tmp_path, "late.wav", data), SR, LENGTH, rms_range=(0.05, 0.3))
    assert any("onset" in n for n in sound.notes)
    rms = float(sound.audio.square().mean().sqrt())
    assert rms == pytest.approx(0.05, rel=1e-3)
    # already inside the range: left alone
    loud = prepare_sound(write(tmp_path, "ok.wav", tone(0.2)), SR, LENGTH, rms_range=(0.05, 0.3))
    assert not any("loudness" in n for n in loud.notes)


def test_clipped_file_warns(tmp_path):
    data = np.clip(tone(0.2) * 10, -1, 1)
    sound = prepare_sound(write(tmp_path, "clipped.wav", data), SR, LENGTH)
    assert any("clipped" in n for n in sound.notes)
