"""Dexed Simple: the four methods at one CPU budget each, next to random patches and the bank lookup.

    PYTHONPATH=src python scripts/dexed_simple_experiment.py --budget 13 [--seeds 0] [--jobs 2]
        [--methods flow_param2tok,flow_mlp,regression_mse,vae_realnvp] [--n-train 49152]

Makes the datasets if missing (`synthinv generate`: data/dexed_simple_train seed 1, _val seed 2, _test
seed 3), trains each (method, seed) for --budget minutes of training on one torch thread
(configs/dexed_simple/<method>.yaml), --jobs at once, the budget counted in the process's CPU time
(`train(cpu_clock=True)`), and scores it on the first --eval-examples test
sounds with synthinv.evaluation (one sample per sound: the paper's protocol; best of 8 ranked as invert
ranks; wMFCC; f0 within 50 cents on the first 64). Beside every model: random prior patches (one per sound)
and the lookup: the --candidates nearest patches of a bank of --bank rendered prior patches, ranked the
same way as the model's best of 8 (`evaluation.lookup_best_of`).

Resumable: a finished (method, seed) has results/dexed_simple/<method>_s<seed>.json and is skipped; a run
with a model.ckpt but no row is only scored; a run stopped part-way (its last.ckpt, written every 10 minutes)
continues from there, the budget being the total (its CPU minutes then count the stopped part by its
training clock, which leaves out that part's validations). Each row is written as it finishes, and results/dexed_simple.csv
and .md are rewritten from all finished rows every time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from synthinv.datasets import SPLIT_SEEDS
from synthinv.tables import with_notes

CSV_COLUMNS = ["method", "seed", "steps", "cpu_minutes", "mss", "mss_ci95", "mss_random", "wmfcc", "f0_within_50c",
               "best_of_8_mss", "retrieval_mss"]
METHODS = ["flow_param2tok", "flow_mlp", "regression_mse", "vae_realnvp"]
SYNTH = "dexed_simple"


def make_data(data: Path, n_train: int, n_val: int, n_test: int, workers: int) -> None:
    from synthinv.data.generate import generate

    for split, n in (("val", n_val), ("test", n_test), ("train", n_train)):
        out = data / f"{SYNTH}_{split}"
        generate({"name": SYNTH}, n, out, seed=SPLIT_SEEDS[split], shard_size=1024, workers=workers, progress=False)


def run_one(method: str, seed: int, args: argparse.Namespace) -> dict:
    """Train (unless done) and score one (method, seed); runs in a worker process on one torch thread."""
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {method} s{seed}: %(message)s", datefmt="%H:%M:%S",
                        force=True)  # a pool worker runs several (method, seed): each names itself
    logging.getLogger("synthinv").setLevel(logging.INFO)
    from synthinv import synths
    from synthinv.bank import get_bank
    from synthinv.checkpoint import load_checkpoint, stored_config
    from synthinv.config import load_config
    from synthinv.datasets import first_examples
    from synthinv.evaluation import evaluate_model, lookup_best_of
    from synthinv.models.grouping import model_grouping
    from synthinv.training import train

    config = load_config(args.configs.get(method, method), SYNTH)  # a shipped method, or a YAML of --extra
    run = args.runs / f"{method}_s{seed}"
    cpu = 0.0
    if not (run / "model.ckpt").exists():
        # a run stopped part-way (a session's end) left last.ckpt: continue it, the budget being the total
        resume = run / "last.ckpt" if (run / "last.ckpt").exists() else None
        # the stopped part's process CPU time died with it: its training clock (CPU time without validation) counts
        stopped = _training_minutes(resume) if resume is not None else 0.0
        start = time.process_time()
        train(config, synths.get(SYNTH), run, budget_minutes=args.budget, seed=seed, progress_bar=False,
              data_dir=args.data / f"{SYNTH}_train", val_dir=args.data / f"{SYNTH}_val", resume=resume, cpu_clock=True)
        cpu = stopped + (time.process_time() - start) / 60
        (run / "cpu_minutes.txt").write_text(f"{cpu:.3f}\n")
    elif (run / "cpu_minutes.txt").exists():
        cpu = float((run / "cpu_minutes.txt").read_text())
    model, synth, blob = load_checkpoint(run / "model.ckpt", expect_synth={"name": SYNTH})
    test = args.data / f"{SYNTH}_test"
    start = time.perf_counter()
    sampling = stored_config(blob).sample
    m = evaluate_model(model, synth, n=args.eval_examples, steps=args.eval_steps, guidance=sampling.guidance,
                       temperature=sampling.temperature, data_dir=test, train_seed=blob["meta"]["data"]["seed"], candidates=args.candidates)
    _, _, audio, _ = first_examples(test, synth, args.eval_examples)
    bank = get_bank(synth, args.bank, say=lambda s: None, show_progress=False, reserved=tuple(SPLIT_SEEDS.values()))
    lookup = lookup_best_of(synth, audio, bank, args.candidates)
    row = {"method": method, "seed": seed, "steps": blob["meta"]["steps"], "cpu_minutes": round(cpu, 2),
           "mss": m["mss"], "mss_ci95": m["mss_ci95"], "mss_random": m["mss_random"], "mss_random_ci95": m["mss_random_ci95"], "wmfcc": m["wmfcc"],
           "f0_within_50c": m.get("f0_cents_within_50"), "best_of_8_mss": m.get("mss_best_of"),
           "retrieval_mss": lookup["retrieval_mss"],
           # beyond the CSV's columns, for the markdown table
           "retrieval_mss_ci95": lookup["retrieval_mss_ci95"], "best_of_8_mss_ci95": m.get("mss_best_of_ci95"),
           "wmfcc_random": m["wmfcc_random"], "f0_within_50c_random": m.get("f0_cents_random_within_50"),
           "f0_within_50c_best_of_8": m.get("f0_cents_best_of_within_50"),
           "param_mse": m["param_mse"], "categorical_accuracy": m["categorical_accuracy"],
           "note_exact": _note_exact(model, synth, test, args, sampling.guidance, sampling.temperature), "train_seconds": blob["meta"]["train_seconds"],
           "budget_minutes": args.budget, "train_examples": blob["meta"]["data"]["examples"], "n": m["n"],
           "eval_seconds": round(time.perf_counter() - start, 1), "weights": sum(p.numel() for p in model.parameters()),
           "grouping": model_grouping(model, synth), "bank": args.bank, "candidates": args.candidates,
           "guidance": sampling.guidance, "temperature": sampling.temperature}
    return row


def _training_minutes(last_ckpt: Path) -> float:
    """The training clock stored in a resumable last.ckpt (synthinv.training.BudgetAndValidation's state)."""
    from synthinv.checkpoint import safe_load

    for state in (safe_load(last_ckpt, "resumable checkpoint").get("callbacks") or {}).values():
        if isinstance(state, dict) and "train_seconds" in state:
            return float(state["train_seconds"]) / 60
    return 0.0


def _note_exact(model, synth, test: Path, args, guidance: float, temperature: float) -> float:
    """Share of test sounds whose one sample (evaluate's: the same seed, steps, guidance, temperature) has the right
    MIDI note: what the pitch input is for."""
    from synthinv.datasets import first_examples
    from synthinv.evaluation import sample_params

    params, feats, _, _ = first_examples(test, synth, args.eval_examples)
    pred = sample_params(model, feats, args.eval_steps, guidance, seed=0, temperature=temperature).clamp(-1, 1)
    return float((synth.notes(pred) == synth.notes(params)).mean())


def temperature(row: dict) -> str:
    """The flows' sampling temperature as the tables show it ("-": regression and the VAE have none of it)."""
    return f"{row.get('temperature', 1.0):g}" if row["method"].startswith("flow") else "-"


def write_tables(results: Path, out: Path, args: argparse.Namespace) -> None:
    from synthinv.experiment import grouping_cell
    from synthinv.tables import markdown_table

    rows = sorted((json.loads(p.read_text()) for p in results.glob("*.json")),
                  key=lambda r: (METHODS.index(r["method"]) if r["method"] in METHODS else 99, r["seed"]))
    fmt = lambda v, d=2: "" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))  # noqa: E731
    csv = [",".join(CSV_COLUMNS)] + [",".join(fmt(r.get(c), 4) for c in CSV_COLUMNS) for r in rows]
    (out / "dexed_simple.csv").write_text("\n".join(csv) + "\n")

    def pm(r: dict, key: str) -> str:
        if r.get(key) is None:
            return "-"
        return f"{r[key]:.2f} ± {r[key + '_ci95']:.2f}" if r.get(key + "_ci95") is not None else f"{r[key]:.2f}"

    def share(v) -> str:
        return "-" if v is None else f"{v:.0%}"

    cells = [[r["method"], r["seed"], r["steps"], f"{r['cpu_minutes']:.1f}", temperature(r),
              pm(r, "mss"), pm(r, "mss_random"),
              pm(r, "best_of_8_mss"), pm(r, "retrieval_mss"), f"{r['wmfcc']:.2f}", f"{r['wmfcc_random']:.2f}",
              share(r["f0_within_50c"]), share(r["f0_within_50c_random"]), share(r["note_exact"]),
              f"{r['categorical_accuracy']:.3f}",
              grouping_cell(r.get("grouping"))]
             for r in rows]
    header = ["method", "seed", "steps", "CPU min", "T", "MSS (1 sample)", "MSS random patch", "MSS best of 8",
              "MSS lookup (8 nearest)", "wMFCC", "wMFCC random", "f0 within 50c", "f0 random", "note exact",
              "categorical acc.", "Param2Tok grouping"]
    n = rows[0]["n"] if rows else "?"
    bank = rows[0]["bank"] if rows else "?"
    text = ["# Dexed Simple: four methods at one CPU budget, beside random patches and the lookup", "",
            markdown_table(header, cells), "",
            f"Test: the first {n} sounds of data/dexed_simple_test (seed 3, patch prior). MSS: multi-scale log-mel "
            "distance in dB, mean ± 95% interval over sounds (lower is better). MSS random patch: one prior patch per "
            "sound (evaluation's random baseline, the same for every row). MSS best of 8: 8 samples per sound ranked "
            "by invert's distance, each also tried at the target's pitch, the first scored (a regressor has one "
            f"answer: none). MSS lookup: the 8 nearest of a bank of {bank} rendered prior patches (synthinv.bank), "
            "ranked the same way: the baseline best of 8 must beat. wMFCC on the one sample. f0 within 50c: share of "
            "the first 64 sounds whose pYIN f0 is within 50 cents of the target's (of those with an f0). note exact: "
            "share of sounds whose one sample has the target's MIDI note. Param2Tok grouping: "
            "synthinv.models.grouping over the 8 groups op1..op6, global, note. T: the temperature the flows "
            "sampled at (sample.temperature; rows from before it was a setting sampled at 1).",
            f"Training: {args.budget:g} CPU-minutes of training (the process's CPU time, shard loading included, "
            "validation excluded) per (method, seed) on one torch thread, --jobs runs at once on the 2-core machine "
            "(other jobs may share it: the budget is CPU time, so they change little of a run's work); CPU min is "
            "the process's CPU time over training and its 5 validations. Batch 64, data/dexed_simple_train "
            f"(seed 1, {rows[0]['train_examples'] if rows else '?'} examples), validation on 64 sounds of "
            "data/dexed_simple_val. Encoders take the pitch feature (encoder pitch: true), but for any --extra "
            "ablation such as flow_mlp_nopitch (results/dexed_simple/flow_mlp_nopitch.yaml).",
            "Made by `PYTHONPATH=src python scripts/dexed_simple_experiment.py "
            f"--budget {args.budget:g} --seeds {args.seeds}"
            + ("" if args.out == Path("results") else f" --out {args.out}")
            + "` (the ablation: `--methods '' --extra "
            f"results/dexed_simple/flow_mlp_nopitch.yaml`); rows in {results}/."]
    text += across_seeds(rows)
    # the hand-written notes: the choice of fixed fields, the pitch input, findings
    (out / "dexed_simple.md").write_text(with_notes("\n".join(text) + "\n", out / "dexed_simple_notes.md"))


