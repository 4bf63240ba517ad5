"""Judge names -> judges: `get_judge("offline")`, `get_judge("openai:gpt-4.1", base_url=...)`.

Owns the table of known judge kinds and spec parsing; each judge's behaviour lives in its module
(imported lazily, so the offline judge never imports the OpenAI client and vice versa).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...core.registry import Registry, UnknownNameError
from .base import Judge

DEFAULT_JUDGE = "offline"


class UnknownJudgeError(UnknownNameError):
    """A judge spec naming no known judge; the message lists the known ones."""


# kind -> factory taking the text after "kind:" (or None) and the judge's options. Installed
# packages add kinds through the `wdqa.judges` entry point group (docs/extending.md).
JudgeFactory = Callable[..., Judge]
JUDGES: Registry[JudgeFactory] = Registry(
    "judge", entry_points="wdqa.judges", error=UnknownJudgeError, syntax="(a spec is KIND or KIND:ARGUMENT)"
)


@JUDGES.register(
    "offline",
    help="trees over three encoders' similarities and string overlap; answers that say nothing get 1; CPU, "
    "no network (default); offline:MODEL.joblib grades with a refitted model",
)
def _offline(arg: str | None, **options: Any) -> Judge:
    from .offline import OfflineJudge

    if arg:
        options.setdefault("model_path", arg)  # `offline:/path/to/model.joblib` grades with a refitted model
    return OfflineJudge(**options)


@JUDGES.register(
    "openai",
    help="openai:MODEL, an LLM over any OpenAI-compatible API (env OPENAI_API_KEY, OPENAI_BASE_URL, "
    "WDQA_JUDGE_MODEL, WDQA_JUDGE_CONFIG)",
)
def _openai(arg: str | None, **options: Any) -> Judge:
    from .llm import LLMJudge
    from .llm_config import resolve_config

    config_file = options.pop("config_file", None)
    return LLMJudge(resolve_config(config_file, model=arg, **options))


def get_judge(spec: str = DEFAULT_JUDGE, **options: Any) -> Judge:
    """Build a judge from `kind` or `kind:argument`; options go to the judge's constructor."""
    kind, _, arg = spec.partition(":")
    return JUDGES.get(kind)(arg or None, **options)
