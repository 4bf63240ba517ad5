"""Cached, concurrent calls to any OpenAI-compatible chat API (OpenAI, vLLM, Ollama).

Owns the transport: semaphore concurrency, backoff on 429/5xx/connection errors (Retry-After
honoured), re-asking when a reply fails the caller's parser (a refusal always does, and is kept
among the replies), the persistent SQLite reply cache and the token tally. What to ask and how to read the reply belong to the caller (judge, guesser,
behaviour writer).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

import openai

from .cache_dir import SqliteCache
from .errors import WdqaError

T = TypeVar("T")
Messages = list[dict[str, str]]


class ReplyCache(SqliteCache):
    """Replies keyed by sha256(model + prompt version + messages), in SQLite (WAL)."""

    filename = "llm-replies.sqlite"
    create_table = (
        "CREATE TABLE IF NOT EXISTS reply (key TEXT PRIMARY KEY, reply TEXT, "
        "prompt_tokens INTEGER, completion_tokens INTEGER)"
    )

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


class LLMCallError(WdqaError):
    """The API refused (auth, unknown model), stayed unavailable after every retry, or answered with
    something that is not a chat completion."""


# A refusal (the API's `message.refusal`, sent with no content) is kept as a reply with this prefix:
# it is cached and shown like any reply, and never handed to a caller's parser.
REFUSAL = "[refusal] "


def is_refusal(reply: str) -> bool:
    return reply.startswith(REFUSAL)


@dataclass(frozen=True)
class ChatSettings:
    model: str
    base_url: str | None = None  # None: the OpenAI API
    api_key: str | None = None
    concurrency: int = 8
    max_retries: int = 6
    backoff_s: float = 1.0
    timeout_s: float = 60.0
    temperature: float = 0.0
    max_tokens: int | None = None
    key_source: str = "OPENAI_API_KEY"  # where the key comes from, named when the API refuses it

    def validate(self) -> ChatSettings:
        problems = []
        if not self.model:
            problems.append("no model name")
        if not self.api_key and not self.base_url:
            problems.append("no API key: set OPENAI_API_KEY, or give the base URL of a local server")
        if self.concurrency < 1:
            problems.append(f"concurrency must be >= 1, got {self.concurrency}")
        if problems:
            raise LLMCallError("LLM settings: " + "; ".join(problems))
        return self


@dataclass
class ChatUsage:
    api_calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    reasks: int = 0
    refusals: int = 0
    unparsed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def bump(self, other: ChatUsage | None = None, **counters: int) -> None:
        """Add counters here and to `other` (a request's own counts beside the client's totals)."""
        for usage in (self, other):
            if usage is not None:
                for name, n in counters.items():
                    setattr(usage, name, getattr(usage, name) + n)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ChatResult(Generic[T]):
    value: T | None  # None when every reply failed the parser
    replies: list[str] = field(default_factory=list)
    usage: ChatUsage = field(default_factory=ChatUsage)  # what this request alone cost (re-asks included)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when called inside a running loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    out: list[T] = []
    worker = threading.Thread(target=lambda: out.append(asyncio.run(coro)))
    worker.start()
    worker.join()
    return out[0]


class ChatClient:
    """`complete_many` asks many prompts at once; each reply goes through `parse` (None = unusable),
    and an unusable reply is re-asked up to `parse_retries` times with `reask` appended."""

    def __init__(self, settings: ChatSettings, version: str, cache: ReplyCache | None = None) -> None:
        self.settings = settings.validate()
        self.version = version  # part of every cache key: a new prompt version asks again
        self.cache = cache if cache is not None else ReplyCache()
        self.usage = ChatUsage()

    def complete_many(
        self,
        prompts: Sequence[Messages],
        parse: Callable[[str], T | None],
        reask: str = "",
        parse_retries: int = 2,
        what: Sequence[str] | None = None,
    ) -> list[ChatResult[T]]:
        labels = list(what) if what is not None else [f"request {i}" for i in range(len(prompts))]
        return run_sync(self._all(list(prompts), parse, reask, parse_retries, labels))

    async def _all(
        self, prompts: list[Messages], parse: Callable[[str], T | None], reask: str, parse_retries: int, what: list[str]
    ) -> list[ChatResult[T]]:
        s = self.settings
        client = openai.AsyncOpenAI(
            api_key=s.api_key or "not-needed-for-local-servers", base_url=s.base_url, max_retries=0, timeout=s.timeout_s
        )
        semaphore = asyncio.Semaphore(s.concurrency)
        try:
            return list(
                await asyncio.gather(
                    *(self._one(client, semaphore, m, parse, reask, parse_retries, w) for m, w in zip(prompts, what, strict=True))
                )
            )
        finally:
            await client.close()

    async def _one(
        self,
        client: openai.AsyncOpenAI,
        semaphore: asyncio.Semaphore,
        messages: Messages,
        parse: Callable[[str], T | None],
        reask: str,
        parse_retries: int,
        what: str,
    ) -> ChatResult[T]:
        replies: list[str] = []
        mine = ChatUsage()
        for attempt in range(parse_retries + 1):
            reply = await self._complete(client, semaphore, messages, what, mine)
            replies.append(reply)
            if is_refusal(reply):
                self.usage.bump(mine, refusals=1)
            value = None if is_refusal(reply) else parse(reply)
            if value is not None:
                return ChatResult(value, replies, mine)
            if attempt < parse_retries:
                self.usage.bump(mine, reasks=1)
                messages = [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": reask}]
        self.usage.bump(mine, unparsed=1)
        return ChatResult(None, replies, mine)

    async def _complete(
        self, client: openai.AsyncOpenAI, semaphore: asyncio.Semaphore, messages: Messages, what: str, mine: ChatUsage
    ) -> str:
        s = self.settings
        key = self.cache.key(s.model, f"{self.version}|t={s.temperature}", messages)
        cached = self.cache.get(key)
        if cached is not None:
            self.usage.bump(mine, cache_hits=1)
            return cached
        where = s.base_url or "the OpenAI API"
        for attempt in range(s.max_retries + 1):
            try:
                async with semaphore:
                    self.usage.bump(mine, api_calls=1)
                    raw = await client.chat.completions.with_raw_response.create(
                        model=s.model, messages=messages, temperature=s.temperature, max_tokens=s.max_tokens  # type: ignore[arg-type]
                    )
                response = _completion(raw, f"{s.model} at {where} answered {what}")
                reply = _reply_text(response.choices[0].message)
                p_tok, c_tok = (response.usage.prompt_tokens, response.usage.completion_tokens) if response.usage else (0, 0)
                self.usage.bump(mine, prompt_tokens=p_tok, completion_tokens=c_tok)
                self.cache.put(key, reply, p_tok, c_tok)
                return reply
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as err:
                if attempt == s.max_retries:
                    raise LLMCallError(
                        f"{s.model} at {where} still failing on {what} after {attempt + 1} tries ({err}); "
                        "check that the server is up and reachable, then rerun: finished replies are cached"
                    ) from err
                self.usage.bump(mine, retries=1)
                await asyncio.sleep(backoff_seconds(s.backoff_s, attempt, err))
            except openai.APIStatusError as err:
                if err.status_code in (401, 403):
                    fix = f"the API key was refused: set {s.key_source} to a valid key for {where}"
                else:
                    fix = "check the model name and the base URL"
                raise LLMCallError(f"{s.model} at {where} refused {what} (HTTP {err.status_code}: {err.message}); {fix}") from err
        raise AssertionError("unreachable")


def _completion(raw: Any, who: str) -> Any:
    """The chat completion in a raw 200 response, or LLMCallError quoting the start of a body that is
    not one (a proxy's HTML page, truncated JSON, an error object)."""
    try:
        response = raw.parse()
    except ValueError:  # a body that says it is JSON and is not
        response = None
    if not getattr(response, "choices", None):
        raise LLMCallError(
            f"{who} with HTTP {raw.status_code} but no chat completion; the body starts {raw.content[:120]!r}. "
            "Check that the base URL is an OpenAI-compatible API (it usually ends in /v1)"
        )
    return response


def _reply_text(message: Any) -> str:
    if message.content:
        return str(message.content)
    refusal = getattr(message, "refusal", None)
    return f"{REFUSAL}{refusal}" if refusal else ""


def backoff_seconds(first: float, attempt: int, err: Exception) -> float:
    """Exponential backoff with jitter; a longer Retry-After header (capped at 60 s) wins."""
    wait = first * (2**attempt) * (1 + 0.25 * random.random())
    response = getattr(err, "response", None)
    retry_after = response.headers.get("retry-after") if response is not None else None
    try:
        return max(wait, min(float(retry_after), 60.0)) if retry_after else wait
    except ValueError:
        return wait
