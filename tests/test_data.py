"""Datasets: sharded generation that resumes bit for bit, validation, the manifest, log-mel features,
and the Dexed patch prior (near-silent redraws, example i a pure function of (seed, i))."""

from __future__ import annotations

import errno
import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

dexed = pytest.importorskip("dexed")  # dexed-py
h5py = pytest.importorskip("h5py")

from synthinv.cli import app  # noqa: E402
from synthinv.data import shards as sh  # noqa: E402
from synthinv.data.generate import generate, parse_shards  # noqa: E402
from synthinv.data.shards import DatasetError, ShardDataset, check, file_sha256, load_shard  # noqa: E402
from synthinv.features import hz_to_mel, log_mel_spectrogram, mel_to_hz  # noqa: E402
from synthinv.metrics import rms_dbfs  # noqa: E402
from synthinv.synths.dexed import DexedSynth, prior_uniforms, sample_patch_native  # noqa: E402
from synthinv.synths.sampling import SILENCE_DBFS, hashed_uniform  # noqa: E402

N, SHARD, SEED = 24, 8, 0
DEXED = {"name": "dexed"}


def gen(out, **kw):
    kw = {"seed": SEED, "shard_size": SHARD, "workers": 1, "progress": False, **kw}
    return generate(DEXED, N, out, **kw)


def shard_bytes(out) -> list[bytes]:
    return [p.read_bytes() for p in sorted(out.glob("shard_*.h5"))]


def concat(out) -> dict[str, np.ndarray]:
    parts = [load_shard(p) for p in sorted(out.glob("shard_*.h5"))]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("params", "mel", "index")}


