"""synthinv: recover synthesizer parameters from audio with symmetry-aware flow matching.

    import synthinv
    result = synthinv.invert("note.wav")                  # -> synthinv.Inversion, candidates best first
    synth = synthinv.synths.get("dexed")                  # render, encode and decode parameters

Attributes load on first use, so `import synthinv` (and the `synthinv` command's --help) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["invert", "load_model", "Inversion", "Candidate", "Inverter", "SynthinvError", "synths", "__version__"]

_LAZY = {"invert": "synthinv.api", "load_model": "synthinv.api", "Inversion": "synthinv.pipeline",
         "Candidate": "synthinv.pipeline", "Inverter": "synthinv.pipeline", "SynthinvError": "synthinv.errors"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "synths":
        return importlib.import_module("synthinv.synths")
    raise AttributeError(f"module 'synthinv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
