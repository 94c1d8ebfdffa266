"""`synthinv invert` latency on CPU for 1, 8 and 32 candidates, phase by phase.

    python benchmarks/bench_invert.py [--synth dexed|kosc] [--sound WAV] [--model NAME_OR_CKPT] [--steps 50] [--repeats 3] [--threads N] [--no-transpose]

Phases: load (checkpoint, input file, features), sample (flow ODE), render (synth), score (ranking
distance), transpose (moving candidates to the target's pitch: Dexed only, off with --no-transpose).
Writing the report is excluded (it is I/O and plotting, measured by `synthinv invert` itself).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from synthinv.pipeline import invert

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SOUNDS = {"dexed": EXAMPLES / "dexed_heldout_0.wav", "kosc": EXAMPLES / "kosc4_heldout_0.wav"}
PHASES = ("load", "sample", "render", "score", "transpose")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", default="dexed", choices=sorted(SOUNDS))
    ap.add_argument("--model", default=None, help="shipped model name or checkpoint (default: the synth's)")
    ap.add_argument("--sound", type=Path, default=None, help="default: a held-out example of the synth")
    ap.add_argument("--no-transpose", dest="transpose", action="store_false")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    args.sound = args.sound or SOUNDS[args.synth]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {args.sound.name}, {args.steps} RK4 steps")
    run = lambda n, steps: invert(args.sound, args.model, args.synth, candidates=n, steps=steps,  # noqa: E731
                                  transpose=args.transpose).settings["seconds"]
    run(1, 2)  # warm-up
    print(f"{'candidates':>10} " + " ".join(f"{p + ' s':>9}" for p in PHASES) + f" {'total s':>9}")
    for n in (1, 8, 32):
        runs = [run(n, args.steps) for _ in range(args.repeats)]
        med = {p: statistics.median(r.get(p, 0.0) for r in runs) for p in PHASES}
        print(f"{n:>10} " + " ".join(f"{med[p]:>9.3f}" for p in PHASES) + f" {sum(med.values()):>9.3f}")
    print("medians over repeats; compare rows of one run (the machine is noisy)")


if __name__ == "__main__":
    main()
