"""Choose a k-osc flow's sampling temperature on the validation split, then score it on the test split.

    PYTHONPATH=src python scripts/kosc_temperature.py runs/kosc_cpu12/*/model.ckpt \
        [--temperatures 1,0.7,0.5,0.3] [--out results/kosc_temperature]

Every checkpoint is scored (one sample per sound, LSD) on the first --val-examples validation sounds at each
temperature; the temperature with the lowest mean over all checkpoints is chosen (one setting for all, not one
per model); then every checkpoint is scored on the first --test-examples test sounds at temperature 1 and at
the chosen one, paired per sound. -> <out>/rows.json (resumable: a checkpoint already there is not rescored)
and <out>.md, with the hand-written <out>_notes.md appended if there is one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.evaluation import (
    RANDOM_BASELINE_SEED,
    TEST_SEED,
    VAL_SEED,
    lsd_of,
    mean_and_ci95,
    sample_params,
    split_batch,
)
from synthinv.fileio import write_json_atomic
from synthinv.tables import markdown_table, with_notes


def lsd_per_sound(model, synth, split_seed: int, n: int, steps: int, guidance: float, temperature: float) -> torch.Tensor:
    params, audio = split_batch(synth, split_seed, n)  # (n, P), (n, T)
    return lsd_of(synth, sample_params(model, audio, steps, guidance, seed=0, temperature=temperature), audio)  # (n,)


def mean_ci(x: torch.Tensor) -> tuple[float, float]:
    """(mean, 95% half-width) over sounds, as evaluation.mean_and_ci95 computes them."""
    both = mean_and_ci95("x", x)
    return both["x"], both["x_ci95"]


def fill(row: dict, temperatures: list[float], test_temperatures: set[float], args: argparse.Namespace) -> None:
    """Score what `row` (one checkpoint) still lacks: validation LSD at every temperature, test LSD per sound at
    each of test_temperatures and, with those, random parameters on the test sounds; the checkpoint is loaded
    once."""
    missing_val = [t for t in temperatures if str(t) not in row["val_lsd"]]
    missing_test = [t for t in sorted(test_temperatures) if str(t) not in row["test"]]
    missing_random = bool(test_temperatures) and "random" not in row
    if not missing_val and not missing_test and not missing_random:
        return
    model, synth, blob = load_checkpoint(Path(row["checkpoint"]))
    guidance = stored_config(blob, Path(row["checkpoint"])).sample.guidance
    for t in missing_val:
        row["val_lsd"][str(t)] = lsd_per_sound(model, synth, VAL_SEED, args.val_examples, args.val_steps, guidance, t).mean().item()
    for t in missing_test:
        row["test"][str(t)] = lsd_per_sound(model, synth, TEST_SEED, args.test_examples, args.test_steps, guidance, t).tolist()
    if missing_random:
        _, audio = split_batch(synth, TEST_SEED, args.test_examples)  # (n, T)
        row["random"] = lsd_of(synth, synth.params_at(RANDOM_BASELINE_SEED, np.arange(args.test_examples)), audio).mean().item()


def write_table(rows: list[dict], chosen: float, temperatures: list[float], args: argparse.Namespace) -> str:
    cells = []
    for r in rows:
        one, low = torch.tensor(r["test"]["1.0"]), torch.tensor(r["test"][str(chosen)])
        m1, c1 = mean_ci(one)
        m2, c2 = mean_ci(low)
        md, cd = mean_ci(low - one)
        cells.append([r["checkpoint"], *[f"{r['val_lsd'][str(t)]:.3f}" for t in temperatures], f"{m1:.3f} ± {c1:.3f}",
                      f"{m2:.3f} ± {c2:.3f}", f"{md:+.3f} ± {cd:.3f}", f"{r['random']:.3f}", f"{r['random'] - m2:.2f}"])
    text = "\n".join([
        f"# k-osc sampling temperature: chosen on validation ({chosen:g}), scored on test", "",
        markdown_table(["checkpoint", *[f"val T {t:g}" for t in temperatures], "test T 1", f"test T {chosen:g}",
                        "paired (dB)", "random", f"below random at T {chosen:g} (dB)"], cells), "",
        f"Validation: LSD of one sample on the first {args.val_examples} validation sounds ({args.val_steps} RK4 steps, "
        "each checkpoint's guidance); the temperature with the lowest mean over the checkpoints is chosen. Test: the "
        f"first {args.test_examples} test sounds, {args.test_steps} RK4 steps, mean ± 95% interval over sounds; paired: "
        "per sound, the chosen temperature minus temperature 1 (negative: closer). random: random parameters on the "
        f"same test sounds. Made by `PYTHONPATH=src python scripts/kosc_temperature.py {' '.join(args.command)}`.", ""])
    return with_notes(text, args.out.with_name(args.out.name + "_notes.md"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--temperatures", default="1,0.7,0.5,0.3")
    ap.add_argument("--val-examples", type=int, default=1024)
    ap.add_argument("--val-steps", type=int, default=50)
    ap.add_argument("--test-examples", type=int, default=2048)
    ap.add_argument("--test-steps", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("results/kosc_temperature"))
    args = ap.parse_args()
    args.command = sys.argv[1:]
    temperatures = sorted({1.0, *(float(t) for t in args.temperatures.split(","))}, reverse=True)
    store = args.out / "rows.json"
    store.parent.mkdir(parents=True, exist_ok=True)
    rows = {r["checkpoint"]: r for r in json.loads(store.read_text())} if store.is_file() else {}
    chosen_rows = [rows.setdefault(str(c), {"checkpoint": str(c), "val_lsd": {}, "test": {}}) for c in args.checkpoints]
    for row in chosen_rows:  # validation first: the choice needs every checkpoint's
        fill(row, temperatures, set(), args)
        write_json_atomic(store, list(rows.values()))
        print(row["checkpoint"], row["val_lsd"], flush=True)
    chosen = min(temperatures, key=lambda t: sum(r["val_lsd"][str(t)] for r in chosen_rows))
    for row in chosen_rows:
        fill(row, temperatures, {1.0, chosen}, args)
        write_json_atomic(store, list(rows.values()))
    text = write_table(chosen_rows, chosen, temperatures, args)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
