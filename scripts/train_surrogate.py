"""Train a SoundSurrogate (synthinv.models.surrogate): a patch's bank embedding predicted from its parameters.

    PYTHONPATH=src python scripts/train_surrogate.py [--synth dexed_simple] [--n 65536] [--minutes 10] \
        [--out runs/surrogate/dexed_simple.pt]

Training data: a bank of --n rendered prior patches with a seed of its own (SURROGATE_SEED, built once with
synthinv.bank.build_bank and cached beside the lookup's bank; 2 render workers). Held out: the first 2,048
patches of the lookup's own bank (BANK_SEED, 8,192). The budget is the process's CPU time on one torch thread.
Prints the held-out error and how well the predicted embedding orders patches: for each of 256 held-out
targets, the other 2,047 held-out patches ordered by predicted distance, and how often the true nearest one is
in the first 8 / 32 (chance 0.4% / 1.6%), and the Spearman correlation of predicted and true distances.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from synthinv import synths
from synthinv.bank import BANK_SEED, build_bank, load_bank
from synthinv.models.surrogate import EMBED_SCALE, SoundSurrogate

SURROGATE_SEED = 6_000_011  # a split of its own: not a training, validation, test, baseline or bank seed


def order_quality(pred: torch.Tensor, true: torch.Tensor, targets: int = 256) -> dict:
    """pred, true (n, D) embeddings of the same patches -> how well predicted distances order them."""
    hits8 = hits32 = 0
    rhos = []
    for j in range(targets):
        d_true = (true - true[j]).square().sum(1)  # (n,) true distances from target j
        d_pred = (pred - true[j]).square().sum(1)  # predicted embeddings against the target's true one
        d_true[j] = d_pred[j] = float("inf")  # the target itself is not a candidate
        nearest = int(d_true.argmin())
        order = d_pred.argsort()
        hits8 += int(nearest in order[:8].tolist())
        hits32 += int(nearest in order[:32].tolist())
        keep = torch.isfinite(d_true)
        rt, rp = d_true[keep].argsort().argsort().float(), d_pred[keep].argsort().argsort().float()
        rhos.append(torch.corrcoef(torch.stack([rt, rp]))[0, 1].item())
    return {"true_nearest_in_first_8": hits8 / targets, "true_nearest_in_first_32": hits32 / targets,
            "spearman": sum(rhos) / len(rhos)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", default="dexed_simple")
    ap.add_argument("--n", type=int, default=65536, help="training patches (a bank of their own)")
    ap.add_argument("--minutes", type=float, default=10.0, help="CPU minutes of training")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--fourier", type=int, default=0, help="sin/cos input features per parameter at this many octaves")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the budget counts the CPU time of all)")
    ap.add_argument("--workers", type=int, default=2, help="render workers for the training bank")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(f"runs/surrogate/{args.synth}.pt")
    synth = synths.get(args.synth)
    train = load_bank(build_bank(synth, args.n, SURROGATE_SEED, workers=args.workers), synth)
    held = load_bank(build_bank(synth, 8192, BANK_SEED, workers=args.workers), synth)
    hx, hy = held.params[:2048], held.embedding[:2048]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SoundSurrogate(synth.spec.size, train.embedding.shape[1], args.width, args.layers, args.fourier)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    budget, start, step = args.minutes * 60, time.process_time(), 0
    x, y = train.params, train.embedding / EMBED_SCALE  # (n, P), (n, D) in [-1, 0]
    while (spent := time.process_time() - start) < budget:
        lr = args.lr * 0.5 * (1 + torch.cos(torch.tensor(spent / budget * torch.pi)).item())  # cosine to 0
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(x), (args.batch,))
        loss = (model(x[idx]) / EMBED_SCALE - y[idx]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 500 == 0:
            with torch.no_grad():
                held_rmse = (model(hx) - hy).square().mean().sqrt().item()
            print(f"step {step} ({spent / 60:.1f} CPU min): train loss {loss.item():.5f}, held-out RMSE {held_rmse:.2f} dB",
                  flush=True)
    model.eval()
    with torch.no_grad():
        pred = model(hx)
    quality = {"held_out_rmse_db": (pred - hy).square().mean().sqrt().item(),
               "held_out_rmse_db_of_the_mean": (hy.mean(0) - hy).square().mean().sqrt().item(),
               **order_quality(pred, hy)}
    meta = {"synth": args.synth, "spec_hash": synth.spec.hash(), "train_patches": args.n, "seed": SURROGATE_SEED,
            "steps": step, "cpu_minutes": args.minutes, "batch": args.batch, "lr": args.lr, **quality}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "settings": model.settings(), "meta": json.dumps(meta)}, out)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
