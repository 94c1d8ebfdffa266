"""Plugin synths hosted by DawDreamer: amsynth (Debian's VST2), spec files, plugin state, `synth describe`.

Tests that render need DawDreamer (`pip install dawdreamer==0.9.0`) and Debian's amsynth
(`apt-get install amsynth`); scripts/setup.sh and .ci/run install both. Spec-file checks run without them.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from synthinv.synths.plugin_spec import PluginNotFound, SpecError, load_spec, param_spec, validate_spec

AMSYNTH = Path("/usr/lib/vst/amsynth_vst.so")

try:
    import dawdreamer  # noqa: F401

    HAVE_DAWDREAMER = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_DAWDREAMER = False

needs_amsynth = pytest.mark.skipif(
    not (HAVE_DAWDREAMER and AMSYNTH.exists()),
    reason="needs dawdreamer (pip install dawdreamer==0.9.0) and Debian's amsynth (apt-get install amsynth) "
           f"at {AMSYNTH}; scripts/setup.sh installs both",
)


@pytest.fixture(scope="module")
def amsynth():
    from synthinv.synths.plugin import PluginSynth

    return PluginSynth.from_settings({"name": "amsynth"})


@pytest.fixture(scope="module")
def two_patches(amsynth):
    """Two different uniform draws (2, 44), without silence redraws (no renders needed)."""
    u = np.random.default_rng(0).uniform(-1, 1, (2, len(amsynth.spec.params)))
    return amsynth.spec.from_uniform(u)


# --- spec files (no plugin needed) ---------------------------------------------------------------------


def test_shipped_specs_build_param_specs():
    for name, size in (("amsynth", 44), ("subtractive3", 26)):
        spec = param_spec(load_spec(name))
        assert spec.size == size and spec.names[-1] == "note.midi"
    surge = param_spec(load_spec("surge_xt_full"))
    assert any(p.kind == "categorical" for p in surge.params) and any(p.kind == "discrete" for p in surge.params)


@pytest.mark.parametrize("synth", ["amsynth", "subtractive3", "surge_xt_simple", "surge_xt_full"])
def test_every_plugin_synth_ships_the_three_configs(synth):
    from synthinv.config import builtin_configs, load_config

    assert set(builtin_configs(synth)) == {"flow_param2tok", "flow_mlp", "regression_mse"}
    assert load_config("flow_param2tok", synth).model.tokeniser == "param2tok"


def test_vst_grid_values_default_to_even_steps_over_0_1():
    spec = validate_spec({"name": "x", "host": "vst", "plugin": "x.so",
                          "vary": [{"name": "wave", "kind": "categorical", "choices": ["a", "b", "c"]},
                                   {"name": "oct", "kind": "discrete", "low": -1, "high": 1}]})
    assert spec["vary"][0]["values"] == [0.0, 0.5, 1.0] and spec["vary"][1]["values"] == [0.0, 0.5, 1.0]
    faust = validate_spec({"name": "x", "host": "faust", "plugin": "x.dsp",
                           "vary": [{"name": "oct", "kind": "discrete", "low": -1, "high": 1}]})
    assert faust["vary"][0]["values"] == [-1.0, 0.0, 1.0]  # Faust takes the native integer


@pytest.mark.parametrize("bad, message", [
    ({"host": "lv2"}, "host must be one of"),
    ({"vary": [{"name": "a", "kind": "fuzzy"}]}, "unknown kind"),
    ({"vary": [{"name": "a", "low": 1.0, "high": 0.0}]}, "needs low < high"),
    ({"vary": [{"name": "a", "kind": "categorical", "choices": ["x", "y"], "values": [0.0]}]}, "1 values for 2"),
    ({"vary": [{"name": "a"}], "fixed": {"a": 0.5}}, "listed twice"),
    ({"colour": "red"}, "unknown key"),
])
def test_bad_spec_is_a_one_line_error(bad, message):
    raw = {"name": "x", "host": "vst", "plugin": "x.so", "vary": [{"name": "a"}], **bad}
    with pytest.raises(SpecError, match=message) as err:
        validate_spec(raw)
    assert "\n" not in str(err.value)


def test_spec_name_must_match_its_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"name": "other", "host": "vst", "plugin": "x.so", "vary": [{"name": "a"}]}))
    with pytest.raises(SpecError, match="must match the file name"):
        load_spec(path)


def test_missing_plugin_is_a_clear_error():
    from synthinv import synths

    if any(Path(d).expanduser().joinpath("Surge XT.vst3").exists() for d in ("~/.vst3", "/usr/lib/vst3", "/usr/local/lib/vst3")):
        pytest.skip("Surge XT is installed here")
    with pytest.raises(PluginNotFound, match="Surge XT.vst3.*not found.*install Surge XT") as err:
        synths.from_settings({"name": "surge_xt_simple"})
    assert "\n" not in str(err.value)


# --- amsynth through DawDreamer ----------------------------------------------------------------------------


@needs_amsynth
def test_renders_are_independent_and_deterministic(amsynth, two_patches):
    """A reused plugin instance carries voice/LFO state into the next note; ours must not (A, B, A -> A twice)."""
    a1 = amsynth.render(two_patches[:1])
    b = amsynth.render(two_patches[1:])
    a2 = amsynth.render(two_patches[:1])
    assert a1.shape == (1, amsynth.length) and a1.dtype == torch.float32
    assert torch.equal(a1, a2)
    assert (a1 - b).abs().max() > 0.01 and a1.abs().max() > 1e-3


# Settings at the edges, through every parameter of the plugin (the spec's fixed ones included): full reverb in
# a large room, the longest envelopes (tails far past the note), distortion, portamento and mono/legato keyboard
# modes, the fastest LFO at full depth on a saw (which leaves amsynth's LFO polarity set), ring modulation.
AMSYNTH_EXTREMES = (
    {"reverb_wet": 1.0, "reverb_roomsize": 1.0, "reverb_damp": 0.0, "amp_release": 1.0, "filter_release": 1.0,
     "amp_attack": 1.0, "amp_decay": 1.0, "distortion_crunch": 1.0, "master_vol": 1.0, "filter_resonance": 1.0},
    {"portamento_time": 1.0, "portamento_mode": 1.0, "keyboard_mode": 0.5, "lfo_waveform": 0.833333, "lfo_freq": 1.0,
     "freq_mod_amount": 1.0, "amp_mod_amount": 1.0, "filter_mod_amount": 1.0, "osc_mix_mode": 1.0, "osc2_sync": 1.0},
    {"keyboard_mode": 1.0, "lfo_waveform": 1.0, "osc2_range": 1.0, "osc2_pitch": 1.0, "filter_env_amount": 1.0,
     "filter_type": 0.25, "amp_release": 1.0, "reverb_wet": 0.7, "reverb_roomsize": 0.9},
)


@needs_amsynth
def test_reused_instances_sound_like_fresh_ones_after_extreme_patches(amsynth):
    """Patches rendered in between (long reverb and release tails, portamento, mono modes, saw LFOs, on the same
    MIDI key) leave no trace: every note of the reusing host equals a fresh instance's, bit for bit."""
    from synthinv.synths import plugin_server
    from synthinv.synths.plugin import BLOCK_SIZE, DawDreamerHost

    u = np.random.default_rng(7).uniform(-1, 1, (3, len(amsynth.spec.params)))
    patches = amsynth.host_notes(amsynth.spec.from_uniform(u))
    note = patches[0][1]
    extremes = [({**patches[k % 3][0], **x}, note) for k, x in enumerate(AMSYNTH_EXTREMES)]
    distinct = patches + extremes
    args = (amsynth.velocity, amsynth.note_duration, amsynth.release, amsynth.pre_roll, amsynth.length)
    fresh = DawDreamerHost(amsynth.spec_dict, fresh=True)
    want = np.stack([fresh.render(values, n, *args) for values, n in distinct])
    host = DawDreamerHost(amsynth.spec_dict)
    assert not host.fresh
    order = [0, 3, 0, 4, 1, 5, 0, 5, 2, 4, 3, 0]  # patch 0 after each extreme, on the same key
    batches = [order[:1], order[1:3], order[3:12]]  # one note per fork, and several (each on its own instance)
    got = np.concatenate([host.render_notes([distinct[k] for k in batch], *args) for batch in batches])
    for i, k in enumerate(order):
        assert np.array_equal(got[i], want[k]), f"note {i} (patch {k}) differs from a fresh instance's"
    # a batch longer than the server's instances: several forks in a row, instances reused by the next child
    server = plugin_server.ForkServer(host.path, host.sample_rate, BLOCK_SIZE, instances=3)
    start = int(round(amsynth.pre_roll * amsynth.sample_rate))
    got = server.render([({host.address[n]: v for n, v in distinct[k][0].items()}, distinct[k][1]) for k in order],
                        amsynth.velocity, amsynth.pre_roll, amsynth.note_duration,
                        start + amsynth.length + int(0.01 * amsynth.sample_rate), start, amsynth.length)
    server.close()
    host.close()
    for i, k in enumerate(order):
        assert np.array_equal(got[i], want[k]), f"3 instances: note {i} (patch {k}) differs from a fresh instance's"
    assert np.abs(want[3] - want[0]).max() > 0.01  # the extremes do sound different


