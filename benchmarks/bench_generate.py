"""Dataset generation throughput: examples/s of `synthinv.data.generate` for 1 and 2 workers, and bytes/example.

Each worker count writes the same dataset (same seed, so the same shards) into a fresh temporary folder;
the wall time includes building the synth and, for 2+ workers, starting the process pool (spawned
interpreters importing torch: a few seconds, amortised on real runs of thousands of examples), so
"steady" examples/s, between the first and the last finished shard, is printed too. A
single-process breakdown follows: patch draw + render, log-mel, shard write, per example.

`--compare SRC ...` instead times other source trees (e.g. the main checkout's `src`) against this one,
alternating them for `--rounds` rounds in this one run so that a busy machine slows both alike: generate
with 2 workers (wall-clock steady examples/s, and whether the trees wrote byte-identical shards), and the
CPU ms per example of each stage in one process (draw, render, silence check, log-mel, shard write, the
whole pipeline). From this tree's CPU costs it prints what 2 free cores would give for the whole pipeline,
for draw + log-mel (everything but writing) and for rendering alone. The log-mel is pinned bit for bit
(tests/test_generation_pinned.py), so draw + log-mel bounds what any change to the writing can reach.

    python benchmarks/bench_generate.py [--quick] [--n 256] [--workers 1 2] [--synth dexed] [--json out.json]
    python benchmarks/bench_generate.py --compare ../main/src --n 4096 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import add_common_args, apply_threads, finish, machine_info, print_machine, print_table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--n", type=int, default=None, help="examples per run (default 512; --quick 128)")
    parser.add_argument("--shard-size", type=int, default=None, help="examples per shard (default n / 8)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time (default 1 2)")
    parser.add_argument("--synth", default="dexed", help="synth name (default dexed)")
    parser.add_argument("--compare", nargs="+", default=None, metavar="SRC",
                        help="other source trees (folders holding synthinv/) to time against this one, 2 workers")
    parser.add_argument("--rounds", type=int, default=3, help="--compare: rounds of alternating runs (default 3)")
    parser.add_argument("--codecs", action="store_true",
                        help="instead: HDF5 filters for the stored log-mel (write and read time, bytes per example)")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    if args.compare:
        compare(args)
        return
    if args.codecs:
        codecs(args)
        return

    from synthinv import synths
    from synthinv.data import shards as sh
    from synthinv.data.generate import feature_settings, generate, render_shard

    started, info, n, shard_size, settings = start_run(args, quick_n=128, full_n=512)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            out = Path(tmp) / f"w{w}"
            result = generate(settings, n, out, seed=0, shard_size=shard_size, workers=w, progress=False)
            manifest = json.loads((out / sh.MANIFEST).read_text())
            rows.append({"workers": w, "examples": result.examples, "shards": len(result.written),
                         "wall s": result.seconds, "ex/s": result.examples_per_s,
                         "steady ex/s": result.steady_examples_per_s,
                         "bytes/ex": manifest["bytes_per_example"]})
        same = len({tuple(s["sha256"] for s in json.loads((Path(tmp) / f"w{w}" / sh.MANIFEST).read_text())["shards"])
                    for w in args.workers}) == 1

        # single-process breakdown on one chunk
        torch.set_num_threads(1)
        synth = synths.from_settings(settings)
        feats = feature_settings(synth)
        k = min(64, n)
        idx = np.arange(k)
        from synthinv.features import log_mel_spectrogram

        warm = synth.params_at(0, idx)  # warm-up: engine (a plugin's fork server loads its instances), FFT, filterbank
        log_mel_spectrogram(synth.render(warm), synth.sample_rate)
        t = time.perf_counter()
        params, audio = synth.draw(0, idx) if hasattr(synth, "draw") else (synth.params_at(0, idx), None)
        audio = synth.render(params) if audio is None else audio
        t_draw = (time.perf_counter() - t) / k

        t = time.perf_counter()
        mel = log_mel_spectrogram(audio, synth.sample_rate)
        t_mel = (time.perf_counter() - t) / k
        t = time.perf_counter()
        sh.write_shard(Path(tmp) / "one.h5", params.numpy(), mel.numpy(), idx, {})
        t_write = (time.perf_counter() - t) / k
        raw = params.shape[1] * 4 + mel.shape[1] * mel.shape[2] * 2 + 8
        data = render_shard(synth, feats, 0, 0, 1)  # warm check that the worker path runs here too
        assert data["mel"].shape[1:] == (feats["n_mels"], feats["frames"])

    print(f"\n{args.synth}: {n} examples in shards of {shard_size}, seed 0; examples/s include pool start-up")
    print_table(rows, [("workers", "workers"), ("examples", "examples"), ("shards", "shards"), ("wall s", "wall s"),
                       ("ex/s", "examples/s (wall)"), ("steady ex/s", "examples/s (steady)"), ("bytes/ex", "bytes/example")])
    if len(rows) > 1 and rows[0]["steady ex/s"] and rows[-1]["steady ex/s"]:
        print(f"steady speed-up {rows[-1]['workers']} vs {rows[0]['workers']} workers: "
              f"{rows[-1]['steady ex/s'] / rows[0]['steady ex/s']:.2f}x")
    print(f"identical shards across worker counts: {'yes' if same else 'NO'}")
    print(f"\nper example, one process, one thread: draw+render {t_draw * 1e3:.2f} ms, log-mel {t_mel * 1e3:.2f} ms, "
          f"shard write (gzip) {t_write * 1e3:.2f} ms")
    print(f"uncompressed example: {raw:,} bytes (params float32 + mel float16 + index)")
    notes = ["2 workers can only scale if 2 cores are free: compare the load average with the CPU count"]
    finish("bench_generate", args, info, {"n": n, "shard_size": shard_size, "synth": args.synth},
           {"runs": rows, "draw_ms": t_draw * 1e3, "mel_ms": t_mel * 1e3, "write_ms": t_write * 1e3,
            "raw_bytes_per_example": raw, "identical_across_workers": same}, started, notes)


# --- --codecs: how to store the log-mel ------------------------------------------------------------


def codecs(args) -> None:
    """Write and read time and size of the stored log-mel with each HDF5 filter h5py ships, one chunk per
    example as shards store it (reading one example = one chunk, as ShardDataset does)."""
    import h5py

    from synthinv.build import build_synth
    from synthinv.features import log_mel_spectrogram

    started = time.perf_counter()
    info = machine_info()
    print_machine(info)
    torch.set_num_threads(1)
    n = args.n or (128 if args.quick else 512)
    synth = build_synth({"name": args.synth} if args.synth != "kosc" else {"name": "kosc", "k": 4})
    audio = synth.draw(0, np.arange(n))[1] if hasattr(synth, "draw") else synth.render(synth.params_at(0, np.arange(n)))
    mel = log_mel_spectrogram(audio, synth.sample_rate).numpy().astype(np.float16)
    chunk = {"chunks": (1, *mel.shape[1:])}
    options = {"none (contiguous)": {}, "gzip 1 + shuffle": {**chunk, "compression": "gzip", "compression_opts": 1, "shuffle": True},
               "gzip 4 + shuffle (shards' 'gzip')": {**chunk, "compression": "gzip", "compression_opts": 4, "shuffle": True},
               "gzip 6 + shuffle": {**chunk, "compression": "gzip", "compression_opts": 6, "shuffle": True},
               "gzip 1": {**chunk, "compression": "gzip", "compression_opts": 1},
               "lzf + shuffle": {**chunk, "compression": "lzf", "shuffle": True}, "lzf": {**chunk, "compression": "lzf"}}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in options}
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):  # the filters take turns; the least of 3
            for name, opts in options.items():
                path = Path(tmp) / "mel.h5"
                t = time.process_time()
                with h5py.File(path, "w") as f:
                    f.create_dataset("mel", data=mel, track_times=False, **opts)
                write = (time.process_time() - t) / n
                picks = range(0, n, 7)  # every 7th example: no help from the chunk cache
                with h5py.File(path, "r") as f:
                    ds = f["mel"]
                    t = time.process_time()
                    for j in picks:
                        ds[j]
                    read = (time.process_time() - t) / len(picks)
                times[name].append((write, read))
                sizes[name] = path.stat().st_size / n
    rows = [{"filter": name, "write": 1e3 * min(w for w, _ in ts), "read": 1e3 * min(r for _, r in ts), "bytes": sizes[name]}
            for name, ts in times.items()]
    print(f"\n{args.synth} log-mel, {n} examples of {mel.shape[1]} x {mel.shape[2]} float16 ({mel[0].nbytes:,} bytes raw); "
          "CPU ms per example, least of 3 turns")
    print_table(rows, [("filter", "filter"), ("write", "write ms"), ("read", "read one ms"), ("bytes", "bytes/example")])
    finish("bench_generate", args, info, {"n": n, "synth": args.synth, "codecs": True}, rows, started)


# --- --compare: this tree against others, and the ceilings --------------------------------------------

_GENERATE = """
import json, sys, tempfile
from pathlib import Path
from synthinv.data.generate import generate
a = json.loads(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    r = generate(a["settings"], a["n"], Path(tmp) / "d", seed=0, shard_size=a["shard_size"], workers=a["workers"],
                 progress=False)
    m = json.loads((Path(tmp) / "d" / "manifest.json").read_text())
print(json.dumps({"wall": r.examples_per_s, "steady": r.steady_examples_per_s, "bytes": m["bytes_per_example"],
                  "sha256": [s["sha256"] for s in m["shards"]]}))
"""

_STAGES = """
import json, sys, tempfile, time, numpy as np, torch
from pathlib import Path
torch.set_num_threads(1)
from synthinv.build import build_synth
from synthinv.data.generate import generate
from synthinv.data.shards import write_shard
from synthinv.features import log_mel_spectrogram
from synthinv.metrics import rms_dbfs
from synthinv.synths.base import draw_examples
a = json.loads(sys.argv[1])
synth = build_synth(a["settings"])
idx = np.arange(a["n"])
p, audio = draw_examples(synth, 0, idx)
mel = log_mel_spectrogram(audio, synth.sample_rate).numpy().astype(np.float16)
tmp = Path(tempfile.mkdtemp())
runs = iter(range(10**6))
stages = {
    "draw: prior + render + silence check": (lambda: draw_examples(synth, 0, idx), len(idx)),
    "  render alone": (lambda: synth.render(p), len(idx)),
    "  silence check (rms_dbfs)": (lambda: rms_dbfs(audio), len(idx)),
    "log-mel": (lambda: log_mel_spectrogram(audio, synth.sample_rate).numpy().astype(np.float16), len(idx)),
    "write shard (gzip)": (lambda: write_shard(tmp / "s.h5", p.numpy(), mel, idx, {}, "gzip"), len(idx)),
    "write shard (none)": (lambda: write_shard(tmp / "s.h5", p.numpy(), mel, idx, {}, None), len(idx)),
    "whole pipeline: generate, 1 process": (lambda: generate(a["settings"], a["pipeline_n"], tmp / f"d{next(runs)}", seed=1,
                                                             shard_size=a["pipeline_n"], workers=1, progress=False),
                                            a["pipeline_n"]),
}
generate(a["settings"], 8, tmp / "warm", seed=1, shard_size=8, workers=1, progress=False)
print(json.dumps(list(stages)), flush=True)
for line in sys.stdin:
    fn, count = stages[json.loads(line)]
    t = time.process_time()
    fn()
    print(json.dumps(1e3 * (time.process_time() - t) / count), flush=True)
"""


def _python(code: str, src: str, payload: dict, stdin: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(payload)], env=env, stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.PIPE if stdin else None)


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"a timed run failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def start_run(args, quick_n: int, full_n: int) -> tuple[float, dict, int, int, dict]:
    """-> (start time, machine info (printed), examples, shard size, synth settings) of a run."""
    started = time.perf_counter()
    info = machine_info()
    print_machine(info)
    n = args.n or (quick_n if args.quick else full_n)
    settings = {"name": args.synth} if args.synth != "kosc" else {"name": "kosc", "k": 4}
    return started, info, n, args.shard_size or max(1, n // 8), settings


def compare(args) -> None:
    """This tree against the --compare trees: generate with 2 workers (wall), and CPU ms per example of each
    stage in one process; rounds alternate the trees so that load from other jobs falls on both."""
    started, info, n, shard_size, settings = start_run(args, quick_n=512, full_n=4096)
    here = str(Path(__file__).resolve().parents[1] / "src")
    trees = dict(zip(["this tree"] + args.compare, [here] + [str(Path(t).resolve()) for t in args.compare]))
    names = list(trees)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            runs[name].append(_result(_python(_GENERATE, trees[name], {"settings": settings, "n": n,
                                                                       "shard_size": shard_size, "workers": 2})))
            print(f"round {r + 1}: {name}: {runs[name][-1]['steady']:.0f} examples/s steady with 2 workers", flush=True)

    # CPU cost per stage: one process per tree kept running, the trees taking turns on each stage, many times
    servers = {name: _python(_STAGES, trees[name], {"settings": settings, "n": 64, "pipeline_n": 256}, stdin=True)
               for name in names}
    stage_names = [json.loads(servers[name].stdout.readline()) for name in names][0]
    cpu: dict[str, dict[str, list[float]]] = {name: {stage: [] for stage in stage_names} for name in names}
    repeats = 3 if args.quick else 8
    for r in range(repeats):
        for stage in stage_names:
            for name in names if r % 2 == 0 else names[::-1]:
                servers[name].stdin.write(json.dumps(stage) + "\n")
                servers[name].stdin.flush()
                cpu[name][stage].append(json.loads(servers[name].stdout.readline()))
    for proc in servers.values():
        proc.stdin.close()
        proc.wait()
    stages = {name: {stage: min(v) for stage, v in cpu[name].items()} for name in names}
    print(f"stages timed {repeats} times per tree, taking turns", flush=True)

    print(f"\n{args.synth}, seed 0: generate with 2 workers, {n} examples in shards of {shard_size}; "
          f"{args.rounds} rounds, trees alternating")
    rows = []
    for name in names:
        steady = [x["steady"] for x in runs[name]]
        rows.append({"tree": name, "median": statistics.median(steady), "runs": ", ".join(f"{x:.0f}" for x in steady),
                     "wall": statistics.median(x["wall"] for x in runs[name]), "bytes": runs[name][0]["bytes"]})
    print_table(rows, [("tree", "tree"), ("median", "examples/s steady (median)"), ("runs", "each run"),
                       ("wall", "examples/s wall (median)"), ("bytes", "bytes/example")])
    ratios = {}
    for name in names[1:]:
        per_round = [a["steady"] / b["steady"] for a, b in zip(runs[names[0]], runs[name])]
        ratios[name] = statistics.median(per_round)
        same = all(a["sha256"] == b["sha256"] for a, b in zip(runs[names[0]], runs[name]))
        print(f"this tree vs {name}: {ratios[name]:.2f}x steady examples/s (median of the per-round ratios "
              f"{', '.join(f'{x:.2f}' for x in per_round)}); byte-identical shards: {'yes' if same else 'NO'}")

    med = stages
    print(f"\nCPU ms per example, one process, one thread (least of {repeats} turns; stages on 64 examples, the "
          "pipeline on 256)")
    print_table([{"stage": stage, **{name: med[name][stage] for name in names}} for stage in stage_names],
                [("stage", "stage")] + [(name, name) for name in names])
    for name in names[1:]:
        key = "whole pipeline: generate, 1 process"
        print(f"whole pipeline CPU ms per example, {name} / this tree: {med[name][key] / med[names[0]][key]:.2f}")
    ours = med[names[0]]
    bounds = {"whole pipeline (what generate does)": ours["whole pipeline: generate, 1 process"],
              "draw + log-mel (all but writing)": ours["draw: prior + render + silence check"] + ours["log-mel"],
              "render alone": ours["  render alone"]}
    print("examples/s that 2 free cores give at these CPU costs (2000 / CPU ms), this tree:")
    for label, ms in bounds.items():
        print(f"  {label}: {2000 / ms:.0f}")
    finish("bench_generate", args, info, {"n": n, "shard_size": shard_size, "synth": args.synth, "trees": trees},
           {"runs": runs, "ratios": ratios, "stage_cpu_ms": cpu, "two_core_bounds": {k: 2000 / v for k, v in bounds.items()}},
           started, ["CPU times are per process and count less of the load from other jobs than wall-clock rates do; "
                     "'2 free cores' figures assume both cores run one worker each"])


if __name__ == "__main__":
    main()
