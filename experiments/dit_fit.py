"""Does a DIT adapter fit its training diffs, or only fail on held-out ones? Exact matches of the
adapter's greedy answers on the first N diffs of each split. Used in docs/dit.md.

Usage: python experiments/dit_fit.py SUITE_DIR ADAPTER_DIR [--n 100] [--splits train,test]
"""

from __future__ import annotations

import argparse

import torch
from wdqa.baselines.dit.adapter import load_adapter, load_record
from wdqa.baselines.dit.data import LabelledDiffs
from wdqa.baselines.dit.validate import validate
from wdqa.core.engine import Engine
from wdqa.core.models import load_base_model
from wdqa.core.suite import Suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite_dir")
    parser.add_argument("adapter_dir")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--splits", default="train,test")
    args = parser.parse_args()
    torch.set_num_threads(1)
    suite = Suite.load(args.suite_dir, verify=False)
    model, tokenizer = load_base_model(suite.base_model, suite.base_model_revision)
    adapter, template = load_adapter(args.adapter_dir), load_record(args.adapter_dir)["config"]["answer_template"]
    engine = Engine(model, tokenizer, max_batch=64)
    for split in args.splits.split(","):
        data = LabelledDiffs.from_suite(suite, split, limit=args.n)
        score = validate(engine, data, adapter, 20, template=template)
        print(f"{split}: exact {round(score.exact * score.n)}/{score.n}; e.g. {score.examples[:3]}")


if __name__ == "__main__":
    main()
