"""The paper's k-oscillator experiment: ten methods, one budget each, one table, two pictures.

Each finished method leaves results/kosc_k<k>/<method>.json; a rerun skips those (resume), so the
experiment can be stopped at any point. Several processes can split the methods with disjoint
`--methods` lists (there is no locking: two processes given the same method would both train it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthinv import synths, tables
from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.config import load_config
from synthinv.errors import InputNotFoundError, UsageError
from synthinv.evaluation import evaluate_model
from synthinv.fileio import write_json_atomic
from synthinv.models.grouping import column_groups, model_grouping
from synthinv.training import Scale, train


@dataclass(frozen=True)
class Method:
    name: str  # e.g. "flow_transformer_asym"
    config: str  # shipped config name
    asym: bool


FAMILIES = ("regression_mse", "regression_chamfer", "regression_sort", "flow_mlp", "flow_transformer", "flow_param2tok")
ASYM_FAMILIES = ("regression_mse", "flow_mlp", "flow_transformer", "flow_param2tok")
METHODS = {m.name: m for m in [Method(f, f, False) for f in FAMILIES] + [Method(f + "_asym", f, True) for f in ASYM_FAMILIES]}

COLUMNS = ["method", "task", "lsd", "lsd_ci95", "lsd_random", "chamfer", "assignment_mse", "param_mse", "best_val_lsd",
           "steps", "train_seconds", "examples_per_second", "budget_minutes", "torch_threads"]


def select_methods(names: str | None) -> list[Method]:
    if not names:
        return list(METHODS.values())
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in METHODS]
    if unknown:
        raise UsageError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return [METHODS[n] for n in chosen]


def run_method(method: Method, k: int, budget_minutes: float, results_dir: Path, runs_dir: Path, seed: int,
               eval_examples: int, eval_steps: int, progress_bar: bool, cpu_clock: bool = False,
               precision: str = "32") -> dict:
    """Train, evaluate on the test split, and write results_dir/<method>.json. cpu_clock: the budget is this
    process's CPU time (training.train), not wall time. precision: "32" or "bf16-mixed" (training only; the
    evaluation runs in float32)."""
    config = load_config(method.config)
    synth = synths.get("kosc", k=k, asym=method.asym)
    run_dir = runs_dir / method.name
    meta = train(config, synth, run_dir, budget_minutes=budget_minutes, seed=seed, progress_bar=progress_bar,
                 cpu_clock=cpu_clock, scale=Scale(precision=precision))
    model, synth, _ = load_checkpoint(run_dir / "model.ckpt")
    metrics = evaluate_model(model, synth, n=eval_examples, steps=eval_steps, guidance=config.sample.guidance,
                             temperature=config.sample.temperature)
    row = {"method": method.name, "task": "asym" if method.asym else "sym", "k": k, **metrics,
           **{key: meta[key] for key in ("steps", "train_seconds", "examples_per_second", "best_val_lsd",
                                         "budget_minutes", "torch_threads", "history", "precision")},
           "checkpoint": str(run_dir / "model.ckpt")}
    grouping = model_grouping(model, synth)
    if grouping is not None:
        row["grouping"] = grouping
    write_json_atomic(results_dir / f"{method.name}.json", row)
    return row


def reevaluate_method(method: Method, results_dir: Path, runs_dir: Path, eval_examples: int, eval_steps: int) -> dict:
    """Score a finished method's checkpoint again (e.g. on more test examples); training figures are kept."""
    done = results_dir / f"{method.name}.json"
    ckpt = runs_dir / method.name / "model.ckpt"
    if not done.is_file() or not ckpt.is_file():
        raise InputNotFoundError(f"{method.name} has no finished run to re-evaluate ({done} and {ckpt} are needed)")
    model, synth, blob = load_checkpoint(ckpt)
    sampling = stored_config(blob, ckpt).sample
    metrics = evaluate_model(model, synth, n=eval_examples, steps=eval_steps, guidance=sampling.guidance,
                             temperature=sampling.temperature)
    row = {**json.loads(done.read_text()), **metrics}
    write_json_atomic(done, row)
    return row


