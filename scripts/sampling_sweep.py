"""How a trained flow should be sampled: one sample and best of N over guidance weights and noise temperatures.

    PYTHONPATH=src python scripts/sampling_sweep.py --checkpoint runs/dexed_simple/flow_mlp_s1/model.ckpt \
        --guidance 1,2,3,4 --temperature 1,0.8,0.6 [--n 256] [--jobs 2]

Scores each (guidance, temperature) on the first --n sounds of the checkpoint synth's test set
(data/<synth>_test) with synthinv.evaluation.evaluate_rendered: MSS of one sample per sound and of the best
of --candidates ranked as `synthinv invert` ranks them (each also tried at the target's pitch). Beside them:
random prior patches (one per sound) and the lookup (the --candidates nearest of --bank rendered prior
patches, ranked the same way), computed once. Resumable: rows accumulate in <out>/rows.jsonl, one per
setting; finished settings are skipped; <out>.md is rewritten from all rows.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

import _sweep_rows


def score_setting(checkpoint: Path, test: Path, guidance: float, temperature: float, args: argparse.Namespace) -> dict:
    """One (guidance, temperature) on one torch thread -> a row."""
    torch.set_num_threads(1)
    from synthinv.checkpoint import load_checkpoint
    from synthinv.evaluation import evaluate_rendered

    model, synth, blob = load_checkpoint(checkpoint)
    start = time.process_time()
    m = evaluate_rendered(model, synth, n=args.n, steps=args.steps, guidance=guidance, data_dir=test,
                          train_seed=blob["meta"]["data"]["seed"], candidates=args.candidates, audio_metrics=False,
                          temperature=temperature)
    return {"guidance": guidance, "temperature": temperature, "mss": m["mss"], "mss_ci95": m["mss_ci95"],
            "best_of_mss": m["mss_best_of"], "best_of_mss_ci95": m["mss_best_of_ci95"], "mss_random": m["mss_random"],
            "mss_random_ci95": m["mss_random_ci95"], "categorical_accuracy": m["categorical_accuracy"],
            "param_mse": m["param_mse"], "n": m["n"], "candidates": args.candidates, "steps": args.steps,
            "cpu_seconds": round(time.process_time() - start, 1)}


def lookup_row(checkpoint: Path, test: Path, args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    from synthinv.bank import get_bank
    from synthinv.checkpoint import load_checkpoint
    from synthinv.datasets import SPLIT_SEEDS, first_examples
    from synthinv.evaluation import lookup_best_of

    _, synth, _ = load_checkpoint(checkpoint)
    _, _, audio, _ = first_examples(test, synth, args.n)
    bank = get_bank(synth, args.bank, say=lambda s: None, show_progress=False, reserved=tuple(SPLIT_SEEDS.values()))
    found = lookup_best_of(synth, audio, bank, args.candidates)
    return {"lookup": True, "retrieval_mss": found["retrieval_mss"], "retrieval_mss_ci95": found["retrieval_mss_ci95"],
            "bank": args.bank, "candidates": args.candidates, "n": args.n}


def write_table(rows: list[dict], out: Path, args: argparse.Namespace) -> str:
    lookup = next((r for r in rows if r.get("lookup")), None)
    settings = sorted((r for r in rows if not r.get("lookup")), key=lambda r: (r["guidance"], -r["temperature"]))
    lines = [f"# Sampling a flow: guidance and temperature ({args.checkpoint})", "",
             f"| guidance | temperature | MSS one sample | MSS best of {args.candidates} | categorical acc. | CPU s |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in settings:
        lines.append(f"| {r['guidance']:g} | {r['temperature']:g} | {r['mss']:.2f} ± {r['mss_ci95']:.2f} | "
                     f"{r['best_of_mss']:.2f} ± {r['best_of_mss_ci95']:.2f} | {r['categorical_accuracy']:.3f} | {r['cpu_seconds']:.0f} |")
    if settings:
        r = settings[0]
        lines += ["", f"Random prior patches (one per sound): {r['mss_random']:.2f} ± {r['mss_random_ci95']:.2f} dB."]
    if lookup:
        lines.append(f"Lookup (the {lookup['candidates']} nearest of {lookup['bank']} rendered prior patches, ranked as "
                     f"best of N): {lookup['retrieval_mss']:.2f} ± {lookup['retrieval_mss_ci95']:.2f} dB.")
    lines += ["", f"The first {args.n} sounds of {args.data}; {args.steps} RK4 steps; MSS in dB, mean ± 95% interval over "
              "sounds. Temperature scales the flow's starting noise (1: as trained). Made by "
              f"`PYTHONPATH=src python scripts/sampling_sweep.py --checkpoint {args.checkpoint} --guidance "
              f"{args.guidance} --temperature {args.temperature} --n {args.n}`; rows in {out}/rows.jsonl.", ""]
    return _sweep_rows.write_markdown(out, lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _sweep_rows.add_common_args(ap, "results/dexed_simple_sampling", "settings scored at once, one torch thread each")
    ap.add_argument("--guidance", default="1,2,3,4", help="comma-separated guidance weights")
    ap.add_argument("--temperature", default="1,0.8,0.6", help="comma-separated noise scales")
    ap.add_argument("--steps", type=int, default=50, help="RK4 steps per sample")
    args = ap.parse_args()
    rows_path, rows = _sweep_rows.prepare(args)
    done = {(r["guidance"], r["temperature"]) for r in rows if not r.get("lookup")}
    todo = [(float(g), float(t)) for g in args.guidance.split(",") for t in args.temperature.split(",")
            if (float(g), float(t)) not in done]
    if not args.table_only:
        with ProcessPoolExecutor(max(1, args.jobs)) as pool:
            futures = [pool.submit(score_setting, args.checkpoint, args.data, g, t, args) for g, t in todo]
            if not any(r.get("lookup") for r in rows):
                futures.append(pool.submit(lookup_row, args.checkpoint, args.data, args))
            for future in futures:
                row = future.result()
                _sweep_rows.append(rows_path, rows, row)
                print(row, flush=True)
    print(write_table(rows, args.out, args))


if __name__ == "__main__":
    main()
