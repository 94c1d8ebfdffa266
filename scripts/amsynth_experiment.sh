#!/usr/bin/env bash
# The plugin backend end to end on amsynth (Debian's VST2, hosted by DawDreamer) at a small budget:
# generate -> train (Param2Tok flow, MSE regression) -> evaluate -> invert one held-out note -> results/amsynth.md.
# One process at a time, one torch thread (the machine is shared). Resumable: finished steps are skipped.
#   N=6144 BUDGET=3 EVAL_N=256 bash scripts/amsynth_experiment.sh
set -euo pipefail
cd "$(dirname "$0")/.."
S=.venv/bin/synthinv
PY=.venv/bin/python
export OMP_NUM_THREADS=1
N=${N:-6144}            # training examples (seed 1)
BUDGET=${BUDGET:-3}     # training minutes per method
EVAL_N=${EVAL_N:-256}   # test examples (seed 3)
METHODS=${METHODS:-"flow_param2tok regression_mse flow_mlp"}
RUNS=runs/amsynth

$S generate --synth amsynth --n "$N" --shard-size 1024 --seed 1 --out data/amsynth_train --workers 1 --no-progress
$S generate --synth amsynth --n "$EVAL_N" --shard-size "$EVAL_N" --seed 3 --out data/amsynth_test --workers 1 --no-progress
for m in $METHODS; do
  if [ ! -f "$RUNS/$m/model.ckpt" ]; then
    $S train "$m" --synth amsynth --data data/amsynth_train --budget "$BUDGET" --threads 1 --out "$RUNS/$m" --force
  fi
  if [ ! -f "$RUNS/$m/metrics.json" ]; then
    $S evaluate "$RUNS/$m/model.ckpt" --data data/amsynth_test --n "$EVAL_N" --threads 1
  fi
done
[ -f "$RUNS/heldout/heldout_0.wav" ] || $PY scripts/amsynth_experiment.py heldout "$RUNS/heldout"
$S invert "$RUNS/heldout/heldout_0.wav" --synth amsynth --model "$RUNS/flow_param2tok/model.ckpt" \
  --truth "$RUNS/heldout/heldout_0.json" --candidates 8 --refine 100 --threads 1 --out inversions/amsynth_heldout_0 --force
$PY scripts/amsynth_experiment.py table "$RUNS" results/amsynth.md --budget "$BUDGET" \
  --train-data "data/amsynth_train ($N examples, seed 1)" --inversion inversions/amsynth_heldout_0
