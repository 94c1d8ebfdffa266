"""Sampling latency: FlowModel.sample for 1 and 64 examples at 50 and 200 RK4 steps (classifier-free guidance
2.0), for the flow methods, with RegressionModel.predict for comparison (k = 4, CPU).

Weights are untrained (freshly built from the shipped configs): the sampler does the same dense work whatever
the weights, so latency does not depend on training. Each call includes the audio encoder (once per call) and
4 guided field evaluations per RK4 step, each on 2 x N rows (conditional + unconditional halves batched).

    python benchmarks/bench_sample.py [--quick] [--json out.json] [--steps 50 200] [--sizes 1 64]
"""

from __future__ import annotations

import argparse
import time

import torch

from _common import add_common_args, apply_threads, finish, machine_info, measure, print_machine, print_table

FLOW_METHODS = ["flow_mlp", "flow_transformer", "flow_param2tok"]
REGRESSION_METHOD = "regression_mse"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--methods", nargs="+", default=FLOW_METHODS, help=f"flow configs (default {' '.join(FLOW_METHODS)})")
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 200], help="RK4 steps (default 50 200)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64], help="examples per call (default 1 64)")
    parser.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance scale (default 2.0)")
    parser.add_argument("--k", type=int, default=4, help="oscillators (default 4)")
    args = parser.parse_args(argv)
    apply_threads(args.threads)

    from synthinv import synths
    from synthinv.build import build_model
    from synthinv.config import load_config
    from synthinv.evaluation import VAL_SEED, split_batch

    started = time.perf_counter()
    # (max repeats, min repeats, timed-seconds budget per setting)
    repeats, min_repeats, budget = (2, 1, 1.0) if args.quick else (5, 3, 8.0)
    info = machine_info()
    print_machine(info)
    print(f"sampling latency, k = {args.k}, guidance {args.guidance}, CPU, UNTRAINED weights (timing only); "
          f"one short warm-up per method and size, then median of {min_repeats}-{repeats} calls\n")

    synth = synths.from_settings({"name": "kosc", "k": args.k})
    _, audio = split_batch(synth, VAL_SEED, max(args.sizes))
    rows = []
    for method in args.methods + [REGRESSION_METHOD]:
        torch.manual_seed(0)
        model = build_model(load_config(method), synth).eval()
        is_flow = load_config(method).model.kind == "flow"
        for n in args.sizes:
            a = audio[:n]
            with torch.no_grad():
                if not is_flow:
                    r = measure(lambda: model.predict(a), 2, max(repeats, 5), budget, max(min_repeats, 3))  # noqa: B023 - run at once
                    rows.append({"method": method, "n": n, "rk4_steps": None, "latency_ms": r["median_s"] * 1e3,
                                 "min_ms": r["min_s"] * 1e3, "ex_per_s": n / r["median_s"],
                                 "field_eval_ms": None, "calls": r["n"], "all_s": r["all_s"]})
                    continue
                model.sample(a, steps=5, guidance=args.guidance)  # warm-up
                for steps in args.steps:
                    gen = torch.Generator().manual_seed(0)
                    r = measure(lambda: model.sample(a, steps=steps, guidance=args.guidance, generator=gen),  # noqa: B023 - run at once
                                0, repeats, budget, min_repeats)
                    rows.append({"method": method, "n": n, "rk4_steps": steps, "latency_ms": r["median_s"] * 1e3,
                                 "min_ms": r["min_s"] * 1e3, "ex_per_s": n / r["median_s"],
                                 "field_eval_ms": r["median_s"] * 1e3 / (4 * steps), "calls": r["n"],
                                 "all_s": r["all_s"]})
    print_table(rows, [
        ("method", "method"), ("n", "examples"), ("rk4_steps", "RK4 steps"), ("latency_ms", "latency ms (median)"),
        ("min_ms", "min ms"), ("ex_per_s", "examples/s"), ("field_eval_ms", "ms per field eval"), ("calls", "calls"),
    ])
    notes = [
        "untrained weights: timing only, the samples themselves are meaningless",
        f"{REGRESSION_METHOD}: one predict() (encoder + MLP head), no steps; shown for scale",
        "ms per field eval = latency / (4 x RK4 steps), encoder included; one eval covers 2 x examples rows (guidance)",
        "compare rows of one run with each other; absolute figures move with machine load",
    ]
    finish("bench_sample", args, info, {"k": args.k, "guidance": args.guidance, "steps": args.steps,
                                        "sizes": args.sizes, "methods": args.methods, "max_repeats": repeats,
                                        "min_repeats": min_repeats, "budget_s": budget, "weights": "untrained"},
           rows, started, notes)


if __name__ == "__main__":
    main()
