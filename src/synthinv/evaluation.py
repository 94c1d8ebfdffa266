"""Score a model on a fixed split: sample parameters, re-render, compare with the truth.

k-osc: LSD, Chamfer, assignment MSE, parameter MSE on a generated split. Dataset-backed synths (Dexed):
the multi-scale mel distance (MSS) of the re-rendered sampled parameters against the true audio, next to
random patches from the prior (the random baseline), plus parameter MSE and categorical accuracy, on a
test dataset directory or on examples drawn from TEST_SEED; with `audio_metrics=True` also the paper's other audio
metrics (synthinv.metrics: wMFCC, spectral OT, RMS-envelope cosine, f0 error on a subset).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from synthinv.errors import UsageError
from synthinv.metrics import assignment_mse, chamfer_distance, log_spectral_distance, mss_distance, param_mse
from synthinv.models.sampler import Sampler, draw
from synthinv.synths.base import Synth, draw_examples
from synthinv.synths.tokens import split_tokens

# Split seeds are fixed, not derived from the training seed, so every model sees the same val/test sets.
VAL_SEED, TEST_SEED, RANDOM_BASELINE_SEED = 2_000_003, 3_000_017, 4_000_037


def split_batch(synth: Synth, seed: int, n: int, device: str | torch.device = "cpu"):
    """(params (n, P), audio (n, T)) of examples 0..n-1 of a split."""
    params = synth.params_at(seed, np.arange(n)).to(device)
    return params, synth.render(params)


@torch.no_grad()
def sample_params(model: Sampler, cond: torch.Tensor, steps: int, guidance: float, seed: int,
                  batch: int = 256, temperature: float = 1.0) -> torch.Tensor:
    """One parameter estimate per sound (N, P) from the encoder input cond (N, ...), sampled in chunks with
    a seeded generator; `steps`, `guidance` and `temperature` are a flow's (synthinv.models.sampler.draw)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([draw(model, c, generator=gen, steps=steps, guidance=guidance, temperature=temperature)
                      for c in cond.split(batch)])


def mean_and_ci95(name: str, per_example: torch.Tensor) -> dict:
    """{name: mean, name_ci95: half-width of the normal 95% interval of the mean} over examples."""
    n = per_example.numel()
    half = 1.96 * per_example.std().item() / n**0.5 if n > 1 else float("nan")
    return {name: per_example.mean().item(), f"{name}_ci95": half}


def over_sounds_cell(per_example: torch.Tensor, signed: bool = False) -> str:
    """A table cell "mean ± half-width" of `mean_and_ci95` (e.g. MSS over test sounds; `signed`: "+0.12 ± 0.05",
    for a paired difference)."""
    m = mean_and_ci95("x", per_example)
    return f"{m['x']:{'+' if signed else ''}.2f} ± {m['x_ci95']:.2f}"


def across_runs_ci95(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of the Student-t 95% interval of the mean) over a few runs (training seeds): with
    3 seeds the normal interval of `mean_and_ci95` would be 2.2x too narrow. NaN half-width for one run."""
    from scipy.stats import t as student_t

    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()) if len(x) else float("nan"), float("nan")
    return float(x.mean()), float(student_t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def across_runs_cell(values: Sequence[float | None], digits: int = 2) -> str:
    """A table cell "mean ± half-width" of `across_runs_ci95` over the values that are not None; "-" if none."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    mean, half = across_runs_ci95(present)
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


@torch.no_grad()
def lsd_of(synth: Synth, params: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    return log_spectral_distance(synth.render(params.clamp(-1, 1)), audio)


@torch.no_grad()
def mss_of(synth: Synth, params: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """MSS (N,) of the audio rendered from `params` (clamped to [-1, 1]; the synth decodes one-hot blocks
    by argmax) against `audio`."""
    return mss_distance(synth.render(params.clamp(-1, 1).cpu()), audio.cpu(), synth.sample_rate)


def nan_mean_and_ci95(name: str, per_example: torch.Tensor) -> dict:
    """`mean_and_ci95` over the examples where the metric is defined (not NaN), plus name_n, their count;
    mean and interval are None ("undefined") when it is defined for none."""
    defined = per_example[~torch.isnan(per_example)]
    if not defined.numel():
        return {name: None, f"{name}_ci95": None, f"{name}_n": 0}
    return {**mean_and_ci95(name, defined), f"{name}_n": int(defined.numel())}


def f0_scores(pred_audio: torch.Tensor, true_f0, sample_rate: int, name: str) -> dict:
    """f0 error of the first len(true_f0) sounds of pred (N, T) against their tracks: the mean of per-sound
    median cents (NaN-aware, `nan_mean_and_ci95`) and, as "<name>_within_50", the fraction of sounds with an
    f0 that are within 50 cents (a quarter tone): the mean alone mixes a few octave errors (1200 cents)
    with the many right notes."""
    from synthinv.metrics import f0_cents_between, f0_tracks

    cents = f0_cents_between(f0_tracks(pred_audio[: len(true_f0)], sample_rate), true_f0)
    defined = cents[~torch.isnan(cents)]
    within = (defined < 50).float().mean().item() if defined.numel() else None
    return {**nan_mean_and_ci95(name, cents), f"{name}_within_50": within}


def rendered_audio_scores(pred_audio: torch.Tensor, true_audio: torch.Tensor, sample_rate: int,
                          true_f0=None, suffix: str = "") -> dict:
    """Mean ± 95% interval of the audio metrics of pred (N, T) against true (N, T) other than MSS: wMFCC,
    SOT, RMS cosine; f0 error (cents) only on the first len(true_f0) examples (pYIN is the slow one),
    NaN-aware. Keys get `suffix` ("_random" for the baseline)."""
    from synthinv.metrics import mfcc_distance, rms_envelope_similarity, spectral_ot_distance

    out = {**mean_and_ci95("wmfcc" + suffix, mfcc_distance(pred_audio, true_audio, sample_rate)),
           **mean_and_ci95("sot" + suffix, spectral_ot_distance(pred_audio, true_audio, sample_rate)),
           **mean_and_ci95("rms_cos" + suffix, rms_envelope_similarity(pred_audio, true_audio, sample_rate))}
    if true_f0 is not None and len(true_f0):
        out.update(f0_scores(pred_audio, true_f0, sample_rate, "f0_cents" + suffix))
    return out


def audio_metrics_line(metrics: dict) -> str:
    """The audio metrics of `evaluate_rendered` in one line for the terminal, model (random patches)."""
    def one(name: str, digits: int) -> str:
        if metrics.get(name) is None:
            return f"{name} undefined"
        return f"{name} {metrics[name]:.{digits}f} (random {metrics[name + '_random']:.{digits}f})"

    f0 = one("f0_cents", 0) + f" on {metrics.get('f0_cents_n', 0)} of {metrics['f0_examples']}" if "f0_examples" in metrics else ""
    return ", ".join(filter(None, [one("wmfcc", 2), one("sot", 4), one("rms_cos", 3) + " (higher is better)", f0]))


def drawn_examples(synth: Synth, seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(params (n, P), encoder input, audio (n, T)) of examples 0..n-1 of split `seed`, drawn by the synth
    (Dexed: the patch prior with silence redraws). The encoder input is rounded to float16 and back, as a
    dataset shard stores it, so drawn and stored examples look the same to a model."""
    params, audio = draw_examples(synth, seed, np.arange(n))
    return params, synth.features(audio).half().float(), audio


def categorical_accuracy(spec, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """(N,): share of categorical parameters whose argmax choice is right (nan without categorical ones)."""
    hits = [(pred[:, s].argmax(1) == true[:, s].argmax(1)).float()
            for p, s in zip(spec.params, spec.slices) if p.kind == "categorical"]
    return torch.stack(hits, 1).mean(1) if hits else torch.full((pred.shape[0],), float("nan"))


@torch.no_grad()
def evaluate_rendered(model: Sampler, synth: Synth, n: int = 256, steps: int = 100, guidance: float = 2.0, seed: int = 0,
                      split_seed: int = TEST_SEED, device: str = "cpu", data_dir=None, train_seed: int | None = None,
                      candidates: int = 1, audio_metrics: bool = True, f0_examples: int = 64,
                      transpose: bool = True, temperature: float = 1.0, ranker=None) -> dict:
    """Real-synth metrics on n test examples: the first n of `data_dir` (a dataset directory generated for
    this synth; its prior may differ), or examples 0..n-1 drawn from `split_seed`. `train_seed` (the
    training data's seed, from the checkpoint) guards against testing on training examples.

    With `candidates` > 1 a flow also samples that many parameter sets per sound, renders and ranks them as
    `synthinv invert` does, and scores the first: "mss_best_of" etc. The plain metrics
    always score the first sample alone (the paper's protocol). A regressor has one answer, so its
    best-of-N equals its single answer and is not reported.

    `audio_metrics`: also wMFCC, SOT, RMS cosine on all n, and the f0 error in cents on the first
    `f0_examples` only (0: none), each next to the random-patch baseline. Cost on one core for n = 256:
    ~35 s for wMFCC/SOT/RMS (model and baseline), ~20 s for f0 on 64 (3 pYIN tracks per example)."""
    from synthinv.datasets import check_disjoint, first_examples

    model = model.to(device).eval()
    if data_dir is not None:
        params, feats, audio, manifest = first_examples(data_dir, synth, n, role="test")
        if train_seed is not None:
            check_disjoint({"seed": train_seed}, manifest["seed"], "test", str(data_dir))
        source = {"data": str(data_dir), "seed": int(manifest["seed"]), "prior": manifest["synth"]["settings"].get("prior")}
    else:
        if train_seed is not None:
            check_disjoint({"seed": train_seed}, split_seed, "test", f"drawn from seed {split_seed}")
        params, feats, audio = drawn_examples(synth, split_seed, n)
        source = {"drawn": True, "seed": int(split_seed), "prior": synth.spec.settings.get("prior")}
    n = len(params)
    start = time.perf_counter()
    pred = sample_params(model, feats.to(device), steps, guidance, seed, temperature=temperature).cpu().clamp(-1, 1)
    sample_seconds = time.perf_counter() - start
    rand, rand_audio = draw_examples(synth, RANDOM_BASELINE_SEED, np.arange(n))
    pred_audio = synth.render(pred)
    extra, true_f0 = {}, None
    if audio_metrics:
        from synthinv.metrics import f0_tracks

        f0_n = max(0, min(n, f0_examples))
        true_f0 = f0_tracks(audio[:f0_n], synth.sample_rate) if f0_n else None  # tracked once for all
        extra = {**rendered_audio_scores(pred_audio, audio, synth.sample_rate, true_f0),
                 **rendered_audio_scores(rand_audio, audio, synth.sample_rate, true_f0, suffix="_random"),
                 "f0_examples": f0_n}
    return {
        **mean_and_ci95("mss", mss_distance(pred_audio, audio.cpu(), synth.sample_rate)),
        **extra,
        **best_of_candidates(model, synth, feats, audio, params, candidates, steps, guidance, seed, device,
                             transpose=transpose, true_f0=true_f0, temperature=temperature, ranker=ranker),
        **mean_and_ci95("mss_random", mss_distance(rand_audio, audio, synth.sample_rate)),
        "param_mse": param_mse(pred, params).mean().item(),
        "param_mse_random": param_mse(rand, params).mean().item(),
        "categorical_accuracy": categorical_accuracy(synth.spec, pred, params).mean().item(),
        "categorical_accuracy_random": categorical_accuracy(synth.spec, rand, params).mean().item(),
        "n": n, "sample_steps": steps, "guidance": guidance, "temperature": temperature, "sample_seconds": round(sample_seconds, 3), "test": source,
    }


@torch.no_grad()
def best_of_candidates(model: Sampler, synth: Synth, feats: torch.Tensor, audio: torch.Tensor, params: torch.Tensor, candidates: int,
                       steps: int, guidance: float, seed: int, device: str = "cpu", chunk: int = 16,
                       transpose: bool = True, true_f0=None, temperature: float = 1.0, ranker=None) -> dict:
    """{mss_best_of, wmfcc_best_of (each with _ci95), param_mse_best_of, candidates}: per sound, `candidates` samples are rendered and ranked
    by `synthinv invert`'s ranking distance (for real synths MSS itself: the target audio is all invert needs),
    and the first one is scored: the MSS of what invert returns first, plus its wMFCC, which the ranking does
    not see. {} for one candidate or a regressor. Any
    model that samples (flow, VAE) gets candidates. `transpose`: as invert, each candidate is also tried at
    the target's pitch (synthinv.transpose) and the closer of the two kept; `transposed` is the fraction
    of candidates that were. `true_f0` (f0 tracks of the first sounds): also "f0_cents_best_of" on those.
    `ranker` (synthinv.models.surrogate.Ranker, a checkpoint's): the candidates are the nearest by predicted
    sound among a pool of samples per sound ("ranker_pool" says how many), as `synthinv invert` proposes them."""
    from synthinv.metrics import mfcc_distance
    from synthinv.progress import progress_bar
    from synthinv.ranking import rank

    if candidates <= 1 or not model.stochastic:  # a regressor is deterministic: one answer
        return {}
    n, c = len(audio), candidates
    if ranker is not None:  # each sound's c nearest by predicted sound among a pool of samples
        from synthinv.bank import embed
        from synthinv.models.sampler import ranked_draw

        gen, parts = torch.Generator().manual_seed(seed + 1), []
        with progress_bar(n, f"{ranker.pool} samples a sound, {c} kept", unit="sounds") as advance:
            for i in range(0, n, chunk):  # the generator runs on: the same draws as one call for all sounds
                target = embed(audio[i:i + chunk].cpu(), synth.sample_rate)  # (chunk, D)
                parts.append(ranked_draw(model, ranker, synth.spec, feats[i:i + chunk].to(device), target.to(device),
                                         repeats=c, generator=gen, steps=steps, guidance=guidance,
                                         temperature=temperature).cpu())  # (chunk * c, P)
                advance(len(target))
        pred = torch.cat(parts)  # (n * c, P)
    else:
        repeated = feats.repeat_interleave(c, 0)  # (n * c, ...): candidates of sound i at rows i*c .. i*c+c-1
        pred = sample_params(model, repeated.to(device), steps, guidance, seed + 1,
                             temperature=temperature).cpu().clamp(-1, 1)  # (n * c, P)
    chosen, chosen_audio, mss, wmfcc, transposed = [], [], [], [], 0
    with progress_bar(n, f"best of {c}", unit="sounds") as advance:
        for i in range(0, n, chunk):  # a chunk of sounds at a time: all n * c STFTs at once need gigabytes
            j = min(n, i + chunk)
            target = audio[i:j].cpu()  # (j - i, T)
            ranked = rank(synth, pred[i * c : j * c], target.repeat_interleave(c, 0), transpose=transpose)  # (j - i) * c rows
            transposed += int((ranked.shift != 0).sum())
            rows = ranked.best(per_target=c)  # (j - i,): the first of each sound's ranking
            chosen.append(ranked.params[rows])
            chosen_audio.append(ranked.audio[rows])
            mss.append(mss_distance(ranked.audio[rows], target, synth.sample_rate))
            wmfcc.append(mfcc_distance(ranked.audio[rows], target, synth.sample_rate))
            advance(j - i)
    best = torch.cat(chosen)  # (n, P)
    pitch = {}
    if true_f0 is not None and len(true_f0):
        pitch = f0_scores(torch.cat(chosen_audio), true_f0, synth.sample_rate, "f0_cents_best_of")
    return {**mean_and_ci95("mss_best_of", torch.cat(mss)), **mean_and_ci95("wmfcc_best_of", torch.cat(wmfcc)), **pitch,
            "param_mse_best_of": param_mse(best, params).mean().item(),
            "candidates": c, "transpose": transpose, "transposed": transposed / (n * c),
            "ranker_pool": ranker.pool if ranker is not None else None}


@torch.no_grad()
def evaluate_model(model: Sampler, synth: Synth, n: int = 512, steps: int = 100, guidance: float = 2.0, seed: int = 0,
                   split_seed: int = TEST_SEED, device: str = "cpu", data_dir=None, train_seed: int | None = None,
                   candidates: int = 1, transpose: bool = True, temperature: float = 1.0, ranker=None) -> dict:
    """All k-osc metrics on n examples of a split, next to the random-parameter baseline LSD.

    For dataset-backed synths (Dexed) this is `evaluate_rendered` (MSS etc.; `data_dir`, `train_seed`)."""
    if synth.trains_from_data:
        return evaluate_rendered(model, synth, n, steps, guidance, seed, split_seed, device, data_dir, train_seed,
                                 candidates, transpose=transpose, temperature=temperature, ranker=ranker)
    if data_dir is not None:
        raise UsageError(f"{synth.name} is evaluated on a generated split; it takes no test dataset")
    model = model.to(device).eval()
    params, audio = split_batch(synth, split_seed, n, device)
    start = time.perf_counter()
    pred = sample_params(model, audio, steps, guidance, seed, temperature=temperature)
    sample_seconds = time.perf_counter() - start
    rand = synth.params_at(RANDOM_BASELINE_SEED, np.arange(n)).to(device)
    token_scores = {}  # set distances over parameter tokens (k-osc oscillators), for synths that have tokens
    if synth.n_tokens is not None:
        pred_tokens, true_tokens = split_tokens(pred.clamp(-1, 1), synth.n_tokens), split_tokens(params, synth.n_tokens)
        token_scores = {"chamfer": chamfer_distance(pred_tokens, true_tokens).mean().item(),
                        "assignment_mse": assignment_mse(pred_tokens, true_tokens).mean().item()}
    result = {
        **mean_and_ci95("lsd", lsd_of(synth, pred, audio)),
        **mean_and_ci95("lsd_random", lsd_of(synth, rand, audio)),
        **token_scores,
        "param_mse": param_mse(pred.clamp(-1, 1), params).mean().item(),
        "n": n, "sample_steps": steps, "guidance": guidance, "temperature": temperature,
        "sample_seconds": round(sample_seconds, 3),
    }
    return result


@torch.no_grad()
def lookup_best_of(synth: Synth, audio: torch.Tensor, bank, candidates: int, transpose: bool = True,
                   chunk: int = 16, name: str = "retrieval_mss") -> dict:
    """The lookup baseline with as many candidates as best-of-N: per target sound (audio (n, T)), the bank's
    `candidates` nearest patches (synthinv.bank embedding), ranked as `best_of_candidates` ranks a model's
    samples (invert's distance, each also tried at the target's pitch); {name, name_ci95}: the MSS of the first."""
    return mean_and_ci95(name, lookup_first_mss(synth, audio, bank, candidates, transpose=transpose, chunk=chunk))


@torch.no_grad()
def lookup_first_mss(synth: Synth, audio: torch.Tensor, bank, candidates: int, transpose: bool = True, chunk: int = 16,
                     refine: Callable[[slice, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """audio (n, T) -> (n,): per sound, the MSS of the first of its `candidates` nearest bank patches ranked as
    invert ranks. `refine(sounds, starts)`, if given, replaces the patches of sounds `sounds` (a slice of
    audio) by what it makes of them, (m * candidates, P) -> (m * candidates, P), before the ranking: e.g. a
    flow moving each patch towards the target (`FlowModel.refine`)."""
    from synthinv.ranking import rank

    c, mss = candidates, []
    for i in range(0, len(audio), chunk):
        target = audio[i : i + chunk].cpu()  # (m, T)
        rows = torch.cat([bank.nearest(t, synth.sample_rate, c)[0] for t in target])  # (m * c,) bank rows
        params = bank.params[rows] if refine is None else refine(slice(i, i + len(target)), bank.params[rows])
        ranked = rank(synth, params, target.repeat_interleave(c, 0), transpose=transpose)
        best = ranked.best(per_target=c)  # (m,)
        mss.append(mss_distance(ranked.audio[best], target, synth.sample_rate))
    return torch.cat(mss)
