"""Dexed (DX7): the mixed-kind spec, deterministic rendering at the right pitch, and .syx presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

dexed = pytest.importorskip("dexed")  # dexed-py

from synthinv import synths  # noqa: E402
from synthinv.presets import PresetError, read_syx_bank, read_syx_voice, write_syx_bank, write_syx_voice  # noqa: E402
from synthinv.synths.base import Param, ParamSpec  # noqa: E402
from synthinv.synths.dexed import DexedSynth, init_vced  # noqa: E402
from synthinv.synths.kosc import kosc_spec  # noqa: E402

SR = 44100
OP_WIDTH = 28  # encoded columns per operator


@pytest.fixture(scope="module")
def synth():
    return DexedSynth()


def simple_patch(algorithm: int = 32, coarse: int = 1) -> dexed.Patch:
    """INIT VOICE with the given algorithm: op1 alone at full level, ratio `coarse`, no detune, no LFO."""
    patch = dexed.Patch.from_sysex(bytes(init_vced()))
    patch.algorithm = algorithm - 1
    patch.pitch_mod_sensitivity = 0
    patch.op[0].frequency_coarse, patch.op[0].frequency_fine, patch.op[0].detune = coarse, 0, 7
    return patch


def names_index(spec: ParamSpec, name: str) -> int:
    return spec.names.index(name)


# --- the spec -------------------------------------------------------------------------------------


def test_spec_layout(synth):
    spec = synth.spec
    assert len(spec.params) == 145 and spec.size == 225 == len(spec.columns)
    groups = [p.group for p in spec.params]
    assert groups == [f"op{i}" for i in range(1, 7) for _ in range(21)] + ["global"] * 18 + ["note"]
    # operator-major and contiguous: op i owns encoded columns [28 (i-1), 28 i)
    for i, s in enumerate(spec.slices[:126]):
        assert i // 21 * OP_WIDTH <= s.start and s.stop <= (i // 21 + 1) * OP_WIDTH
    alg = spec.params[names_index(spec, "global.algorithm")]
    assert alg.kind == "categorical" and alg.choices == tuple(str(a) for a in range(1, 33))
    assert spec.params[-1].name == "note.midi" and (spec.params[-1].low, spec.params[-1].high) == (48, 72)
    assert spec.settings["velocity"] == 100 and spec.settings["note_duration"] == 1.0 and spec.settings["release"] == 0.5
    assert synth.length == int(1.5 * SR)


def test_spec_survives_json_and_kosc_hash_is_unchanged(synth):
    spec = synth.spec
    back = ParamSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec and back.hash() == spec.hash()
    # specs without categorical parameters serialise exactly as before the new kinds existed
    assert "choices" not in kosc_spec(4).to_dict()["params"][0]
    assert kosc_spec(4).hash() == "ceeeff5d1e6bc2b6"


def test_encode_decode_is_exact_on_the_dx7_grid(synth):
    spec = synth.spec
    highs = torch.tensor([p.high for p in spec.params])
    lows = torch.tensor([p.low for p in spec.params])
    steps = torch.arange(100, dtype=torch.float64)[:, None]  # row r: value low + r, capped at high
    native = torch.minimum(lows + steps, highs)  # (100, 145): every grid value of every parameter
    for dtype in (torch.float32, torch.float64):
        x = spec.encode(native.to(dtype))
        assert x.dtype == dtype and x.shape == (100, 225) and x.abs().max() <= 1
        assert torch.equal(spec.decode(x), native.to(dtype))
    # ... and random patches lie on the grid: decode -> encode gives them back bit for bit
    params = synth.random_params(64, seed=3)
    assert torch.equal(spec.encode(spec.decode(params)), params)


def test_discrete_grid_spans_the_interval():
    spec = ParamSpec("t", (Param.discrete("d", 0, 3),))
    x = spec.encode(torch.tensor([[0.0], [1.0], [2.0], [3.0]]))
    torch.testing.assert_close(x[:, 0], torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]))
    # anything in between snaps to the nearest grid value, outside values clip
    assert spec.decode(torch.tensor([[-0.7], [0.1], [5.0], [-9.0]]))[:, 0].tolist() == [0.0, 2.0, 3.0, 0.0]


def test_mixed_spec_columns_and_uniform_draws():
    spec = ParamSpec("t", (Param("f", 20.0, 4000.0, scale="log"), Param.categorical("c", "abc"), Param.discrete("d", 1, 4)))
    assert spec.size == 5 and spec.columns == ["f", "c=a", "c=b", "c=c", "d"]
    assert [(s.start, s.stop) for s in spec.slices] == [(0, 1), (1, 4), (4, 5)]
    u = np.array([[-0.5, -0.99, 0.99], [0.25, 0.1, -1.0]])
    x = spec.from_uniform(u)
    assert x[:, 0].tolist() == torch.tensor(u[:, 0], dtype=torch.float32).tolist()  # continuous draws kept
    assert spec.decode(x)[:, 1:].tolist() == [[0.0, 4.0], [1.0, 1.0]]
    native = torch.tensor([[440.0, 2.0, 3.0]])
    back = spec.decode(spec.encode(native))
    assert back[0, 1:].tolist() == [2.0, 3.0] and back[0, 0].item() == pytest.approx(440.0, rel=1e-5)
    assert ParamSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError, match="choices"):
        Param.categorical("c", ["only"])


def test_categorical_decodes_by_argmax(synth):
    spec = synth.spec
    i = names_index(spec, "global.algorithm")
    block = spec.slices[i]
    x = synth.random_params(3, seed=0)
    gen = torch.Generator().manual_seed(0)
    x[:, block] = torch.rand(3, 32, generator=gen) * 0.5 - 0.9  # noisy, not one-hot
    x[0, block.start + 4], x[1, block.start + 31], x[2, block.start] = 0.1, -0.2, 0.3
    assert spec.decode(x)[:, i].tolist() == [4.0, 31.0, 0.0]
    assert [synth.to_patch(row).algorithm for row in x] == [4, 31, 0]  # index 4 = algorithm "5"


def test_random_params_are_a_pure_function_of_seed_and_index(synth):
    spec = synth.spec
    batch = synth.random_params(10, seed=7)
    torch.testing.assert_close(synth.params_at(7, np.array([5, 2])), batch[[5, 2]], rtol=0, atol=0)
    torch.testing.assert_close(synth.random_params(3, seed=7, offset=4), batch[4:7], rtol=0, atol=0)
    assert not torch.equal(synth.random_params(10, seed=8), batch)
    for p, s in zip(spec.params, spec.slices):
        if p.kind == "categorical":  # exactly one +1 per block, the rest -1
            block = batch[:, s]
            assert ((block == 1).sum(dim=1) == 1).all() and ((block == 1) | (block == -1)).all()
    notes = synth.notes(synth.random_params(500, seed=1))
    assert notes.min() == 48 and notes.max() == 72


# --- rendering ------------------------------------------------------------------------------------


def test_render_is_deterministic(synth):
    params = synth.random_params(4, seed=11)
    a = synth.render(params)
    assert a.shape == (4, synth.length) and a.dtype == torch.float32
    assert torch.equal(a, synth.render(params))  # same engine again
    assert torch.equal(a[2:3], DexedSynth().render(params[2:3]))  # fresh engine, different batch


@pytest.mark.parametrize("note", [48, 57, 60, 69, 72])
def test_rendered_pitch_matches_the_midi_note(synth, note):
    params = synth.from_patch(simple_patch(algorithm=32), note=note)
    audio = synth.render(params)[0].double().numpy()
    seg = audio[int(0.1 * SR) : int(0.9 * SR)]  # sustained part of the note
    n_fft = 1 << 19
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n_fft))
    f0 = np.argmax(spectrum) * SR / n_fft
    assert f0 == pytest.approx(440.0 * 2 ** ((note - 69) / 12), rel=0.01)
    # and the note is released: the tail after note-off + release decays towards silence
    assert np.sqrt(np.mean(audio[-2000:] ** 2)) < 0.1 * np.sqrt(np.mean(seg**2))


def test_ratio_two_doubles_the_pitch(synth):
    one, two = (synth.render(synth.from_patch(simple_patch(coarse=c), note=60))[0].numpy() for c in (1, 2))
    peak = [np.argmax(np.abs(np.fft.rfft(a[4410:39690]))) for a in (one, two)]
    assert peak[1] == pytest.approx(2 * peak[0], abs=2)


def test_algorithm_32_operators_are_interchangeable(synth):
    """The symmetry the paper is about: with no feedback, permuting algorithm 32's six carriers
    leaves the audio bit for bit unchanged."""
    spec = synth.spec
    native = spec.decode(synth.random_params(3, seed=2))
    native[:, names_index(spec, "global.algorithm")] = 31
    native[:, names_index(spec, "global.feedback")] = 0
    x = spec.encode(native)
    permuted = x.clone()
    permuted[:, : 6 * OP_WIDTH] = x[:, : 6 * OP_WIDTH].view(3, 6, OP_WIDTH)[:, [3, 0, 5, 1, 2, 4]].reshape(3, -1)
    assert not torch.equal(permuted, x)
    assert torch.equal(synth.render(permuted), synth.render(x))


# --- voices and presets ---------------------------------------------------------------------------


def test_to_patch_numbers_operators_as_the_dx7(synth):
    spec = synth.spec
    row = synth.random_params(1, seed=5)[0]
    native = spec.decode(row[None])[0]
    patch = synth.to_patch(row)
    for op in (1, 6):
        assert patch.op[op - 1].output_level == native[names_index(spec, f"op{op}.output_level")]
        assert patch.op[op - 1].envelope.rates[2] == native[names_index(spec, f"op{op}.eg_rate3")]
        assert patch.op[op - 1]._right_curve == native[names_index(spec, f"op{op}.kbd_right_curve")]
    assert patch.lfo._wave == native[names_index(spec, "global.lfo_wave")]
    assert patch.transpose == 24
    torch.testing.assert_close(synth.from_patch(patch, note=int(synth.notes(row)[0])), row, rtol=0, atol=0)


def test_syx_voice_round_trip(synth, tmp_path):
    rows = synth.random_params(3, seed=9)
    for i, row in enumerate(rows):
        path = write_syx_voice(tmp_path / f"v{i}.syx", row, synth.spec, name=f"TEST {i}")
        data = path.read_bytes()
        assert len(data) == 163 and data[:6] == bytes([0xF0, 0x43, 0x00, 0x00, 0x01, 0x1B]) and data[-1] == 0xF7
        patch = read_syx_voice(path)
        assert patch.name == f"TEST {i}".ljust(10)
        assert patch.to_sysex() == synth.to_patch(row, name=f"TEST {i}").to_sysex()
        back = synth.from_patch(patch, note=int(synth.notes(row)[0]))
        torch.testing.assert_close(back, row, rtol=0, atol=0)
        assert torch.equal(synth.render(back[None]), synth.render(row[None])) if i == 0 else True


def test_syx_bank_round_trip_pads_with_init_voices(synth, tmp_path):
    rows = synth.random_params(5, seed=4)
    path = write_syx_bank(tmp_path / "bank.syx", rows, synth.spec)
    assert path.stat().st_size == 4104
    patches = read_syx_bank(path)
    assert len(patches) == 32
    notes = synth.notes(rows)
    for row, note, patch in zip(rows, notes, patches):
        torch.testing.assert_close(synth.from_patch(patch, note=int(note)), row, rtol=0, atol=0)
    assert all(p.to_sysex()[:145] == bytes(init_vced()[:145]) for p in patches[5:])
    with pytest.raises(PresetError, match="32 voices"):
        write_syx_bank(tmp_path / "big.syx", synth.random_params(33, seed=0), synth.spec)


def test_bad_syx_files_give_clear_errors(synth, tmp_path):
    good = write_syx_voice(tmp_path / "v.syx", synth.random_params(1, seed=0)[0], synth.spec).read_bytes()
    (tmp_path / "short.syx").write_bytes(good[:100])
    with pytest.raises(PresetError, match="not a single-voice"):
        read_syx_voice(tmp_path / "short.syx")
    corrupt = bytearray(good)
    corrupt[20] ^= 0x01
    (tmp_path / "corrupt.syx").write_bytes(bytes(corrupt))
    with pytest.raises(PresetError, match="checksum"):
        read_syx_voice(tmp_path / "corrupt.syx")
    write_syx_bank(tmp_path / "bank.syx", synth.random_params(2, seed=0), synth.spec)
    with pytest.raises(PresetError, match="bank"):
        read_syx_voice(tmp_path / "bank.syx")
    with pytest.raises(PresetError, match="Dexed"):
        write_syx_voice(tmp_path / "k.syx", torch.zeros(12), kosc_spec(4))


def test_build_synth_and_settings_round_trip(synth):
    built = synths.from_settings({"name": "dexed"})
    assert isinstance(built, DexedSynth) and built.spec.hash() == synth.spec.hash()
    # what a checkpoint stores: {"name": ..., **spec.settings}
    again = synths.from_settings({"name": "dexed", **DexedSynth(velocity=80).spec.settings})
    assert again.velocity == 80 and again.spec.hash() != synth.spec.hash()
