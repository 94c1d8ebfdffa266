"""`synthinv invert FOLDER`: every sound, bad files skipped, resumable, DX7 banks named after the files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthinv.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
dexed = pytest.importorskip("dexed")


def test_folder_inversion_skips_bad_files_resumes_and_writes_banks(tmp_path):
    from synthinv.presets import read_syx_bank

    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for name in ("dexed_heldout_1.wav", "dexed_heldout_2.wav"):
        shutil.copy(EXAMPLES / name, sounds / name)
    (sounds / "broken.wav").write_bytes(b"RIFF not really")
    out = tmp_path / "out"
    args = ["invert", str(sounds), "--out", str(out), "--budget", "0", "--candidates", "2", "--steps", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "skipped broken.wav" in result.output and "2 of 3 sounds inverted" in result.output
    rows = {r["file"]: r for r in csv.DictReader(open(out / "batch.csv"))}
    assert rows["broken.wav"]["status"].startswith("skipped") and rows["dexed_heldout_1.wav"]["status"] == "done"
    assert (out / "dexed_heldout_1" / "report.html").is_file() and (out / "dexed_heldout_2" / "candidate_02").is_dir()
    voices = read_syx_bank(out / "bank_01.syx")
    assert len(voices) == 32 and voices[0].name.strip() == "dexed_held"  # named after the file (10 characters)

    before = (out / "dexed_heldout_1" / "summary.json").stat().st_mtime_ns
    again = CliRunner().invoke(app, args)  # a second run resumes: finished sounds are not redone
    assert again.exit_code == 0, again.output
    assert (out / "dexed_heldout_1" / "summary.json").stat().st_mtime_ns == before
    assert {r["status"] for r in csv.DictReader(open(out / "batch.csv"))} >= {"done earlier"}


def test_empty_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["invert", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--budget", "0"])
    assert result.exit_code == 2 and "holds no audio files" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_same_name_in_two_formats_gets_two_folders_and_the_bank_holds_each_best(tmp_path):
    import numpy as np
    import soundfile as sf

    from synthinv.presets import read_json_preset, read_syx_bank
    from synthinv.synths.dexed import DexedSynth

    sounds = tmp_path / "sounds"
    sounds.mkdir()
    shutil.copy(EXAMPLES / "dexed_heldout_1.wav", sounds / "kick.wav")
    data, rate = sf.read(str(EXAMPLES / "dexed_heldout_2.wav"))
    sf.write(str(sounds / "kick.flac"), data, rate)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["invert", str(sounds), "--out", str(out), "--budget", "0", "--candidates", "1",
                                      "--steps", "4"])
    assert result.exit_code == 0, result.output
    assert (out / "kick.wav" / "summary.json").is_file() and (out / "kick.flac" / "summary.json").is_file()
    synth = DexedSynth()
    voices = read_syx_bank(out / "bank_01.syx")
    for voice, folder in zip(voices, ("kick.flac", "kick.wav")):  # files in name order
        best = read_json_preset(out / folder / "candidate_01" / "preset.json", synth)
        assert np.array_equal(synth.to_vced(best)[0][:145], np.frombuffer(voice.to_sysex(), np.uint8)[:145])
