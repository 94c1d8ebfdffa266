"""Store a trained sound surrogate in a checkpoint as its ranker: the model's best of N then draws a pool of
samples per sound and proposes the N whose predicted sound is nearest the target's (ranked_draw in
synthinv.models.sampler), so only N are rendered.

    PYTHONPATH=src python scripts/attach_ranker.py CHECKPOINT SURROGATE [--pool 512] [--out OUT]

SURROGATE: a scripts/train_surrogate.py output for the checkpoint's synth spec (refused otherwise). Writes OUT
(default: CHECKPOINT, replaced atomically).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthinv.checkpoint import load_checkpoint, safe_load, write_blob
from synthinv.models.surrogate import ranker_from_checkpoint, stored_ranker


def attach(checkpoint: Path, surrogate: Path, pool: int, out: Path) -> Path:
    _, synth, blob = load_checkpoint(checkpoint)  # a checkpoint this synthinv can build, read once
    blob["ranker"] = stored_ranker(safe_load(surrogate, "surrogate"), pool)
    ranker_from_checkpoint(blob, synth, str(surrogate))  # refused here if it was made for another spec
    return write_blob(out, blob)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("surrogate", type=Path)
    ap.add_argument("--pool", type=int, default=512, help="samples drawn per sound, of which the best N are kept")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    print(attach(args.checkpoint, args.surrogate, args.pool, args.out or args.checkpoint))


if __name__ == "__main__":
    main()
