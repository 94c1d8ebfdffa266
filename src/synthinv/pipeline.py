"""Sound -> ranked, loadable presets, under a time budget (`Inverter.invert`):

    propose     model samples and the bank's nearest patches (synthinv.bank), scored on the worker pool
    transpose   the closest proposals also tried at the target's pitch (synthinv.transpose, synthinv.pitch)
    search      CMA-ES and a categorical sweep on real renders until the budget ends (synthinv.search)
    finish      the best distinct presets re-rendered, retuned and level-matched where that costs little

`--budget 0` skips the bank and the search: model samples are ranked as they are.

Output folder layout (written to a hidden temporary folder, renamed into place only when complete):
    target.wav              the sound as the model heard it (mono, resampled, trimmed, level-adjusted)
    ranking.csv             rank, distance (STFT distance for k-osc, MSS for real synths), lsd (k-osc) or
                            wmfcc (real synths), level_db (candidate RMS vs target), source, folder
    candidate_01/           preset.json + audio.wav, best first
    report.html             spectra/spectrograms, players, tables (synthinv.report)
    summary.json            settings, notes and scores
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from synthinv import tables
from synthinv.audio_io import LoadedSound, prepare_sound, write_wav
from synthinv.bank import BANK_SEED, embed, get_bank
from synthinv.checkpoint import load_checkpoint, stored_config
from synthinv.checks import check_sampling, check_sound
from synthinv.errors import OutputExistsError, UsageError
from synthinv.metrics import level_db, rms_dbfs
from synthinv.models.sampler import Sampler, draw, ranked_draw, takes_ode_settings
from synthinv.models.surrogate import ranker_from_checkpoint
from synthinv.pitch import (
    IN_TUNE_CENTS,
    SEARCH_PENALTY_DB,
    PitchPenalty,
    load_pitch_trackers,
    move_to_pitch,
    steady_pitch,
    track_medians,
)
from synthinv.presets import preset_values, read_json_preset, write_json_preset, write_native_preset
from synthinv.progress import search_progress
from synthinv.ranking import closest_distinct, rank
from synthinv.scoring import check_distance, ranking_distance, scoring
from synthinv.search import LevelPenalty, Objective, search
from synthinv.synths.base import GAIN, RETUNE, Synth, draw_examples
from synthinv.transpose import TRIES, note_column, semitone_shifts, transpose_params
from synthinv.workers import SynthPool, torch_threads
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
    source: str  # "flow sample", "bank patch 12, note +3", "searched from 1", ...
    synth: Any = field(default=None, repr=False)  # the Synth that rendered it (for the writers)

    @property
    def preset(self) -> dict:
        """{parameter name: value in the synth's own units}: a number, or the choice's label for categorical
        parameters (e.g. the DX7 algorithm "5")."""
        native = self.synth.spec.decode(self.params[None].double())[0]
        return {p.name: p.choices[int(v)] if p.kind == "categorical" else (int(v) if p.kind == "discrete" else float(v))
                for p, v in zip(self.synth.spec.params, native)}

    def write_json(self, path: str | Path) -> Path:
        return write_json_preset(Path(path), self.synth, self.params)

    def write_native(self, folder: str | Path, name: str = "SYNTHINV") -> Path | None:
        """The synth's own preset format into `folder` (Dexed: preset.syx; plugins: their state); None if
        the synth has none."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        return write_native_preset(Path(folder), self.synth, self.params, name=name)

    def write_audio(self, path: str | Path) -> Path:
        write_wav(Path(path), self.audio, self.synth.sample_rate)
        return Path(path)


@dataclass
class Inversion:
    target: LoadedSound
    candidates: list[Candidate]  # best first
    synth: Synth  # the synth that rendered the candidates
    out: Path | None = None  # where `write` put it
    refine_gain: float | None = None  # distance before / after refinement of the best candidate
    settings: dict = field(default_factory=dict)
    truth: torch.Tensor | None = None  # (P,) the true preset, when the user knows it

    def levels_db(self) -> list[float]:
        """Each candidate's RMS level against the target in dB (ranking distances are gain-blind)."""
        audio = torch.stack([c.audio for c in self.candidates])  # (N, T)
        return level_db(audio, self.target.audio.expand_as(audio)).tolist()

    def write(self, out: str | Path, force: bool = False) -> Path:
        """Presets, audio, ranking.csv, summary.json and report.html into folder `out` (see write_inversion)."""
        return write_inversion(self, Path(out), force=force, truth=self.truth)

    @property
    def messages(self) -> list[str]:
        """What the run itself did, in words (the input notes are in target.notes)."""
        said = []
        if len(self.candidates) < self.settings.get("candidates", 1) and self.settings.get("model_kind") == "regression":
            said.append(f"a regression model gives one answer: {len(self.candidates)} candidate(s) instead of "
                        f"{self.settings['candidates']}")
        moved = sum(", note " in c.source for c in self.candidates)
        if moved:
            said.append(f"{moved} of {len(self.candidates)} candidates sounded closer moved to the target's pitch: "
                        "their note was changed")
        if self.settings.get("budget") == 0 and self.settings.get("candidates", 0) > 1:
            said.append("no search (budget 0): the model's samples ranked as they are")
        if self.settings.get("budget"):
            stopped = " (stopped early by Ctrl-C)" if self.settings.get("interrupted") else ""
            said.append(f"searched {self.settings['budget']:g} s{stopped}: {self.settings['proposals']} proposals "
                        f"({' + '.join(self.settings['sources'])}), {self.settings['renders']} renders in all")
        if self.refine_gain is not None:
            said.append(f"refinement ({self.settings['refine_budget']} renders) divided the best distance by "
                        f"{self.refine_gain:.2f}")
        return said


def synth_rms_range(synth: Synth, n: int = 256, seed: int = 7) -> tuple[float, float]:
    """5th-95th percentile RMS of the synth's random patches: the loudness range it can make."""
    audio = draw_examples(synth, seed, np.arange(n))[1]  # the audio drawn with the patches (plugins: ~0.1 s a note)
    rms = audio.square().mean(dim=-1).sqrt().numpy()
    return float(np.percentile(rms, 5)), float(np.percentile(rms, 95))


def score(synth: Synth, params: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """params (N, P) -> (audio (N, T), ranking distance (N,), check metric (N,)) against target (T,), see
    synthinv.scoring."""
    targets = target.expand(len(params), -1)  # (N, T)
    ranked = rank(synth, params, targets)
    return ranked.audio, ranked.distance, check_distance(synth, ranked.audio, targets)


def refine(synth: Synth, start: torch.Tensor, target: torch.Tensor, budget: int) -> torch.Tensor:
    """Nelder-Mead from `start` (P,) on the ranking distance, at most `budget` renders; -> (P,)."""

    def objective(x: np.ndarray) -> float:
        params = torch.from_numpy(np.clip(x, -1, 1)).float()[None]
        return float(ranking_distance(synth, synth.render(params), target[None])[0])

    x0 = start.clamp(-1, 1).double().numpy()
    result = minimize(objective, x0, method="Nelder-Mead",
                      options={"maxfev": budget, "xatol": 1e-4, "fatol": 1e-6, "adaptive": True})
    return torch.from_numpy(np.clip(result.x, -1, 1)).float()


DEFAULT_BUDGET = 10.0  # seconds of proposals + search; results/invert_search.md measures 0 / 5 / 10 / 15 / 30
MAX_BUDGET = 600.0
MODEL_PROPOSALS = 64  # flow samples when searching (budget > 0)
BANK_PROPOSALS = 32  # nearest bank patches when searching
PROPOSAL_STEPS = 10  # sampler steps for proposals when searching: the search refines them, so half of 20 is enough
ALIGNED = 16  # the closest proposals are also tried at the target's pitch
STARTS = 3  # CMA-ES runs, from the closest proposals that differ in their categorical choices
SOURCES = ("model", "bank", "random")
LEVEL_TOLERANCE = 1.0  # dB of ranking distance a candidate may lose to play at the target's level (as for pitch)
PITCH_TOLERANCE = 1.0  # dB of ranking distance a candidate may lose to play in tune with the target
RETUNE_ABOVE_CENTS = 20.0  # candidates further than this from the target's f0 are retuned
CONTENDERS = 4  # at most this many final candidates are pitch-tracked (those that could rank first)


def _categorical_signature(spec, params: torch.Tensor) -> tuple:
    """The categorical choices of one patch (P,), e.g. its DX7 algorithm, LFO wave and curves."""
    return tuple(int(params[s].argmax()) for p, s in zip(spec.params, spec.slices) if p.kind == "categorical")


def pick_starts(spec, params: torch.Tensor, distance: torch.Tensor, count: int) -> list[tuple[torch.Tensor, float]]:
    """The `count` closest patches whose categorical choices differ (closest first), so that the CMA-ES
    runs explore different algorithms; filled with the next closest when too few differ."""
    chosen = closest_distinct(distance, [_categorical_signature(spec, p) for p in params], count)
    chosen += [i for i in distance.argsort(stable=True).tolist() if i not in chosen][: count - len(chosen)]
    return [(params[i].clone(), float(distance[i])) for i in chosen]


class Inverter:
    """A loaded model with its synth, worker pool and (when searching) patch bank: inverts many sounds.

        with Inverter() as inv:                      # the shipped Dexed model
            result = inv.invert("note.wav", budget=10)

    The pool is forked here, before any heavy torch work, so every worker starts from a clean process."""

    def __init__(self, model: str | None = None, synth_name: str | None = None, workers: int | None = None,
                 bank_size: int | None = None, say=print, show_progress: bool | None = None, whole_range: bool = True,
                 threads: int | None = None):
        if synth_name is None and model is None:
            synth_name = DEFAULT_SYNTH
        self.checkpoint = resolve_model(model, synth_name or DEFAULT_SYNTH)  # a given model names its own synth
        self.net: Sampler
        self.net, self.synth, self.blob = load_checkpoint(self.checkpoint,
                                                          expect_synth={"name": synth_name} if synth_name else None)
        self.config = stored_config(self.blob, self.checkpoint)
        self.ranker = ranker_from_checkpoint(self.blob, self.synth, str(self.checkpoint))  # None: plain samples
        # candidates live here (whole_range=False: the model's own note range); proposals are converted to it
        self.search_synth = self.synth.over_whole_range() if whole_range else self.synth
        load_pitch_trackers()  # before the workers fork, so they inherit it instead of importing it on the clock
        self.pool = SynthPool(self.search_synth, workers)
        self.bank_size = bank_size  # None: bank.default_bank_size()
        self.bank_seed = BANK_SEED
        self.say, self.show_progress = say, show_progress
        self.threads = threads or 1  # torch threads of this process during invert (workers: one each)
        self._bank = None
        self._rms_range: tuple[float, float] | None = None

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Inverter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def bank(self):
        if self._bank is None:
            train_seed = (self.blob["meta"].get("data") or {}).get("seed")  # the model's training split
            self._bank = get_bank(self.synth, self.bank_size, self.bank_seed, workers=self.pool.workers, say=self.say,
                                  show_progress=self.show_progress is not False,
                                  reserved=() if train_seed is None else (int(train_seed),))
        return self._bank

    @property
    def rms_range(self) -> tuple[float, float]:
        if self._rms_range is None:
            self._rms_range = synth_rms_range(self.synth)
        return self._rms_range

    def prepare(self, sound) -> LoadedSound:
        """A path (read and prepared as audio_io.prepare_sound says), a LoadedSound, or audio (T,) as is."""
        if isinstance(sound, LoadedSound):
            return sound
        if isinstance(sound, torch.Tensor):
            audio = sound.float().reshape(-1)
            if len(audio) != self.synth.length or not torch.isfinite(audio).all() or not audio.abs().max() > 0:
                raise UsageError(f"audio given as a tensor must be {self.synth.length} finite, not all-zero samples "
                                 f"at {self.synth.sample_rate} Hz; got {len(audio)} (pass a file to have it prepared)")
            return LoadedSound(audio)
        return prepare_sound(sound, self.synth.sample_rate, self.synth.length, self.rms_range)

    def proposals(self, target: LoadedSound, sources: tuple[str, ...], counts: dict, steps: int,
                  guidance: float, seed: int, random_offset: int = 0,
                  ranked: bool = False) -> tuple[torch.Tensor, list[str]]:
        """-> (params (N, P) in the search synth's spec, what each row came from). `ranked`: the model's
        samples are the nearest by predicted sound among its ranker's pool (a checkpoint with a ranker)."""
        found, labels = [], []
        if "model" in sources:
            cond = self.synth.features(target.audio[None])  # what the encoder hears
            n = counts["model"] if self.net.stochastic else 1  # a regressor has one answer
            gen = torch.Generator().manual_seed(seed)
            temperature = self.config.sample.temperature
            ranker = self.ranker if ranked and self.net.stochastic else None
            if ranker is not None:
                params = ranked_draw(self.net, ranker, self.synth.spec, cond,
                                     embed(target.audio[None], self.synth.sample_rate), repeats=n, generator=gen,
                                     steps=steps, guidance=guidance, temperature=temperature)  # (n, P)
                labels += ["flow sample (ranked)"] * n
            else:
                params = draw(self.net, cond, repeats=n, generator=gen, steps=steps, guidance=guidance,
                              temperature=temperature).clamp(-1, 1)  # (n, P)
                labels += ["flow sample" if self.net.stochastic else "regression"] * n
            found.append(params)
        if "bank" in sources:
            idx, _ = self.bank.nearest(target.audio, self.synth.sample_rate, counts["bank"])
            found.append(self.bank.params[idx])
            labels += [f"bank patch {int(i)}" for i in idx]
        if "random" in sources:
            from synthinv.evaluation import RANDOM_BASELINE_SEED

            n = counts["random"]
            found.append(draw_examples(self.synth, RANDOM_BASELINE_SEED, np.arange(random_offset, random_offset + n))[0])
            labels += ["random patch"] * n
        return self.synth.spec.convert(torch.cat(found), self.search_synth.spec), labels

    def invert(self, sound, candidates: int = 8, budget: float = DEFAULT_BUDGET, steps: int = 50,
               guidance: float | None = None, seed: int = 0, transpose: bool = True, refine_budget: int = 0,
               sources: tuple[str, ...] | None = None, counts: dict | None = None, truth: str | Path | None = None,
               random_offset: int = 0, pitch_penalty: float = SEARCH_PENALTY_DB,
               level_penalty: bool = True, search_frame_stride: int = 1) -> Inversion:
        """Proposals (model samples, bank neighbours, random patches), each also tried at the target's pitch,
        then CMA-ES on real renders until `budget` seconds have passed since the proposals began; the best
        `candidates` of everything rendered, best first.

        budget 0: no search, and by default only `candidates` model samples (the fast path).
        sources: which proposals (default: model and bank when searching, model alone at budget 0).
        counts: how many of each (default MODEL_PROPOSALS, BANK_PROPOSALS; `candidates` at budget 0).
        pitch_penalty: dB added to the distance of a candidate off the target's pitch while proposals are
        scored and searched (targets with a steady pitch only; 0: MSS alone).
        level_penalty: when searching, add search.LevelPenalty (synths that can move their level) to every
        distance scored, proposals included.
        search_frame_stride: when searching, proposals and search are scored by the ranking distance on every
        s-th spectrogram frame (1: the exact distance); the finish re-ranks by the exact one. At 2 the search
        made 1.15x the renders and ended no closer (results/invert_search_stride.md), so 1 is the default.
        steps, guidance: how a flow solves its ODE (guidance default: the model's config); a model without
        them (regression, VAE) samples without, and refuses a guidance given."""
        with torch_threads(self.threads):
            return self._invert(sound, candidates, budget, steps, guidance, seed, transpose, refine_budget, sources,
                                counts, truth, random_offset, pitch_penalty, level_penalty, search_frame_stride)

    def _invert(self, sound, candidates: int, budget: float, steps: int, guidance: float | None, seed: int,
                transpose: bool, refine_budget: int, sources: tuple[str, ...] | None, counts: dict | None,
                truth: str | Path | None, random_offset: int, pitch_penalty: float,
                level_penalty: bool, search_frame_stride: int) -> Inversion:
        check_invert_settings(candidates, steps, budget, refine_budget, guidance)
        if guidance is not None and not takes_ode_settings(self.net):
            raise UsageError(f"guidance is a flow's sampler setting; {self.checkpoint.name} is a "
                             f"{self.config.model.kind} model, which has none")
        clock = Stopwatch()
        synth = self.search_synth
        true_params = self._read_truth(Path(truth)) if truth else None  # checked before seconds of work
        target = self.prepare(sound)
        guidance = self.config.sample.guidance if guidance is None else guidance
        searching = budget > 0
        sources = sources or (("model", "bank") if searching and synth.uses_bank else ("model",))
        unknown = set(sources) - set(SOURCES)
        if unknown:
            raise UsageError(f"unknown proposal source {sorted(unknown)}; use {', '.join(SOURCES)}")
        default_counts = ({"model": MODEL_PROPOSALS, "bank": BANK_PROPOSALS, "random": MODEL_PROPOSALS} if searching
                          else {"model": candidates, "bank": candidates, "random": candidates})
        counts = {**default_counts, **(counts or {})}
        if "bank" in sources:
            self.bank  # noqa: B018 - built (minutes, once) before the clock starts
        clock.lap("load")
        start = time.perf_counter()
        deadline = start + budget
        steps = min(steps, PROPOSAL_STEPS) if searching else steps  # searching refines the samples anyway
        # A ranker picks the few samples that are all invert renders without a search; a search renders its
        # proposals anyway and refines them, so there its pool's seconds are not spent (not measured there).
        ranked = not searching and self.ranker is not None
        params, labels = self.proposals(target, sources, counts, steps, guidance, seed, random_offset,
                                        ranked=ranked)  # (N, P)
        clock.lap("propose")
        key = uuid.uuid4().hex  # names this target in the workers' caches (an id() could be reused)
        penalties = (self._pitch_penalty(target, pitch_penalty) if transpose and pitch_penalty > 0 else None,
                     self._level_penalty(target) if level_penalty and searching else None)
        objective = Objective(self.pool, target.audio, key, penalties=tuple(p for p in penalties if p is not None),
                              frame_stride=search_frame_stride if searching else 1)
        distance = torch.from_numpy(objective(params)).float()  # (N,)
        clock.lap("score")
        shift = torch.zeros(len(params), dtype=torch.long)
        if transpose:  # the closest proposals, each also at its likeliest transpositions to the target's pitch
            top = distance.argsort()[:ALIGNED]
            moved, moved_distance, moved_shift = self._transposed(target, params[top], distance[top], objective)
            params[top], distance[top], shift[top] = moved, moved_distance, moved_shift
            clock.lap("transpose")
        labels = [label + (f", note {int(s):+d}" if s else "") for label, s in zip(labels, shift.tolist())]
        pool = [(params[i], float(distance[i]), labels[i]) for i in range(len(params))]
        interrupted, renders = False, objective.renders
        if searching and time.perf_counter() < deadline:
            starts = pick_starts(synth.spec, params, distance, STARTS)
            if transpose and note_column(synth.spec) is not None:
                starts = self._starts_at_pitch(target, starts, objective)
                clock.lap("pitch")
            with search_progress(budget, start, self.show_progress) as on_best:
                objective.on_best = on_best
                try:
                    result = search(objective, starts, synth.spec, deadline, seed=seed)
                    pool += result.found
                except KeyboardInterrupt:  # Ctrl-C: keep the best so far and write a complete result
                    interrupted = True
                    if objective.best_params is not None:
                        pool.append((objective.best_params, objective.best, "search (stopped early)"))
            renders = objective.renders
            clock.lap("search")
        found = self._finish(target, pool, candidates, retune=transpose)
        clock.lap("render")
        gain = None
        if refine_budget > 0:
            best = found[0]
            refined = refine(synth, best.params, target.audio, refine_budget)
            r_audio, r_dist, r_check = score(synth, refined[None], target.audio)
            gain = best.distance / max(float(r_dist[0]), 1e-12)
            found.append(Candidate(refined, r_audio[0], float(r_dist[0]), float(r_check[0]), "refined from #1", synth))
            found.sort(key=lambda c: c.distance)
            clock.lap("refine")
        settings = {"sound": str(sound) if isinstance(sound, (str, Path)) else "audio",
                    "model": str(self.checkpoint), "model_kind": self.config.model.kind,
                    "synth": synth.name, "candidates": candidates, "budget": budget, "sources": list(sources),
                    "proposals": len(params), "renders": renders, "interrupted": interrupted,
                    "steps": steps, "guidance": guidance,
                    "temperature": self.config.sample.temperature, "refine_budget": refine_budget, "seed": seed,
                    "transpose": transpose, "transposed": int((shift != 0).sum()), "seconds": clock.laps,
                    "search_frame_stride": search_frame_stride if searching else 1,
                    "ranker_pool": self.ranker.pool if ranked and self.ranker is not None else None}
        return Inversion(target, found, synth, refine_gain=gain, settings=settings, truth=true_params)

    def _read_truth(self, path: Path) -> torch.Tensor:
        """The true preset (P,) in the search synth's spec, from a preset of the model's spec or of invert's."""
        written_for = self.synth if preset_values(path)[0].get("spec_hash") == self.synth.spec.hash() else self.search_synth
        return written_for.spec.convert(read_json_preset(path, written_for)[None], self.search_synth.spec)[0]

    def _transposed(self, target: LoadedSound, params: torch.Tensor, distance: torch.Tensor, objective: Objective):
        """synthinv.transpose's likeliest semitone shifts of each proposal (N, P), scored on the pool; each
        row keeps the closest of itself and its shifts -> (params, distance, shift (N,))."""
        synth = self.search_synth
        column = note_column(synth.spec)
        shift = torch.zeros(len(params), dtype=torch.long)
        if column is None or not len(params):
            return params, distance, shift
        audio = synth.render(params)  # (N, T): for the spectra that propose the shifts
        shifts = semitone_shifts(audio, target.audio.expand_as(audio), synth.sample_rate, int(column[2] - column[1]),
                                 TRIES)  # (N, tries)
        tries = [transpose_params(synth.spec, params, shifts[:, t]) for t in range(TRIES)]
        rows = [(t, i) for t, (_, ok) in enumerate(tries) for i in ok.nonzero().squeeze(1).tolist()]
        if not rows:
            return params, distance, shift
        scored = objective(torch.stack([tries[t][0][i] for t, i in rows]))  # one batch over the pool
        params, distance = params.clone(), distance.clone()
        for (t, i), d in zip(rows, scored.tolist()):
            if d < distance[i]:
                params[i], distance[i], shift[i] = tries[t][0][i], d, shifts[i, t]
        return params, distance, shift

    def _pitch_penalty(self, target: LoadedSound, penalty_db: float) -> PitchPenalty | None:
        """What a wrong note costs every candidate scored for a target with a steady pitch (synthinv.pitch):
        MSS alone lets the search trade the note for timbre."""
        track = self._target_track(target)
        return PitchPenalty.for_target(target.audio, track, self._target_f0(target), self.search_synth.sample_rate,
                                       penalty_db)

    def _level_penalty(self, target: LoadedSound) -> LevelPenalty | None:
        """What playing far from the target's level costs every candidate scored, for synths whose level
        `_match_level` moves afterwards (the move is cheap in distance only for a candidate near the level)."""
        if GAIN not in self.search_synth.capabilities:
            return None
        return LevelPenalty(float(rms_dbfs(target.audio[None])[0]))

    def _target_f0(self, target: LoadedSound) -> float:
        """The target's median f0 in Hz (NaN when unpitched); its pYIN track is kept in target.f0_track."""
        if target.f0 is None:
            target.f0_track = self._f0_tracks(target.audio[None])[0]
            target.f0 = float(track_medians(target.f0_track[None])[0])
        return target.f0

    def _target_track(self, target: LoadedSound) -> np.ndarray:
        """The target's pYIN f0 track (frames,), NaN where unvoiced."""
        self._target_f0(target)
        assert target.f0_track is not None
        return target.f0_track

    def _f0_tracks(self, audio: torch.Tensor) -> np.ndarray:
        """audio (N, T) -> pYIN f0 tracks (N, frames) (synthinv.metrics.f0_tracks) on the worker pool."""
        chunks = [c for c in torch.tensor_split(audio, self.pool.workers) if len(c)]
        return np.concatenate(self.pool.map(_f0_job, [(c,) for c in chunks]))

    def _starts_at_pitch(self, target: LoadedSound, starts: list, objective: Objective) -> list:
        """For a pitched target, each start moved to the target's f0 (synthinv.pitch), kept even where MSS
        prefers another octave: the search then looks for the timbre at the right pitch."""
        f0 = self._target_f0(target)
        if not math.isfinite(f0):
            return starts
        params = torch.stack([p for p, _ in starts])
        medians = track_medians(self._f0_tracks(self.search_synth.render(params)))  # pYIN on the pool
        moved, shift = move_to_pitch(self.search_synth, params, f0, medians)
        rows = shift.nonzero().squeeze(1)
        if not len(rows):
            return starts
        new = objective(moved[rows])
        starts = list(starts)
        for j, i in enumerate(rows.tolist()):
            starts[i] = (moved[i], float(new[j]))
        return starts

    def _finish(self, target: LoadedSound, pool: list, candidates: int, retune: bool = True) -> list[Candidate]:
        """The best `candidates` distinct patches of everything scored, re-rendered here, best first."""
        keys = [tuple(torch.round(params * 1e4).int().tolist()) for params, _, _ in pool]  # equal to 1e-4
        picked = closest_distinct(torch.tensor([dist for _, dist, _ in pool], dtype=torch.float64), keys, candidates)
        chosen = [pool[i] for i in picked]
        params = torch.stack([c[0] for c in chosen])  # (C, P)
        labels = [c[2] for c in chosen]
        audio, dist, check = score(self.search_synth, params, target.audio)
        cents = torch.full((len(chosen),), math.inf)  # to the target's f0, tracked for the contenders only
        pitched = retune and math.isfinite(self._target_f0(target))
        if pitched:
            # only a candidate within PITCH_TOLERANCE of the closest can rank first: pYIN costs 20-30 renders
            rows = [int(i) for i in dist.argsort()[:CONTENDERS] if dist[i] <= dist.min() + PITCH_TOLERANCE]
            cents[rows], shift = self._pitch_of(target, audio[rows])
            if RETUNE in self.search_synth.capabilities:
                params, audio, dist, check, labels, cents = self._retune(target, rows, shift, params, audio, dist,
                                                                         check, labels, cents)
        if GAIN in self.search_synth.capabilities:
            params, audio, dist, check, labels = self._match_level(target, params, audio, dist, check, labels)
        found = [Candidate(params[i], audio[i], float(dist[i]), float(check[i]), labels[i], self.search_synth)
                 for i in range(len(chosen))]
        steady = pitched and steady_pitch(self._target_track(target)[None])[0]  # a note, not a bell or a glide
        order = in_tune_first(dist, cents if steady else None)
        if order[0] != int(dist.argmin()):
            found[order[0]].source += ", in tune: ranked first"
        return [found[i] for i in order]

    def _pitch_of(self, target: LoadedSound, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (N, T) -> (the f0 metric's cents to the target (N,): median over frames voiced in both, inf
        where there are none; the cents that would bring each median f0 to the target's (N,), NaN if unvoiced)."""
        from synthinv.metrics import f0_cents_between

        track = self._target_track(target)
        tracks = self._f0_tracks(audio)  # (N, frames)
        cents = torch.nan_to_num(f0_cents_between(tracks, np.broadcast_to(track, tracks.shape)), nan=math.inf)
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = 1200 * np.log2(self._target_f0(target) / track_medians(tracks))
        return cents, torch.from_numpy(shift)

    def _retune(self, target: LoadedSound, rows: list[int], shift: torch.Tensor, params, audio, dist, check, labels,
                cents):
        """Candidates `rows` more than RETUNE_ABOVE_CENTS (`shift` (R,)) from the target's f0 brought to it: whole
        semitones by the note, the rest by a fine retune (Dexed: operator ratios); kept where that costs at most
        PITCH_TOLERANCE of ranking distance: MSS hears little of a quarter tone, a listener hears it at once."""
        synth = self.search_synth
        pick = [j for j, c in enumerate(shift.tolist()) if math.isfinite(c) and abs(c) > RETUNE_ABOVE_CENTS]
        if not pick:
            return params, audio, dist, check, labels, cents
        rows = [rows[j] for j in pick]
        want = shift[pick]  # (R,)
        semitones = torch.round(want / 100).long()
        moved, ok = transpose_params(synth.spec, params[rows], semitones)  # the note, where it stays in range
        moved = synth.retuned(moved, torch.where(ok, want - 100 * semitones, want))
        m_audio, m_dist, m_check = score(synth, moved, target.audio)
        keep = [j for j, r in enumerate(rows) if m_dist[j] <= dist[r] + PITCH_TOLERANCE]
        if not keep:
            return params, audio, dist, check, labels, cents
        m_cents = self._pitch_of(target, m_audio[keep])[0]
        params, audio, dist, check, labels, cents = (params.clone(), audio.clone(), dist.clone(), check.clone(),
                                                     list(labels), cents.clone())
        for k, j in enumerate(keep):
            r = rows[j]
            params[r], audio[r], dist[r], check[r], cents[r] = moved[j], m_audio[j], m_dist[j], m_check[j], m_cents[k]
            labels[r] += ", retuned"
        return params, audio, dist, check, labels, cents

    def _match_level(self, target: LoadedSound, params, audio, dist, check, labels):
        """Each candidate moved to the target's level (Dexed: carrier output levels), kept where that costs at
        most LEVEL_TOLERANCE of ranking distance: a synth's level can change its envelope, not only its gain."""
        targets = target.audio.expand_as(audio)
        moved = params
        for _ in range(2):  # with_gain measures each carrier, but clamping at 0..99 and its rounds' limit can leave a miss
            level = level_db(self.search_synth.render(moved), targets)
            moved = self.search_synth.with_gain(moved, -level)
        m_audio, m_dist, m_check = score(self.search_synth, moved, target.audio)
        keep = (m_dist <= dist + LEVEL_TOLERANCE) & (level_db(m_audio, targets).abs() < level_db(audio, targets).abs())
        labels = [label + (", level matched" if k else "") for label, k in zip(labels, keep.tolist())]
        pick = keep[:, None]
        return (torch.where(pick, moved, params), torch.where(pick, m_audio, audio), torch.where(keep, m_dist, dist),
                torch.where(keep, m_check, check), labels)


def in_tune_first(distance: torch.Tensor, cents: torch.Tensor | None) -> list[int]:
    """The ranking of candidates with distances (N,): by distance, except that for a target with a steady pitch
    (`cents` (N,) to it given) candidates in tune (IN_TUNE_CENTS) within PITCH_TOLERANCE of the closest come
    first: the wrong note is what a listener hears first, MSS barely."""
    first = torch.zeros(len(distance), dtype=torch.bool)
    if cents is not None and len(distance):
        first = (cents <= IN_TUNE_CENTS) & (distance <= float(distance.min()) + PITCH_TOLERANCE)
    return sorted(range(len(distance)), key=lambda i: (not bool(first[i]), float(distance[i])))


def _f0_job(synth, audio: torch.Tensor) -> np.ndarray:
    """Pool job: pYIN f0 tracks of audio (n, T) -> (n, frames)."""
    from synthinv.metrics import f0_tracks

    return f0_tracks(audio, synth.sample_rate)


def check_invert_settings(candidates: int, steps: int, budget: float, refine_budget: int,
                          guidance: float | None = None, prefix: str = "") -> None:
    """The settings of one inversion, named in messages as `prefix` + name (the command passes "--")."""
    check_sampling(candidates, steps, guidance, refine_budget, prefix=prefix)
    if not (math.isfinite(budget) and 0 <= budget <= MAX_BUDGET):
        raise UsageError(f"{prefix}budget must be between 0 (no search) and {MAX_BUDGET:.0f} seconds, got {budget}")


def invert(sound: str | Path, model: str | None = None, synth_name: str | None = None, candidates: int = 8,
           steps: int = 50, guidance: float | None = None, refine_budget: int = 0, seed: int = 0,
           truth: str | Path | None = None, rms_range: tuple[float, float] | None = None,
           transpose: bool = True, budget: float = DEFAULT_BUDGET, workers: int | None = None,
           show_progress: bool | None = None, say=print, threads: int | None = None) -> Inversion:
    """Invert one sound with a fresh `Inverter` (see there); `rms_range` skips measuring the synth's loudness."""
    check_invert_settings(candidates, steps, budget, refine_budget, guidance)  # cheap checks before the model loads
    if not isinstance(sound, (LoadedSound, torch.Tensor)):
        check_sound(Path(sound))
    with Inverter(model, synth_name, workers=workers, say=say, show_progress=show_progress, threads=threads) as inverter:
        if rms_range is not None:
            inverter._rms_range = rms_range
        return inverter.invert(sound, candidates, budget, steps, guidance, seed, transpose, refine_budget, truth=truth)


def write_inversion(result: Inversion, out: Path, force: bool = False, truth: torch.Tensor | None = None) -> Path:
    """Write everything to a temporary sibling folder, then rename it to `out` (never half-written)."""
    from synthinv.report import write_report

    out, synth = Path(out), result.synth
    how = scoring(synth)
    if out.exists() and not force:
        raise OutputExistsError(f"{out} already exists (write with force=True to replace it)")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_wav(tmp / "target.wav", result.target.audio, synth.sample_rate)
        rows, report_items = [], []
        levels = result.levels_db()  # (N,) dB
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
        (tmp / "ranking.csv").write_text(tables.csv_text(rows, list(rows[0])), newline="")
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
