"""Training throughput on CPU at batch 256 (k = 4) for every shipped k-osc method config, plus peak memory
and the overhead of the Lightning loop (synthinv.training.train) over a plain PyTorch loop.

Each method runs in a fresh subprocess, so its peak RSS (ru_maxrss from os.wait4 of that child) is its own.
Inside it, after warm-up steps, three loops are timed:
  full        make_batch (params_at + render, as InversionModule.make_batch) + loss + backward + clip + AdamW
  train-only  the same on one fixed, pre-made batch: what the model costs without data generation
  make_batch  batch generation alone
(flow methods also report the minibatch-OT pairing alone: scipy linear_sum_assignment on a 256 x 256 cost).
With --bf16 every method is timed again with the loss under CPU bfloat16 autocast (as `--precision bf16-mixed`
trains), and the transformer fields a third time under autocast with torch's fused attention kernel in place of
the plain matmuls synthinv.models.fields.attention uses there.
Then one method runs synthinv.training.train(max_steps=N) in another subprocess, right after a plain full
loop of the same N steps in that process. train() is called twice (a few steps, then more) so the per-step
cost and the fixed setup cost (Trainer construction, checkpoint writing) separate.

    python benchmarks/bench_train.py [--quick] [--json out.json] [--methods flow_mlp regression_mse] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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

K = 4
BATCH = 256
SEED = 1_000_000  # synthinv.training.TRAIN_SEED_BASE + seed 0
# The paper's reference implementation on 2 CPU cores at batch 256, k = 4 (../shared/PAPER.md, "Compute
# reality"): 1.2-1.4 steps/s, about 300-400 examples/s for every method. Issue #13 asks for 10x.
REFERENCE_EX_PER_S = (300.0, 400.0)


# ----------------------------------------------------------------------------------------------- workers
def _setup(method: str, batch: int, bf16: bool = False):
    import numpy as np
    import torch

    from synthinv import synths
    from synthinv.build import build_model
    from synthinv.config import load_config

    config = load_config(method)
    config.train.batch_size = batch
    synth = synths.from_settings({"name": "kosc", "k": K})
    torch.manual_seed(0)
    model = build_model(config, synth).train()
    t = config.train
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    clip = t.grad_clip
    l1 = config.model.l1_weight

    def make_batch(step: int):  # exactly InversionModule.make_batch (device is CPU)
        idx = np.arange(step * batch, (step + 1) * batch)
        params = synth.params_at(SEED, idx)
        return params, synth.render(params)

    def train_step(params, audio):  # params (B, P), audio (B, T)
        return training_step(model, opt, params, audio, clip, l1, bf16=bf16)

    return config, synth, model, make_batch, train_step


def _times_reference(ex_per_s: float) -> str:
    """'a-b': how many times the reference's examples/s (a range) this is."""
    low, high = REFERENCE_EX_PER_S
    return f"{ex_per_s / high:.1f}-{ex_per_s / low:.1f}"


def _timed_loop(n: int, body, start_step: int = 0) -> float:
    start = time.perf_counter()
    for step in range(start_step, start_step + n):
        body(step)
    return time.perf_counter() - start


def use_fused_attention() -> None:
    """Make the transformer fields call torch's fused attention kernel under autocast too (the comparison)."""
    import torch.nn.functional as F

    from synthinv.models import fields

    fields.attention = F.scaled_dot_product_attention


def worker_plain(method: str, steps: int, warmup: int, batch: int, bf16: bool = False) -> dict:
    import torch

    rss_imports = current_rss_kib()
    config, synth, model, make_batch, train_step = _setup(method, batch, bf16)
    rss_built = current_rss_kib()
    for step in range(warmup):
        train_step(*make_batch(step))
    full_s = _timed_loop(steps, lambda s: train_step(*make_batch(s)), warmup)
    fixed = make_batch(0)
    train_s = _timed_loop(steps, lambda s: train_step(*fixed))
    gen_s = _timed_loop(steps, make_batch, warmup + steps)
    ot_s = None
    if config.model.kind == "flow" and config.model.ot:
        from synthinv.flow import ot_pair_noise

        params = fixed[0]
        noise = torch.randn_like(params)
        ot_s = _timed_loop(steps, lambda s: ot_pair_noise(noise, params))
    return {
        "method": method, "steps": steps, "warmup": warmup, "batch": batch, "bf16": bf16,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "full_s_per_step": full_s / steps, "train_only_s_per_step": train_s / steps,
        "make_batch_s_per_step": gen_s / steps, "ot_s_per_step": ot_s / steps if ot_s is not None else None,
        "rss_after_imports_kib": rss_imports, "rss_after_build_kib": rss_built,
        "maxrss_self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "torch_threads": torch.get_num_threads(),
    }


