"""`synthinv invert` on CPU: latency by phase, and what the search spends its time on.

    python benchmarks/bench_invert.py [--synth dexed|kosc] [--sound WAV] [--budget 5] [--repeats 3] [--threads N]

1. Fast path (--budget 0) for 1 and 8 candidates, phase by phase: load (sound, features), propose (the
   flow's RK4 solve), score, transpose (trying candidates at the target's pitch), render (the final
   candidates, level and tuning checks). Model loading is outside (one Inverter for every run).
2. Search (Dexed): one `invert --budget S`, its phases, and renders/s during the search.
3. Per candidate, in one process: render ms, score ms against the cached target (what the search scores
   by), on every 2nd frame (invert's search_frame_stride=2) and against a target recomputed each time (plain
   mss_distance); candidates/s of the worker pool with 1 and 2 workers (render + score).
4. Bank lookup: ms per query by brute force (one matrix product) for 16,384 and 65,536 patches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from synthinv.pipeline import Inverter

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SOUNDS = {"dexed": EXAMPLES / "dexed_heldout_0.wav", "kosc": EXAMPLES / "kosc4_heldout_0.wav"}
PHASES = ("load", "propose", "score", "transpose", "pitch", "search", "render")


def fast_path(inverter, sound: Path, repeats: int) -> None:
    print(f"{'candidates':>10} " + " ".join(f"{p + ' s':>11}" for p in PHASES) + f" {'total s':>9}")
    for n in (1, 8):
        runs = [inverter.invert(sound, candidates=n, budget=0).settings["seconds"] for _ in range(repeats)]
        med = {p: statistics.median(r.get(p, 0.0) for r in runs) for p in PHASES}
        print(f"{n:>10} " + " ".join(f"{med[p]:>11.3f}" for p in PHASES) + f" {sum(med.values()):>9.3f}")


def search(inverter, sound: Path, budget: float) -> None:
    result = inverter.invert(sound, budget=budget)
    laps = result.settings["seconds"]
    print(f"budget {budget:g} s: " + ", ".join(f"{k} {v:.2f} s" for k, v in laps.items()))
    searched = result.settings["renders"] - result.settings["proposals"]
    print(f"  {result.settings['renders']} renders ({result.settings['proposals']} proposals); search: "
          f"{searched / max(laps.get('search', 1e-9), 1e-9):.0f} renders/s; best MSS {result.candidates[0].distance:.2f} dB")


def pitch_penalty(synth, audio: torch.Tensor):
    """The search's pitch penalty for the first of `audio` (N, T) that holds a steady pitch."""
    from synthinv.metrics import f0_tracks
    from synthinv.pitch import PitchPenalty, track_medians

    tracks = f0_tracks(audio[:16], synth.sample_rate)
    for row, track in zip(audio, tracks):
        penalty = PitchPenalty.for_target(row, track, float(track_medians(track[None])[0]), synth.sample_rate)
        if penalty is not None:
            return penalty
    raise RuntimeError("none of the first 16 test sounds holds a steady pitch")


def per_candidate(synth, n: int = 64, repeats: int = 5) -> None:
    from synthinv.metrics import mss_distance, rms_dbfs
    from synthinv.mss_target import MSSTarget
    from synthinv.search import LevelPenalty, Objective
    from synthinv.workers import SynthPool

    params, audio = synth.draw(3, np.arange(n))
    target = audio[0]
    scorer = MSSTarget(target, synth.sample_rate)
    estimate = MSSTarget(target, synth.sample_rate, frame_stride=2)  # invert's search_frame_stride=2
    penalty = pitch_penalty(synth, audio)
    level = LevelPenalty(float(rms_dbfs(target[None])[0]))
    rendered = synth.render(params)
    steps = {"render": lambda: synth.render(params), "score": lambda: scorer(rendered),
             "estimate": lambda: estimate(rendered),
             "recompute": lambda: mss_distance(rendered, target.expand_as(rendered), synth.sample_rate),
             "penalty": lambda: penalty(rendered), "level": lambda: level(rendered)}
    best = dict.fromkeys(steps, float("inf"))
    # taking turns, least of the repeats, in this thread's CPU time: other processes' load slows every step
    # alike and does not count
    for _ in range(repeats):
        for name, step in steps.items():
            t = time.thread_time()
            step()
            best[name] = min(best[name], (time.thread_time() - t) / n * 1e3)
    print(f"per candidate, one process, CPU time, least of {repeats}: render {best['render']:.2f} ms, score {best['score']:.2f} ms "
          f"against the cached target (score/render {best['score'] / best['render']:.2f}; {best['recompute']:.2f} ms "
          f"recomputing the target); on every 2nd frame (search_frame_stride=2) "
          f"{best['estimate']:.2f} ms (score/render {best['estimate'] / best['render']:.2f}); pitch penalty {best['penalty']:.2f} ms (pitched targets), level penalty "
          f"{best['level']:.3f} ms (searching)")
    for workers in (1, 2):
        with SynthPool(synth, workers) as pool:
            objective = Objective(pool, target, "bench")
            objective(params[:8])  # warm the workers (engine, cached target)
            t = time.perf_counter()
            objective(params)
            print(f"  pool of {workers}: {n / (time.perf_counter() - t):.0f} candidates/s (render + score)")


def bank_lookup(dim: int = 1024, repeats: int = 20) -> None:
    from synthinv.bank import Bank

    for n in (16384, 65536):
        bank = Bank(torch.randn(n, 2), torch.randn(n, dim), {})
        query = torch.randn(dim)
        t = time.perf_counter()
        for _ in range(repeats):
            bank.nearest_embedding(query, 32)
        print(f"bank lookup, {n} patches x {dim} dims: {(time.perf_counter() - t) / repeats * 1e3:.1f} ms per query "
              "(brute force)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", default="dexed", choices=sorted(SOUNDS))
    ap.add_argument("--sound", type=Path, default=None, help="default: a held-out example of the synth")
    ap.add_argument("--budget", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    sound = args.sound or SOUNDS[args.synth]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; {sound.name}")
    with Inverter(synth_name=args.synth, show_progress=False) as inverter:
        inverter.invert(sound, candidates=1, budget=0, steps=2)  # warm-up (loudness range, first renders)
        fast_path(inverter, sound, args.repeats)
        if args.synth != "kosc":
            search(inverter, sound, args.budget)
            per_candidate(inverter.synth)
    bank_lookup()
    print(f"load average at the end {os.getloadavg()[0]:.1f}; medians over repeats; compare rows of one run")


if __name__ == "__main__":
    main()
