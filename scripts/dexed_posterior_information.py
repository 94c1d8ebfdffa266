"""How much a Dexed Simple model's sample says about the target's parameters, beside the lookup's nearest patch.

    PYTHONPATH=src python scripts/dexed_posterior_information.py CKPT [CKPT ...] [--n 512] [--bank 8192]
        [--data data/dexed_simple_test] [--out results/dexed_posterior_information]

Score per field group (the groups of dexed_error_breakdown.py), per sound: 1 - |x - truth|^2 / (2 Var), summed
over the group's encoded columns ([-1, 1]; one-hot blocks for categoricals), Var the test sounds' own variance
per column. A patch drawn from the prior regardless of the target scores 0 on average, the target itself 1.
Rows: each checkpoint's one sample as trained (temperature 1, guidance 1: the distribution it learned) and as
its config samples; the bank's nearest patch by embedding (what the lookup ranks first before rendering); a
random prior patch (evaluation's random baseline: the zero of the scale); and the target itself with noise
of a few hundredths on its parameters, overall and per group (how precise a patch must be to sound close). Beside each, that patch's MSS to the
target. Why: the lookup's patches sound closer than the model's samples although the model was trained on
parameters; this says whether sounding close goes with having the target's parameters on this synth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dexed_error_breakdown import group_columns
from raft_finetune import snapped
from synthinv.bank import embed, get_bank
from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.datasets import first_examples
from synthinv.evaluation import RANDOM_BASELINE_SEED, over_sounds_cell, sample_params
from synthinv.metrics import mss_distance
from synthinv.synths.base import Synth
from synthinv.tables import markdown_table, write_page

NOISE = (0.02, 0.05, 0.1)  # std of noise on every encoded column ([-1, 1]) of the target
GROUP_NOISE = 0.05


def encoded_groups(synth: Synth) -> dict[str, list[int]]:
    """Group label -> encoded column indices (a categorical's one-hot columns go with its field)."""
    slices = synth.spec.slices  # each parameter's encoded columns
    return {label: [j for i in params for j in range(slices[i].start, slices[i].stop)]
            for label, params in group_columns(synth.spec.names).items()}


def scores(x: torch.Tensor, truth: torch.Tensor, groups: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """x, truth (n, P) encoded -> {group: (n,) per-sound score}; 0 for an unrelated prior draw, 1 for the truth."""
    var = truth.var(dim=0)  # (P,)
    return {label: 1 - (x[:, cols] - truth[:, cols]).square().sum(1) / (2 * var[cols].sum()) for label, cols in groups.items()}


def row(name: str, x: torch.Tensor, truth: torch.Tensor, audio: torch.Tensor, synth: Synth,
        groups: dict[str, list[int]]) -> list[str]:
    per_group = scores(x, truth, groups)
    mss = mss_distance(synth.render(x), audio, synth.sample_rate)
    return [name, over_sounds_cell(mss)] + [f"{float(s.mean()):.2f}" for s in per_group.values()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--data", type=Path, default=Path("data/dexed_simple_test"))
    ap.add_argument("--n", type=int, default=512, help="test sounds")
    ap.add_argument("--bank", type=int, default=8192, help="rendered prior patches the lookup searches")
    ap.add_argument("--out", type=Path, default=Path("results/dexed_posterior_information"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for k, ckpt in enumerate(args.checkpoints):
        model, synth, blob = load_checkpoint(ckpt)
        if k == 0:
            truth, feats, audio, _ = first_examples(args.data, synth, args.n)
            groups = encoded_groups(synth)
            bank = get_bank(synth, args.bank)
            query = embed(audio, synth.sample_rate)  # (n, D)
            nearest = torch.stack([bank.params[bank.nearest_embedding(q, 1)[0][0]] for q in query])
            random = synth.params_at(RANDOM_BASELINE_SEED, np.arange(len(truth))).float()
        sampling = stored_config(blob, ckpt).sample
        for label, temperature, guidance in (("as trained (T 1, guidance 1)", 1.0, 1.0),
                                             (f"as sampled (T {sampling.temperature:g}, guidance {sampling.guidance:g})",
                                              sampling.temperature, sampling.guidance)):
            x = sample_params(model, feats, 50, guidance, seed=0, temperature=temperature).clamp(-1, 1)
            rows.append(row(f"{ckpt.parent.name}/{ckpt.name}: one sample, {label}", x, truth, audio, synth, groups))
    rows.append(row(f"lookup: nearest of {args.bank} bank patches by embedding", nearest, truth, audio, synth, groups))
    rows.append(row("random prior patch", random, truth, audio, synth, groups))
    gen = torch.Generator().manual_seed(0)
    for sigma in NOISE:
        noisy = snapped(synth, truth + sigma * torch.randn(truth.shape, generator=gen))
        rows.append(row(f"the target + N(0, {sigma:g}^2) on every column", noisy, truth, audio, synth, groups))
    one_group = []
    for label, cols in groups.items():
        noise = torch.zeros_like(truth)
        noise[:, cols] = GROUP_NOISE * torch.randn(len(truth), len(cols), generator=gen)
        mss = mss_distance(synth.render(snapped(synth, truth + noise)), audio, synth.sample_rate)
        one_group.append([label, over_sounds_cell(mss)])
    text = "\n".join([
        "# Dexed Simple: how much of the target's parameters a patch has, and how close it sounds", "",
        markdown_table(["patch", "MSS (dB)", *groups], rows), "",
        f"The first {len(truth)} sounds of {args.data}. Parameter score per field group: 1 - |x - truth|^2 / (2 Var) over "
        "the group's encoded columns, averaged over sounds: 0 for a prior patch drawn regardless of the target, 1 "
        "for the target's own values. MSS: that one patch against the target, mean ± 95% interval over sounds (dB). "
        "Samples: 50 RK4 steps, seed 0. Noisy targets: Gaussian noise added to the target's encoded columns, then "
        "clamped, decoded and encoded again (the patch the synth plays).", "",
        f"The target with noise on one field group only (N(0, {GROUP_NOISE:g}^2) on its encoded columns, then snapped to a "
        "patch): what imprecision in that group alone costs.", "",
        markdown_table(["noisy group", "MSS (dB)"], one_group), "",
        f"Made by `PYTHONPATH=src python scripts/dexed_posterior_information.py {' '.join(map(str, args.checkpoints))} "
        f"--n {args.n} --bank {args.bank}`.", ""])
    print(write_page(text, args.out))


if __name__ == "__main__":
    main()
