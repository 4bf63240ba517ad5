#!/usr/bin/env bash
# DIT on the embedded tiny suite: the figures in docs/dit.md, in the order they appear there.
# Usage: bash benchmarks/dit_tiny.sh [OUT_DIR]   (one CPU thread; ~30-60 min on a busy 2-core machine)
set -euo pipefail
OUT=${1:-runs/dit-tiny}
T="--threads 1"
SUITE_DIR=$(python -c "from wdqa.generators.tiny_suite import ensure_tiny_suite; print(ensure_tiny_suite())")
SPLITS=$(python -c "from wdqa.benchmark.suite import Suite; print(' '.join(Suite.load('$SUITE_DIR', verify=False).splits))")
echo "tiny suite: $SUITE_DIR (splits: $SPLITS)"

# 1. DIT on all train diffs, validated on val with the offline judge; published into the suite.
wdqa baselines train-dit --suite tiny --split train --val-split val $T --out "$OUT/full" --publish-into "$SUITE_DIR"

# 2. held-out topics: DIT next to the base question, offline judge, n and 95% CIs
OMP_NUM_THREADS=1 wdqa evaluate baseline:dit:"$OUT/full" --suite tiny --split test --baselines base-question,base-question+trigger --runs-dir "$OUT/runs"

# 3. generalisation: the same adapter on every extra split the suite has
for split in rank full-finetune ood-trigger news trigger-inversion null; do
  if [[ " $SPLITS " == *" $split "* ]]; then
    OMP_NUM_THREADS=1 wdqa evaluate baseline:dit:"$OUT/full" --suite tiny --split "$split" --baselines base-question --runs-dir "$OUT/runs"
  else
    echo "split $split: not in the suite, skipped"
  fi
done

# 4. training-data scaling: 1/2 ... 1/16 of the train diffs, same number of optimiser steps
for denominator in 2 4 8 16; do
  wdqa baselines train-dit --suite tiny --split train --val-split val $T --fraction "$(python -c "print(1/$denominator)")" \
    --epochs $((60 * denominator)) --out "$OUT/frac-$denominator"
  OMP_NUM_THREADS=1 wdqa evaluate baseline:dit:"$OUT/frac-$denominator" --suite tiny --split test --baselines none \
    --runs-dir "$OUT/runs-frac-$denominator"
done

# 5. speed: training FLOP/s vs measured matmul, evaluation batched vs one PEFT model per diff
wdqa bench dit --suite tiny $T --adapter "$OUT/full"
