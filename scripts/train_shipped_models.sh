#!/usr/bin/env bash
# Train and ship the models that live in src/synthinv/shipped/ (the README's main job uses them).
#   bash scripts/train_shipped_models.sh [kosc] [dexed] [dexed_simple]     (default: all three)
# k-osc: three seeds of BUDGET CPU-minutes each (default 12), the one with the best validation LSD shipped. Dexed: DEXED_STEPS optimiser steps (default 20000;
# about 35 minutes on one idle thread) on a 98,304-patch dataset that this script generates first
# (about 8 minutes with one worker; resumable). Dexed Simple: three MLP-flow seeds of 12 CPU-minutes
# (scripts/dexed_simple_experiment.py, which makes its datasets), the one with the best validation MSS shipped.
# Each synth's default model is then shipped beside it with a ranker (scripts/train_surrogate.py; about 30 minutes
# each with its rendered bank); Dexed Simple's default trains its flow for 110 CPU-minutes first.
# Run directories are overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-12}
THREADS=${THREADS:-1}
DEXED_STEPS=${DEXED_STEPS:-20000}
WHICH=${*:-kosc dexed dexed_simple}

if [[ " $WHICH " == *" kosc "* ]]; then
  # three seeds at once (one torch thread each, BUDGET CPU-minutes each, bf16 autocast); the best validation LSD ships
  for s in 0 1 2; do
    PYTHONPATH=src .venv/bin/python scripts/kosc_variant.py src/synthinv/configs/kosc/flow_transformer.yaml --seed $s \
      --budget "$BUDGET" --cpu-clock --threads 1 --precision bf16-mixed --out runs/shipped/kosc_results --runs runs/shipped/kosc &
  done
  wait
  best=$(for s in 0 1 2; do .venv/bin/python -c "import torch, sys; m = torch.load(sys.argv[1], weights_only=True, map_location='cpu')['meta']; print(m['best_val_lsd'], sys.argv[1])" "runs/shipped/kosc/flow_transformer_bf16_s$s/model.ckpt"; done | sort -g | head -1 | cut -d' ' -f2)
  PYTHONPATH=src .venv/bin/python scripts/ship_model.py "$(dirname "$best")" kosc4-flow-transformer --command "scripts/kosc_variant.py configs/kosc/flow_transformer.yaml --budget $BUDGET --cpu-clock --threads 1 --precision bf16-mixed, seeds 0-2 at once (the seed with the best validation LSD)"
fi

if [[ " $WHICH " == *" dexed "* ]]; then
  # training (seed 1), validation (seed 2) and test (seed 3) patches from the patch prior
  .venv/bin/synthinv generate --synth dexed --n 98304 --seed 1 --workers 1 --out data/dexed_train_big
  .venv/bin/synthinv generate --synth dexed --n 512 --seed 2 --workers 1 --out data/dexed_val
  .venv/bin/synthinv generate --synth dexed --n 512 --seed 3 --workers 1 --out data/dexed_test
  CMD=".venv/bin/synthinv train flow_mlp --synth dexed --data data/dexed_train_big --val-data data/dexed_val --steps $DEXED_STEPS --threads $THREADS --out runs/shipped/dexed-flow-mlp --force --seed 0"
  $CMD
  .venv/bin/python scripts/ship_model.py runs/shipped/dexed-flow-mlp dexed-flow-mlp --n 256 --steps 50 --test-data data/dexed_test --command "$CMD"
  # the default Dexed model: the same flow plus a ranker (a sound surrogate on 262,144 rendered patches, 20 CPU-minutes)
  SURROGATE="PYTHONPATH=src .venv/bin/python scripts/train_surrogate.py --synth dexed --n 262144 --minutes 20 --workers 2 --out runs/surrogate/dexed_262k.pt"
  eval "$SURROGATE"
  PYTHONPATH=src .venv/bin/python scripts/ship_model.py runs/shipped/dexed-flow-mlp dexed-flow-mlp-ranked --n 256 --steps 50 --test-data data/dexed_test --ranker runs/surrogate/dexed_262k.pt --pool 512 --command "$CMD; ranker: $SURROGATE, then --ranker it --pool 512 here"
fi

if [[ " $WHICH " == *" dexed_simple "* ]]; then
  CMD=".venv/bin/python scripts/dexed_simple_experiment.py --budget 12 --seeds 0,1,2 --methods flow_mlp --runs runs/shipped/dexed_simple --out runs/shipped/dexed_simple_results"
  PYTHONPATH=src $CMD
  best=$(for s in 0 1 2; do .venv/bin/python -c "import torch, sys; m = torch.load(sys.argv[1], weights_only=True, map_location='cpu')['meta']; print(m['best_val_mss'], sys.argv[1])" "runs/shipped/dexed_simple/flow_mlp_s$s/model.ckpt"; done | sort -g | head -1 | cut -d' ' -f2)
  PYTHONPATH=src .venv/bin/python scripts/ship_model.py "$(dirname "$best")" dexed-simple-flow-mlp --n 256 --steps 50 --test-data data/dexed_simple_test --command "$CMD (the seed with the best validation MSS)"
  # the default Dexed Simple model: the same config trained for 110 CPU-minutes, plus a ranker
  CMD=".venv/bin/python scripts/dexed_simple_experiment.py --budget 110 --seeds 0 --methods flow_mlp --runs runs/dexed_simple_110min --out runs/shipped/dexed_simple_110min_results"
  PYTHONPATH=src $CMD
  SURROGATE="PYTHONPATH=src .venv/bin/python scripts/train_surrogate.py --synth dexed_simple --n 262144 --minutes 20 --workers 2 --out runs/surrogate/dexed_simple_262k.pt"
  eval "$SURROGATE"
  PYTHONPATH=src .venv/bin/python scripts/ship_model.py runs/dexed_simple_110min/flow_mlp_s0 dexed-simple-flow-mlp-ranked --n 256 --steps 50 --test-data data/dexed_simple_test --ranker runs/surrogate/dexed_simple_262k.pt --pool 512 --command "$CMD; ranker: $SURROGATE, then --ranker it --pool 512 here"
fi
