"""Dexed Simple at a GPU budget: millions of training examples on one GPU, then the same scoring as the CPU table.

    PYTHONPATH=src python scripts/gpu_recipe.py --device cuda --n-train 1000000 --workers 16 --budget 20 \
        [--method flow_mlp] [--batch-size 512] [--out runs/gpu_simple]

1. `synthinv generate` the training set with --workers processes (rendering is CPU work: ~120 Dexed notes/s
   per core measured here, so 1M examples on 16 cores is roughly 10 minutes and ~16 GB of shards), plus
   validation (seed 2) and test (seed 3) sets;
2. trains configs/dexed_simple/<method>.yaml on --device for --budget minutes at --batch-size, the learning
   rate scaled by sqrt(batch / 64) from the config's (the usual rule for Adam), with --loader-workers
   processes reading shards and --cache-gb of decompressed shards kept in RAM;
3. scores it like results/dexed_simple.md (one sample, best of 8, random patches, the 8-nearest lookup in
   an 8,192-patch bank) and writes <out>/result.json and <out>/result.md. Ship it with
   `python scripts/ship_model.py <out>/<method> NAME --test-data <data>/dexed_simple_test` if it is better.

Every step resumes: finished shards, a finished model.ckpt and a finished result are kept.
Tested at a tiny scale on CPU (tests/test_gpu_recipe.py); it has not run on a GPU yet.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from synthinv import synths
from synthinv.bank import get_bank
from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.config import load_config
from synthinv.data.generate import generate
from synthinv.datasets import SPLIT_SEEDS, first_examples
from synthinv.evaluation import evaluate_model, lookup_best_of
from synthinv.training import train

SYNTH = "dexed_simple"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--method", default="flow_mlp")
    ap.add_argument("--n-train", type=int, default=1_000_000)
    ap.add_argument("--n-val", type=int, default=1024)
    ap.add_argument("--n-test", type=int, default=512)
    ap.add_argument("--workers", type=int, default=16, help="rendering processes for the datasets")
    ap.add_argument("--budget", type=float, default=20.0, help="training minutes")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--loader-workers", type=int, default=8)
    ap.add_argument("--cache-gb", type=float, default=32.0, help="decompressed shards kept in RAM (128 GB machine)")
    ap.add_argument("--shard-size", type=int, default=4096)
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--out", type=Path, default=Path("runs/gpu_simple"))
    ap.add_argument("--eval-examples", type=int, default=256)
    ap.add_argument("--bank", type=int, default=8192)
    args = ap.parse_args()
    start = time.perf_counter()
    for split, seed, n in (("val", 2, args.n_val), ("test", 3, args.n_test), ("train", 1, args.n_train)):
        generate({"name": SYNTH}, n, args.data / f"{SYNTH}_{split}", seed=seed, shard_size=min(args.shard_size, n),
                 workers=args.workers, progress=False)
    data_seconds = time.perf_counter() - start

    run = args.out / args.method
    config = load_config(args.method, SYNTH)
    base_batch = config.train.batch_size
    config.train.batch_size = args.batch_size
    config.train.lr *= math.sqrt(args.batch_size / base_batch)
    config.train.num_workers, config.train.cache_gb = args.loader_workers, args.cache_gb
    if not (run / "model.ckpt").exists():
        train(config, synths.get(SYNTH), run, budget_minutes=args.budget, device=args.device, progress_bar=False,
              data_dir=args.data / f"{SYNTH}_train", val_dir=args.data / f"{SYNTH}_val")
    model, synth, blob = load_checkpoint(run / "model.ckpt", expect_synth={"name": SYNTH})
    test = args.data / f"{SYNTH}_test"
    device = args.device if torch.cuda.is_available() or args.device == "cpu" else "cpu"
    m = evaluate_model(model, synth, n=args.eval_examples, steps=50, guidance=stored_config(blob).sample.guidance,
                       device=device, data_dir=test, train_seed=blob["meta"]["data"]["seed"], candidates=8)
    _, _, audio, _ = first_examples(test, synth, args.eval_examples)
    lookup = lookup_best_of(synth, audio, get_bank(synth, args.bank, reserved=tuple(SPLIT_SEEDS.values()), show_progress=False), 8)
    meta = blob["meta"]
    result = {"method": args.method, "device": args.device, "steps": meta["steps"], "batch_size": args.batch_size,
              "lr": config.train.lr, "examples_seen": meta["steps"] * args.batch_size,
              "train_examples": meta["data"]["examples"], "train_seconds": meta["train_seconds"],
              "data_seconds": round(data_seconds, 1), "mss": m["mss"], "mss_ci95": m["mss_ci95"],
              "mss_random": m["mss_random"], "best_of_8_mss": m.get("mss_best_of"), "wmfcc": m["wmfcc"],
              "f0_within_50c": m.get("f0_cents_within_50"), **lookup}
    (args.out / "result.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Dexed Simple GPU recipe: {args.method} on {args.device}", ""]
    lines += [f"- {k}: {v:.3f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in result.items()]
    (args.out / "result.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
