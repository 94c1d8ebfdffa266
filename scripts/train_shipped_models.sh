#!/usr/bin/env bash
# Train and ship the models that live in src/synthinv/shipped/ (the README's main job uses them).
#   bash scripts/train_shipped_models.sh [kosc] [dexed]     (default: both)
# k-osc: BUDGET minutes of CPU training (default 25). Dexed: DEXED_STEPS optimiser steps (default 20000;
# about 35 minutes on one idle thread) on a 98,304-patch dataset that this script generates first
# (about 8 minutes with one worker; resumable). Run directories are overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-25}
THREADS=${THREADS:-1}
DEXED_STEPS=${DEXED_STEPS:-20000}
WHICH=${*:-kosc dexed}

if [[ " $WHICH " == *" kosc "* ]]; then
  CMD=".venv/bin/synthinv train flow_transformer --k 4 --budget $BUDGET --threads $THREADS --out runs/shipped/kosc4-flow-transformer --force --seed 0"
  $CMD
  .venv/bin/python scripts/ship_model.py runs/shipped/kosc4-flow-transformer kosc4-flow-transformer --command "$CMD"
fi

if [[ " $WHICH " == *" dexed "* ]]; then
  # training (seed 1), validation (seed 2) and test (seed 3) patches from the patch prior
  .venv/bin/synthinv generate --synth dexed --n 98304 --seed 1 --workers 1 --out data/dexed_train_big
  .venv/bin/synthinv generate --synth dexed --n 512 --seed 2 --workers 1 --out data/dexed_val
  .venv/bin/synthinv generate --synth dexed --n 512 --seed 3 --workers 1 --out data/dexed_test
  CMD=".venv/bin/synthinv train flow_mlp --synth dexed --data data/dexed_train_big --val-data data/dexed_val --steps $DEXED_STEPS --threads $THREADS --out runs/shipped/dexed-flow-mlp --force --seed 0"
  $CMD
  .venv/bin/python scripts/ship_model.py runs/shipped/dexed-flow-mlp dexed-flow-mlp --n 256 --steps 50 --test-data data/dexed_test --command "$CMD"
fi
