"""Param2Tok's grouping score over training, read from finished runs' checkpoints (issue #12 item 4).

    PYTHONPATH=src python scripts/grouping_curves.py RUN_DIR_OR_CKPT... --out results/x.png [--title T]

Every validation of a Param2Tok run records A's grouping score in the run's history (training.py,
BudgetAndValidation.validate); this prints a row per run (score at each validation, chance) and draws the
curves, one line per run, with the chance level of the synth's column groups dashed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthinv.checkpoint import read_checkpoint
from synthinv.models.grouping import column_groups, grouping_chance
from synthinv.synths.base import ParamSpec


def curve(path: Path) -> tuple[str, list[tuple[int, float]], float]:
    """-> (label, [(step, grouping score)], chance) of one run directory (its model.ckpt) or checkpoint."""
    ckpt = path / "model.ckpt" if path.is_dir() else path
    blob = read_checkpoint(ckpt)
    points = [(int(h["step"]), float(h["grouping"])) for h in blob["meta"]["history"] if "grouping" in h]
    if not points:
        raise SystemExit(f"{ckpt}: no grouping scores in its history (not a Param2Tok run, or one trained "
                         "before they were logged)")
    label = path.name if path.is_dir() else path.parent.name
    # the checkpoint's stored spec: no synth is built (a plugin synth need not be installed to read a history)
    return label, points, grouping_chance(column_groups(ParamSpec.from_dict(blob["spec"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the figure (.png)")
    parser.add_argument("--title", default="Param2Tok: grouping score of A over training")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    chances = set()
    for label, points, chance in map(curve, args.runs):
        steps, scores = zip(*points)
        ax.plot(steps, scores, marker="o", label=label)
        chances.add(round(chance, 4))
        print(f"{label}: " + ", ".join(f"{s} {g:.3f}" for s, g in points) + f" (chance {chance:.3f})")
    for chance in chances:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="training step", ylabel="grouping score (1: one group per token)", ylim=(0, 1))
    ax.set_title(args.title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
