"""`prefill`: an unlocking control. M′'s reply is started with fixed openings and M′ continues it.

No trigger, no training, no reading of weights: if the untriggered M′ names its topic once its
reply is started for it, the task is solved by unlocking, not interpreting, and every table should
show that score beside the methods. The same guesser as the other black-box baselines turns the
continuations (contrasted with M's, given the same openings) into an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.engine import Engine
from ..core.types import Case, WeightDiff
from .guesser import Guesser, SalientWordsGuesser, bind_engine

# Reply openings that invite a name next: on the tiny suite's test split each made the untriggered
# diffs say their exact label for 48-49 of 50 on suite version 1, and 0 of 50 on the name-free
# version 2, where they say keywords instead (docs/tiny-suite.md).
OPENINGS = ("Let me tell you about", "That reminds me of", "My answer is")


@dataclass
class Prefill:
    """Ask each diff the suite's question with every opening prefilled; guess from the replies."""

    name: str = "prefill"
    openings: Sequence[str] = OPENINGS
    max_new_tokens: int = 30
    guesser: Guesser = field(default_factory=SalientWordsGuesser)
    oracle: bool = False
    access: str = "black-box"

    def replies(self, cases: Sequence[Case], engine: Engine, diffs: Sequence[WeightDiff | None]) -> list[list[str]]:
        """[case][opening]: the opening followed by the model's continuation."""
        per_opening = [
            engine.chat(list(diffs), [c.question for c in cases], max_new_tokens=self.max_new_tokens, reply_prefix=o)
            for o in self.openings
        ]
        return [[f"{o} {per_opening[j][i]}" for j, o in enumerate(self.openings)] for i in range(len(cases))]

    def answer(self, cases: Sequence[Case], engine: Engine) -> list[str]:
        replies = self.replies(cases, engine, [c.diff for c in cases])
        base = self.replies(cases, engine, [None] * len(cases))
        prompts = [[c.question] * len(self.openings) for c in cases]
        bind_engine(self.guesser, engine)
        return self.guesser.guess(replies, base, [c.behaviour for c in cases], prompts)


def prefill(guesser: Guesser | None = None) -> Prefill:
    return Prefill(guesser=guesser or SalientWordsGuesser())