def worker_lightning(method: str, steps: int, warmup: int, batch: int, first_steps: int) -> dict:
    import logging

    import torch

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from synthinv.training import train

    config, synth, model, make_batch, train_step = _setup(method, batch)
    for step in range(warmup):
        train_step(*make_batch(step))
    plain_s = _timed_loop(steps, lambda s: train_step(*make_batch(s)), warmup)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (first_steps, first_steps + steps):
            start = time.perf_counter()
            meta = train(config, synth, out=Path(tmp) / f"run{n}", max_steps=n, progress_bar=False, n_validations=0)
            runs.append({"max_steps": n, "steps": meta["steps"], "wall_s": time.perf_counter() - start,
                         "in_step_s": meta["train_seconds"]})
    (a, b) = runs
    marginal = (b["wall_s"] - a["wall_s"]) / max(b["steps"] - a["steps"], 1)
    plain = plain_s / steps
    return {
        "method": method, "steps": steps, "batch": batch, "plain_s_per_step": plain, "runs": runs,
        "lightning_marginal_s_per_step": marginal,
        "lightning_fixed_s": b["wall_s"] - marginal * b["steps"],
        "lightning_in_step_s_per_step": b["in_step_s"] / max(b["steps"], 1),
        "lightning_wall_s_per_step": b["wall_s"] / max(b["steps"], 1),
        "overhead_ratio_marginal": marginal / plain,
        "overhead_ratio_wall": b["wall_s"] / max(b["steps"], 1) / plain,
        "torch_threads": torch.get_num_threads(),
    }


