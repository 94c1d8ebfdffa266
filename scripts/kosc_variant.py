"""One k-osc method from a config file (not a shipped one), trained and scored exactly as `synthinv experiment
kosc` trains and scores the shipped methods, so its row compares with theirs at the same budget and seed.

    PYTHONPATH=src python scripts/kosc_variant.py results/kosc_lean/flow_transformer_d64.yaml --budget 8 --seed 0 \
        [--asym] [--out results/kosc_lean] [--runs runs/kosc_lean] [--eval-examples 2048]

-> <out>/<config name>_s<seed>.json (the experiment's row: LSD, random LSD, steps, examples/s, ...).

    PYTHONPATH=src python scripts/kosc_variant.py --table [--out results/kosc_lean] \
        [--compare results/kosc_k4_seeds/s0/kosc_k4/flow_transformer.json ...]

-> <out>.md: every row of <out> beside the --compare rows (e.g. the shipped config's run at the same budget and seed).
The hand-written <out>_notes.md, if there is one, is appended.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from synthinv.experiment import Method, grouping_cell, run_method

SEED_SUFFIX = re.compile(r"_s(\d+)$")  # a variant's row is named <config>[_asym]_s<seed>


def _seed_of(name: str) -> str:
    """The seed a variant's row was trained with, from its name; '-' if none."""
    match = SEED_SUFFIX.search(name)
    return match.group(1) if match else "-"


def across_seeds(rows: list[tuple[Path, dict]]) -> list[str]:
    """Per config with more than one seed: steps and LSD, mean ± the Student-t 95% interval across seeds."""
    from synthinv.evaluation import across_runs_cell
    from synthinv.tables import markdown_table

    by_config: dict[str, list[dict]] = {}
    for _, r in rows:
        by_config.setdefault(SEED_SUFFIX.sub("", r["method"]), []).append(r)
    cells = [[name, len(rs), across_runs_cell([r["steps"] for r in rs], 0),
              across_runs_cell([r["lsd"] for r in rs], 3), across_runs_cell([r["lsd_random"] - r["lsd"] for r in rs])]
             for name, rs in sorted(by_config.items()) if len(rs) > 1]
    if not cells:
        return []
    return ["Across seeds (mean ± Student-t 95% interval over the seeds):", "", markdown_table(
        ["config", "seeds", "steps", "LSD (1 sample)", "below random (dB)"], cells), ""]


def write_table(out: Path, compare: list[Path]) -> str:
    from synthinv.tables import markdown_table, write_page

    rows = [(p, json.loads(p.read_text())) for p in [*compare, *sorted(out.glob("*.json"))]]
    grouped = any("grouping" in r for _, r in rows)  # a Param2Tok row: its assignment's grouping score
    cells = [[str(p), r.get("seed", _seed_of(r["method"])), f"{r['budget_minutes']:g}", r["steps"], f"{r['examples_per_second']:.0f}",
              f"{r['lsd']:.3f} ± {r['lsd_ci95']:.3f}", f"{r['lsd_random']:.3f}", f"{r['lsd_random'] - r['lsd']:.2f}",
              *([grouping_cell(r.get("grouping"))] if grouped else [])]
             for p, r in rows]
    text = "\n".join([f"# k-osc k=4 variants ({out})", "", markdown_table(
        ["row", "seed", "budget (min)", "steps", "examples/s (training)", "LSD (1 sample)", "LSD random",
         "below random (dB)", *(["Param2Tok grouping"] if grouped else [])], cells), "",
        *across_seeds(rows[len(compare):])])
    return write_page(text, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", type=Path, nargs="?", help="a k-osc method config (.yaml)")
    ap.add_argument("--budget", type=float, help="training minutes (wall clock inside training steps, as the experiment "
                    "counts them; CPU time with --cpu-clock)")
    ap.add_argument("--table", action="store_true", help="write <out>.md from the rows in <out>; train nothing")
    ap.add_argument("--compare", type=Path, nargs="*", default=[], help="other rows (.json) to show first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--asym", action="store_true", help="the asym task (oscillators in a fixed order)")
    ap.add_argument("--out", type=Path, default=Path("results/kosc_lean"))
    ap.add_argument("--runs", type=Path, default=Path("runs/kosc_lean"))
    ap.add_argument("--eval-examples", type=int, default=2048)
    ap.add_argument("--eval-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpu-clock", action="store_true",
                    help="count the budget in the process's CPU time (runs sharing the machine each get the same work)")
    ap.add_argument("--precision", default="32", choices=["32", "bf16-mixed"], help="training precision")
    args = ap.parse_args()
    if args.table:
        print(write_table(args.out, args.compare))
        return
    if args.config is None or args.budget is None:
        ap.error("a config and --budget are needed to train")
    torch.set_num_threads(args.threads)
    name = f"{args.config.stem}{'_asym' if args.asym else ''}{'_bf16' if args.precision != '32' else ''}_s{args.seed}"
    args.out.mkdir(parents=True, exist_ok=True)
    row = run_method(Method(name, str(args.config), args.asym), args.k, args.budget, args.out, args.runs, args.seed,
                     args.eval_examples, args.eval_steps, progress_bar=False, cpu_clock=args.cpu_clock,
                     precision=args.precision)
    print(f"{name}: LSD {row['lsd']:.3f} ± {row['lsd_ci95']:.3f} (random {row['lsd_random']:.3f}), {row['steps']} steps, "
          f"{row['examples_per_second']:.0f} examples/s")


if __name__ == "__main__":
    main()
