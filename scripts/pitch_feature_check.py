"""How well the encoder's pitch feature (models.encoders.MelPitch) reads the note off a stored log-mel.

    PYTHONPATH=src python scripts/pitch_feature_check.py [--data data/dexed_simple_test] [--n 512]

Prints, over the first n examples of a dataset: the share whose most salient candidate is the played MIDI
note (exactly, within a semitone, the same pitch class in any octave), and the cost per example.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from synthinv.datasets import first_examples, synth_of_dataset
from synthinv.models.encoders import MelPitch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/dexed_simple_test"))
    ap.add_argument("--n", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(1)
    synth, _ = synth_of_dataset(args.data, role="test")
    params, mel, _, _ = first_examples(args.data, synth, args.n)
    notes = torch.from_numpy(synth.notes(params))  # (n,)
    pitch = MelPitch(mel.shape[1], synth.sample_rate)
    start = time.perf_counter()
    guess = pitch.midi(mel)  # (n,)
    per_example_ms = 1000 * (time.perf_counter() - start) / len(mel)
    off = guess - notes
    print(f"{len(mel)} examples of {args.data}: top candidate = note {(off == 0).float().mean():.0%}, within a "
          f"semitone {(off.abs() <= 1).float().mean():.0%}, same pitch class {(off % 12 == 0).float().mean():.0%}, "
          f"an octave or more off (same class) {((off % 12 == 0) & (off != 0)).float().mean():.0%}; "
          f"{per_example_ms:.3f} ms per example")
    top3 = pitch(mel).topk(3, dim=1).indices + pitch.low  # (n, 3)
    print(f"note among the 3 most salient candidates: {(top3 == notes[:, None]).any(1).float().mean():.0%}")


if __name__ == "__main__":
    main()
