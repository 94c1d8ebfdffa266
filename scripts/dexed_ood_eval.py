"""Dexed models in and out of distribution, with every audio metric -> results/dexed_ood.{md,csv}.

    python scripts/dexed_ood_eval.py --model param2tok=runs/dexed/flow_param2tok/model.ckpt \\
        --model regression=runs/dexed/regression_mse/model.ckpt --n 256

In distribution: the first --n examples of --test-data (a `synthinv generate` dataset; evaluation's
`evaluate_rendered`), one sample per sound (the paper's protocol). Out of distribution: every file of
--audio-dir (default examples/ood, General MIDI soundfont notes) through `synthinv.ood`, the best of
--candidates samples by invert's ranking (1: one sample, as in distribution). Each next to random patches
from the prior, scored the same way. The budget comes from each checkpoint's meta. Per-file OOD tables go
to <out>/<name>/ood.{md,csv,json}; <out>/<name>/rows.json makes a finished model skip on the next call
(--force recomputes), so models can run in separate processes and a last call gathers them.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.evaluation import evaluate_rendered
from synthinv.fileio import atomic_write, write_json_atomic
from synthinv.metrics import BETTER
from synthinv.ood import DECIMALS, checkpoint_budget, evaluate_audio_dir, write_ood_tables
from synthinv.tables import csv_text, markdown_table

METRICS = ("mss", "wmfcc", "sot", "rms_cos", "f0_cents")
NAMES = {"mss": "MSS (dB)", "wmfcc": "wMFCC", "sot": "SOT", "rms_cos": "RMS cos", "f0_cents": "f0 error (cents)"}


def parse_models(pairs: list[str]) -> dict[str, Path]:
    models = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not Path(path).is_file():
            raise SystemExit(f"error: --model wants NAME=PATH to a checkpoint, got {pair!r}")
        models[name] = Path(path)
    return models


def pick(metrics: dict, suffix: str = "") -> dict:
    """{metric: mean, metric_ci95, f0_cents_n} of one row (model: suffix "", baseline: "_random")."""
    row = {}
    for m in METRICS:
        row[m], row[f"{m}_ci95"] = metrics.get(m + suffix), metrics.get(f"{m}{suffix}_ci95")
    row["f0_cents_n"] = metrics.get(f"f0_cents{suffix}_n")
    return row


def cell(row: dict, m: str) -> str:
    value, half = row.get(m), row.get(f"{m}_ci95")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undefined"
    d = DECIMALS[m]
    text = f"{value:.{d}f}" + ("" if half is None or math.isnan(half) else f" ± {half:.{d}f}")
    return text + (f" ({row['f0_cents_n']})" if m == "f0_cents" and row.get("f0_cents_n") is not None else "")


def budget_text(row: dict) -> str:
    if row.get("train_minutes") is None:
        return "-"
    return f"{row['train_minutes']} min, {row['train_steps']} steps × batch {row['batch_size']}"


def markdown(rows: list[dict], args, n_in: int, f0_in: int, files: int) -> str:
    header = ["setting", "model", "method", "budget", *(NAMES[m] for m in METRICS)]
    cells = [[r["setting"], r["model"], r["method"], budget_text(r), *(cell(r, m) for m in METRICS)] for r in rows]
    lines = ["# Dexed in and out of distribution", "", markdown_table(header, cells, compact_rule=True)]
    better = ", ".join(f"{NAMES[m]} {BETTER[m]}" for m in METRICS)
    lines += ["", f"Mean ± 95% interval of the mean; which way is better: {better}.",
              f"In distribution: the first {n_in} examples of {args.test_data} (f0 on the first {f0_in}; in brackets how "
              f"many had a pitch on both sides), one sample per sound, {args.steps} RK4 steps, each model's own guidance. "
              f"Out of distribution: the {files} notes of {args.audio_dir} (General MIDI soundfont instruments, see its "
              f"README), prepared as `synthinv invert` prepares a sound, best of {args.candidates} sample(s) by invert's "
              "ranking (MSS); random patches: the best of as many draws from the patch prior, ranked the same way"
              + ("; each sample and each random patch also tried at the target's pitch (its three likeliest "
                 "transpositions, synthinv.transpose), as `synthinv invert` does." if args.transpose
                 else "; no transposition (--no-transpose)."),
              "wMFCC: DTW-aligned MFCC distance; SOT: spectral optimal transport (Wasserstein-1 between normalised "
              "spectra, in [0, 1]); RMS cos: cosine similarity of RMS envelopes; f0: median |cents| over frames pYIN "
              "finds voiced in both (synthinv.metrics). Budget: training time, steps and batch from each checkpoint.",
              f"Made by `python scripts/dexed_ood_eval.py {' '.join(f'--model {k}={v}' for k, v in args.models.items())} "
              f"--n {args.n} --steps {args.steps} --candidates {args.candidates} --f0-examples {args.f0_examples}"
              + ("" if args.transpose else " --no-transpose") + f" --out {args.out}`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="NAME=PATH of a Dexed checkpoint (repeat)")
    ap.add_argument("--n", type=int, default=256, help="in-distribution test examples")
    ap.add_argument("--test-data", type=Path, default=Path("data/dexed_test"))
    ap.add_argument("--audio-dir", type=Path, default=Path("examples/ood"))
    ap.add_argument("--steps", type=int, default=100, help="RK4 sampler steps")
    ap.add_argument("--candidates", type=int, default=1, help="OOD: best of this many samples (and random patches)")
    ap.add_argument("--f0-examples", type=int, default=64, help="in distribution: pYIN on the first this many only")
    ap.add_argument("--out", type=Path, default=Path("results/dexed_ood"), help="writes OUT.md, OUT.csv, OUT/<name>/")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="recompute models whose OUT/<name>/rows.json exists")
    ap.add_argument("--no-transpose", dest="transpose", action="store_false",
                    help="OOD: do not also try candidates and random patches at the target's pitch (invert's default)")
    args = ap.parse_args()
    args.models = parse_models(args.model)
    torch.set_num_threads(args.threads)

    rows, random_rows = [], {}
    n_in = f0_in = files = 0
    for name, path in args.models.items():
        done = args.out / name / "rows.json"
        if done.is_file() and not args.force:  # resumable: one model per call, then one call that gathers
            saved = json.loads(done.read_text())
            rows += saved["rows"]
            random_rows.update(saved["random"])
            n_in, f0_in, files = saved["n_in"], saved["f0_in"], saved["files"]
            print(f"{name}: done ({done}), reusing", flush=True)
            continue
        model, synth, blob = load_checkpoint(path, expect_synth={"name": "dexed"})
        budget = {**checkpoint_budget(blob), "batch_size": stored_config(blob, path).train.batch_size}
        ident = {"model": name, **budget}
        inside = evaluate_rendered(model, synth, n=args.n, steps=args.steps, guidance=stored_config(blob, path).sample.guidance,
                                   data_dir=args.test_data, train_seed=budget["train_seed"], f0_examples=args.f0_examples)
        n_in, f0_in = inside["n"], inside["f0_examples"]
        rows.append({"setting": "in distribution", **ident, **pick(inside)})
        random_rows["in"] = {"setting": "in distribution", "model": "random patches", "method": "prior", **pick(inside, "_random")}
        print(f"{name}: in distribution MSS {inside['mss']:.2f} (random {inside['mss_random']:.2f})", flush=True)
        ood = evaluate_audio_dir(path, args.audio_dir, candidates=args.candidates, steps=args.steps,
                                 transpose=args.transpose)
        write_ood_tables(ood, args.out / name)
        files = ood.summary["files"]
        rows.append({"setting": "out of distribution", **ident, **pick(ood.summary)})
        random_rows["out"] = {"setting": "out of distribution", "model": "random patches", "method": "prior",
                              **pick(ood.summary, "_random")}
        print(f"{name}: out of distribution MSS {ood.summary['mss']:.2f} (random {ood.summary['mss_random']:.2f})", flush=True)
        write_json_atomic(done, {"rows": rows[-2:], "random": random_rows, "n_in": n_in, "f0_in": f0_in, "files": files})
    ordered = ([r for r in rows if r["setting"] == "in distribution"] + [random_rows["in"]]
               + [r for r in rows if r["setting"] == "out of distribution"] + [random_rows["out"]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out.with_suffix(".md"), markdown(ordered, args, n_in, f0_in, files))
    first = ["setting", "model", "method"]
    fields = first + sorted({k for r in ordered for k in r} - set(first))
    atomic_write(args.out.with_suffix(".csv"), csv_text(ordered, fields))
    write_json_atomic(args.out / "settings.json", {k: str(v) for k, v in vars(args).items()})
    print(f"wrote {args.out.with_suffix('.md')}, {args.out.with_suffix('.csv')}, {args.out}/")


if __name__ == "__main__":
    main()
