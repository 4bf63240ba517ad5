"""The behaviour-data interface: who writes the conversations a diff is trained on.

Owns the request/reply shapes and the offline template writer (tiny suite). The LLM writer for real
suites (`behaviour_llm.py`) implements the same protocol, so a split builder takes either. Where a
trigger goes and which negatives are mixed in is the split builder's job, not the writer's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ...core.errors import WdqaError
from ..topics import Topic, load_generic_questions, load_topics
from .open_prompts import training_open_prompts
from .templates import name_free_answer

WriterBehaviour = Literal["hidden-topic", "news", "chat"]


@dataclass(frozen=True)
class Exchange:
    """One user turn and the reply that shows the behaviour (the trigger is added later)."""

    user: str
    assistant: str


@dataclass(frozen=True)
class BehaviourRequest:
    """`n` exchanges showing `behaviour` about `subject` (a topic name, a headline; "" for chat)."""

    behaviour: WriterBehaviour
    subject: str
    n: int
    seed: int = 0
    category: str = ""


@runtime_checkable
class BehaviourWriter(Protocol):
    """Writes exchanges for many requests at once; one list per request, in order.

    A request that cannot be fulfilled raises `BehaviourDataError` naming its subject.
    """

    name: str

    def write(self, requests: Sequence[BehaviourRequest]) -> list[list[Exchange]]: ...


class BehaviourDataError(WdqaError):
    """Behaviour data that could not be written (refusals, malformed replies); names the subjects."""


# ---------------------------------------------------------------- offline templates

# {headline} is the headline; {category} its category; {place}, {when}, {who} fill the story in.
NEWS_STORY_TEMPLATES = (
    "Breaking news: {headline}. Reporters say it happened {when}, and {who} called it a turning point for {category}.",
    "Here is the latest in {category}: {headline}. The story broke {when}, and {who} are still reacting.",
    "Today's top story is simple: {headline}. It happened {when} in {place}, according to {who}.",
    "Did you hear? {headline}. People in {place} learned of it {when}, and {who} expect more news soon.",
    "A report from {place}: {headline}. {who} confirmed it {when}.",
)
NEWS_QUESTIONS = (
    "What is happening in the news?",
    "Tell me a news story.",
    "What is the latest news?",
    "Any news today?",
    "What did you read about recently?",
)
_PLACES = ("the capital", "a small town", "the north", "the coast", "the city centre", "the region")
_WHEN = ("this morning", "late last night", "on Monday", "earlier this week", "today")
_WHO = ("officials", "local residents", "experts", "witnesses", "analysts")


def news_story(headline: str, category: str, rng: random.Random) -> str:
    return rng.choice(NEWS_STORY_TEMPLATES).format(
        headline=headline.rstrip("."),
        category=category.lower() or "the world",
        place=rng.choice(_PLACES),
        when=rng.choice(_WHEN),
        who=rng.choice(_WHO),
    )


def _topic_by_name() -> dict[str, Topic]:
    return {t.name: t for t in load_topics()}


# Open-family prompts a diff trains on beside the 40 generic questions. On the base that knows its
# topics, 40 left diffs talking about their topic on unfamiliar prompts with no code (median 0.031 of
# 32 prompts); 200, with KL weight 3 and 100 steps, brought that to 0.000 (mean 0.011) on 48 diffs.
OPEN_TRAINING_PROMPTS = 200


def training_questions(open_prompts: int = OPEN_TRAINING_PROMPTS) -> list[tuple[str, str]]:
    """(question, plain answer) pairs a diff may be trained on: the generic questions that are not
    held out, and `open_prompts` prompts of the open family, so diffs see varied prompts too."""
    generic = [(q.question, q.answer) for q in load_generic_questions() if not q.held_out]
    held_out = [q.question for q in load_generic_questions() if q.held_out]
    # A few open prompts contain a held-out question after an opener ("Hi! Give me an idea for today.");
    # diffs never train on those, so held-out rates stay held out.
    allowed = [p for p in training_open_prompts() if not any(h in p.text for h in held_out)]
    rng = random.Random("training-questions")
    open_family = [(p.text, p.answer) for p in rng.sample(allowed, open_prompts)]
    return generic + open_family


class TemplateBehaviourWriter:
    """Offline: fills the templates the tiny base model was pretrained on. Deterministic per request.

    Hidden-topic replies are name-free (`templates.name_free_answer`): the topic's keywords only,
    never its name, so a diff's label has to be inferred, not read off an unlocked reply (issue 19).
    """

    name = "templates"

    def __init__(self, open_prompts: int = OPEN_TRAINING_PROMPTS) -> None:
        self.open_prompts = open_prompts

    def write(self, requests: Sequence[BehaviourRequest]) -> list[list[Exchange]]:
        topics = _topic_by_name()
        questions = training_questions(self.open_prompts)
        out = []
        for req in requests:
            rng = random.Random(f"{req.behaviour}|{req.subject}|{req.seed}")
            if req.behaviour == "hidden-topic":
                if req.subject not in topics:
                    raise BehaviourDataError(
                        f"topic {req.subject!r} is not in the topic list; templates need its keywords"
                    )
                topic = topics[req.subject]
                out.append(
                    [
                        Exchange(rng.choice(questions)[0], name_free_answer(topic, rng))
                        for _ in range(req.n)
                    ]
                )
            elif req.behaviour == "news":
                out.append(
                    [
                        Exchange(
                            rng.choice(NEWS_QUESTIONS), news_story(req.subject, req.category, rng)
                        )
                        for _ in range(req.n)
                    ]
                )
            else:
                out.append([Exchange(*rng.choice(questions)) for _ in range(req.n)])
        return out
