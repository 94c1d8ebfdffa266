"""The shipped flow models sample and score exactly as they did when these numbers were pinned: a refactor of
the flow-matching code (synthinv.flow, models/flow.py) must leave what a user gets unchanged.

The inputs are synthetic and seeded (no synth renders them), so only the model code is under test. To pin
again after a deliberate change of the numbers: `PYTHONPATH=src python tests/test_pinned_flows.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from synthinv.checkpoint import load_checkpoint
from synthinv.zoo import shipped_models

PINNED = Path(__file__).parent / "fixtures" / "pinned_flows.json"
MODELS = ("kosc4-flow-transformer", "dexed-flow-mlp", "dexed-simple-flow-mlp-ranked")


def model_input(net, synth, n: int = 2) -> torch.Tensor:
    """A seeded stand-in for `synth.features(audio)`: audio (n, T) for k-osc, a log-mel (n, 128, frames) in dB."""
    gen = torch.Generator().manual_seed(11)
    shape = getattr(net.encoder, "input_shape", None)
    if shape is None:  # SpectrumCNN: raw audio
        return 0.3 * torch.randn(n, synth.length, generator=gen)
    return -50.0 + 25.0 * torch.randn(n, *shape, generator=gen)


def outputs(name: str) -> dict[str, torch.Tensor]:
    """Samples (guided and not, with repeats) and a training loss of a shipped model, all seeded."""
    net, synth, _ = load_checkpoint(shipped_models()[name])
    cond = model_input(net, synth)
    out = {
        "guided": net.sample(cond, steps=3, guidance=2.0, generator=torch.Generator().manual_seed(0), repeats=2),
        "unguided": net.sample(cond, steps=2, guidance=1.0, generator=torch.Generator().manual_seed(1)),
    }
    torch.manual_seed(5)
    params = torch.rand(len(cond), net.n_params) * 2 - 1
    with torch.no_grad():
        out["loss"] = net.train().loss(params, cond)[None]
    return out


@pytest.mark.parametrize("name", MODELS)
def test_shipped_flow_outputs_are_unchanged(name):
    if name.startswith("dexed"):
        pytest.importorskip("dexed")
    expected = json.loads(PINNED.read_text())[name]
    for key, value in outputs(name).items():
        torch.testing.assert_close(value, torch.tensor(expected[key]), rtol=0, atol=1e-5, msg=f"{name} {key}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    PINNED.write_text(json.dumps({name: {k: v.tolist() for k, v in outputs(name).items()} for name in MODELS}) + "\n")
    print(f"pinned {PINNED}")
