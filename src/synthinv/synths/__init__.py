"""Synthesizers: each exposes a ParamSpec and renders normalised parameters to audio.

    from synthinv import synths
    synths.available()                    # ['kosc', 'dexed', 'amsynth', ...]
    dexed = synths.get("dexed")           # settings as keywords: synths.get("kosc", k=8, asym=True)
    audio = dexed.render(dexed.random_params(4, seed=0))
"""

from __future__ import annotations

from synthinv.errors import SynthinvError


class UnknownSynthError(SynthinvError, ValueError):
    """A synth name that is neither built in nor a shipped plugin spec."""


def registry() -> dict:
    """{name: synth class}: the built-in synths and one entry per shipped plugin spec (synths/specs/*.yaml)."""
    from synthinv.synths.dexed import DexedSynth
    from synthinv.synths.kosc import KOscSynth
    from synthinv.synths.plugin import PluginSynth
    from synthinv.synths.plugin_spec import shipped_specs

    return {"kosc": KOscSynth, "dexed": DexedSynth, **{name: PluginSynth for name in shipped_specs()}}


def available() -> list[str]:
    return list(registry())


def get(name: str, **settings):
    """A synth by name; keywords are its settings (k-osc: k, asym; Dexed: note range, prior, ...)."""
    classes = registry()
    if name not in classes:
        raise UnknownSynthError(f"unknown synth {name!r}; available: {', '.join(classes)}")
    if name == "kosc":
        return classes[name](k=int(settings.get("k", 4)), asym=bool(settings.get("asym", False)))
    return classes[name].from_settings({"name": name, **settings})
