"""Tables for results files and command outputs, written one way: markdown (GitHub pipes) and CSV.

Cells are formatted by the caller (each table knows its decimals); these functions only lay them out.

    text = markdown_table(["method", "MSS (dB)"], [["flow", "8.31 ± 0.40"], ["random", "19.02 ± 0.55"]])
    Path("table.csv").write_text(csv_text(rows, ["method", "mss"]), newline="")
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]], *, compact_rule: bool = False) -> str:
    """A markdown table (no newline after the last row): one line per row, cells shown with str(). The rule
    under the header is "| --- | --- |", or "|---|---|" with `compact_rule` (the style of the older results
    files, kept so that they regenerate byte for byte)."""
    rule = "|" + "---|" * len(header) if compact_rule else "| " + " | ".join("---" for _ in header) + " |"
    return "\n".join([_row(header), rule, *(_row(r) for r in rows)])


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def csv_text(rows: Iterable[Mapping[str, object]], columns: Sequence[str], *, ignore_extra: bool = False) -> str:
    """CSV with a header line of `columns` and one line per row (the csv module's dialect: "\\r\\n" line ends,
    so write it with newline=""). A key outside `columns` is an error unless `ignore_extra`."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore" if ignore_extra else "raise")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def with_notes(text: str, notes: Path) -> str:
    """A generated table's text followed by its hand-written notes file, when there is one, so that rewriting
    the table from its rows keeps what was written about them."""
    if not notes.exists():
        return text
    return text.rstrip("\n") + "\n\n" + notes.read_text().rstrip() + "\n"


def write_page(text: str, out: Path) -> str:
    """Write a generated table to <out>.md followed by <out>_notes.md (with_notes); the page's text."""
    text = with_notes(text, out.with_name(out.name + "_notes.md"))
    out.with_suffix(".md").write_text(text)
    return text
