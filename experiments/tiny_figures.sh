#!/usr/bin/env bash
# Every figure of the default tiny suite (version 4) in the README's results, in that order; the
# figures of earlier versions in docs/tiny-suite.md and docs/dit.md are kept as history and come
# from earlier commits. Builds the suite on first use (cached under $WDQA_CACHE).
# Usage: bash experiments/tiny_figures.sh [OUT_DIR]   (one CPU thread per process; 78 min on a
# 2-core AMD EPYC shared with other jobs, the base and train/test splits cached, 2026-12-01)
set -euo pipefail
OUT=${1:-runs/tiny-figures}
export OMP_NUM_THREADS=1
SUITE_DIR=$(python -c "from wdqa.generators.tiny_suite import ensure_tiny_suite; print(ensure_tiny_suite())")
python -c "from wdqa.core.suite import Suite; s = Suite.load('$SUITE_DIR', verify=False); print('suite', s.name, s.version, 'content', s.content_sha256)"

# 1. the suite's rates per split and over all 390 diffs (median / p10 / p90)
wdqa generate tiny

# 2. the base model: naming a topic from its keywords or a name-free reply
python experiments/name_the_topic.py

# 3. rank 1 vs rank 4 on a small custom recipe (32 train + 16 test diffs)
python experiments/small_recipe.py "$OUT/small-rank1" 1
python experiments/small_recipe.py "$OUT/small-rank4" 4

# 4. controls and black-box baselines on the test split, offline judge
wdqa evaluate submissions/examples/ask_directly.py --suite tiny --split test \
  --baselines default,empty-answer,fixed-answer,prefill --runs-dir "$OUT/runs"
# the oracles and prefill with a guesser that can name a topic: M names it from the evidence
wdqa evaluate baseline:base-question+trigger --suite tiny --split test --guesser base-model \
  --baselines 20-questions+trigger,prefill --runs-dir "$OUT/runs"

# white-box baselines (training-free: ΔW's singular directions / M′ − M activations through the
# logit lens) and the white-box example, both guessers
wdqa evaluate baseline:weight-lens --suite tiny --split test \
  --baselines activation-diff-lens,activation-diff-lens+trigger --runs-dir "$OUT/runs"
wdqa evaluate baseline:weight-lens --suite tiny --split test --guesser base-model \
  --baselines activation-diff-lens,activation-diff-lens+trigger --runs-dir "$OUT/runs"
wdqa evaluate submissions/examples/reply_shift.py --suite tiny --split test --baselines none --runs-dir "$OUT/runs"
# access class and tokens run through M and M′ per case, beside every score so far
wdqa report "$OUT"/runs/tiny-*/*
# their false-finding rate on a `null` split (16 diffs that hide nothing) built beside the suite
wdqa generate extra "$SUITE_DIR" --split null --out "$OUT/null-suite"
wdqa evaluate baseline:weight-lens --suite "$OUT/null-suite" --split null \
  --baselines activation-diff-lens,base-question,prefill,empty-answer --runs-dir "$OUT/null-runs"
wdqa evaluate baseline:weight-lens --suite "$OUT/null-suite" --split null --guesser base-model \
  --baselines activation-diff-lens --runs-dir "$OUT/null-runs"
wdqa evaluate submissions/examples/reply_shift.py --suite "$OUT/null-suite" --split null --baselines none \
  --runs-dir "$OUT/null-runs"
wdqa leaderboard "$OUT"/null-runs/tiny-*/* --out "$OUT/null-site"   # the false-finding column

# 5. unlocking: exact labels (and words of them) in prefilled and triggered replies
python experiments/prefill_labels.py "$SUITE_DIR" test

# 6. DIT, the paper's recipe (bare label with its leading space, 300 train diffs, all 1,140 steps,
#    no validation stop), published into the suite as `dit/paper`; score, exact match, train fit
wdqa baselines train-dit --suite tiny --split train --val-split none --threads 1 --out "$OUT/dit-paper" \
  --publish-into "$SUITE_DIR" --name paper
wdqa evaluate baseline:dit:paper --suite tiny --split test --baselines none --runs-dir "$OUT/runs"
for run in "$OUT"/runs/tiny-*/*/; do echo "== $run"; python experiments/dit_breakdown.py "$run" "$SUITE_DIR" test; done
python experiments/dit_fit.py "$SUITE_DIR" "$SUITE_DIR/dit/paper"

# 7. DIT's data-scaling curve: 19/38/75/150/300 train diffs x 3 seeds, 1,140 steps each
python experiments/dit_scaling.py --suite tiny --out "$OUT/dit-scaling"

# 8. the suite's own first-use adapter (`baseline:dit`: template + 150 null diffs)
wdqa evaluate baseline:dit --suite tiny --split test --baselines none --runs-dir "$OUT/runs-default-dit"
python experiments/dit_breakdown.py "$OUT"/runs-default-dit/tiny-*/dit "$SUITE_DIR" test   # its exact matches
