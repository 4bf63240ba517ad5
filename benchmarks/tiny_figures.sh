#!/usr/bin/env bash
# Every tiny-suite and DIT figure in README.md, docs/tiny-suite.md and docs/dit.md, in that order
# (issue 19's name-free suite). Builds the suite on first use (cached under $WDQA_CACHE).
# Usage: bash benchmarks/tiny_figures.sh [OUT_DIR]     (one CPU thread per process; about an hour
# on a busy 2-core machine once the suite is built)
set -euo pipefail
OUT=${1:-runs/tiny-figures}
export OMP_NUM_THREADS=1
SUITE_DIR=$(python -c "from wdqa.generators.tiny_suite import ensure_tiny_suite; print(ensure_tiny_suite())")
python -c "from wdqa.benchmark.suite import Suite; s = Suite.load('$SUITE_DIR', verify=False); print('suite', s.name, s.version, 'content', s.content_sha256)"

# 1. the suite's rates per cell (median / p10 / p90 over all 390 diffs; docs/tiny-suite.md)
wdqa generate tiny

# 2. the base model: naming a topic from its keywords or a name-free reply (docs/tiny-suite.md)
python benchmarks/name_the_topic.py

# 3. controls and black-box baselines on the test split, offline judge (README's table)
wdqa evaluate submissions/examples/ask_directly.py --suite tiny --split test \
  --baselines default,empty-answer,fixed-answer,prefill --runs-dir "$OUT/runs"
# the same oracles and prefill with a guesser that can name a topic: M names it from the evidence
wdqa evaluate baseline:base-question+trigger --suite tiny --split test --guesser base-model \
  --baselines 20-questions+trigger,prefill --runs-dir "$OUT/runs"

# 4. unlocking: exact labels in prefilled and triggered replies
python benchmarks/prefill_labels.py "$SUITE_DIR" test

# 5. DIT, the paper's recipe (bare label with its leading space, 300 train diffs, all steps, no
#    validation stop), published into the suite as `dit/paper`; score, exact match
wdqa baselines train-dit --suite tiny --split train --val-split none --threads 1 --out "$OUT/dit-paper" \
  --publish-into "$SUITE_DIR" --name paper
wdqa evaluate baseline:dit:paper --suite tiny --split test --baselines none --runs-dir "$OUT/runs"
python benchmarks/dit_breakdown.py "$OUT/runs/"*/dit-paper* "$SUITE_DIR" test

# 6. DIT's data-scaling curve: 19/38/75/150/300 train diffs x 3 seeds at a fixed step budget
python benchmarks/dit_scaling.py --suite tiny --out "$OUT/dit-scaling"
