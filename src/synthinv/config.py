"""Typed method configs: a YAML file of configs/<synth>/ (or a checkpoint's stored copy) read into
dataclasses. This module is the one home of every config default; a key the dataclass does not have, or a
value of the wrong type, is refused with the key (and the file) named.

    config = load_config("flow_param2tok", synth="dexed")   # or a path to your own YAML
    config.model.n_tokens, config.train.batch_size            # 16, 64
    model = synthinv.build.build_model(config, synth)

A file has four sections, `model`, `encoder`, `train` and `sample`, and optionally a `name` (default: the
file's stem). `model.kind` picks the model: "flow" (with `field`: "mlp" or "transformer"), "regression" or
"vae_realnvp". The encoder section fits the synth: k-osc reads the audio's spectrum (SpectrumCNN), every
other synth a log-mel ("cnn": MelCNN, default; "ast": MelAST).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from synthinv.errors import SynthinvError
from synthinv.fileio import read_yaml

CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigError(SynthinvError, ValueError):
    """A config names something that does not exist or does not fit together."""


# --- model sections -------------------------------------------------------------------------------


def check_draws(draws: int) -> None:
    if draws < 1:
        raise ConfigError(f"model draws (noise and time draws per training example) must be >= 1, got {draws}")


@dataclass
class MLPFlowConfig:
    """Flow matching with a residual-MLP vector field on the flat parameter vector (not equivariant)."""

    kind: Literal["flow"] = "flow"
    field: Literal["mlp"] = "mlp"
    width: int = 192
    layers: int = 7
    cond_drop: float = 0.1  # probability of training on the "no audio" embedding (classifier-free guidance)
    ot: bool = True  # minibatch OT pairing of noise and parameters
    draws: int = 1  # (noise, t) draws per training example: the encoder runs once for all of them
    times: Literal["uniform", "logit_normal"] = "uniform"  # training times: U(0, 1) or sigmoid(N(0, 1))
    l1_weight: float = 0.0  # weight of model.penalty() in the training loss
    cond_input: bool = False  # also feed the audio embedding to the field's input layer, beside x_t
    loss_weight_fields: tuple[str, ...] = ()  # fields (e.g. freq_fine: every operator's) whose columns weigh more
    loss_weight: float = 1.0  # their weight in the loss, the other columns' 1 (the weights then scaled to mean 1)

    def __post_init__(self) -> None:
        check_draws(self.draws)


@dataclass
class TransformerFlowConfig:
    """Flow matching with a transformer vector field over parameter tokens: "fixed" (one token per k-osc
    oscillator: exactly permutation-equivariant) or "param2tok" (a learned assignment, PAPER.md)."""

    kind: Literal["flow"] = "flow"
    field: Literal["transformer"] = "transformer"
    tokeniser: Literal["fixed", "param2tok"] = "fixed"
    n_tokens: int | None = None  # Param2Tok tokens; None: the synth's oscillator count (k-osc only)
    init_noise: float = 1e-4  # Param2Tok's initial symmetry-breaking noise (the paper's value)
    d_model: int = 128
    layers: int = 5
    heads: int = 4
    ff: int = 256
    cond_drop: float = 0.1
    ot: bool = True
    draws: int = 1  # (noise, t) draws per training example: the encoder runs once for all of them
    times: Literal["uniform", "logit_normal"] = "uniform"  # training times: U(0, 1) or sigmoid(N(0, 1))
    l1_weight: float = 0.0  # weight of Param2Tok's sparsity penalty mean|A|

    def __post_init__(self) -> None:
        check_draws(self.draws)


@dataclass
class RegressionConfig:
    """A point estimate: encoder + residual MLP head, trained with `loss` ("chamfer" and "sort" need k-osc)."""

    kind: Literal["regression"] = "regression"
    loss: Literal["mse", "chamfer", "sort"] = "mse"
    hidden: int = 384
    layers: int = 3
    l1_weight: float = 0.0


@dataclass
class VAERealNVPConfig:
    """The FlowSynth-style baseline: a VAE on the encoder input and a conditional RealNVP over parameters
    (models/vae_flow.py). Sampling has no steps or guidance: the sample section's are not used."""

    kind: Literal["vae_realnvp"] = "vae_realnvp"
    latent: int = 64
    flow_layers: int = 6  # affine couplings, in pairs
    flow_hidden: int = 256
    scale_limit: float = 2.0  # soft clip of each coupling's log-scale
    beta: float = 1.0  # KL weight after warm-up
    kl_warmup_steps: int = 2000
    dequant: float = 0.05  # std of the noise added to parameters for their likelihood
    temperature: float = 1.0  # scale of the base noise when sampling
    decoder_hidden: int = 256  # k-osc spectrum decoder width
    l1_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.latent < 1 or self.flow_layers < 2 or self.flow_layers % 2:
            raise ConfigError(f"vae_realnvp needs latent >= 1 and an even flow_layers >= 2, got latent "
                              f"{self.latent}, flow_layers {self.flow_layers}")
        for key in ("beta", "dequant", "kl_warmup_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(f"vae_realnvp {key} must be >= 0, got {getattr(self, key)}")


ModelConfig = MLPFlowConfig | TransformerFlowConfig | RegressionConfig | VAERealNVPConfig

# --- encoder sections -----------------------------------------------------------------------------


@dataclass
class SpectrumCNNConfig:
    """k-osc: a 1-D residual CNN over the audio's log power spectrum."""

    channels: int = 16
    blocks: int = 3
    kernel: int = 7
    stem_stride: int = 4
    dim: int = 128
    peaks: int = 0  # > 0: also embed the spectrum's `peaks` loudest local maxima (SpectralPeaks); 0: none
    peak_hidden: int = 128
    peak_tokens: bool = False  # the peaks as context tokens of a transformer field, not an added embedding


@dataclass
class MelCNNConfig:
    """A 2-D CNN over the log-mel, standardised as (dB - offset) / scale."""

    kind: Literal["cnn"] = "cnn"
    stem: int = 4  # patchify stem: kernel = stride
    stem_channels: int = 8
    channels: tuple[int, ...] = (16, 32, 64)  # one stride-2 stage each
    dim: int = 128
    offset: float = -50.0
    scale: float = 25.0
    pitch: bool = False  # add a harmonic-salience pitch feature of the log-mel (models.encoders.MelPitch)
    peaks: int = 0  # > 0: the time-averaged log-mel's `peaks` loudest local maxima (SpectralPeaks), as for k-osc
    peak_hidden: int = 128
    peak_tokens: bool = False  # the peaks as context tokens of a transformer field, not an added embedding


@dataclass
class MelASTConfig:
    """An AST-style transformer over log-mel patches."""

    kind: Literal["ast"] = "ast"
    patch: int = 16
    d_model: int = 128
    layers: int = 4
    heads: int = 4
    ff: int = 256
    dim: int = 128
    offset: float = -50.0
    scale: float = 25.0


@dataclass
class MelPooledConfig:
    """An MLP over the log-mel pooled to a coarse grid (the bank lookup's kind of summary) and its peak level."""

    kind: Literal["pooled"] = "pooled"
    mel_pool: int = 2  # adjacent mel bands averaged
    segments: int = 16  # equal stretches of time averaged
    hidden: int = 512
    layers: int = 2  # hidden layers
    dim: int = 128
    range_db: float = 80.0  # the relative log-mel is floored this far below its peak
    pitch: bool = False


EncoderConfig = SpectrumCNNConfig | MelCNNConfig | MelASTConfig | MelPooledConfig

# --- training and sampling ------------------------------------------------------------------------


@dataclass
class TrainConfig:
    batch_size: int
    lr: float  # peak learning rate (AdamW)
    warmup: float  # fraction of the budget spent warming the learning rate up
    min_lr_ratio: float  # the cosine decay ends at lr * min_lr_ratio
    grad_clip: float | None = None  # gradient norm clip; None: no clipping
    weight_decay: float = 0.0
    assign_lr_scale: float = 1.0  # Param2Tok's assignment A learns at lr * this (results/p2t_grouping.md: x10 grouped most)
    ema_decay: float | None = None  # validate and keep an exponential moving average of the weights; None: the weights
    num_workers: int = 0  # dataset loader processes (dataset-backed synths)
    cache_gb: float = 4.0  # decompressed shards kept in memory (dataset-backed synths)

    def __post_init__(self) -> None:
        if not self.assign_lr_scale > 0.0:
            raise ConfigError(f"train assign_lr_scale must be above 0 (e.g. 10), got {self.assign_lr_scale}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"train ema_decay must be between 0 and 1 (e.g. 0.999), got {self.ema_decay}")


@dataclass
class SampleConfig:
    val_steps: int  # a flow's RK4 steps at validation
    val_examples: int  # validation sounds
    guidance: float  # a flow's classifier-free guidance weight: the default of evaluate and invert
    test_steps: int = 100  # a flow's RK4 steps the method is meant to be tested with (evaluate: --steps)
    temperature: float = 1.0  # a flow's scale of the starting noise (below 1: nearer the mode): evaluate's and invert's


@dataclass
class Config:
    """One method: what to build (model, encoder), how to train it, how to sample it."""

    name: str
    model: ModelConfig
    encoder: EncoderConfig
    train: TrainConfig
    sample: SampleConfig

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and numbers (what a checkpoint stores and `parse_config` reads back)."""
        def plain(value):
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return list(value) if isinstance(value, tuple) else value

        return {"name": self.name, **{key: plain(dataclasses.asdict(getattr(self, key)))
                                      for key in ("model", "encoder", "train", "sample")}}


# --- reading --------------------------------------------------------------------------------------


def spectrum_input(synth: str) -> bool:
    """True for synths whose encoder reads the audio's spectrum (`Synth.spectrum_encoder`: k-osc); every
    other synth's encoder, a user's own plugin spec included, reads a log-mel."""
    from synthinv import synths

    try:
        return bool(synths.synth_class(synth).spectrum_encoder)
    except synths.UnknownSynthError:
        return False


def builtin_configs(synth: str = "kosc") -> dict[str, Path]:
    """Shipped configs by method name, e.g. {"flow_param2tok": .../configs/kosc/flow_param2tok.yaml}."""
    return {p.stem: p for p in sorted((CONFIG_DIR / synth).glob("*.yaml"))}


def load_config(name_or_path: str | Path, synth: str = "kosc") -> Config:
    """A config from a shipped method name (looked up in configs/<synth>/) or a YAML path, read for `synth`."""
    path = Path(name_or_path)
    if not path.suffix:
        if not (CONFIG_DIR / synth).is_dir():
            available = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir())
            raise ConfigError(f"unknown synth {synth!r}; available: {', '.join(available)}")
        configs = builtin_configs(synth)
        if str(name_or_path) not in configs:
            raise ConfigError(f"unknown method {str(name_or_path)!r} for {synth}; choose from {', '.join(configs)} "
                              "or give a .yaml path")
        path = configs[str(name_or_path)]
    raw = read_yaml(path, ConfigError)
    return parse_config(raw, synth, source=str(path), default_name=path.stem)


def parse_config(raw: Any, synth: str = "kosc", source: str = "config", default_name: str = "model") -> Config:
    """A Config from the plain mapping of a YAML file or a checkpoint, read for `synth` (which encoder the
    encoder section describes); errors name `source`."""
    if not isinstance(raw, Mapping) or any(not isinstance(raw.get(k), Mapping) for k in ("model", "train", "sample")) \
            or "kind" not in raw["model"]:
        raise ConfigError(f"{source} is not a method config: it needs model (with kind), train and sample sections")
    unknown = sorted(set(raw) - {"name", "model", "encoder", "train", "sample"})
    try:
        if unknown:
            raise ConfigError(f"unknown section(s) {', '.join(map(str, unknown))}; use name, model, encoder, train, sample")
        name = raw.get("name", default_name)
        if not isinstance(name, str):
            raise ConfigError(f"name must be a string, got {name!r}")
        return Config(name=name, model=_model(raw["model"]), encoder=_encoder(raw.get("encoder") or {}, synth),
                      train=_section(TrainConfig, raw["train"], "train"),
                      sample=_section(SampleConfig, raw["sample"], "sample"))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _model(raw: Mapping) -> ModelConfig:
    kind = raw["kind"]
    if kind == "flow":
        fields_by_name: dict[str, type[MLPFlowConfig] | type[TransformerFlowConfig]] = {
            "mlp": MLPFlowConfig, "transformer": TransformerFlowConfig}
        if "field" not in raw:
            raise ConfigError("a flow model needs model.field (mlp or transformer)")
        if raw["field"] not in fields_by_name:
            raise ConfigError(f"unknown model field {raw['field']!r}; use mlp or transformer")
        return _section(fields_by_name[raw["field"]], raw, "model")
    kinds: dict[str, type[RegressionConfig] | type[VAERealNVPConfig]] = {
        "regression": RegressionConfig, "vae_realnvp": VAERealNVPConfig}
    if kind not in kinds:
        raise ConfigError(f"unknown model kind {kind!r}; use flow, regression or vae_realnvp")
    return _section(kinds[kind], raw, f"{kind} model")


def _encoder(raw: Any, synth: str) -> EncoderConfig:
    if spectrum_input(synth):
        return _section(SpectrumCNNConfig, raw, "encoder")
    kind = raw.get("kind", "cnn") if isinstance(raw, Mapping) else "cnn"
    kinds: dict[str, type[MelCNNConfig] | type[MelASTConfig] | type[MelPooledConfig]] = {
        "cnn": MelCNNConfig, "ast": MelASTConfig, "pooled": MelPooledConfig}
    if kind not in kinds:
        raise ConfigError(f"unknown encoder kind {kind!r}; use 'cnn', 'ast' or 'pooled'")
    return _section(kinds[kind], raw, "encoder")


def _section(cls: type, raw: Any, where: str):
    """An instance of dataclass `cls` from mapping `raw`: every key must be a field, every value of its type
    (ints are accepted as floats; lists as tuples); missing fields take their defaults."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings, got {raw!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [str(key) for key in raw if key not in names]
    if unknown:
        raise ConfigError(f"unknown {where} setting(s) {', '.join(unknown)}; use {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            values[f.name] = _typed(raw[f.name], hints[f.name], f"{where} {f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where} needs {f.name}")
    return cls(**values)


def _typed(value: Any, hint: Any, what: str) -> Any:
    """`value` checked against the type `hint` (and converted: int -> float, list -> tuple)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"unknown {what} {value!r}; use {', '.join(map(str, args))}")
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _typed(value, next(a for a in args if a is not type(None)), what)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{what} must be a list, got {value!r}")
        return tuple(_typed(v, args[0], what) for v in value)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise ConfigError(f"{what} must be {_TYPE_WORDS.get(hint, hint.__name__)}, got {value!r}")
    return value


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}

