"""DIT's supervised examples: (question prompt, " label" + end token) per labelled diff, padded in batches.

Owns tokenisation and the loss mask (only the answer tokens count); the loss itself lives in
`train.py`. The prompt is rendered with the chat template exactly as `Engine.chat` renders it, so
the adapter is trained on the same text it is asked at evaluation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from ...core.suite import Suite
from ...core.types import WeightDiff
from .answer_template import BARE, target_text

IGNORE = -100


@dataclass(frozen=True)
class LabelledDiffs:
    """A split's diffs with their labels, in one order (DIT is the one baseline that reads labels)."""

    diffs: list[WeightDiff]
    labels: list[str]
    questions: list[str]
    behaviours: list[str]

    @classmethod
    def from_suite(cls, suite: Suite, split: str, limit: int | None = None) -> LabelledDiffs:
        index = suite.labelled_index(split)
        if limit is not None:
            index = index.head(limit)
        rows = {r.diff_id: r for r in index.itertuples()}
        diffs = list(suite.diffs(split, list(rows)))
        return cls(
            diffs=diffs,
            labels=[rows[d.diff_id].label for d in diffs],
            questions=[rows[d.diff_id].question for d in diffs],
            behaviours=[rows[d.diff_id].behaviour for d in diffs],
        )

    def __len__(self) -> int:
        return len(self.diffs)

    def subset(self, positions: Sequence[int]) -> LabelledDiffs:
        return LabelledDiffs(
            [self.diffs[i] for i in positions],
            [self.labels[i] for i in positions],
            [self.questions[i] for i in positions],
            [self.behaviours[i] for i in positions],
        )


@dataclass(frozen=True)
class DitExample:
    diff_id: str
    prompt_ids: list[int]
    answer_ids: list[int]  # the label's tokens, then the end-of-turn token


@dataclass
class DitBatch:
    input_ids: torch.Tensor  # [batch, seq], right-padded
    attention_mask: torch.Tensor  # [batch, seq]
    labels: torch.Tensor  # [batch, seq], IGNORE except on answer tokens

    @property
    def answer_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())

    @property
    def tokens(self) -> int:
        return int(self.attention_mask.sum())


def render_question(tokenizer: PreTrainedTokenizerBase, question: str) -> str:
    """The same prompt text `Engine.render` produces for a one-turn conversation."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    return str(text)


def make_examples(
    tokenizer: PreTrainedTokenizerBase,
    diff_ids: Sequence[str],
    labels: Sequence[str],
    questions: Sequence[str],
    template: str = BARE,
) -> list[DitExample]:
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no end-of-sequence token; DIT trains the answer to end with it")
    prompts: dict[str, list[int]] = {}
    out = []
    for diff_id, label, question in zip(diff_ids, labels, questions, strict=True):
        if question not in prompts:
            prompts[question] = tokenizer(render_question(tokenizer, question), add_special_tokens=False)["input_ids"]
        if not label.strip():
            raise ValueError(f"diff {diff_id}: its label {label!r} is empty; DIT needs a non-empty label")
        answer = tokenizer(target_text(template, label), add_special_tokens=False)["input_ids"]
        out.append(DitExample(diff_id, prompts[question], [*answer, tokenizer.eos_token_id]))
    return out


def collate(examples: Sequence[DitExample], pad_id: int, device: torch.device | str = "cpu") -> DitBatch:
    """Right padding keeps positions 0..n for every row, as in a single-sequence forward."""
    length = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    input_ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), length), dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE, dtype=torch.long)
    for i, e in enumerate(examples):
        seq = e.prompt_ids + e.answer_ids
        input_ids[i, : len(seq)] = torch.tensor(seq)
        attention[i, : len(seq)] = 1
        labels[i, len(e.prompt_ids) : len(seq)] = torch.tensor(e.answer_ids)
    return DitBatch(input_ids.to(device), attention.to(device), labels.to(device))
