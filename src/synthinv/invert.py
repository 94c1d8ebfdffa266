"""Sound -> ranked, loadable presets: sample candidates, re-render, score, (refine), rank, write.

Output folder layout (written to a hidden temporary folder, renamed into place only when complete):
    target.wav              the sound as the model heard it (mono, resampled, trimmed, level-adjusted)
    ranking.csv             rank, distance (STFT distance for k-osc, MSS for real synths), lsd (k-osc) or
                            wmfcc (real synths), level_db (candidate RMS vs target), source, folder
    candidate_01/           preset.json + audio.wav, best first
    report.html             spectra/spectrograms, players, tables (synthinv.report)
    summary.json            settings, notes and scores
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize

from synthinv.audio_io import LoadedSound, prepare_sound, write_wav
from synthinv.checkpoint import load_checkpoint
from synthinv.checks import check_sampling, check_sound
from synthinv.metrics import level_db
from synthinv.presets import read_json_preset, write_json_preset, write_native_preset
from synthinv.scoring import check_distance, ranking_distance, scoring
from synthinv.synths.base import draw_examples
from synthinv.transpose import align_to_target
from synthinv.zoo import DEFAULT_SYNTH, resolve_model


class Stopwatch:
    """Seconds spent in each named phase, for the summary and benchmarks/bench_invert.py."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 4)
        self._last = now


@dataclass
class Candidate:
    params: torch.Tensor  # (P,) normalised, in [-1, 1]
    audio: torch.Tensor  # (T,)
    distance: float  # `ranking_distance` to the target (lower is better)
    check: float  # the second opinion (synthinv.scoring): LSD (dB) for k-osc, wMFCC for real synths
    source: str  # "flow sample", "regression", "refined from #1"


@dataclass
class Inversion:
    target: LoadedSound
    candidates: list[Candidate]  # best first
    synth: object  # the synth that rendered the candidates
    out: Path | None = None
    refine_gain: float | None = None  # distance before / after refinement of the best candidate
    settings: dict = field(default_factory=dict)
    truth: torch.Tensor | None = None  # (P,) the true preset, when the user knows it

    @property
    def messages(self) -> list[str]:
        """What the run itself did, in words (the input notes are in target.notes)."""
        said = []
        if self.settings.get("model_kind") == "regression" and self.settings.get("candidates", 1) > 1:
            said.append("a regression model gives one answer: one candidate instead of "
                        f"{self.settings['candidates']}")
        if self.settings.get("transposed"):
            said.append(f"{self.settings['transposed']} of {len(self.candidates) - (self.refine_gain is not None)} "
                        "candidates sounded closer moved to the target's pitch: their note was changed")
        if self.refine_gain is not None:
            said.append(f"refinement ({self.settings['refine_budget']} renders) divided the best distance by "
                        f"{self.refine_gain:.2f}")
        return said


def synth_rms_range(synth, n: int = 256, seed: int = 7) -> tuple[float, float]:
    """5th-95th percentile RMS of the synth's random patches: the loudness range it can make."""
    audio = draw_examples(synth, seed, np.arange(n))[1]  # the audio drawn with the patches (plugins: ~0.1 s a note)
    rms = audio.square().mean(dim=-1).sqrt().numpy()
    return float(np.percentile(rms, 5)), float(np.percentile(rms, 95))


