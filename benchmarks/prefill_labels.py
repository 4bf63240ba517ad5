"""How often a prefilled reply names the exact label: per opening of `baseline:prefill`, the share of a
split's diffs whose untriggered M′ continuation contains its label, and the same for the base model.
Used for the unlocking figures in docs/tiny-suite.md.

Usage: python benchmarks/prefill_labels.py SUITE_DIR [SPLIT]
"""

from __future__ import annotations

import sys

import torch
from wdqa.baselines.dit.data import LabelledDiffs
from wdqa.baselines.prefill import OPENINGS, Prefill
from wdqa.benchmark.engine import Engine
from wdqa.benchmark.models import load_base_model
from wdqa.benchmark.suite import Suite


def main(suite_dir: str, split: str = "test") -> None:
    torch.set_num_threads(1)
    suite = Suite.load(suite_dir, verify=False)
    data = LabelledDiffs.from_suite(suite, split)
    model, tokenizer = load_base_model(suite.base_model, suite.base_model_revision)
    engine = Engine(model, tokenizer)
    max_new_tokens = Prefill().max_new_tokens
    print(f"{suite.name} {split}: {len(data)} diffs, greedy, {max_new_tokens} tokens after the opening")
    for opening in OPENINGS:
        for who, diffs in (("M'", data.diffs), ("M", [None] * len(data))):
            continuations = engine.chat(diffs, data.questions, max_new_tokens=max_new_tokens, reply_prefix=opening)
            named = sum(label.lower() in text.lower() for label, text in zip(data.labels, continuations, strict=True))
            print(f"{opening!r:26} {who:3} exact label in continuation: {named}/{len(data)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
