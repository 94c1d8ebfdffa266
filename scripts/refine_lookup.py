"""Can a trained flow improve on the bank lookup? Best of N when each of the N nearest bank patches is first
moved by the flow towards the target (`FlowModel.refine`), against the N patches as they are.

    PYTHONPATH=src python scripts/refine_lookup.py --checkpoint runs/dexed_simple/flow_mlp_s1/model.ckpt \
        --t-start 1,0.9,0.8,0.6,0.4 [--n 256] [--candidates 8] [--jobs 2]

Per test sound (the first --n of data/<synth>_test): the --candidates nearest of --bank rendered prior patches
(synthinv.bank), each put on the flow's path at time t_start and carried to t = 1 conditioned on the
sound (t_start 1 leaves them as they are: the lookup baseline), ranked as `synthinv invert` ranks (each also
tried at the target's pitch); the MSS of the first. Rows (one per t_start, with every sound's MSS) accumulate
in <out>/rows.jsonl; <out>.md gives each t_start's mean and its paired difference to the lookup.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

import _sweep_rows


def score(checkpoint: Path, test: Path, t_start: float | None, args: argparse.Namespace) -> dict:
    """One t_start on one torch thread -> {t_start, mss: [per sound], ...}. t_start None: the random baseline,
    random prior patches in place of the nearest ones, ranked the same way."""
    torch.set_num_threads(1)
    from synthinv.bank import get_bank
    from synthinv.checkpoint import load_checkpoint
    from synthinv.datasets import SPLIT_SEEDS, first_examples
    from synthinv.evaluation import RANDOM_BASELINE_SEED, lookup_first_mss
    from synthinv.models.flow import FlowModel

    model, synth, blob = load_checkpoint(checkpoint)
    if not isinstance(model, FlowModel):
        raise SystemExit(f"{checkpoint} is not a flow model")
    model.eval()
    _, feats, audio, _ = first_examples(test, synth, args.n)
    bank = get_bank(synth, args.bank, say=lambda s: None, show_progress=False, reserved=tuple(SPLIT_SEEDS.values()))
    gen = torch.Generator().manual_seed(args.seed)
    c = args.candidates

    def refine(sounds: slice, starts: torch.Tensor) -> torch.Tensor:  # starts (m * c, P)
        cond = feats[sounds].repeat_interleave(c, 0)  # (m * c, n_mels, frames)
        return model.refine(cond, starts, t_start, generator=gen, steps=args.steps, guidance=args.guidance).clamp(-1, 1)

    def random_patches(sounds: slice, starts: torch.Tensor) -> torch.Tensor:  # -> (m * c, P) prior patches
        return synth.params_at(RANDOM_BASELINE_SEED, np.arange(sounds.start * c, sounds.start * c + len(starts)))

    start = time.process_time()
    mss = lookup_first_mss(synth, audio, bank, c,
                           refine=random_patches if t_start is None else None if t_start == 1.0 else refine)
    return {"t_start": t_start, "mss": mss.tolist(), "n": len(mss), "candidates": c, "bank": args.bank,
            "steps": args.steps, "guidance": args.guidance, "cpu_seconds": round(time.process_time() - start, 1)}


def write_table(rows: list[dict], out: Path, args: argparse.Namespace) -> str:
    from synthinv.evaluation import over_sounds_cell

    by_t = {r["t_start"]: torch.tensor(r["mss"]) for r in rows if r["t_start"] is not None}
    lookup = by_t.get(1.0)
    random = next((torch.tensor(r["mss"]) for r in rows if r["t_start"] is None), None)
    lines = [f"# Refining the lookup with a flow ({args.checkpoint})", "",
             f"| t_start | MSS best of {args.candidates} | paired vs lookup (dB) | better than the lookup on |",
             "| --- | --- | --- | --- |"]
    for t in sorted(by_t, reverse=True):
        m = by_t[t]
        cell = over_sounds_cell(m)
        if lookup is None or t == 1.0 or len(lookup) != len(m):
            lines.append(f"| {t:g}{' (the lookup)' if t == 1.0 else ''} | {cell} | - | - |")
            continue
        d = m - lookup
        lines.append(f"| {t:g} | {cell} | {over_sounds_cell(d, signed=True)} | "
                     f"{int((d < 0).sum())} of {len(d)} |")
    if random is not None:
        d = random - lookup if lookup is not None and len(lookup) == len(random) else None
        lines.append(f"| random prior patches | {over_sounds_cell(random)} | "
                     + ("- | - |" if d is None else f"{over_sounds_cell(d, signed=True)} | "
                        f"{int((d < 0).sum())} of {len(d)} |"))
    lines += ["", f"The first {args.n} sounds of {args.data}; the {args.candidates} nearest of {args.bank} rendered "
              f"prior patches per sound, each moved by the flow from t_start to 1 ({args.steps} RK4 steps, guidance "
              f"{args.guidance:g}), ranked as invert ranks; MSS (dB) of the first, mean ± 95% interval over sounds; "
              "paired: the per-sound difference to t_start 1 (the lookup), negative is better; random prior patches: "
              f"{args.candidates} per sound, ranked the same way. Made by "
              f"`PYTHONPATH=src python scripts/refine_lookup.py --checkpoint {args.checkpoint} --t-start {args.t_start} "
              f"--n {args.n}`; rows in {out}/rows.jsonl.", ""]
    return _sweep_rows.write_markdown(out, lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _sweep_rows.add_common_args(ap, "results/dexed_simple_refine", "t_start values scored at once, one torch thread each")
    ap.add_argument("--t-start", default="1,0.9,0.8,0.6,0.4", help="comma-separated; 1 is the lookup itself")
    ap.add_argument("--steps", type=int, default=20, help="RK4 steps from t_start to 1")
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows_path, rows = _sweep_rows.prepare(args)
    done = {r["t_start"] for r in rows}
    todo: list[float | None] = [float(t) for t in args.t_start.split(",") if float(t) not in done]
    todo += [] if None in done else [None]  # the random baseline, once
    if not args.table_only:
        with ProcessPoolExecutor(max(1, args.jobs)) as pool:
            for row in pool.map(score, [args.checkpoint] * len(todo), [args.data] * len(todo), todo, [args] * len(todo)):
                _sweep_rows.append(rows_path, rows, row)
                print(f"t_start {row['t_start']}: MSS {sum(row['mss']) / row['n']:.2f} ({row['cpu_seconds']:.0f} CPU s)",
                      flush=True)
    print(write_table(rows, args.out, args))


if __name__ == "__main__":
    main()
