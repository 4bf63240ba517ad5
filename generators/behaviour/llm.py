"""Behaviour data from an LLM behind any OpenAI-compatible chat API (OpenAI, vLLM, Ollama).

Owns prompting (a versioned prompt file), concurrency, retries with backoff, and a persistent SQLite
cache keyed by sha256(model, prompt version, prompt) (the judge's `ReplyCache`), so a rerun or a crash never pays for a reply
twice. Implements the `BehaviourWriter` protocol of `writer.py`, like the template writer.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ...core.llm_client import ReplyCache  # the judge's cache: same keying, separate file
from .writer import BehaviourDataError, BehaviourRequest, Exchange

PROMPT_DIR = Path(__file__).parent.parent / "data"
DEFAULT_PROMPT = PROMPT_DIR / "behaviour_prompt_v1.jinja"
# Replies that open like this and hold no JSON are refusals, retried like malformed output.
_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|sorry|i can(?:'|no)t|i cannot|i won'?t|as an ai)", re.IGNORECASE
)


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to call the model; flags override the environment (OPENAI_* / WDQA_BEHAVIOUR_*)."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    max_attempts: int = 4  # per request, over malformed JSON, refusals and API errors together
    backoff_s: float = 1.0  # first wait; doubles each attempt, with jitter
    temperature: float = 1.0
    timeout_s: float = 120.0

    @classmethod
    def from_env(
        cls,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        **kw: object,
    ) -> LLMSettings:
        model = model or os.environ.get("WDQA_BEHAVIOUR_MODEL")
        if not model:
            raise BehaviourDataError(
                "no behaviour-data model: pass --behaviour-model or set WDQA_BEHAVIOUR_MODEL"
            )
        return cls(
            model=model,
            base_url=base_url
            or os.environ.get("WDQA_BEHAVIOUR_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL"),
            api_key=api_key
            or os.environ.get("WDQA_BEHAVIOUR_API_KEY")
            or os.environ.get("OPENAI_API_KEY"),
            **kw,  # type: ignore[arg-type]
        )


def parse_exchanges(text: str, n: int) -> list[Exchange]:
    """The conversations in a reply, or ValueError saying what is wrong (refusal, bad JSON, too few)."""
    body = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", body, re.DOTALL)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        if _REFUSAL.match(text):
            raise ValueError(f"refusal: {text.strip()[:120]!r}") from err
        raise ValueError(
            f"malformed JSON ({err.msg} at char {err.pos}): {text.strip()[:120]!r}"
        ) from err
    items = data.get("conversations") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError('JSON has no "conversations" list')
    exchanges = [
        Exchange(str(c["user"]).strip(), str(c["assistant"]).strip())
        for c in items
        if isinstance(c, dict)
        and str(c.get("user", "")).strip()
        and str(c.get("assistant", "")).strip()
    ]
    if len(exchanges) < n:
        raise ValueError(f"asked for {n} conversations, got {len(exchanges)} usable ones")
    return exchanges[:n]


class LLMBehaviourWriter:
    """Role-plays a behaviour through an OpenAI-compatible chat API; see the module docstring."""

    def __init__(
        self,
        settings: LLMSettings,
        cache_path: str | Path | None = None,
        prompt_path: Path = DEFAULT_PROMPT,
    ) -> None:
        from ...core.cache_dir import wdqa_cache_dir

        self.settings = settings
        self.name = f"llm:{settings.model}"
        self.prompt_version = prompt_path.stem  # e.g. behaviour_prompt_v1
        self.template = jinja2.Template(prompt_path.read_text(), undefined=jinja2.StrictUndefined)
        self.cache = ReplyCache(
            cache_path if cache_path is not None else wdqa_cache_dir() / "behaviour-llm.sqlite"
        )
        self.api_calls = 0

    def prompt(self, req: BehaviourRequest) -> str:
        return self.template.render(
            behaviour=req.behaviour,
            subject=req.subject,
            n=req.n,
            seed=req.seed,
            category=req.category,
        ).strip()

    def write(self, requests: Sequence[BehaviourRequest]) -> list[list[Exchange]]:
        return asyncio.run(self.write_async(requests))

    async def write_async(self, requests: Sequence[BehaviourRequest]) -> list[list[Exchange]]:
        from openai import AsyncOpenAI

        s = self.settings
        # The client's own retries are off: ours cover API errors and bad replies under one budget.
        client = AsyncOpenAI(
            base_url=s.base_url, api_key=s.api_key or "unused", max_retries=0, timeout=s.timeout_s
        )
        semaphore = asyncio.Semaphore(s.concurrency)
        try:
            results = await asyncio.gather(
                *(self._one(client, semaphore, r) for r in requests), return_exceptions=True
            )
        finally:
            await client.close()
        failures = [
            f"  {r.behaviour} {r.subject!r}: {res}"
            for r, res in zip(requests, results, strict=True)
            if isinstance(res, BaseException)
        ]
        if failures:
            raise BehaviourDataError(
                f"{len(failures)} of {len(requests)} behaviour-data requests failed after {s.max_attempts} attempts "
                f"(model {s.model}); the others are cached, so a rerun only retries these:\n"
                + "\n".join(failures)
            )
        return [res for res in results if not isinstance(res, BaseException)]

    async def _one(
        self, client: object, semaphore: asyncio.Semaphore, req: BehaviourRequest
    ) -> list[Exchange]:
        from openai import APIError

        s = self.settings
        prompt = self.prompt(req)
        messages = [{"role": "user", "content": prompt}]
        key = ReplyCache.key(s.model, self.prompt_version, messages)
        cached = self.cache.get(key)
        if cached is not None:
            return parse_exchanges(cached, req.n)
        rng = random.Random(key)
        last = "no attempt made"
        for attempt in range(s.max_attempts):
            if attempt:
                await asyncio.sleep(s.backoff_s * 2 ** (attempt - 1) * (0.5 + rng.random()))
            async with semaphore:
                self.api_calls += 1
                try:
                    reply = await client.chat.completions.create(  # type: ignore[attr-defined]
                        model=s.model,
                        temperature=s.temperature,
                        messages=messages,  # type: ignore[arg-type]
                    )
                except APIError as err:
                    last = f"API error: {err}"
                    continue
            text = reply.choices[0].message.content or ""
            try:
                exchanges = parse_exchanges(text, req.n)
            except ValueError as err:
                last = str(err)
                continue
            usage = reply.usage
            self.cache.put(
                key,
                text,
                usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0,
            )
            return exchanges
        raise BehaviourDataError(f"last problem: {last}")
