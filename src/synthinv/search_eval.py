"""What `invert` returns first, measured per method and time budget on a set of sounds.

Methods (each ranks by invert's ranking distance, tries its closest proposals at the target's pitch, and
matches levels where the synth can):
    random           best of RANDOM_N prior patches (a different set per sound)
    retrieval        the bank's BANK_N nearest patches (the lookup baseline)
    model            MODEL_N model samples
    model+retrieval  both, no search
    default          what `invert --budget S` does: both, then CMA-ES on real renders for S seconds
    default-mss-only the same without the pitch penalty (the search minimises MSS only)
    default-no-level the same without the level penalty (search.LevelPenalty)
    default-stride-2 the same, its search scoring by MSS on every 2nd spectrogram frame (half the scoring work)

Rows (one per sound and method) go to a JSONL file as they are made, so a long run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthinv import tables
from synthinv.errors import UsageError
from synthinv.evaluation import mean_and_ci95
from synthinv.metrics import level_db
from synthinv.pipeline import PROPOSAL_STEPS
from synthinv.pitch import IN_TUNE_CENTS

MODEL_N, BANK_N = 64, 32
RANDOM_N = MODEL_N + BANK_N  # as many patches as the model + retrieval proposals
METHODS: dict[str, dict[str, Any]] = {
    "random": {"sources": ("random",), "counts": {"random": RANDOM_N}},
    "retrieval": {"sources": ("bank",), "counts": {"bank": BANK_N}},
    "model": {"sources": ("model",), "counts": {"model": MODEL_N}},
    "model+retrieval": {"sources": ("model", "bank"), "counts": {"model": MODEL_N, "bank": BANK_N}},
    "default": {"sources": None, "counts": None},
    "default-mss-only": {"sources": None, "counts": None, "pitch_penalty": 0.0},
    "default-no-level": {"sources": None, "counts": None, "level_penalty": False},
    "default-stride-2": {"sources": None, "counts": None, "search_frame_stride": 2},
}
COLUMNS = ("method", "budget_s", "set", "n", "mss", "mss_ci95", "wmfcc", "f0_within_50c", "pitched", "level_db_abs",
           "level_within_3db", "seconds_per_sound")
LEVEL_TOLERANCE_DB = 3.0  # issue 10's target: the first candidate plays within 3 dB of the target's level


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by an interrupted run: that sound is simply redone
            continue
    return rows


def run_methods(inverter, set_name: str, sounds: list[tuple[str, object]], plan: list[tuple[str, float]],
                rows_path: Path, candidates: int = 8, seed: int = 0, progress=None, tag: str = "") -> list[dict]:
    """Invert every sound with every (method, budget) of `plan`, appending one row per result to rows_path
    (skipping those already there with the same `tag`, which names what else must match: model, data,
    seed). sounds: (name, path or audio (T,)). -> the rows of this set, tag and sounds."""
    from synthinv.metrics import f0_cents_between, f0_tracks, mfcc_distance
    from synthinv.pitch import steady_pitch

    rows_path.parent.mkdir(parents=True, exist_ok=True)
    names = {name for name, _ in sounds}
    mine = [r for r in read_rows(rows_path) if r.get("tag", "") == tag and r["set"] == set_name and r["sound"] in names]
    done = {(r["set"], r["method"], float(r["budget_s"]), r["sound"]) for r in mine}
    synth = inverter.synth
    target_f0: dict[str, np.ndarray] = {}
    unknown = [method for method, _ in plan if method not in METHODS]
    if unknown:
        raise UsageError(f"unknown method {unknown[0]!r}; use one of {', '.join(METHODS)}")
    # sound by sound, every method in turn: budgets are wall-clock, so methods compared on one sound run
    # back to back under the same machine load
    for i, (name, sound) in enumerate(sounds):
        for method, budget in plan:
            if (set_name, method, float(budget), name) in done:
                continue
            how = METHODS[method]
            start = time.perf_counter()
            result = inverter.invert(sound, candidates=candidates, budget=budget, steps=PROPOSAL_STEPS, seed=seed,
                                     sources=how["sources"], counts=how["counts"], random_offset=i * RANDOM_N,
                                     **{k: v for k, v in how.items() if k not in ("sources", "counts")})
            seconds = time.perf_counter() - start
            if result.settings.get("interrupted"):  # Ctrl-C: a cut-short search is not a measurement
                raise KeyboardInterrupt
            first, target = result.candidates[0], result.target.audio
            if name not in target_f0:
                target_f0[name] = f0_tracks(target[None], synth.sample_rate)
            cents = float(f0_cents_between(f0_tracks(first.audio[None], synth.sample_rate), target_f0[name])[0])
            row = {"set": set_name, "method": method, "budget_s": budget, "sound": name, "mss": first.distance,
                   "wmfcc": float(mfcc_distance(first.audio[None], target[None], synth.sample_rate)[0]),
                   "f0_cents": None if math.isnan(cents) else cents,
                   "pitched": bool(steady_pitch(target_f0[name])[0]),
                   "level_db": float(level_db(first.audio[None], target[None])[0]),
                   "seconds": round(seconds, 3), "renders": result.settings["renders"]}
            if tag:
                row["tag"] = tag
            with open(rows_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            if progress:
                progress(row)
    return [r for r in read_rows(rows_path) if r.get("tag", "") == tag and r["set"] == set_name and r["sound"] in names]


def print_row(row: dict) -> None:
    """One line of progress per sound, for scripts."""
    f0 = "-" if row["f0_cents"] is None else f"{row['f0_cents']:.0f} c"
    print(f"{row['set']} {row['method']}@{row['budget_s']:g} {row['sound']}: MSS {row['mss']:.2f}, f0 {f0} "
          f"({row['seconds']:.1f} s)", flush=True)


def summarise(rows: list[dict]) -> list[dict]:
    """One line per (set, method, budget): means over sounds, the MSS with its 95% interval."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["method"], float(r["budget_s"])), []).append(r)
    order = list(METHODS)
    out = []
    for (set_name, method, budget), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]), kv[0][2])):
        mss = mean_and_ci95("mss", torch.tensor([r["mss"] for r in rs], dtype=torch.float64))
        # over targets with a steady pitch; a candidate with no pitch there is out of tune
        cents = [math.inf if r["f0_cents"] is None else r["f0_cents"] for r in rs if r.get("pitched")]
        out.append({"method": method, "budget_s": budget, "set": set_name, "n": len(rs),
                    "mss": round(mss["mss"], 3), "mss_ci95": round(mss["mss_ci95"], 3),
                    "wmfcc": round(float(np.mean([r["wmfcc"] for r in rs])), 3),
                    "f0_within_50c": round(float(np.mean(np.array(cents) <= IN_TUNE_CENTS)), 3) if cents else None,
                    "pitched": len(cents),
                    "level_db_abs": round(float(np.mean([abs(r["level_db"]) for r in rs])), 2),
                    "level_within_3db": round(float(np.mean([abs(r["level_db"]) <= LEVEL_TOLERANCE_DB for r in rs])), 3),
                    "seconds_per_sound": round(float(np.mean([r["seconds"] for r in rs])), 2)})
    return out


