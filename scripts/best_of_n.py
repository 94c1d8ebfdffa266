"""Best of N as N grows: a flow's samples against the bank lookup with the same N candidates (issue #12's target
"the shipped model's best of N beats the lookup with the same N candidates").

Per test sound, N_max candidates from each source - the flow's samples (guidance and temperature from its
config unless given) or the bank's N_max nearest patches - are ranked once as `synthinv invert` ranks them
(each also tried at the target's pitch). Best of N for every N in --ns is the first by that ranking among the
first N candidates: the flow's first N samples, the lookup's N nearest. Ranking is per candidate, so this is
exactly what separate runs at each N would give on the same draws, at the cost of one. The MSS of each
source's pick is paired per sound against the lookup's.

    PYTHONPATH=src python scripts/best_of_n.py --checkpoint src/synthinv/shipped/dexed-simple-flow-mlp.ckpt \
        --n 128 --ns 8,32,128,256,512 [--sources model,lookup] [--jobs 2]

Rows (one per source and sound: the MSS at each N) accumulate in <out>/rows.jsonl, so a stopped run resumes;
<out>.md is the table.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch


def targets(args: argparse.Namespace, synth) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (features (S, ...), audio (S, T)): the first --n sounds of --data, or every file of --audio-dir read and
    prepared as `synthinv invert` prepares a sound (sorted by name)."""
    if args.audio_dir is None:
        from synthinv.datasets import first_examples

        _, feats, audio, _ = first_examples(args.data, synth, args.n)
        return feats, audio
    from synthinv.audio_io import prepare_sound
    from synthinv.ood import audio_files
    from synthinv.pipeline import synth_rms_range

    rms_range = synth_rms_range(synth)
    audio = torch.stack([prepare_sound(p, synth.sample_rate, synth.length, rms_range).audio
                         for p in audio_files(args.audio_dir)[:args.n]])  # (S, T)
    return synth.features(audio), audio


POOL = 512  # samples drawn per sound by the pooled sources where neither --pool nor the checkpoint says


