"""Dataset generation throughput: examples/s of `synthinv.data.generate` for 1 and 2 workers, and bytes/example.

Each worker count writes the same dataset (same seed, so the same shards) into a fresh temporary folder;
the wall time includes building the synth and, for 2+ workers, starting the process pool (spawned
interpreters importing torch: a few seconds, amortised on real runs of thousands of examples), so
"steady" examples/s, between the first and the last finished shard, is printed too. A
single-process breakdown follows: patch draw + render, log-mel, shard write, per example.

    python benchmarks/bench_generate.py [--quick] [--n 256] [--workers 1 2] [--synth dexed] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args(argv)
    apply_threads(args.threads)

    from synthinv import synths
    from synthinv.data import shards as sh
    from synthinv.data.generate import feature_settings, generate, render_shard

    started = time.perf_counter()
    info = machine_info()
    print_machine(info)
    n = args.n or (128 if args.quick else 512)
    shard_size = args.shard_size or max(1, n // 8)
    settings = {"name": args.synth} if args.synth != "kosc" else {"name": "kosc", "k": 4}
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

        warm = synth.params_at(0, idx[:2])  # warm-up: engine, FFT plans, filterbank
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


if __name__ == "__main__":
    main()
