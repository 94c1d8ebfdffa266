"""Training throughput on CPU for Dexed Simple from a generated dataset: per step, the time spent getting
the next batch (data) against the time spent in the model (loss + backward + clip + AdamW), steps/s,
examples/s and peak memory, for every shipped dexed_simple method config and a few variants of it.

Data: --data, a dataset written by `synthinv generate --synth dexed_simple` (default data/dexed_simple_train),
or --examples N generated first into a temporary folder (not timed).

First, once, in a fresh subprocess: the whole dataset read through the training loader with every shard
kept in RAM - opening it (synthinv.training.dataset_loader: manifest, shard checksums), epoch 1 (shards read
from the files: HDF5 + gzip, then shuffled into batches) and epoch 2 (the same from RAM: what every later
epoch costs). This is the cost of data loading per example, without any model.

Then each (method, variant) runs in a fresh subprocess, so its peak RSS (ru_maxrss from os.wait4 of that
child) is its own. Inside it a plain PyTorch loop replicates a Lightning training step
(InversionModule.training_step + AdamW + grad-norm clipping, as bench_train.py's loop does; no learning-rate
schedule) on batches from the training DataLoader (dataset_loader: ShardBatches with the config's cache_gb,
or with --in-ram every shard read into RAM first). Warm-up steps are untimed; then, per timed step:
  data   next(iterator): the batch (params (B, 112), log-mel (B, 128, 151)), a shard read when one is due
  model  loss (+ the L1 penalty where the config sets l1_weight), backward, clip, AdamW step
Variants: base (the config as shipped); batch256 (batch 256, lr scaled by sqrt(256 / shipped batch));
channels_last (the model, i.e. its conv weights, and every conv input in torch.channels_last); bf16
(torch.autocast("cpu", dtype=torch.bfloat16) around the loss; backward and the step outside it).

    python benchmarks/bench_train_dexed.py [--quick] [--json out.json] [--methods regression_mse] [--variants base bf16]
    python benchmarks/bench_train_dexed.py --examples 256 --shard-size 64 --quick   # no dataset at hand
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    add_common_args,
    apply_threads,
    current_rss_kib,
    finish,
    machine_info,
    print_machine,
    print_table,
    training_step,
)

ROOT = Path(__file__).resolve().parents[1]
SYNTH = "dexed_simple"
DEFAULT_DATA = ROOT / "data" / "dexed_simple_train"
METHODS = ("flow_mlp", "flow_param2tok", "regression_mse", "vae_realnvp")  # configs/dexed_simple
VARIANTS = ("base", "batch256", "channels_last", "bf16")
BIG_BATCH = 256


def variant_config(method: str, variant: str):
    """The method's shipped config, changed as `variant` asks (only batch256 changes the config itself)."""
    from synthinv.config import load_config

    config = load_config(method, SYNTH)
    if variant == "batch256":
        base = config.train.batch_size
        config.train.batch_size = BIG_BATCH
        config.train.lr *= math.sqrt(BIG_BATCH / base)  # square-root scaling: the usual rule for Adam
    return config


