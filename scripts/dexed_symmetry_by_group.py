"""Does the methods' order on Dexed Simple depend on how much symmetry the target's algorithm has?

    PYTHONPATH=src python scripts/dexed_symmetry_by_group.py [--runs runs/dexed_simple_seeds] [--n 256]
        [--out results/dexed_symmetry_by_group.md]

The paper's case for equivariance (and against regression) rests on symmetries: equivalent answers that a
regressor averages and an equivariant flow samples. results/dexed_symmetry.json says, per DX7 algorithm, how
many operator permutations keep a prior patch's sound (scripts/dexed_symmetry.py). Here the first --n test
sounds of data/dexed_simple_test are split by their own algorithm's count (none: only the identity; some:
2-6; many: 8 or more), and every trained (method, seed) of --runs is scored on each group with one sample
per sound (evaluate's protocol: sampling seed 0, the run's guidance and temperature), beside random prior
patches and the 8-nearest bank lookup. If symmetry is what separates the methods, the flows' lead over
regression and Param2Tok's standing against the MLP flow should grow from "none" to "many".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

GROUPS = (("none (1)", 1, 1), ("some (2-6)", 2, 6), ("many (8+)", 8, 720))
METHODS = ("flow_param2tok", "flow_mlp", "regression_mse", "vae_realnvp")
SYNTH = "dexed_simple"


def per_sound_mss(run: Path, feats: torch.Tensor, audio: torch.Tensor, steps: int) -> torch.Tensor:
    """One sample per sound from the run's model.ckpt -> MSS (n,) against audio."""
    from synthinv.checkpoint import load_checkpoint, stored_config
    from synthinv.evaluation import mss_of, sample_params

    model, synth, blob = load_checkpoint(run / "model.ckpt", expect_synth={"name": SYNTH})
    how = stored_config(blob).sample
    params = sample_params(model, feats, steps, how.guidance, seed=0, temperature=how.temperature)
    return mss_of(synth, params, audio)


def cell(x: np.ndarray) -> str:
    return f"{x.mean():.2f} ± {1.96 * x.std(ddof=1) / np.sqrt(len(x)):.2f}" if len(x) > 1 else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=Path("runs/dexed_simple_seeds"))
    ap.add_argument("--data", type=Path, default=Path("data/dexed_simple_test"))
    ap.add_argument("--symmetry", type=Path, default=Path("results/dexed_symmetry.json"))
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50, help="RK4 steps per flow sample, as the experiment")
    ap.add_argument("--bank", type=int, default=8192)
    ap.add_argument("--out", type=Path, default=Path("results/dexed_symmetry_by_group.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    from synthinv import synths
    from synthinv.bank import get_bank
    from synthinv.datasets import SPLIT_SEEDS, first_examples
    from synthinv.evaluation import RANDOM_BASELINE_SEED, lookup_first_mss
    from synthinv.metrics import mss_distance
    from synthinv.synths.base import draw_examples

    synth = synths.get(SYNTH)
    params, feats, audio, _ = first_examples(args.data, synth, args.n)
    alg_slice = synth.spec.slices[synth.spec.names.index("global.algorithm")]
    algorithm = params[:, alg_slice].argmax(1).numpy() + 1  # (n,) 1-based
    kept = json.loads(args.symmetry.read_text())["permutations"]
    count = np.array([kept.get(str(a), 0) for a in algorithm])  # (n,) 0: algorithm not measured
    group = {name: (count >= lo) & (count <= hi) for name, lo, hi in GROUPS}

    scores: dict[str, list[np.ndarray]] = {}  # label -> per seed (n,)
    for method in METHODS:
        for run in sorted(args.runs.glob(f"{method}_s*")):
            if (run / "model.ckpt").exists():
                scores.setdefault(method, []).append(per_sound_mss(run, feats, audio, args.steps).numpy())
                print(f"scored {run.name}", flush=True)
    _, random_audio = draw_examples(synth, RANDOM_BASELINE_SEED, np.arange(args.n))  # evaluate's random patches
    random = mss_distance(random_audio, audio, synth.sample_rate).numpy()
    bank = get_bank(synth, args.bank, say=lambda s: None, show_progress=False, reserved=tuple(SPLIT_SEEDS.values()))
    lookup = lookup_first_mss(synth, audio, bank, 8).numpy()

    header = ["method (mean over seeds per sound)", "seeds", "all", *(f"{g} ({int(m.sum())} sounds)" for g, m in group.items())]
    rows = []
    for label, per_seed in [*scores.items(), ("random patch", [random]), ("lookup, best of 8 nearest", [lookup])]:
        x = np.mean(per_seed, axis=0)  # (n,)
        rows.append([label, len(per_seed), cell(x), *(cell(x[m]) for m in group.values())])
    paired = []
    for a, b in (("flow_param2tok", "flow_mlp"), ("regression_mse", "flow_mlp"), ("regression_mse", "flow_param2tok")):
        if a in scores and b in scores:
            d = np.mean(scores[a], axis=0) - np.mean(scores[b], axis=0)
            paired.append([f"{a} - {b}", cell(d), *(cell(d[m]) for m in group.values())])
    from synthinv.tables import markdown_table

    text = ["# Dexed Simple: the methods by how much symmetry the target's algorithm has", "",
            f"Made by `PYTHONPATH=src python scripts/dexed_symmetry_by_group.py --runs {args.runs} --n {args.n}` "
            f"({time.time() - start:.0f} s). MSS in dB of one sample per sound, mean ± 95% interval over sounds; a "
            "sound's value is the mean over the method's seeds. Groups: the count of operator permutations that keep "
            f"a prior patch's sound for the sound's algorithm ({args.symmetry}).", "",
            markdown_table(header, rows), "", "Paired differences (negative: the first is better):", "",
            markdown_table(["difference", "all", *group], paired)]
    args.out.write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
