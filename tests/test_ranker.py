"""A checkpoint's ranker: ranked_draw keeps the samples whose predicted sound is nearest the target's, snapped to
the synth's grid and in order; attach_ranker stores it safely in a checkpoint; evaluate and invert use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import load_script
from synthinv import synths
from synthinv.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from synthinv.config import load_config
from synthinv.models.sampler import ranked_draw
from synthinv.models.surrogate import Ranker, SoundSurrogate, ranker_from_checkpoint, stored_ranker
from synthinv.synths.base import Param, ParamSpec
from synthinv.training import train


def _attach_module():
    return load_script("attach_ranker")


class UniformSampler:
    """A stand-in model: uniform draws in [-1, 1] from the generator, whatever the sound."""

    stochastic, n_params = True, 4

    def sample(self, cond, *, repeats=1, generator=None):
        return torch.rand(len(cond) * repeats, self.n_params, generator=generator) * 2 - 1


SPEC = ParamSpec("toy", (Param.discrete("steps", 0, 4), Param("level", 0.0, 1.0),
                         Param.categorical("wave", ("sine", "saw"))))  # 4 encoded columns


def test_ranked_draw_keeps_the_nearest_predicted_snapped_samples_in_order():
    torch.manual_seed(0)
    surrogate = SoundSurrogate(n_params=4, dim=3, width=16, layers=1).eval()
    ranker = Ranker(surrogate, pool=50)
    cond, targets = torch.zeros(2, 1), torch.randn(2, 3) * 10  # two sounds
    kept = ranked_draw(UniformSampler(), ranker, SPEC, cond, targets, repeats=5,
                       generator=torch.Generator().manual_seed(1))
    assert kept.shape == (10, 4)  # sound i's 5 at rows 5i .. 5i + 4, as draw lays them out
    gen = torch.Generator().manual_seed(1)
    for i in range(2):  # the same draws by hand: snapped, then the 5 nearest predicted, nearest first
        pool = SPEC.snap(UniformSampler().sample(cond[:1], repeats=50, generator=gen).clamp(-1, 1))
        with torch.no_grad():
            distance = (surrogate(pool) - targets[i]).square().sum(1)
        torch.testing.assert_close(kept[5 * i: 5 * i + 5], pool[distance.argsort()[:5]])
    assert torch.equal(kept, SPEC.snap(kept))  # on the grid: what a render plays
    assert set(kept[:, 2:].flatten().tolist()) <= {-1.0, 1.0}  # one-hot blocks, not soft ones


@pytest.fixture(scope="module")
def kosc_flow(tmp_path_factory):
    synth = synths.from_settings({"name": "kosc", "k": 4})
    config = load_config("flow_mlp")
    config.train.batch_size = 32
    config.sample.val_examples, config.sample.val_steps = 16, 2
    run = tmp_path_factory.mktemp("flow")
    train(config, synth, run, max_steps=2, progress_bar=False, n_validations=1)
    return synth, run / "model.ckpt"


def surrogate_file(path: Path, synth, spec_hash: str | None = None, dim: int = 1024) -> Path:
    torch.manual_seed(0)
    surrogate = SoundSurrogate(n_params=synth.spec.size, dim=dim, width=16, layers=1)
    meta = {"synth": synth.name, "spec_hash": spec_hash or synth.spec.hash()}
    torch.save({"state_dict": surrogate.state_dict(), "settings": surrogate.settings(), "meta": json.dumps(meta)}, path)
    return path


def test_attached_ranker_loads_from_a_safe_checkpoint_and_orders_as_the_surrogate(kosc_flow, tmp_path):
    synth, ckpt = kosc_flow
    attach = _attach_module()
    out = attach.attach(ckpt, surrogate_file(tmp_path / "s.pt", synth), pool=20, out=tmp_path / "ranked.ckpt")
    blob = read_checkpoint(out)  # weights-only: the ranker is tensors and plain values
    ranker = ranker_from_checkpoint(blob, synth)
    assert ranker is not None and ranker.pool == 20 and not ranker.surrogate.training
    assert ranker_from_checkpoint(read_checkpoint(ckpt), synth) is None  # a plain checkpoint has none
    model, _, _ = load_checkpoint(out)  # the model itself loads as before
    assert model.n_params == synth.spec.size
    original = torch.load(tmp_path / "s.pt", weights_only=True)
    surrogate = SoundSurrogate(**original["settings"])
    surrogate.load_state_dict(original["state_dict"])
    candidates, target = synth.random_params(64, seed=3), torch.randn(1024) * 20
    assert torch.equal(ranker.surrogate.order(candidates, target), surrogate.eval().order(candidates, target))


def test_a_ranker_for_another_synth_or_an_empty_pool_is_refused(kosc_flow, tmp_path):
    synth, ckpt = kosc_flow
    attach = _attach_module()
    with pytest.raises(ValueError, match="not kosc"):
        attach.attach(ckpt, surrogate_file(tmp_path / "s.pt", synth, spec_hash="0123456789abcdef"), 20, tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()  # nothing written
    blob = read_checkpoint(attach.attach(ckpt, surrogate_file(tmp_path / "s.pt", synth), 20, tmp_path / "y.ckpt"))
    del blob["ranker"]["state_dict"]["stem.weight"]  # a damaged ranker: one line naming the checkpoint
    with pytest.raises(CheckpointError, match="y.ckpt: its ranker cannot be used"):
        ranker_from_checkpoint(blob, synth, str(tmp_path / "y.ckpt"))
    with pytest.raises(ValueError, match="at least 1"):
        stored_ranker(torch.load(surrogate_file(tmp_path / "t.pt", synth), weights_only=True), 0)


def test_invert_without_a_search_proposes_ranked_samples(kosc_flow, tmp_path):
    from synthinv.pipeline import Inverter

    synth, ckpt = kosc_flow
    out = _attach_module().attach(ckpt, surrogate_file(tmp_path / "s.pt", synth), pool=16, out=tmp_path / "ranked.ckpt")
    target = synth.render(synth.random_params(1, seed=5))[0]
    with Inverter(str(out), workers=1, show_progress=False, say=lambda s: None) as inv:
        result = inv.invert(target, candidates=3, budget=0, steps=2)
    assert result.settings["ranker_pool"] == 16
    assert all(c.source.startswith("flow sample (ranked)") for c in result.candidates)
