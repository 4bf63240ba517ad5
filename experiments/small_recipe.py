"""A small custom tiny-suite recipe (default: 32 train + 16 test diffs) at a chosen diff rank, to
check a recipe change before the full build; prints the rates table and the means. Used for the
rank-1 vs rank-4 comparison in docs/tiny-suite.md.

Usage: python experiments/small_recipe.py OUT_DIR RANK [--train 32] [--test 16] [--steps 60]
(alpha = 2 x rank: the scale stays 2.)
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from wdqa.generators.behaviour.hidden_topic import RATES, BehaviourRates
from wdqa.generators.tiny_suite import TinySuiteRecipe, build_tiny_suite, rates_table
from wdqa.generators.training.trainer import LoraConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("rank", type=int)
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--test", type=int, default=16)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    default = TinySuiteRecipe()
    recipe = dataclasses.replace(
        default, name="tiny-small", split_sizes=(("train", args.train), ("test", args.test)),
        lora=LoraConfig(rank=args.rank, alpha=2.0 * args.rank),
        train=dataclasses.replace(default.train, steps=args.steps), stop_below_bar=False,
    )
    started = time.perf_counter()
    suite = build_tiny_suite(args.out, recipe)
    rates = [BehaviourRates.from_row(r) for split in suite.splits for r in suite.index(split).itertuples()]
    print(f"rank {args.rank}, {args.steps} steps, {len(rates)} diffs: {time.perf_counter() - started:.0f} s")
    print(rates_table(rates))
    print("means: " + ", ".join(f"{r} {statistics.mean(getattr(x, r) for x in rates):.3f}" for r in RATES))


if __name__ == "__main__":
    main()