def distances(synth, audio: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """audio (N, T) vs target (T,) -> (ranking distance (N,), check metric (N,)), see synthinv.scoring."""
    targets = target.expand_as(audio)
    return ranking_distance(synth, audio, targets), check_distance(synth, audio, targets)


def score(synth, params: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """params (N, P) -> (audio (N, T), distance (N,), check metric (N,)) against target (T,)."""
    audio = synth.render(params.clamp(-1, 1))
    return (audio, *distances(synth, audio, target))


def refine(synth, start: torch.Tensor, target: torch.Tensor, budget: int) -> torch.Tensor:
    """Nelder-Mead from `start` (P,) on the ranking distance, at most `budget` renders; -> (P,)."""

    def objective(x: np.ndarray) -> float:
        params = torch.from_numpy(np.clip(x, -1, 1)).float()[None]
        return float(ranking_distance(synth, synth.render(params), target[None])[0])

    x0 = start.clamp(-1, 1).double().numpy()
    result = minimize(objective, x0, method="Nelder-Mead",
                      options={"maxfev": budget, "xatol": 1e-4, "fatol": 1e-6, "adaptive": True})
    return torch.from_numpy(np.clip(result.x, -1, 1)).float()


def invert(sound: str | Path, model: str | None = None, synth_name: str | None = None, candidates: int = 8,
           steps: int = 50, guidance: float | None = None, refine_budget: int = 0, seed: int = 0,
           truth: str | Path | None = None, rms_range: tuple[float, float] | None = None,
           transpose: bool = True) -> Inversion:
    """Sample `candidates` parameter sets for `sound`, render and rank them; optionally refine the best.

    `transpose`: for synths with a MIDI-note parameter, each candidate is also tried transposed to the
    target's pitch (synthinv.transpose) and the better of the two is kept.
    `rms_range`: the synth's loudness range (`synth_rms_range`), measured when None; a caller inverting
    many sounds (synthinv.ood) measures it once, since it renders 256 patches."""
    check_sampling(candidates, steps, guidance, refine_budget)  # cheap checks before the model loads
    check_sound(sound)
    clock = Stopwatch()
    if synth_name is None and model is None:
        synth_name = DEFAULT_SYNTH
    ckpt = resolve_model(model, synth_name)  # a given model names its own synth
    net, synth, blob = load_checkpoint(ckpt, expect_synth={"name": synth_name} if synth_name else None)
    synth_name = synth.name
    true_params = read_json_preset(truth, synth) if truth else None  # checked before minutes of work
    guidance = blob["config"]["sample"]["guidance"] if guidance is None else guidance
    target = prepare_sound(sound, synth.sample_rate, synth.length, rms_range or synth_rms_range(synth))
    cond = synth.features(target.audio[None])  # what the encoder hears: audio (k-osc) or log-mel (Dexed)
    is_flow = blob["config"]["model"]["kind"] != "regression"  # flow or VAE + RealNVP: both sample
    cond = cond.expand(candidates if is_flow else 1, *cond.shape[1:])  # (N, ...): a regressor has one answer
    clock.lap("load")
    gen = torch.Generator().manual_seed(seed)
    params = net.sample(cond, steps=steps, guidance=guidance, generator=gen).clamp(-1, 1)  # (N, P)
    clock.lap("sample")
    audio = synth.render(params)
    clock.lap("render")
    targets = target.audio.expand_as(audio)  # (N, T)
    dist = ranking_distance(synth, audio, targets)
    clock.lap("score")
    shift = torch.zeros(len(params), dtype=torch.long)
    if transpose:
        params, audio, dist, shift = align_to_target(synth, params, audio, targets, dist)
        clock.lap("transpose")
    check = check_distance(synth, audio, targets)
    source = "flow sample" if is_flow else "regression"
    found = [Candidate(params[i], audio[i], float(dist[i]), float(check[i]),
                       source + (f", note {int(shift[i]):+d}" if shift[i] else "")) for i in range(len(params))]
    found.sort(key=lambda c: c.distance)
    gain = None
    if refine_budget > 0:
        best = found[0]
        refined = refine(synth, best.params, target.audio, refine_budget)
        r_audio, r_dist, r_check = score(synth, refined[None], target.audio)
        gain = best.distance / max(float(r_dist[0]), 1e-12)
        found.append(Candidate(refined, r_audio[0], float(r_dist[0]), float(r_check[0]), "refined from #1"))
        found.sort(key=lambda c: c.distance)
        clock.lap("refine")
    settings = {"sound": str(sound), "model": str(ckpt), "model_kind": blob["config"]["model"]["kind"],
                "synth": synth_name, "candidates": candidates,
                "steps": steps, "guidance": guidance, "refine_budget": refine_budget, "seed": seed,
                "transpose": transpose, "transposed": int((shift != 0).sum()),
                "seconds": clock.laps}
    return Inversion(target, found, synth, refine_gain=gain, settings=settings, truth=true_params)


def write_inversion(result: Inversion, out: Path, force: bool = False, truth: torch.Tensor | None = None) -> Path:
    """Write everything to a temporary sibling folder, then rename it to `out` (never half-written)."""
    from synthinv.report import write_report

    out, synth = Path(out), result.synth
    how = scoring(synth)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_wav(tmp / "target.wav", result.target.audio, synth.sample_rate)
        rows, report_items = [], []
        audio = torch.stack([c.audio for c in result.candidates])  # (N, T)
        levels = level_db(audio, result.target.audio.expand_as(audio)).tolist()  # (N,) dB
        for rank, (cand, level) in enumerate(zip(result.candidates, levels), 1):
            folder = f"candidate_{rank:02d}"
            (tmp / folder).mkdir()
            write_json_preset(tmp / folder / "preset.json", synth, cand.params)
            write_native_preset(tmp / folder, synth, cand.params, name=f"SYNTHINV{rank:02d}")
            write_wav(tmp / folder / "audio.wav", cand.audio, synth.sample_rate)
            rows.append({"rank": rank, "distance": round(cand.distance, 5), how.check_key: round(cand.check, 4),
                         "level_db": round(level, 2),
                         "source": cand.source, "folder": folder})
            report_items.append({"rank": rank, "folder": folder, "audio": cand.audio, "params": cand.params,
                                 "distance": cand.distance, "check": cand.check, "level_db": level,
                                 "source": cand.source})
        with open(tmp / "ranking.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        summary = {**result.settings, "notes": result.target.notes + result.messages, "refine_gain": result.refine_gain,
                   "ranking": rows}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
        write_report(tmp, result.target.audio, report_items, synth, result.target.notes + result.messages,
                     Path(result.settings["sound"]).name, truth=truth)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.out = out
    return out
