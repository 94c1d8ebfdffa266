"""Copy a trained run into the package as a shipped model, with a model card measured on the test split.

    python scripts/ship_model.py RUN_DIR NAME [--n 512] [--steps 100] [--test-data data/dexed_test] \
        [--ranker SURROGATE --pool 512]

RUN_DIR holds model.ckpt (and train.json) from `synthinv train`. Writes src/synthinv/shipped/NAME.ckpt and
NAME.md. The card's first prose line is what `synthinv models` prints. --ranker: a scripts/train_surrogate.py
output stored in the shipped checkpoint as its ranker (scripts/attach_ranker.py); the card measures the model
with it.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

import torch

from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.evaluation import evaluate_model
from synthinv.models.surrogate import ranker_from_checkpoint
from synthinv.tables import markdown_table
from synthinv.zoo import SHIPPED_DIR


def training_line(blob: dict, metric: str) -> str:
    meta, batch = blob["meta"], stored_config(blob).train.batch_size
    return (f"{meta['steps']:,} steps at batch {batch} ({meta['steps'] * batch:,} examples) in {meta['train_seconds']:.0f} s "
            f"with {meta['torch_threads']} torch thread(s), on {platform.machine()} CPU ({platform.processor() or 'unknown'}), "
            f"torch {torch.__version__}; best validation {metric.upper()} {meta[f'best_val_{metric}']:.2f} dB")


def kosc_card(args, blob: dict, metrics: dict, n_weights: int) -> str:
    meta, settings = blob["meta"], blob["synth"]
    task = "symmetry-broken (asym)" if settings.get("asym") else "symmetric"
    table = markdown_table(["metric", "value"], [
        ["LSD (dB)", f"{metrics['lsd']:.3f}"],
        ["LSD of random parameters (dB)", f"{metrics['lsd_random']:.3f}"],
        ["Chamfer (oscillator tokens)", f"{metrics['chamfer']:.4f}"],
        ["assignment MSE", f"{metrics['assignment_mse']:.4f}"],
        ["parameter MSE (order-sensitive)", f"{metrics['param_mse']:.4f}"],
    ])
    return f"""# {args.name}

k-osc (k={settings['k']}, {task}) {blob['config']['name']}: test LSD {metrics['lsd']:.2f} dB (random parameters {metrics['lsd_random']:.2f} dB).

- Synth: the k-oscillator synth, k={settings['k']}, {task}, {settings['length']} samples at {settings['sample_rate']} Hz; spec hash {blob['spec_hash']}.
- Model: {blob['config']['name']} ({n_weights:,} weights); config stored in the checkpoint.
- Data: generated on the fly, training seed {meta['seed']} (split seeds in `synthinv.evaluation` / `synthinv.training`).
- Training: {training_line(blob, 'lsd')}.
- Trained by: `{args.command or 'see scripts/train_shipped_models.sh'}`

## Test split ({metrics['n']} examples, {metrics['sample_steps']} RK4 steps, guidance {metrics['guidance']})

{table}
"""


def share(value: float | None) -> str:
    """A share as a percentage, or "none" where no sound had what it counts (e.g. no one-sample f0 at all)."""
    return "none" if value is None else f"{value:.0%}"


def ranker_line(blob: dict) -> str:
    """The card's bullet on a shipped ranker (scripts/attach_ranker.py), or "" for a checkpoint without one."""
    if "ranker" not in blob:
        return ""
    ranker, meta = blob["ranker"], json.loads(blob["ranker"]["meta"])
    weights = sum(v.numel() for v in ranker["state_dict"].values())
    return (f"\n- Ranker: a sound surrogate (synthinv.models.surrogate, {weights:,} weights) that predicts a patch's bank "
            f"embedding from its parameters, trained on {meta['train_patches']:,} rendered prior patches for "
            f"{meta['steps']:,} steps ({meta['cpu_minutes']:g} CPU-minutes; held-out RMSE {meta['held_out_rmse_db']:.1f} dB "
            f"against {meta['held_out_rmse_db_of_the_mean']:.1f} for the mean). Best of N draws {ranker['pool']} "
            f"samples per sound and proposes the N nearest by predicted sound (invert without a search, evaluate's "
            f"best of N); one sample alone is a plain sample.")