@needs_amsynth
def test_every_varied_parameter_reaches_the_plugin(amsynth):
    """Moving one varied parameter changes the sound (a host that drops set_parameter would not)."""
    spec = amsynth.spec
    native = {p.name: (p.low + p.high) / 2 if p.kind == "continuous" else p.low for p in spec.params}
    native.update({"osc1_waveform": 2, "amp_sustain": 1.0, "filter_type": 0, "note.midi": 60})
    rows = []
    for name, value in (("filter_cutoff", 0.1), ("osc1_waveform", 0), ("amp_attack", 0.3)):
        changed = {**native, name: value}
        rows.append([changed[n] for n in spec.names])
    params = spec.encode(torch.tensor([[native[n] for n in spec.names], *rows], dtype=torch.float64)).float()
    audio = amsynth.render(params)
    for i in range(1, len(params)):
        assert (audio[i] - audio[0]).abs().max() > 0.01


@needs_amsynth
def test_picklable_synth_renders_the_same_in_a_copy(amsynth, two_patches):
    clone = pickle.loads(pickle.dumps(amsynth))
    assert clone._host is None  # the engine is per process
    assert torch.equal(clone.render(two_patches[:1]), amsynth.render(two_patches[:1]))


@needs_amsynth
def test_note_parameter_sets_the_pitch(amsynth):
    """A plain sine on osc1 (osc_mix all osc1, filter wide open): the spectrum peaks at the MIDI note."""
    spec = amsynth.spec
    native = {p.name: (p.low + p.high) / 2 for p in spec.params}
    native.update({"osc1_waveform": 0, "osc_mix": 0.0, "filter_type": 4, "filter_env_amount": 0.5, "amp_sustain": 1.0,
                   "amp_attack": 0.0, "freq_mod_amount": 0.0, "amp_mod_amount": 0.5, "filter_mod_amount": 0.5,
                   "osc2_sync": 0, "osc_mix_mode": 0.0, "note.midi": 69})
    row = spec.encode(torch.tensor([[native[n] for n in spec.names]], dtype=torch.float64)).float()
    audio = amsynth.render(row)[0, : amsynth.sample_rate]  # the held part
    spectrum = torch.fft.rfft(audio).abs()
    assert abs(int(spectrum.argmax()) * amsynth.sample_rate / len(audio) - 440.0) <= 2.0


