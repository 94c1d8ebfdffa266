"""Why Param2Tok lags on k-osc: its grouping score over training, for a few changes to its training.

    PYTHONPATH=src python scripts/p2t_grouping.py --minutes 3 [--variants paper,lr_a10,...] [--plot-only]

Each variant trains the k-osc k=4 (sym) Param2Tok flow (configs/kosc/flow_param2tok.yaml with the
variant's change) for --minutes of training CPU time (this process's, one torch thread), logging A's grouping score
(synthinv.models.grouping) every --every steps, then scores the model like the k-osc table (LSD of one
sample on --eval test sounds, next to random parameters). The fixed-token transformer ("fixed") is the
reference the issue compares with. Rows go to results/p2t_grouping/<variant>.json (a finished variant is
skipped); the table to results/p2t_grouping.md, the curves to results/kosc_k4_p2t_grouping.png.

The loop is training.py's (InversionModule's batches, the loss + l1_weight * penalty, AdamW, lr_at's schedule, gradient clipping),
run by hand so A can be read between steps and given its own learning rate.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from synthinv import synths
from synthinv.build import build_model
from synthinv.config import load_config
from synthinv.evaluation import evaluate_model
from synthinv.fileio import write_json_atomic
from synthinv.models.grouping import column_groups, grouping_chance, grouping_score, groups_covered
from synthinv.tables import markdown_table
from synthinv.training import InversionModule, lr_at

# variant: (what changes, config model overrides, learning-rate multiplier of A)
VARIANTS: dict[str, tuple[str, dict, float]] = {
    "paper": ("configs/kosc/flow_param2tok.yaml as it is (4 tokens, l1 0.01, init noise 1e-4)", {}, 1.0),
    "lr_a10": ("A's learning rate x10", {}, 10.0),
    "l1_0": ("no sparsity penalty (l1_weight 0)", {"l1_weight": 0.0}, 1.0),
    "l1_0.1": ("sparsity penalty x10 (l1_weight 0.1)", {"l1_weight": 0.1}, 1.0),
    "tokens8": ("8 tokens instead of 4", {"n_tokens": 8}, 1.0),
    "noise1e-2": ("init noise 1e-2 instead of 1e-4", {"init_noise": 1e-2}, 1.0),
    "fixed": ("the fixed one-token-per-oscillator transformer (reference, no A)", {"tokeniser": "fixed"}, 1.0),
}
OUT = Path("results/p2t_grouping")


def run_variant(name: str, minutes: float, every: int, n_eval: int, seed: int) -> dict:
    what, overrides, lr_a = VARIANTS[name]
    synth = synths.get("kosc", k=4)
    config = load_config("flow_param2tok", "kosc")
    for key, value in overrides.items():
        setattr(config.model, key, value)
    torch.manual_seed(seed)
    model = build_model(config, synth)
    module = InversionModule(model, synth, config, seed)
    tokeniser = model.field.tokeniser
    assign = getattr(tokeniser, "assign", None)  # (n_tokens, 12) or None for the fixed tokeniser
    others = [p for p in model.parameters() if p is not assign]
    t = config.train
    groups_of = [{"params": others, "lr_mult": 1.0}] + ([{"params": [assign], "lr_mult": lr_a}] if assign is not None else [])
    opt = torch.optim.AdamW(groups_of, lr=t.lr, weight_decay=t.weight_decay)
    groups = column_groups(synth.spec)
    curve, step, spent, cpu0 = [], 0, 0.0, time.process_time()

    def log_score() -> None:
        if assign is not None:
            a = assign.detach()
            curve.append({"step": step, "seconds": round(spent, 1), "score": grouping_score(a, groups),
                          "covered": groups_covered(a, groups)})

    log_score()
    while spent < minutes * 60:
        start = time.process_time()
        lr = lr_at(spent / (minutes * 60), t.lr, t.warmup, t.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        params, audio = module.make_batch(step)  # (256, 12), (256, T)
        loss = model.loss(params, audio) + config.model.l1_weight * model.penalty()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        step += 1
        spent += time.process_time() - start
        if step % every == 0:
            log_score()
    log_score()
    metrics = evaluate_model(model.eval(), synth, n=n_eval, steps=50, guidance=config.sample.guidance)
    return {"variant": name, "what": what, "steps": step, "train_seconds": round(spent, 1),
            "cpu_minutes": round((time.process_time() - cpu0) / 60, 2), "lsd": metrics["lsd"],
            "lsd_ci95": metrics["lsd_ci95"], "lsd_random": metrics["lsd_random"],
            "chance": grouping_chance(groups), "final_score": curve[-1]["score"] if curve else None,
            "final_covered": curve[-1]["covered"] if curve else None, "curve": curve,
            "final_assign": assign.detach().abs().tolist() if assign is not None else None}


def write_outputs(minutes: float) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    rows.sort(key=lambda r: list(VARIANTS).index(r["variant"]) if r["variant"] in VARIANTS else 99)
    roles = [name.split(".", 1)[1] for name in synths.get("kosc", k=4).spec.names]  # freq, amp, wave per oscillator

    def by_role(r: dict) -> str:  # the same score with parameter types as the groups: does A group by type instead?
        return "-" if r["final_assign"] is None else f"{grouping_score(r['final_assign'], roles):.3f}"

    cells = [[r["variant"], r["what"], r["steps"], f"{r['lsd']:.2f} ± {r['lsd_ci95']:.2f}", f"{r['lsd_random']:.2f}",
              "-" if r["final_score"] is None else f"{r['final_score']:.3f}", "-" if r["final_covered"] is None else r["final_covered"],
              f"{r['chance']:.2f}", by_role(r), f"{grouping_chance(roles):.2f}"] for r in rows]
    md = ["# Param2Tok on k-osc k=4 (sym): does A group by oscillator?", "",
          markdown_table(["variant", "change", "steps", "LSD", "LSD random", "grouping score", "oscillators covered",
                          "chance", "score by parameter type", "chance by type"], cells), "",
          f"Each row: {minutes:g} CPU-minutes of training on one torch thread (2-core machine shared with other jobs), "
          "seed 0, batch 256. LSD in dB on the first 256 test sounds (one sample, 50 RK4 steps; lower is better). "
          "Grouping score: mass-weighted mean over tokens of the largest share of a token's |A| on one "
          "oscillator (synthinv.models.grouping): 1 = every token draws from one oscillator, chance = a uniform A. "
          "Oscillators covered: how many oscillators are some token's main one (of 4). Score by parameter type: the "
          "same score with freq / amp / wave as the groups (a token of one type across oscillators scores 1). Made by "
          "`PYTHONPATH=src python scripts/p2t_grouping.py`; curves in kosc_k4_p2t_grouping.png."]
    Path("results/p2t_grouping.md").write_text("\n".join(md) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        if r["curve"]:
            ax.plot([c["step"] for c in r["curve"]], [c["score"] for c in r["curve"]], label=r["variant"])
    if rows:
        ax.axhline(rows[0]["chance"], color="grey", ls="--", lw=0.8, label="chance (uniform A)")
    ax.set_xlabel("training step")
    ax.set_ylabel("grouping score of A")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Param2Tok on k-osc k=4 sym: grouping by oscillator ({minutes:g} min runs)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig("results/kosc_k4_p2t_grouping.png", dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--every", type=int, default=25, help="steps between grouping scores")
    ap.add_argument("--eval", type=int, default=256, help="test sounds for the LSD")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in [] if args.plot_only else args.variants.split(","):
        path = OUT / f"{name}.json"
        if path.exists():
            print(f"{name}: done, skipping")
            continue
        row = run_variant(name, args.minutes, args.every, args.eval, args.seed)
        write_json_atomic(path, row)
        print(f"{name}: {row['steps']} steps, LSD {row['lsd']:.2f} (random {row['lsd_random']:.2f}), grouping "
              f"{row['final_score']} (chance {row['chance']:.2f})", flush=True)
    write_outputs(args.minutes)


if __name__ == "__main__":
    main()
