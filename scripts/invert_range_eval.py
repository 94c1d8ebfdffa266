"""results/invert_range.{md,csv}: does `invert` reach the target's pitch outside the prior's notes (48-72)?

Targets: the first --n patches of the Dexed test split (seed 3) played at MIDI --notes (default 36, 60 and 84:
a bass, the prior's middle, a high voice). Each is inverted by the default pipeline (--budget seconds) twice:
candidates played over the whole note range (`invert`'s default, `DexedSynth.over_whole_range`) and over the
model's own range 48-72 (set names ending in "model range"). The f0 column is what the range should change.

Resumable: rows accumulate in results/invert_range/rows.jsonl; --table-only rewrites the tables.

    python scripts/invert_range_eval.py --n 24 --budget 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import synthinv.audio_metrics  # noqa: F401 - imported before the long run starts, so later edits of the tree cannot break it
from synthinv.fileio import atomic_write
from synthinv.pipeline import Inverter, playing_synth
from synthinv.search_eval import csv_text, markdown_table, read_rows, run_methods, summarise
from synthinv.transpose import note_column

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "invert_range"
TEST_SPLIT_SEED = 3


def targets_at(model_synth, n: int, note: int) -> list[tuple[str, object]]:
    """The first n test-split patches played at MIDI `note` on the whole-range synth -> [(name, audio (T,))]."""
    synth = playing_synth(model_synth)
    params, _ = model_synth.draw(TEST_SPLIT_SEED, np.arange(n))
    params = model_synth.spec.convert(params, synth.spec)
    col, low, high = note_column(synth.spec)
    params[:, col] = 2 * (note - low) / (high - low) - 1
    audio = synth.render(params)
    return [(f"test_{i:04d}@{note}", audio[i]) for i in range(n)]


def write_tables() -> None:
    rows = read_rows(OUT / "rows.jsonl")
    summary = summarise(rows)
    atomic_write(ROOT / "results" / "invert_range.csv", csv_text(summary))
    header = (ROOT / "results" / "invert_range_header.md")
    atomic_write(ROOT / "results" / "invert_range.md",
                 (header.read_text() if header.exists() else "") + markdown_table(summary))
    print(markdown_table(summary))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24, help="test patches per note")
    ap.add_argument("--notes", default="36,60,84")
    ap.add_argument("--budget", type=float, default=5.0)
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    if not args.table_only:
        for whole_range in (True, False):
            with Inverter(show_progress=False, whole_range=whole_range) as inverter:
                for note in (int(n) for n in args.notes.split(",")):
                    sounds = targets_at(inverter.synth, args.n, note)
                    set_name = f"note {note}" + ("" if whole_range else ", model range")
                    run_methods(inverter, set_name, sounds, [("default", args.budget)], OUT / "rows.jsonl",
                                progress=lambda r: print(f"{r['set']} {r['sound']}: MSS {r['mss']:.2f}, "
                                                         f"f0 {r['f0_cents']} c ({r['seconds']:.1f} s)", flush=True))
                    write_tables()
    write_tables()


if __name__ == "__main__":
    sys.exit(main())