def across_seeds(rows: list[dict]) -> list[str]:
    """Markdown lines: per (method, T) run with 2 or more seeds, the mean over seeds with the Student-t 95%
    interval across seeds (issue #12's intervals across training seeds; the per-row intervals are over sounds)."""
    from synthinv.evaluation import across_runs_cell
    from synthinv.tables import markdown_table

    runs: dict[tuple, list[dict]] = {}
    for r in rows:
        runs.setdefault((r["method"], temperature(r), r["budget_minutes"]), []).append(r)

    def over_seeds(group: list[dict], key: str) -> str:
        return across_runs_cell([r.get(key) for r in group])

    cells = [[method, t, f"{budget:g}", ",".join(str(r["seed"]) for r in group),
              f"{sum(r['steps'] for r in group) / len(group):.0f}", over_seeds(group, "mss"),
              over_seeds(group, "best_of_8_mss"), over_seeds(group, "mss_random"), over_seeds(group, "retrieval_mss")]
             for (method, t, budget), group in runs.items() if len(group) >= 2]
    if not cells:
        return []
    header = ["method", "T", "budget (CPU min)", "seeds", "mean steps", "MSS (1 sample)", "MSS best of 8",
              "MSS random patch", "MSS lookup (8 nearest)"]
    return ["", "## Across training seeds", "",
            markdown_table(header, cells), "",
            "Mean over the seeds' rows above ± the Student-t 95% interval across seeds (evaluation.across_runs_ci95): "
            "what another training run would give, where the rows' intervals are over the 256 test sounds. Random "
            "patches and the lookup do not depend on the model, so their interval across seeds is 0."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, required=True, help="training minutes per (method, seed)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--jobs", type=int, default=2, help="(method, seed) runs at once, one torch thread each")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--runs", type=Path, default=Path("runs/dexed_simple"))
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--n-train", type=int, default=49152)
    ap.add_argument("--n-val", type=int, default=1024)
    ap.add_argument("--n-test", type=int, default=512)
    ap.add_argument("--eval-examples", type=int, default=256)
    ap.add_argument("--eval-steps", type=int, default=50, help="RK4 steps per flow sample")
    ap.add_argument("--candidates", type=int, default=8, help="best of N, and the lookup's N")
    ap.add_argument("--bank", type=int, default=8192, help="rendered prior patches the lookup searches")
    ap.add_argument("--extra", default="", help="comma-separated YAML configs run as more methods (named by stem)")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    args.configs = {Path(p).stem: p for p in args.extra.split(",") if p}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = args.out / "dexed_simple"
    results.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        make_data(args.data, args.n_train, args.n_val, args.n_test, workers=args.jobs)
        from synthinv import synths
        from synthinv.bank import get_bank

        get_bank(synths.get(SYNTH), args.bank, reserved=tuple(SPLIT_SEEDS.values()), show_progress=False)  # once, before the workers
        todo = [(m, int(s)) for s in args.seeds.split(",") for m in [*filter(None, args.methods.split(",")), *args.configs]
                if not (results / f"{m}_s{int(s)}.json").exists()]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(run_one, m, s, args): (m, s) for m, s in todo}
            for future in as_completed(futures):
                m, s = futures[future]
                row = future.result()
                (results / f"{m}_s{s}.json").write_text(json.dumps(row, indent=1))
                write_tables(results, args.out, args)
                print(f"{m} seed {s}: MSS {row['mss']:.2f} (random {row['mss_random']:.2f}, best of 8 "
                      f"{row['best_of_8_mss'] or float('nan'):.2f}, lookup {row['retrieval_mss']:.2f})", flush=True)
    write_tables(results, args.out, args)
    from synthinv.experiment import plot_assignment

    if plot_assignment(args.runs / "flow_param2tok_s0" / "model.ckpt", args.out / "dexed_simple_param2tok.png",
                       "Dexed Simple Param2Tok |A| (tokens x parameter columns), seed 0"):
        print(f"wrote {args.out / 'dexed_simple_param2tok.png'}")


if __name__ == "__main__":
    main()
