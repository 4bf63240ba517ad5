"""DIT's held-out score during training: greedy answers with M ⊕ Δ ⊕ A, exact match and a judge.

Owns answering a validation set through the same batched `Engine.chat` the evaluation uses and
scoring it; which check is best and when to stop is decided in `train.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...benchmark.judge.base import Judge, JudgeRequest, rubric_for
from ...core.engine import Engine
from ...core.types import WeightDiff
from .answer_template import BARE, extract_label
from .data import LabelledDiffs


@dataclass(frozen=True)
class ValScore:
    exact: float  # share of answers equal to the label (case and spaces ignored)
    judge_mean: float | None  # mean judge score 1-5 over valid verdicts, if a judge was given
    n: int
    examples: list[tuple[str, str]]  # a few (label, answer) pairs for the record

    @property
    def key(self) -> float:
        """What early stopping maximises: the judge's mean when there is one, else exact match."""
        return self.judge_mean if self.judge_mean is not None else self.exact


def normalise(text: str) -> str:
    return " ".join(text.lower().strip().rstrip(".").split())


def answer_with_adapter(
    engine: Engine, diffs: Sequence[WeightDiff], questions: Sequence[str], adapter: WeightDiff, max_new_tokens: int
) -> list[str]:
    return engine.chat(list(diffs), list(questions), max_new_tokens=max_new_tokens, shared=[adapter])


def validate(
    engine: Engine, val: LabelledDiffs, adapter: WeightDiff, max_new_tokens: int, judge: Judge | None = None,
    template: str = BARE,
) -> ValScore:
    replies = answer_with_adapter(engine, val.diffs, val.questions, adapter, max_new_tokens)
    answers = [extract_label(template, r) for r in replies]
    exact = sum(normalise(a) == normalise(y) for a, y in zip(answers, val.labels, strict=True)) / max(len(answers), 1)
    judge_mean = None
    if judge is not None:
        requests = [
            JudgeRequest(case_id=f"val/{d.diff_id}", rubric=rubric_for(b), label=y, answer=a)
            for d, y, a, b in zip(val.diffs, val.labels, answers, val.behaviours, strict=True)
        ]
        values = [s.value for s in judge.score(requests) if s.value is not None]
        judge_mean = sum(values) / len(values) if values else None
    return ValScore(exact, judge_mean, len(answers), list(zip(val.labels, answers, strict=True))[:5])
