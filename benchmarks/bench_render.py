"""k-osc render throughput: examples/s of KOscSynth.render at batch 1024 for k = 4, 8, 16, 32.

Parameters are drawn once per k (synth.params_at, timed separately as `params ex/s`), then render is timed:
warm-up calls first, then the median of several repeats. `make_batch ex/s` combines the two, as a training
step does (InversionModule.make_batch), so it is the ceiling on training examples/s from data generation.

    python benchmarks/bench_render.py [--quick] [--json out.json] [--ks 4 8] [--batch 1024]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import add_common_args, apply_threads, finish, machine_info, measure, print_machine, print_table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 8, 16, 32], help="oscillator counts (default 4 8 16 32)")
    parser.add_argument("--batch", type=int, default=1024, help="examples per render call (default 1024)")
    parser.add_argument("--asym", action="store_true", help="render the asymmetric (banded) synth instead")
    parser.add_argument("--chunk", type=int, default=64,
                        help="also time the same batch rendered in chunks of this many rows and concatenated "
                             "(a diagnostic of memory-bound rendering; 0 to skip; default 64)")
    args = parser.parse_args(argv)
    apply_threads(args.threads)

    from synthinv import synths

    started = time.perf_counter()
    # (warm-up calls, max repeats, min repeats, timed-seconds budget per k)
    warmup, repeats, min_repeats, budget = (1, 3, 2, 3.0) if args.quick else (2, 9, 5, 20.0)
    info = machine_info()
    print_machine(info)
    print(f"k-osc render, batch {args.batch}, asym={args.asym}, {warmup} warm-up call(s), "
          f"median of {min_repeats}-{repeats} repeats (capped at ~{budget:.0f} s of timing per k)\n")

    rows = []
    for k in args.ks:
        synth = synths.from_settings({"name": "kosc", "k": k, "asym": args.asym})
        idx = np.arange(args.batch)
        params = synth.params_at(1, idx)
        with torch.no_grad():
            r = measure(lambda: synth.render(params), warmup, repeats, budget, min_repeats)  # noqa: B023 - run at once
            c = (measure(lambda: torch.cat([synth.render(x) for x in params.split(args.chunk)]), warmup, repeats,  # noqa: B023 - run at once
                         budget, min_repeats) if args.chunk else None)
        p = measure(lambda: synth.params_at(1, idx), 1, max(repeats, 5), 1.0, 3)  # noqa: B023 - run at once
        render_s, params_s = r["median_s"], p["median_s"]
        rows.append({
            "k": k, "batch": args.batch, "render_ms": render_s * 1e3, "render_min_ms": r["min_s"] * 1e3,
            "render_ex_per_s": args.batch / render_s,
            "osc_samples_per_us": args.batch * k * synth.length / render_s / 1e6,
            "params_ex_per_s": args.batch / params_s,
            "make_batch_ex_per_s": args.batch / (render_s + params_s),
            "chunked_ex_per_s": args.batch / c["median_s"] if c else None,
            "chunked_speedup": r["median_s"] / c["median_s"] if c else None,
            "repeats": r["n"], "render_all_s": r["all_s"], "chunked_all_s": c["all_s"] if c else None,
        })
    print_table(rows, [
        ("k", "k"), ("render_ms", "render ms (median)"), ("render_min_ms", "min ms"),
        ("render_ex_per_s", "render ex/s"), ("osc_samples_per_us", "osc-samples/us"),
        ("params_ex_per_s", "params ex/s"), ("make_batch_ex_per_s", "make_batch ex/s"),
        ("chunked_ex_per_s", f"chunk{args.chunk} ex/s"), ("chunked_speedup", "chunk speed-up"), ("repeats", "n"),
    ])
    notes = ["osc-samples/us = batch * k * 1024 samples per microsecond: flat across k means cost is linear in k",
             f"chunk{args.chunk} ex/s: the same {args.batch} examples rendered {args.chunk} rows per call and "
             "concatenated (identical output); a speed-up > 1 means one big call is memory/allocation-bound",
             "compare rows of one run with each other; absolute figures move with machine load"]
    finish("bench_render", args, info, {"batch": args.batch, "ks": args.ks, "asym": args.asym, "chunk": args.chunk, "warmup": warmup,
                                        "max_repeats": repeats, "min_repeats": min_repeats, "budget_s": budget},
           rows, started, notes)


if __name__ == "__main__":
    main()
