"""The k-osc table across training seeds (issue #12 item 5): each method's LSD as mean ± the Student-t 95%
interval across seeds, its gap to random parameters, and Param2Tok's grouping score per seed.

The runs come from `synthinv experiment kosc`, once per seed into its own folders:

    for s in 0 1 2; do synthinv experiment kosc --budget 8 --methods flow_transformer,flow_param2tok,flow_mlp \
        --seed $s --out results/kosc_k4_seeds/s$s --runs runs/kosc_k4_seeds/s$s --threads 1 --eval-examples 2048; done
    PYTHONPATH=src python scripts/kosc_seeds.py [--root results/kosc_k4_seeds] [--runs runs/kosc_k4_seeds]

-> <root>.md and <root>.csv (one row per method and seed, then the across-seeds table in the .md, then the
hand-written <root>_notes.md if there is one, so a rerun keeps them).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from synthinv.evaluation import across_runs_cell
from synthinv.tables import csv_text, markdown_table, write_page

COLUMNS = ["method", "task", "seed", "steps", "budget_minutes", "lsd", "lsd_ci95", "lsd_random", "lsd_below_random",
           "grouping", "grouping_chance"]


def grouping_of(ckpt: Path) -> tuple[float | None, float | None]:
    """Param2Tok's grouping score by oscillator and its chance level; (None, None) for other models."""
    from synthinv.checkpoint import load_checkpoint
    from synthinv.models.grouping import model_grouping

    if not ckpt.is_file():
        return None, None
    grouping = model_grouping(*load_checkpoint(ckpt)[:2])
    return (None, None) if grouping is None else (grouping["score"], grouping["chance"])


def earlier_groupings(root: Path) -> dict[tuple[str, int], tuple[float, float]]:
    """{(method, seed): (grouping, chance)} from the table being rewritten: kept where a run's checkpoint is
    gone (runs/ is not committed), so adding methods on another machine does not lose them."""
    path = root.with_suffix(".csv")
    if not path.exists():
        return {}
    with path.open() as f:
        return {(r["method"], int(r["seed"])): (float(r["grouping"]), float(r["grouping_chance"]))
                for r in csv.DictReader(f) if r.get("grouping")}


def collect(root: Path, runs: Path, k: int) -> list[dict]:
    rows, earlier = [], earlier_groupings(root)
    for seed_dir in sorted(root.glob("s*")):
        for path in sorted((seed_dir / f"kosc_k{k}").glob("*.json")):
            r = json.loads(path.read_text())
            seed = int(seed_dir.name[1:])
            score, chance = grouping_of(runs / seed_dir.name / f"kosc_k{k}" / r["method"] / "model.ckpt")
            if score is None:
                score, chance = earlier.get((r["method"], seed), (None, None))
            rows.append({**{c: r.get(c) for c in COLUMNS}, "seed": seed, "lsd_below_random": r["lsd_random"] - r["lsd"],
                         "grouping": score, "grouping_chance": chance})
    return sorted(rows, key=lambda r: (r["method"], r["seed"]))


def write(rows: list[dict], root: Path, k: int) -> str:
    root.with_suffix(".csv").write_text(csv_text(rows, COLUMNS), newline="")

    def num(v, digits=3):
        return "-" if v is None else f"{v:.{digits}f}"

    per_seed = [[r["method"], r["task"], r["seed"], r["steps"], f"{r['budget_minutes']:g}",
                 f"{r['lsd']:.3f} ± {r['lsd_ci95']:.3f}", num(r["lsd_random"]), num(r["lsd_below_random"], 2),
                 num(r["grouping"], 2)] for r in rows]
    methods: dict[str, list[dict]] = {}
    for r in rows:
        methods.setdefault(r["method"], []).append(r)
    across = [[m, ",".join(str(r["seed"]) for r in g), f"{sum(r['steps'] for r in g) / len(g):.0f}",
               across_runs_cell([r["lsd"] for r in g], 3), across_runs_cell([r["lsd_random"] for r in g], 3),
               across_runs_cell([r["lsd_below_random"] for r in g]), across_runs_cell([r["grouping"] for r in g])]
              for m, g in methods.items()]
    chance = next((r["grouping_chance"] for r in rows if r["grouping_chance"] is not None), None)
    lines = [f"# k-osc, k={k}: methods across training seeds", "",
             markdown_table(["method", "task", "seed", "steps", "budget (min)", "LSD (1 sample)", "LSD random",
                             "below random (dB)", "grouping"], per_seed), "",
             "## Across seeds", "",
             markdown_table(["method", "seeds", "mean steps", "LSD (1 sample)", "LSD random", "below random (dB)",
                             "grouping"], across), "",
             f"LSD in dB (lower is better); per seed: mean ± 95% interval over the test sounds; across seeds: mean ± "
             f"the Student-t 95% interval across seeds (evaluation.across_runs_ci95). Grouping: Param2Tok's score of "
             f"its assignment A by oscillator (synthinv.models.grouping; chance {num(chance, 2)}). Runs: "
             f"`synthinv experiment kosc` per seed (budget = training minutes by the wall clock, inside training steps, one torch thread; the steps show "
             f"what a budget bought, fewer when other jobs shared the cores); table by `PYTHONPATH=src python scripts/kosc_seeds.py --root {root}`."]
    return write_page("\n".join(lines) + "\n", root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("results/kosc_k4_seeds"))
    ap.add_argument("--runs", type=Path, default=Path("runs/kosc_k4_seeds"))
    ap.add_argument("--k", type=int, default=4)
    args = ap.parse_args()
    rows = collect(args.root, args.runs, args.k)
    if not rows:
        raise SystemExit(f"no finished runs under {args.root}/s*/kosc_k{args.k}")
    print(write(rows, args.root, args.k))


if __name__ == "__main__":
    main()
