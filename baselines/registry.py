"""Built-in baselines by name. An unknown name is answered with the list of known ones."""

from __future__ import annotations

from collections.abc import Callable

from ..benchmark.method import Method
from .asking import base_question, generated_story, twenty_questions_method
from .controls import empty_answer, fixed_answer
from .dit.method import dit_baseline
from .guesser import Guesser, get_guesser
from .prefill import prefill

# Each factory takes the guesser that turns replies into an answer (offline or an LLM); DIT
# answers by itself and ignores it.
BASELINES: dict[str, Callable[[Guesser], Method]] = {
    "base-question": lambda g: base_question(oracle=False, guesser=g),
    "base-question+trigger": lambda g: base_question(oracle=True, guesser=g),
    "20-questions": lambda g: twenty_questions_method(oracle=False, guesser=g),
    "20-questions+trigger": lambda g: twenty_questions_method(oracle=True, guesser=g),
    "generated-story": lambda g: generated_story(guesser=g),
    "dit": lambda g: dit_baseline(),  # the suite's published adapter; `dit:NAME` or `dit:PATH` picks another
    # Controls that interpret nothing: what a score must beat to mean anything.
    "empty-answer": lambda g: empty_answer(),
    "fixed-answer": lambda g: fixed_answer(),
    # Unlocking control: M′'s untriggered reply started with fixed openings, no training.
    "prefill": lambda g: prefill(guesser=g),
}

# The baselines `wdqa evaluate` runs beside a method unless told otherwise (cheap, black-box).
DEFAULT_COMPARISON = ("base-question", "base-question+trigger", "20-questions", "20-questions+trigger")


def get_baseline(name: str, guesser: str = "salient-words") -> Method:
    if name.startswith("dit:"):
        return dit_baseline(name.split(":", 1)[1])
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known baselines: {', '.join(sorted(BASELINES))}, dit:NAME")
    return BASELINES[name](get_guesser(guesser))
