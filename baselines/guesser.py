"""Guessers: turn a model's replies into a short topic or summary, as the paper's black-box
baselines do before judging.

Owns the Guesser protocol and the offline guesser; the LLM guesser lives in `llm_guesser.py`.
A guesser never sees a label.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..core.engine import Engine

from ..core.registry import Registry, UnknownNameError

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    like me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves also really thing things lot much many
    one two get got make made know think well yes sure let lets us may might must shall im ive dont
    cant its topic trained talk tell something anything everything interesting favourite favorite
    today question answer help happy glad great good new time way people""".split()
)
WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*", re.UNICODE)


@runtime_checkable
class Guesser(Protocol):
    """Turns each case's replies into one short answer (a topic, or a one-sentence summary)."""

    name: str
    version: str

    def guess(
        self,
        replies: Sequence[Sequence[str]],
        base_replies: Sequence[Sequence[str]],
        behaviours: Sequence[str],
        prompts: Sequence[Sequence[str]] | None = None,
    ) -> list[str]:
        """replies[i][j]: M′'s reply to prompts[i][j] for case i; base_replies: M's to the same, or
        an empty list per case when the method asks M′ only (as the paper's 20 questions)."""
        ...


def _content_words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in WORD.finditer(text)) if len(w) > 2 and w not in STOPWORDS]


@dataclass
class SalientWordsGuesser:
    """Offline guesser: the words M′ uses and M does not, most frequent first.

    A word's salience is the share of M′'s replies that use it minus the share of M's replies (to
    the same prompts) that do; the top words form the answer. It has no world knowledge, so it
    names evidence ("lava magma eruption") rather than a topic ("Volcanoes"): the judge then
    decides how close that is. With no base replies the salience is M′'s share alone. Returns
    "no specific topic" when nothing stands out.
    """

    top_k: int = 3
    min_salience: float = 0.0
    name: str = "salient-words"
    version: str = "1"

    def guess(
        self,
        replies: Sequence[Sequence[str]],
        base_replies: Sequence[Sequence[str]],
        behaviours: Sequence[str],
        prompts: Sequence[Sequence[str]] | None = None,
    ) -> list[str]:
        return [self._one(r, b) for r, b in zip(replies, base_replies, strict=True)]

    def _one(self, replies: Sequence[str], base_replies: Sequence[str]) -> str:
        doc_freq = Counter(w for r in replies for w in set(_content_words(r)))
        base_freq = Counter(w for r in base_replies for w in set(_content_words(r)))
        n, n_base = max(len(replies), 1), max(len(base_replies), 1)
        first_seen = {w: i for i, w in reversed(list(enumerate(w for r in replies for w in _content_words(r))))}
        salience = {w: c / n - base_freq.get(w, 0) / n_base for w, c in doc_freq.items()}
        ranked = sorted(
            (w for w, s in salience.items() if s > self.min_salience),
            key=lambda w: (-salience[w], -doc_freq[w], first_seen[w]),
        )
        return " ".join(ranked[: self.top_k]) if ranked else "no specific topic"


# The tiny base's pretraining task "name the topic from its keywords" (generators/behaviour/templates.py):
# the same question form and answer form, so the base model answers it as it learned to.
NAME_THE_TOPIC_PROMPT = "Name the topic: {evidence}"
NAME_THE_TOPIC_REPLY = re.compile(r"^\s*(?:the topic is\s+)?(.+?)\.?\s*$", re.IGNORECASE | re.DOTALL)


@dataclass
class BaseModelGuesser:
    """Offline guesser that can name a topic from evidence: the salient words of M′'s replies,
    handed to the base model M as "Name the topic: w1, w2, w3." (the tiny base learned that task in
    pretraining). Unlike `salient-words` it answers with a name, so a trigger oracle whose replies
    name no topic is still scored on whether the evidence points to one (issue 19).

    It runs M, so the method binds it to its engine first (`bind_engine`); with no evidence it
    answers "no specific topic" without asking.
    """

    evidence_words: int = 4
    max_new_tokens: int = 12
    name: str = "base-model"
    version: str = "1"
    engine: Engine | None = None

    def guess(
        self,
        replies: Sequence[Sequence[str]],
        base_replies: Sequence[Sequence[str]],
        behaviours: Sequence[str],
        prompts: Sequence[Sequence[str]] | None = None,
    ) -> list[str]:
        if self.engine is None:
            raise RuntimeError("BaseModelGuesser needs the method's engine: call bind_engine(guesser, engine) first")
        evidence = SalientWordsGuesser(top_k=self.evidence_words).guess(replies, base_replies, behaviours, prompts)
        # News cases keep the words: a headline is not a topic name.
        ask = [i for i, e in enumerate(evidence) if e != "no specific topic" and behaviours[i] != "news"]
        questions = [NAME_THE_TOPIC_PROMPT.format(evidence=", ".join(evidence[i].split()).capitalize() + ".") for i in ask]
        named = self.engine.chat([None] * len(ask), questions, max_new_tokens=self.max_new_tokens) if ask else []
        out = list(evidence)
        for i, reply in zip(ask, named, strict=True):
            match = NAME_THE_TOPIC_REPLY.match(reply.splitlines()[0] if reply.strip() else "")
            out[i] = match.group(1).strip() if match else reply.strip()
        return out


def bind_engine(guesser: Guesser, engine: Engine) -> None:
    """Give a guesser that runs a model (`BaseModelGuesser`) the method's engine, and one that calls
    an LLM (`LLMGuesser`) the engine's meter, which counts its calls and tokens per case."""
    if isinstance(guesser, BaseModelGuesser):
        guesser.engine = engine
    if hasattr(guesser, "meter"):
        guesser.meter = engine.meter


GuesserFactory = Callable[[str | None], Guesser]  # gets the text after `NAME:` (None when there is none)
GUESSERS: Registry[GuesserFactory] = Registry("guesser", syntax="(a spec is NAME or NAME:ARGUMENT)")


@GUESSERS.register("salient-words", help="offline, the default: the words M′ uses and M does not")
def _salient_words(argument: str | None) -> Guesser:
    return SalientWordsGuesser()


@GUESSERS.register("base-model", help="offline: the base model M names the topic from the salient words")
def _base_model(argument: str | None) -> Guesser:
    return BaseModelGuesser()


@GUESSERS.register("openai", help="openai:MODEL, an LLM on any OpenAI-compatible server (env OPENAI_BASE_URL, OPENAI_API_KEY)")
def _openai(argument: str | None) -> Guesser:
    import os

    from ..core.llm_client import ChatSettings
    from .llm_guesser import LLMGuesser

    if not argument:
        raise UnknownNameError("the openai guesser needs a model: openai:MODEL (e.g. openai:gpt-4.1-mini)")
    return LLMGuesser(
        ChatSettings(
            model=argument,
            base_url=os.environ.get("OPENAI_BASE_URL"),
            api_key=os.environ.get("OPENAI_API_KEY"),
            max_tokens=100,
        )
    )


def get_guesser(spec: str) -> Guesser:
    """`salient-words` (offline, default), `base-model` (offline: M names the topic from the
    salient words) or `openai:MODEL` (any OpenAI-compatible server: the base URL and key come from
    OPENAI_BASE_URL / OPENAI_API_KEY)."""
    name, _, argument = (spec or "salient-words").partition(":")
    return GUESSERS.get(name)(argument or None)
