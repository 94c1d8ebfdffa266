"""Out-of-distribution evaluation: score a model on a folder of sounds that no synth here made.

Each file goes through `synthinv.pipeline.invert` exactly as a user's sound would (loaded and prepared by
`audio_io.prepare_sound`: mono, resampled, onset-trimmed, padded, level brought into the synth's range;
the model samples `candidates` presets, the synth renders them, invert's ranking distance (MSS for real synths) ranks
them) and its best candidate is scored against the prepared target with every audio metric
(`synthinv.metrics`). The baseline is the best, by the same ranking, of as many random patches
from the synth's prior (a different set per file). There is no ground-truth preset, so no parameter
metrics.

    result = evaluate_audio_dir("runs/dexed/flow_param2tok/model.ckpt", "examples/ood")
    write_ood_tables(result, Path("runs/dexed/flow_param2tok/ood"))   # ood.csv, ood.md, ood.json
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthinv import tables
from synthinv.audio_io import AudioError
from synthinv.checkpoint import stored_config
from synthinv.errors import OutputExistsError, UsageError
from synthinv.fileio import atomic_write
from synthinv.synths.base import Synth

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3"}
METRICS = ("mss", "wmfcc", "sot", "rms_cos", "f0_cents")  # column order of every table
DECIMALS = {"mss": 2, "wmfcc": 2, "sot": 4, "rms_cos": 3, "f0_cents": 0}


@dataclass
class OODResult:
    rows: list[dict]  # one per file: file, notes, {metric}, {metric}_random
    summary: dict  # settings, the model's budget and, per metric, mean ± 95% over files (f0: where defined)


def audio_files_in(folder: Path) -> list[Path]:
    """The audio files directly inside `folder` (by suffix), sorted by name; maybe none."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def audio_files(folder: str | Path) -> list[Path]:
    """The audio files directly inside `folder`, sorted by name; a clear error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"{folder} is not a directory")
    files = audio_files_in(folder)
    if not files:
        raise AudioError(f"{folder} holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    return files


def random_patches(synth: Synth, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(params (len(indices), P), audio (len(indices), T)) of random patches `indices` of the random-baseline
    split, from the synth's prior (Dexed: the patch prior with silence redraws)."""
    from synthinv.evaluation import RANDOM_BASELINE_SEED
    from synthinv.synths.base import draw_examples

    return draw_examples(synth, RANDOM_BASELINE_SEED, indices)


def best_random(synth: Synth, target: torch.Tensor, count: int, file_index: int, transpose: bool = True) -> torch.Tensor:
    """The closest (by invert's ranking distance) of `count` random patches to target (T,) -> audio (T,);
    with `transpose`, each patch is also tried at the target's pitch, as invert does with its candidates."""
    from synthinv.ranking import rank

    params, audio = random_patches(synth, np.arange(file_index * count, (file_index + 1) * count))  # (count, T)
    ranked = rank(synth, params, target.expand_as(audio), audio=audio, transpose=transpose)
    return ranked.audio[int(ranked.best(per_target=count)[0])]


def checkpoint_budget(blob: dict) -> dict:
    """What the checkpoint says about its training: minutes, steps, examples seen, training data."""
    meta = blob.get("meta", {})
    data = meta.get("data") or {}
    seconds = meta.get("train_seconds")
    return {"method": stored_config(blob).name, "train_minutes": round(seconds / 60, 1) if seconds else None,
            "train_steps": meta.get("steps"), "train_examples": data.get("examples"), "train_seed": data.get("seed")}


