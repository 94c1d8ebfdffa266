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

import torch

from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.evaluation import RANDOM_BASELINE_SEED, TEST_SEED, VAL_SEED, lsd_of, sample_params, split_batch
from synthinv.fileio import write_json_atomic
from synthinv.tables import markdown_table, with_notes


def lsd_per_sound(model, synth, split_seed: int, n: int, steps: int, guidance: float, temperature: float) -> torch.Tensor:
    params, audio = split_batch(synth, split_seed, n)  # (n, P), (n, T)
    return lsd_of(synth, sample_params(model, audio, steps, guidance, seed=0, temperature=temperature), audio)  # (n,)


def mean_ci(x: torch.Tensor) -> tuple[float, float]:
    return x.mean().item(), 1.96 * x.std().item() / x.numel() ** 0.5


def score(ckpt: Path, temperatures: list[float], args: argparse.Namespace) -> dict:
    model, synth, blob = load_checkpoint(ckpt)
    guidance = stored_config(blob, ckpt).sample.guidance
    val = {str(t): lsd_per_sound(model, synth, VAL_SEED, args.val_examples, args.val_steps, guidance, t).mean().item()
           for t in temperatures}
    return {"checkpoint": str(ckpt), "guidance": guidance, "val_lsd": val, "test": {}}


def test_at(row: dict, temperature: float, args: argparse.Namespace) -> list[float]:
    model, synth, _ = load_checkpoint(Path(row["checkpoint"]))
    return lsd_per_sound(model, synth, TEST_SEED, args.test_examples, args.test_steps, row["guidance"], temperature).tolist()


def random_lsd(checkpoint: str, n: int) -> float:
    _, synth, _ = load_checkpoint(Path(checkpoint))
    _, audio = split_batch(synth, TEST_SEED, n)
    import numpy as np

    return lsd_of(synth, synth.params_at(RANDOM_BASELINE_SEED, np.arange(n)), audio).mean().item()


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
    for ckpt in args.checkpoints:
        if str(ckpt) not in rows or set(rows[str(ckpt)]["val_lsd"]) != {str(t) for t in temperatures}:
            rows[str(ckpt)] = score(ckpt, temperatures, args)
            write_json_atomic(store, list(rows.values()))
            print(ckpt, rows[str(ckpt)]["val_lsd"], flush=True)
    chosen_rows = [rows[str(c)] for c in args.checkpoints]
    chosen = min(temperatures, key=lambda t: sum(r["val_lsd"][str(t)] for r in chosen_rows))
    for r in chosen_rows:
        for t in {1.0, chosen}:
            if str(t) not in r["test"]:
                r["test"][str(t)] = test_at(r, t, args)
        if "random" not in r:
            r["random"] = random_lsd(r["checkpoint"], args.test_examples)
        write_json_atomic(store, list(rows.values()))
    text = write_table(chosen_rows, chosen, temperatures, args)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
