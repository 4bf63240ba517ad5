"""The LLM judge: a chat model behind any OpenAI-compatible API grades each pair 1-5.

Owns calling the API (temperature 0, semaphore concurrency, backoff on 429/5xx), strict parsing
with bounded re-asks, the persistent reply cache and the token/cost tally. The rubric text and
the rendering of the two texts live in `prompts.py`; settings in `llm_config.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

from ..types import Score
from .base import JudgeRequest
from .cache_dir import wdqa_cache_dir
from .llm_config import LLMJudgeConfig
from .prompts import prompt_version as rubric_versions
from .prompts import render

# The whole reply must be one digit 1..5 (surrounding whitespace and a final full stop allowed).
_GRADE = re.compile(r"\s*([1-5])\s*\.?\s*")
REASK = "Your reply must be exactly one digit from 1 to 5 and nothing else. Reply again."


class LLMJudgeError(RuntimeError):
    """The API refused the judge (auth, unknown model) or stayed unavailable after every retry."""


def parse_grade(reply: str | None) -> int | None:
    match = _GRADE.fullmatch(reply or "")
    return int(match.group(1)) if match else None


class ReplyCache:
    """Replies keyed by sha256(model + prompt version + messages), in SQLite (WAL)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else wdqa_cache_dir() / "llm-judge.sqlite"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS reply (key TEXT PRIMARY KEY, reply TEXT, "
                "prompt_tokens INTEGER, completion_tokens INTEGER)"
            )
            self._conn = conn
        return self._conn

    @staticmethod
    def key(model: str, version: str, messages: list[dict[str, str]]) -> str:
        payload = json.dumps([model, version, messages], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db().execute("SELECT reply FROM reply WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, reply: str, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            db = self._db()
            db.execute("INSERT OR REPLACE INTO reply VALUES (?, ?, ?, ?)", (key, reply, prompt_tokens, completion_tokens))
            db.commit()


@dataclass
class Usage:
    api_calls: int = 0
    cache_hits: int = 0
    retries: int = 0  # transport retries (429, 5xx, connection)
    reasks: int = 0  # re-asks after an unparseable reply
    invalid: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: list[str] = field(default_factory=list)


class LLMJudge:
    """Grades with a chat model; see the module docstring. `name` is the model name."""

    def __init__(self, config: LLMJudgeConfig, cache: ReplyCache | None = None) -> None:
        self.config = config.validate()
        self.name = config.model
        self.prompt_version = rubric_versions()
        self.cache = cache if cache is not None else ReplyCache(config.cache_path)
        self.usage = Usage()

    # -- the Judge protocol

    def score(self, requests: Sequence[JudgeRequest]) -> list[Score]:
        coro = self._score_all(list(requests))
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # Called from inside an event loop (a notebook): run ours on a worker thread.
        result: list[list[Score]] = []
        worker = threading.Thread(target=lambda: result.append(asyncio.run(coro)))
        worker.start()
        worker.join()
        return result[0]

    def usage_summary(self) -> dict[str, Any]:
        u = self.usage
        cost = None
        if self.config.price_in_per_mtok is not None and self.config.price_out_per_mtok is not None:
            cost = (u.prompt_tokens * self.config.price_in_per_mtok + u.completion_tokens * self.config.price_out_per_mtok) / 1e6
        return {
            "model": self.name, "api_calls": u.api_calls, "cache_hits": u.cache_hits, "retries": u.retries,
            "reasks": u.reasks, "invalid": u.invalid, "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens, "cost_usd": cost,
        }

    # -- internals

    async def _score_all(self, requests: list[JudgeRequest]) -> list[Score]:
        client = openai.AsyncOpenAI(
            api_key=self.config.api_key or "not-needed-for-local-servers",
            base_url=self.config.base_url,
            max_retries=0,  # retries are ours: counted, and bounded by config.max_retries
            timeout=self.config.timeout_s,
        )
        semaphore = asyncio.Semaphore(self.config.concurrency)
        try:
            return list(await asyncio.gather(*(self._score_one(client, semaphore, r) for r in requests)))
        finally:
            await client.close()

    async def _score_one(self, client: openai.AsyncOpenAI, semaphore: asyncio.Semaphore, request: JudgeRequest) -> Score:
        messages = render(request)
        replies: list[str] = []
        for attempt in range(self.config.parse_retries + 1):
            reply = await self._complete(client, semaphore, messages, request.case_id)
            replies.append(reply)
            grade = parse_grade(reply)
            if grade is not None:
                return Score(request.case_id, grade, self.name, self.prompt_version, raw=reply, prompt=_show(messages))
            if attempt < self.config.parse_retries:
                self.usage.reasks += 1
                messages = [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": REASK}]
        self.usage.invalid += 1
        raw = json.dumps({"unparsed_replies": replies}, ensure_ascii=False)
        return Score(request.case_id, None, self.name, self.prompt_version, raw=raw, prompt=_show(messages))

    async def _complete(
        self, client: openai.AsyncOpenAI, semaphore: asyncio.Semaphore, messages: list[dict[str, str]], case_id: str
    ) -> str:
        key = self.cache.key(self.name, self.prompt_version, messages)
        cached = self.cache.get(key)
        if cached is not None:
            self.usage.cache_hits += 1
            return cached
        for attempt in range(self.config.max_retries + 1):
            try:
                async with semaphore:
                    self.usage.api_calls += 1
                    response = await client.chat.completions.create(
                        model=self.name, messages=messages, temperature=0, max_tokens=self.config.max_tokens  # type: ignore[arg-type]
                    )
                reply = (response.choices[0].message.content or "") if response.choices else ""
                usage = response.usage
                p_tok, c_tok = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
                self.usage.prompt_tokens += p_tok
                self.usage.completion_tokens += c_tok
                self.cache.put(key, reply, p_tok, c_tok)
                return reply
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as err:
                if attempt == self.config.max_retries:
                    raise LLMJudgeError(
                        f"judge {self.name} at {self.config.base_url or 'the OpenAI API'} still failing on case "
                        f"{case_id} after {attempt + 1} tries: {err}. Scores so far are saved; rerun to resume."
                    ) from err
                self.usage.retries += 1
                await asyncio.sleep(self._backoff(attempt, err))
            except openai.APIStatusError as err:
                raise LLMJudgeError(
                    f"judge {self.name} at {self.config.base_url or 'the OpenAI API'} refused case {case_id} "
                    f"(HTTP {err.status_code}): {err.message}. Check the model name, key and base URL."
                ) from err
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, err: Exception) -> float:
        wait = self.config.backoff_s * (2**attempt) * (1 + 0.25 * random.random())
        response = getattr(err, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        try:
            return max(wait, min(float(retry_after), 60.0)) if retry_after else wait
        except ValueError:
            return wait


def _show(messages: list[dict[str, str]]) -> str:
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
