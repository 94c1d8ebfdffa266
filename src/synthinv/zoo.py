"""Models shipped inside the package (no download at run time), each with a model card beside it."""

from __future__ import annotations

from pathlib import Path

from synthinv.errors import UsageError

SHIPPED_DIR = Path(__file__).parent / "shipped"
DEFAULT_MODEL = {"kosc": "kosc4-flow-transformer", "dexed": "dexed-flow-mlp-ranked", "dexed_simple": "dexed-simple-flow-mlp-ranked"}
DEFAULT_SYNTH = "dexed"  # `invert` without --synth or --model: the project's default real synth


def shipped_models() -> dict[str, Path]:
    """{name: checkpoint path} for every shipped checkpoint."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.ckpt"))}


def model_card(name: str) -> str:
    card = SHIPPED_DIR / f"{name}.md"
    return card.read_text() if card.is_file() else ""


def resolve_model(name_or_path: str | None, synth: str) -> Path:
    """A checkpoint path from a shipped model name, a path, or None (the synth's default model)."""
    if name_or_path is None:
        if synth not in DEFAULT_MODEL:
            raise UsageError(f"no shipped model for synth {synth!r}; give a checkpoint path as the model")
        name_or_path = DEFAULT_MODEL[synth]
    models = shipped_models()
    if name_or_path in models:
        return models[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path
    available = ", ".join(models) or "none"
    raise UsageError(f"model {name_or_path!r} is neither a shipped model ({available}) nor a checkpoint file")
