"""Write the shipped example sounds to examples/ (run from anywhere: `python scripts/make_examples.py`).

Two kinds, so users see both cases of `synthinv invert`:
- k-osc (k=4, symmetric) and Dexed notes rendered from held-out parameters: the true answer is known, so
  the report can show it. Seed HELDOUT_SEED is none of the training (1_000_000 + run seed), validation
  (2_000_003), test (3_000_017) or random-baseline (4_000_037) split seeds. Each wav has a JSON beside
  it with the normalised parameters and their native values.
- Sounds no synth here made, generated procedurally with numpy/scipy: a Karplus-Strong plucked string,
  an additive inharmonic bell, a band-passed noise burst; 1.0 s at 44.1 kHz, peak-normalised to 0.5.

Everything is a pure function of fixed seeds, so re-running rewrites the same bytes (with the same numpy,
scipy and torch). Wavs are 16-bit (synthinv.audio_io.write_wav).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from scipy.signal import butter, sosfilt

from synthinv.audio_io import write_wav
from synthinv.synths.dexed import DexedSynth
from synthinv.synths.kosc import KOscSynth

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HELDOUT_SEED = 5_000_011
HELDOUT_INDICES = (0, 1, 2)
SR = 44100
SECONDS = 1.0
PEAK = 0.5


def heldout_notes(synth, stem: str, params: torch.Tensor, audio: torch.Tensor, out: Path) -> list[Path]:
    """Write each held-out note as STEM_i.wav + STEM_i.json (the preset layout of synthinv.presets, plus
    seed and index) and, for Dexed, STEM_i.syx: the true answer beside the sound."""
    from synthinv.presets import preset_dict, write_native_preset

    written = []
    for i, index in enumerate(HELDOUT_INDICES):
        wav = out / f"{stem}_{i}.wav"
        write_wav(wav, audio[i], synth.sample_rate)  # as rendered: level is a parameter, not normalised
        meta = {**preset_dict(synth, params[i]), "seed": HELDOUT_SEED, "index": index,
                "normalised": [float(v) for v in params[i]]}  # exact float32 values: re-rendering matches
        wav.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
        written += [wav, wav.with_suffix(".json")]
        syx = write_native_preset(out, synth, params[i], name=f"HELDOUT{i}")
        if syx is not None:
            written.append(syx.rename(wav.with_suffix(".syx")))
    return written


def kosc_heldout(out: Path) -> list[Path]:
    synth = KOscSynth(k=4, asym=False)
    params = synth.params_at(HELDOUT_SEED, np.array(HELDOUT_INDICES))  # (3, 12) normalised
    return heldout_notes(synth, "kosc4_heldout", params, synth.render(params), out)


def dexed_heldout(out: Path) -> list[Path]:
    """Dexed notes from the patch prior (with its silence redraws) at the held-out seed: no Dexed dataset
    uses it (train 1, validation 2, test 3)."""
    synth = DexedSynth()
    params, audio = synth.draw(HELDOUT_SEED, np.array(HELDOUT_INDICES))  # (3, 225), (3, 66150)
    return heldout_notes(synth, "dexed_heldout", params, audio, out)


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x * (PEAK / np.abs(x).max())).astype(np.float32)


def karplus_strong(freq_hz: float = 220.0, seed: int = 5) -> np.ndarray:
    """A plucked string: a noise burst circulating in a delay line through a two-point average.

    The average delays by half a sample, so the loop is N + 0.5 samples: N = round(SR / f - 0.5)
    (200 at 220 Hz -> 219.95 Hz). A loss factor just below 1 sets the decay. The noise decides the
    harmonics' levels; seed 5 is one whose fundamental is the strongest partial (seed 1's is 8 dB under
    the octave, which reads as 440 Hz).
    """
    n_total = int(SR * SECONDS)
    period = int(round(SR / freq_hz - 0.5))
    rng = np.random.default_rng(seed)
    y = np.zeros(n_total + period + 1)
    pluck = rng.uniform(-1, 1, period + 1)  # the pluck: one period of noise, without DC
    y[1:period + 2] = pluck - pluck.mean()
    loss = 0.996
    for n in range(period + 2, n_total + period + 1):
        y[n] = loss * 0.5 * (y[n - period] + y[n - period - 1])
    out = y[1:n_total + 1]
    return _normalise(out - out.mean())  # the loop's start leaves a small DC offset


def inharmonic_bell(f0: float = 330.0) -> np.ndarray:
    """Additive synthesis after Risset's bell: inharmonic partials, the higher ones dying sooner."""
    t = np.arange(int(SR * SECONDS)) / SR
    # (frequency ratio, detune Hz, relative amplitude, decay time to -60 dB in s)
    partials = [(0.56, 0.0, 1.0, 1.0), (0.56, 1.0, 0.67, 0.9), (0.92, 0.0, 1.0, 0.65),
                (0.92, 1.7, 1.8, 0.55), (1.19, 0.0, 2.67, 0.325), (1.70, 0.0, 1.67, 0.35),
                (2.00, 0.0, 1.46, 0.25), (2.74, 0.0, 1.33, 0.2), (3.00, 0.0, 1.33, 0.15),
                (3.76, 0.0, 1.0, 0.1), (4.07, 0.0, 1.33, 0.075)]
    x = np.zeros_like(t)
    for ratio, detune, amp, t60 in partials:
        x += amp * np.exp(-6.91 * t / t60) * np.sin(2 * np.pi * (ratio * f0 + detune) * t)
    attack = np.minimum(1.0, t / 0.002)  # 2 ms ramp: no click
    return _normalise(x * attack)


def noise_burst(seed: int = 2) -> np.ndarray:
    """A recorded-style hit: white noise band-passed to 600-4000 Hz (4th-order Butterworth), 3 ms
    attack, 120 ms exponential decay, plus a faint low room tail; silence for the rest of the second."""
    n = int(SR * SECONDS)
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n)
    band = sosfilt(butter(4, [600, 4000], btype="bandpass", fs=SR, output="sos"), noise)
    room = sosfilt(butter(2, 500, btype="lowpass", fs=SR, output="sos"), rng.standard_normal(n))
    env = np.minimum(1.0, t / 0.003) * np.exp(-t / 0.12)
    tail = 0.05 * np.minimum(1.0, t / 0.01) * np.exp(-t / 0.4)
    return _normalise(band * env + room * tail)


def main() -> None:
    torch.set_num_threads(1)
    EXAMPLES.mkdir(exist_ok=True)
    written = kosc_heldout(EXAMPLES) + dexed_heldout(EXAMPLES)
    procedural = [("pluck_karplus_strong_220hz", karplus_strong()), ("bell_additive_inharmonic", inharmonic_bell()),
                  ("noise_burst_bandpass", noise_burst())]
    for name, audio in procedural:
        write_wav(EXAMPLES / f"{name}.wav", audio, SR)
        written.append(EXAMPLES / f"{name}.wav")
    for path in written:
        print(f"{path.stat().st_size:>8} B  {path}")
    print(f"{sum(p.stat().st_size for p in written):>8} B  in all")


if __name__ == "__main__":
    main()
