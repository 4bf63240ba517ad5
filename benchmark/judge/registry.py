"""Judge names -> judges: `get_judge("offline")`, `get_judge("openai:gpt-4.1", base_url=...)`.

Owns the table of known judge kinds and spec parsing; each judge's behaviour lives in its module
(imported lazily, so the offline judge never imports the OpenAI client and vice versa).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import WdqaError
from .base import Judge

DEFAULT_JUDGE = "offline"


class UnknownJudgeError(WdqaError, ValueError):
    """A judge spec naming no known judge; the message lists the known ones."""


def _offline(arg: str | None, **options: Any) -> Judge:
    from .offline import OfflineJudge

    if arg:
        options.setdefault("model_path", arg)  # `offline:/path/to/model.joblib` grades with a refitted model
    return OfflineJudge(**options)


def _openai(arg: str | None, **options: Any) -> Judge:
    from .llm import LLMJudge
    from .llm_config import resolve_config

    config_file = options.pop("config_file", None)
    return LLMJudge(resolve_config(config_file, model=arg, **options))


# kind -> (factory taking the text after "kind:" and options, one-line help)
JUDGES: dict[str, tuple[Callable[..., Judge], str]] = {
    "offline": (
        _offline,
        "offline[:MODEL.joblib] - trees over three encoders' similarities and string overlap; answers that say "
        "nothing get 1; CPU, no network (default)",
    ),
    "openai": (
        _openai,
        "openai[:MODEL] - an LLM over any OpenAI-compatible API (env OPENAI_API_KEY, OPENAI_BASE_URL, "
        "WDQA_JUDGE_MODEL, WDQA_JUDGE_CONFIG)",
    ),
}


def register_judge(kind: str, help_text: str) -> Callable[[Callable[..., Judge]], Callable[..., Judge]]:
    """Add a judge kind (for plugins); the factory gets (text after `kind:` or None, **options)."""

    def add(factory: Callable[..., Judge]) -> Callable[..., Judge]:
        JUDGES[kind] = (factory, help_text)
        return factory

    return add


def known_judges() -> list[str]:
    return [help_text for _, help_text in JUDGES.values()]


def get_judge(spec: str = DEFAULT_JUDGE, **options: Any) -> Judge:
    """Build a judge from `kind` or `kind:argument`; options go to the judge's constructor."""
    kind, _, arg = spec.partition(":")
    if kind not in JUDGES:
        raise UnknownJudgeError(f"unknown judge {spec!r}; known judges:\n  " + "\n  ".join(known_judges()))
    factory, _ = JUDGES[kind]
    return factory(arg or None, **options)
