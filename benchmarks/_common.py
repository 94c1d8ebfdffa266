"""Helpers shared by the benchmark scripts: machine description, repeat-timing, table printing, JSON output.

Not part of the library; imported by `python benchmarks/NAME.py` because the script's folder is on sys.path.
Benchmarks print figures and never assert on them: the machines are small and shared, so only ratios measured
within one run are meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps (about 20 s); figures are noisier")
    parser.add_argument("--json", metavar="PATH", type=Path, default=None, help="also write the figures as JSON to PATH")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads(N) before timing (default: torch's own choice)")


def apply_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict:
    """What the figures were measured on; the load average hints at competing jobs."""
    import numpy as np
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": _cpu_model(),
        "cuda_available": torch.cuda.is_available(),
        "platform": platform.platform(),
        "load_average_at_start": load_average(),
    }


def print_machine(info: dict) -> None:
    print(f"machine: torch {info['torch']} | torch threads {info['torch_threads']} "
          f"(interop {info['torch_interop_threads']}) | CPUs {info['cpu_count']} ({info['cpus_usable']} usable) "
          f"| {info['cpu_model']} | python {info['python']}")
    print(f"load average at start (1/5/15 min): {info['load_average_at_start']} "
          "- above the CPU count means another job competes for the cores")
    load, cpus = info["load_average_at_start"], info["cpus_usable"] or 1
    if load and load[0] > 0.5 * cpus and info["torch_threads"] > 1:
        print("WARNING: the machine is busy and torch uses several threads: a thread that loses its core stalls "
              "every parallel op, which can slow steps many-fold at random. Consider --threads 1.")


def measure(fn: Callable[[], object], warmup: int, repeats: int, budget_s: float = float("inf"),
            min_repeats: int = 2) -> dict:
    """Run `fn` `warmup` times untimed, then up to `repeats` timed runs (stopping early, after at least
    `min_repeats`, once the timed runs exceed `budget_s`). Returns seconds: median, min, max, n, all."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    spent = 0.0
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        dt = time.perf_counter() - start
        times.append(dt)
        spent += dt
        if i + 1 >= min_repeats and spent > budget_s:
            break
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "n": len(times),
            "all_s": [round(t, 6) for t in times]}


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """columns: (key, header). Values are formatted with `fmt` below; missing values print as '-'."""
    cells = [[fmt(r.get(key)) for key, _ in columns] for r in rows]
    headers = [h for _, h in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(vals: list[str]) -> str:  # first column left-aligned, figures right-aligned
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths)))

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line(c))


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        a = abs(value)
        if a == 0:
            return "0"
        if a >= 1000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.1f}"
        if a >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    return str(value)


def finish(name: str, args: argparse.Namespace, info: dict, settings: dict, results, started: float,
           notes: list[str] | None = None) -> None:
    """Print the notes and wall time; write the JSON if asked."""
    info = dict(info, load_average_at_end=load_average())
    wall = time.perf_counter() - started
    for note in notes or []:
        print(f"note: {note}")
    print(f"load average at end: {info['load_average_at_end']} | benchmark wall time {wall:.1f} s")
    if args.json:
        payload = {"benchmark": name, "argv": sys.argv[1:], "quick": args.quick, "machine": info,
                   "settings": settings, "results": results, "notes": notes or [], "wall_seconds": round(wall, 2),
                   "unix_time": round(time.time())}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")


def current_rss_kib() -> int:
    """This process's resident memory now, KiB (-1 where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return -1


def training_step(model, opt, params, cond, clip: float, l1: float, bf16: bool = False):
    """One step as synthinv trains: InversionModule.training_step's loss (+ l1 x the field's penalty), then
    what Lightning's automatic optimisation does with it (zero grads, backward, grad-norm clip, step).
    bf16: the loss under torch.autocast("cpu", bfloat16), backward and the step outside it. -> the loss."""
    import contextlib

    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        loss = model.loss(params, cond)
        total = loss + l1 * model.penalty() if l1 else loss
    opt.zero_grad(set_to_none=True)
    total.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss
