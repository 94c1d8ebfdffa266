"""The `synthinv` command. Every subcommand has --help; user errors print one line and exit 2."""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from pathlib import Path

import typer

app = typer.Typer(help="Recover synthesizer parameters from audio with symmetry-aware flow matching.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
experiment_app = typer.Typer(help="Reproduce the paper's experiments.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")
bank_app = typer.Typer(help="Banks of rendered prior patches that `invert` retrieves its nearest proposals from.",
                       no_args_is_help=True)
app.add_typer(bank_app, name="bank")


def friendly_errors(fn):
    """A SynthinvError (something the user gave cannot be used) becomes `error: ...` on one line and exit
    code 2. Anything else is a bug in synthinv: it keeps its traceback and exits with 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from synthinv.errors import SynthinvError, one_line

        try:
            return fn(*args, **kwargs)
        except SynthinvError as exc:
            typer.echo(f"error: {one_line(str(exc))}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def check_budget(budget: float | None, steps: int | None) -> None:
    from synthinv.errors import UsageError

    if budget is not None and not (math.isfinite(budget) and budget > 0):  # nan > 0 is False too
        raise UsageError(f"--budget must be a positive number of minutes, got {budget}")
    if steps is not None and steps <= 0:
        raise UsageError(f"--steps must be a positive number of steps, got {steps}")
    if budget is None and steps is None:
        raise UsageError("give --budget MINUTES or --steps N")


def check_k(k: int) -> None:
    from synthinv.errors import UsageError

    if k < 1 or k > 64:
        raise UsageError(f"--k must be between 1 and 64 oscillators, got {k}")


@app.command()
@friendly_errors
def train(
    method: str = typer.Argument(..., help="Shipped method (e.g. flow_param2tok, regression_mse) or a config .yaml."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory for model.ckpt and train.json."),
    synth: str = typer.Option("kosc", "--synth", help="kosc (batches generated on the fly), or dexed or a plugin synth such as amsynth, subtractive3 (trains from --data)."),
    data: Path | None = typer.Option(None, "--data", help="Dexed: training dataset directory (from `synthinv generate`)."),
    val_data: Path | None = typer.Option(None, "--val-data", help="Dexed: validation dataset directory (default: "
                                            "examples drawn from the fixed validation seed)."),
    k: int = typer.Option(4, help="k-osc: number of oscillators."),
    asym: bool = typer.Option(False, "--asym", help="k-osc: symmetry-broken task (disjoint frequency bands)."),
    budget: float | None = typer.Option(None, help="Training time budget in minutes (validation excluded)."),
    steps: int | None = typer.Option(None, help="Maximum optimiser steps (with --budget: whichever ends first)."),
    batch_size: int | None = typer.Option(None, help="Override the config's batch size."),
    lr: float | None = typer.Option(None, help="Override the config's peak learning rate."),
    seed: int = typer.Option(0, help="Training seed (data order and initialisation)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N (one device; see --accelerator for more)."),
    accelerator: str | None = typer.Option(None, help="cpu, gpu or auto (default: from --device)."),
    devices: int = typer.Option(1, help="Processes per node (CPU) or GPUs per node; more than one trains with DDP, "
                                "--batch-size per device."),
    num_nodes: int = typer.Option(1, help="Nodes (needs a launcher: srun under SLURM, or torchrun)."),
    strategy: str = typer.Option("auto", help="auto or ddp."),
    precision: str = typer.Option("32", help="32 or bf16-mixed (the model in bfloat16 autocast; audio stays float32): "
                                  "pays on GPUs and on CPUs with AVX512-BF16."),
    num_workers: int | None = typer.Option(None, help="Dexed: DataLoader worker processes per device (default: "
                                           "the config's)."),
    resume: bool = typer.Option(False, "--resume", help="Write into --out as training goes and continue from its "
                                "last.ckpt when there is one (rerun the same command after an interruption)."),
    save_every: float = typer.Option(10.0, help="Minutes between saves of the resumable state (last.ckpt)."),
    threads: int | None = typer.Option(None, help="torch CPU threads (default: torch's choice)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run directory."),
):
    """Train one model; keeps the checkpoint with the best validation score (k-osc: LSD; Dexed: MSS).

    Every process of a multi-device run (Lightning starts them, or srun/torchrun) runs this same command;
    rank 0 alone writes --out."""
    from synthinv import synths
    from synthinv.checks import (
        MAX_BATCH_SIZE,
        check_count,
        check_device,
        check_number,
        check_out_folder,
        check_seed,
        check_threads,
    )
    from synthinv.config import load_config
    from synthinv.errors import UsageError
    from synthinv.training import Scale, check_scale, launched_rank, launcher_found, usable_cpus

    check_budget(budget, steps)
    check_count("--batch-size", batch_size, 1, MAX_BATCH_SIZE)
    check_count("--num-workers", num_workers, 0, 64)
    check_number("--lr", lr, positive=True)
    check_number("--save-every", save_every, positive=True)
    check_threads(threads)
    check_seed(seed)
    check_device(device)
    scale = Scale.from_device(device)
    if accelerator is not None:
        if device != "cpu" and accelerator != "gpu":
            raise UsageError(f"--device {device} and --accelerator {accelerator} disagree; give one of them")
        scale.accelerator = accelerator
    scale.devices, scale.num_nodes, scale.strategy, scale.precision = devices, num_nodes, strategy, precision
    if scale.gpu_index is not None and devices > 1:
        raise UsageError(f"--device {device} names one GPU; for {devices} use --accelerator gpu --devices {devices}")
    resolved = check_scale(scale)
    if threads is None and resolved.accelerator == "cpu" and devices > 1 and not launcher_found():
        threads = max(1, usable_cpus() // devices)  # Lightning's processes share this machine's cores
    rank_zero = launched_rank() == 0  # the other ranks train and write nothing
    if rank_zero and not resume:
        check_out_folder(out, force, inputs=(data, val_data), empty_ok=True)
    on_the_fly = not synths.synth_class(synth).trains_from_data  # k-osc: batches rendered as training goes
    if on_the_fly:
        if data is not None or val_data is not None:
            raise UsageError(f"--data/--val-data are for synths that train from a dataset (--synth dexed or a plugin "
                             f"synth); {synth} generates its training batches on the fly")
        check_k(k)
        config = load_config(method, synth)
        the_synth = synths.get(synth, k=k, asym=asym)
    else:
        from synthinv.datasets import DatasetError, check_disjoint, open_dataset, synth_of_dataset
        from synthinv.evaluation import VAL_SEED

        if data is None:
            raise UsageError(f"--synth {synth} trains from a generated dataset: pass --data DIR "
                             f"(make one with `synthinv generate --synth {synth} --n N --out DIR`)")
        if asym:
            raise UsageError(f"--asym is not a setting of {synth}")
        config = load_config(method, synth)
        the_synth, manifest = synth_of_dataset(data)
        if the_synth.name != synth:
            raise DatasetError(f"{data} is a {the_synth.name!r} dataset, not {synth!r}")
        if val_data is not None:
            val_seed = open_dataset(val_data, the_synth, role="validation").manifest["seed"]
            check_disjoint(manifest, val_seed, "validation", str(val_data))
        else:
            check_disjoint(manifest, VAL_SEED, "validation", f"drawn from seed {VAL_SEED}")
    if batch_size is not None:
        config.train.batch_size = batch_size
    if lr is not None:
        config.train.lr = lr
    if num_workers is not None:
        config.train.num_workers = num_workers
    set_threads(threads)
    options = dict(budget_minutes=budget, max_steps=steps, seed=seed, scale=scale, save_every_minutes=save_every,
                   **({} if on_the_fly else {"data_dir": data, "val_dir": val_data}))
    about = {"method": config.name, **({"k": k, "asym": asym} if on_the_fly else {"synth": synth})}
    meta = train_into(out, rank_zero, resume, config, the_synth, about, options)
    if not rank_zero:
        return
    metric = meta["val_metric"]
    versus = (f" (random parameters {meta[f'random_val_{metric}']:.3f} dB)"
              if meta.get(f"random_val_{metric}") is not None else "")
    if on_the_fly:
        typer.echo(f"trained {config.name} (k={k}, {'asym' if asym else 'sym'}): {meta['steps']} steps in "
                   f"{meta['train_seconds']} s, best validation LSD {meta['best_val_lsd']:.3f} dB{versus}")
    else:
        typer.echo(f"trained {config.name} ({synth}, {meta['data']['examples']} training examples): {meta['steps']} "
                   f"steps in {meta['train_seconds']} s, best validation MSS {meta['best_val_mss']:.3f} dB{versus}")
    if meta.get("warning"):
        typer.echo(f"warning: {meta['warning']}", err=True)
    typer.echo(f"checkpoint: {out / 'model.ckpt'}")


def train_into(out: Path, rank_zero: bool, resume: bool, config, synth, about: dict, options: dict) -> dict:
    """Run training for `train`. Rank 0 writes model.ckpt, last.ckpt and train.json: without --resume into
    a folder that appears only when training has finished; with it into `out` itself as training goes
    (continuing from out/last.ckpt where there is one), so an interrupted run leaves its state behind."""
    from synthinv.errors import InputNotFoundError, OutputExistsError
    from synthinv.fileio import building_folder, write_json_atomic
    from synthinv.training import LAST
    from synthinv.training import train as run_training

    if not rank_zero:  # rank 0's folder is told to Lightning's checkpointing by Lightning itself
        last = out / LAST if resume and (out / LAST).is_file() else None
        return run_training(config, synth, None, resume=last, **options)
    if not resume:
        with building_folder(out) as run:  # the run folder appears only when training has finished
            meta = run_training(config, synth, run, **options)
            (run / "train.json").write_text(json.dumps({**about, **meta}, indent=2))
        return meta
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is a file, not a run folder to resume")
    last = out / LAST
    if out.is_dir() and not last.is_file() and any(out.iterdir()):
        raise InputNotFoundError(f"{out} holds no {LAST} to resume from (not a run folder, or one made before "
                                 "resumable states were written); choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    meta = run_training(config, synth, out, resume=last if last.is_file() else None, **options)
    write_json_atomic(out / "train.json", {**about, **meta})
    return meta


@app.command()
@friendly_errors
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A model.ckpt written by `synthinv train`."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Metrics JSON (default: metrics.json beside the checkpoint)."),
    data: Path | None = typer.Option(None, "--data", help="Dexed: test dataset directory (default: examples drawn "
                                        "from the fixed test seed)."),
    n: int = typer.Option(512, help="Number of test examples."),
    steps: int = typer.Option(100, help="RK4 steps for flow sampling."),
    guidance: float | None = typer.Option(None, help="Classifier-free guidance strength (default: the config's)."),
    seed: int = typer.Option(0, help="Sampling seed."),
    transpose: bool = typer.Option(True, help="Pitch handling: try each candidate moved to the target's pitch (synths "
                                   "with a MIDI-note parameter) and keep the closer of the two; for a target with a "
                                   "steady pitch, steer the search to its note and rank an in-tune candidate first "
                                   "when it is within 1 dB of the closest. --no-transpose: MSS alone."),
    candidates: int = typer.Option(1, help="Dexed: also sample this many candidates per sound, rank them as "
                                   "`invert` does and score the first (mss_best_of); 1 = single-sample metrics only."),
    threads: int | None = typer.Option(None, help="torch CPU threads."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing metrics file."),
    audio_dir: Path | None = typer.Option(None, "--audio-dir", help="Out of distribution: invert every audio file "
                                             "of this folder instead and score the best of --candidates against it "
                                             "(and random patches); --out is then a folder for ood.md/.csv/.json "
                                             "(default: ood_<folder> beside the checkpoint)."),
    budget: float | None = typer.Option(None, help="Dexed and plugin synths: score what `invert --budget S` returns "
                                           "first (proposals + S seconds of search), next to the bank lookup and "
                                           "random patches; on the test split the other metrics are skipped."),
    ranker: bool = typer.Option(True, help="With --candidates: a checkpoint that carries a ranker proposes the "
                                "candidates nearest by predicted sound among a pool of samples, as `invert` does. "
                                "--no-ranker: plain samples."),
):
    """Score a checkpoint on the fixed test split. k-osc: LSD (with the random-parameter baseline), Chamfer,
    assignment MSE. Dexed: MSS, wMFCC, spectral OT, RMS-envelope cosine, f0 error (each with random patches as
    the baseline), parameter MSE, categorical accuracy. With --audio-dir: the audio metrics on your sounds."""
    from synthinv.checkpoint import load_checkpoint, stored_config
    from synthinv.checks import (
        MAX_EVAL_EXAMPLES,
        check_count,
        check_out_file,
        check_sampling,
        check_seed,
        check_threads,
    )
    from synthinv.datasets import DatasetError
    from synthinv.errors import UsageError
    from synthinv.evaluation import evaluate_model
    from synthinv.fileio import write_json_atomic
    from synthinv.models.sampler import takes_ode_settings
    from synthinv.models.surrogate import ranker_from_checkpoint

    check_sampling(candidates, steps, guidance)
    check_threads(threads)
    check_seed(seed)
    if budget is not None:
        from synthinv.pipeline import check_invert_settings

        check_invert_settings(max(candidates, 1), steps, budget, 0, prefix="--")
    if audio_dir is not None:
        return evaluate_audio_dir_cli(checkpoint, audio_dir, out, data, candidates, steps, guidance, seed, threads, force,
                                      transpose, budget or 0.0)
    check_count("--n", n, 1, MAX_EVAL_EXAMPLES, "the test sounds are rendered at once")
    out = out or checkpoint.parent / "metrics.json"
    check_out_file(out, force)
    if budget is not None:
        return evaluate_search_cli(checkpoint, out, data, n, budget, seed, threads, force)
    if data is not None and not data.is_dir():
        raise DatasetError(f"test dataset not found: {data} is not a directory")
    set_threads(threads)
    model, synth, blob = load_checkpoint(checkpoint)
    if guidance is not None and not takes_ode_settings(model):
        raise UsageError(f"--guidance is for flow models; {checkpoint} is a {stored_config(blob, checkpoint).model.kind} "
                         "model, which has none")
    g = guidance if guidance is not None else stored_config(blob, checkpoint).sample.guidance
    if data is not None and not synth.trains_from_data:
        raise UsageError(f"--data is for dataset-backed synths (dexed); {checkpoint} is a {synth.name} model")
    train_seed = (blob["meta"].get("data") or {}).get("seed")  # None for on-the-fly k-osc models
    if candidates > 1 and not synth.trains_from_data:
        raise UsageError("--candidates is for dataset-backed synths (dexed)")
    metrics = evaluate_model(model, synth, n=n, steps=steps, guidance=g, seed=seed, data_dir=data, train_seed=train_seed,
                             candidates=candidates, transpose=transpose,
                             temperature=stored_config(blob, checkpoint).sample.temperature,
                             ranker=ranker_from_checkpoint(blob, synth, str(checkpoint)) if ranker else None)
    metrics = {"checkpoint": str(checkpoint), "method": stored_config(blob, checkpoint).name, "synth": blob["synth"], **metrics}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, metrics)
    if not synth.trains_from_data:
        tokens = (f", Chamfer {metrics['chamfer']:.4f}, assignment MSE {metrics['assignment_mse']:.4f}"
                  if "chamfer" in metrics else "")  # synths made of parameter tokens (k-osc oscillators)
        typer.echo(f"LSD {metrics['lsd']:.3f} dB (random parameters: {metrics['lsd_random']:.3f} dB){tokens}")
    else:
        typer.echo(f"MSS {metrics['mss']:.3f} ± {metrics['mss_ci95']:.3f} dB (random patches: {metrics['mss_random']:.3f} dB) "
                   f"on {metrics['n']} examples, parameter MSE {metrics['param_mse']:.4f} (random "
                   f"{metrics['param_mse_random']:.4f}), categorical accuracy {metrics['categorical_accuracy']:.3f} "
                   f"(random {metrics['categorical_accuracy_random']:.3f})")
        if "mss_best_of" in metrics:
            typer.echo(f"best of {metrics['candidates']} samples per sound: MSS {metrics['mss_best_of']:.3f} ± "
                       f"{metrics['mss_best_of_ci95']:.3f} dB" + (f" ({metrics['transposed']:.0%} of candidates transposed "
                       "to the target's pitch)" if metrics.get("transpose") else " (no transposition)")
                       + (f"; f0 within 50 cents for {metrics['f0_cents_best_of_within_50']:.0%} of "
                          f"{metrics['f0_cents_best_of_n']}" if metrics.get("f0_cents_best_of_within_50") is not None else ""))
        if "wmfcc" in metrics:
            from synthinv.evaluation import audio_metrics_line

            typer.echo(audio_metrics_line(metrics))
    typer.echo(f"metrics: {out}")


def evaluate_search_cli(checkpoint, out, data, n, budget, seed, threads, force) -> None:
    """`evaluate --budget S` on the test split: invert's first candidate at S seconds, the lookup, random."""
    import numpy as np

    from synthinv.datasets import first_examples
    from synthinv.errors import UsageError
    from synthinv.evaluation import TEST_SEED
    from synthinv.fileio import write_json_atomic
    from synthinv.pipeline import Inverter
    from synthinv.search_eval import markdown_table, run_methods, summarise
    from synthinv.synths.base import draw_examples

    set_threads(threads)
    rows_path = out.with_name(out.stem + ".rows.jsonl")  # per sound, so an interrupted run resumes
    if force:
        rows_path.unlink(missing_ok=True)
    with Inverter(str(checkpoint), say=typer.echo) as inverter:
        synth = inverter.synth
        if not synth.uses_bank:  # the plan compares the search with the bank lookup
            raise UsageError(f"--budget is for synths with a patch bank (dexed, plugins); {checkpoint} is a "
                             f"{synth.name} model")
        if data is not None:
            audio = first_examples(data, synth, n)[2]
        else:
            audio = draw_examples(synth, TEST_SEED, np.arange(n))[1]
        sounds = [(f"test_{i:04d}", audio[i]) for i in range(len(audio))]
        plan = [("default", budget), ("retrieval", 0.0), ("random", 0.0)]
        tag = f"{Path(checkpoint).resolve()}|data={data}|seed={seed}"  # resumed rows must come from the same run
        rows = run_methods(inverter, "test", sounds, plan, rows_path, seed=seed, tag=tag)
    summary = summarise(rows)
    write_json_atomic(out, {"checkpoint": str(checkpoint), "budget": budget, "n": len(sounds), "summary": summary})
    typer.echo(markdown_table(summary))
    typer.echo(f"metrics: {out} (per sound: {rows_path})")


def evaluate_audio_dir_cli(checkpoint, audio_dir, out, data, candidates, steps, guidance, seed, threads, force,
                           transpose, budget=0.0) -> None:
    """`evaluate --audio-dir`: the work is synthinv.ood's; this checks the flags and prints where it went."""
    from synthinv.checks import check_writable
    from synthinv.errors import OutputExistsError, UsageError
    from synthinv.ood import evaluate_audio_dir, ood_out_dir, summary_line, write_ood_tables

    if data is not None:
        raise UsageError("--data and --audio-dir exclude each other: one scores a test dataset, the other your sounds")
    try:
        out = ood_out_dir(checkpoint, audio_dir, out, force)
    except OutputExistsError as exc:  # tables from an earlier run
        raise OutputExistsError(f"{exc}; pass --force to overwrite them") from None
    check_writable(out)
    set_threads(threads)
    result = evaluate_audio_dir(checkpoint, audio_dir, candidates=candidates, steps=steps, guidance=guidance, seed=seed,
                                transpose=transpose, budget=budget)
    write_ood_tables(result, out)
    typer.echo(summary_line(result))
    typer.echo(f"tables: {out / 'ood.md'}, {out / 'ood.csv'}, {out / 'ood.json'}")


@app.command()
@friendly_errors
def invert(
    sound: Path = typer.Argument(..., help="The sound to invert (wav, flac, ogg, aiff; any rate, mono or stereo), or "
                                 "a folder of sounds: each goes to OUT/<name>/ (resumable; Dexed: 32-voice banks "
                                 "of the best presets, OUT/bank_NN.syx)."),
    synth: str | None = typer.Option(None, help="Which synth to find presets for (default: the --model's synth, "
                                        "else dexed)."),
    model: str | None = typer.Option(None, help="Shipped model name (see `synthinv models`) or a checkpoint path "
                                        "(default: the synth's shipped model)."),
    candidates: int = typer.Option(8, help="How many presets to write, best first (at --budget 0: how many model "
                                   "samples to rank)."),
    budget: float = typer.Option(10.0, help="Seconds for proposals (model samples + nearest patches of the synth's "
                                 "bank) and a CMA-ES search on real renders; 0 = no search, rank model samples only. "
                                 "Ctrl-C ends the search early and still writes the best found."),
    steps: int = typer.Option(50, help="RK4 steps of the flow sampler."),
    guidance: float | None = typer.Option(None, help="Classifier-free guidance strength (default: the model's)."),
    refine: int = typer.Option(0, help="Render budget for a Nelder-Mead refinement of the best candidate (0: off)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: inversions/<sound name>)."),
    seed: int = typer.Option(0, help="Sampling seed."),
    transpose: bool = typer.Option(True, help="Pitch handling: try each candidate moved to the target's pitch (synths "
                                   "with a MIDI-note parameter) and keep the closer of the two; for a target with a "
                                   "steady pitch, steer the search to its note and rank an in-tune candidate first "
                                   "when it is within 1 dB of the closest. --no-transpose: MSS alone."),
    truth: Path | None = typer.Option(None, help="A preset JSON with the true parameters, shown in the report."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output folder."),
    threads: int | None = typer.Option(None, help="torch CPU threads of the main process (default 1: the worker processes, one per core, render and score)."),
):
    """Find presets that reproduce SOUND: propose (model samples, nearest bank patches), search on real renders
    for --budget seconds, rank by spectral distance, write presets, audio and a report."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from synthinv.checks import check_invert
    from synthinv.pipeline import check_invert_settings, write_inversion
    from synthinv.pipeline import invert as run_invert
    from synthinv.scoring import scoring

    out = out or Path("inversions") / sound.stem
    if sound.is_dir():
        return invert_folder_cli(sound, out, synth, model, candidates, budget, steps, guidance, refine, seed,
                                 transpose, truth, threads)
    check_invert(sound, out, candidates, steps, guidance, refine, truth, force, threads, model, seed)
    check_invert_settings(candidates, steps, budget, refine, guidance, prefix="--")
    set_threads(threads)
    result = run_invert(sound, model, synth, candidates, steps, guidance, refine, seed, truth=truth, transpose=transpose,
                        budget=budget, say=typer.echo, threads=threads)
    for note in result.target.notes:
        typer.echo(f"input: {note}")
    for message in result.messages:
        typer.echo(message)
    write_inversion(result, out, force=force, truth=result.truth)
    table = Table(title=f"{escape(sound.name)}: {len(result.candidates)} candidates, best first")  # names are not markup
    how = scoring(result.synth)
    for col in ("#", how.label, how.check_label, "level dB", "source", "folder"):
        table.add_column(col, no_wrap=col in ("#", how.label, how.check_label, "folder"))
    levels = result.levels_db()
    for rank, (cand, level) in enumerate(zip(result.candidates[:10], levels), 1):
        table.add_row(str(rank), f"{cand.distance:.3f}", f"{cand.check:.2f}", f"{level:+.1f}", escape(cand.source),
                      f"candidate_{rank:02d}")
    Console().print(table)
    if abs(levels[0]) > 3:
        typer.echo(f"note: the first preset plays {abs(levels[0]):.1f} dB {'louder' if levels[0] > 0 else 'quieter'} "
                   "than the target (moving it closer changed its sound too much)")
    typer.echo(f"presets, audio and report: {out}/ (report.html)")


def invert_folder_cli(folder, out, synth, model, candidates, budget, steps, guidance, refine, seed, transpose, truth,
                      threads) -> None:
    """`invert FOLDER`: every sound into OUT/<name>/ (resumable), Dexed banks of the best presets."""
    from rich.markup import escape

    from synthinv.audio_io import AudioError
    from synthinv.batch import invert_folder
    from synthinv.checks import check_sampling, check_seed, check_threads, check_writable
    from synthinv.errors import OutputExistsError, UsageError
    from synthinv.ood import AUDIO_SUFFIXES, audio_files_in
    from synthinv.pipeline import Inverter, check_invert_settings

    if truth is not None:
        raise UsageError("--truth is for one sound, not a folder")
    check_sampling(candidates, steps, guidance, refine)
    check_invert_settings(candidates, steps, budget, refine, guidance, prefix="--")
    check_seed(seed)
    check_threads(threads)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a directory; choose another --out")
    check_writable(out, "--out")
    if not audio_files_in(folder):  # before the model loads
        raise AudioError(f"{folder} is a folder that holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    set_threads(threads)
    with Inverter(model, synth, say=typer.echo, threads=threads) as inverter:
        result = invert_folder(inverter, folder, out, say=lambda m: typer.echo(escape(m)), candidates=candidates,
                               budget=budget, steps=steps, guidance=guidance, seed=seed, transpose=transpose,
                               refine_budget=refine)
    done = sum(r["status"].startswith("done") for r in result.rows)
    typer.echo(f"{done} of {len(result.rows)} sounds inverted into {out}/<name>/ (table: {out / 'batch.csv'})")
    for bank in result.banks:
        typer.echo(f"DX7 bank: {bank}")


@bank_app.command("build")
@friendly_errors
def bank_build(
    synth: str = typer.Option("dexed", help="dexed or a plugin synth (amsynth, subtractive3, ...)."),
    n: int = typer.Option(16384, help="Patches in the bank (invert uses 16384 unless told otherwise)."),
    seed: int = typer.Option(5_000_029, help="Split the patches are drawn from (must not be a training, validation "
                             "or test seed)."),
    workers: int | None = typer.Option(None, help="Worker processes (default: one per core)."),
):
    """Render a bank once (resumable: an interrupted build continues where it stopped) into the cache folder
    ($SYNTHINV_CACHE, else ~/.cache/synthinv)."""
    from synthinv import synths
    from synthinv.bank import bank_path, build_bank, check_bank_request, load_bank
    from synthinv.errors import UsageError

    with_bank = [name for name, cls in synths.registry().items() if cls.uses_bank]
    if synth not in with_bank:
        raise UsageError(f"no bank for synth {synth!r}; available: {', '.join(with_bank)}")
    check_bank_request(n, seed)
    the_synth = synths.get(synth)
    path = bank_path(the_synth, n, seed)
    if path.exists():
        bank = load_bank(path, the_synth)
        typer.echo(f"{path} already holds {len(bank)} {synth} patches")
        return
    build_bank(the_synth, n, seed, workers, path)
    typer.echo(f"bank: {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def models():
    """List the models shipped with synthinv (no download needed)."""
    from synthinv.zoo import model_card, shipped_models

    found = shipped_models()
    if not found:
        typer.echo("no shipped models in this installation")
    for name, path in found.items():
        first = next((line for line in model_card(name).splitlines() if line.strip() and not line.startswith("#")), "")
        typer.echo(f"{name}  ({path.stat().st_size / 1e6:.1f} MB)  {first}")


@experiment_app.command("kosc")
@friendly_errors
def experiment_kosc(
    k: int = typer.Option(4, help="Number of oscillators."),
    budget: float | None = typer.Option(None, help="Training minutes per method (validation and test excluded); required unless --eval-only."),
    methods: str | None = typer.Option(None, help="Comma-separated subset of methods (default: all ten)."),
    out: Path = typer.Option(Path("results"), help="Where tables and plots go (results/kosc_k<k>.*)."),
    runs: Path = typer.Option(Path("runs"), help="Where checkpoints go (not committed)."),
    seed: int = typer.Option(0, help="Training seed for every method."),
    eval_examples: int = typer.Option(512, help="Test examples per method."),
    eval_steps: int = typer.Option(100, help="RK4 steps at test time."),
    threads: int | None = typer.Option(None, help="torch CPU threads."),
    force: bool = typer.Option(False, "--force", help="Rerun methods that already have results."),
    progress: bool = typer.Option(True, help="Show a progress bar per method."),
    eval_only: bool = typer.Option(False, "--eval-only", help="Re-score finished methods' checkpoints; train nothing."),
    precision: str = typer.Option("32", help="Training precision: 32 or bf16-mixed (bfloat16 autocast; pays on CPUs "
                                  "with AVX512-BF16 and on GPUs). Evaluation runs in float32."),
):
    """Train and evaluate the ten k-osc methods at one budget; resumable (finished methods are skipped)."""
    from synthinv.checks import MAX_EVAL_EXAMPLES, check_count, check_seed, check_threads
    from synthinv.experiment import reevaluate_method, run_method, select_methods, summarise
    from synthinv.training import Scale, check_scale

    if not eval_only:
        check_budget(budget, None)
    check_k(k)
    check_count("--eval-examples", eval_examples, 1, MAX_EVAL_EXAMPLES)
    check_count("--eval-steps", eval_steps, 1)
    check_threads(threads)
    check_seed(seed)
    check_scale(Scale(precision=precision))
    chosen = select_methods(methods)
    results_dir, runs_dir = out / f"kosc_k{k}", runs / f"kosc_k{k}"
    results_dir.mkdir(parents=True, exist_ok=True)
    set_threads(threads)
    for i, method in enumerate(chosen, 1):
        done = results_dir / f"{method.name}.json"
        if eval_only:
            if done.exists():
                row = reevaluate_method(method, results_dir, runs_dir, eval_examples, eval_steps)
                typer.echo(f"[{i}/{len(chosen)}] {method.name}: test LSD {row['lsd']:.3f} ± {row['lsd_ci95']:.3f} dB")
            else:
                typer.echo(f"[{i}/{len(chosen)}] {method.name}: no results yet, skipping")
            continue
        if done.exists() and not force:
            typer.echo(f"[{i}/{len(chosen)}] {method.name}: already done ({done}), skipping")
            continue
        typer.echo(f"[{i}/{len(chosen)}] {method.name}: training for {budget} min ...")
        start = time.perf_counter()
        assert budget is not None  # checked above: only --eval-only runs without one
        row = run_method(method, k, budget, results_dir, runs_dir, seed, eval_examples, eval_steps, progress,
                         precision=precision)
        typer.echo(f"[{i}/{len(chosen)}] {method.name}: test LSD {row['lsd']:.3f} dB "
                   f"(random {row['lsd_random']:.3f}) in {time.perf_counter() - start:.0f} s")
        summarise(k, results_dir, out, runs_dir)
    for path in summarise(k, results_dir, out, runs_dir):
        typer.echo(f"wrote {path}")


data_app = typer.Typer(help="Inspect generated datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.command("generate")
@friendly_errors
def generate_command(
    synth: str = typer.Option("dexed", help="Which synth to render: dexed, kosc, or a plugin synth (amsynth, subtractive3, surge_xt_simple, surge_xt_full, or a spec on SYNTHINV_SPEC_PATH)."),
    n: int = typer.Option(..., help="Number of examples in the dataset."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset directory (manifest.json + shard_*.h5)."),
    workers: int = typer.Option(1, help="Rendering processes (one synth each; use one per free core)."),
    seed: int = typer.Option(0, help="Split seed: example i is a pure function of (seed, i)."),
    shards: str | None = typer.Option(None, help="Only shards a..b-1, as a:b (for spreading one dataset over jobs)."),
    part: str | None = typer.Option(None, help="Only part I of N equal parts of the shards, as I/N counted from 0 "
                                    "(a job array: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)."),
    shard_size: int = typer.Option(1024, help="Examples per shard file."),
    prior: str | None = typer.Option(None, help="Dexed only: patch (default; sounds like patches) or uniform."),
    k: int = typer.Option(4, help="k-osc only: number of oscillators."),
    progress: bool = typer.Option(True, help="Show a progress bar with examples/s."),
):
    """Render a dataset (parameters + log-mel spectrograms) into shards; rerun the same command to resume."""
    import errno

    from synthinv import synths
    from synthinv.checks import check_generate
    from synthinv.data.generate import generate, parse_shards
    from synthinv.data.shards import DatasetError, completed, read_manifest
    from synthinv.errors import UsageError

    check_generate(n, shard_size, workers, out, seed)
    known = synths.get(synth).spec.settings  # the synth's own settings: an option is passed on where it has one
    if "k" in known:
        check_k(k)
    if prior is not None and "prior" not in known:
        raise UsageError(f"--prior applies to synths with a prior setting (dexed), not to {synth}")
    settings = {"name": synth, **({"k": k} if "k" in known else {}), **({"prior": prior} if prior is not None else {})}
    try:
        shard_range = parse_shards(shards) if shards is not None else None
    except DatasetError as exc:  # "shards must look like a:b ...": the library names the value, we the option
        raise DatasetError(f"--{exc}") from None
    if part is not None:
        if shards is not None:
            raise UsageError("give --shards or --part, not both")
        shard_range = part_range(part, -(-n // shard_size))
        if shard_range is None:
            typer.echo(f"part {part} holds none of the {-(-n // shard_size)} shards: nothing to do")
            return
    try:
        result = generate(settings, n, out, seed, shard_size=shard_size, workers=workers, shards=shard_range, progress=progress)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise UsageError(exc.strerror if exc.strerror and "shards" in exc.strerror else f"disk full writing to {out}; "
                             "completed shards are kept; free some space and rerun the same command to resume") from None
        raise
    except KeyboardInterrupt:
        manifest = read_manifest(out) if out.is_dir() else None
        done = completed(manifest) if manifest else 0
        total = len(manifest["shards"]) if manifest else 0
        typer.echo(f"interrupted: {done} of {total} shards complete in {out}; rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    skipped = f"; {len(result.skipped)} already complete, skipped" if result.skipped else ""
    rewritten = f"; {len(result.rewritten)} rewritten (corrupt or truncated)" if result.rewritten else ""
    typer.echo(f"wrote {len(result.written)} shards ({result.examples} examples) in {result.seconds:.1f} s, "
               f"{result.examples_per_s:.0f} examples/s{skipped}{rewritten}")
    manifest = read_manifest(out)
    assert manifest is not None  # generate has just written it
    done = completed(manifest)
    state = "complete" if result.complete else f"{done} of {len(manifest['shards'])} shards done"
    bpe = f", {result.bytes_per_example / 1000:.1f} kB per example" if result.bytes_per_example else ""
    typer.echo(f"dataset {state}{bpe}: {out / 'manifest.json'}")


def part_range(text: str, n_shards: int) -> tuple[int, int] | None:
    """'I/N' -> the shard range of part I (0-based) of N near-equal parts; None where the part is empty
    (more parts than shards)."""
    from synthinv.errors import UsageError

    i_text, _, n_text = text.partition("/")
    if not (i_text.isdigit() and n_text.isdigit()) or not 0 <= int(i_text) < int(n_text):
        raise UsageError(f"--part must look like I/N with 0 <= I < N (e.g. 3/8), got {text!r}")
    i, parts = int(i_text), int(n_text)
    a, b = i * n_shards // parts, (i + 1) * n_shards // parts
    return (a, b) if a < b else None


@data_app.command("check")
@friendly_errors
def data_check(out: Path = typer.Argument(..., help="A dataset directory written by `synthinv generate`.")):
    """Validate every shard (present, opens, shapes, indices, sha256, finite values); exit 1 on any problem."""
    from synthinv.data.shards import MANIFEST, check, read_manifest
    from synthinv.errors import InputNotFoundError

    if out.exists() and not out.is_dir():
        raise InputNotFoundError(f"{out} is a file, not a dataset directory")
    if not out.is_dir():
        raise InputNotFoundError(f"dataset directory not found: {out}")
    if read_manifest(out) is None:
        raise InputNotFoundError(f"{out} holds no {MANIFEST}: not a dataset written by `synthinv generate`")
    problems = check(out)
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {out}; rerun `synthinv generate` with the same options to rewrite "
                   "missing or corrupt shards", err=True)
        raise typer.Exit(1)
    manifest = read_manifest(out)
    assert manifest is not None  # check_dataset has just read it
    size = sum(s["bytes"] for s in manifest["shards"])
    typer.echo(f"ok: {len(manifest['shards'])} shards, {manifest['n']} examples of {manifest['synth']['name']} "
               f"(seed {manifest['seed']}), {size / 1e6:.1f} MB, {size / manifest['n'] / 1000:.1f} kB per example")


synth_app = typer.Typer(help="Inspect plugin synths (VST2/VST3 plugins, Faust DSP).", no_args_is_help=True)
app.add_typer(synth_app, name="synth")


@synth_app.command("describe")
@friendly_errors
def synth_describe(
    plugin: Path = typer.Argument(..., help="A plugin file (VST2 .so, VST3 bundle) or a Faust .dsp file."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write a spec skeleton (YAML) here."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
):
    """Print a plugin's parameters (index, name, default, text) and optionally write a spec skeleton."""
    from synthinv.checks import check_out_file
    from synthinv.fileio import atomic_write
    from synthinv.synths.plugin import describe_plugin, spec_skeleton

    if out is not None:
        check_out_file(out, force)
    params = describe_plugin(plugin)
    typer.echo(f"{plugin}: {len(params)} parameters")
    typer.echo(f"{'index':>5}  {'name':<28} {'default':>9}  text")
    for p in params:
        typer.echo(f"{p['index']:>5}  {p['name']:<28} {p['default']:>9.4g}  {p['text']}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, spec_skeleton(plugin, params, name=out.stem).encode())
        typer.echo(f"spec skeleton: {out} (edit it; with its folder on SYNTHINV_SPEC_PATH, --synth {out.stem} uses it)")


def main() -> None:  # pragma: no cover - console entry for `python -m synthinv.cli`
    sys.exit(app())


if __name__ == "__main__":
    main()
