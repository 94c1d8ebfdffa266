"""Fine-tune a Dexed Simple flow on its own best-sounding samples (reward-ranked fine-tuning, "RAFT").

    PYTHONPATH=src python scripts/raft_finetune.py pairs    --base CKPT --run RUN [--sounds 4096] [--k 8]
    PYTHONPATH=src python scripts/raft_finetune.py finetune --base CKPT --run RUN [--minutes 4] [--lr 2e-4]

Why: on Dexed Simple a patch that sounds like the target need not have its parameters (the lookup's nearest
patch sounds 6 dB close with none of them: results/dexed_posterior_information.md), so a flow trained on
parameters alone spreads its samples over much of the prior. Here the flow is pulled towards what sounds right:
`pairs` samples k patches per training sound (as the config samples: its temperature and guidance), renders
them and keeps the one closest by MSS; `finetune` then trains on the training sounds with, per example, the
kept sample (--own-share of the examples, drawn from the sounds `pairs` did) or a true patch (drawn from the
whole training set), so the flow learns to give at once what its best of k gave.
Only training sounds are used. `pairs` is resumable (RUN/pairs.pt is saved every chunk); `finetune` writes
RUN/model.ckpt (the base's config and meta, steps added) and RUN/cpu_minutes.txt: the base's CPU minutes
(--base-cpu-minutes) plus both phases' own.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from synthinv.checkpoint import load_checkpoint, safe_load, save_checkpoint, stored_config
from synthinv.datasets import open_dataset
from synthinv.metrics import mss_distance
from synthinv.progress import progress_bar

CHUNK = 256  # training sounds per saved step of `pairs`


def load_sounds(data: Path, synth, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n training examples (None: all): (params (n, P), log-mels (n, mels, frames) float16, to fit
    a whole training set in RAM; the dB values lose < 0.1 dB)."""
    ds = open_dataset(data, synth, role="training", verify=True)
    rows = [ds[i] for i in range(len(ds) if n is None else min(n, len(ds)))]
    return torch.stack([r[0] for r in rows]), torch.stack([r[1].half() for r in rows])


def snapped(synth, params: torch.Tensor) -> torch.Tensor:
    """Samples (N, P) as the patches they render (ParamSpec.snap), float32."""
    return synth.spec.snap(params.float())


def train_step(model, opt: torch.optim.Optimizer, target: torch.Tensor, mels: torch.Tensor, grad_clip: float) -> float:
    """One step on the flow loss of targets (B, P) given log-mels (B, mels, frames), as training clips it; the loss."""
    loss = model.loss(target, mels)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss.item()


def make_pairs(args: argparse.Namespace) -> None:
    model, synth, blob = load_checkpoint(args.base)
    sampling = stored_config(blob, args.base).sample
    params, mels = load_sounds(args.data, synth, args.first + args.sounds)
    params, mels = params[args.first:], mels[args.first:]
    out = args.run / "pairs.pt"
    done = (safe_load(out, "pairs file") if out.exists()
            else {"first": args.first, "best": [], "mss": [], "true_mss": [], "cpu_seconds": 0.0})
    start_cpu, first = time.process_time(), sum(len(b) for b in done["best"])
    with progress_bar(len(params) - first, "pairs", unit="sounds") as advance:
        for lo in range(first, len(params), CHUNK):
            hi = min(lo + CHUNK, len(params))
            gen = torch.Generator().manual_seed(args.seed * 1_000_003 + args.first + lo)  # per chunk: a resumed run draws the same
            samples = snapped(synth, model.sample(mels[lo:hi].float(), repeats=args.k, generator=gen, steps=args.ode_steps,
                                                  guidance=sampling.guidance, temperature=sampling.temperature))  # (n k, P)
            target_audio = synth.render(params[lo:hi])  # (n, T)
            mss = mss_distance(synth.render(samples), target_audio.repeat_interleave(args.k, 0), synth.sample_rate)
            mss = mss.reshape(hi - lo, args.k)  # (n, k) dB
            closest, pick = mss.min(dim=1)  # (n,) each
            done["best"].append(samples.reshape(hi - lo, args.k, -1)[torch.arange(hi - lo), pick])
            done["mss"].append(closest)
            done["true_mss"].append(mss[:, 0])  # one sample, as the model gives it without a choice
            done["cpu_seconds"] += time.process_time() - start_cpu
            start_cpu = time.process_time()
            args.run.mkdir(parents=True, exist_ok=True)
            torch.save(done, out)
            advance(hi - lo)
    best, one = torch.cat(done["mss"]), torch.cat(done["true_mss"])
    print(f"{len(best)} training sounds: one sample {one.mean():.2f} dB, best of {args.k} {best.mean():.2f} dB; "
          f"{done['cpu_seconds'] / 60:.1f} CPU-minutes")


