"""The synth contract: a synth defined here, and nowhere else, works through the protocol - rendering,
random draws, its own scoring, canonical order, presets, datasets - and the layers point one way
(nothing outside synths/ reaches into one synth, no synth into another's privates)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synthinv import synths
from synthinv.scoring import Scoring, ranking_distance, scoring, target_distance
from synthinv.synths.base import LogMelFeatures, Param, ParamSpec, Synth, SynthBase, draw_examples
from synthinv.synths.sampling import hashed_uniform
from synthinv.synths.tokens import sort_tokens

SRC = Path(__file__).resolve().parents[1] / "src" / "synthinv"


def _mean_abs(audio: torch.Tensor, targets: torch.Tensor, sample_rate: int) -> torch.Tensor:
    return (audio - targets).abs().mean(dim=1)


TOY_SCORING = Scoring("mean |difference|", _mean_abs, "peak", "peak difference",
                      lambda a, t, sr: (a.abs().amax(1) - t.abs().amax(1)).abs())


class TwoPartials(LogMelFeatures, SynthBase):
    """Two sine partials (frequency, amplitude); swapping them changes nothing, so they are sorted by
    frequency for display. It keeps its presets as text, two to a bank."""

    name = "two_partials"
    scoring = TOY_SCORING
    n_tokens, symmetric = 2, True
    preset_bank_size = 2

    def __init__(self, sample_rate: int = 8000, length: int = 12000):
        self.sample_rate, self.length = sample_rate, length
        params = [Param(f"p{i}.{what}", low, high, group=f"p{i}")
                  for i in range(2) for what, low, high in (("freq", 100.0, 1000.0), ("amp", 0.0, 1.0))]
        self.spec = ParamSpec(self.name, tuple(params), {"sample_rate": sample_rate, "length": length})

    @classmethod
    def from_settings(cls, settings: dict) -> TwoPartials:
        return cls(settings.get("sample_rate", 8000), settings.get("length", 12000))

    def render(self, params: torch.Tensor) -> torch.Tensor:
        native = self.spec.decode(params.float()).view(-1, 2, 2)  # (N, partial, [freq, amp])
        t = torch.arange(self.length) / self.sample_rate
        return (native[..., 1:] * torch.sin(2 * torch.pi * native[..., :1] * t)).sum(dim=1)  # (N, T)

    def params_at(self, seed: int, indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(hashed_uniform(seed, np.asarray(indices), self.spec.size)).float()

    def canonical_order(self, params: torch.Tensor) -> torch.Tensor:
        return sort_tokens(params, 2)

    def write_preset(self, folder: Path, params: torch.Tensor, name: str) -> Path:
        path = Path(folder) / "preset.txt"
        path.write_text(f"{name} {params.tolist()}")
        return path

    def write_preset_bank(self, path: Path, params: torch.Tensor, names: list[str]) -> Path:
        path = Path(path).with_suffix(".txt")
        path.write_text("\n".join(names))
        return path


@pytest.fixture
def toy():
    return TwoPartials()


@pytest.fixture
def registered(monkeypatch):
    """The registry with the toy synth added (a real one lists it in synths.registry())."""
    builtin = synths.registry

    monkeypatch.setattr(synths, "registry", lambda: {**builtin(), "two_partials": TwoPartials})


def test_every_synth_meets_the_whole_protocol(toy, kosc4):
    assert isinstance(toy, Synth) and isinstance(kosc4, Synth)
    pytest.importorskip("dexed")
    assert isinstance(synths.get("dexed"), Synth)


def test_a_new_synth_draws_reproducibly_from_seed_and_index(toy):
    params, audio = draw_examples(toy, 7, np.arange(5))  # SynthBase.draw: params_at, then one render
    assert params.shape == (5, 4) and audio.shape == (5, 12000)
    again, again_audio = toy.draw(7, np.array([3, 1]))
    assert torch.equal(again, params[[3, 1]]) and torch.equal(again_audio, audio[[3, 1]])
    assert torch.equal(toy.random_params(2, seed=7, offset=3), params[3:5])
    assert toy.features(audio).shape == (5, *toy.feature_shape)


def test_a_new_synth_is_scored_by_its_own_scoring(toy):
    audio = toy.render(toy.random_params(3, seed=0))
    target = toy.render(toy.random_params(1, seed=1))[0]
    assert scoring(toy) is TOY_SCORING
    expected = _mean_abs(audio, target.expand_as(audio), toy.sample_rate)
    assert torch.equal(ranking_distance(toy, audio, target.expand_as(audio)), expected)
    assert torch.equal(target_distance(toy, target)(audio), expected)  # no `prepare`: the plain distance


def test_the_report_shows_a_new_synths_canonical_order(toy, tmp_path):
    from synthinv.audio_io import write_wav
    from synthinv.report import write_report

    native = torch.tensor([[800.0, 0.5, 200.0, 0.25]])  # the higher partial first
    params = toy.spec.encode(native)[0]
    swapped = toy.spec.encode(native[:, [2, 3, 0, 1]])[0]  # the same sound, partials the other way round
    assert torch.allclose(toy.render(params[None]), toy.render(swapped[None]), atol=1e-6)
    target = toy.render(params[None])[0]
    write_wav(tmp_path / "target.wav", target, toy.sample_rate)
    cand = {"rank": 1, "folder": "candidate_01", "audio": target, "params": params, "distance": 1.0, "check": 0.0,
            "level_db": 0.0, "source": "flow sample"}
    page = write_report(tmp_path, target, [cand], toy, [], "toy.wav", truth=swapped).read_text()
    assert page.index("<td>200</td>") < page.index("<td>800</td>")  # listed by ascending frequency
    assert "best matching of oscillators" in page and "<td>0.0000</td>" in page  # zero error after matching


def test_a_new_synth_writes_its_own_presets_and_banks(toy, tmp_path):
    from synthinv.batch import write_banks
    from synthinv.presets import write_json_preset, write_native_preset

    params = toy.random_params(3, seed=0)
    assert write_native_preset(tmp_path, toy, params[0], name="A").read_text().startswith("A ")
    rows = []
    for i, name in enumerate(["kick.wav", "snare.wav", "hat.wav"]):
        (tmp_path / f"s{i}" / "candidate_01").mkdir(parents=True)
        write_json_preset(tmp_path / f"s{i}" / "candidate_01" / "preset.json", toy, params[i])
        rows.append({"file": name, "folder": f"s{i}"})
    banks = write_banks(toy, tmp_path, rows)
    assert [b.name for b in banks] == ["bank_01.txt", "bank_02.txt"]  # preset_bank_size 2
    assert banks[0].read_text() == "kick\nsnare"


def test_a_registered_synth_makes_datasets_and_models(toy, registered, tmp_path):
    pytest.importorskip("h5py")
    from synthinv.build import build_model
    from synthinv.config import load_config
    from synthinv.data.generate import generate
    from synthinv.datasets import open_dataset, synth_of_dataset
    from synthinv.models.encoders import MelCNN

    assert isinstance(synths.get("two_partials", length=1000), TwoPartials)
    generate({"name": "two_partials"}, 4, tmp_path / "data", seed=3, shard_size=2, progress=False)
    synth, manifest = synth_of_dataset(tmp_path / "data")
    assert isinstance(synth, TwoPartials) and manifest["n"] == 4
    dataset = open_dataset(tmp_path / "data", synth)
    assert torch.equal(dataset[1][0], toy.params_at(3, np.array([1]))[0])
    model = build_model(load_config("flow_mlp", "dexed"), synth)  # a log-mel synth gets a mel encoder
    assert isinstance(model.encoder, MelCNN) and model.encoder.input_shape == synth.feature_shape


def test_synths_without_optional_operations_say_so():
    kosc = synths.get("kosc", k=2)
    assert kosc.capabilities == frozenset() and kosc.write_preset(Path("."), kosc.random_params(1, 0)[0], "x") is None
    with pytest.raises(NotImplementedError):
        kosc.retuned(kosc.random_params(1, 0), torch.zeros(1))
    assert not kosc.trains_from_data and not kosc.uses_bank and kosc.symmetric
    assert not synths.get("kosc", k=2, asym=True).symmetric


def test_unknown_names_and_settings_are_user_errors():
    from synthinv.errors import SynthinvError

    with pytest.raises(synths.UnknownSynthError, match="unknown synth 'moog'"):
        synths.from_settings({"name": "moog"})
    with pytest.raises(SynthinvError, match="no synth name"):
        synths.from_settings({"k": 4})
    with pytest.raises(SynthinvError, match="k must be"):
        synths.get("kosc", k=0)


# --- layers that point one way ----------------------------------------------------------------------

def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every `import` / `from ... import` in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def _modules(under: Path = SRC):
    return sorted(p for p in under.rglob("*.py"))


SYNTH_MODULES = {"synthinv.synths.kosc", "synthinv.synths.dexed", "synthinv.synths.dexed_simple", "synthinv.synths.dx7_sysex", "synthinv.synths.plugin"}


def test_only_synths_import_k_osc():
    outside = [p for p in _modules() if "synths" not in p.relative_to(SRC).parts]
    offenders = [(p.name, m) for p in outside for m, _ in _imports(p) if m == "synthinv.synths.kosc"]
    assert not offenders


def test_no_synth_imports_another_synths_module():
    """Each synth's modules import only each other and the neutral ones (base, sampling, tokens); the
    registry (__init__) is the one place that knows them all."""
    owner = {"kosc": "kosc", "dexed": "dexed", "dexed_simple": "dexed", "dx7_sysex": "dexed", "plugin": "plugin", "plugin_spec": "plugin"}
    offenders = []
    for p in _modules(SRC / "synths"):
        if p.stem == "__init__":
            continue
        for module, names in _imports(p):
            other = module.removeprefix("synthinv.synths.")
            if other in owner and owner[other] != owner.get(p.stem):
                offenders.append((p.name, module, names))
    assert not offenders


def test_synths_build_only_on_the_layers_below_them():
    """synths/ uses errors, files, features, metrics and scoring, never what is built on synths (presets,
    the pipeline, models, training)."""
    below = {"synthinv.errors", "synthinv.fileio", "synthinv.features", "synthinv.metrics", "synthinv.scoring"}
    for p in _modules(SRC / "synths"):
        used = {m for m, _ in _imports(p) if m.startswith("synthinv") and not m.startswith("synthinv.synths")}
        assert used <= below, (p.name, used - below)


def test_data_and_models_do_not_reach_into_training_or_one_synth():
    for p in [*_modules(SRC / "data"), SRC / "datasets.py"]:
        assert not [m for m, _ in _imports(p) if m in ("synthinv.build", "synthinv.training") or
                    m.startswith("synthinv.models")], p.name
    for p in _modules(SRC / "models"):
        assert not [m for m, _ in _imports(p) if m in SYNTH_MODULES], p.name


def test_no_behaviour_branches_on_a_synth_name_outside_synths():
    """Comparisons with a built-in synth's name, or probes of what a synth has, are per-synth choices
    made outside the synth."""
    found = []
    for p in _modules():
        if "synths" in p.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    if isinstance(side, ast.Constant) and side.value in ("kosc", "dexed"):
                        found.append((p.name, node.lineno, side.value))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("hasattr", "getattr"):
                target = node.args[0] if node.args else None
                if isinstance(target, ast.Name) and "synth" in target.id:
                    found.append((p.name, node.lineno, "probe"))
    assert not found


# --- errors in commands ---------------------------------------------------------------------------

@pytest.mark.parametrize("error", [ValueError("a bug"), KeyError("shards"), RuntimeError("boom")])
def test_an_unexpected_error_in_a_command_is_a_bug_exit_1(error, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import synthinv.checks
    from synthinv.cli import app

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(synthinv.checks, "check_generate", fail)
    result = CliRunner().invoke(app, ["generate", "--n", "1", "--out", str(tmp_path / "d"), "--no-progress"])
    assert result.exit_code == 1 and result.exception is error  # not turned into a one-line user error


def test_an_unexpected_error_prints_its_traceback(tmp_path):
    import subprocess
    import sys

    code = ("import sys, synthinv.checks as c\n"
            "def fail(*a, **k): raise RuntimeError('a bug in synthinv')\n"
            "c.check_generate = fail\n"
            "from synthinv.cli import app\n"
            "sys.argv = ['synthinv', 'generate', '--n', '1', '--out', sys.argv[1]]\n"
            "app()\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(SRC.parent)}, timeout=300)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: a bug in synthinv" in done.stderr


def test_a_user_error_is_one_line_exit_2(tmp_path):
    from typer.testing import CliRunner

    from synthinv.cli import app

    result = CliRunner().invoke(app, ["generate", "--synth", "moog", "--n", "1", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and result.output.strip() == ("error: unknown synth 'moog'; available: "
                                                              + ", ".join(synths.available()))


def test_the_preset_json_of_a_new_synth_reads_back(toy, tmp_path):
    from synthinv.presets import read_json_preset, write_json_preset

    row = toy.random_params(1, seed=2)[0]
    path = write_json_preset(tmp_path / "p.json", toy, row)
    assert json.loads(path.read_text())["synth"] == "two_partials"
    assert torch.allclose(read_json_preset(path, toy), row, atol=1e-6)
