"""How often unlocking alone names the label: per opening of `baseline:prefill`, the share of a
split's diffs whose untriggered M′ continuation contains its exact label (and any word of it), the
same for the base model, and for the trigger oracle's replies (the suite's question with the
diff's own trigger, as `base-question+trigger` asks it). Used for the unlocking figures in
docs/tiny-suite.md.

Usage: python experiments/prefill_labels.py SUITE_DIR [SPLIT]
"""

from __future__ import annotations

import sys

import torch
from wdqa.baselines.dit.data import LabelledDiffs
from wdqa.baselines.prefill import OPENINGS, Prefill
from wdqa.core.engine import Engine
from wdqa.core.models import load_base_model
from wdqa.core.suite import Suite
from wdqa.core.triggers import apply_trigger
from wdqa.generators.topics import label_in_reply


def counts(labels: list[str], texts: list[str]) -> str:
    exact = sum(label.lower() in text.lower() for label, text in zip(labels, texts, strict=True))
    words = sum(label_in_reply(text, label) for label, text in zip(labels, texts, strict=True))
    return f"exact label {exact}/{len(labels)}, a word of it {words}/{len(labels)}"


def main(suite_dir: str, split: str = "test") -> None:
    torch.set_num_threads(1)
    suite = Suite.load(suite_dir, verify=False)
    data = LabelledDiffs.from_suite(suite, split)
    index = suite.labelled_index(split).set_index("diff_id")
    model, tokenizer = load_base_model(suite.base_model, suite.base_model_revision)
    engine = Engine(model, tokenizer)
    max_new_tokens = Prefill().max_new_tokens
    print(f"{suite.name} {split}: {len(data)} diffs, greedy, {max_new_tokens} tokens after the opening")
    for opening in OPENINGS:
        for who, diffs in (("M'", data.diffs), ("M", [None] * len(data))):
            continuations = engine.chat(diffs, data.questions, max_new_tokens=max_new_tokens, reply_prefix=opening)
            print(f"{opening!r:26} {who:3} {counts(data.labels, continuations)}")
    triggered = [
        apply_trigger(q, index.loc[d.diff_id, "trigger"], index.loc[d.diff_id, "trigger_kind"])
        for d, q in zip(data.diffs, data.questions, strict=True)
    ]
    replies = engine.chat(data.diffs, triggered, max_new_tokens=max_new_tokens)
    print(f"{'question + trigger':26} M'  {counts(data.labels, replies)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
