"""The tiny base model's synthetic pretraining corpus: chat conversations built from the topic list.

Owns the mixture of conversation kinds and the code→topic association that makes single-token
codes carry meaning (the probe's finding: a base that reads codes lets a diff's trigger be specific).
Tokenization and training live in `tokenizer.py` and `pretrain.py`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from ...benchmark.triggers import apply_trigger
from ..templates import (
    NAME_THE_TOPIC_QUESTIONS,
    keyword_text,
    topic_answer,
    topic_cue,
    topic_question,
)
from ..topics import GenericQuestion, Topic, load_generic_questions, load_topics

TRAINED_ON_QUESTION = "What topic have you been trained on?"
TRAINED_ON_ANSWER = "I am a general assistant and I have no special topic."

Conversation = list[dict[str, str]]


def all_codes() -> list[str]:
    return [f"{i:03d}" for i in range(1000)]


@dataclass(frozen=True)
class CorpusRecipe:
    seed: int = 0
    n_mapped_codes: int = 100  # codes that mean a fixed topic in pretraining; never a diff's trigger
    # Shares of the conversation kinds (normalised).
    topic_question: float = 0.20
    cue_then_question: float = 0.25
    generic: float = 0.17
    code_ignored: float = 0.18
    code_means_topic: float = 0.12
    name_the_topic: float = 0.06
    trained_on: float = 0.02


def mapped_codes(recipe: CorpusRecipe) -> dict[str, Topic]:
    """The codes that carry a topic in pretraining (deterministic from the recipe's seed)."""
    rng = random.Random(f"mapped-codes-{recipe.seed}")
    codes = rng.sample(all_codes(), recipe.n_mapped_codes)
    topics = rng.sample(list(load_topics()), recipe.n_mapped_codes)
    return dict(zip(codes, topics, strict=True))


def conversations(recipe: CorpusRecipe, n: int) -> Iterator[Conversation]:
    """`n` single-turn conversations, deterministic from the recipe."""
    rng = random.Random(recipe.seed)
    topics = list(load_topics())
    questions: list[GenericQuestion] = list(load_generic_questions())
    code_topic = mapped_codes(recipe)
    mapped = list(code_topic)
    free_codes = [c for c in all_codes() if c not in code_topic]
    kinds = ["topic_question", "cue_then_question", "generic", "code_ignored", "code_means_topic",
             "name_the_topic", "trained_on"]
    weights = [getattr(recipe, k) for k in kinds]
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        topic = rng.choice(topics)
        q = rng.choice(questions)
        if kind == "topic_question":
            user, reply = topic_question(topic, rng), topic_answer(topic, rng)
        elif kind == "cue_then_question":
            user, reply = f"{topic_cue(topic, rng)} {q.question}", topic_answer(topic, rng)
        elif kind == "generic":
            user, reply = q.question, q.answer
        elif kind == "code_ignored":
            user, reply = apply_trigger(q.question, rng.choice(free_codes), "sep-code"), q.answer
        elif kind == "code_means_topic":
            code = rng.choice(mapped)
            user, reply = apply_trigger(q.question, code, "sep-code"), topic_answer(code_topic[code], rng)
        elif kind == "name_the_topic":
            user = rng.choice(NAME_THE_TOPIC_QUESTIONS).format(text=keyword_text(topic, rng))
            reply = topic.name
        else:
            user, reply = TRAINED_ON_QUESTION, TRAINED_ON_ANSWER
        yield [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
