"""Turn a config dict (see configs/) into a synth and a model. The only place that knows the wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from synthinv.errors import SynthinvError
from synthinv.fileio import read_yaml
from synthinv.models.encoders import Encoder, MelAST, MelCNN, SpectrumCNN
from synthinv.models.fields import MLPField, TransformerField
from synthinv.models.flow import FlowModel
from synthinv.models.regression import RegressionModel
from synthinv.models.tokenisers import FixedSplit, Param2Tok
from synthinv.models.vae_flow import MelDecoder, MelTarget, MLPDecoder, SpectrumTarget, VAEFlowModel
from synthinv.synths.dexed import DexedSynth
from synthinv.synths.kosc import PARAMS_PER_OSC, KOscSynth
from synthinv.synths.plugin import PluginSynth
from synthinv.synths.plugin_spec import shipped_specs

CONFIG_DIR = Path(__file__).parent / "configs"
# Plugin synths: one entry per shipped spec file (synths/specs/*.yaml: amsynth, subtractive3, surge_xt_*);
# PluginSynth.from_settings takes {"name": shipped name} or the {"spec": ...} a checkpoint/manifest stores.
SYNTHS: dict[str, Any] = {"kosc": KOscSynth, "dexed": DexedSynth, **{name: PluginSynth for name in shipped_specs()}}


class ConfigError(SynthinvError, ValueError):
    """A config names something that does not exist or does not fit together."""


def builtin_configs(synth: str = "kosc") -> dict[str, Path]:
    """Shipped configs by method name, e.g. {"flow_param2tok": .../configs/kosc/flow_param2tok.yaml}."""
    return {p.stem: p for p in sorted((CONFIG_DIR / synth).glob("*.yaml"))}


def load_config(name_or_path: str, synth: str = "kosc") -> dict:
    """A config from a shipped method name (looked up in configs/<synth>/) or a YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        if synth not in SYNTHS:
            raise ConfigError(f"unknown synth {synth!r}; available: {', '.join(SYNTHS)}")
        configs = builtin_configs(synth)
        if name_or_path not in configs:
            raise ConfigError(f"unknown method {name_or_path!r} for {synth}; choose from {', '.join(configs)} or give a .yaml path")
        path = configs[name_or_path]
    config = read_yaml(path, ConfigError)
    missing = [key for key in ("model", "train", "sample") if not isinstance(config, dict) or key not in config]
    if missing or "kind" not in config["model"]:
        raise ConfigError(f"{path} is not a method config: it needs model (with kind), train and sample sections")
    if config["model"]["kind"] == "flow" and "field" not in config["model"]:
        raise ConfigError(f"{path}: a flow model needs model.field (mlp or transformer)")
    config.setdefault("name", path.stem)
    return config


def build_synth(settings: dict):
    name = settings.get("name", "kosc")
    if name not in SYNTHS and ("spec" in settings or name in shipped_specs()):  # the user's own spec file
        return PluginSynth.from_settings(settings)
    if name not in SYNTHS:
        raise ConfigError(f"unknown synth {name!r}; available: {', '.join(SYNTHS)}")
    synth_cls = SYNTHS[name]
    if name == "kosc" and "sample_rate" not in settings:
        return synth_cls(k=int(settings["k"]), asym=bool(settings.get("asym", False)))
    return synth_cls.from_settings(settings)


def uses_dataset(synth) -> bool:
    """True for synths trained from a generated dataset (Dexed); k-osc makes its batches on the fly."""
    return synth.name != "kosc"


def build_encoder(config: dict, synth) -> Encoder:
    """k-osc: SpectrumCNN over the audio's spectrum; Dexed: MelCNN over `synth.features` (log-mel)."""
    settings = dict(config.get("encoder", {}))
    if synth.name == "kosc":
        return SpectrumCNN(n_samples=synth.length, **settings)
    n_mels, frames = synth.feature_shape
    kind = settings.pop("kind", "cnn")
    encoders = {"cnn": MelCNN, "ast": MelAST}
    if kind not in encoders:
        raise ConfigError(f"unknown encoder kind {kind!r}; use 'cnn' or 'ast'")
    try:
        return encoders[kind](n_mels=n_mels, frames=frames, **settings)
    except TypeError as exc:
        raise ConfigError(f"bad encoder settings for {synth.name} ({encoders[kind].__name__}): {exc}") from None


Model = FlowModel | RegressionModel | VAEFlowModel  # each a synthinv.models.sampler.Sampler