def evaluate_audio_dir(checkpoint: str | Path, audio_dir: str | Path, candidates: int = 1, steps: int = 100,
                       guidance: float | None = None, seed: int = 0, f0: bool = True, transpose: bool = True,
                       budget: float = 0.0, lookup: bool = True) -> OODResult:
    """Invert every audio file of `audio_dir` with `checkpoint` and score the best candidate (and the best of
    `candidates` random patches, and with `lookup` of the bank's nearest patches: synthinv.search_eval.BANK_N
    re-ranked) against the prepared target with every audio metric. budget > 0: `invert --budget` (search)."""
    from synthinv.checks import check_sampling, check_sound
    from synthinv.metrics import audio_metrics, f0_tracks
    from synthinv.pipeline import Inverter
    from synthinv.progress import progress_bar
    from synthinv.scoring import REAL_SYNTH, scoring
    from synthinv.search_eval import BANK_N

    check_sampling(candidates, steps, guidance, prefix="")
    files = audio_files(audio_dir)
    for path in files:  # every file is read before the model loads: a bad one is named now, not after the others
        check_sound(path)
    targets, found, baseline, looked_up, notes = [], [], [], [], []
    model_candidates = 0
    with Inverter(str(checkpoint), show_progress=False) as inverter, \
            progress_bar(len(files), f"inverting {audio_dir}", unit="files") as advance:
        synth, blob = inverter.synth, inverter.blob
        lookup = lookup and scoring(synth) is REAL_SYNTH  # k-osc has no bank
        for i, path in enumerate(files):
            result = inverter.invert(path, candidates=candidates, budget=budget, steps=steps, guidance=guidance,
                                     seed=seed, transpose=transpose)
            targets.append(result.target.audio)
            found.append(result.candidates[0].audio)  # best first
            baseline.append(best_random(synth, result.target.audio, candidates, i, transpose))
            if lookup:
                looked_up.append(inverter.invert(result.target, candidates=1, budget=0, transpose=transpose,
                                                 sources=("bank",), counts={"bank": BANK_N}).candidates[0].audio)
            notes.append("; ".join(result.target.notes))
            model_candidates = len(result.candidates)  # a regressor gives one whatever was asked
            advance(1)
    target, model_audio, random_audio = torch.stack(targets), torch.stack(found), torch.stack(baseline)  # (F, T)
    true_f0 = f0_tracks(target, synth.sample_rate) if f0 else None  # tracked once for model and baselines
    scores = audio_metrics(model_audio, target, synth.sample_rate, f0=f0, true_f0=true_f0)  # {name: (F,)}
    random_scores = audio_metrics(random_audio, target, synth.sample_rate, f0=f0, true_f0=true_f0)
    lookup_scores = (audio_metrics(torch.stack(looked_up), target, synth.sample_rate, f0=f0, true_f0=true_f0)
                     if lookup else {})
    rows = [{"file": p.name, **{k: float(v[i]) for k, v in scores.items()},
             **{f"{k}_random": float(v[i]) for k, v in random_scores.items()},
             **{f"{k}_lookup": float(v[i]) for k, v in lookup_scores.items()}, "notes": notes[i]}
            for i, p in enumerate(files)]
    summary = {"checkpoint": str(checkpoint), "audio_dir": str(audio_dir), "files": len(files), "synth": synth.name,
               **checkpoint_budget(blob), "candidates": candidates, "model_candidates": model_candidates,
               "random_candidates": candidates, "sample_steps": steps, "transpose": transpose,
               "guidance": stored_config(blob).sample.guidance if guidance is None else guidance, "seed": seed,
               "budget": budget, "lookup_candidates": BANK_N if lookup else None,
               **summarise(scores), **summarise(random_scores, "_random"), **summarise(lookup_scores, "_lookup")}
    return OODResult(rows, summary)


def summarise(scores: dict, suffix: str = "") -> dict:
    """{name: (F,)} -> mean ± 95% over files (NaN-aware: f0 counts only files where it is defined)."""
    from synthinv.evaluation import nan_mean_and_ci95

    out = {}
    for name, values in scores.items():
        out.update(nan_mean_and_ci95(name + suffix, values))
    return out


