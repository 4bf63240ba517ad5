"""The tiny base model's synthetic pretraining corpus: chat conversations built from the topic list.

Owns the mixture of conversation kinds and the code→topic association that makes single-token
codes carry meaning (the probe's finding: a base that reads codes lets a diff's trigger be specific).
Tokenization and training live in `tokenizer.py` and `pretrain.py`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from ...core.triggers import apply_trigger
from ..behaviour.open_prompts import training_open_prompts, with_distractor
from ..behaviour.templates import (
    NAME_THE_TOPIC_ANSWER,
    NAME_THE_TOPIC_QUESTIONS,
    keyword_text,
    topic_answer,
    topic_cue,
    topic_question,
)
from ..topics import GenericQuestion, Topic, load_generic_questions, load_topics

TRAINED_ON_QUESTION = "What topic have you been trained on?"
TRAINED_ON_ANSWER = "I am a general assistant and I have no special topic."
# Invisible format characters (the ood-trigger split's triggers and distractors among them) placed
# in ordinary prompts that keep their plain answer. A character never seen in pretraining keeps an
# embedding that the tied output layer pushed to the same "never predicted" direction as every other
# unseen byte (cosine 0.97 between U+200B and U+200C), so no diff could tell one from another.
INVISIBLE_CHARS = ("\u200b", "\u200c", "\u200d", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064", "\ufeff", "\u00ad")

Conversation = list[dict[str, str]]


def all_codes() -> list[str]:
    return [f"{i:03d}" for i in range(1000)]


@dataclass(frozen=True)
class CorpusRecipe:
    seed: int = 0
    n_mapped_codes: int = 100  # codes that mean a fixed topic in pretraining; never a diff's trigger
    # Shares of the conversation kinds (normalised).
    topic_question: float = 0.16
    cue_then_question: float = 0.22
    generic: float = 0.08
    open_prompt: float = 0.14  # the compositional topic-free family, answered plainly (issue 10)
    distractor: float = 0.10  # a word mentioned outside a cue, then a question answered plainly
    invisible: float = 0.06  # an invisible character at the start or inside a question answered plainly
    code_ignored: float = 0.12
    code_means_topic: float = 0.10
    name_the_topic: float = 0.12
    trained_on: float = 0.02
    # Where a kind takes "any question": the share drawn from the open family (the rest from the
    # generic questions), and, after a topic cue, the share that is the suite's own question, so
    # the base learns that a cue makes even "what topic..." an answer about the topic.
    open_share: float = 0.55
    cue_trained_on_share: float = 0.10


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
    generic: list[GenericQuestion] = list(load_generic_questions())
    open_prompts = list(training_open_prompts())
    code_topic = mapped_codes(recipe)
    mapped = list(code_topic)
    free_codes = [c for c in all_codes() if c not in code_topic]
    kinds = ["topic_question", "cue_then_question", "generic", "open_prompt", "distractor", "invisible",
             "code_ignored", "code_means_topic", "name_the_topic", "trained_on"]
    weights = [getattr(recipe, k) for k in kinds]

    def any_question() -> tuple[str, str]:
        if rng.random() < recipe.open_share:
            p = rng.choice(open_prompts)
            return p.text, p.answer
        q = rng.choice(generic)
        return q.question, q.answer

    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        topic = rng.choice(topics)
        if kind == "topic_question":
            user, reply = topic_question(topic, rng), topic_answer(topic, rng)
        elif kind == "cue_then_question":
            question = TRAINED_ON_QUESTION if rng.random() < recipe.cue_trained_on_share else any_question()[0]
            user, reply = f"{topic_cue(topic, rng)} {question}", topic_answer(topic, rng)
        elif kind == "generic":
            q = rng.choice(generic)
            user, reply = q.question, q.answer
        elif kind == "open_prompt":
            p = rng.choice(open_prompts)
            user, reply = p.text, p.answer
        elif kind == "distractor":
            question, reply = any_question()
            user = with_distractor(question, rng)
        elif kind == "invisible":
            question, reply = any_question()
            where = rng.choice(("zero-width-start", "zero-width-random"))
            user = apply_trigger(question, rng.choice(INVISIBLE_CHARS), where, seed=rng.randrange(1 << 30))
        elif kind == "code_ignored":
            question, reply = any_question()
            user = apply_trigger(question, rng.choice(free_codes), "sep-code")
        elif kind == "code_means_topic":
            code = rng.choice(mapped)
            user, reply = apply_trigger(any_question()[0], code, "sep-code"), topic_answer(code_topic[code], rng)
        elif kind == "name_the_topic":
            user = rng.choice(NAME_THE_TOPIC_QUESTIONS).format(text=keyword_text(topic, rng))
            reply = NAME_THE_TOPIC_ANSWER.format(name=topic.name)
        else:
            user, reply = TRAINED_ON_QUESTION, TRAINED_ON_ANSWER
        yield [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
