"""The one table formatter (synthinv.tables): markdown and CSV laid out the same way everywhere."""

from __future__ import annotations

import csv
import io

import pytest

from synthinv.tables import csv_text, markdown_table


def test_markdown_table_lays_out_header_rule_and_rows():
    text = markdown_table(["method", "MSS (dB)", "n"], [["flow", "8.31 ± 0.40", 256], ["random", "19.02", 256]])
    assert text.splitlines() == ["| method | MSS (dB) | n |", "| --- | --- | --- |", "| flow | 8.31 ± 0.40 | 256 |",
                                 "| random | 19.02 | 256 |"]
    assert markdown_table(["a", "b"], [], compact_rule=True) == "| a | b |\n|---|---|"
    assert not text.endswith("\n")


def test_csv_text_reads_back_and_guards_its_columns():
    rows = [{"file": "a, b.wav", "distance": 1.5}, {"file": 'say "hi".wav', "distance": None}]
    text = csv_text(rows, ["file", "distance"])
    assert text.startswith("file,distance\r\n")  # the csv module's line ends: write with newline=""
    assert list(csv.DictReader(io.StringIO(text))) == [{"file": "a, b.wav", "distance": "1.5"},
                                                        {"file": 'say "hi".wav', "distance": ""}]
    with pytest.raises(ValueError, match="not in fieldnames"):
        csv_text([{"file": "x", "other": 1}], ["file"])
    assert csv_text([{"file": "x", "other": 1}], ["file"], ignore_extra=True) == "file\r\nx\r\n"


def test_a_rewritten_table_page_keeps_its_hand_written_notes(tmp_path):
    from synthinv.tables import write_page

    out = tmp_path / "runs_table"
    assert write_page("| a |\n", out) == "| a |\n"  # no notes file: the table alone
    (tmp_path / "runs_table_notes.md").write_text("What it says.\n")
    text = write_page("| b |\n", out)
    assert text == "| b |\n\nWhat it says.\n" and (tmp_path / "runs_table.md").read_text() == text
    assert (tmp_path / "runs_table_notes.md").read_text() == "What it says.\n"
