"""Where a k-osc flow's LSD comes from: which parameter type's errors the distance is made of, and how close
the predicted frequencies are, by frequency band.

    PYTHONPATH=src python scripts/kosc_error_breakdown.py CKPT [CKPT ...] [--n 512] [--out results/kosc_error_breakdown.md]

Per checkpoint, one sample per validation sound (50 RK4 steps, the checkpoint's guidance and temperature); the
predicted oscillators are paired with the true ones (metrics.match_tokens). Then the LSD of hybrids: the truth
with one parameter type (freq, amp, wave) taken from the prediction, and the prediction with one type taken
from the truth; and the pitch error |12 log2(f_pred / f_true)| of every paired oscillator, by octave band of
f_true. The hand-written <out>_notes.md, if there is one, is appended.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.evaluation import RANDOM_BASELINE_SEED, VAL_SEED, lsd_of, sample_params, split_batch
from synthinv.metrics import match_tokens
from synthinv.synths.kosc import F_MAX, F_MIN, PARAMS_PER_OSC
from synthinv.tables import markdown_table, write_page

TYPES = ("freq", "amp", "wave")  # a k-osc token's parameters, in order
BANDS = np.geomspace(F_MIN, F_MAX, 8 + 1)  # 8 equal log-frequency bands over the synth's range


def breakdown(ckpt: Path, n: int) -> tuple[list[str], list[list[str]]]:
    """-> (one row of LSDs, rows of pitch error by band) for one checkpoint."""
    model, synth, blob = load_checkpoint(ckpt)
    sampling = stored_config(blob, ckpt).sample
    params, audio = split_batch(synth, VAL_SEED, n)  # (n, P), (n, T)
    pred = sample_params(model, audio, 50, sampling.guidance, seed=0, temperature=sampling.temperature)  # (n, P)
    true_tok = params.view(n, -1, PARAMS_PER_OSC)  # (n, k, 3)
    pred_tok = match_tokens(pred.view(n, -1, PARAMS_PER_OSC), true_tok)

    def lsd(tokens: torch.Tensor) -> str:
        return f"{lsd_of(synth, tokens.reshape(n, -1), audio).mean().item():.3f}"

    cells = [str(ckpt), lsd(pred_tok)]
    for j in range(len(TYPES)):
        truth_but_j, pred_but_j = true_tok.clone(), pred_tok.clone()
        truth_but_j[..., j], pred_but_j[..., j] = pred_tok[..., j], true_tok[..., j]
        cells += [lsd(truth_but_j), lsd(pred_but_j)]
    cells.append(f"{lsd_of(synth, synth.params_at(RANDOM_BASELINE_SEED, np.arange(n)), audio).mean().item():.3f}")

    decode = synth.spec.decode
    f_true = decode(params.float()).view(n, -1, PARAMS_PER_OSC)[..., 0]  # (n, k) Hz
    f_pred = decode(pred_tok.reshape(n, -1).clamp(-1, 1)).view(n, -1, PARAMS_PER_OSC)[..., 0]
    semitones = (12 * torch.log2(f_pred / f_true)).abs()
    bands = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:]):
        inside = (f_true >= lo) & (f_true < hi)
        err = semitones[inside]
        bands.append([ckpt.parent.name, f"{lo:.0f}-{hi:.0f}", int(inside.sum()), f"{err.median().item():.2f}",
                      f"{(err < 1).float().mean().item():.0%}"])
    return cells, bands


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--n", type=int, default=512, help="validation sounds")
    ap.add_argument("--out", type=Path, default=Path("results/kosc_error_breakdown"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows, bands = [], []
    for ckpt in args.checkpoints:
        row, band_rows = breakdown(ckpt, args.n)
        rows.append(row)
        bands += band_rows
    text = "\n".join([
        "# k-osc: which parameters the LSD is made of", "",
        markdown_table(["checkpoint", "LSD", *[f"{h} {t}" for t in TYPES for h in ("truth, predicted", "prediction, true")],
                        "random"], rows), "",
        f"LSD in dB on the first {args.n} validation sounds, one sample each. 'truth, predicted X': the true parameters "
        "with X taken from the (paired) prediction; 'prediction, true X': the prediction with X taken from the truth.", "",
        markdown_table(["run", "true frequency band (Hz)", "oscillators", "median pitch error (semitones)",
                        "within 1 semitone"], bands), "",
        "Pitch error of every paired oscillator, by its true frequency (the spectrum the encoder reads has bins "
        "43 Hz apart: 1024 samples at 44.1 kHz).", "",
        f"Made by `PYTHONPATH=src python scripts/kosc_error_breakdown.py {' '.join(map(str, args.checkpoints))} --n {args.n}`.", ""])
    print(write_page(text, args.out))


if __name__ == "__main__":
    main()
