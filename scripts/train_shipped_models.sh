#!/usr/bin/env bash
# Train and ship the models that live in src/synthinv/shipped/ (the README's main job uses them).
# Budget: BUDGET minutes of CPU training per model (default 25). Rerun with --force semantics: the run
# directory is overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-25}
THREADS=${THREADS:-1}
CMD=".venv/bin/synthinv train flow_transformer --k 4 --budget $BUDGET --threads $THREADS --out runs/shipped/kosc4-flow-transformer --force --seed 0"
$CMD
.venv/bin/python scripts/ship_model.py runs/shipped/kosc4-flow-transformer kosc4-flow-transformer --command "$CMD"
