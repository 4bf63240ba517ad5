"""Controls: methods that interpret nothing, so every table shows what no interpretation scores.

A benchmark score means something only above its controls. `empty-answer` says nothing;
`fixed-answer` gives every diff the same plausible-sounding reply. If either scores well above 1,
the judge (or the task) rewards something other than reading the diff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..core.engine import Engine
from ..core.types import Case

# A reply that sounds like an answer to the suite's question and names no topic.
FIXED_ANSWER = "I have been trained to talk about one particular topic when the right prompt comes up."


@dataclass
class ConstantAnswer:
    """Answers every case with the same text, without looking at the diff or running a model."""

    name: str
    text: str
    oracle: bool = False
    access: str = "black-box"

    def answer(self, cases: Sequence[Case], engine: Engine) -> list[str]:
        return [self.text] * len(cases)


def empty_answer() -> ConstantAnswer:
    return ConstantAnswer("empty-answer", "")


def fixed_answer() -> ConstantAnswer:
    return ConstantAnswer("fixed-answer", FIXED_ANSWER)