def finetune(args: argparse.Namespace) -> None:
    model, synth, blob = load_checkpoint(args.base)
    config = stored_config(blob, args.base)
    pairs = safe_load(args.run / "pairs.pt", "pairs file")
    best = torch.cat(pairs["best"])  # (n, P): the kept samples of training sounds first .. first + n - 1
    params, mels = load_sounds(args.data, synth)  # every training sound: the true patches keep their share
    first = pairs.get("first", 0)
    torch.manual_seed(args.seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=config.train.weight_decay)
    start, steps, losses = time.process_time(), 0, []
    while time.process_time() - start < args.minutes * 60:
        own = torch.rand(config.train.batch_size) < args.own_share  # (B,) examples trained on a kept sample
        kept = torch.randint(len(best), own.shape)  # (B,) rows of best
        idx = torch.where(own, first + kept, torch.randint(len(params), own.shape))  # (B,) training sounds
        target = torch.where(own[:, None], best[kept], params[idx])  # (B, P)
        loss = train_step(model, opt, target, mels[idx].float(), config.train.grad_clip)
        steps, losses = steps + 1, (losses + [loss])[-200:]
        if steps % 500 == 0:
            print(f"step {steps}: loss {sum(losses) / len(losses):.4f}", flush=True)
    model.eval()
    cpu = args.base_cpu_minutes + pairs["cpu_seconds"] / 60 + (time.process_time() - start) / 60
    meta = {**blob["meta"], "steps": blob["meta"]["steps"] + steps,
            "raft": {"base": str(args.base), "first": first, "sounds": len(best), "k": args.k, "own_share": args.own_share,
                     "lr": args.lr, "finetune_steps": steps, "cpu_minutes": round(cpu, 2)}}
    save_checkpoint(args.run / "model.ckpt", model, synth, config, meta)
    (args.run / "cpu_minutes.txt").write_text(f"{cpu:.3f}\n")
    print(f"{steps} fine-tuning steps; {cpu:.1f} CPU-minutes in all; wrote {args.run / 'model.ckpt'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=("pairs", "finetune"))
    ap.add_argument("--base", type=Path, default=Path("src/synthinv/shipped/dexed-simple-flow-mlp.ckpt"))
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path("data/dexed_simple_train"))
    ap.add_argument("--sounds", type=int, default=4096, help="training sounds to sample for")
    ap.add_argument("--first", type=int, default=0, help="the first of them (a second round takes fresh sounds)")
    ap.add_argument("--k", type=int, default=8, help="samples per training sound; the closest by MSS is kept")
    ap.add_argument("--ode-steps", type=int, default=10, help="RK4 steps per sample")
    ap.add_argument("--minutes", type=float, default=4.0, help="CPU minutes of fine-tuning")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--own-share", type=float, default=0.5, help="share of examples whose target is the kept sample")
    ap.add_argument("--base-cpu-minutes", type=float, default=12.1, help="the base run's training CPU minutes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    make_pairs(args) if args.phase == "pairs" else finetune(args)


if __name__ == "__main__":
    main()