# ----------------------------------------------------------------------------------------------- workers
def worker_train(case: dict) -> dict:
    """One (method, variant): warm-up steps, then `steps` timed steps, data and model timed apart."""
    import torch

    from synthinv import synths
    from synthinv.build import build_model
    from synthinv.training import dataset_loader

    rss_imports = current_rss_kib()
    synth = synths.from_settings({"name": SYNTH})
    config = variant_config(case["method"], case["variant"])
    t = config.train
    start = time.perf_counter()
    loader, data_info = dataset_loader(Path(case["data"]), synth, config, seed=0)  # as train() makes it
    open_s = time.perf_counter() - start
    if case["in_ram"]:  # read every shard into the loader's cache (one untimed epoch): later epochs' regime
        loader.dataset.cache_bytes = float("inf")
        for _ in loader:
            pass
    torch.manual_seed(0)
    model = build_model(config, synth).train()
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    if case["variant"] == "channels_last":
        if not convs:
            return {"skipped": f"{case['method']} has no 2-D convolutions: channels_last does not apply"}
        model = model.to(memory_format=torch.channels_last)  # converts the 4-D tensors: the conv weights

        def channels_last_input(_module, inputs):
            # the batch (B, 128, 151) has no channel axis; the encoder's (B, 1, 128, 151) has one, so it is
            # channels_last already. A later input may not be (the VAE decoder's first one comes from a
            # reshape): convert it, a no-op where it is channels_last
            x, *rest = inputs  # x (B, C, H, W)
            return (x.contiguous(memory_format=torch.channels_last), *rest)

        for conv in convs:
            conv.register_forward_pre_hook(channels_last_input)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    clip, l1 = t.grad_clip, config.model.l1_weight
    bf16 = case["variant"] == "bf16"
    rss_built = current_rss_kib()
    reads = [0]  # shards read from the files, not the cache (counted with no loader processes only)
    if t.num_workers == 0:
        shard_batches, plain_read = loader.dataset, loader.dataset._read

        def counting_read(s: int):
            reads[0] += s not in shard_batches.cache
            return plain_read(s)

        shard_batches._read = counting_read

    batches = iter(loader)

    def next_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:  # end of an epoch: Lightning starts the next one the same way
            batches = iter(loader)
            return next(batches)

    def model_step(params, mel) -> torch.Tensor:  # params (B, 112) in [-1, 1], mel (B, 128, 151) dB float32
        return training_step(model, opt, params, mel, clip, l1, bf16=bf16)

    for _ in range(case["warmup"]):
        model_step(*next_batch())
    data_s, model_s, rows, losses = [], [], [], []
    reads[0] = 0
    loop_start = time.perf_counter()
    for _ in range(case["steps"]):
        a = time.perf_counter()
        params, mel = next_batch()
        b = time.perf_counter()
        loss = model_step(params, mel)
        c = time.perf_counter()
        data_s.append(b - a)
        model_s.append(c - b)
        rows.append(int(params.shape[0]))
        losses.append(float(loss))
    loop_s = time.perf_counter() - loop_start
    return {
        "method": case["method"], "variant": case["variant"], "batch": t.batch_size, "lr": t.lr,
        "cache_gb": None if case["in_ram"] else t.cache_gb, "in_ram": case["in_ram"],
        "num_workers": t.num_workers, "steps": case["steps"], "warmup": case["warmup"],
        "examples": data_info["examples"], "shards": len(loader.dataset.dataset.shards),
        "n_parameters": sum(p.numel() for p in model.parameters()), "conv_layers": len(convs),
        "shard_reads": reads[0] if t.num_workers == 0 else None, "open_s": open_s, "loop_s": loop_s,
        "data_s": data_s, "model_s": model_s, "rows": rows,
        "loss_first": losses[0], "loss_last": losses[-1],
        "rss_after_imports_kib": rss_imports, "rss_after_build_kib": rss_built,
        "maxrss_self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "torch_threads": torch.get_num_threads(),
    }


def worker_read(case: dict) -> dict:
    """The whole dataset through the training loader, every shard kept: epoch 1 from the files, epoch 2 from RAM."""
    from synthinv import synths
    from synthinv.training import dataset_loader

    synth = synths.from_settings({"name": SYNTH})
    config = variant_config(case["method"], "base")
    config.train.num_workers = 0  # the reading is timed in this process
    start = time.perf_counter()
    loader, info = dataset_loader(Path(case["data"]), synth, config, seed=0)
    open_s = time.perf_counter() - start
    shard_batches = loader.dataset
    shard_batches.cache_bytes = float("inf")  # keep every shard, whatever the config's cache_gb
    epochs = []
    for _ in range(2):
        start, rows = time.perf_counter(), 0
        for params, _mel in loader:  # params (B, 112), mel (B, 128, 151)
            rows += int(params.shape[0])
        epochs.append({"s": time.perf_counter() - start, "examples": rows})
    shards = shard_batches.dataset.shards
    return {
        "examples": info["examples"], "shards": len(shards), "batch": config.train.batch_size, "open_s": open_s,
        "file_bytes": sum((Path(case["data"]) / e["file"]).stat().st_size for e in shards),
        "ram_bytes": sum(p.nbytes + m.nbytes for p, m in shard_batches.cache.values()),
        "epoch1_s": epochs[0]["s"], "epoch1_examples": epochs[0]["examples"],
        "epoch2_s": epochs[1]["s"], "epoch2_examples": epochs[1]["examples"],
    }


def worker_generate(case: dict) -> dict:
    from synthinv.data.generate import generate

    start = time.perf_counter()
    generate({"name": SYNTH}, case["examples"], Path(case["data"]), seed=1, shard_size=case["shard_size"],
             workers=1, progress=False)
    return {"seconds": time.perf_counter() - start}


WORKERS = {"train": worker_train, "read": worker_read, "generate": worker_generate}


