"""The pitch-aware encoder input: MelPitch reads a note's pitch off the log-mel, and the Dexed Simple
configs build encoders that use it, from stored features and from audio alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("dexed")

from synthinv import synths  # noqa: E402
from synthinv.build import build_model  # noqa: E402
from synthinv.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from synthinv.config import builtin_configs, load_config  # noqa: E402
from synthinv.models.encoders import MelCNN, MelPitch  # noqa: E402
from synthinv.synths.dexed import init_vced  # noqa: E402


@pytest.fixture(scope="module")
def simple():
    return synths.get("dexed_simple")


def test_a_sine_is_read_at_its_note():
    """INIT VOICE is one sine carrier: from MIDI 55 up the top candidate is the note (within a semitone)."""
    synth = synths.get("dexed").over_whole_range()
    notes = np.arange(55, 97, 5)
    params = synth.from_vced(np.tile(init_vced(), (len(notes), 1)), note=notes)
    mel = synth.features(synth.render(params))  # (n, 128, 151)
    off = MelPitch(mel.shape[1], synth.sample_rate).midi(mel).numpy() - notes
    assert np.abs(off).max() <= 1, off


def test_salience_moves_with_the_note(simple):
    """Prior patches played at MIDI 60 and 72: the top candidate moves by about an octave for most."""
    params = simple.random_params(8, seed=0).repeat_interleave(2, 0)  # (16, 112): each patch twice
    params[0::2, -1], params[1::2, -1] = 0.0, 1.0  # the note column: MIDI 60, then 72
    pitch = MelPitch(128, simple.sample_rate)
    sal = pitch(simple.features(simple.render(params)))  # (16, 85)
    assert sal.shape == (16, 85) and torch.allclose(sal.mean(1), torch.zeros(16), atol=1e-4)
    top = sal.argmax(1)
    moved = top[1::2] - top[0::2]  # (8,)
    assert ((moved - 12).abs() <= 1).float().mean() >= 0.5, moved  # measured: 5 of these 8 patches


@pytest.mark.parametrize("method", sorted(builtin_configs("dexed_simple")))
def test_every_simple_config_builds_a_pitch_aware_encoder(simple, method, tmp_path):
    config = load_config(method, "dexed_simple")
    model = build_model(config, simple)
    assert isinstance(model.encoder, MelCNN) and model.encoder.pitch is not None
    params, audio = simple.draw(2, np.arange(3))
    mel = simple.features(audio)  # what invert computes from audio
    stored = mel.half().float()  # what a dataset shard stores and training reads
    with torch.no_grad():
        emb, emb_stored = model.encoder(mel), model.encoder(stored)
    assert emb.shape == (3, config.encoder.dim) and torch.allclose(emb, emb_stored, atol=0.05)
    path = save_checkpoint(tmp_path / "m.ckpt", model, simple, config, {})
    again, _, _ = load_checkpoint(path)
    with torch.no_grad():
        assert torch.equal(again.encoder(mel), emb)


def test_dexed_full_configs_keep_the_plain_encoder():
    model = build_model(load_config("flow_mlp", "dexed"), synths.get("dexed"))
    assert model.encoder.pitch is None