def dexed_card(args, blob: dict, metrics: dict, n_weights: int) -> str:
    meta, settings, data = blob["meta"], blob["synth"], blob["meta"]["data"]
    best = metrics.get("mss_best_of")
    moved = " (each also tried at the target's pitch, as invert does)" if metrics.get("transpose") else ""
    pool = metrics.get("ranker_pool")
    which = f"samples, the nearest by predicted sound among {pool} (the shipped ranker)" if pool else "samples"
    best_rows = [[f"MSS, best of {metrics['candidates']} {which}{moved}: the one `invert` ranks first",
                  f"{best:.3f} ± {metrics['mss_best_of_ci95']:.3f}"]] if best is not None else []
    within = metrics.get("f0_cents_best_of_within_50")
    if within is not None:
        best_rows.append(["f0 within 50 cents of the target's, for what `invert` ranks first",
                          f"{within:.0%} of {metrics['f0_cents_best_of_n']} sounds with a pitch (one sample: "
                          f"{share(metrics.get('f0_cents_within_50'))})"])
    table = markdown_table(["metric", "value"], [
        ["MSS, one sample per sound (dB)", f"{metrics['mss']:.3f} ± {metrics['mss_ci95']:.3f}"],
        *best_rows,
        ["MSS of random patches (dB)", f"{metrics['mss_random']:.3f} ± {metrics['mss_random_ci95']:.3f}"],
        *([[f"MSS of the lookup: the {metrics['candidates']} nearest of {metrics['bank']:,} rendered prior patches, "
            "ranked as invert ranks (dB)", f"{metrics['retrieval_mss']:.3f} ± {metrics['retrieval_mss_ci95']:.3f}"]]
          if "retrieval_mss" in metrics else []),
        ["parameter MSE (random patches)", f"{metrics['param_mse']:.4f} ({metrics['param_mse_random']:.4f})"],
        ["categorical accuracy (random patches)",
         f"{metrics['categorical_accuracy']:.3f} ({metrics['categorical_accuracy_random']:.3f})"],
    ])
    lookup = f", the bank lookup's best of {metrics['candidates']} {metrics['retrieval_mss']:.2f} dB" if "retrieval_mss" in metrics else ""
    headline = f"best of {metrics['candidates']} {best:.2f} dB, " if best is not None else ""
    title = "Dexed Simple (a DX7 subset, synths/dexed_simple.py)" if blob["synth"]["name"] == "dexed_simple" else "Dexed (DX7)"
    return f"""# {args.name}

{title} {blob['config']['name']}: test MSS {headline}one sample {metrics['mss']:.2f} dB (random patches {metrics['mss_random']:.2f} dB{lookup}).

- Synth: Dexed via dexed-py, {settings['note_duration']} s held + {settings['release']} s release at velocity {settings['velocity']}, MIDI notes {settings['min_note']}-{settings['max_note']}, {settings['sample_rate']} Hz; spec hash {blob['spec_hash']}.
- Model: {blob['config']['name']} ({n_weights:,} weights), MelCNN encoder on a 128-band log-mel; config stored in the checkpoint.
- Data: {data['examples']:,} patches from the patch prior (`synthinv generate --synth {blob['synth']['name']} --seed {data['seed']}`), validation {meta.get('val_data')}.
- Training: {training_line(blob, 'mss')}.
- Trained by: `{args.command or 'see scripts/train_shipped_models.sh'}`{ranker_line(blob)}

## Test set ({metrics['n']} examples of {metrics['test'].get('data', 'drawn')}, seed {metrics['test']['seed']}; {metrics['sample_steps']} RK4 steps, guidance {metrics['guidance']}, temperature {metrics['temperature']:g})

MSS: the multi-scale log-mel distance in dB (lower is better); random patches are drawn from the same prior.

{table}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("name")
    ap.add_argument("--n", type=int, default=512, help="test examples")
    ap.add_argument("--steps", type=int, default=100, help="RK4 steps at test time")
    ap.add_argument("--command", default="", help="the command that trained the run, for the card")
    ap.add_argument("--test-data", type=Path, default=Path("data/dexed_test"), help="Dexed: the test dataset")
    ap.add_argument("--candidates", type=int, default=8, help="Dexed: best-of-N scoring (1: off)")
    ap.add_argument("--bank", type=int, default=8192, help="Dexed: rendered prior patches of the lookup baseline")
    ap.add_argument("--ranker", type=Path, default=None, help="a scripts/train_surrogate.py output to ship as the ranker")
    ap.add_argument("--pool", type=int, default=512, help="--ranker: samples drawn per sound, the best N proposed")
    args = ap.parse_args()

    shipped = SHIPPED_DIR / f"{args.name}.ckpt"
    SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    if args.ranker is not None:
        from attach_ranker import attach

        attach(args.run_dir / "model.ckpt", args.ranker, args.pool, shipped)
    else:
        shutil.copyfile(args.run_dir / "model.ckpt", shipped)
    ckpt = shipped  # measured as shipped
    model, synth, blob = load_checkpoint(ckpt)
    ranker = ranker_from_checkpoint(blob, synth, str(ckpt))
    sampling = stored_config(blob, ckpt).sample  # the card measures the model as evaluate and invert sample it
    data_dir = args.test_data if synth.trains_from_data else None
    train_seed = (blob["meta"].get("data") or {}).get("seed")
    metrics = evaluate_model(model, synth, n=args.n, steps=args.steps, guidance=sampling.guidance,
                             temperature=sampling.temperature, data_dir=data_dir,
                             train_seed=train_seed, candidates=args.candidates if data_dir else 1, ranker=ranker)
    if data_dir and args.candidates > 1:  # the baseline a best of N must beat: the N nearest bank patches
        from synthinv.bank import get_bank
        from synthinv.datasets import SPLIT_SEEDS, first_examples
        from synthinv.evaluation import lookup_best_of

        audio = first_examples(data_dir, synth, args.n)[2]
        bank = get_bank(synth, args.bank, reserved=tuple(SPLIT_SEEDS.values()), show_progress=False)
        metrics |= {**lookup_best_of(synth, audio, bank, args.candidates), "bank": args.bank}
    n_weights = sum(p.numel() for p in model.parameters())
    card = (dexed_card if synth.trains_from_data else kosc_card)(args, blob, metrics, n_weights)
    (SHIPPED_DIR / f"{args.name}.md").write_text(card)
    print(json.dumps(metrics, indent=2))
    print(f"shipped: {SHIPPED_DIR / (args.name + '.ckpt')} and {args.name}.md")


if __name__ == "__main__":
    main()
