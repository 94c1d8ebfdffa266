"""Trial: a k-osc flow with an MLP over the full-resolution log spectrum in place of the SpectrumCNN (whose
stride-4 stem and stride-2 stages coarsen frequency), trained and scored as `kosc_variant.py` does.

    PYTHONPATH=src python scripts/kosc_encoder_trial.py results/kosc_tune/flow_transformer_lr5e-3.yaml \
        --budget 4 --hidden 512 [--seed 0] [--out results/kosc_tune] [--runs runs/kosc_tune]

-> <out>/<config>_mlpenc<hidden>_s<seed>.json. Not a shipped encoder: the trial swaps the encoder of the model
the config builds (training and checkpoint loading alike), so its checkpoint loads only through this script.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

import synthinv.checkpoint as checkpoint
import synthinv.training as training
from synthinv.build import build_model
from synthinv.experiment import Method, run_method
from synthinv.features import encoder_input


class SpectrumMLP(nn.Module):
    """audio (N, T) -> log spectrum (N, T/2+1) -> two hidden layers -> (N, dim)."""

    def __init__(self, n_samples: int, hidden: int, dim: int):
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(n_samples // 2 + 1, hidden), nn.GELU(), nn.LayerNorm(hidden),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.net(encoder_input(audio))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", type=Path)
    ap.add_argument("--budget", type=float, required=True, help="training minutes (wall clock, as kosc_variant)")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("results/kosc_tune"))
    ap.add_argument("--runs", type=Path, default=Path("runs/kosc_tune"))
    ap.add_argument("--eval-examples", type=int, default=1024)
    args = ap.parse_args()

    def with_mlp_encoder(config, synth):
        model = build_model(config, synth)
        model.encoder = SpectrumMLP(synth.length, args.hidden, model.encoder.dim)
        return model

    training.build_model = with_mlp_encoder  # type: ignore[assignment]
    checkpoint.build_model = with_mlp_encoder  # type: ignore[assignment]
    torch.set_num_threads(1)
    name = f"{args.config.stem}_mlpenc{args.hidden}_s{args.seed}"
    row = run_method(Method(name, str(args.config), False), 4, args.budget, args.out, args.runs, args.seed,
                     args.eval_examples, 100, progress_bar=False)
    print(f"{name}: LSD {row['lsd']:.3f} ± {row['lsd_ci95']:.3f} (random {row['lsd_random']:.3f}), {row['steps']} steps")


if __name__ == "__main__":
    main()
