"""Typed configs (synthinv.config): every shipped config and stored checkpoint config reads; a wrong key or
value is refused in one line naming the key and the file; omitted keys take the dataclass defaults."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from synthinv.checkpoint import read_checkpoint, stored_config
from synthinv.config import (
    CONFIG_DIR,
    ConfigError,
    MelASTConfig,
    MelCNNConfig,
    MLPFlowConfig,
    RegressionConfig,
    SpectrumCNNConfig,
    TransformerFlowConfig,
    VAERealNVPConfig,
    builtin_configs,
    load_config,
    parse_config,
)
from synthinv.zoo import shipped_models

SHIPPED = [(p.parent.name, p.stem) for p in sorted(CONFIG_DIR.glob("*/*.yaml"))]
MINIMAL = {"model": {"kind": "flow", "field": "mlp"}, "train": {"batch_size": 8, "lr": 1e-3, "warmup": 0.1,
                                                                  "min_lr_ratio": 0.1},
           "sample": {"val_steps": 2, "val_examples": 4, "guidance": 2.0}}


@pytest.mark.parametrize("synth, method", SHIPPED, ids=[f"{s}/{m}" for s, m in SHIPPED])
def test_every_shipped_config_reads_and_round_trips(synth, method):
    config = load_config(method, synth)
    assert config.name == method
    assert isinstance(config.encoder, SpectrumCNNConfig if synth == "kosc" else (MelCNNConfig, MelASTConfig))
    assert parse_config(config.to_dict(), synth) == config  # what a checkpoint stores reads back the same
    raw = yaml.safe_load(builtin_configs(synth)[method].read_text())
    for section in ("model", "train", "sample"):  # every value written in the file arrives unchanged
        for key, value in raw[section].items():
            have = getattr(getattr(config, section), key)
            assert have == (tuple(value) if isinstance(value, list) else value), (section, key)


@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_shipped_checkpoint_configs_read(name):
    path = shipped_models()[name]
    config = stored_config(read_checkpoint(path), path)
    assert isinstance(config.model, MLPFlowConfig | TransformerFlowConfig)


def test_model_kind_picks_the_dataclass_and_omitted_keys_take_defaults():
    def model(m):
        return parse_config({**MINIMAL, "model": m}, "dexed").model

    assert model({"kind": "flow", "field": "mlp"}) == MLPFlowConfig()
    assert model({"kind": "flow", "field": "transformer", "tokeniser": "param2tok", "n_tokens": 8}) == \
        TransformerFlowConfig(tokeniser="param2tok", n_tokens=8)
    assert model({"kind": "regression"}) == RegressionConfig()
    assert model({"kind": "vae_realnvp", "beta": 2}).beta == 2.0  # an integer is a number
    config = parse_config(MINIMAL, "dexed", default_name="mine")
    assert config.name == "mine" and config.encoder == MelCNNConfig() and config.train.grad_clip is None
    assert parse_config(MINIMAL, "kosc").encoder == SpectrumCNNConfig()
    assert parse_config({**MINIMAL, "encoder": {"kind": "ast"}}, "dexed").encoder == MelASTConfig()


@pytest.mark.parametrize("change, message", [
    ({"model": {"kind": "flow", "field": "mlp", "widht": 3}}, "unknown model setting.s. widht; use kind, field, width"),
    ({"model": {"kind": "regression", "width": 3}}, "unknown regression model setting.s. width"),
    ({"encoder": {"chanels": [8]}}, "unknown encoder setting.s. chanels"),
    ({"train": {**MINIMAL["train"], "epochs": 3}}, "unknown train setting.s. epochs"),
    ({"sample": {**MINIMAL["sample"], "heat": 0.5}}, "unknown sample setting.s. heat"),
    ({"extra": {}}, "unknown section.s. extra"),
    ({"train": {**MINIMAL["train"], "lr": "1e-3"}}, "train lr must be a number, got '1e-3'"),
    ({"train": {**MINIMAL["train"], "batch_size": 6.5}}, "train batch_size must be an integer, got 6.5"),
    ({"train": {**MINIMAL["train"], "batch_size": True}}, "train batch_size must be an integer, got True"),
    ({"model": {"kind": "flow", "field": "mlp", "ot": "yes"}}, "model ot must be true or false"),
    ({"encoder": {"channels": [16, "x"]}}, "encoder channels must be an integer, got 'x'"),
    ({"encoder": {"channels": 16}}, "encoder channels must be a list"),
    ({"model": {"kind": "regression", "loss": "l1"}}, "unknown regression model loss 'l1'; use mse, chamfer, sort"),
    ({"model": {"kind": "vae_realnvp", "flow_layers": 3}}, "even flow_layers"),
    ({"train": {"lr": 1e-3, "warmup": 0.1, "min_lr_ratio": 0.1}}, "train needs batch_size"),
    ({"model": {"kind": "flow"}}, "model.field"),
    ({"name": 3}, "name must be a string"),
])
def test_a_wrong_key_or_value_is_named_with_its_file(tmp_path, change, message):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, **change}))
    with pytest.raises(ConfigError, match=message) as err:
        load_config(str(path), "dexed")
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_a_file_without_the_sections_is_not_a_config(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="not a method config"):
        load_config(str(path))


def test_an_encoder_read_for_another_synth_is_refused(kosc4):
    from synthinv.build import build_model

    config = load_config("flow_mlp", "kosc")
    config.encoder = MelCNNConfig()  # what a log-mel synth's file describes
    with pytest.raises(ConfigError, match="was read for another synth"):
        build_model(config, kosc4)


def test_the_dataclass_checks_hold_for_configs_made_in_code():
    with pytest.raises(ConfigError, match="latent >= 1"):
        VAERealNVPConfig(latent=0)
    assert dataclasses.replace(VAERealNVPConfig(), latent=8).latent == 8
