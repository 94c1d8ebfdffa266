"""Bad input to every command: one line `error: ...`, exit status 2, no traceback, nothing half-written.

Each case runs a command with something wrong (an option value, a path, a damaged file or dataset) and
checks that the whole folder it ran in is exactly as before: no output folder, no temporary or lock file,
existing outputs untouched. Cases that would need a model fail before it is loaded, so the suite is fast;
the few that need one use the small shipped models.

Arguments are templates: {tmp} is the test's folder (also the working directory), {ex} the examples
folder, {kosc}/{dexed} the shipped checkpoints, {dsp} the shipped Faust synth. A name under {tmp} that
appears in MAKERS is created first (files, damaged datasets).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from synthinv.cli import app

h5py = pytest.importorskip("h5py")
pytest.importorskip("dexed")

REPO = Path(__file__).resolve().parents[1]
EX = REPO / "examples"
SOUND = EX / "dexed_heldout_0.wav"
KOSC_SOUND = EX / "kosc4_heldout_0.wav"
runner = CliRunner()
needs_proc = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc (a folder nobody can write)")


# --- what the cases are made from ------------------------------------------------------------------


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Tiny datasets to damage: Dexed training (8 examples, 2 shards, seed 0), Dexed validation (4, seed 5),
    k-osc (4)."""
    from synthinv.data.generate import generate

    root = tmp_path_factory.mktemp("datasets")
    generate({"name": "dexed"}, 8, root / "train", seed=0, shard_size=4, progress=False)
    generate({"name": "dexed"}, 4, root / "val", seed=5, shard_size=4, progress=False)
    generate({"name": "kosc", "k": 4}, 4, root / "kosc", seed=0, shard_size=4, progress=False)
    return root


def wav(path: Path, data, rate: int = 44100) -> None:
    sf.write(str(path), np.asarray(data, dtype=np.float32), rate, subtype="FLOAT")  # 16-bit would turn NaN into 0


def copy_dataset(datasets, which: str, dest: Path) -> Path:
    shutil.copytree(datasets / which, dest)
    return dest


def edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def rewrite_shard(folder: Path, k: int, key: str, change) -> None:
    """Change array `key` of shard k in place (`change(values)`) and record the shard's new checksum, as if
    generate had written it so: only the values can then tell that something is wrong."""
    from synthinv.data.shards import file_sha256

    path = folder / f"shard_{k:05d}.h5"
    with h5py.File(path, "r+") as f:
        values = f[key][()]
        change(values)
        f[key][...] = values
    edit_manifest(folder, lambda m: m["shards"][k].update(sha256=file_sha256(path), bytes=path.stat().st_size))


def damaged(which: str, damage):
    def make(tmp: Path, datasets, name: str) -> None:
        damage(copy_dataset(datasets, which, tmp / name))
    return make


def truncated(folder):
    path = folder / "shard_00001.h5"
    path.write_bytes(path.read_bytes()[:-3000])


def flipped(folder):
    path = folder / "shard_00000.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def nan_params(folder):
    rewrite_shard(folder, 1, "params", lambda v: v.__setitem__((2, 5), np.nan))


def big_params(folder):
    rewrite_shard(folder, 0, "params", lambda v: v.__setitem__((0, 0), 7.0))


def nan_mel(folder):
    for k in (0, 1):
        rewrite_shard(folder, k, "mel", lambda v: v.fill(np.nan))


def deleted_shard(folder):
    (folder / "shard_00001.h5").unlink()


def no_shards(folder):
    edit_manifest(folder, lambda m: m.pop("shards"))


def unfinished(folder):
    edit_manifest(folder, lambda m: [s.update(sha256=None, bytes=None) for s in m["shards"]])
    for p in folder.glob("shard_*.h5"):
        p.unlink()


def intact(folder):
    pass


def preset(values, synth_name="dexed") -> str:
    """A JSON preset as write_json_preset writes it, with `values` as its normalised vector."""
    from synthinv import synths

    synth = synths.from_settings({"name": synth_name, "k": 4})
    return json.dumps({"synth": synth.name, "spec_hash": synth.spec.hash(), "normalised": values})


def text(content: str | bytes):
    def make(path: Path) -> None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return make


def manifest_variant(change):
    """A copy of the training set whose manifest was edited by hand."""
    def make(tmp: Path, datasets, name: str) -> None:
        folder = copy_dataset(datasets, "train", tmp / name)
        edit_manifest(folder, change)
    return make


NESTED = "[" * 100_000 + "]" * 100_000  # deeper than json's recursion limit

