"""Copy a trained run into the package as a shipped model, with a model card measured on the test split.

    python scripts/ship_model.py RUN_DIR NAME [--n 512] [--steps 100]

RUN_DIR holds model.ckpt (and train.json) from `synthinv train`. Writes src/synthinv/shipped/NAME.ckpt and
NAME.md. The card's first prose line is what `synthinv models` prints.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

import torch

from synthinv.checkpoint import load_checkpoint
from synthinv.evaluation import evaluate_model
from synthinv.zoo import SHIPPED_DIR


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("name")
    ap.add_argument("--n", type=int, default=512, help="test examples")
    ap.add_argument("--steps", type=int, default=100, help="RK4 steps at test time")
    ap.add_argument("--command", default="", help="the command that trained the run, for the card")
    args = ap.parse_args()

    ckpt = args.run_dir / "model.ckpt"
    model, synth, blob = load_checkpoint(ckpt)
    guidance = blob["config"]["sample"]["guidance"]
    metrics = evaluate_model(model, synth, n=args.n, steps=args.steps, guidance=guidance)
    meta, settings = blob["meta"], blob["synth"]
    task = "symmetry-broken (asym)" if settings.get("asym") else "symmetric"
    n_weights = sum(p.numel() for p in model.parameters())

    SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ckpt, SHIPPED_DIR / f"{args.name}.ckpt")
    card = f"""# {args.name}

k-osc (k={settings['k']}, {task}) {blob['config']['name']}: test LSD {metrics['lsd']:.2f} dB (random parameters {metrics['lsd_random']:.2f} dB).

- Synth: the k-oscillator synth, k={settings['k']}, {task}, {settings['length']} samples at {settings['sample_rate']} Hz; spec hash {blob['spec_hash']}.
- Model: {blob['config']['name']} ({n_weights:,} weights); config stored in the checkpoint.
- Data: generated on the fly, training seed {meta['seed']} (split seeds in `synthinv.evaluation` / `synthinv.training`).
- Training: {meta['steps']:,} steps at batch {blob['config']['train']['batch_size']} ({meta['steps'] * blob['config']['train']['batch_size']:,} examples) in {meta['train_seconds']:.0f} s with {meta['torch_threads']} torch thread(s), on {platform.machine()} CPU ({platform.processor() or 'unknown'}), torch {torch.__version__}; best validation LSD {meta['best_val_lsd']:.2f} dB.
- Trained by: `{args.command or 'see scripts/train_shipped_models.sh'}`

## Test split ({metrics['n']} examples, {metrics['sample_steps']} RK4 steps, guidance {metrics['guidance']})

| metric | value |
| --- | --- |
| LSD (dB) | {metrics['lsd']:.3f} |
| LSD of random parameters (dB) | {metrics['lsd_random']:.3f} |
| Chamfer (oscillator tokens) | {metrics['chamfer']:.4f} |
| assignment MSE | {metrics['assignment_mse']:.4f} |
| parameter MSE (order-sensitive) | {metrics['param_mse']:.4f} |
"""
    (SHIPPED_DIR / f"{args.name}.md").write_text(card)
    print(json.dumps(metrics, indent=2))
    print(f"shipped: {SHIPPED_DIR / (args.name + '.ckpt')} and {args.name}.md")


if __name__ == "__main__":
    main()
