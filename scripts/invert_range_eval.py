"""results/invert_range.{md,csv}: does `invert` reach the target's pitch outside the prior's notes (48-72)?

Targets: the first --n patches of the Dexed test split (seed 3) with a steady pitch at their own note, played at
MIDI --notes (default 36 and 84: a bass and a high voice, both outside the prior's notes). Each is inverted by the default pipeline (--budget seconds) twice:
candidates played over the whole note range (`invert`'s default, `DexedSynth.over_whole_range`) and over the
model's own range 48-72 (set names ending in "model range"), next to the bank lookup and random patches (whole range). The f0 column is what the range should change.

Resumable: rows accumulate in results/invert_range/rows.jsonl; --table-only rewrites the tables.

    python scripts/invert_range_eval.py --n 16 --budget 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from synthinv import search_eval
from synthinv.metrics import f0_tracks
from synthinv.pipeline import Inverter
from synthinv.pitch import steady_pitch
from synthinv.search_eval import run_methods
from synthinv.transpose import note_column

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "invert_range"
TEST_SPLIT_SEED = 3


def steady_patches(model_synth, n: int) -> np.ndarray:
    """Indices of the first n test-split patches whose note holds a steady pitch (pitch.steady_pitch): the
    sounds whose f0 a listener would call their note (about 3 in 10 random DX7 patches)."""
    found: list[int] = []
    start = 0
    while len(found) < n:
        _, audio = model_synth.draw(TEST_SPLIT_SEED, np.arange(start, start + 64))
        steady = steady_pitch(f0_tracks(audio, model_synth.sample_rate))
        found += [start + int(i) for i in np.flatnonzero(steady)]
        start += 64
    return np.array(found[:n])


def targets_at(model_synth, rows: np.ndarray, note: int) -> list[tuple[str, object]]:
    """Test-split patches `rows` played at MIDI `note` on the whole-range synth -> [(name, audio (T,))]."""
    synth = model_synth.over_whole_range()
    params, _ = model_synth.draw(TEST_SPLIT_SEED, rows)
    params = model_synth.spec.convert(params, synth.spec)
    col, low, high = note_column(synth.spec)
    params[:, col] = 2 * (note - low) / (high - low) - 1
    audio = synth.render(params)
    return [(f"test_{i:04d}@{note}", audio[j]) for j, i in enumerate(rows)]


def write_tables() -> None:
    print(search_eval.write_tables(OUT / "rows.jsonl", ROOT / "results" / "invert_range"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16, help="test patches per note")
    ap.add_argument("--notes", default="36,84")
    ap.add_argument("--budget", type=float, default=5.0)
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    if not args.table_only:
        for whole_range in (True, False):
            with Inverter(show_progress=False, whole_range=whole_range) as inverter:
                rows = steady_patches(inverter.synth, args.n)
                for note in (int(n) for n in args.notes.split(",")):
                    sounds = targets_at(inverter.synth, rows, note)
                    set_name = f"note {note}" + ("" if whole_range else ", model range")
                    baselines = [("retrieval", 0.0), ("random", 0.0)] if whole_range else []  # the same finish
                    run_methods(inverter, set_name, sounds, [("default", args.budget), *baselines], OUT / "rows.jsonl",
                                progress=search_eval.print_row)
                    write_tables()
    write_tables()


if __name__ == "__main__":
    sys.exit(main())
