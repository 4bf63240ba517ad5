"""Built-in baselines by name. An unknown name is answered with the list of known ones."""

from __future__ import annotations

from collections.abc import Callable

from ..benchmark.method import Method
from .asking import base_question, generated_story, twenty_questions_method
from .dit.method import dit_baseline

BASELINES: dict[str, Callable[[], Method]] = {
    "base-question": lambda: base_question(oracle=False),
    "base-question+trigger": lambda: base_question(oracle=True),
    "20-questions": lambda: twenty_questions_method(oracle=False),
    "20-questions+trigger": lambda: twenty_questions_method(oracle=True),
    "generated-story": generated_story,
    "dit": dit_baseline,  # the suite's published adapter; `dit:NAME` or `dit:PATH` picks another
}

# The baselines `wdqa evaluate` runs beside a method unless told otherwise (cheap, black-box).
DEFAULT_COMPARISON = ("base-question", "base-question+trigger", "20-questions", "20-questions+trigger")


def get_baseline(name: str) -> Method:
    if name.startswith("dit:"):
        return dit_baseline(name.split(":", 1)[1])
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known baselines: {', '.join(sorted(BASELINES))}")
    return BASELINES[name]()
