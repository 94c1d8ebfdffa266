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
