"""The generation speed-ups compute exactly what the code they replace computed (issue 13, items 3 and 4).
Whole datasets and draws are pinned in test_generation_pinned.py; these check the pieces on wider inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthinv.features import log_mel_spectrogram
from synthinv.metrics import rms_dbfs


def test_rms_in_blocks_equals_the_whole_batch_formula():
    """rms_dbfs decides which Dexed draws are redrawn as silent: the same bits as before, any batch size."""
    gen = torch.Generator().manual_seed(0)
    audio = torch.randn(21, 5000, generator=gen) * torch.logspace(-6, 0, 21)[:, None]
    audio[3] = 0.0
    whole = (20 * torch.log10(audio.double().square().mean(dim=1).sqrt().clamp_min(1e-10))).float()
    assert torch.equal(rms_dbfs(audio), whole)
    assert torch.equal(rms_dbfs(audio[:1]), whole[:1]) and rms_dbfs(audio[:0]).shape == (0,)


def test_log_mel_matches_the_stacked_formula_for_any_batch():
    """In-place scaling and one-pass squares change no bit: rows equal, whatever batch they come in."""
    from test_generation_pinned import reference_log_mel

    gen = torch.Generator().manual_seed(1)
    audio = torch.randn(5, 44100, generator=gen) * torch.tensor([1.0, 0.1, 1e-3, 1e-6, 0.0])[:, None]
    whole = log_mel_spectrogram(audio, 44100)
    assert np.array_equal(whole.numpy().astype(np.float16), reference_log_mel(audio, 44100))
    for i in range(len(audio)):
        assert torch.equal(log_mel_spectrogram(audio[i], 44100)[0], whole[i])


def test_dexed_sysex_is_what_the_patch_round_trip_loads():
    """DexedSynth.render hands dexed-py the bytes Patch.from_sysex(...).to_sysex() would, without the objects."""
    dexed = pytest.importorskip("dexed")
    from synthinv.synths.dexed import dexed_sysex

    rng = np.random.default_rng(0)
    vced = rng.integers(0, 256, (3000, 156), dtype=np.uint8)  # any byte anywhere, in range or not
    vced[:10], vced[10:20] = 0, 255
    vced[20:1000] = rng.integers(0, 128, (980, 156))
    want = np.stack([np.frombuffer(dexed.Patch.from_sysex(bytes(v)).to_sysex(), dtype=np.uint8) for v in vced])
    assert np.array_equal(dexed_sysex(vced), want)


def test_fresh_plugin_instances_can_be_asked_for(monkeypatch):
    pytest.importorskip("dawdreamer")
    from synthinv.synths import plugin_server
    from synthinv.synths.plugin import DawDreamerHost
    from synthinv.synths.plugin_spec import load_spec

    spec = load_spec("subtractive3")  # Faust: no plugin file needed
    assert not DawDreamerHost(spec).fresh and DawDreamerHost(spec, fresh=True).fresh
    monkeypatch.setenv(plugin_server.ENV, "fresh")
    assert DawDreamerHost(spec).fresh and not plugin_server.available()
