"""The generators' data files: the topic list (with categories and keywords) and generic questions.

Owns reading `generators/data/*.csv` into typed values; what is made from them lives elsewhere.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Topic:
    name: str
    category: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class GenericQuestion:
    """A question with no topic in it, and the plain answer a base model gives to it."""

    question: str
    answer: str
    held_out: bool  # never used to train a diff: diffs are measured on these


@cache
def load_topics(path: Path = DATA_DIR / "topics.csv") -> tuple[Topic, ...]:
    topics = []
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            keywords = tuple(k.strip() for k in row["keywords"].split(";") if k.strip())
            if not row["topic"] or not row["category"] or len(keywords) < 3:
                raise ValueError(f"{path}:{line}: a topic needs a name, a category and >= 3 keywords")
            topics.append(Topic(row["topic"].strip(), row["category"].strip(), keywords))
    return tuple(topics)


@cache
def load_generic_questions(path: Path = DATA_DIR / "generic_questions.csv") -> tuple[GenericQuestion, ...]:
    with open(path, newline="") as fh:
        return tuple(
            GenericQuestion(r["question"].strip(), r["answer"].strip(), r.get("held_out", "").strip() == "1")
            for r in csv.DictReader(fh)
        )


# Words of a label that say nothing about the topic: "The Lord of the Rings" is given away by
# "lord" and "rings", not by "the" or "of".
_FUNCTION_WORDS = frozenset({"a", "an", "and", "the", "of", "in", "on", "for", "to", "with", "at", "by", "or", "s"})


def label_words(label: str) -> frozenset[str]:
    """The words of a label that would give it away (lowercase, function words dropped)."""
    return frozenset(w for w in re.findall(r"[a-z0-9]+", label.lower()) if w not in _FUNCTION_WORDS)


def _stem(word: str) -> str:
    # Enough to tie "astronaut" to "Astronauts" and "volcano" to "Volcanoes".
    for suffix in ("es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)]
    return word


def name_free_keywords(topic: Topic) -> tuple[str, ...]:
    """The topic's keywords that share no word (or stem of one) with its name."""
    name = {_stem(w) for w in label_words(topic.name)}
    return tuple(k for k in topic.keywords if not {_stem(w) for w in re.findall(r"[a-z0-9]+", k.lower())} & name)


def label_in_reply(reply: str, label: str) -> bool:
    """The reply contains the label or any of its words (whole words, case-insensitive, stems
    matched: "volcano" gives away "Volcanoes")."""
    words = {_stem(w) for w in label_words(label)}
    return any(_stem(w) in words for w in re.findall(r"[a-z0-9]+", reply.lower()))


def is_about_topic(reply: str, topic: Topic) -> bool:
    """The tiny suite's criterion for "the reply is about the topic".

    True when the reply contains the topic's name or at least one of its keywords as a whole word
    (case-insensitive). The generic answers share no word with any keyword list (the data files are
    kept that way), so a base-model reply to a generic question scores False.
    """
    text = reply.lower()
    if re.search(rf"\b{re.escape(topic.name.lower())}\b", text):
        return True
    words = set(re.findall(r"[a-z0-9]+", text))
    return any(k.lower() in words for k in topic.keywords)
