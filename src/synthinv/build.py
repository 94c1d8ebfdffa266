"""Turn a config (synthinv.config) into a model, and synth settings into a synth. The only place that
knows the wiring."""

from __future__ import annotations

import torch
from torch import nn

from synthinv.config import (
    Config,
    ConfigError,
    MelASTConfig,
    MelPooledConfig,
    MLPFlowConfig,
    RegressionConfig,
    SpectrumCNNConfig,
    TransformerFlowConfig,
    VAERealNVPConfig,
)
from synthinv.models.encoders import PEAK_FEATURES, Encoder, MelAST, MelCNN, MelPooled, SpectrumCNN
from synthinv.models.fields import MLPField, TransformerField
from synthinv.models.flow import FlowModel
from synthinv.models.regression import RegressionModel
from synthinv.models.tokenisers import FixedSplit, Param2Tok
from synthinv.models.vae_flow import MelDecoder, MelTarget, MLPDecoder, SpectrumTarget, VAEFlowModel
from synthinv.synths import Synth
from synthinv.synths import from_settings as build_synth  # noqa: F401 - the old name, kept for scripts


def uses_dataset(synth: Synth) -> bool:
    """The old name of `synth.trains_from_data`, kept for scripts."""
    return synth.trains_from_data


def build_encoder(config: Config, synth: Synth) -> Encoder:
    """By what `synth.features` gives: the audio itself (k-osc) -> SpectrumCNN over its spectrum; a log-mel
    (Dexed, plugins) -> MelCNN, MelAST or MelPooled."""
    enc = config.encoder
    if isinstance(enc, SpectrumCNNConfig) != (len(synth.feature_shape) == 1):
        raise ConfigError(f"config {config.name} was read for another synth: its encoder does not fit {synth.name}")
    if isinstance(enc, SpectrumCNNConfig):
        return SpectrumCNN(n_samples=synth.length, channels=enc.channels, blocks=enc.blocks, kernel=enc.kernel,
                           dim=enc.dim, stem_stride=enc.stem_stride, peaks=enc.peaks, peak_hidden=enc.peak_hidden,
                           peak_tokens=enc.peak_tokens)
    n_mels, frames = synth.feature_shape
    if isinstance(enc, MelPooledConfig):
        return MelPooled(n_mels=n_mels, frames=frames, mel_pool=enc.mel_pool, segments=enc.segments, hidden=enc.hidden,
                         layers=enc.layers, dim=enc.dim, range_db=enc.range_db,
                         pitch_sample_rate=synth.sample_rate if enc.pitch else None)
    if isinstance(enc, MelASTConfig):
        return MelAST(n_mels=n_mels, frames=frames, patch=enc.patch, d_model=enc.d_model, layers=enc.layers,
                      heads=enc.heads, ff=enc.ff, dim=enc.dim, offset=enc.offset, scale=enc.scale)
    return MelCNN(n_mels=n_mels, frames=frames, channels=enc.channels, stem_channels=enc.stem_channels, stem=enc.stem,
                  dim=enc.dim, offset=enc.offset, scale=enc.scale, pitch_sample_rate=synth.sample_rate if enc.pitch else None,
                  peaks=enc.peaks, peak_hidden=enc.peak_hidden, peak_tokens=enc.peak_tokens)


Model = FlowModel | RegressionModel | VAEFlowModel  # each a synthinv.models.sampler.Sampler


