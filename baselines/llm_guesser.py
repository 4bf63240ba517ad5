"""The paper's guesser: an LLM behind any OpenAI-compatible API reads a model's replies and names
the topic (or summarises the news event). Prompts are versioned files; replies are cached."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import jinja2

from ..core.llm_client import ChatClient, ChatSettings
from ..core.meter import Meter

_VERSION = re.compile(r"version:\s*([\w.-]+)")


def _template(name: str) -> tuple[jinja2.Template, str]:
    text = resources.files("wdqa.baselines").joinpath(f"prompts/{name}.jinja").read_text(encoding="utf-8")
    match = _VERSION.search(text.splitlines()[0])
    if not match:
        raise ValueError(f"prompt {name}.jinja has no 'version:' on its first line")
    return jinja2.Template(text, autoescape=False, keep_trailing_newline=True), match.group(1)


def parse_guess(reply: str) -> str | None:
    """One non-empty line of at most 300 characters; anything else is re-asked."""
    text = reply.strip().strip('"').strip()
    if not text or "\n" in text or len(text) > 300:
        return None
    return text


@dataclass
class LLMGuesser:
    settings: ChatSettings
    name: str = field(init=False)
    version: str = field(init=False)
    meter: Meter | None = None  # the engine's (bind_engine): API calls and tokens count towards the cases

    def __post_init__(self) -> None:
        self._topic, topic_version = _template("guess_topic")
        self._news, news_version = _template("guess_news")
        self.name = f"llm:{self.settings.model}"
        self.version = f"{topic_version}+{news_version}"
        self.client = ChatClient(self.settings, version=self.version)

    def guess(
        self,
        replies: Sequence[Sequence[str]],
        base_replies: Sequence[Sequence[str]],
        behaviours: Sequence[str],
        prompts: Sequence[Sequence[str]] | None = None,
    ) -> list[str]:
        prompts = prompts or [[""] * len(r) for r in replies]
        messages = []
        for r, p, behaviour in zip(replies, prompts, behaviours, strict=True):
            template = self._news if behaviour == "news" else self._topic
            messages.append([{"role": "user", "content": template.render(exchanges=list(zip(p, r, strict=True)))}])
        before = dataclasses.replace(self.client.usage)
        results = self.client.complete_many(
            messages, parse_guess, reask="Reply again with the answer only, on one line.", what=[f"guess {i}" for i in range(len(messages))]
        )
        if self.meter is not None:
            after = self.client.usage
            tokens = after.prompt_tokens + after.completion_tokens - before.prompt_tokens - before.completion_tokens
            self.meter.count(None, guesser_calls=after.api_calls - before.api_calls, guesser_tokens=tokens)
        # An unusable guess is an empty answer (the judge scores it 1), and its raw replies are lost
        # to the run only if the guesser could not produce anything after its retries.
        return [r.value if r.value is not None else "" for r in results]