def collect(results_dir: Path) -> list[dict]:
    rows = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    order = list(METHODS)
    return sorted(rows, key=lambda r: order.index(r["method"]) if r["method"] in order else len(order))


def write_tables(rows: list[dict], csv_path: Path, md_path: Path, title: str) -> None:
    csv_path.write_text(tables.csv_text(rows, COLUMNS, ignore_extra=True), newline="")

    def fmt(row: dict, col: str) -> str:
        value = row.get(col, "")
        if col in ("lsd", "lsd_random") and f"{col}_ci95" in row:
            return f"{value:.3f} ± {row[col + '_ci95']:.3f}"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    shown = ["method", "task", "lsd", "lsd_random", "chamfer", "assignment_mse", "param_mse", "steps", "train_seconds"]
    lines = [f"# {title}", "", tables.markdown_table(shown, [[fmt(r, c) for c in shown] for r in rows], compact_rule=True)]
    n = rows[0].get("n") if rows else None
    lines += ["", f"LSD in dB (lower is better), mean ± 95% interval over {n} test sounds; lsd_random: random",
              "parameters scored on the same sounds. param_mse is meaningful only on the asym task, where",
              "oscillator order is fixed. Flows are scored on one sample per sound."]
    md_path.write_text("\n".join(lines) + "\n")


def plot_lsd_bars(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["method"].removesuffix("_asym"), r["task"]): r for r in rows}
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.38
    for i, fam in enumerate(FAMILIES):
        for j, task in enumerate(("sym", "asym")):
            r = by.get((fam, task))
            if r:
                ax.bar(i + (j - 0.5) * width, r["lsd"], width, color=("tab:blue", "tab:orange")[j],
                       label=task if i == 0 or (task == "asym" and fam == "regression_mse") else None)
    randoms = [r["lsd_random"] for r in rows]
    if randoms:
        ax.axhline(sum(randoms) / len(randoms), color="k", ls="--", lw=1, label="random parameters")
    ax.set_xticks(range(len(FAMILIES)), [f.replace("_", "\n") for f in FAMILIES], fontsize=8)
    ax.set_ylabel("test LSD (dB)")
    lows = [r["lsd"] for r in rows]
    if lows:
        ax.set_ylim(min(lows) * 0.9, max(lows + randoms) * 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def grouping_cell(grouping: dict | None) -> str:
    """A table cell for model_grouping's result: "0.45 (chance 0.25)", or "-" for a model without one."""
    return "-" if not grouping else f"{grouping['score']:.2f} (chance {grouping['chance']:.2f})"


def assignment_group_shares(assign, spec) -> tuple[list[str], np.ndarray]:
    """|A| (n tokens, size) -> (group names in spec order, (n, groups) shares): each token's mean |A| over
    a group's columns, normalised so every row sums to 1. A uniform A gives 1 / groups everywhere; a
    token that has found an operator puts most of its share on that operator's group."""
    groups = column_groups(spec)
    names = list(dict.fromkeys(groups))
    a = np.abs(np.asarray(assign, dtype=np.float64))
    means = np.stack([a[:, [g == name for g in groups]].mean(axis=1) for name in names], axis=1)  # (n, G)
    return names, means / np.maximum(means.sum(axis=1, keepdims=True), 1e-12)


def plot_assignment(ckpt: Path, path: Path, title: str) -> bool:
    """Heat map of |A| (tokens x parameters) of any Param2Tok checkpoint; False if there is none (no file,
    or a model without a Param2Tok tokeniser).

    Synths made of equal parameter tokens with one column per parameter (k-osc): the plain heat map,
    parameter names on the x axis. Others (Dexed, with one-hot blocks): one label per encoded column
    (`spec.columns`), columns coloured and separated by group (op1..op6, global, note), tokens sorted by
    the group they weigh most, and a second panel with each token's share per group (`assignment_group_shares`) - does Param2Tok find the operators?"""
    ckpt = Path(ckpt)
    if not ckpt.is_file():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthinv.models.tokenisers import Param2Tok

    model, synth, _ = load_checkpoint(ckpt)
    tokeniser = getattr(getattr(model, "field", None), "tokeniser", None)
    if not isinstance(tokeniser, Param2Tok):
        return False
    assign = tokeniser.assign.detach().abs().numpy()  # (n, P)
    spec = synth.spec
    if synth.n_tokens is not None and spec.size == len(spec.names):
        fig, ax = plt.subplots(figsize=(1.2 + 0.35 * assign.shape[1], 1.2 + 0.35 * assign.shape[0]))
        im = ax.imshow(assign, cmap="viridis", aspect="auto")
        ax.set_xticks(range(assign.shape[1]), spec.names, rotation=90, fontsize=7)
        ax.set_ylabel("token")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, label="|A|")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return True
    _plot_grouped_assignment(plt, assign, spec, path, title)
    return True


