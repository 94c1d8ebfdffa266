"""The public API: one call from a sound to ranked presets, and the pieces a program needs around it.

    import synthinv
    result = synthinv.invert("note.wav", budget=10)       # the shipped Dexed model, 10 s of search
    best = result.candidates[0]                            # best first
    best.distance, best.preset, best.audio                 # MSS (dB), {name: value}, (T,) tensor
    best.write_native("best/")                             # best/preset.syx for Dexed
    result.write("inversions/note")                        # everything, with report.html
"""

from __future__ import annotations

from pathlib import Path

from synthinv.checkpoint import load_checkpoint
from synthinv.models.sampler import Sampler
from synthinv.pipeline import DEFAULT_BUDGET, Inversion
from synthinv.pipeline import invert as _invert
from synthinv.synths.base import Synth
from synthinv.zoo import resolve_model


def invert(sound: str | Path, *, synth: str | None = None, model: str | Path | None = None, candidates: int = 8,
           budget: float = DEFAULT_BUDGET, seed: int = 0, steps: int = 50, transpose: bool = True,
           workers: int | None = None, progress: bool = False) -> Inversion:
    """Presets for `sound` (a path to any audio file soundfile reads), best first.

    synth: "dexed" (default), "kosc", or a plugin synth; model: a shipped model name or a checkpoint path
    (default: the synth's shipped model); budget: seconds of proposals + search (0: rank `candidates` model
    samples only); workers: render processes (default: one per core). Raises synthinv.SynthinvError (one-line
    message) on input it cannot use."""
    return _invert(sound, model=None if model is None else str(model), synth_name=synth, candidates=candidates,
                   steps=steps, seed=seed, transpose=transpose, budget=budget, workers=workers,
                   show_progress=progress, say=(print if progress else lambda _: None))


def load_model(model: str | Path | None = None, synth: str = "dexed") -> tuple[Sampler, Synth]:
    """-> (model in eval mode, its synth) from a shipped name or a checkpoint path (read weights-only); the
    model's `sample(synth.features(audio))` proposes parameters (synthinv.models.sampler.Sampler)."""
    net, the_synth, _ = load_checkpoint(resolve_model(None if model is None else str(model), synth))
    return net, the_synth
