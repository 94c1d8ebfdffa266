"""Does Param2Tok's near-symmetric initialisation cost steps on Dexed? -> results/dexed_p2t_init.md

    python scripts/p2t_init_experiment.py [--steps 20000] [--noise 1e-2 1e-1]

Trains the Dexed Param2Tok flow with `model.init_noise` (how far A and Z start from maximal symmetry;
the paper's is 1e-4) from results/dexed_p2t_init/flow_param2tok_noise<N>.yaml, on data/dexed_train_big
with seed 0 and the given steps, and scores it like results/dexed_20k.md (256 test sounds, 50 RK4 steps,
best of 8 without pitch moving); the 1e-4 row is that table's Param2Tok run (runs/dexed_20k). Resumable:
a finished run or score is reused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from synthinv.checkpoint import read_checkpoint
from synthinv.fileio import atomic_write
from synthinv.tables import markdown_table

OUT = Path("results/dexed_p2t_init")
SYNTHINV = [sys.executable, "-m", "synthinv.cli"]


def run(cmd: list[str]) -> None:
    print(" ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def history(ckpt: Path) -> list[tuple[int, float]]:
    meta = read_checkpoint(ckpt)["meta"]
    return [(h["step"], h["val_mss"]) for h in meta["history"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--noise", nargs="+", default=["1e-2", "1e-1"])
    args = ap.parse_args()
    runs = {"1e-4 (paper)": (Path("runs/dexed_20k/flow_param2tok/model.ckpt"), Path("results/dexed_20k/flow_param2tok.json"))}
    for noise in args.noise:
        run_dir, scores = Path(f"runs/dexed_p2t_init/noise{noise}"), OUT / f"noise{noise}.json"
        if not (run_dir / "model.ckpt").is_file():
            run(SYNTHINV + ["train", str(OUT / f"flow_param2tok_noise{noise}.yaml"), "--synth", "dexed", "--data",
                            "data/dexed_train_big", "--val-data", "data/dexed_val", "--steps", str(args.steps), "--threads",
                            "1", "--seed", "0", "--out", str(run_dir), "--force"])
        if not scores.is_file():
            run(SYNTHINV + ["evaluate", str(run_dir / "model.ckpt"), "--data", "data/dexed_test", "--n", "256", "--steps",
                            "50", "--candidates", "8", "--no-transpose", "--threads", "1", "--out", str(scores)])
        runs[noise] = (run_dir / "model.ckpt", scores)
    lines = ["# Dexed Param2Tok: how symmetric to start", "",
             "`model.init_noise`: the noise added to the constant A and the repeated z rows at initialisation (the paper: "
             f"1e-4, maximal symmetry that training breaks). {args.steps} steps each, batch 64, seed 0, data/dexed_train_big; "
             "256 test sounds, 50 RK4 steps; best of 8 ranked by MSS without pitch moving (as results/dexed_20k.md). "
             "Validation MSS: 64 validation sounds, 20 RK4 steps, at every fifth of the run (the best weights are kept).", ""]
    rows = []
    for label, (ckpt, scores) in runs.items():
        m = json.loads(scores.read_text())
        val = ", ".join(f"{s // 1000}k {v:.2f}" for s, v in history(ckpt))
        rows.append([label, f"{m['mss']:.2f} ± {m['mss_ci95']:.2f}", f"{m['mss_best_of']:.2f} ± {m['mss_best_of_ci95']:.2f}",
                     f"{m['wmfcc']:.2f}", f"{m['rms_cos']:.3f}", val])
    header = ["init_noise", "MSS, 1 sample", "MSS, best of 8", "wMFCC", "RMS cos", "validation MSS by step"]
    lines.append(markdown_table(header, rows, compact_rule=True))
    lines += ["", f"Made by `python scripts/p2t_init_experiment.py --steps {args.steps} --noise {' '.join(args.noise)}`."]
    atomic_write(OUT.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
