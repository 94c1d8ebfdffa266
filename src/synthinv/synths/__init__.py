"""Synthesizers: each exposes a ParamSpec and renders normalised parameters to audio.

    from synthinv import synths
    synths.available()                    # ['kosc', 'dexed', 'amsynth', ...]
    dexed = synths.get("dexed")           # settings as keywords: synths.get("kosc", k=8, asym=True)
    audio = dexed.render(dexed.random_params(4, seed=0))
    same = synths.from_settings({"name": "dexed", **dexed.spec.settings})   # as checkpoints store it

This registry is the one place that maps names to synth classes: checkpoints, datasets, the command line
and the library all build synths here. What a synth must provide is `synths.base.Synth`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthinv.errors import SynthinvError
from synthinv.synths.base import Synth, SynthBase

__all__ = ["Synth", "SynthBase", "UnknownSynthError", "available", "from_settings", "get", "registry", "synth_class"]


class UnknownSynthError(SynthinvError, ValueError):
    """A synth name that is neither built in nor a plugin spec on the search path."""


def registry() -> dict[str, Any]:
    """{name: synth class}: the built-in synths and one entry per plugin spec found now (synths/specs/*.yaml
    and the folders on SYNTHINV_SPEC_PATH)."""
    from synthinv.synths.dexed import DexedSynth
    from synthinv.synths.dexed_simple import DexedSimpleSynth
    from synthinv.synths.kosc import KOscSynth
    from synthinv.synths.plugin import PluginSynth
    from synthinv.synths.plugin_spec import shipped_specs

    return {"kosc": KOscSynth, "dexed": DexedSynth, "dexed_simple": DexedSimpleSynth, **{name: PluginSynth for name in shipped_specs()}}


def available() -> list[str]:
    return list(registry())


def synth_class(name: str) -> Any:
    """The class `get(name)` builds (its class attributes, e.g. `trains_from_data`, answer before building)."""
    classes = registry()
    if name not in classes:
        raise UnknownSynthError(f"unknown synth {name!r}; available: {', '.join(classes)}")
    return classes[name]


def get(name: str, **settings) -> Synth:
    """A synth by name; keywords are its settings (k-osc: k, asym; Dexed: note range, prior, ...)."""
    return from_settings({"name": name, **settings})


def from_settings(settings: dict) -> Synth:
    """A synth from {"name": ..., **settings}, as checkpoints, dataset manifests and presets record it.

    Settings that carry a whole plugin spec ({"spec": {...}}) build that plugin synth even when no spec
    file of its name is on the search path: a checkpoint of the user's own plugin stays loadable."""
    from synthinv.synths.plugin import PluginSynth

    name, classes = settings.get("name"), registry()
    if name not in classes and "spec" in settings:
        return PluginSynth.from_settings(settings)
    if not isinstance(name, str):
        raise UnknownSynthError(f"no synth name in settings {sorted(settings)}; available: {', '.join(classes)}")
    return synth_class(name).from_settings(settings)


if TYPE_CHECKING:  # the type checker confirms that every built-in synth meets the whole contract
    from synthinv.synths.dexed import DexedSynth
    from synthinv.synths.dexed_simple import DexedSimpleSynth
    from synthinv.synths.kosc import KOscSynth
    from synthinv.synths.plugin import PluginSynth

    def _meets_contract(k: KOscSynth, d: DexedSynth, s: DexedSimpleSynth, p: PluginSynth) -> list[Synth]:
        return [k, d, s, p]