def _plot_grouped_assignment(plt, assign, spec, path: Path, title: str) -> None:
    n, size = assign.shape
    groups = column_groups(spec)
    names, shares = assignment_group_shares(assign, spec)
    labels = spec.columns if spec.size != len(spec.names) else spec.names
    order = np.lexsort((-shares.max(axis=1), shares.argmax(axis=1)))  # tokens grouped by their main group
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(names)}
    width = max(8.0, 2.5 + 0.1 * size + 0.5 * len(names))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(width, 2.5 + 0.25 * n),
                                  gridspec_kw={"width_ratios": [size, max(6, 3 * len(names))]})
    im = ax.imshow(assign[order], cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_xticks(range(size), labels, rotation=90, fontsize=4 if size > 60 else 7)
    for tick, g in zip(ax.get_xticklabels(), groups):
        tick.set_color(colours[g])
    ax.set_yticks(range(n), [str(i) for i in order], fontsize=6)
    ax.set_ylabel("token (sorted by main group)")
    start = 0
    for g in names:
        stop = start + groups.count(g)
        if start:
            ax.axvline(start - 0.5, color="w", lw=0.8)
        ax.text((start + stop - 1) / 2, -0.8, g, ha="center", va="bottom", fontsize=7, color=colours[g])
        start = stop
    ax.set_title(title, fontsize=9, pad=14)
    fig.colorbar(im, ax=ax, label="|A|", fraction=0.02, pad=0.01)
    im2 = ax2.imshow(shares[order], cmap="magma", aspect="auto", vmin=0, interpolation="nearest")
    ax2.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    for tick, g in zip(ax2.get_xticklabels(), names):
        tick.set_color(colours[g])
    ax2.set_yticks(range(n), [str(i) for i in order], fontsize=6)
    ax2.set_title(f"share per group\n(uniform: {1 / len(names):.2f})", fontsize=8)
    fig.colorbar(im2, ax=ax2, fraction=0.05, pad=0.02)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def summarise(k: int, results_dir: Path, out_dir: Path, runs_dir: Path) -> list[Path]:
    """(Re)write the CSV, markdown table, LSD bar chart and Param2Tok pictures from finished methods."""
    rows = collect(results_dir)
    stem = out_dir / f"kosc_k{k}"
    title = f"k-osc, k={k}"
    write_tables(rows, stem.with_suffix(".csv"), stem.with_suffix(".md"), title)
    written = [stem.with_suffix(".csv"), stem.with_suffix(".md")]
    if rows:
        plot_lsd_bars(rows, Path(f"{stem}_lsd.png"), f"{title}: test LSD, symmetric vs asym task")
        written.append(Path(f"{stem}_lsd.png"))
    for task in ("", "_asym"):
        pic = Path(f"{stem}_param2tok{task}.png")
        if plot_assignment(runs_dir / f"flow_param2tok{task}" / "model.ckpt", pic,
                           f"Param2Tok |A|, k={k} {'asym' if task else 'sym'}"):
            written.append(pic)
    return written