# ------------------------------------------------------------------------------------------------ parent
def run_child(argv: list[str]) -> tuple[dict | None, int, str]:
    """Run this script as a worker; -> (its JSON result or None, child's ru_maxrss in KiB, its output)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        log = Path(tmp) / "log.txt"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, __file__, *argv, "--_out", str(out)], stdout=fh, stderr=fh)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS)
            proc.returncode = os.waitstatus_to_exitcode(status)
        text = log.read_text(errors="replace")
        result = json.loads(out.read_text()) if proc.returncode == 0 and out.is_file() else None
        return result, usage.ru_maxrss, text


def _method_or_yaml(shipped: list[str]):
    """argparse type: a shipped k-osc config name, or the path of a .yaml config (e.g. a variant under results/)."""
    def parse(text: str) -> str:
        if text in shipped or (text.endswith((".yaml", ".yml")) and Path(text).is_file()):
            return text
        raise argparse.ArgumentTypeError(f"{text!r} is neither a shipped config ({', '.join(shipped)}) nor a .yaml file")
    return parse


def main(argv: list[str] | None = None) -> None:
    from synthinv.config import builtin_configs, load_config

    methods_all = list(builtin_configs("kosc"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--methods", nargs="+", default=methods_all, type=_method_or_yaml(methods_all), metavar="METHOD",
                        help=f"configs to time: shipped names (default all: {', '.join(methods_all)}) or k-osc .yaml files")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per loop (default 12; --quick 3)")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"batch size (default {BATCH})")
    parser.add_argument("--lightning-method", default="flow_transformer", choices=methods_all + ["none"],
                        help="method timed through synthinv.training.train (default flow_transformer; 'none' skips)")
    parser.add_argument("--bf16", action="store_true", help="also time each method under CPU bf16 autocast (and the "
                        "transformer fields with torch's fused attention kernel there)")
    parser.add_argument("--_worker", choices=["plain", "lightning"], help=argparse.SUPPRESS)
    parser.add_argument("--_bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_fused", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_method", help=argparse.SUPPRESS)
    parser.add_argument("--_warmup", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--_out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    steps = args.steps or (3 if args.quick else 12)

    if args._worker:
        if args._fused:
            use_fused_attention()
        if args._worker == "plain":
            result = worker_plain(args._method, steps, args._warmup, args.batch, args._bf16)
        else:
            result = worker_lightning(args._method, steps, args._warmup, args.batch, first_steps=2 if args.quick else 3)
        args._out.write_text(json.dumps(result))
        return

    started = time.perf_counter()
    info = machine_info()
    print_machine(info)
    warmup = 1 if args.quick else 2
    print(f"training, k = {K}, batch {args.batch}, CPU; {warmup} warm-up step(s) then {steps} timed steps per loop; "
          "one fresh subprocess per method\n")
    passthrough = ["--steps", str(steps), "--batch", str(args.batch), "--_warmup", str(warmup)]
    if args.threads:
        passthrough += ["--threads", str(args.threads)]

    rows, failures = [], []
    variants = [("", [])] + ([(" bf16", ["--_bf16"]), (" bf16 fused attention", ["--_bf16", "--_fused"])] if args.bf16 else [])
    for method, (label, flags) in ((m, v) for m in args.methods for v in variants):
        if "--_fused" in flags and getattr(load_config(method).model, "field", None) != "transformer":
            continue  # no attention in this model: the same as its bf16 row
        result, maxrss_kib, log = run_child(["--_worker", "plain", "--_method", method, *flags, *passthrough])
        if result is None:
            failures.append(method + label)
            print(f"[{method}{label} failed]\n{log[-2000:]}", file=sys.stderr)
            continue
        full, train_only, gen = result["full_s_per_step"], result["train_only_s_per_step"], result["make_batch_s_per_step"]
        rows.append(dict(
            result, method=method + label,
            full_steps_per_s=1 / full, full_ex_per_s=args.batch / full,
            train_only_steps_per_s=1 / train_only, train_only_ex_per_s=args.batch / train_only,
            make_batch_ms=gen * 1e3, make_batch_share=gen / full,
            ot_ms=result["ot_s_per_step"] * 1e3 if result["ot_s_per_step"] is not None else None,
            peak_rss_mib=maxrss_kib / 1024, rss_before_training_mib=result["rss_after_build_kib"] / 1024,
            params_m=result["n_parameters"] / 1e6,
            x_reference=_times_reference(args.batch / full) if args.batch == BATCH else None,
        ))
    print_table(rows, [
        ("method", "method"), ("params_m", "params (M)"),
        ("full_steps_per_s", "steps/s"), ("full_ex_per_s", "ex/s"), ("x_reference", "x reference"),
        ("train_only_steps_per_s", "steps/s no-gen"), ("train_only_ex_per_s", "ex/s no-gen"),
        ("make_batch_ms", "make_batch ms"), ("make_batch_share", "gen share"), ("ot_ms", "OT ms"),
        ("rss_before_training_mib", "RSS built MiB"), ("peak_rss_mib", "peak RSS MiB"),
    ])

    lightning = None
    if args.lightning_method != "none":
        print(f"\nLightning loop (synthinv.training.train, n_validations=0) vs the plain loop, "
              f"{args.lightning_method}, same subprocess:")
        lightning, _, log = run_child(["--_worker", "lightning", "--_method", args.lightning_method, *passthrough])
        if lightning is None:
            failures.append(f"lightning:{args.lightning_method}")
            print(f"[lightning run failed]\n{log[-2000:]}", file=sys.stderr)
        else:
            print_table([dict(
                lightning, plain_steps_per_s=1 / lightning["plain_s_per_step"],
                marginal_steps_per_s=1 / lightning["lightning_marginal_s_per_step"],
                in_step_steps_per_s=1 / lightning["lightning_in_step_s_per_step"],
                wall_steps_per_s=1 / lightning["lightning_wall_s_per_step"],
            )], [
                ("method", "method"), ("plain_steps_per_s", "plain steps/s"),
                ("marginal_steps_per_s", "Lightning steps/s (marginal)"), ("overhead_ratio_marginal", "ratio"),
                ("wall_steps_per_s", "steps/s incl. setup"), ("overhead_ratio_wall", "ratio incl. setup"),
                ("lightning_fixed_s", "setup s"), ("in_step_steps_per_s", "steps/s by train_seconds"),
            ])

    notes = [
        "steps/s, ex/s: the full loop (batch generation included), as training does; 'no-gen' reuses one pre-made batch",
        f"x reference = ex/s over the paper's reference implementation's {REFERENCE_EX_PER_S[0]:.0f}-"
        f"{REFERENCE_EX_PER_S[1]:.0f} examples/s on 2 CPU cores at batch {BATCH} (../shared/PAPER.md; the goal of "
        "issue #13 is 10x); shown at batch 256 only",
        "gen share = make_batch time / full step time: the part of a step spent making data (params_at + render)",
        "peak RSS: ru_maxrss of the method's own subprocess (imports + model + training); 'RSS built' is before any step",
        "Lightning ratio = Lightning seconds per step / plain-loop seconds per step (1.0 = no overhead); "
        "'marginal' is the slope between two train() runs of different lengths, 'incl. setup' divides one whole "
        "train() call by its steps; 'by train_seconds' is synthinv's own clock (in-step time only)",
        "compare ratios within one run; absolute figures move with machine load",
    ]
    if failures:
        notes.append(f"failed: {', '.join(failures)} (see stderr)")
    finish("bench_train", args, info,
           {"k": K, "batch": args.batch, "steps": steps, "warmup": warmup, "methods": args.methods,
            "lightning_method": args.lightning_method},
           {"methods": rows, "lightning": lightning}, started, notes)


if __name__ == "__main__":
    main()