# name under {tmp} -> how to make it: make(path) for plain files and folders, make(tmp, datasets, name) for datasets
FILES = {
    "file.txt": text("not audio, not a folder"),
    "notes.wav": text("hello, not audio"),
    "empty.wav": lambda p: wav(p, np.zeros(0)),
    "nan.wav": lambda p: wav(p, np.where(np.arange(4096) == 7, np.nan, 0.1)),
    "silent.wav": lambda p: wav(p, np.zeros(8192)),
    # 61.5 s, silent until a note at 61 s: only the first 60 s are read
    "late_note.wav": lambda p: sf.write(str(p), np.concatenate([np.zeros(61 * 8000), 0.3 * np.sin(np.arange(4000) / 3)]).astype(np.float32),
                                        8000, subtype="PCM_16"),
    "[bold red]loud.wav": text("markup in a name, and not audio either"),
    "soundfolder.wav": lambda p: p.mkdir(),
    "emptydir": lambda p: p.mkdir(),
    "inv_existing": lambda p: (p.mkdir(), (p / "mine.txt").write_text("keep me")),
    "inv_empty": lambda p: p.mkdir(),
    "holder": lambda p: (p.mkdir(), shutil.copy(SOUND, p / "note.wav")),
    "oldrun": lambda p: (p.mkdir(), (p / "model.ckpt").write_bytes(b"an earlier run, keep it")),
    "metrics.json": text('{"earlier": "metrics, keep them"}'),
    "junk.ckpt": text("\x00not a checkpoint" * 10),
    "ckptdir": lambda p: p.mkdir(),
    "empty.yaml": text(""),
    "broken.yaml": text("model: {kind: flow\n  : ["),
    "nofield.yaml": text("model: {kind: flow}\ntrain: {}\nsample: {}\n"),
    "list.json": text("[1, 2, 3]"),
    "notjson.json": text("{not json"),
    "nested.json": text(NESTED),
    "nonorm.json": text('{"synth": "dexed", "parameters": {}}'),
    "normstr.json": text('{"normalised": "abc"}'),
    "normempty.json": text('{"normalised": []}'),
    "t10.json": lambda p: p.write_text(preset([0.0] * 10)),
    "tnan.json": lambda p: p.write_text(preset([0.1] * 224 + [float("nan")])),
    "tinf.json": lambda p: p.write_text(preset([float("inf")] * 225)),
    "tstr.json": lambda p: p.write_text(preset(["a"] * 225)),
    "tbool.json": lambda p: p.write_text(preset([True] * 225)),
    "tbig.json": lambda p: p.write_text(preset([2.5] * 225)),
    "tnested.json": lambda p: p.write_text(preset([[0.1]] * 225)),
    "tkosc.json": lambda p: p.write_text(preset([0.0] * 12, "kosc")),
    "audio_empty": lambda p: p.mkdir(),
    "audio_bad": lambda p: (p.mkdir(), shutil.copy(KOSC_SOUND, p / "a.wav"), (p / "b.wav").write_text("not audio")),
    "audio_silent": lambda p: (p.mkdir(), shutil.copy(KOSC_SOUND, p / "a.wav"), wav(p / "quiet.wav", np.zeros(4096))),
    "ood_done": lambda p: (p.mkdir(), (p / "ood.md").write_text("earlier tables")),
    "junk.so": text("not a plugin"),
    "junk.dsp": text("process = garbage(;"),
    "empty.dsp": text(""),
    "binary.dsp": text(bytes(range(256)) * 4),
    "spec.yaml": text("name: mine  # keep me\n"),
    "man_notjson": lambda p: (p.mkdir(), (p / "manifest.json").write_text("{broken")),
    "man_binary": lambda p: (p.mkdir(), (p / "manifest.json").write_bytes(b"\xff\xfe\x00" * 50)),
    "man_list": lambda p: (p.mkdir(), (p / "manifest.json").write_text("[1, 2]")),
    "man_nested": lambda p: (p.mkdir(), (p / "manifest.json").write_text(NESTED)),
    "man_format": lambda p: (p.mkdir(), (p / "manifest.json").write_text('{"format": "something/9"}')),
    "man_isdir": lambda p: (p.mkdir(), (p / "manifest.json").mkdir()),
    "notadataset": lambda p: (p.mkdir(), (p / "photo.jpg").write_bytes(b"\xff\xd8 mine")),
}
DATASETS = {
    "data_intact": damaged("train", intact),
    "data_truncated": damaged("train", truncated),
    "data_flipped": damaged("train", flipped),
    "data_nan_params": damaged("train", nan_params),
    "data_big_params": damaged("train", big_params),
    "data_nan_mel": damaged("train", nan_mel),
    "data_deleted_shard": damaged("train", deleted_shard),
    "data_no_shards": damaged("train", no_shards),
    "data_unfinished": damaged("train", unfinished),
    "valdata_intact": damaged("val", intact),
    "valdata_flipped": damaged("val", flipped),
    "koscdata_intact": damaged("kosc", intact),
    "man_shards_dict": manifest_variant(lambda m: m.update(shards={"0": m["shards"][0]})),
    "man_shards_empty": manifest_variant(lambda m: m.update(shards=[])),
    "man_entry_str": manifest_variant(lambda m: m["shards"].__setitem__(0, "shard_00000.h5")),
    "man_traversal": manifest_variant(lambda m: m["shards"][0].update(file="../../outside.h5")),
    "man_absolute": manifest_variant(lambda m: m["shards"][0].update(file="/etc/passwd")),
    "man_gap": manifest_variant(lambda m: m["shards"][1].update(start=5)),
    "man_count0": manifest_variant(lambda m: m["shards"][1].update(count=0)),
    "man_n": manifest_variant(lambda m: m.update(n=9)),
    "man_n_str": manifest_variant(lambda m: m.update(n="8")),
    "man_no_features": manifest_variant(lambda m: m.pop("features")),
    "man_no_params_dim": manifest_variant(lambda m: m.pop("params_dim")),
    "man_no_synth": manifest_variant(lambda m: m.pop("synth")),
    "man_sha_number": manifest_variant(lambda m: m["shards"][0].update(sha256=12345)),
}