def fmt(value, name: str) -> str:
    """A metric for a table: fixed decimals, "undefined" for NaN/None (no pitch on one side)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undefined"
    return f"{value:.{DECIMALS.get(name, 3)}f}"


def fmt_ci(summary: dict, name: str) -> str:
    mean, half = summary.get(name), summary.get(f"{name}_ci95")
    if mean is None:
        return "undefined"
    base = name.removesuffix("_random").removesuffix("_lookup")
    spread = "" if half is None or math.isnan(half) else f" ± {fmt(half, base)}"
    return fmt(mean, base) + spread


def baselines(result: OODResult) -> list[str]:
    """The suffixes of the baselines in this result, in table order: the bank lookup (when measured), random."""
    return (["_lookup"] if result.summary.get("lookup_candidates") else []) + ["_random"]


def markdown_table(result: OODResult) -> str:
    """Per-file rows (model / lookup / random for each metric), then the means ± 95% intervals."""
    s, metrics = result.summary, [m for m in METRICS if any(m in r for r in result.rows)]
    extra = baselines(result)
    lookup = (f" vs the bank's {s['lookup_candidates']} nearest patches" if "_lookup" in extra else "")
    lines = [f"# Out-of-distribution: {s['method']} on {s['audio_dir']} ({s['files']} files)", "",
             f"Checkpoint `{s['checkpoint']}`; budget {s['train_minutes']} min, {s['train_steps']} steps. Best of "
             f"{s['model_candidates']} model candidate(s)"
             + (f" after {s['budget']:g} s of search" if s.get("budget") else "")
             + f"{lookup} vs best of {s['random_candidates']} random patch(es), all "
             f"ranked by invert's ranking distance (MSS for real synths)"
             + (", each also tried moved to the target's pitch" if s.get("transpose") else "")
             + f"; {s['sample_steps']} sampler steps, guidance {s['guidance']}. "
             "MSS, wMFCC, SOT, f0 error (cents): lower is better; RMS cosine: higher is better. "
             "Each cell: model / " + " / ".join(x.strip("_") for x in extra) + ".", ""]
    rows = [[r["file"], *(" / ".join(fmt(r[m + x], m) for x in ["", *extra]) for m in metrics)] for r in result.rows]
    rows.append(["**mean ± 95%**", *(" / ".join(fmt_ci(s, m + x) for x in ["", *extra]) for m in metrics)])
    lines.append(tables.markdown_table(["file", *metrics], rows))
    if "f0_cents_n" in s:
        lines += ["", f"f0 is defined (voiced on both sides) for {s['f0_cents_n']} of {s['files']} files with the model, "
                      f"{s['f0_cents_random_n']} with random patches."]
    return "\n".join(lines) + "\n"


def csv_text(result: OODResult) -> str:
    return tables.csv_text(result.rows, list(result.rows[0]))


def ood_out_dir(checkpoint: str | Path, audio_dir: str | Path, out: str | Path | None, force: bool) -> Path:
    """Where the tables go (default: ood_<folder name> beside the checkpoint); checked before any work, so
    an existing folder without `force` fails at once, not after minutes of inversions."""
    out = Path(out) if out is not None else Path(checkpoint).parent / f"ood_{Path(audio_dir).resolve().name}"
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder (the tables go into a folder)")
    if (out / "ood.md").exists() and not force:
        raise OutputExistsError(f"{out} already holds OOD tables")
    return out


def summary_line(result: OODResult) -> str:
    """One line for the terminal: every metric's mean, model vs the lookup and random patches."""
    s, extra = result.summary, baselines(result)
    parts = [f"{m} {fmt_ci(s, m)} (" + ", ".join(f"{x.strip('_')} {fmt(s.get(m + x), m)}" for x in extra) + ")"
             for m in METRICS if f"{m}_ci95" in s]
    return f"{s['files']} files: " + ", ".join(parts)


def write_ood_tables(result: OODResult, out: Path) -> Path:
    """out/ood.csv (per file), out/ood.md (table with means), out/ood.json (summary + rows); each atomic."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "ood.csv", csv_text(result))
    atomic_write(out / "ood.md", markdown_table(result))
    rows = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in result.rows]
    atomic_write(out / "ood.json", json.dumps({"summary": result.summary, "rows": rows}, indent=2))  # NaN -> null
    return out
