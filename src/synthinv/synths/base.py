"""The synth contract: an ordered parameter spec (`ParamSpec`), a deterministic renderer, and `Synth`,
everything synthinv uses of a synth (with `SynthBase` giving the optional parts their defaults).

Every synth works on the *normalised* encoding: a (N, size) tensor in [-1, 1]. The spec is the only place
that knows native units, so checkpoints can carry it and refuse to load against a different synth.

Parameter kinds and their encoding (one parameter -> `Param.width` columns):
- "continuous": one column; [-1, 1] maps linearly (or log-linearly, `scale="log"`) onto [low, high].
- "discrete":   one column on an integer grid low, low+1, ..., high; native = low + round(u * (high - low))
                with u = (x + 1) / 2, so the n values sit evenly spaced in [-1, 1] (both ends included).
- "categorical": a one-hot block of len(choices) columns, chosen = +1, others = -1; native value is the
                index of the choice, decoded by argmax (ties go to the first column).
For an all-continuous spec (k-osc) `size == len(params)` and every column is one parameter, as before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from synthinv.errors import SynthinvError
from synthinv.features import MEL_FEATURES, log_mel_spectrogram
from synthinv.scoring import REAL_SYNTH, Scoring

KINDS = ("continuous", "discrete", "categorical")


class SynthSettingsError(SynthinvError, ValueError):
    """Settings a synth cannot be built with (k-osc: k < 1; Dexed: an unknown prior, a bad note range)."""


@dataclass(frozen=True)
class Param:
    """One synth parameter: continuous (default), discrete (integer grid) or categorical (one-hot).

    Build the non-continuous kinds with `Param.discrete(...)` and `Param.categorical(...)`.
    """

    name: str
    low: float
    high: float
    kind: str = "continuous"
    scale: str = "linear"  # "linear" or "log": how [-1, 1] maps onto [low, high] (continuous only)
    group: str | None = None  # e.g. the oscillator it belongs to (used for plots, never by models)
    choices: tuple[str, ...] | None = None  # categorical only: labels of native values 0 .. n-1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}; use one of {KINDS}")
        if self.kind == "categorical":
            if not self.choices or len(self.choices) < 2:
                raise ValueError(f"{self.name}: a categorical parameter needs at least 2 choices")
            object.__setattr__(self, "choices", tuple(self.choices))  # JSON gives lists back
        elif self.choices is not None:
            raise ValueError(f"{self.name}: only categorical parameters have choices")
        if self.kind == "discrete" and (self.low != int(self.low) or self.high != int(self.high) or self.high <= self.low):
            raise ValueError(f"{self.name}: a discrete parameter needs integer low < high, got {self.low}, {self.high}")

    @classmethod
    def discrete(cls, name: str, low: int, high: int, group: str | None = None) -> Param:
        """An integer parameter taking every value low..high (one column)."""
        return cls(name, float(low), float(high), kind="discrete", group=group)

    @classmethod
    def categorical(cls, name: str, choices, group: str | None = None) -> Param:
        """A choice among labelled options (a one-hot block); native value = index of the choice."""
        choices = tuple(str(c) for c in choices)
        return cls(name, 0.0, float(len(choices) - 1), kind="categorical", group=group, choices=choices)

    @property
    def width(self) -> int:
        """Number of columns this parameter takes in the normalised encoding."""
        return len(self.choices or ()) if self.kind == "categorical" else 1

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["choices"] is None:  # keep pre-categorical specs (and their hashes) byte-identical
            del d["choices"]
        else:
            d["choices"] = list(d["choices"])
        return d


@dataclass(frozen=True)
class ParamSpec:
    """Ordered parameters of a synth plus the settings that change what the numbers mean.

    `size` is the width of the normalised encoding (what models see); `len(params)` is the number of
    native parameters (what `decode` returns and `encode` takes).
    """

    synth: str
    params: tuple[Param, ...]
    settings: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(p.width for p in self.params)

    @property
    def names(self) -> list[str]:
        """Native parameter names (len(params) of them)."""
        return [p.name for p in self.params]

    @property
    def columns(self) -> list[str]:
        """One label per encoded column (`size` of them): "name" or "name=choice" inside one-hot blocks."""
        return [label for p in self.params for label in ([f"{p.name}={c}" for c in p.choices] if p.choices else [p.name])]

    @property
    def slices(self) -> list[slice]:
        """The encoded columns of each parameter, in order."""
        out, start = [], 0
        for p in self.params:
            out.append(slice(start, start + p.width))
            start += p.width
        return out

    def to_dict(self) -> dict:
        return {"synth": self.synth, "settings": self.settings, "params": [p.to_dict() for p in self.params]}

    @classmethod
    def from_dict(cls, d: dict) -> ParamSpec:
        return cls(d["synth"], tuple(Param(**p) for p in d["params"]), dict(d.get("settings", {})))

    def hash(self) -> str:
        """A short stable fingerprint: two specs with the same hash mean the same parameter vector."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def _scalar_columns(self) -> tuple[list[int], list[int], list[Param]]:
        """(encoded column, native index, param) of every one-column parameter."""
        cols, idx, params = [], [], []
        for i, (p, s) in enumerate(zip(self.params, self.slices)):
            if p.kind != "categorical":
                cols.append(s.start)
                idx.append(i)
                params.append(p)
        return cols, idx, params

    @staticmethod
    def _decode_scalars(x: torch.Tensor, params: list[Param]) -> torch.Tensor:
        """(N, m) normalised columns of m one-column params -> native (N, m); clipped to [-1, 1]."""
        u = (x.clamp(-1, 1) + 1) / 2
        low = torch.tensor([p.low for p in params], dtype=x.dtype, device=x.device)
        high = torch.tensor([p.high for p in params], dtype=x.dtype, device=x.device)
        is_log = torch.tensor([p.scale == "log" for p in params], device=x.device)
        lin = low + u * (high - low)
        log = low.clamp_min(1e-12) * (high / low.clamp_min(1e-12)).clamp_min(1e-12) ** u
        out = torch.where(is_log, log, lin)
        is_discrete = torch.tensor([p.kind == "discrete" for p in params], device=x.device)
        if is_discrete.any():
            out = torch.where(is_discrete, low + torch.round(u * (high - low)), out)
        return out

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (N, size) -> native units (N, len(params)); values outside [-1, 1] are clipped,
        discrete values snap to the nearest grid point, categorical blocks decode by argmax (index)."""
        if all(p.kind == "continuous" for p in self.params):
            return self._decode_scalars(x, list(self.params))
        if x.shape[-1] != self.size:
            raise ValueError(f"expected {self.size} encoded columns for {self.synth}, got {x.shape[-1]}")
        out = torch.empty(x.shape[0], len(self.params), dtype=x.dtype, device=x.device)
        cols, idx, params = self._scalar_columns()
        if cols:
            out[:, idx] = self._decode_scalars(x[:, cols], params)
        for i, (p, s) in enumerate(zip(self.params, self.slices)):
            if p.kind == "categorical":
                out[:, i] = x[:, s].argmax(dim=1).to(x.dtype)
        return out

    def encode(self, native: torch.Tensor) -> torch.Tensor:
        """Native (N, len(params)) -> normalised (N, size); the inverse of `decode` (exact on the
        integer grid of discrete and categorical parameters, up to float rounding for continuous ones)."""
        native = torch.as_tensor(native)
        dtype = native.dtype if native.is_floating_point() else torch.float32
        native = native.double()  # computed in float64, so the result does not depend on the input dtype
        if native.shape[-1] != len(self.params):
            raise ValueError(f"expected {len(self.params)} native values for {self.synth}, got {native.shape[-1]}")
        out = torch.empty(native.shape[0], self.size, dtype=native.dtype, device=native.device)
        for i, (p, s) in enumerate(zip(self.params, self.slices)):
            v = native[:, i]
            if p.kind == "categorical":
                k = v.round().long().clamp(0, p.width - 1)
                out[:, s] = torch.nn.functional.one_hot(k, p.width).to(native.dtype) * 2 - 1
            elif p.kind == "discrete":
                out[:, s.start] = 2 * (v.round().clamp(p.low, p.high) - p.low) / (p.high - p.low) - 1
            elif p.scale == "log":
                out[:, s.start] = 2 * torch.log(v / p.low) / np.log(p.high / p.low) - 1
            else:
                out[:, s.start] = 2 * (v - p.low) / (p.high - p.low) - 1
        return out.to(dtype)

    def convert(self, x: torch.Tensor, to: ParamSpec) -> torch.Tensor:
        """Normalised (N, size) in this spec -> the same patches encoded in `to`, a spec of the same parameters
        with other ranges (e.g. a wider note range). Exact on discrete and categorical values; values outside
        `to`'s ranges are clipped to them, as decoding would."""
        if to.names != self.names or to.synth != self.synth:
            raise ValueError(f"cannot convert {self.synth} parameters to a spec of other parameters ({to.synth})")
        if to.hash() == self.hash():
            return x
        return to.encode(self.decode(x.double())).clamp(-1, 1).to(x.dtype)

    def snap(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (N, size) -> the patches a render plays, encoded again: values clipped to [-1, 1], discrete
        ones on their grid, categorical blocks exact one-hots."""
        return self.encode(self.decode(x.double())).to(x.dtype)

    def from_uniform(self, u: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Uniform draws (N, len(params)) in [-1, 1) -> encoded (N, size), one draw per parameter.

        Continuous columns keep the draw; discrete ones take each grid value with equal probability;
        categorical ones pick a choice uniformly and emit its one-hot block. For an all-continuous
        spec this is the identity, so k-osc data are unchanged by it.
        """
        u = torch.as_tensor(np.asarray(u), dtype=torch.float64)
        if all(p.kind == "continuous" for p in self.params):
            return u.float()
        native = torch.empty_like(u)
        for i, p in enumerate(self.params):
            n = int(p.high - p.low) + 1  # number of grid values (choices for categorical: low = 0)
            native[:, i] = p.low if p.kind == "continuous" else p.low + ((u[:, i] + 1) / 2 * n).floor().clamp(0, n - 1)
        out = self.encode(native)
        for i, (p, s) in enumerate(zip(self.params, self.slices)):
            if p.kind == "continuous":
                out[:, s.start] = u[:, i]  # the draw itself, not a decode/encode round trip
        return out.float()


@runtime_checkable
class Synth(Protocol):
    """Everything synthinv uses of a synth; nothing is probed with hasattr, so a new synth that provides
    these works everywhere. Subclass `SynthBase` to get the optional parts with their defaults.

    A synth must pickle cheaply (worker processes get a copy; build engines on first render) and render
    deterministically. `synths.registry()` also needs a classmethod `from_settings(settings: dict)` that
    rebuilds the synth from `{"name": name, **spec.settings}`, as checkpoints and datasets store it.
    """

    name: str  # the registry name; checkpoints, datasets, banks and presets record it
    spec: ParamSpec
    sample_rate: int
    length: int  # samples per note (T)

    def render(self, params: torch.Tensor) -> torch.Tensor:
        """params: (N, size) normalised -> audio: (N, T). Deterministic."""
        ...

    # --- what the model's encoder hears ---------------------------------------------------------------

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (N, T) -> what the model's encoder takes (k-osc: the audio; Dexed: a log-mel (N, 128, F))."""
        ...

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """One example's encoder input: (T,) for the audio itself (a spectrum encoder), (n_mels, frames) for
        a log-mel (a mel encoder)."""
        ...

    @property
    def feature_settings(self) -> dict | None:
        """The log-mel settings a dataset must have stored to train this synth's models; None when the
        encoder takes the audio itself (nothing stored to check)."""
        ...

    # --- random patches: example i of a split is a pure function of (seed, i) ---------------------------

    def params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        """(N, size) parameters of examples `indices` of split `seed`."""
        ...

    def random_params(self, n: int, seed: int, offset: int = 0) -> torch.Tensor:
        """(n, size) parameters of examples offset..offset+n-1."""
        ...

    def draw(self, seed: int, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(params (N, size), audio (N, T)) of examples `indices`: one render for synths whose prior
        needs the audio (near-silent draws redrawn)."""
        ...

    # --- choices that differ between synths (defaults in SynthBase) ------------------------------------

    trains_from_data: bool  # models train from a generated dataset (else batches are rendered on the fly)
    spectrum_encoder: bool  # the encoder reads the audio's spectrum (k-osc: notes too short for a log-mel)
    uses_bank: bool  # invert proposes the nearest patches of a bank of rendered prior patches
    scoring: Scoring  # how a candidate's audio is scored against a target (synthinv.scoring)
    n_tokens: int | None  # the parameters split into this many equal blocks (synths.tokens), or None
    symmetric: bool  # permuting those blocks leaves the sound unchanged (their order means nothing)

    def canonical_order(self, params: torch.Tensor) -> torch.Tensor:
        """(N, size) -> (N, size) in the order shown to people: the same sound, one way of writing it."""
        ...

    def over_whole_range(self) -> Synth:
        """The synth invert plays candidates on: the same parameters over the whole range the synth plays
        (Dexed: every note from MIDI 24 to 108, where the prior draws 48-72); rows move with `spec.convert`."""
        ...

    # --- optional operations: `capabilities` names the ones a synth has --------------------------------

    capabilities: frozenset[str]  # a subset of {RETUNE, GAIN}

    def retuned(self, params: torch.Tensor, cents: torch.Tensor) -> torch.Tensor:
        """RETUNE: params (N, size), cents (N,) -> params that sound `cents` higher with the same note."""
        ...

    def with_gain(self, params: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        """GAIN: params (N, size), gain_db (N,) -> params about gain_db louder, keeping the timbre."""
        ...

    def write_preset(self, folder: Path, params: torch.Tensor, name: str) -> Path | None:
        """One row (size,) as the synth's own preset file in `folder`; None if it has no format of its own."""
        ...

    preset_bank_size: int  # presets per native bank file (Dexed: 32-voice .syx banks); 0 if none

    def write_preset_bank(self, path: Path, params: torch.Tensor, names: list[str]) -> Path:
        """Up to `preset_bank_size` rows (n, size) as one bank file at `path` (plus the format's suffix)."""
        ...


RETUNE = "retune"  # Synth.retuned: a fine pitch change (Dexed: operator frequency ratios)
GAIN = "gain"  # Synth.with_gain: a level change that keeps the timbre (Dexed: carrier output levels)


class SynthBase:
    """The optional parts of `Synth` with their defaults, for synths to subclass.

    Defaults fit a real synth: it trains from a generated dataset, invert may propose bank patches,
    candidates are scored by MSS, parameters are not interchangeable blocks, and it offers no optional
    operation. Optional operations are named in `capabilities` rather than answered by a None return, so
    callers can skip the work that leads up to them (a pitch track before retuning) for synths without.

        class Sine(LogMelFeatures, SynthBase):      # log-mel encoder input, every default kept
            name, sample_rate, length = "sine", 16000, 16000
            spec = ParamSpec("sine", (Param("freq", 20.0, 2000.0, scale="log"),))
            def render(self, params): return torch.sin(2 * torch.pi * self.spec.decode(params) * torch.arange(16000) / 16000)
            def params_at(self, seed, indices): return self.spec.from_uniform(hashed_uniform(seed, indices, 1))
    """

    trains_from_data: bool = True
    spectrum_encoder: bool = False
    uses_bank: bool = True
    scoring: Scoring = REAL_SYNTH
    n_tokens: int | None = None
    symmetric: bool = False
    capabilities: frozenset[str] = frozenset()
    preset_bank_size: int = 0

    name: str
    spec: ParamSpec
    length: int

    def render(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def random_params(self, n: int, seed: int, offset: int = 0) -> torch.Tensor:
        """(n, size) parameters of examples offset..offset+n-1 of split `seed` (see `params_at`)."""
        return self.params_at(seed, np.arange(offset, offset + n))

    def draw(self, seed: int, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """`params_at`, then one render; synths whose prior needs the audio draw both at once instead."""
        params = self.params_at(seed, indices)
        return params, self.render(params)

    def canonical_order(self, params: torch.Tensor) -> torch.Tensor:
        """The parameters as they are: their order is part of the sound."""
        return params

    def over_whole_range(self) -> Synth:
        """Its spec already spans everything it plays."""
        return self  # type: ignore[return-value]

    def retuned(self, params: torch.Tensor, cents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} cannot retune a patch (not in its capabilities)")

    def with_gain(self, params: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} cannot change a patch's level (not in its capabilities)")

    def write_preset(self, folder: Path, params: torch.Tensor, name: str) -> Path | None:
        """No preset format of its own: the JSON preset every synth gets is all there is."""
        return None

    def write_preset_bank(self, path: Path, params: torch.Tensor, names: list[str]) -> Path:
        raise NotImplementedError(f"{self.name} has no preset bank format (preset_bank_size is 0)")


def draw_examples(synth: Synth, seed: int, indices) -> tuple[torch.Tensor, torch.Tensor]:
    """(params (N, P), audio (N, T)) of examples `indices` of split `seed`: `synth.draw`."""
    return synth.draw(seed, np.asarray(indices))


class LogMelFeatures:
    """Encoder input for synths that train from datasets (Dexed, plugin synths): a log-mel of the whole note.

    Needs `sample_rate` and `length` (samples per note) on the synth."""

    sample_rate: int
    length: int

    @property
    def feature_settings(self) -> dict:
        """The log-mel settings of `features`, as a dataset manifest records them ("features")."""
        hop = int(round(MEL_FEATURES["hop_ms"] * self.sample_rate / 1000))
        return {**MEL_FEATURES, "frames": 1 + self.length // hop}

    @property
    def feature_shape(self) -> tuple[int, int]:
        """Shape of one example's encoder input: (n_mels, frames), (128, 151) for a 1.5 s note at 44.1 kHz."""
        f = self.feature_settings
        return f["n_mels"], f["frames"]

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (N, T) -> the encoder input: log-mel power in dB (N, 128, frames), computed exactly as
        dataset shards store it (`synthinv.features.log_mel_spectrogram` with MEL_FEATURES; shards keep it
        as float16)."""
        f = MEL_FEATURES
        return log_mel_spectrogram(audio, self.sample_rate, f["n_mels"], f["win_ms"], f["hop_ms"])
