"""What scripts/sampling_sweep.py and scripts/refine_lookup.py share: their common options, the default test
data of a checkpoint's synth, the rows a resumed run has already written, and writing the table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_common_args(ap: argparse.ArgumentParser, out: str, jobs_help: str) -> None:
    """--checkpoint, --n, --candidates, --bank, --data, --jobs, --out (default `out`), --table-only."""
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--n", type=int, default=256, help="test sounds")
    ap.add_argument("--candidates", type=int, default=8, help="best of N, and the lookup's N")
    ap.add_argument("--bank", type=int, default=8192, help="rendered prior patches the lookup searches")
    ap.add_argument("--data", type=Path, default=None, help="test dataset (default: data/<synth>_test)")
    ap.add_argument("--jobs", type=int, default=2, help=jobs_help)
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--table-only", action="store_true")


def prepare(args: argparse.Namespace) -> tuple[Path, list[dict]]:
    """Fill args.data (default data/<synth>_test), make args.out -> (its rows.jsonl, the rows in it)."""
    from synthinv.checkpoint import load_checkpoint

    if args.data is None:
        _, synth, _ = load_checkpoint(args.checkpoint)
        args.data = Path("data") / f"{synth.name}_test"
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "rows.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    return rows_path, rows


def append(rows_path: Path, rows: list[dict], row: dict) -> None:
    rows.append(row)
    with rows_path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def write_markdown(out: Path, lines: list[str]) -> str:
    """The table's lines -> <out>.md, and its text."""
    text = "\n".join(lines)
    out.with_suffix(".md").write_text(text)
    return text
