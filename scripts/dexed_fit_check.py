"""Can a Dexed Simple flow fit a few training sounds? Train on n of them only and score its samples on them.

    PYTHONPATH=src python scripts/dexed_fit_check.py [CKPT] [--sounds 512] [--minutes 3] [--lr 1e-3]
        [--out results/dexed_fit_check]

From CKPT (default: the shipped dexed-simple-flow-mlp), training continues on the first --sounds training sounds
alone (their true patches, batch and loss as in training, AdamW at --lr) for --minutes of CPU time; every 1,000
steps, one sample (the config's temperature and guidance, 25 RK4 steps) for each of the first 256 of them is
rendered and scored by MSS against its sound. A model that can fit what it was shown drives that towards 0 dB;
one that cannot stays near where it started. Why: fine-tuning on the flow's own best samples
(scripts/raft_finetune.py) did not move its samples even on the sounds it was tuned on.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from raft_finetune import load_sounds, snapped, train_step
from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.evaluation import over_sounds_cell
from synthinv.metrics import mss_distance
from synthinv.tables import markdown_table, write_page

SCORED = 256  # sounds sampled at each check


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, nargs="?", default=Path("src/synthinv/shipped/dexed-simple-flow-mlp.ckpt"))
    ap.add_argument("--data", type=Path, default=Path("data/dexed_simple_train"))
    ap.add_argument("--sounds", type=int, default=512)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", type=Path, default=Path("results/dexed_fit_check"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, synth, blob = load_checkpoint(args.checkpoint)
    config = stored_config(blob, args.checkpoint)
    params, mels = load_sounds(args.data, synth, args.sounds)
    audio = synth.render(params[:SCORED])  # (SCORED, T)

    def check(step: int, loss: float | None) -> list[str]:
        model.eval()
        gen = torch.Generator().manual_seed(123)
        x = model.sample(mels[:SCORED].float(), generator=gen, steps=25, guidance=config.sample.guidance,
                         temperature=config.sample.temperature)
        model.train()
        mss = mss_distance(synth.render(snapped(synth, x)), audio, synth.sample_rate)
        print(f"step {step}: loss {loss if loss is not None else float('nan'):.4f}, one sample {mss.mean():.2f} dB", flush=True)
        return [f"{step:,}", "-" if loss is None else f"{loss:.3f}", over_sounds_cell(mss)]

    rows = [check(0, None)]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=config.train.weight_decay)
    model.train()
    start, step, recent = time.process_time(), 0, []
    while time.process_time() - start < args.minutes * 60:
        idx = torch.randint(len(params), (config.train.batch_size,))
        loss = train_step(model, opt, params[idx], mels[idx].float(), config.train.grad_clip)
        step, recent = step + 1, (recent + [loss])[-200:]
        if step % 1000 == 0:
            rows.append(check(step, sum(recent) / len(recent)))
    rows.append(check(step, sum(recent) / len(recent)))
    epochs = step * config.train.batch_size / len(params)
    text = "\n".join([
        "# Can the Dexed Simple flow fit the sounds it is shown?", "",
        markdown_table(["steps on these sounds", "training loss (last 200 steps)", "MSS one sample (dB)"], rows), "",
        f"From {args.checkpoint}, trained further on the first {len(params)} sounds of {args.data} alone ({step:,} steps at "
        f"batch {config.train.batch_size}: {epochs:.0f} passes over them, lr {args.lr:g}, {args.minutes:g} CPU-minutes); "
        f"MSS of one sample (temperature {config.sample.temperature:g}, guidance {config.sample.guidance:g}, 25 RK4 steps) "
        f"for each of the first {SCORED} of them, mean ± 95% interval over the sounds.", "",
        f"Made by `PYTHONPATH=src python scripts/dexed_fit_check.py {args.checkpoint} --sounds {args.sounds} "
        f"--minutes {args.minutes:g} --lr {args.lr:g}`.", ""])
    print(write_page(text, args.out))


if __name__ == "__main__":
    main()
