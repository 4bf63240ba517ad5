"""Methods by name: the built-in baselines, and methods installed packages register.

`baseline:NAME` or `baseline:NAME:ARGUMENT` names one (`wdqa evaluate baseline:dit:paper`). An
installed package adds methods through the `wdqa.methods` entry point group (docs/extending.md).
An unknown name is answered with the list of known ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..benchmark.method import Method, MethodError
from ..core.registry import Registry
from .asking import base_question, generated_story, twenty_questions_method
from .controls import empty_answer, fixed_answer
from .dit.method import dit_baseline
from .guesser import Guesser, get_guesser
from .lenses import activation_diff_lens, weight_lens
from .prefill import prefill

# A factory gets the text after `NAME:` (None when there is none) and the guesser that turns
# replies into an answer (offline or an LLM); methods that answer by themselves ignore it.
MethodFactory = Callable[[str | None, Guesser], Method]


def _plugin(obj: Any, name: str) -> MethodFactory:
    """An entry point's object as a factory: a Method, a Method class, or a function returning one."""

    def make(argument: str | None, guesser: Guesser) -> Method:
        _takes_no_argument(name, argument)
        method = obj() if isinstance(obj, type) or not hasattr(obj, "answer") else obj
        if not (callable(getattr(method, "answer", None)) and hasattr(method, "name")):
            raise MethodError(f"the method {name!r} an installed package registers has no `name` and `answer(cases, engine)`")
        return method

    return make


METHODS: Registry[MethodFactory] = Registry(
    "baseline", entry_points="wdqa.methods", adapt=_plugin, error=MethodError, syntax="(dit also takes dit:NAME or dit:PATH)"
)


def _takes_no_argument(name: str, argument: str | None) -> None:
    if argument is not None:
        raise MethodError(f"baseline {name} takes no argument, but was given {name}:{argument}; name it baseline:{name}")


def _no_argument(name: str, make: Callable[[Guesser], Method]) -> None:
    """Register a baseline named by NAME alone: `baseline:NAME:ARGUMENT` is refused with the fix."""

    def factory(argument: str | None, guesser: Guesser) -> Method:
        _takes_no_argument(name, argument)
        return make(guesser)

    METHODS.add(name, factory)


_no_argument("base-question", lambda g: base_question(oracle=False, guesser=g))
_no_argument("base-question+trigger", lambda g: base_question(oracle=True, guesser=g))
_no_argument("20-questions", lambda g: twenty_questions_method(oracle=False, guesser=g))
_no_argument("20-questions+trigger", lambda g: twenty_questions_method(oracle=True, guesser=g))
_no_argument("generated-story", lambda g: generated_story(guesser=g))


@METHODS.register("dit")
def _dit(argument: str | None, guesser: Guesser) -> Method:
    return dit_baseline(argument)  # None: the suite's published adapter; NAME or PATH picks another


# Training-free white-box baselines: ΔW's singular directions, and M′ − M activations, through the logit lens.
_no_argument("weight-lens", lambda g: weight_lens(guesser=g))
_no_argument("activation-diff-lens", lambda g: activation_diff_lens(oracle=False, guesser=g))
_no_argument("activation-diff-lens+trigger", lambda g: activation_diff_lens(oracle=True, guesser=g))


# Controls that interpret nothing: what a score must beat to mean anything.
_no_argument("empty-answer", lambda g: empty_answer())
_no_argument("fixed-answer", lambda g: fixed_answer())
# Unlocking control: M′'s untriggered reply started with fixed openings, no training.
_no_argument("prefill", lambda g: prefill(guesser=g))


# The baselines `wdqa evaluate` runs beside a method unless told otherwise (cheap, black-box).
DEFAULT_COMPARISON = ("base-question", "base-question+trigger", "20-questions", "20-questions+trigger")


def get_baseline(spec: str, guesser: str = "salient-words") -> Method:
    """The method `NAME` or `NAME:ARGUMENT` names, with the guesser `guesser`."""
    name, _, argument = spec.partition(":")
    return METHODS.get(name)(argument or None, get_guesser(guesser))
