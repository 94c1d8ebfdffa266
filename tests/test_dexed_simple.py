"""Dexed Simple: a DX7 subset that renders, writes and draws as whole DX7 voices, and is told apart from Full."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_script

pytest.importorskip("dexed")

from synthinv import synths  # noqa: E402
from synthinv.build import build_model  # noqa: E402
from synthinv.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from synthinv.config import load_config  # noqa: E402
from synthinv.data.generate import generate  # noqa: E402
from synthinv.datasets import DatasetError, open_dataset  # noqa: E402
from synthinv.presets import read_syx_voice  # noqa: E402
from synthinv.synths.dexed_simple import FIXED  # noqa: E402


@pytest.fixture(scope="module")
def simple():
    return synths.get("dexed_simple")


@pytest.fixture(scope="module")
def full():
    return synths.get("dexed")


def test_spec_is_the_documented_subset(simple, full):
    assert simple.spec.size == 112 and len(simple.spec.params) == 75
    assert set(simple.spec.names) <= set(full.spec.names) and simple.spec.names[-1] == "note.midi"
    assert not set(simple.spec.names) & set(FIXED)
    assert set(simple.spec.names) | set(FIXED) == set(full.spec.names)  # every field kept or fixed
    assert simple.spec.hash() != full.spec.hash()
    again = synths.from_settings({"name": "dexed_simple", **simple.spec.settings})
    assert again.spec.hash() == simple.spec.hash()


def test_renders_as_the_whole_voice_with_the_fixed_fields(simple, full):
    params = simple.random_params(4, seed=5)  # (4, 112)
    voice = full.spec.encode(torch.from_numpy(simple.voice_native(params)))  # (4, 225)
    assert torch.equal(simple.render(params), full.render(voice))
    native = full.spec.decode(voice.double())
    for name, value in FIXED.items():
        assert (native[:, full.spec.names.index(name)] == value).all(), name


def test_prior_is_dexeds_prior_with_the_fixed_fields_set(simple, full):
    params, audio = simple.draw(1, np.arange(32))
    assert params.shape == (32, 112) and audio.shape == (32, simple.length)
    from synthinv.metrics import rms_dbfs
    from synthinv.synths.sampling import SILENCE_DBFS

    assert (rms_dbfs(audio) >= SILENCE_DBFS).all()  # silent draws redrawn
    whole = full.spec.decode(full.random_params(32, seed=1).double()).numpy()  # (32, 145)
    projected = simple.spec.encode(torch.from_numpy(simple.from_voice_native(whole)))
    same = (projected.float() == params).all(1)
    assert same.float().mean() > 0.8  # rows that needed no redraw in either are the same patch


def test_syx_preset_is_a_complete_dx7_voice(simple, tmp_path):
    params = simple.random_params(2, seed=3)
    path = simple.write_preset(tmp_path, params[0], "SIMPLE")
    patch = read_syx_voice(path)
    back = simple.from_patch(patch, note=int(simple.notes(params[:1])[0]))
    assert torch.equal(back, params[0])  # the kept fields survive the .syx round trip
    assert all(op.detune == 7 and op.velocity_sensitivity == 0 and op.left_depth == 0 for op in patch.op)
    assert patch.lfo.pitch_mod_depth == 0 and patch.lfo.amp_mod_depth == 0 and patch.osc_key_sync
    vced = simple.to_vced(params[:1])[0]
    assert vced[139] == 0 and vced[140] == 0 and list(vced[130:134]) == [50] * 4  # LFO depths 0, pitch EG flat
    bank = simple.write_preset_bank(tmp_path / "bank", params, ["A", "B"])
    assert bank.stat().st_size == 4104  # a 32-voice DX7 bulk dump


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    generate({"name": "dexed"}, 4, root / "full", seed=1, shard_size=4, progress=False)
    generate({"name": "dexed_simple"}, 4, root / "simple", seed=1, shard_size=4, progress=False)
    return root


def test_a_full_dataset_is_refused_for_simple_and_back(simple, full, datasets):
    with pytest.raises(DatasetError, match="is a 'dexed' dataset, but the model is for 'dexed_simple'") as exc:
        open_dataset(datasets / "full", simple)
    assert "\n" not in str(exc.value)
    with pytest.raises(DatasetError, match="is a 'dexed_simple' dataset, but the model is for 'dexed'"):
        open_dataset(datasets / "simple", full)
    assert len(open_dataset(datasets / "simple", simple)) == 4


def test_a_full_checkpoint_is_refused_for_simple_and_back(simple, full, tmp_path):
    for synth, other in ((full, "dexed_simple"), (simple, "dexed")):
        config = load_config("regression_mse", synth.name)
        path = save_checkpoint(tmp_path / f"{synth.name}.ckpt", build_model(config, synth), synth, config, {})
        with pytest.raises(CheckpointError, match=f"trained for synth name='{synth.name}', not '{other}'") as exc:
            load_checkpoint(path, expect_synth={"name": other})
        assert "\n" not in str(exc.value)
        assert load_checkpoint(path)[1].spec.hash() == synth.spec.hash()


def test_a_checkpoint_of_another_simple_is_refused(simple, tmp_path):
    config = load_config("regression_mse", "dexed_simple")
    path = save_checkpoint(tmp_path / "s.ckpt", build_model(config, simple), simple, config, {})
    blob = torch.load(path, weights_only=True)
    blob["synth"]["fixed"] = {**FIXED, "op1.detune": 3}
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match="fixes other values than the one recorded .*op1.detune"):
        load_checkpoint(path)


def test_ship_model_ships_a_simple_model(simple, datasets, tmp_path, monkeypatch):
    import sys

    ship = load_script("ship_model")
    monkeypatch.setattr(ship, "SHIPPED_DIR", tmp_path / "shipped")
    config = load_config("flow_mlp", "dexed_simple")
    meta = {"steps": 1, "train_seconds": 1.0, "torch_threads": 1, "best_val_mss": 20.0, "val_data": "none",
            "data": {"examples": 4, "seed": 7}}
    save_checkpoint(tmp_path / "run" / "model.ckpt", build_model(config, simple), simple, config, meta)
    monkeypatch.setattr(sys, "argv", ["ship_model.py", str(tmp_path / "run"), "tiny-simple", "--n", "2", "--steps", "2",
                                      "--candidates", "2", "--bank", "16", "--test-data", str(datasets / "simple")])
    ship.main()
    card = (tmp_path / "shipped" / "tiny-simple.md").read_text()
    assert card.startswith("# tiny-simple\n\nDexed Simple") and "--synth dexed_simple" in card
    # every figure beside both baselines: random patches and the bank lookup with as many candidates
    assert "random patches" in card and "the 2 nearest of 16 rendered prior patches" in card
    assert "temperature 0.7" in card  # measured as the config samples
    assert load_checkpoint(tmp_path / "shipped" / "tiny-simple.ckpt")[1].name == "dexed_simple"


def test_swapping_operators_keeps_the_sound_only_where_the_algorithm_allows_it(simple):
    """The symmetry scripts/dexed_symmetry.py counts: in algorithm 32 operators 1 and 2 are both plain
    carriers, so swapping all their fields changes nothing; in algorithm 1 operator 1 is a carrier and
    operator 2 its modulator, so the same swap changes the sound."""
    symmetry = load_script("dexed_symmetry")
    from synthinv.metrics import mss_distance

    params = simple.random_params(256, seed=21)  # (256, P)
    algorithm = params[:, simple.spec.slices[simple.spec.names.index("global.algorithm")]].argmax(1)
    blocks = symmetry.operator_blocks(simple.spec)
    swap = (1, 0, 2, 3, 4, 5)
    for alg, keeps in ((31, True), (0, False)):
        base = params[int(torch.nonzero(algorithm == alg)[0])]
        audio = simple.render(torch.stack([base, symmetry.permuted(base, blocks, swap)]))  # (2, T)
        mss = float(mss_distance(audio[1:], audio[:1], simple.sample_rate)[0])
        assert (mss < 0.05) if keeps else (mss > 1.0), (alg + 1, mss)


def test_posterior_information_scores_the_truth_one_and_unrelated_prior_draws_zero(simple, monkeypatch):
    """scripts/dexed_posterior_information.py's scale: every encoded column in one field group, the target's
    own patch 1 in every group, patches drawn from the prior regardless of the target about 0."""
    import importlib

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "scripts"))
    info = importlib.import_module("dexed_posterior_information")
    groups = info.encoded_groups(simple)
    assert sorted(j for cols in groups.values() for j in cols) == list(range(simple.spec.size))
    gen = torch.Generator().manual_seed(31)
    truth, other = (simple.spec.from_uniform(torch.rand(4096, len(simple.spec.params), generator=gen, dtype=torch.float64))
                    for _ in range(2))  # (4096, P) each: independent draws from one distribution
    for label, own in info.scores(truth, truth, groups).items():
        assert torch.allclose(own, torch.ones_like(own)), label
    for label, unrelated in info.scores(other, truth, groups).items():
        assert abs(float(unrelated.mean())) < 0.06, (label, float(unrelated.mean()))


def test_raft_keeps_each_sounds_closest_sample_and_fine_tunes_from_the_base(simple, datasets, tmp_path, monkeypatch):
    """scripts/raft_finetune.py: `pairs` keeps, per training sound, the one of k samples closest by MSS (its
    distance is the least of the k), resumes to the same pairs, and `finetune` writes a loadable checkpoint with the
    base's config, more steps and the CPU minutes of everything that made it."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "scripts"))
    raft = importlib.import_module("raft_finetune")
    config = load_config("flow_mlp", "dexed_simple")
    meta = {"steps": 5, "train_seconds": 1.0, "torch_threads": 1, "best_val_mss": 20.0, "val_data": "none",
            "data": {"examples": 4, "seed": 1}}
    base = save_checkpoint(tmp_path / "base.ckpt", build_model(config, simple), simple, config, meta)
    common = ["--base", str(base), "--run", str(tmp_path / "run"), "--data", str(datasets / "simple"), "--sounds", "3",
              "--first", "1", "--k", "3", "--ode-steps", "2"]
    monkeypatch.setattr(sys, "argv", ["raft_finetune.py", "pairs", *common])
    raft.main()
    pairs = torch.load(tmp_path / "run" / "pairs.pt")
    assert pairs["first"] == 1 and torch.cat(pairs["best"]).shape == (3, simple.spec.size)
    assert (torch.cat(pairs["mss"]) <= torch.cat(pairs["true_mss"])).all()
    kept = torch.cat(pairs["best"])
    assert torch.allclose(raft.snapped(simple, kept), kept)  # whole patches as the synth plays them
    target = simple.render(open_dataset(datasets / "simple", simple)[2][0][None])  # sound 2: the second kept
    from synthinv.metrics import mss_distance
    assert torch.allclose(mss_distance(simple.render(kept[1:2]), target, simple.sample_rate), pairs["mss"][0][1:2], atol=1e-4)
    again = tmp_path / "again"  # the same command from scratch draws the same samples
    monkeypatch.setattr(sys, "argv", ["raft_finetune.py", "pairs", *common[:3], str(again), *common[4:]])
    raft.main()
    assert torch.equal(torch.load(again / "pairs.pt")["mss"][0], pairs["mss"][0])
    monkeypatch.setattr(sys, "argv", ["raft_finetune.py", "finetune", *common, "--minutes", "0.005",
                                      "--base-cpu-minutes", "2.5"])
    raft.main()
    model, _, blob = load_checkpoint(tmp_path / "run" / "model.ckpt")
    assert blob["meta"]["steps"] > 5 and blob["meta"]["raft"]["first"] == 1 and blob["config"] == config.to_dict()
    assert float((tmp_path / "run" / "cpu_minutes.txt").read_text()) > 2.5
