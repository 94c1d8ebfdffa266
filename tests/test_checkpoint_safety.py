"""A checkpoint is data: opening one must never run code, whatever it asks for when unpickled."""

from __future__ import annotations

import os

import pytest
import torch
from typer.testing import CliRunner

from synthinv.checkpoint import CheckpointError, read_checkpoint
from synthinv.cli import app
from synthinv.zoo import resolve_model


class Payload:
    """Unpickling this calls os.system, which writes a file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def malicious(tmp_path):
    """A shipped model with a payload added: it would still invert normally if loaded unsafely."""
    marker = tmp_path / "pwned"
    blob = torch.load(resolve_model(None, "dexed"), map_location="cpu", weights_only=True)
    blob["meta"]["note"] = Payload(marker)
    path = tmp_path / "innocent.ckpt"
    torch.save(blob, path)
    return path, marker


def test_the_payload_is_real(malicious):
    """The unsafe load this file guards against does run the payload (else the tests below prove nothing)."""
    path, marker = malicious
    torch.load(path, map_location="cpu", weights_only=False)
    assert marker.exists()


def test_reading_refuses_the_payload_without_running_it(malicious):
    path, marker = malicious
    with pytest.raises(CheckpointError, match="not a safe checkpoint"):
        read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", [
    ["invert", "examples/dexed_heldout_0.wav", "--model", "{ckpt}", "--out", "{tmp}/out", "--candidates", "1"],
    ["evaluate", "{ckpt}", "--n", "4", "--steps", "2"],
    ["evaluate", "{ckpt}", "--audio-dir", "examples/ood", "--out", "{tmp}/ood"],
])
def test_cli_refuses_a_malicious_checkpoint(malicious, tmp_path, command):
    path, marker = malicious
    args = [a.format(ckpt=path, tmp=tmp_path) for a in command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "not a safe checkpoint" in result.output and len(result.output.strip().splitlines()) == 1
    assert not marker.exists()
    assert not (tmp_path / "out").exists() and not (tmp_path / "ood").exists()


@pytest.mark.parametrize("name", ["dexed", "kosc"])
def test_shipped_models_load_weights_only(name):
    blob = read_checkpoint(resolve_model(None, name))
    assert blob["state_dict"] and all(isinstance(v, torch.Tensor) for v in blob["state_dict"].values())
