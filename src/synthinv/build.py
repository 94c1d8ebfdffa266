"""Turn a config (synthinv.config) into a model, and synth settings into a synth. The only place that
knows the wiring."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from synthinv.config import (
    Config,
    ConfigError,
    MelASTConfig,
    MLPFlowConfig,
    RegressionConfig,
    SpectrumCNNConfig,
    TransformerFlowConfig,
    VAERealNVPConfig,
    spectrum_input,
)
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

# Plugin synths: one entry per shipped spec file (synths/specs/*.yaml: amsynth, subtractive3, surge_xt_*);
# PluginSynth.from_settings takes {"name": shipped name} or the {"spec": ...} a checkpoint/manifest stores.
SYNTHS: dict[str, Any] = {"kosc": KOscSynth, "dexed": DexedSynth, **{name: PluginSynth for name in shipped_specs()}}


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


def build_encoder(config: Config, synth) -> Encoder:
    """k-osc: SpectrumCNN over the audio's spectrum; other synths: MelCNN or MelAST over `synth.features`."""
    enc = config.encoder
    if isinstance(enc, SpectrumCNNConfig) != spectrum_input(synth.name):
        raise ConfigError(f"config {config.name} was read for another synth: its encoder does not fit {synth.name}")
    if isinstance(enc, SpectrumCNNConfig):
        return SpectrumCNN(n_samples=synth.length, channels=enc.channels, blocks=enc.blocks, kernel=enc.kernel,
                           dim=enc.dim, stem_stride=enc.stem_stride)
    n_mels, frames = synth.feature_shape
    if isinstance(enc, MelASTConfig):
        return MelAST(n_mels=n_mels, frames=frames, patch=enc.patch, d_model=enc.d_model, layers=enc.layers,
                      heads=enc.heads, ff=enc.ff, dim=enc.dim, offset=enc.offset, scale=enc.scale)
    return MelCNN(n_mels=n_mels, frames=frames, channels=enc.channels, stem_channels=enc.stem_channels, stem=enc.stem,
                  dim=enc.dim, offset=enc.offset, scale=enc.scale)


Model = FlowModel | RegressionModel | VAEFlowModel  # each a synthinv.models.sampler.Sampler


def build_model(config: Config, synth) -> Model:
    """FlowModel, RegressionModel or VAEFlowModel for `synth`, sized by config.model and config.encoder."""
    m, n_params = config.model, synth.spec.size
    encoder = build_encoder(config, synth)
    if isinstance(m, RegressionConfig):
        if synth.name != "kosc" and m.loss != "mse":
            raise ConfigError(f"regression loss {m.loss!r} needs k-osc oscillator tokens; for {synth.name} use loss: mse")
        return RegressionModel(encoder, n_params, getattr(synth, "k", None), loss=m.loss, hidden=m.hidden,
                               layers=m.layers)
    if isinstance(m, VAERealNVPConfig):
        return build_vae_flow(m, encoder, synth)
    field: MLPField | TransformerField
    if isinstance(m, MLPFlowConfig):
        field = MLPField(n_params, encoder.dim, width=m.width, layers=m.layers)
    else:
        field = TransformerField(build_tokeniser(m, synth), encoder.dim, d_model=m.d_model, layers=m.layers,
                                 heads=m.heads, ff=m.ff)
    return FlowModel(encoder, field, n_params, cond_drop=m.cond_drop, ot_coupling=m.ot)


def build_tokeniser(m: TransformerFlowConfig, synth) -> FixedSplit | Param2Tok:
    """The transformer field's tokeniser: one token per k-osc oscillator, or Param2Tok's learned assignment."""
    if m.tokeniser == "fixed":
        if synth.name != "kosc":
            raise ConfigError(f"the fixed tokeniser splits k-osc oscillators; for {synth.name} use tokeniser: param2tok")
        return FixedSplit(synth.spec.size, PARAMS_PER_OSC, m.d_model)
    n_tokens = m.n_tokens or getattr(synth, "k", None)
    if not n_tokens:
        raise ConfigError(f"Param2Tok for {synth.name} needs model.n_tokens in the config")
    return Param2Tok(synth.spec.size, n_tokens, m.d_model, init_noise=m.init_noise)


def build_vae_flow(m: VAERealNVPConfig, encoder: Encoder, synth) -> VAEFlowModel:
    """The FlowSynth-style baseline (models/vae_flow.py): VAE on the encoder input + conditional RealNVP."""
    decoder: nn.Module
    target: nn.Module
    if isinstance(encoder, MelCNN):
        with torch.no_grad():
            feature_shape = tuple(encoder.net(torch.zeros(1, 1, *encoder.input_shape)).shape[1:])  # (C, H, W)
        convs = [layer for layer in encoder.net if isinstance(layer, nn.Conv2d)]  # stem, then one per stage
        decoder = MelDecoder(m.latent, feature_shape, tuple(c.out_channels for c in convs[1:]), convs[0].out_channels,
                             convs[0].stride[0], encoder.input_shape)
        target = MelTarget(encoder.offset, encoder.scale)
    else:  # k-osc: reconstruct the scaled log power spectrum the SpectrumCNN sees
        decoder = MLPDecoder(m.latent, synth.length // 2 + 1, m.decoder_hidden)
        target = SpectrumTarget()
    return VAEFlowModel(encoder, decoder, target, synth.spec.size, latent=m.latent, flow_layers=m.flow_layers,
                        flow_hidden=m.flow_hidden, scale_limit=m.scale_limit, beta=m.beta,
                        kl_warmup_steps=m.kl_warmup_steps, dequant=m.dequant, temperature=m.temperature)