def csv_text(summary: list[dict]) -> str:
    return tables.csv_text(summary, COLUMNS)


def markdown_table(summary: list[dict]) -> str:
    header = ["set", "method", "budget (s)", "n", "MSS (dB)", "wMFCC", "f0 within 50 c (pitched)", "abs level (dB)", "level within 3 dB",
              "s per sound"]
    rows = [[s["set"], s["method"], f"{s['budget_s']:g}", s["n"], f"{s['mss']:.2f} ± {s['mss_ci95']:.2f}",
             f"{s['wmfcc']:.2f}", "-" if s["f0_within_50c"] is None else f"{s['f0_within_50c']:.0%} ({s['pitched']})",
             f"{s['level_db_abs']:.1f}", f"{s['level_within_3db']:.0%}", f"{s['seconds_per_sound']:.1f}"] for s in summary]
    return tables.markdown_table(header, rows) + "\n"


def paired_against(rows: list[dict], baseline: str = "retrieval") -> list[str]:
    """One line per (set, method, budget) other than the baseline: the MSS difference to the baseline (at no
    budget, or else at the same budget) on the same sounds, mean ± 95% interval of the paired differences,
    and on how many sounds it is lower."""
    keyed: dict[tuple, dict[str, float]] = {}
    for r in rows:
        keyed.setdefault((r["set"], r["method"], float(r["budget_s"])), {})[r["sound"]] = r["mss"]
    lines = []
    for (set_name, method, budget), scores in sorted(keyed.items(), key=lambda kv: (kv[0][0], list(METHODS).index(kv[0][1]), kv[0][2])):
        base = keyed.get((set_name, baseline, 0.0)) or keyed.get((set_name, baseline, budget), {})
        common = [k for k in scores if k in base]
        if method == baseline or len(common) < 2:
            continue
        diff = torch.tensor([scores[k] - base[k] for k in common], dtype=torch.float64)
        paired = mean_and_ci95("d", diff)
        lines.append(f"- {set_name}, {method} at {budget:g} s: {paired['d']:+.2f} ± {paired['d_ci95']:.2f} dB MSS against "
                     f"{baseline} on the same {len(diff)} sounds, lower on {int((diff < 0).sum())}")
    return lines


def write_tables(rows_path: Path, out: Path, paired: bool = False, baseline: str = "retrieval") -> str:
    """out.csv and out.md (after out_header.md when there is one) from the rows file; `paired` adds the MSS
    differences against `baseline` (the lookup) on the same sounds. -> the markdown table."""
    from synthinv.fileio import atomic_write

    rows = read_rows(rows_path)
    summary = summarise(rows)
    table = markdown_table(summary)
    atomic_write(out.with_suffix(".csv"), csv_text(summary))
    header = out.with_name(out.name + "_header.md")
    extra = ["", "Paired on the same sounds (the intervals above are across sounds, which differ much more than "
             "methods do):", "", *paired_against(rows, baseline), ""] if paired else []
    atomic_write(out.with_suffix(".md"), (header.read_text() if header.exists() else "") + table + "\n".join(extra))
    return table
