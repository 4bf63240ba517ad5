"""The judge protocol: grade answers against labels on the 1-5 scale.

Owns the request/verdict shapes every judge shares; concrete judges live beside this file.
A judge never imports a model of the suite or a method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ...core.types import Score

Rubric = Literal["topic", "news"]


@dataclass(frozen=True)
class JudgeRequest:
    """One (label, answer) pair to grade. `seed` fixes the per-case order of the two texts."""

    case_id: str
    rubric: Rubric
    label: str
    answer: str
    seed: int = 0


@runtime_checkable
class Judge(Protocol):
    """Grades many pairs at once; returns one Score per request, in order.

    An unusable reply is a Score with value None that keeps the raw text, never an exception
    and never a default grade.
    """

    name: str
    prompt_version: str

    def score(self, requests: Sequence[JudgeRequest]) -> list[Score]: ...


def rubric_for(behaviour: str) -> Rubric:
    """News diffs are judged on summary similarity; every topic-like behaviour on topic similarity."""
    return "news" if behaviour == "news" else "topic"
