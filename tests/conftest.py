"""Shared test settings: one torch thread (the machine is small and shared) and small helpers."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Banks go to a folder of the test session's own, and are tiny: tests never build the user's bank."""
    import os

    os.environ["SYNTHINV_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["SYNTHINV_BANK_SIZE"] = "128"
    yield


def load_script(name: str):
    """scripts/<name>.py imported as a module (the scripts are not a package), for tests of their functions."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def freq_to_param(spec, index: int, hz: float) -> float:
    """Inverse of spec.decode for one log-scaled parameter: native Hz -> normalised [-1, 1]."""
    p = spec.params[index]
    u = math.log(hz / p.low) / math.log(p.high / p.low)
    return 2.0 * u - 1.0


def randomise_adaln(module: torch.nn.Module, std: float = 0.2, seed: int = 0) -> None:
    """AdaLN projections start at zero (every block is the identity); give them random weights so that
    attention, time and audio conditioning actually influence the output under test."""
    from synthinv.models.fields import AdaLN

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, AdaLN):
                m.proj.weight.copy_(torch.randn(m.proj.weight.shape, generator=gen) * std)
                m.proj.bias.copy_(torch.randn(m.proj.bias.shape, generator=gen) * std)


@pytest.fixture
def kosc4():
    from synthinv import synths

    return synths.from_settings({"name": "kosc", "k": 4})