# ------------------------------------------------------------------------------------------------ parent
def run_child(kind: str, case: dict, threads: int | None) -> tuple[dict | None, int, str]:
    """Run this script as a worker; -> (its JSON result or None, the child's ru_maxrss in KiB, its output).

    Linux carries a process's peak RSS across exec, so a child's ru_maxrss is at least the parent's RSS when
    it was started: the parent stays small (no model, no dataset in it)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        log = Path(tmp) / "log.txt"
        argv = [sys.executable, __file__, "--_worker", kind, "--_case", json.dumps(case), "--_out", str(out)]
        if threads:
            argv += ["--threads", str(threads)]
        with open(log, "wb") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=fh)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS)
            proc.returncode = os.waitstatus_to_exitcode(status)
        text = log.read_text(errors="replace")
        result = json.loads(out.read_text()) if proc.returncode == 0 and out.is_file() else None
        return result, usage.ru_maxrss, text


def summarise(result: dict, maxrss_kib: int) -> dict:
    """Per-step figures of one case: means (total / steps) and medians of the timed steps."""
    data, model, rows = result["data_s"], result["model_s"], result["rows"]
    n = len(data)
    return dict(
        {k: v for k, v in result.items() if k not in ("data_s", "model_s", "rows")},
        data_ms_mean=sum(data) / n * 1e3, data_ms_median=statistics.median(data) * 1e3,
        model_ms_mean=sum(model) / n * 1e3, model_ms_median=statistics.median(model) * 1e3,
        data_share=sum(data) / (sum(data) + sum(model)),
        steps_per_s=n / result["loop_s"], examples_per_s=sum(rows) / result["loop_s"],
        params_m=result["n_parameters"] / 1e6,
        rss_built_mib=result["rss_after_build_kib"] / 1024, peak_rss_mib=maxrss_kib / 1024,
        raw={"data_s": [round(x, 6) for x in data], "model_s": [round(x, 6) for x in model], "rows": rows},
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--data", type=Path, default=None,
                        help=f"a dataset from `synthinv generate --synth {SYNTH}` (default {DEFAULT_DATA.relative_to(ROOT)})")
    parser.add_argument("--examples", type=int, default=None,
                        help="generate a dataset of N examples into a temporary folder first (not timed) instead of --data")
    parser.add_argument("--shard-size", type=int, default=1024, help="shard size of the --examples dataset (default 1024)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, metavar="METHOD",
                        help=f"configs to time (default all: {', '.join(METHODS)})")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, metavar="VARIANT",
                        help=f"variants of each config (default all: {', '.join(VARIANTS)})")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per case (default 16; --quick 4). From the files a shard is read every shard size / "
                             "batch steps; a multiple of that (16 for shards of 1024 at batch 64 and 256) puts a "
                             "fair share of reads into the mean")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; --quick 1)")
    parser.add_argument("--in-ram", action="store_true",
                        help="read every shard into RAM before the warm-up (the regime of epochs after the first); "
                             "each case then reads the whole dataset first, untimed; default: the config's cache_gb, starting "
                             "from the files as a training run does")
    parser.add_argument("--no-read", action="store_true", help="skip the whole-dataset read")
    parser.add_argument("--_worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--_case", help=argparse.SUPPRESS)
    parser.add_argument("--_out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    apply_threads(args.threads)

    if args._worker:
        result = WORKERS[args._worker](json.loads(args._case))
        args._out.write_text(json.dumps(result))
        return

    steps = args.steps or (4 if args.quick else 16)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    started = time.perf_counter()
    info = machine_info()
    print_machine(info)
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.examples:
            data = Path(tmp) / SYNTH
            gen, _, log = run_child("generate", {"examples": args.examples, "data": str(data),
                                                 "shard_size": args.shard_size}, args.threads)
            if gen is None:
                sys.exit(f"generating {args.examples} examples failed:\n{log[-2000:]}")
            print(f"generated {args.examples} {SYNTH} examples in shards of {args.shard_size} in "
                  f"{gen['seconds']:.1f} s (not timed below)")
        else:
            data = args.data or DEFAULT_DATA
            if not (data / "manifest.json").is_file():
                sys.exit(f"{data} holds no dataset: make one with `synthinv generate --synth {SYNTH} --n N --out {data} "
                         "--seed 1`, give --data DIR, or pass --examples N to generate a small one first")
        print(f"dataset: {data}\n")

        read = None
        if not args.no_read:
            read, maxrss_kib, log = run_child("read", {"data": str(data), "method": args.methods[0]}, args.threads)
            if read is None:
                failures.append("read")
                print(f"[dataset read failed]\n{log[-2000:]}", file=sys.stderr)
            else:
                read.update(
                    file_mib=read["file_bytes"] / 2**20, ram_mib=read["ram_bytes"] / 2**20,
                    epoch1_ms_per_example=read["epoch1_s"] / read["epoch1_examples"] * 1e3,
                    epoch2_ms_per_example=read["epoch2_s"] / read["epoch2_examples"] * 1e3,
                    epoch1_mib_per_s=read["file_bytes"] / 2**20 / read["epoch1_s"], peak_rss_mib=maxrss_kib / 1024)
                print(f"the whole dataset through the training loader (batch {read['batch']}, every shard kept in RAM), "
                      "one fresh subprocess:")
                print_table([read], [
                    ("examples", "examples"), ("shards", "shards"), ("file_mib", "file MiB"), ("ram_mib", "in RAM MiB"),
                    ("open_s", "open+verify s"), ("epoch1_s", "epoch 1 s"), ("epoch1_ms_per_example", "ms/ex (files)"),
                    ("epoch1_mib_per_s", "file MiB/s"), ("epoch2_s", "epoch 2 s"),
                    ("epoch2_ms_per_example", "ms/ex (RAM)"), ("peak_rss_mib", "peak RSS MiB"),
                ])
                print()

        print(f"training steps, CPU: {warmup} warm-up step(s), then {steps} timed steps per case, one fresh subprocess "
              f"each; data {'all in RAM first (--in-ram)' if args.in_ram else 'from the files, config cache_gb'}")
        rows = []
        for method in args.methods:
            for variant in args.variants:
                case = {"method": method, "variant": variant, "data": str(data), "steps": steps, "warmup": warmup,
                        "in_ram": args.in_ram}
                result, maxrss_kib, log = run_child("train", case, args.threads)
                if result is None:
                    failures.append(f"{method}/{variant}")
                    print(f"[{method} {variant} failed]\n{log[-2000:]}", file=sys.stderr)
                    continue
                if "skipped" in result:
                    print(f"  {method} {variant}: skipped ({result['skipped']})", flush=True)
                    continue
                rows.append(summarise(result, maxrss_kib))
                print(f"  {method} {variant}: {rows[-1]['steps_per_s']:.2f} steps/s", flush=True)
    print()
    print_table(rows, [
        ("method", "method"), ("variant", "variant"), ("batch", "batch"), ("lr", "lr"), ("params_m", "weights (M)"),
        ("shard_reads", "reads"), ("data_ms_mean", "data ms"), ("model_ms_mean", "model ms"),
        ("model_ms_median", "model ms med"),
        ("data_share", "data share"), ("steps_per_s", "steps/s"), ("examples_per_s", "ex/s"),
        ("rss_built_mib", "RSS built MiB"), ("peak_rss_mib", "peak RSS MiB"),
    ])

    notes = [
        "data ms, model ms: means over the timed steps (total / steps); 'model ms med' is the median. steps/s and "
        "ex/s: timed steps (examples) / the timed loop's wall time",
        "data ms = next() on the training DataLoader (ShardBatches): from the files a shard is read (HDF5 + gzip) "
        "every shard size / batch steps ('reads': how many in the timed steps) and the other steps slice it; the mean "
        "spreads the reads over the steps",
        f"batch256: batch {BIG_BATCH} with lr = shipped lr x sqrt({BIG_BATCH} / shipped batch) (the lr column); "
        "the cost of a step does not depend on the lr",
        "channels_last: model.to(memory_format=torch.channels_last) (the conv weights) and every conv input made "
        "channels_last; bf16: torch.autocast('cpu', dtype=torch.bfloat16) around loss + penalty",
        "model step = InversionModule.training_step's loss (+ l1_weight x penalty) + backward + grad-norm clip + "
        "AdamW, as Lightning runs it, without its per-step overhead and learning-rate schedule",
        "peak RSS: ru_maxrss of the case's own subprocess (imports, model, optimiser, cached shards); 'RSS built' "
        "is after the imports, the loader and the model, before any step",
        "dataset read: epoch 1 reads the shard files (from the page cache after the checksum pass of open+verify), "
        "epoch 2 re-shuffles the shards already in RAM: the data cost per example of the first and of later epochs",
        "compare ratios within one run; absolute figures move with machine load",
    ]
    if failures:
        notes.append(f"failed: {', '.join(failures)} (see stderr)")
    finish("bench_train_dexed", args, info,
           {"synth": SYNTH, "data": None if args.examples else str(data), "examples": args.examples,
            "shard_size": args.shard_size if args.examples else None, "steps": steps, "warmup": warmup,
            "methods": args.methods, "variants": args.variants, "in_ram": args.in_ram},
           {"read": read, "cases": rows}, started, notes)


if __name__ == "__main__":
    main()
