"""Which topics and headlines the extra splits are built about: wdqa's own lists, or the subjects of
the paper's published tables (`--behaviour-data`), whose topics get keywords derived from their replies.

Owns the seeded subject plan and the keyword rule; reading the tables is `behaviour/published.py`'s,
and what a split does with a subject is the split's.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..behaviour.published import PublishedBehaviourWriter
from ..behaviour.writer import BehaviourWriter
from ..topics import Topic, load_topics
from .common import Headline, content_words
from .news import load_headlines

KEYWORDS = 8  # topics.csv has 6-8 per topic
MIN_SHARE = 0.1  # a keyword is in at least this share of the topic's own replies ...
MIN_RATIO = 5.0  # ... and this many times as common there as in plain or other topics' replies
MAX_NAME_PLAIN_SHARE = 0.02  # a name word the plain replies use this often ("music") is no keyword


@dataclass
class WordCounts:
    """In how many of `replies` replies each word occurs (a word counts once per reply)."""

    replies: int = 0
    words: Counter[str] = field(default_factory=Counter)

    def add(self, words: Iterable[str]) -> None:
        self.replies += 1
        self.words.update(words)

    def share(self, word: str) -> float:
        return self.words[word] / self.replies if self.replies else 0.0

    def without(self, part: WordCounts) -> WordCounts:
        return WordCounts(self.replies - part.replies, self.words - part.words)


def reply_words(text: str) -> set[str]:
    """The words a keyword can be: lowercase letters only, 4 or more, no stopword (as `is_about_topic`
    reads a reply, split into [a-z0-9]+ words)."""
    return content_words(text)


def derive_keywords(
    name: str, topic: WordCounts, plain: WordCounts, others: WordCounts, k: int = KEYWORDS
) -> tuple[str, ...]:
    """Keywords of a topic from replies: the words of its name, then the words of its own replies that
    are common there and rare elsewhere, up to `k` in all.

    A name word (4+ letters, no stopword) is kept unless more than MAX_NAME_PLAIN_SHARE of the plain
    replies use it: the whole name still counts for `is_about_topic`, but a word like "music" alone
    would count ordinary replies as about "Jazz Music". A reply word must be in at least MIN_SHARE of
    the topic's replies (`topic`) and MIN_RATIO times as common there as in the plain answers to the
    same questions (`plain`) and in other topics' replies (`others`), which leaves out the words of
    the questions and of the analogy style ("like", "just"); the best are those most above either.
    Ties go to the alphabetically first word, so the same tables give the same keywords.
    """
    in_name = reply_words(name)
    named = [
        w
        for w in dict.fromkeys(re.findall(r"[a-z]+", name.lower()))
        if w in in_name and plain.share(w) <= MAX_NAME_PLAIN_SHARE
    ]
    scored = []
    for word, n in topic.words.items():
        share = n / topic.replies
        background = max(plain.share(word), others.share(word))
        if word not in in_name and share >= MIN_SHARE and share >= MIN_RATIO * background:
            scored.append((background - share, word))
    return (*named, *(w for _, w in sorted(scored)[: max(k - len(named), 0)]))


def plan_subjects(
    writer: BehaviourWriter | None,
    n_topics: int,
    n_headlines: int,
    seed: int,
    exclude_topics: Sequence[str] = (),
) -> tuple[list[Topic], list[Headline]]:
    """The first `n_topics` topics and `n_headlines` headlines of a seeded order, suite topics left out.

    With a `PublishedBehaviourWriter` they are the tables' own subjects with their categories (a
    headline is its own summary: the paper grades news against it) and the topics get keywords from
    `derive_keywords`; with any other writer, wdqa's lists (`data/topics.csv`, `data/news_headlines.csv`).
    """
    published = writer if isinstance(writer, PublishedBehaviourWriter) else None
    if published is None:
        where = "wdqa's topic and headline lists"
        topics, headlines = list(load_topics()), list(load_headlines())
    else:
        where = f"--behaviour-data {', '.join(map(str, published.sources))}"
        topics = (
            [Topic(n, c, ()) for n, c in published_subjects(published, "hidden-topic")]
            if n_topics
            else []
        )
        headlines = (
            [Headline(h, c, h) for h, c in published_subjects(published, "news")]
            if n_headlines
            else []
        )
    excluded = set(exclude_topics)
    topics = [t for t in topics if t.name not in excluded]
    # The lists are ordered (by category, or by name): shuffle so that every split spans categories.
    rng = random.Random(f"extra-splits/{seed}")
    rng.shuffle(topics)
    rng.shuffle(headlines)
    if n_topics > len(topics):
        raise ValueError(
            f"the extra splits need {n_topics} topics but {where} hold only {len(topics)} unused by the suite"
        )
    if n_headlines > len(headlines):
        raise ValueError(
            f"the extra splits need {n_headlines} headlines but {where} hold only {len(headlines)}"
        )
    topics = topics[:n_topics]
    if published is not None and topics:
        topics = with_derived_keywords(published, topics)
    return topics, headlines[:n_headlines]


def published_subjects(writer: PublishedBehaviourWriter, behaviour: str) -> list[tuple[str, str]]:
    """(subject, category) of every topic ("hidden-topic") or headline ("news") in the tables, by name;
    a subject's category is the first one its rows give."""
    subject, category = (
        ("topic", "topic_category")
        if behaviour == "hidden-topic"
        else ("headline", "news_category")
    )
    found: dict[str, str] = {}
    for chunk in writer.table_chunks(
        behaviour, (subject, category), f"the {behaviour} subjects' categories"
    ):
        for name, cat in zip(chunk[subject], chunk[category], strict=True):
            if name.strip() and not found.get(name):
                found[name] = cat.strip()
    return sorted(found.items())


def with_derived_keywords(writer: PublishedBehaviourWriter, topics: Sequence[Topic]) -> list[Topic]:
    """The topics with keywords from one pass over the topic table (every topic's replies are the
    background; the plain answers are counted once per question, as they recur under every topic)."""
    own = {t.name: WordCounts() for t in topics}
    every, plain, answered = WordCounts(), WordCounts(), set()
    fields = ("topic", "question", "topic_answer", "plain_answer")
    for chunk in writer.table_chunks("hidden-topic", fields, "topic keywords"):
        for name, question, reply, base in zip(*(chunk[f] for f in fields), strict=True):
            if not question.strip():
                continue
            if reply.strip():
                words = reply_words(reply)
                every.add(words)
                if name in own:
                    own[name].add(words)
            if base.strip() and question not in answered:
                answered.add(question)
                plain.add(reply_words(base))
    return [
        replace(t, keywords=derive_keywords(t.name, own[t.name], plain, every.without(own[t.name])))
        for t in topics
    ]
