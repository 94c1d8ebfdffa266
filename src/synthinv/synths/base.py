"""The synth contract: an ordered parameter spec and a deterministic renderer.

Every synth works on the *normalised* encoding: a (N, P) tensor in [-1, 1]. The spec is the only place
that knows native units, so checkpoints can carry it and refuse to load against a different synth.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch


@dataclass(frozen=True)
class Param:
    """One synth parameter. `kind` is "continuous" here; discrete kinds arrive with real synths."""

    name: str
    low: float
    high: float
    kind: str = "continuous"
    scale: str = "linear"  # "linear" or "log": how [-1, 1] maps onto [low, high]
    group: str | None = None  # e.g. the oscillator it belongs to (used for plots, never by models)


@dataclass(frozen=True)
class ParamSpec:
    """Ordered parameters of a synth plus the settings that change what the numbers mean."""

    synth: str
    params: tuple[Param, ...]
    settings: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def to_dict(self) -> dict:
        return {"synth": self.synth, "settings": self.settings, "params": [asdict(p) for p in self.params]}

    @classmethod
    def from_dict(cls, d: dict) -> "ParamSpec":
        return cls(d["synth"], tuple(Param(**p) for p in d["params"]), dict(d.get("settings", {})))

    def hash(self) -> str:
        """A short stable fingerprint: two specs with the same hash mean the same parameter vector."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (N, P) in [-1, 1] -> native units (N, P); values outside [-1, 1] are clipped."""
        u = (x.clamp(-1, 1) + 1) / 2
        low = torch.tensor([p.low for p in self.params], dtype=x.dtype, device=x.device)
        high = torch.tensor([p.high for p in self.params], dtype=x.dtype, device=x.device)
        is_log = torch.tensor([p.scale == "log" for p in self.params], device=x.device)
        lin = low + u * (high - low)
        log = low.clamp_min(1e-12) * (high / low.clamp_min(1e-12)).clamp_min(1e-12) ** u
        return torch.where(is_log, log, lin)


class Synth(Protocol):
    """What the rest of the code expects of a synth."""

    spec: ParamSpec
    sample_rate: int

    def render(self, params: torch.Tensor) -> torch.Tensor:
        """params: (N, P) normalised -> audio: (N, T). Deterministic."""
        ...

    def random_params(self, n: int, seed: int, offset: int = 0) -> torch.Tensor:
        """(n, P) parameters of examples offset..offset+n-1; a pure function of (seed, index)."""
        ...
