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
