"""Render the out-of-distribution set: General MIDI instruments from Debian's FluidR3 soundfont.

Each note is rendered like a Dexed note (velocity 100, 1 s held, 0.5 s release, 44.1 kHz, mono) by a
fresh fluidsynth instance in a fresh Python process, with reverb and chorus off, mixed to mono,
peak-normalised to -6 dBFS and written as 16-bit wav. Rendering twice gives identical files. Why so
fresh: a reused fluidsynth carries voice state over, and one in a process that has hosted other audio
code renders slightly different samples (measured: up to 11 LSB after DawDreamer had loaded a plugin,
presumably through the CPU's flush-to-zero flags, which such hosts switch on).

Needs Debian's fluidsynth and soundfont and the pinned Python binding (a test extra):

    apt-get update && apt-get install -y fluidsynth fluid-soundfont-gm
    .venv/bin/pip install -e '.[test]'          # pyfluidsynth==1.4.0
    .venv/bin/python scripts/make_ood_set.py --out examples/ood
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from synthinv.audio_io import write_wav  # noqa: E402

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE, VELOCITY, HOLD_S, RELEASE_S = 44100, 100, 1.0, 0.5  # as DexedSynth's defaults
PEAK = 0.5  # -6 dBFS: uses the 16-bit range; level is re-set by prepare_sound anyway
# (file name, General MIDI program, 0-based): sixteen families of timbre, four pitches each (64 files).
# The first ten at notes 50 and 65 are the set's first version (session 6), kept byte for byte.
INSTRUMENTS = (("piano", 0), ("epiano", 4), ("marimba", 12), ("organ", 16), ("guitar", 24),
               ("strings", 48), ("trumpet", 56), ("brass", 61), ("flute", 73), ("synthlead", 81),
               ("vibraphone", 11), ("accordion", 21), ("bass", 33), ("violin", 40), ("clarinet", 71),
               ("pad", 89))
# G2 (98 Hz), D3 (147 Hz), F4 (349 Hz), C5 (523 Hz): every instrument at every note, in its range or not
# (a flute at G2 is still a sound a user may bring), all inside the range invert plays Dexed over.
NOTES = (43, 50, 65, 72)


def render_note(program: int, note: int, soundfont: Path = SOUNDFONT) -> np.ndarray:
    """One note of a GM program -> mono float32 (T,) at 44.1 kHz, rendered in a fresh process."""
    if not Path(soundfont).is_file():
        raise FileNotFoundError(f"soundfont {soundfont} not found: apt-get install -y fluid-soundfont-gm")
    # The samples come back through a file, not stdout: some pyfluidsynth builds print to stdout on import.
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "note.npy"
        run = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", str(program), str(note),
                              "--soundfont", str(soundfont), "--one-out", str(samples)], capture_output=True)
        if run.returncode or not samples.is_file():
            raise RuntimeError(f"rendering program {program} note {note} failed: "
                               f"{(run.stderr.decode().strip().splitlines() or ['?'])[-1]}")
        return np.load(samples)


def render_note_here(program: int, note: int, soundfont: Path) -> np.ndarray:
    """`render_note` in this process, by a fresh fluidsynth instance."""
    import fluidsynth  # pyfluidsynth; raises ImportError when libfluidsynth is missing

    synth = fluidsynth.Synth(gain=0.5, samplerate=float(SAMPLE_RATE),
                             **{"synth.reverb.active": 0, "synth.chorus.active": 0})
    try:
        sfid = synth.sfload(str(soundfont))
        synth.program_select(0, sfid, 0, program)
        synth.noteon(0, note, VELOCITY)
        held = synth.get_samples(int(HOLD_S * SAMPLE_RATE))  # interleaved stereo int16 (2 * frames,)
        synth.noteoff(0, note)
        tail = synth.get_samples(int(RELEASE_S * SAMPLE_RATE))
    finally:
        synth.delete()
    stereo = np.concatenate([held, tail]).reshape(-1, 2).astype(np.float32) / 32768.0  # (T, 2)
    return stereo.mean(axis=1)


def normalise(audio: np.ndarray) -> np.ndarray:
    peak = float(np.abs(audio).max())
    if peak == 0:
        raise ValueError("fluidsynth rendered silence")
    return (audio * (PEAK / peak)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "examples" / "ood")
    ap.add_argument("--soundfont", type=Path, default=SOUNDFONT)
    ap.add_argument("--one", nargs=2, type=int, metavar=("PROGRAM", "NOTE"),
                    help="internal: render one note and write its float32 samples to --one-out (.npy)")
    ap.add_argument("--one-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        np.save(args.one_out, render_note_here(*args.one, args.soundfont).astype(np.float32))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for name, program in INSTRUMENTS:
        for note in NOTES:
            path = args.out / f"{name}_{note}.wav"
            write_wav(path, normalise(render_note(program, note, args.soundfont)), SAMPLE_RATE)
            print(path)


if __name__ == "__main__":
    main()
