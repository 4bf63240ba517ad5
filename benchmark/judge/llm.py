"""The LLM judge: a chat model behind any OpenAI-compatible API grades each pair 1-5.

Owns what is particular to judging: strict parsing of one grade 1..5 with bounded re-asks, the
explicit invalid verdict that keeps every raw reply (a refusal's text among them), the cost summary,
and the one pre-check every judge shares (an answer with no words is graded 1 without asking the
model). The transport (temperature
0, semaphore concurrency, backoff on 429/5xx, the persistent reply cache, the token tally) is
`wdqa/core/llm_client.py`, shared with the guesser and the behaviour writer; the rubric text and the
rendering of the two texts live in `prompts.py`; settings in `llm_config.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ...core.llm_client import ChatClient, ChatSettings, ChatUsage, ReplyCache
from ...core.llm_client import LLMCallError as LLMJudgeError  # noqa: F401  (the judge's name for it)
from ...core.types import Score
from .base import JudgeRequest
from .llm_config import LLMJudgeConfig
from .nonsense import NO_WORDS, NO_WORDS_VERSION, no_words
from .prompts import prompt_version as rubric_versions
from .prompts import render

# The whole reply must be one digit 1..5 (surrounding whitespace and a final full stop allowed).
_GRADE = re.compile(r"\s*([1-5])\s*\.?\s*")
REASK = "Your reply must be exactly one digit from 1 to 5 and nothing else. Reply again."


def parse_grade(reply: str | None) -> int | None:
    match = _GRADE.fullmatch(reply or "")
    return int(match.group(1)) if match else None


class LLMJudge:
    """Grades with a chat model; see the module docstring. `name` is the model name."""

    def __init__(self, config: LLMJudgeConfig, cache: ReplyCache | None = None) -> None:
        self.config = config.validate()
        self.name = config.model
        rubrics = rubric_versions()
        # The pre-check grades too, so it is in the version; the reply cache is keyed by the
        # rubrics alone, so replies cached before the pre-check existed are still found.
        self.prompt_version = f"{rubrics}+{NO_WORDS_VERSION}"
        self.client = ChatClient(
            ChatSettings(
                model=config.model,
                base_url=config.base_url,
                api_key=config.api_key,
                concurrency=config.concurrency,
                max_retries=config.max_retries,
                backoff_s=config.backoff_s,
                timeout_s=config.timeout_s,
                temperature=0.0,
                max_tokens=config.max_tokens,
                key_source="OPENAI_API_KEY (or api_key in the judge config file)",
            ),
            version=rubrics,
            cache=cache if cache is not None else ReplyCache(config.cache_path),
        )

    @property
    def usage(self) -> ChatUsage:
        return self.client.usage

    # -- the Judge protocol

    def score(self, requests: Sequence[JudgeRequest]) -> list[Score]:
        scores: list[Score | None] = [None] * len(requests)
        ask = []
        for i, request in enumerate(requests):
            if no_words(request.answer):  # nothing to grade: the rubric's default, no API call
                raw = json.dumps({"says_nothing": NO_WORDS, "answer": request.answer[:200]}, ensure_ascii=False)
                scores[i] = Score(request.case_id, 1, self.name, self.prompt_version, raw=raw, usage=ChatUsage().as_dict())
            else:
                ask.append(i)
        prompts = [render(requests[i]) for i in ask]
        results = self.client.complete_many(
            prompts,
            parse_grade,
            reask=REASK,
            parse_retries=self.config.parse_retries,
            what=[f"case {requests[i].case_id}" for i in ask],
        ) if ask else []
        for i, messages, result in zip(ask, prompts, results, strict=True):
            if result.value is None:  # every reply unusable: an explicit invalid verdict that keeps them all
                raw = json.dumps({"unparsed_replies": result.replies}, ensure_ascii=False)
            elif len(result.replies) > 1:  # graded after re-asks: the replies before (a refusal, say) stay too
                raw = json.dumps({"replies": result.replies}, ensure_ascii=False)
            else:
                raw = result.replies[0]
            scores[i] = Score(
                requests[i].case_id, result.value, self.name, self.prompt_version, raw=raw, prompt=_show(messages),
                usage=result.usage.as_dict(),
            )
        return [s for s in scores if s is not None]

    def usage_summary(self) -> dict[str, Any]:
        u = self.usage
        cost = None
        if self.config.price_in_per_mtok is not None and self.config.price_out_per_mtok is not None:
            cost = (u.prompt_tokens * self.config.price_in_per_mtok + u.completion_tokens * self.config.price_out_per_mtok) / 1e6
        return {
            "model": self.name, "api_calls": u.api_calls, "cache_hits": u.cache_hits, "retries": u.retries,
            "reasks": u.reasks, "refusals": u.refusals, "invalid": u.unparsed, "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens, "cost_usd": cost,
        }


def _show(messages: list[dict[str, str]]) -> str:
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
