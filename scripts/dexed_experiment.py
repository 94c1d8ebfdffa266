"""Dexed: Param2Tok flow vs MLP flow vs MSE regression at one CPU budget each -> results/dexed.md.

    python scripts/dexed_experiment.py --budget 10 [--methods flow_param2tok,flow_mlp,regression_mse]
    python scripts/dexed_experiment.py --steps 20000 --train-data data/dexed_train_big --name dexed_20k

A budget is minutes per method (wall clock: fair only on an otherwise idle machine); --steps gives every
method the same number of optimiser steps instead (fair under any load). Needs datasets made by
`synthinv generate` (see README): data/dexed_train (seed 1), data/dexed_val (seed 2), data/dexed_test
(seed 3). Resumable: a method with results/<name>/<method>.json is skipped; --eval-only re-scores the
finished runs. Flows are scored on one sample per sound (the paper's protocol) and on the best of
--candidates samples ranked by invert's distance (the MSS of what `synthinv invert` returns first).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from synthinv import synths
from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.config import load_config
from synthinv.evaluation import evaluate_model
from synthinv.experiment import plot_assignment
from synthinv.fileio import write_json_atomic
from synthinv.tables import markdown_table
from synthinv.training import train

SHOWN = ["mss", "mss_best_of", "mss_random", "wmfcc", "wmfcc_random", "sot", "sot_random", "rms_cos", "rms_cos_random", "param_mse", "param_mse_random", "categorical_accuracy", "categorical_accuracy_random"]


def fmt(row: dict, col: str) -> str:
    if col not in row:
        return "-"
    value = row[col]
    if f"{col}_ci95" in row:
        return f"{value:.2f} ± {row[col + '_ci95']:.2f}"
    return f"{value:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    budget = ap.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget", type=float, help="training minutes per method")
    budget.add_argument("--steps", type=int, help="optimiser steps per method")
    ap.add_argument("--train-data", type=Path, default=None, help="training dataset (default: DATA/dexed_train)")
    ap.add_argument("--name", default="dexed_experiment", help="results/<name>.md, results/<name>/, runs/<name>/ (results/dexed.md is the index)")
    ap.add_argument("--candidates", type=int, default=8, help="best-of-N scoring for flows (1: off)")
    ap.add_argument("--eval-only", action="store_true", help="re-score finished runs, no training")
    ap.add_argument("--table-only", action="store_true", help="rewrite the table from the finished results only")
    ap.add_argument("--methods", default="flow_param2tok,flow_mlp,regression_mse")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--eval-examples", type=int, default=256)
    ap.add_argument("--eval-steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("synthinv").setLevel(logging.INFO)  # a line per validation

    results_dir, runs = args.out / args.name, args.runs / args.name
    train_data = args.train_data or args.data / "dexed_train"
    results_dir.mkdir(parents=True, exist_ok=True)
    synth = synths.from_settings({"name": "dexed"})
    for name in [] if args.table_only else args.methods.split(","):
        done = results_dir / f"{name}.json"
        if done.exists() and not args.eval_only:
            print(f"{name}: done, skipping")
            continue
        if not args.eval_only:
            train(load_config(name, "dexed"), synth, runs / name, budget_minutes=args.budget, max_steps=args.steps,
                  progress_bar=False, data_dir=train_data, val_dir=args.data / "dexed_val")
        model, synth, blob = load_checkpoint(runs / name / "model.ckpt")
        meta = blob["meta"]
        metrics = evaluate_model(model, synth, n=args.eval_examples, steps=args.eval_steps,
                                 guidance=stored_config(blob).sample.guidance, data_dir=args.data / "dexed_test",
                                 train_seed=(meta.get("data") or {}).get("seed"), candidates=args.candidates)
        row = {"method": name, **metrics, **{k: meta[k] for k in ("steps", "train_seconds", "examples_per_second")},
               "budget_minutes": meta.get("budget_minutes"), "max_steps": meta.get("max_steps"),
               "train_examples": meta["data"]["examples"], "weights": sum(p.numel() for p in model.parameters())}
        write_json_atomic(done, row)
        print(f"{name}: MSS {metrics['mss']:.2f} dB (random patches {metrics['mss_random']:.2f})")

    order = ["flow_param2tok", "flow_mlp", "regression_mse", "vae_realnvp"]  # every finished method, not only this call's
    rows = sorted((json.loads(p.read_text()) for p in results_dir.glob("*.json")),
                  key=lambda r: order.index(r["method"]) if r["method"] in order else len(order))
    budget_text = (f"{args.steps} optimiser steps" if args.steps else f"{args.budget} min") if not (args.eval_only or args.table_only) else (
        f"{rows[0]['max_steps']} optimiser steps" if rows and rows[0].get("max_steps") else f"{rows[0]['budget_minutes'] if rows else '?'} min")
    cells = [[r["method"], *(fmt(r, c) for c in SHOWN), r["steps"], f"{r['examples_per_second']:.0f}", f"{r['weights']:,}"]
             for r in rows]
    lines = ["# Dexed (DX7): flow vs regression", "",
             markdown_table(["method", *SHOWN, "steps", "examples/s", "weights"], cells, compact_rule=True)]
    lines += ["", f"Test set: the first {rows[0]['n'] if rows else '?'} examples of data/dexed_test (seed 3, patch prior); "
              f"{args.eval_steps} RK4 steps. mss: one sample per sound (the paper's protocol); mss_best_of: the best of "
              f"{args.candidates} samples per sound ranked by `synthinv invert`'s distance: the MSS of what invert returns "
              "first (invert ranks Dexed candidates by MSS; sampling models only: a regressor has one answer)"
              + ("; each sample also tried at the target's pitch (synthinv.transpose), as invert does. "
                 if any(r.get("transpose") for r in rows) else
                 "; without moving samples to the target's pitch (scored before invert did that; see "
                 "results/dexed_transpose.md). ")
              + "MSS: "
              "multi-scale log-mel distance in dB (mean ± 95% interval, lower is better); wMFCC (DTW-aligned MFCC "
              "distance), SOT (spectral optimal transport) lower is better, RMS cos (RMS-envelope cosine) higher is "
              "better, all on the single sample; *_random: patches drawn from the same prior, scored against the same "
              "sounds. VAE + RealNVP samples at temperature 0.5 (its config).",
              f"Training: {budget_text} per method, batch 64, {args.threads} torch thread(s), 2-core CPU, from "
              f"{train_data} (seed 1, {rows[0]['train_examples'] if rows and 'train_examples' in rows[0] else '?'} examples)."]
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    if plot_assignment(runs / "flow_param2tok" / "model.ckpt", args.out / f"{args.name}_param2tok.png",
                       "Dexed Param2Tok |A| (tokens x parameter columns)"):
        print(f"wrote {args.out / f'{args.name}_param2tok.png'}")
    print(f"wrote {args.out / f'{args.name}.md'}")


if __name__ == "__main__":
    main()
