"""Dexed: Param2Tok flow vs MLP flow vs MSE regression at one CPU budget each -> results/dexed.md.

    python scripts/dexed_experiment.py --budget 10 [--methods flow_param2tok,flow_mlp,regression_mse]

Needs datasets made by `synthinv generate` (see README): data/dexed_train (seed 1), data/dexed_val (seed 2),
data/dexed_test (seed 3). Resumable: a method with results/dexed/<method>.json is skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from synthinv.build import build_synth, load_config
from synthinv.checkpoint import load_checkpoint
from synthinv.evaluation import evaluate_model
from synthinv.experiment import plot_assignment
from synthinv.fileio import write_json_atomic
from synthinv.training import train

SHOWN = ["mss", "mss_random", "param_mse", "param_mse_random", "categorical_accuracy", "categorical_accuracy_random"]


def fmt(row: dict, col: str) -> str:
    value = row[col]
    if f"{col}_ci95" in row:
        return f"{value:.2f} ± {row[col + '_ci95']:.2f}"
    return f"{value:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, required=True, help="training minutes per method")
    ap.add_argument("--methods", default="flow_param2tok,flow_mlp,regression_mse")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--runs", type=Path, default=Path("runs/dexed"))
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--eval-examples", type=int, default=256)
    ap.add_argument("--eval-steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    results_dir = args.out / "dexed"
    results_dir.mkdir(parents=True, exist_ok=True)
    synth = build_synth({"name": "dexed"})
    for name in args.methods.split(","):
        done = results_dir / f"{name}.json"
        if done.exists():
            print(f"{name}: done, skipping")
            continue
        config = load_config(name, "dexed")
        meta = train(config, synth, args.runs / name, budget_minutes=args.budget, progress_bar=False,
                     data_dir=args.data / "dexed_train", val_dir=args.data / "dexed_val")
        model, synth, blob = load_checkpoint(args.runs / name / "model.ckpt")
        metrics = evaluate_model(model, synth, n=args.eval_examples, steps=args.eval_steps,
                                 guidance=config["sample"]["guidance"], data_dir=args.data / "dexed_test",
                                 train_seed=(blob["meta"].get("data") or {}).get("seed"))
        row = {"method": name, **metrics, **{k: meta[k] for k in ("steps", "train_seconds", "examples_per_second")},
               "budget_minutes": args.budget, "weights": sum(p.numel() for p in model.parameters())}
        write_json_atomic(done, row)
        print(f"{name}: MSS {metrics['mss']:.2f} dB (random patches {metrics['mss_random']:.2f})")

    order = ["flow_param2tok", "flow_mlp", "regression_mse"]  # every finished method, not only this call's
    rows = sorted((json.loads(p.read_text()) for p in results_dir.glob("*.json")),
                  key=lambda r: order.index(r["method"]) if r["method"] in order else len(order))
    lines = ["# Dexed (DX7): flow vs regression", "",
             "| method | " + " | ".join(SHOWN) + " | steps | examples/s | weights |",
             "|---|" + "---|" * (len(SHOWN) + 3)]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(fmt(r, c) for c in SHOWN)
                     + f" | {r['steps']} | {r['examples_per_second']:.0f} | {r['weights']:,} |")
    lines += ["", f"Test set: the first {rows[0]['n'] if rows else '?'} examples of data/dexed_test (seed 3, patch prior); "
              f"{args.eval_steps} RK4 steps, one sample per sound. MSS: multi-scale log-mel distance in dB (mean ± 95% "
              "interval, lower is better); *_random: patches drawn from the same prior, scored against the same sounds.",
              f"Training: {args.budget} min per method, {args.threads} torch thread(s), 2-core CPU, from "
              "data/dexed_train (seed 1)."]
    (args.out / "dexed.md").write_text("\n".join(lines) + "\n")
    if plot_assignment(args.runs / "flow_param2tok" / "model.ckpt", args.out / "dexed_param2tok.png",
                       "Dexed Param2Tok |A| (tokens x parameter columns)"):
        print(f"wrote {args.out / 'dexed_param2tok.png'}")
    print(f"wrote {args.out / 'dexed.md'}")


if __name__ == "__main__":
    main()
