"""What scripts/sampling_sweep.py and scripts/refine_lookup.py share: the default test data of a checkpoint's
synth and the rows a resumed run has already written."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