def run_source(source: str, args: argparse.Namespace, done: set[int]) -> list[dict]:
    """Every sound not in `done` for one source, on one torch thread -> rows (also appended to the rows file)."""
    torch.set_num_threads(1)
    from synthinv.bank import embed, get_bank
    from synthinv.checkpoint import load_checkpoint, stored_config
    from synthinv.datasets import SPLIT_SEEDS
    from synthinv.evaluation import RANDOM_BASELINE_SEED
    from synthinv.metrics import mss_distance
    from synthinv.models.sampler import draw, ranked_draw
    from synthinv.models.surrogate import Ranker, load_surrogate, ranker_from_checkpoint
    from synthinv.ranking import rank

    model, synth, blob = load_checkpoint(args.checkpoint)
    sampling = stored_config(blob, args.checkpoint).sample
    guidance = sampling.guidance if args.guidance is None else args.guidance
    temperature = sampling.temperature if args.temperature is None else args.temperature
    feats, audio = targets(args, synth)
    bank = get_bank(synth, args.bank, say=lambda s: None, show_progress=False, reserved=tuple(SPLIT_SEEDS.values())) \
        if source == "lookup" else None  # built (minutes, once) only where it is used
    surrogate = load_surrogate(args.surrogate, synth) if source == "model_by_surrogate" else None
    ranker = None
    if source == "model_ranked":  # the checkpoint's own ranker, else the --surrogate file with --pool
        stored = ranker_from_checkpoint(blob, synth, str(args.checkpoint))
        surrogate_used = stored.surrogate if stored else load_surrogate(args.surrogate, synth)
        ranker = Ranker(surrogate_used, args.pool or (stored.pool if stored else POOL))
    ns, c = sorted(args.ns), max(args.ns)
    rows = []
    for i in range(len(audio)):
        if i in done or i % args.parts != args.part:
            continue
        start = time.process_time()
        if source == "model_ranked":
            assert ranker is not None
            gen = torch.Generator().manual_seed(args.seed * 1_000_003 + i)
            params = ranked_draw(model, ranker, synth.spec, feats[i:i + 1], embed(audio[i:i + 1], synth.sample_rate),
                                 repeats=c, generator=gen, steps=args.steps, guidance=guidance,
                                 temperature=temperature)  # (c, P), nearest predicted first
        elif source.startswith("model"):
            gen = torch.Generator().manual_seed(args.seed * 1_000_003 + i)
            drawn = c if source == "model" else max(c, args.pool or POOL)
            params = draw(model, feats[i:i + 1], repeats=drawn, generator=gen, steps=args.steps, guidance=guidance,
                          temperature=temperature).clamp(-1, 1)  # (drawn, P)
            target = embed(audio[i:i + 1], synth.sample_rate)[0]  # (D,)
            if source == "model_by_embedding":  # --pool samples, nearest first in the bank's embedding (an oracle:
                # it renders them all), the first c kept
                params = params[(embed(synth.render(params), synth.sample_rate) - target).square().sum(1).argsort()[:c]]
            elif source == "model_by_surrogate":  # the same, ordered by the surrogate's predicted embedding
                assert surrogate is not None
                params = params[surrogate.order(params, target)[:c]]
        elif source == "random":  # the baseline both must beat: prior patches, ranked the same way
            params = torch.as_tensor(synth.params_at(RANDOM_BASELINE_SEED, np.arange(i * c, (i + 1) * c)))  # (c, P)
        else:
            assert bank is not None
            params = bank.params[bank.nearest(audio[i], synth.sample_rate, c)[0]]  # (c, P), nearest first
        ranked = rank(synth, params, audio[i].expand(len(params), -1), transpose=True)
        picks = [int(ranked.distance[:n].argmin()) for n in ns]  # the first by invert's ranking among the first n
        unique = sorted(set(picks))
        mss = mss_distance(ranked.audio[unique], audio[i].expand(len(unique), -1), synth.sample_rate)
        by_pick = dict(zip(unique, mss.tolist()))
        row = {"source": source, "sound": i, "mss": {str(n): by_pick[p] for n, p in zip(ns, picks)},
               "guidance": guidance if source.startswith("model") else None,
               "temperature": temperature if source.startswith("model") else None,
               "pool": ranker.pool if ranker else (args.pool or POOL) if source.startswith("model_by") else None,
               "cpu_seconds": round(time.process_time() - start, 2)}
        with (args.out / "rows.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
        print(f"{source} sound {i}: " + ", ".join(f"N={n} {row['mss'][str(n)]:.2f}" for n in ns), flush=True)
    return rows


def random_rows(args: argparse.Namespace) -> dict[int, dict]:
    """The random-patch baseline's rows, kept in a run of their own (it is cheap at small N only)."""
    path = args.random_rows
    if not path.exists():
        return {}
    return {r["sound"]: r for r in map(json.loads, path.read_text().splitlines()) if r["source"] == "random"}


SOURCE_NAMES = {
    "model": "flow samples",
    "model_by_embedding": "flow, --pool samples nearest first by their rendered embedding (renders all: an oracle)",
    "model_by_surrogate": "flow, --pool samples nearest first by the surrogate's predicted embedding",
    "model_ranked": "flow, the pool's samples snapped to the synth's grid and nearest first by the surrogate's "
                    "predicted embedding (synthinv.models.sampler.ranked_draw: the checkpoint's ranker and pool, else "
                    "--surrogate and --pool), as `invert` proposes them without a search",
}


def write_table(rows: list[dict], args: argparse.Namespace) -> str:
    from synthinv.evaluation import over_sounds_cell as cell
    from synthinv.tables import write_page

    by_source: dict[str, dict[int, dict]] = {}
    for r in rows:
        by_source.setdefault(r["source"], {})[r["sound"]] = r
    lookup = by_source.get("lookup", {})
    random = {**by_source.get("random", {}), **random_rows(args)}
    lines = [f"# Best of N: flow samples against the lookup ({args.checkpoint})", "",
             "| N | source | sounds | source best of N | lookup best of N | random patches, best of N | "
             "source - lookup, paired (dB) | source better on |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    all_ns = sorted({int(n) for r in rows for n in r["mss"]})
    for n in all_ns:
        for source in SOURCE_NAMES:
            model = {s: r for s, r in by_source.get(source, {}).items() if str(n) in r["mss"]}
            sounds = sorted(set(lookup) & set(model))
            if not sounds:
                continue
            m = torch.tensor([model[s]["mss"][str(n)] for s in sounds])
            b = torch.tensor([lookup[s]["mss"][str(n)] for s in sounds])
            d = m - b
            r = [random[s]["mss"].get(str(n)) for s in sounds if s in random]
            rand = cell(torch.tensor(r)) if len(r) == len(sounds) and None not in r else "-"
            lines.append(f"| {n} | {source} | {len(sounds)} | {cell(m)} | {cell(b)} | {rand} | {cell(d, signed=True)} | "
                         f"{int((d < 0).sum())} of {len(d)} |")
    model_rows = [r for source in SOURCE_NAMES for r in by_source.get(source, {}).values()]
    t = next((r["temperature"] for r in model_rows), None)
    g = next((r["guidance"] for r in model_rows), None)
    pools = sorted({r["pool"] for r in model_rows if r.get("pool")})
    sounds_of = (f"The files of {args.audio_dir} in name order, prepared as `synthinv invert` prepares a sound"
                 if args.audio_dir else f"The first sounds of {args.data}")
    lines += ["", f"{sounds_of} ('sounds' says how many); MSS in dB of each source's first "
              f"candidate by invert's ranking (each candidate also tried at the target's pitch), mean ± 95% interval "
              f"over sounds; paired: the per-sound difference, negative when the source's pick is closer. Sources: "
              + "; ".join(f"{k}: {v}" for k, v in SOURCE_NAMES.items()) + f". Flow: {args.steps} RK4 "
              f"steps, guidance {g}, temperature {t}{f', pool {pools}' if pools else ''}; lookup: the N nearest of {args.bank} rendered prior patches; "
              f"random patches: N prior patches per sound, ranked the same way (the rows of source random in "
              f"{args.out}/rows.jsonl or in {args.random_rows}, made with `--sources random`; '-' where N was not "
              f"run). "
              f"Nested: best of N is taken among the first N of the same draws for every N. Made by "
              f"`PYTHONPATH=src python scripts/best_of_n.py --checkpoint {args.checkpoint} "
              f"{f'--audio-dir {args.audio_dir}' if args.audio_dir else f'--data {args.data}'} --n {args.n} "
              f"--ns {','.join(map(str, all_ns))} --sources {','.join(s for s in ['lookup', *SOURCE_NAMES] if s in by_source)}` "
              f"(with --pool for the pooled sources; where parts were run apart, the notes below give each command); "
              f"rows in {args.out}/rows.jsonl.", ""]
    return write_page("\n".join(lines), args.out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=Path("src/synthinv/shipped/dexed-simple-flow-mlp.ckpt"))
    ap.add_argument("--data", type=Path, default=Path("data/dexed_simple_test"))
    ap.add_argument("--n", type=int, default=128, help="test sounds")
    ap.add_argument("--audio-dir", type=Path, default=None,
                    help="score the files of this folder (e.g. examples/ood), prepared as invert prepares them, "
                         "instead of --data")
    ap.add_argument("--ns", type=lambda s: [int(x) for x in s.split(",")], default=[8, 32, 128, 256, 512])
    ap.add_argument("--sources", default="model,lookup")
    ap.add_argument("--bank", type=int, default=8192)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=None,
                    help=f"pooled sources: samples drawn, put in order, the first N kept (default: model_ranked the "
                         f"checkpoint's ranker's pool, else {POOL})")
    ap.add_argument("--surrogate", type=Path, default=Path("runs/surrogate/dexed_simple.pt"),
                    help="model_by_surrogate: a scripts/train_surrogate.py output")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--part", type=lambda s: tuple(int(x) for x in s.split("/")), default=(0, 1),
                    help="K/M: only sounds i with i %% M == K (run M processes side by side on the same --out)")
    ap.add_argument("--out", type=Path, default=Path("results/dexed_simple_best_of_n"))
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--random-rows", type=Path, default=None,
                    help="rows of a --sources random run on the same sounds, shown as the random-patch column "
                         "(default: <out>_random/rows.jsonl)")
    args = ap.parse_args()
    args.random_rows = args.random_rows or args.out.with_name(args.out.name + "_random") / "rows.jsonl"
    args.part, args.parts = args.part
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "rows.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    if not args.table_only:
        sources = [s for s in args.sources.split(",") if s]
        with ProcessPoolExecutor(max(1, min(args.jobs, len(sources)))) as pool:
            futures = [pool.submit(run_source, s, args, {r["sound"] for r in rows if r["source"] == s}) for s in sources]
            for f in futures:
                rows += f.result()
    print(write_table(rows, args))


if __name__ == "__main__":
    main()