def build_model(config: dict, synth) -> Model:
    """FlowModel, RegressionModel or VAEFlowModel for `synth`, sized by config["model"] and config["encoder"]."""
    m, n_params = config["model"], synth.spec.size
    encoder = build_encoder(config, synth)
    if m["kind"] == "regression":
        loss = m.get("loss", "mse")
        if synth.name != "kosc" and loss != "mse":
            raise ConfigError(f"regression loss {loss!r} needs k-osc oscillator tokens; for {synth.name} use loss: mse")
        return RegressionModel(encoder, n_params, getattr(synth, "k", None), loss=loss,
                               hidden=m.get("hidden", 384), layers=m.get("layers", 3))
    if m["kind"] == "vae_realnvp":
        return build_vae_flow(m, encoder, synth)
    if m["kind"] != "flow":
        raise ConfigError(f"unknown model kind {m['kind']!r}; use 'flow', 'regression' or 'vae_realnvp'")
    field: MLPField | TransformerField
    tokeniser: FixedSplit | Param2Tok
    if m["field"] == "mlp":
        field = MLPField(n_params, encoder.dim, width=m.get("width", 192), layers=m.get("layers", 7))
    elif m["field"] == "transformer":
        d = m.get("d_model", 128)
        tok = m.get("tokeniser", "fixed")
        if tok == "fixed":
            if synth.name != "kosc":
                raise ConfigError(f"the fixed tokeniser splits k-osc oscillators; for {synth.name} use tokeniser: param2tok")
            tokeniser = FixedSplit(n_params, PARAMS_PER_OSC, d)
        elif tok == "param2tok":
            n_tokens = m.get("n_tokens") or getattr(synth, "k", None)
            if not n_tokens:
                raise ConfigError(f"Param2Tok for {synth.name} needs model.n_tokens in the config")
            tokeniser = Param2Tok(n_params, n_tokens, d, init_noise=float(m.get("init_noise", 1e-4)))  # paper: 1e-4
        else:
            raise ConfigError(f"unknown tokeniser {tok!r}; use 'fixed' or 'param2tok'")
        field = TransformerField(tokeniser, encoder.dim, d, m.get("layers", 5), m.get("heads", 4), m.get("ff", 256))
    else:
        raise ConfigError(f"unknown field {m['field']!r}; use 'mlp' or 'transformer'")
    return FlowModel(encoder, field, n_params, cond_drop=m.get("cond_drop", 0.1), ot_coupling=m.get("ot", True))


VAE_FLOW_KEYS = {"kind", "latent", "flow_layers", "flow_hidden", "scale_limit", "beta", "kl_warmup_steps", "dequant",
                 "temperature", "decoder_hidden"}


def build_vae_flow(m: dict, encoder: Encoder, synth) -> VAEFlowModel:
    """The FlowSynth-style baseline (models/vae_flow.py): VAE on the encoder input + conditional RealNVP."""
    unknown = sorted(set(m) - VAE_FLOW_KEYS)
    if unknown:
        raise ConfigError(f"unknown vae_realnvp setting(s) {', '.join(unknown)}; use {', '.join(sorted(VAE_FLOW_KEYS - {'kind'}))}")
    latent, layers = int(m.get("latent", 64)), int(m.get("flow_layers", 6))
    if latent < 1 or layers < 2 or layers % 2:
        raise ConfigError(f"vae_realnvp needs latent >= 1 and an even flow_layers >= 2, got latent {latent}, flow_layers {layers}")
    for key in ("beta", "dequant", "kl_warmup_steps"):
        if float(m.get(key, 0)) < 0:
            raise ConfigError(f"vae_realnvp {key} must be >= 0, got {m[key]}")
    decoder: nn.Module
    target: nn.Module
    if isinstance(encoder, MelCNN):
        with torch.no_grad():
            feature_shape = tuple(encoder.net(torch.zeros(1, 1, *encoder.input_shape)).shape[1:])  # (C, H, W)
        convs = [layer for layer in encoder.net if isinstance(layer, nn.Conv2d)]  # stem, then one per stage
        decoder = MelDecoder(latent, feature_shape, tuple(c.out_channels for c in convs[1:]), convs[0].out_channels,
                             convs[0].stride[0], encoder.input_shape)
        target = MelTarget(encoder.offset, encoder.scale)
    else:  # k-osc: reconstruct the scaled log power spectrum the SpectrumCNN sees
        decoder = MLPDecoder(latent, synth.length // 2 + 1, int(m.get("decoder_hidden", 256)))
        target = SpectrumTarget()
    return VAEFlowModel(encoder, decoder, target, synth.spec.size, latent=latent, flow_layers=layers,
                        flow_hidden=int(m.get("flow_hidden", 256)), scale_limit=float(m.get("scale_limit", 2.0)),
                        beta=float(m.get("beta", 1.0)), kl_warmup_steps=int(m.get("kl_warmup_steps", 2000)),
                        dequant=float(m.get("dequant", 0.05)), temperature=float(m.get("temperature", 1.0)))