def make_inputs(args: list[str], tmp: Path, datasets) -> None:
    """Create the FILES and DATASETS entries that the arguments name right under {tmp}."""
    for arg in args:
        if "{tmp}/" not in arg:
            continue
        name = arg.split("{tmp}/", 1)[1].split("/")[0]
        if name not in FILES and name not in DATASETS or (tmp / name).exists():
            continue
        if name in FILES:
            FILES[name](tmp / name)
        elif name in DATASETS:
            DATASETS[name](tmp, datasets, name)


def snapshot(root: Path) -> dict:
    """Every file and folder under root with its bytes and modification time (hidden ones included)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else "folder"
            for p in sorted(root.rglob("*"))}


def shipped(name: str) -> str:
    from synthinv.zoo import resolve_model

    return str(resolve_model(name, "dexed"))


# --- the cases --------------------------------------------------------------------------------------

C = pytest.param
S, OUT = "{ex}/dexed_heldout_0.wav", ["--out", "{tmp}/inv"]

INVERT = [
    C([S.replace("dexed_heldout_0", "missing"), *OUT], "not found", id="sound-missing"),
    C(["{tmp}/soundfolder.wav", *OUT], "is a folder that holds no audio files", id="sound-is-empty-folder"),
    C(["{tmp}/notes.wav", *OUT], "not a readable audio file", id="sound-not-audio"),
    C(["{tmp}/file.txt", *OUT], "not a readable audio file", id="sound-text-file"),
    C(["{tmp}/empty.wav", *OUT], "no audio samples", id="sound-empty"),
    C(["{tmp}/nan.wav", *OUT], "NaN", id="sound-nan"),
    C(["{tmp}/silent.wav", *OUT], "is silent", id="sound-silent"),
    C(["{tmp}/late_note.wav", *OUT], "only those are read", id="sound-note-after-60s"),
    C(["{tmp}/[bold red]loud.wav", *OUT], "[bold red]loud.wav", id="sound-name-markup"),
    C([S, "--candidates", "0", *OUT], "at least 1", id="candidates-0"),
    C([S, "--candidates", "-3", *OUT], "at least 1", id="candidates-negative"),
    C([S, "--candidates", "100000", *OUT], "at most 1024", id="candidates-100000"),
    C([S, "--candidates", "1025", *OUT], "at most 1024", id="candidates-1025"),
    C([S, "--steps", "0", *OUT], "--steps", id="steps-0"),
    C([S, "--steps", "-1", *OUT], "--steps", id="steps-negative"),
    C([S, "--refine", "-5", *OUT], "--refine", id="refine-negative"),
    C([S, "--guidance", "nan", *OUT], "--guidance must be a finite number", id="guidance-nan"),
    C([S, "--guidance", "inf", *OUT], "--guidance must be a finite number", id="guidance-inf"),
    C([S, "--guidance", "-inf", *OUT], "--guidance must be a finite number", id="guidance-minus-inf"),
    C([S, "--threads", "0", *OUT], "--threads", id="threads-0"),
    C([S, "--threads", "-2", *OUT], "--threads", id="threads-negative"),
    C([S, "--seed", "-1", *OUT], "--seed", id="seed-negative"),
    C([S, "--seed", "99999999999999999999", *OUT], "--seed", id="seed-huge"),
    C([S, "--out", "{tmp}/file.txt", "--force"], "not a directory", id="out-is-file-force"),
    C([S, "--out", "{tmp}/file.txt"], "not a directory", id="out-is-file"),
    C([S, "--out", "{tmp}/file.txt/sub"], "is a file, not a folder", id="out-under-file"),
    C([S, "--out", "{tmp}/inv_existing"], "--force", id="out-exists"),
    C([S, "--out", "{tmp}/inv_empty"], "already exists", id="out-exists-empty"),
    C([S, "--out", "."], "already exists", id="out-cwd"),
    C([S, "--out", ".", "--force"], "the current folder", id="out-cwd-force"),
    C(["{tmp}/holder/note.wav", "--out", "{tmp}/holder", "--force"], "holds", id="out-holds-sound-force"),
    C(["{tmp}/notes.wav", "--out", "{tmp}/inv_existing", "--force"], "not a readable audio file", id="force-keeps-old-on-bad-sound"),
    C([S, "--out", "/proc/synthinv-test"], "not writable", id="out-not-writable", marks=needs_proc),
    C([S, "--out", "{tmp}/" + "x" * 240], "longer than 220 bytes", id="out-name-too-long"),
    C([S, "--truth", "{tmp}/missing.json", *OUT], "not found", id="truth-missing"),
    C([S, "--truth", "{tmp}/emptydir", *OUT], "not found", id="truth-is-folder"),
    C([S, "--truth", "{tmp}/notjson.json", *OUT], "not a synthinv JSON preset", id="truth-not-json"),
    C([S, "--truth", "{tmp}/list.json", *OUT], "not a synthinv JSON preset", id="truth-json-list"),
    C([S, "--truth", "{tmp}/nested.json", *OUT], "not a synthinv JSON preset", id="truth-deeply-nested"),
    C([S, "--truth", "{tmp}/nonorm.json", *OUT], "not a synthinv JSON preset", id="truth-no-values"),
    C([S, "--truth", "{tmp}/normstr.json", *OUT], "not a list of numbers", id="truth-values-string"),
    C([S, "--truth", "{tmp}/normempty.json", *OUT], "not a list of numbers", id="truth-values-empty"),
    C([S, "--truth", "{tmp}/tnan.json", *OUT], "#224 is NaN", id="truth-nan"),
    C([S, "--truth", "{tmp}/tinf.json", *OUT], "Infinity", id="truth-infinity"),
    C([S, "--truth", "{tmp}/tstr.json", *OUT], "not a number", id="truth-text"),
    C([S, "--truth", "{tmp}/tbool.json", *OUT], "not a number", id="truth-bool"),
    C([S, "--truth", "{tmp}/tbig.json", *OUT], "[-1, 1]", id="truth-out-of-range"),
    C([S, "--truth", "{tmp}/tnested.json", *OUT], "not a number", id="truth-nested"),
    C([S, "--truth", "{tmp}/t10.json", *OUT], "has 10 normalised values, dexed presets have 225", id="truth-10-values"),
    C([S, "--truth", "{tmp}/tkosc.json", *OUT], "preset for kosc", id="truth-other-synth"),
    C([S, "--model", "no-such-model", *OUT], "neither a shipped model", id="model-unknown"),
    C([S, "--model", "{tmp}/junk.ckpt", *OUT], "not a readable checkpoint", id="model-junk"),
    C([S, "--model", "{tmp}/ckptdir", *OUT], "neither a shipped model", id="model-folder"),
    C([S, "--synth", "kosc", "--model", "dexed-flow-mlp", *OUT], "trained for synth", id="model-other-synth"),
    C([S, "--synth", "nosuch", *OUT], "no shipped model for synth", id="synth-unknown"),
]

G = ["--n", "8", "--shard-size", "4", "--no-progress"]
GEN = [
    C(["--n", "0", "--out", "{tmp}/gen", "--no-progress"], "--n", id="n-0"),
    C(["--n", "-5", "--out", "{tmp}/gen", "--no-progress"], "--n", id="n-negative"),
    C([*G, "--shard-size", "0", "--out", "{tmp}/gen"], "--shard-size", id="shard-size-0"),
    C([*G, "--shard-size", "100000", "--out", "{tmp}/gen"], "at most 16384", id="shard-size-huge"),
    C([*G, "--workers", "0", "--out", "{tmp}/gen"], "--workers", id="workers-0"),
    C([*G, "--seed", "-1", "--out", "{tmp}/gen"], "--seed", id="seed-negative"),
    C([*G, "--seed", "99999999999999999999", "--out", "{tmp}/gen"], "--seed", id="seed-huge"),
    C([*G, "--synth", "kosc", "--seed", "-1", "--out", "{tmp}/gen"], "--seed", id="kosc-seed-negative"),
    C([*G, "--workers", "100000", "--out", "{tmp}/gen"], "--workers", id="workers-huge"),
    C(["--n", "1000000000", "--shard-size", "1", "--out", "{tmp}/gen"], "larger --shard-size", id="too-many-shards"),
    C([*G, "--shards", "3", "--out", "{tmp}/gen"], "must look like a:b", id="shards-one-number"),
    C([*G, "--shards", "a:b", "--out", "{tmp}/gen"], "must look like a:b", id="shards-words"),
    C([*G, "--shards", "0:1:2", "--out", "{tmp}/gen"], "must look like a:b", id="shards-three-parts"),
    C([*G, "--shards", "0:99", "--out", "{tmp}/gen"], "outside this dataset's 2 shards", id="shards-outside"),
    C([*G, "--shards", "5:2", "--out", "{tmp}/gen"], "outside", id="shards-reversed"),
    C([*G, "--shards", "-1:2", "--out", "{tmp}/gen"], "outside", id="shards-negative"),
    C([*G, "--shards", "0:99", "--out", "{tmp}/data_intact"], "outside", id="shards-outside-existing"),
    C([*G, "--synth", "nosuch", "--out", "{tmp}/gen"], "unknown synth", id="synth-unknown"),
    C([*G, "--synth", "kosc", "--prior", "patch", "--out", "{tmp}/gen"], "--prior applies", id="kosc-prior"),
    C([*G, "--synth", "kosc", "--k", "0", "--out", "{tmp}/gen"], "--k", id="kosc-k-0"),
    C([*G, "--synth", "kosc", "--k", "65", "--out", "{tmp}/gen"], "--k", id="kosc-k-65"),
    C([*G, "--prior", "bogus", "--out", "{tmp}/gen"], "unknown prior", id="prior-unknown"),
    C([*G, "--out", "{tmp}/file.txt"], "not a directory", id="out-is-file"),
    C([*G, "--out", "{tmp}/file.txt/sub"], "is a file", id="out-under-file"),
    C([*G, "--out", "/proc/synthinv-test"], "not writable", id="out-not-writable", marks=needs_proc),
    C([*G, "--out", "{tmp}/notadataset"], "holds no manifest.json", id="out-other-files"),
    C([*G, "--seed", "5", "--out", "{tmp}/data_intact"], "seed 0 vs 5", id="other-seed"),
    C(["--n", "16", "--shard-size", "4", "--no-progress", "--out", "{tmp}/data_intact"], "n 8 vs 16", id="other-n"),
    C(["--n", "8", "--shard-size", "2", "--no-progress", "--out", "{tmp}/data_intact"], "shard_size 4 vs 2", id="other-shard-size"),
    C([*G, "--prior", "uniform", "--out", "{tmp}/data_intact"], "prior 'patch' vs 'uniform'", id="other-prior"),
    C([*G, "--synth", "kosc", "--out", "{tmp}/data_intact"], "synth 'dexed' vs 'kosc'", id="other-synth"),
    C([*G, "--out", "{tmp}/man_notjson"], "not a readable manifest", id="manifest-not-json"),
    C([*G, "--out", "{tmp}/man_format"], "not a synthinv dataset manifest", id="manifest-other-format"),
    C([*G, "--out", "{tmp}/data_no_shards"], "no 'shards' list", id="manifest-no-shards"),
]

CHECK = [
    C(["{tmp}/nowhere"], "not found", id="missing"),
    C(["{tmp}/file.txt"], "is a file", id="is-file"),
    C(["{tmp}/emptydir"], "holds no manifest.json", id="empty-folder"),
    C(["{tmp}/notadataset"], "holds no manifest.json", id="other-files"),
    C(["{tmp}/man_notjson"], "not a readable manifest", id="manifest-not-json"),
    C(["{tmp}/man_binary"], "not a readable manifest", id="manifest-binary"),
    C(["{tmp}/man_nested"], "not a readable manifest", id="manifest-deeply-nested"),
    C(["{tmp}/man_list"], "not a synthinv dataset manifest", id="manifest-list"),
    C(["{tmp}/man_format"], "not a synthinv dataset manifest", id="manifest-other-format"),
    C(["{tmp}/man_isdir"], "not a readable manifest", id="manifest-is-folder"),
    C(["{tmp}/data_no_shards"], "no 'shards' list", id="no-shards"),
    C(["{tmp}/man_shards_dict"], "no 'shards' list", id="shards-not-list"),
    C(["{tmp}/man_shards_empty"], "no 'shards' list", id="shards-empty"),
    C(["{tmp}/man_entry_str"], "not an object", id="shard-entry-string"),
    C(["{tmp}/man_traversal"], "not a file name in the dataset folder", id="shard-path-traversal"),
    C(["{tmp}/man_absolute"], "not a file name in the dataset folder", id="shard-absolute-path"),
    C(["{tmp}/man_gap"], "does not continue at example 4", id="shard-gap"),
    C(["{tmp}/man_count0"], "positive count", id="shard-count-0"),
    C(["{tmp}/man_n"], "not n = 9", id="n-mismatch"),
    C(["{tmp}/man_n_str"], "'n' is '8'", id="n-string"),
    C(["{tmp}/man_no_features"], "'features'", id="no-features"),
    C(["{tmp}/man_no_params_dim"], "'params_dim'", id="no-params-dim"),
    C(["{tmp}/man_no_synth"], "'synth'", id="no-synth"),
    C(["{tmp}/man_sha_number"], "malformed sha256", id="sha256-number"),
]

D = ["--synth", "dexed", "--data"]
T = ["--out", "{tmp}/run"]
TRAIN = [
    C(["no_such_method", *T, "--steps", "1"], "unknown method", id="method-unknown"),
    C(["flow_mlp", *T, "--budget", "0"], "positive", id="budget-0"),
    C(["flow_mlp", *T, "--budget", "-1"], "positive", id="budget-negative"),
    C(["flow_mlp", *T, "--budget", "nan"], "positive", id="budget-nan"),
    C(["flow_mlp", *T, "--budget", "inf"], "positive", id="budget-inf"),
    C(["flow_mlp", *T], "--budget", id="no-budget"),
    C(["flow_mlp", *T, "--steps", "0"], "--steps", id="steps-0"),
    C(["flow_mlp", *T, "--steps", "-4"], "--steps", id="steps-negative"),
    C(["flow_mlp", *T, "--steps", "1", "--k", "0"], "--k", id="k-0"),
    C(["flow_mlp", *T, "--steps", "1", "--k", "65"], "--k", id="k-65"),
    C(["flow_mlp", *T, "--steps", "1", "--batch-size", "0"], "--batch-size", id="batch-size-0"),
    C(["flow_mlp", *T, "--steps", "1", "--batch-size", "-1"], "--batch-size", id="batch-size-negative"),
    C(["flow_mlp", *T, "--steps", "1", "--batch-size", "1000000"], "--batch-size", id="batch-size-huge"),
    C(["flow_mlp", *T, "--steps", "1", "--lr", "0"], "--lr", id="lr-0"),
    C(["flow_mlp", *T, "--steps", "1", "--lr", "-0.1"], "--lr", id="lr-negative"),
    C(["flow_mlp", *T, "--steps", "1", "--lr", "nan"], "--lr", id="lr-nan"),
    C(["flow_mlp", *T, "--steps", "1", "--threads", "0"], "--threads", id="threads-0"),
    C(["flow_mlp", *T, "--steps", "1", "--seed", "-1"], "--seed", id="seed-negative"),
    C(["flow_mlp", *T, "--steps", "1", "--device", "gpu"], "--device", id="device-unknown"),
    C(["flow_mlp", *T, "--steps", "1", "--device", "cuda:99"], "no such CUDA device", id="device-missing-gpu"),
    C(["flow_mlp", "--out", "{tmp}/file.txt", "--steps", "1"], "not a directory", id="out-is-file"),
    C(["flow_mlp", "--out", "{tmp}/file.txt/sub", "--steps", "1"], "is a file", id="out-under-file"),
    C(["flow_mlp", "--out", "{tmp}/oldrun", "--steps", "1"], "already exists", id="out-exists"),
    C(["flow_mlp", "--out", ".", "--steps", "1", "--force"], "the current folder", id="out-cwd-force"),
    C(["flow_mlp", *D, "{tmp}/data_intact", "--out", "{tmp}", "--steps", "1", "--force"], "holds", id="out-holds-inputs-force"),
    C(["flow_mlp", "--out", "/proc/synthinv-test", "--steps", "1"], "not writable", id="out-not-writable", marks=needs_proc),
    C(["flow_mlp", "--out", "{tmp}/" + "r" * 300 + "/run", "--steps", "1"], "longer than 255 bytes", id="out-name-too-long"),
    C(["{tmp}/empty.yaml", *T, "--steps", "1"], "not a method config", id="config-empty"),
    C(["{tmp}/broken.yaml", *T, "--steps", "1"], "not valid YAML", id="config-not-yaml"),
    C(["{tmp}/nofield.yaml", *T, "--steps", "1"], "model.field", id="config-no-field"),
    C(["{tmp}/missing.yaml", *T, "--steps", "1"], "file not found", id="config-missing"),
    C(["flow_mlp", "--synth", "nosuch", *T, "--steps", "1"], "unknown synth", id="synth-unknown"),
    C(["flow_mlp", "--synth", "dexed", *T, "--steps", "1"], "pass --data", id="dexed-without-data"),
    C(["nosuch", *D, "{tmp}/data_intact", *T, "--steps", "1"], "unknown method", id="dexed-method-unknown"),
    C(["flow_mlp", *D, "{tmp}/data_intact", "--asym", *T, "--steps", "1"], "--asym", id="dexed-asym"),
    C(["flow_mlp", "--data", "{tmp}/data_intact", *T, "--steps", "1"], "generates its training batches on the fly", id="kosc-with-data"),
    C(["flow_mlp", *D, "{tmp}/nowhere", *T, "--steps", "1"], "not a directory", id="data-missing"),
    C(["flow_mlp", *D, "{tmp}/file.txt", *T, "--steps", "1"], "not a directory", id="data-is-file"),
    C(["flow_mlp", *D, "{tmp}/emptydir", *T, "--steps", "1"], "holds no manifest.json", id="data-no-manifest"),
    C(["flow_mlp", *D, "{tmp}/data_truncated", *T, "--steps", "20"], "shard_00001.h5", id="data-truncated-shard"),
    C(["flow_mlp", *D, "{tmp}/data_flipped", *T, "--steps", "20"], "shard_00000.h5: sha256 differs", id="data-flipped-byte"),
    C(["flow_mlp", *D, "{tmp}/data_nan_params", *T, "--steps", "1"], "shard_00001.h5: params has 1 non-finite", id="data-nan-params"),
    C(["flow_mlp", *D, "{tmp}/data_big_params", *T, "--steps", "1"], "params outside [-1, 1]", id="data-params-out-of-range"),
    C(["flow_mlp", *D, "{tmp}/data_deleted_shard", *T, "--steps", "1"], "shard_00001.h5: missing", id="data-deleted-shard"),
    C(["flow_mlp", *D, "{tmp}/data_no_shards", *T, "--steps", "1"], "no 'shards' list", id="data-manifest-no-shards"),
    C(["flow_mlp", *D, "{tmp}/data_unfinished", "--val-data", "{tmp}/valdata_intact", *T, "--steps", "1"],
      "no finished shards", id="data-unfinished"),
    C(["flow_mlp", *D, "{tmp}/koscdata_intact", *T, "--steps", "1"], "is a 'kosc' dataset", id="data-other-synth"),
    C(["flow_mlp", *D, "{tmp}/data_intact", "--val-data", "{tmp}/data_intact", *T, "--steps", "1"], "same split",
      id="val-same-seed"),
    C(["flow_mlp", *D, "{tmp}/data_intact", "--val-data", "{tmp}/nowhere", *T, "--steps", "1"], "not a directory",
      id="val-missing"),
    C(["flow_mlp", *D, "{tmp}/data_intact", "--val-data", "{tmp}/valdata_flipped", *T, "--steps", "1"],
      "valdata_flipped/shard_00000.h5", id="val-flipped-byte"),
    C(["flow_mlp", *D, "{tmp}/data_flipped", "--out", "{tmp}/oldrun", "--force", "--steps", "1"], "sha256 differs",
      id="force-keeps-old-run"),
    # found only as the shards are read, mid-run: still one line, and the earlier run is kept
    C(["flow_mlp", *D, "{tmp}/data_nan_mel", "--val-data", "{tmp}/valdata_intact", "--out", "{tmp}/oldrun", "--force",
       "--steps", "2", "--batch-size", "4"], "mel has", id="data-nan-mel-mid-run"),
]

E = ["--out", "{tmp}/m.json"]
EVALUATE = [
    C(["{tmp}/missing.ckpt", *E], "not found", id="ckpt-missing"),
    C(["{tmp}/missing.ckpt"], "not found", id="ckpt-missing-default-out"),
    C(["{tmp}/junk.ckpt", *E], "not a readable checkpoint", id="ckpt-junk"),
    C(["{tmp}/ckptdir", *E], "not found", id="ckpt-folder"),
    C(["{kosc}", "--n", "0", *E], "--n", id="n-0"),
    C(["{kosc}", "--n", "-1", *E], "--n", id="n-negative"),
    C(["{kosc}", "--n", "100000", *E], "at most 8192", id="n-huge"),
    C(["{kosc}", "--steps", "0", *E], "--steps", id="steps-0"),
    C(["{kosc}", "--candidates", "0", *E], "--candidates", id="candidates-0"),
    C(["{kosc}", "--candidates", "5000", *E], "at most 1024", id="candidates-huge"),
    C(["{kosc}", "--guidance", "nan", *E], "--guidance must be a finite number", id="guidance-nan"),
    C(["{kosc}", "--threads", "-1", *E], "--threads", id="threads-negative"),
    C(["{kosc}", "--seed", "-1", *E], "--seed", id="seed-negative"),
    C(["{kosc}", "--out", "{tmp}/metrics.json"], "--force", id="out-exists"),
    C(["{kosc}", "--out", "{tmp}/emptydir"], "is a folder", id="out-is-folder"),
    C(["{kosc}", "--out", "{tmp}/file.txt/m.json"], "is a file", id="out-under-file"),
    C(["{kosc}", "--out", "/proc/synthinv-test.json"], "not writable", id="out-not-writable", marks=needs_proc),
    C(["{kosc}", "--data", "{tmp}/nowhere", *E], "not a directory", id="data-missing"),
    C(["{kosc}", "--data", "{tmp}/data_intact", *E], "--data is for dataset-backed synths", id="data-with-kosc-model"),
    C(["{kosc}", "--candidates", "4", *E], "--candidates is for dataset-backed synths", id="candidates-with-kosc-model"),
    C(["{dexed}", "--data", "{tmp}/koscdata_intact", "--n", "4", *E], "is a 'kosc' dataset", id="data-other-synth"),
    C(["{dexed}", "--data", "{tmp}/valdata_flipped", "--n", "4", *E], "shard_00000.h5: sha256 differs", id="data-flipped-byte"),
    C(["{kosc}", "--audio-dir", "{tmp}/nowhere", "--out", "{tmp}/ood"], "not a directory", id="audio-dir-missing"),
    C(["{kosc}", "--audio-dir", "{tmp}/audio_empty", "--out", "{tmp}/ood"], "holds no audio files", id="audio-dir-empty"),
    C(["{kosc}", "--audio-dir", "{tmp}/audio_bad", "--data", "{tmp}/data_intact", "--out", "{tmp}/ood"], "exclude each other",
      id="audio-dir-and-data"),
    C(["{kosc}", "--audio-dir", "{tmp}/audio_bad", "--out", "{tmp}/ood"], "b.wav is not a readable audio file",
      id="audio-dir-bad-file"),
    C(["{kosc}", "--audio-dir", "{tmp}/audio_silent", "--out", "{tmp}/ood"], "quiet.wav is silent", id="audio-dir-silent-file"),
    C(["{kosc}", "--audio-dir", "{tmp}/audio_silent", "--out", "{tmp}/file.txt"], "not a folder", id="audio-dir-out-is-file"),
    C(["{kosc}", "--audio-dir", "{tmp}/audio_silent", "--out", "{tmp}/ood_done"], "--force", id="audio-dir-out-exists"),
    C(["{kosc}", "--audio-dir", "{tmp}/audio_silent", "--guidance", "inf", "--out", "{tmp}/ood"], "--guidance",
      id="audio-dir-guidance-inf"),
]

DESCRIBE = [
    C(["{tmp}/missing.so"], "plugin not found", id="missing"),
    C(["{tmp}/junk.so"], "could not load it as a plugin", id="not-a-plugin"),
    C(["{tmp}/emptydir"], "could not load it as a plugin", id="folder"),
    C(["{tmp}/junk.dsp"], "does not compile", id="faust-syntax-error"),
    C(["{tmp}/empty.dsp"], "could not load it as a Faust DSP", id="faust-empty"),
    C(["{tmp}/binary.dsp"], "not a readable Faust DSP text file", id="faust-binary"),
    C(["{dsp}", "--out", "{tmp}/spec.yaml"], "--force", id="out-exists"),
    C(["{dsp}", "--out", "{tmp}/emptydir"], "is a folder", id="out-is-folder"),
    C(["{dsp}", "--out", "{tmp}/file.txt/spec.yaml"], "is a file", id="out-under-file"),
    C(["{dsp}", "--out", "/proc/synthinv-test.yaml"], "not writable", id="out-not-writable", marks=needs_proc),
    C(["{dsp}", "--out", "{tmp}/" + "s" * 230 + ".yaml"], "longer than 220 bytes", id="out-name-too-long"),
]

EXPERIMENT = [
    C(["--budget", "0", "--out", "{tmp}/r"], "positive", id="budget-0"),
    C(["--budget", "nan", "--out", "{tmp}/r"], "positive", id="budget-nan"),
    C(["--budget", "1", "--methods", "nope", "--out", "{tmp}/r"], "unknown method", id="method-unknown"),
    C(["--out", "{tmp}/r"], "--budget", id="no-budget"),
    C(["--budget", "1", "--k", "0", "--out", "{tmp}/r"], "--k", id="k-0"),
    C(["--budget", "1", "--eval-examples", "0", "--out", "{tmp}/r"], "--eval-examples", id="eval-examples-0"),
    C(["--budget", "1", "--eval-steps", "-1", "--out", "{tmp}/r"], "--eval-steps", id="eval-steps-negative"),
    C(["--budget", "1", "--precision", "16", "--out", "{tmp}/r"], "precision", id="precision-16"),
]


def run_bad(command: list[str], args: list[str], message: str, tmp_path: Path, datasets, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # default outputs (inversions/..., runs) would land here and be seen
    make_inputs(args, tmp_path, datasets)
    from synthinv.synths.plugin_spec import SPEC_DIR

    values = {"tmp": tmp_path, "ex": EX, "kosc": shipped("kosc4-flow-transformer"), "dexed": shipped("dexed-flow-mlp"),
              "dsp": SPEC_DIR / "subtractive3.dsp"}
    before, examples = snapshot(tmp_path), sorted(p.name for p in EX.iterdir())
    result = runner.invoke(app, command + [a.format(**values) for a in args])
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert message.format(**values) in lines[0], output
    assert snapshot(tmp_path) == before, "a refused command changed its folder"
    assert sorted(p.name for p in EX.iterdir()) == examples


COMMANDS = {"invert": (["invert"], INVERT), "generate": (["generate"], GEN), "data check": (["data", "check"], CHECK),
            "train": (["train"], TRAIN), "evaluate": (["evaluate"], EVALUATE),
            "synth describe": (["synth", "describe"], DESCRIBE), "experiment": (["experiment", "kosc"], EXPERIMENT)}
CASES = [pytest.param(words, *case.values, id=f"{name}-{case.id}")
         for name, (words, cases) in COMMANDS.items() for case in cases]


@pytest.mark.parametrize("command, args, message", CASES)
def test_bad_input(command, args, message, tmp_path, datasets, monkeypatch):
    run_bad(command, args, message, tmp_path, datasets, monkeypatch)


# --- what used to go wrong after the work was done --------------------------------------------------


def test_markup_in_names_is_printed_as_written(tmp_path, monkeypatch):
    """A sound named like rich markup and an --out with a closing tag: the run succeeds and the table shows
    the names as they are (rich used to drop "[bold red]" and fail on "[/x]" after writing everything)."""
    monkeypatch.chdir(tmp_path)
    sound = tmp_path / "[bold red]loud.wav"
    shutil.copy(KOSC_SOUND, sound)
    out = tmp_path / "out" / "take[/x]"
    result = runner.invoke(app, ["invert", str(sound), "--synth", "kosc", "--candidates", "1", "--steps", "2",
                                 "--no-transpose", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "[bold red]loud.wav" in result.output and (out / "report.html").is_file()


def test_temporary_names_are_shown_as_the_users_paths():
    from synthinv.errors import one_line

    message = "[Errno 2] No such file or directory: '/proc/.foo.partial-8564'"
    assert one_line(message) == "[Errno 2] No such file or directory: '/proc/foo'"
    assert one_line("cannot write /a/.metrics.json.77.tmp:\n  denied") == "cannot write /a/metrics.json: denied"
    assert one_line("my.file.partial-3") == "my.file.partial-3"  # not one of ours: a name that is not hidden


def test_every_user_error_is_a_synthinv_error():
    from synthinv.audio_io import AudioError
    from synthinv.build import ConfigError
    from synthinv.checkpoint import CheckpointError
    from synthinv.datasets import DatasetError
    from synthinv.errors import SynthinvError, UsageError
    from synthinv.presets import PresetError
    from synthinv.synths.plugin_spec import PluginNotFound, SpecError

    for error in (AudioError, ConfigError, CheckpointError, DatasetError, PresetError, SpecError, PluginNotFound,
                  UsageError):
        assert issubclass(error, SynthinvError) and issubclass(error, ValueError)  # ValueError: older callers
