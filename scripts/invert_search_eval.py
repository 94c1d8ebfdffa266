"""results/invert_search.{md,csv}: what `invert` returns first, per method and budget, on the Dexed test split
(seed 3, the first --n sounds) and on examples/ood, with the shipped Dexed model and the default bank.

Resumable: per-sound rows accumulate in results/invert_search/rows.jsonl; rerun to continue, --table-only to
rewrite the tables from the rows. Two worker processes render and score (both cores).

    python scripts/invert_search_eval.py --n 256
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import synthinv.evaluation  # noqa: F401
import synthinv.metrics  # noqa: F401 - imported before the long run starts, so later edits of the tree cannot break it
from synthinv import search_eval
from synthinv.ood import audio_files
from synthinv.pipeline import Inverter
from synthinv.search_eval import run_methods

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "invert_search"
TEST_SPLIT_SEED = 3  # data/dexed_test in scripts/dexed_experiment.py
BASELINES = [("random", 0.0), ("retrieval", 0.0), ("model", 0.0), ("model+retrieval", 0.0)]


def write_tables(out: Path, baseline: str) -> None:
    print(search_eval.write_tables(out / "rows.jsonl", out.parent / out.name, paired=True, baseline=baseline))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256, help="test sounds")
    ap.add_argument("--test-budgets", default="5", help="budgets of the default method on the test split")
    ap.add_argument("--ood-budgets", default="5,10,30", help="budgets of the default method on examples/ood")
    ap.add_argument("--sets", default="ood,test")
    ap.add_argument("--order", default="baselines-first", choices=["baselines-first", "default-first"],
                    help="default-first: the default method, then retrieval, random, model, model+retrieval")
    ap.add_argument("--ablate-pitch", action="store_true",
                    help="also run default-mss-only (the search without the pitch penalty) at the default's budgets")
    ap.add_argument("--ablate-level", action="store_true",
                    help="also run default-no-level (the search without the level penalty) at the default's budgets")
    ap.add_argument("--ablate-score", action="store_true",
                    help="also run default-stride-2 (the search scoring by MSS on every 2nd frame) at the default's "
                    "budgets")
    ap.add_argument("--no-baselines", action="store_true", help="the default method(s) only (a quick trial)")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--paired-against", default="retrieval", choices=sorted(search_eval.METHODS),
                    help="the method every other is compared with sound by sound (default: the lookup)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder of rows.jsonl; the tables go beside it as "
                    "<folder>.md and <folder>.csv (a trial run elsewhere leaves the committed results alone)")
    args = ap.parse_args()
    if not args.table_only:
        with Inverter(show_progress=False) as inverter:
            for set_name in args.sets.split(","):
                if set_name == "ood":
                    sounds = [(p.name, p) for p in audio_files(ROOT / "examples" / "ood")]
                    budgets = args.ood_budgets
                else:
                    _, audio = inverter.synth.draw(TEST_SPLIT_SEED, np.arange(args.n))
                    sounds = [(f"test_{i:04d}", audio[i]) for i in range(args.n)]
                    budgets = args.test_budgets
                kinds = ["default"] + ["default-mss-only"] * args.ablate_pitch + ["default-no-level"] * args.ablate_level + \
                    ["default-stride-2"] * args.ablate_score
                defaults = [(kind, float(b)) for b in budgets.split(",") if b for kind in kinds]
                baselines = [] if args.no_baselines else BASELINES if args.order == "baselines-first" else \
                    [BASELINES[i] for i in (1, 0, 2, 3)]
                plan = baselines + defaults if args.order == "baselines-first" else defaults + baselines
                run_methods(inverter, set_name, sounds, plan, args.out / "rows.jsonl", progress=search_eval.print_row)
                write_tables(args.out, args.paired_against)
    write_tables(args.out, args.paired_against)


if __name__ == "__main__":
    sys.exit(main())