@needs_amsynth
def test_features_match_the_mel_encoder_shape(amsynth, two_patches):
    feats = amsynth.features(amsynth.render(two_patches))
    assert feats.shape == (2, *amsynth.feature_shape) == (2, 128, 151)


@needs_amsynth
def test_draw_rows_depend_only_on_seed_and_index(amsynth):
    p_all, a_all = amsynth.draw(5, np.array([3, 4]))
    p_one, a_one = amsynth.draw(5, np.array([4]))
    assert torch.equal(p_all[1], p_one[0]) and torch.equal(a_all[1], a_one[0])


@needs_amsynth
def test_plugin_state_loads_back_to_the_same_parameters(amsynth, two_patches, tmp_path):
    from synthinv.presets import write_native_preset

    row = two_patches[0]
    path = write_native_preset(tmp_path, amsynth, row)
    assert path == tmp_path / "preset.fxb" and path.read_bytes()[:4] == b"CcnK"  # a VST2 bank chunk
    note = int(amsynth.spec.decode(row[None])[0, -1])
    back = amsynth.load_state(path, note=note)
    assert torch.allclose(back, row, atol=1e-4)  # amsynth stores its values as text with 6+ digits
    other = amsynth.load_state(write_native_preset(tmp_path, amsynth, two_patches[1]), note=note)
    assert not torch.allclose(other, row, atol=1e-2)


@needs_amsynth
def test_spec_naming_an_unknown_parameter_is_refused():
    from synthinv.synths.plugin import PluginSynth

    spec = load_spec("amsynth")
    spec["vary"][0] = {**spec["vary"][0], "name": "osc1_wavefrom"}
    with pytest.raises(SpecError, match="no parameter 'osc1_wavefrom'.*did you mean osc1_waveform"):
        PluginSynth(spec).render(torch.zeros(1, 44))


@needs_amsynth
def test_synth_describe_prints_parameters_and_writes_a_usable_skeleton(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from synthinv.cli import app
    from synthinv.synths.plugin import PluginSynth

    out = tmp_path / "my_amsynth.yaml"
    result = CliRunner().invoke(app, ["synth", "describe", str(AMSYNTH), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "41 parameters" in result.output and "osc1_waveform" in result.output
    synth = PluginSynth.from_file(out)
    assert len(synth.spec.params) == 42  # 41 parameters + the note
    monkeypatch.setenv("SYNTHINV_SPEC_PATH", str(tmp_path))  # the user's spec folder: --synth my_amsynth
    from synthinv import synths
    assert synths.from_settings({"name": "my_amsynth"}).spec.hash() == synth.spec.hash()
    again = CliRunner().invoke(app, ["synth", "describe", str(AMSYNTH), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    missing = CliRunner().invoke(app, ["synth", "describe", str(tmp_path / "nope.so")])
    assert missing.exit_code == 2 and "plugin not found" in missing.output


@needs_amsynth
def test_generate_with_a_worker_pool_matches_the_synth(amsynth, tmp_path):
    """Two spawned workers, one plugin instance each: the shards hold what the synth draws in-process."""
    import h5py

    from synthinv.data.generate import generate
    from synthinv.features import log_mel_spectrogram

    result = generate({"name": "amsynth"}, n=4, out_dir=tmp_path / "d", seed=1, shard_size=2, workers=2, progress=False)
    assert result.complete and result.written == [0, 1]
    with h5py.File(tmp_path / "d" / "shard_00001.h5") as f:
        params, mel = f["params"][:], f["mel"][:]
    p, a = amsynth.draw(1, np.array([2, 3]))
    assert np.array_equal(params, p.numpy())
    assert np.array_equal(mel, log_mel_spectrogram(a, 44100).numpy().astype(np.float16))