@pytest.fixture(scope="module")
def synth():
    return DexedSynth()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: 24 examples in 3 shards of 8."""
    out = tmp_path_factory.mktemp("ref") / "data"
    result = gen(out)
    assert result.written == [0, 1, 2] and result.complete
    return out


def copy_of(reference, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(reference, out)
    return out


# --- the manifest and the shards ------------------------------------------------------------------


def test_manifest_records_what_the_data_are(reference, synth):
    m = json.loads((reference / "manifest.json").read_text())
    assert m["synth"] == {"name": "dexed", "settings": synth.spec.settings} and m["synth"]["settings"]["prior"] == "patch"
    assert m["spec_hash"] == synth.spec.hash() and m["seed"] == SEED and m["sample_rate"] == 44100
    assert (m["n"], m["shard_size"], m["params_dim"]) == (N, SHARD, 225)
    assert m["features"] == {"kind": "log_mel", "n_mels": 128, "win_ms": 25.0, "hop_ms": 10.0, "frames": 151}
    assert [(s["file"], s["start"], s["count"]) for s in m["shards"]] == [
        ("shard_00000.h5", 0, 8), ("shard_00001.h5", 8, 8), ("shard_00002.h5", 16, 8)]
    for s in m["shards"]:
        assert s["sha256"] == file_sha256(reference / s["file"]) and s["bytes"] == (reference / s["file"]).stat().st_size
    assert m["bytes_per_example"] == pytest.approx(sum(s["bytes"] for s in m["shards"]) / N, abs=0.1)
    assert check(reference) == []
    assert not list(reference.glob(".*.tmp"))


def test_shards_hold_the_examples_of_their_indices(reference, synth):
    shard = load_shard(reference / "shard_00001.h5")
    idx = np.arange(8, 16)
    assert np.array_equal(shard["index"], idx)
    assert shard["params"].dtype == np.float32 and shard["mel"].dtype == np.float16
    params, audio = synth.draw(SEED, idx[:3])
    assert np.array_equal(shard["params"][:3], params.numpy())
    assert np.array_equal(shard["mel"][:3], log_mel_spectrogram(audio, 44100).numpy().astype(np.float16))
    ds = ShardDataset(reference)
    assert len(ds) == N and np.array_equal(ds.indices, np.arange(N))
    p, mel = ds[9]
    assert p.dtype == mel.dtype == torch.float32 and p.shape == (225,) and mel.shape == (128, 151)
    assert torch.equal(p, torch.from_numpy(shard["params"][1])) and torch.equal(mel, torch.from_numpy(shard["mel"][1]).float())


# --- resuming -------------------------------------------------------------------------------------


def test_resume_after_interruption_is_bit_identical(reference, tmp_path):
    out = tmp_path / "data"
    first = gen(out, shards=(0, 1))  # "killed" after the first shard
    assert first.written == [0] and not first.complete
    assert "not generated yet" in " ".join(check(out))
    (out / ".shard_00001.h5.12345.tmp").write_bytes(b"half a shard")  # what a kill mid-write leaves
    rest = gen(out)
    assert rest.skipped == [0] and rest.written == [1, 2] and rest.complete
    assert shard_bytes(out) == shard_bytes(reference) and check(out) == []
    assert not list(out.glob(".*.tmp"))
    # a deleted shard is rewritten, the others are left alone
    (out / "shard_00001.h5").unlink()
    again = gen(out)
    assert again.written == [1] and again.skipped == [0, 2]
    assert shard_bytes(out) == shard_bytes(reference)


def test_corrupt_or_truncated_shard_is_detected_and_rewritten(reference, tmp_path):
    out = copy_of(reference, tmp_path)
    data = bytearray((out / "shard_00000.h5").read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte inside the data
    (out / "shard_00000.h5").write_bytes(bytes(data))
    (out / "shard_00002.h5").write_bytes((reference / "shard_00002.h5").read_bytes()[:5000])  # truncated
    problems = check(out)
    assert len(problems) == 2 and problems[0].startswith("shard_00000.h5") and problems[1].startswith("shard_00002.h5")
    assert "corrupt" in problems[0] and "truncated" in problems[1]
    result = gen(out)
    assert result.rewritten == [0, 2] and result.written == [0, 2] and result.skipped == [1]
    assert shard_bytes(out) == shard_bytes(reference) and check(out) == []


def test_example_i_does_not_depend_on_shard_size_or_workers(reference, tmp_path):
    out = tmp_path / "data"
    result = gen(out, shard_size=5, workers=2)  # 5 uneven shards over a 2-process pool
    assert result.written == [0, 1, 2, 3, 4] and result.complete and check(out) == []
    a, b = concat(reference), concat(out)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


# --- bad input ------------------------------------------------------------------------------------


def test_a_manifest_for_another_dataset_is_refused(reference, tmp_path):
    out = copy_of(reference, tmp_path)
    before = (out / "manifest.json").read_text()
    with pytest.raises(DatasetError, match="seed 0 vs 1"):
        gen(out, seed=1)
    with pytest.raises(DatasetError, match="prior 'patch' vs 'uniform'"):
        generate({"name": "dexed", "prior": "uniform"}, N, out, SEED, SHARD, progress=False)
    with pytest.raises(DatasetError, match="synth 'dexed' vs 'kosc'"):
        generate({"name": "kosc", "k": 2}, N, out, SEED, SHARD, progress=False)
    with pytest.raises(DatasetError, match="shard_size 8 vs 4"):
        gen(out, shard_size=4)
    assert (out / "manifest.json").read_text() == before and shard_bytes(out) == shard_bytes(reference)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        gen(tmp_path / "other")
    with pytest.raises(DatasetError, match="outside"):
        gen(tmp_path / "fresh", shards=(2, 4))


def test_full_disk_keeps_finished_shards(reference, tmp_path, monkeypatch):
    real_write, calls = sh.write_shard, []

    def write_then_fill_disk(path, *args, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, *args, **kw)

    monkeypatch.setattr(sh, "write_shard", write_then_fill_disk)
    out = tmp_path / "data"
    with pytest.raises(OSError, match="1 of 3 shards are complete and kept") as info:
        gen(out)
    assert info.value.errno == errno.ENOSPC
    assert [p.name for p in out.glob("shard_*.h5")] == ["shard_00000.h5"]
    monkeypatch.setattr(sh, "write_shard", real_write)
    assert gen(out).written == [1, 2] and shard_bytes(out) == shard_bytes(reference)


def test_cli_generate_and_check(reference, tmp_path, monkeypatch):
    runner = CliRunner()
    out = tmp_path / "data"
    args = ["generate", "--n", str(N), "--out", str(out), "--shard-size", str(SHARD), "--no-progress"]
    result = runner.invoke(app, args + ["--shards", "1:3"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 shards (16 examples)" in result.output and "2 of 3 shards done" in result.output
    result = runner.invoke(app, ["data", "check", str(out)])
    assert result.exit_code == 1 and "shard_00000.h5: not generated yet" in result.output
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "1 already complete" not in result.output and "2 already complete" in result.output
    result = runner.invoke(app, ["data", "check", str(out)])
    assert result.exit_code == 0 and result.output.startswith("ok: 3 shards, 24 examples")
    assert shard_bytes(out) == shard_bytes(reference)
    for bad, message in ((["--shards", "3"], "--shards must look like a:b"), (["--seed", "5"], "seed 0 vs 5"),
                         (["--shards", "0:9"], "outside this dataset's 3 shards")):
        result = runner.invoke(app, args + bad)
        assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output
        assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setattr(sh, "write_shard", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    (out / "shard_00002.h5").unlink()
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "disk full" in result.output and "2 of 3 shards are complete and kept" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["data", "check", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "not found" in result.output


def test_parse_shards():
    assert parse_shards("2:5") == (2, 5) and parse_shards("3:") == (3, -1) and parse_shards(":4") == (0, 4)
    for bad in ("3", "a:b", "1:2:3"):
        with pytest.raises(ValueError, match="a:b"):
            parse_shards(bad)


# --- log-mel features -----------------------------------------------------------------------------


@pytest.mark.parametrize("hz", [220.0, 1000.0, 5000.0])
def test_log_mel_of_a_sine_peaks_in_its_band(hz):
    sr, t = 44100, torch.arange(44100) / 44100
    audio = torch.stack([torch.sin(2 * torch.pi * hz * t), torch.zeros_like(t)])  # a sine and silence
    mel = log_mel_spectrogram(audio, sr)
    assert mel.shape == (2, 128, 1 + 44100 // 441)
    centres = mel_to_hz(torch.linspace(0, float(hz_to_mel(sr / 2)), 130))[1:-1]
    band = mel[0, :, 10:-10].mean(dim=1).argmax().item()  # away from the zero-padded edges
    assert abs(band - (centres - hz).abs().argmin().item()) <= 1
    assert -9 < mel[0, band, 50].item() < 0  # a full-scale sine: about -6 dB in its band
    assert (mel[1] == -100).all()  # silence sits on the floor
    # features of a row do not depend on the batch it came in
    assert torch.equal(log_mel_spectrogram(audio[:1], sr)[0], mel[0])


# --- the Dexed patch prior ------------------------------------------------------------------------


def test_patch_prior_redraws_near_silent_patches_deterministically(synth):
    assert synth.spec.settings["prior"] == "patch" and DexedSynth(prior="uniform").spec.hash() != synth.spec.hash()
    # an example whose first draw is near silent (about 1% are; seed 1 has one among its first 60)
    seed = 1
    for start in range(0, 240, 60):
        idx = np.arange(start, start + 60)
        native = sample_patch_native(prior_uniforms(seed, idx, 0), synth.spec)
        first = synth.spec.encode(torch.from_numpy(native)).float()
        silent = np.flatnonzero(rms_dbfs(synth.render(first)).numpy() < SILENCE_DBFS)
        if len(silent):
            break
    i = int(idx[silent[0]])
    params, audio = synth.draw(seed, np.array([i, i + 1]))
    assert not torch.equal(params[0], first[silent[0]])  # redrawn ...
    assert (rms_dbfs(audio) >= SILENCE_DBFS).all()  # ... into an audible patch
    assert torch.equal(params[0], synth.params_at(seed, np.array([i]))[0])  # whatever the batch
    assert torch.equal(audio, synth.render(params))


def test_patch_prior_shapes(synth):
    spec, n = synth.spec, 3000
    native = sample_patch_native(prior_uniforms(1, np.arange(n)), spec)  # no rendering
    col = {name: i for i, name in enumerate(spec.names)}
    carriers = np.array([[k in dexed.get_carriers(int(a)) for k in range(6)] for a in native[:, col["global.algorithm"]]])
    mode = native[:, [col[f"op{k}.osc_mode"] for k in range(1, 7)]]
    level = native[:, [col[f"op{k}.output_level"] for k in range(1, 7)]]
    assert (mode[carriers] == 0).mean() > 0.97  # carriers in ratio mode
    assert level[carriers].mean() > level[~carriers].mean() + 10
    assert 0.55 < (native[:, col["global.lfo_pitch_mod_depth"]] == 0).mean() < 0.65  # point mass
    for name, p in zip(spec.names, spec.params):  # within range, and every native value stays possible
        assert p.low <= native[:, col[name]].min() and native[:, col[name]].max() <= p.high
    assert native[:, col["op1.eg_rate1"]].min() < 30  # the full-range component reaches below the usual 35-99
    # the uniform prior is the one there was before: one hashed draw per native parameter
    uniform = DexedSynth(prior="uniform")
    expected = uniform.spec.from_uniform(hashed_uniform(3, np.arange(5), len(uniform.spec.params)))
    assert torch.equal(uniform.random_params(5, seed=3), expected)
    with pytest.raises(ValueError, match="unknown prior"):
        DexedSynth(prior="loud")
