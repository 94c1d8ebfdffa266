"""Where a Dexed Simple model's MSS comes from: which group of fields its one-sample errors cost most.

    PYTHONPATH=src python scripts/dexed_error_breakdown.py CKPT [CKPT ...] [--n 256] [--out results/dexed_error_breakdown.md]

Per checkpoint, one sample per test sound (data/dexed_simple_test, 50 RK4 steps, the checkpoint's guidance
and temperature). Then the MSS of hybrids, in native DX7 values: the truth with one group of fields taken
from the prediction ("truth, predicted G": what the model's error on G alone costs), and the prediction with
that group taken from the truth ("prediction, true G": what is left once G is right). Operators are not
paired: on Dexed an operator's place in the algorithm is part of what it does. The same for random prior
patches (the evaluation's random baseline) as the scale. The hand-written <out>_notes.md is appended.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.datasets import first_examples
from synthinv.evaluation import RANDOM_BASELINE_SEED, over_sounds_cell, sample_params
from synthinv.metrics import mss_distance
from synthinv.tables import markdown_table, write_page

OP_GROUPS = {
    "EG rates": ("eg_rate1", "eg_rate2", "eg_rate3", "eg_rate4"),
    "EG levels": ("eg_level1", "eg_level2", "eg_level3", "eg_level4"),
    "output levels": ("output_level",),
    "frequencies": ("osc_mode", "freq_coarse", "freq_fine"),
}
GLOBAL_GROUPS = {"algorithm": ("global.algorithm",), "feedback": ("global.feedback",), "note": ("note.midi",)}


def group_columns(names: list[str]) -> dict[str, list[int]]:
    """Group label -> column indices of the synth's native parameter vector."""
    groups = {label: [i for i, n in enumerate(names) if n.split(".", 1)[-1] in fields and n.startswith("op")]
              for label, fields in OP_GROUPS.items()}
    groups.update({label: [names.index(f) for f in fields] for label, fields in GLOBAL_GROUPS.items()})
    return groups


def breakdown(ckpt: Path, data: Path, n: int) -> list[list[str]]:
    """-> one table row per hybrid: [checkpoint, hybrid, MSS mean ± 95% over sounds]."""
    model, synth, blob = load_checkpoint(ckpt)
    sampling = stored_config(blob, ckpt).sample
    params, feats, audio, _ = first_examples(data, synth, n)
    pred = sample_params(model, feats, 50, sampling.guidance, seed=0, temperature=sampling.temperature)
    spec = synth.spec
    truth_native = spec.decode(params.double())  # (n, fields)
    pred_native = spec.decode(pred.clamp(-1, 1).double())
    random_native = spec.decode(synth.params_at(RANDOM_BASELINE_SEED, np.arange(n)).double())

    def mss(native: torch.Tensor) -> torch.Tensor:  # (n,) dB against the target sounds
        return mss_distance(synth.render(spec.encode(native).float()), audio, synth.sample_rate)

    rows = [[ckpt.parent.name, "prediction", over_sounds_cell(mss(pred_native))]]
    for label, cols in group_columns(spec.names).items():
        truth_but, pred_but = truth_native.clone(), pred_native.clone()
        truth_but[:, cols], pred_but[:, cols] = pred_native[:, cols], truth_native[:, cols]
        rows += [[ckpt.parent.name, f"truth, predicted {label}", over_sounds_cell(mss(truth_but))],
                 [ckpt.parent.name, f"prediction, true {label}", over_sounds_cell(mss(pred_but))]]
    rows.append([ckpt.parent.name, "random prior patch", over_sounds_cell(mss(random_native))])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--data", type=Path, default=Path("data/dexed_simple_test"))
    ap.add_argument("--n", type=int, default=256, help="test sounds")
    ap.add_argument("--out", type=Path, default=Path("results/dexed_error_breakdown"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [row for ckpt in args.checkpoints for row in breakdown(ckpt, args.data, args.n)]
    text = "\n".join([
        "# Dexed Simple: which fields a model's MSS is made of", "",
        markdown_table(["checkpoint", "parameters rendered", "MSS (dB)"], rows), "",
        f"MSS in dB against the first {args.n} sounds of {args.data}, mean ± 95% interval over sounds, one sample "
        "each. 'truth, predicted G': the true patch with the fields of G taken from the prediction; 'prediction, "
        "true G': the prediction with G taken from the truth. Operator groups take that field of all six operators.",
        "", f"Made by `PYTHONPATH=src python scripts/dexed_error_breakdown.py {' '.join(map(str, args.checkpoints))} "
        f"--n {args.n}`.", ""])
    print(write_page(text, args.out))


if __name__ == "__main__":
    main()