def build_model(config: Config, synth: Synth) -> Model:
    """FlowModel, RegressionModel or VAEFlowModel for `synth`, sized by config.model and config.encoder."""
    m, n_params = config.model, synth.spec.size
    encoder = build_encoder(config, synth)
    if isinstance(m, RegressionConfig):
        if synth.n_tokens is None and m.loss != "mse":
            raise ConfigError(f"regression loss {m.loss!r} needs parameter tokens (k-osc oscillators); for {synth.name} use loss: mse")
        return RegressionModel(encoder, n_params, synth.n_tokens, loss=m.loss, hidden=m.hidden, layers=m.layers)
    if isinstance(m, VAERealNVPConfig):
        return build_vae_flow(m, encoder, synth)
    field: MLPField | TransformerField
    if isinstance(m, MLPFlowConfig):
        if encoder.context_tokens:
            raise ConfigError("encoder peak_tokens needs a transformer field (model field: transformer)")
        field = MLPField(n_params, encoder.dim, width=m.width, layers=m.layers, cond_input=m.cond_input)
    else:
        field = TransformerField(build_tokeniser(m, synth), encoder.cond_dim, d_model=m.d_model, layers=m.layers,
                                 heads=m.heads, ff=m.ff, context_tokens=encoder.context_tokens,
                                 context_features=PEAK_FEATURES)
    weights = loss_column_weights(m, synth) if isinstance(m, MLPFlowConfig) else None
    return FlowModel(encoder, field, n_params, cond_drop=m.cond_drop, ot_coupling=m.ot, draws=m.draws,
                     times=m.times, column_weights=weights)


def loss_column_weights(m: MLPFlowConfig, synth: Synth) -> torch.Tensor | None:
    """(P,) weights of the flow loss's columns, mean 1: `loss_weight` on every column of the fields named in
    `loss_weight_fields` (a field name without its operator, e.g. freq_fine), 1 elsewhere; None when unweighted."""
    # (P,) field of each encoded column: a parameter's name without its operator or oscillator
    fields = [p.name.split(".", 1)[-1] for p in synth.spec.params for _ in range(p.width)]
    unknown = sorted(set(m.loss_weight_fields) - set(fields))
    if unknown:
        raise ConfigError(f"model loss_weight_fields {', '.join(unknown)} not among {synth.name}'s fields "
                          f"({', '.join(dict.fromkeys(fields))})")
    if not m.loss_weight_fields or m.loss_weight == 1.0:
        return None
    if m.loss_weight <= 0:
        raise ConfigError(f"model loss_weight must be > 0, got {m.loss_weight}")
    weights = torch.tensor([m.loss_weight if f in m.loss_weight_fields else 1.0 for f in fields])
    return weights / weights.mean()


def build_tokeniser(m: TransformerFlowConfig, synth: Synth) -> FixedSplit | Param2Tok:
    """The transformer field's tokeniser: the synth's own parameter tokens (k-osc: one per oscillator), or
    Param2Tok's learned assignment."""
    if m.tokeniser == "fixed":
        if synth.n_tokens is None:
            raise ConfigError(f"the fixed tokeniser splits k-osc oscillators; for {synth.name} use tokeniser: param2tok")
        return FixedSplit(synth.spec.size, synth.spec.size // synth.n_tokens, m.d_model)
    n_tokens = m.n_tokens or synth.n_tokens
    if not n_tokens:
        raise ConfigError(f"Param2Tok for {synth.name} needs model.n_tokens in the config")
    return Param2Tok(synth.spec.size, n_tokens, m.d_model, init_noise=m.init_noise)


def build_vae_flow(m: VAERealNVPConfig, encoder: Encoder, synth: Synth) -> VAEFlowModel:
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
    elif isinstance(encoder, SpectrumCNN):  # k-osc: reconstruct the scaled log power spectrum the SpectrumCNN sees
        decoder = MLPDecoder(m.latent, synth.length // 2 + 1, m.decoder_hidden)
        target = SpectrumTarget()
    else:
        raise ConfigError(f"the vae_realnvp baseline decodes a MelCNN's or SpectrumCNN's features, not {type(encoder).__name__}'s")
    return VAEFlowModel(encoder, decoder, target, synth.spec.size, latent=m.latent, flow_layers=m.flow_layers,
                        flow_hidden=m.flow_hidden, scale_limit=m.scale_limit, beta=m.beta,
                        kl_warmup_steps=m.kl_warmup_steps, dequant=m.dequant, temperature=m.temperature)
