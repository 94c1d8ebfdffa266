"""Training examples/s through synthinv.training.train itself - Lightning, k-osc batches rendered on the
device, Dexed batches from shards through DataLoader workers (pinned memory on CUDA) - on one device, in
float32 and bf16 autocast.

Each case trains for --seconds of in-step time (synthinv's own clock, validation off) in a fresh
subprocess, and reports examples/s by that clock and by wall time (Trainer set-up and checkpoint writing
included), plus peak device memory on CUDA. Dexed trains from --data, or from a dataset of
--dexed-examples generated into a temporary folder first (its generation is not timed).

    python benchmarks/bench_gpu.py --device cuda [--seconds 60] [--json results/gpu.json]
    python benchmarks/bench_gpu.py --device cpu --seconds 2 --methods regression_mse --batch-size 8  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import add_common_args, apply_threads, finish, machine_info, print_machine, print_table


def worker(case: dict) -> dict:
    """One training run (in its own process): -> the figures of `case`."""
    import logging

    import torch

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from synthinv import synths
    from synthinv.config import load_config
    from synthinv.training import Scale, train

    apply_threads(case["threads"])
    if case["synth"] == "kosc":
        synth = synths.from_settings({"name": "kosc", "k": case["k"]})
        data = None
    else:
        synth = synths.from_settings({"name": "dexed"})
        data = Path(case["data"])
    config = load_config(case["method"], case["synth"])
    if case["batch_size"]:
        config.train.batch_size = case["batch_size"]
    config.train.num_workers = case["workers"] if case["synth"] != "kosc" else 0
    scale = Scale("gpu" if case["device"] == "cuda" else "cpu", precision=case["precision"])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        meta = train(config, synth, Path(tmp), budget_minutes=case["seconds"] / 60, seed=0, progress_bar=False,
                     n_validations=0, data_dir=data, scale=scale)
        wall = time.perf_counter() - start
    examples = meta["steps"] * config.train.batch_size
    peak = torch.cuda.max_memory_allocated() / 2**30 if case["device"] == "cuda" else None
    return {**case, "batch": config.train.batch_size, "steps": meta["steps"], "train_seconds": meta["train_seconds"],
            "examples_per_s": meta["examples_per_second"], "wall_s": round(wall, 2),
            "wall_examples_per_s": round(examples / wall, 1), "peak_gib": peak}


def run_case(case: dict) -> dict:
    """`worker(case)` in a fresh interpreter: no case inherits another's caches, threads or device memory."""
    here = Path(__file__).resolve().parent
    code = f"import json, sys; sys.path.insert(0, {str(here)!r}); from bench_gpu import worker; " \
           "print('RESULT ' + json.dumps(worker(json.loads(sys.argv[1]))))"
    done = subprocess.run([sys.executable, "-c", code, json.dumps(case)], capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"case {case} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def dexed_data(args, tmp: Path) -> Path:
    """--data, or a fresh Dexed dataset of --dexed-examples (generated with every usable core)."""
    if args.data is not None:
        return args.data
    from synthinv.data.generate import generate

    out = tmp / "dexed"
    start = time.perf_counter()
    shards = -(-args.dexed_examples // args.shard_size)
    workers = min(os.cpu_count() or 1, shards) if shards >= 4 else 1  # a pool's start-up outweighs a few shards
    generate({"name": "dexed"}, args.dexed_examples, out, seed=0, shard_size=args.shard_size, workers=workers,
             progress=False)
    print(f"generated {args.dexed_examples} Dexed examples in {time.perf_counter() - start:.1f} s (not timed below)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--seconds", type=float, default=60.0, help="in-step training seconds per case")
    parser.add_argument("--methods", nargs="+", default=["flow_param2tok", "regression_mse"])
    parser.add_argument("--synths", nargs="+", choices=["kosc", "dexed"], default=["kosc", "dexed"])
    parser.add_argument("--precision", nargs="+", choices=["32", "bf16-mixed"], default=["32", "bf16-mixed"])
    parser.add_argument("--batch-size", type=int, default=None, help="per step (default: each config's)")
    parser.add_argument("--k", type=int, default=4, help="k-osc oscillators")
    parser.add_argument("--workers", type=int, default=4, help="Dexed DataLoader worker processes")
    parser.add_argument("--data", type=Path, default=None, help="a Dexed dataset (default: generate one)")
    parser.add_argument("--dexed-examples", type=int, default=8192)
    parser.add_argument("--shard-size", type=int, default=1024)
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 10.0)
    started = time.perf_counter()
    info = machine_info()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            sys.exit("--device cuda: torch sees no GPU here")
        info["gpu"] = torch.cuda.get_device_name(0)
        print(f"GPU: {info['gpu']}")
    print_machine(info)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = str(dexed_data(args, Path(tmp))) if "dexed" in args.synths else None
        for synth in args.synths:
            for method in args.methods:
                for precision in args.precision:
                    case = {"synth": synth, "method": method, "precision": precision, "device": args.device,
                            "seconds": args.seconds, "batch_size": args.batch_size, "k": args.k,
                            "workers": args.workers, "data": data, "threads": args.threads}
                    rows.append(run_case(case))
                    r = rows[-1]
                    print(f"{synth} {method} {precision}: {r['examples_per_s']:.0f} examples/s ({r['steps']} steps of "
                          f"{r['batch']})", flush=True)
    print_table(rows, [("synth", "synth"), ("method", "method"), ("precision", "precision"), ("batch", "batch"),
                       ("steps", "steps"), ("examples_per_s", "examples/s (in-step)"),
                       ("wall_examples_per_s", "examples/s (wall)"), ("peak_gib", "peak GiB")])
    finish("bench_gpu", args, info, vars(args) | {"data": str(args.data) if args.data else None,
                                                  "json": str(args.json) if args.json else None}, rows, started,
           notes=["examples/s (in-step) is synthinv's training clock; wall includes Trainer set-up and checkpoints",
                  f"Dexed loader: {args.workers} worker processes, shards cached in RAM (train.cache_gb)"])


if __name__ == "__main__":
    main()
