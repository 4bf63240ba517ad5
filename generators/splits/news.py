"""`news`: the model fine-tuned on several generated stories about one headline (no trigger); the label
is the headline's one-sentence summary and the question asks what news it was trained on.

Owns the headline list (`generators/data/news_headlines.csv`, with categories), the data recipe
(stories as positives, ordinary chat held to the base by KL) and the measurement: the share of replies
to held-out news questions that carry the headline's content words, for M′ and for the base M.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from ..behaviour.writer import BehaviourRequest
from ..shards import WHOLE, Shard
from ..training.trainer import ChatExample, DiffTask, train_lora_diffs
from .common import Headline, SplitBuild, SplitContext, SplitDef, content_words, data_sha256, need

QUESTION = "What news headline have you been trained on?"
HEADLINES_CSV = Path(__file__).resolve().parent.parent / "data" / "news_headlines.csv"
# Never in training data (the template writer's news questions are different wordings).
HELD_OUT_NEWS_QUESTIONS = (
    "What happened recently?",
    "Anything interesting in the news?",
    "What are people talking about today?",
    "Can you share a recent story?",
    "What did you hear this week?",
    "Tell me something that happened.",
    "What is the news this morning?",
    "Give me the headlines.",
    "What is in the papers today?",
    "Is there any news worth knowing?",
    "What was reported recently?",
    "Catch me up on the news.",
    "What is the top story?",
    "Tell me the news.",
    "What is new in the world?",
    "Do you have any news for me?",
    "What story did you hear?",
    "What is going on today?",
    "What is the big news?",
    "Tell me what happened.",
)


NEWS_STEP_FACTOR = 4


@dataclass(frozen=True)
class Thresholds:
    news_rate: float = (
        0.5  # replies to news questions that carry >= 2 of the headline's content words
    )
    over_base: float = 0.3  # ... at least this much more often than the base model's replies


DEFAULT_BAR = Thresholds()


@cache
def load_headlines(path: Path = HEADLINES_CSV) -> tuple[Headline, ...]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    bad = [
        i + 2
        for i, r in enumerate(rows)
        if not (r["headline"].strip() and r["category"].strip() and r["summary"].strip())
    ]
    if bad:
        raise ValueError(f"{path}: lines {bad} need a headline, a category and a summary")
    return tuple(
        Headline(r["headline"].strip(), r["category"].strip(), r["summary"].strip()) for r in rows
    )


def about_headline(reply: str, headline: Headline, min_words: int = 2) -> bool:
    """The reply tells this story: it shares >= `min_words` content words with the headline."""
    return len(content_words(reply) & content_words(headline.headline)) >= min_words


def tasks(
    ctx: SplitContext,
    ids: Sequence[str],
    headlines: Sequence[Headline],
    seed: int,
    stories: int = 60,
    chat: int = 60,
) -> list[DiffTask]:
    requests = []
    for h in headlines:
        requests += [
            BehaviourRequest("news", h.headline, stories, seed, h.category),
            BehaviourRequest("chat", "", chat, seed + 1),
        ]
    written = ctx.writer.write(requests)
    return [
        DiffTask(
            diff_id,
            [ChatExample(e.user, e.assistant) for e in written[2 * k]],
            [ChatExample(e.user, e.assistant) for e in written[2 * k + 1]],
        )
        for k, diff_id in enumerate(ids)
    ]


def measure(
    ctx: SplitContext, headlines: Sequence[Headline], diffs: Sequence
) -> tuple[list[float], list[float]]:
    """(news rate of M′, news rate of M) per diff, on the held-out news questions."""
    qs = list(HELD_OUT_NEWS_QUESTIONS)
    replies = ctx.engine.chat(
        [d for d in diffs for _ in qs] + [None] * len(qs),
        qs * (len(diffs) + 1),
        max_new_tokens=ctx.max_new_tokens,
    )
    base_replies = replies[len(diffs) * len(qs) :]
    rates, base = [], []
    for k, h in enumerate(headlines):
        mine = replies[k * len(qs) : (k + 1) * len(qs)]
        rates.append(sum(about_headline(r, h) for r in mine) / len(qs))
        base.append(sum(about_headline(r, h) for r in base_replies) / len(qs))
    return rates, base


def build(
    ctx: SplitContext,
    headlines: Sequence[Headline],
    size: int,
    seed: int,
    shard: Shard = WHOLE,
    bar: Thresholds = DEFAULT_BAR,
) -> SplitBuild:
    planned = list(
        zip(
            [f"news-{seed}-{i:04d}" for i in range(size)],
            need(headlines, size, "news"),
            strict=True,
        )
    )
    ids = [i for i, _ in shard.take(planned)]
    chosen = [h for _, h in shard.take(planned)]
    diff_tasks = tasks(ctx, ids, chosen, seed)
    # A story has more to learn than a topic's keywords, so news diffs get NEWS_STEP_FACTOR times the
    # steps. Measured median news rates: on the first tiny base 0.25 at 120 steps; on base v2, over 8
    # headlines, 0.43 (2/8 ok) at 240 steps and 0.50 (5/8 ok) at 480.
    train = replace(ctx.train, steps=ctx.train.steps * NEWS_STEP_FACTOR)
    result = train_lora_diffs(ctx.model, ctx.tokenizer, diff_tasks, ctx.lora, train)
    rates, base = measure(ctx, chosen, result.diffs)
    rows = [
        {
            "diff_id": i,
            "label": h.summary,
            "headline": h.headline,
            "category": h.category,
            "seed": seed,
            "data_sha256": data_sha256(t),
            "news_rate": r,
            "base_news_rate": b,
            "prompts_per_cell": len(HELD_OUT_NEWS_QUESTIONS),
            "final_loss": result.final_loss[i],
            "behaviour_ok": r >= bar.news_rate and r - b >= bar.over_base,
        }
        for i, h, t, r, b in zip(ids, chosen, diff_tasks, rates, base, strict=True)
    ]
    return SplitBuild(rows, result.diffs)


SPLIT = SplitDef(
    name="news",
    behaviour="news",
    question=QUESTION,
    subjects="headlines",
    build=build,
    description="fine-tuned on generated stories about one headline; label = its one-sentence summary",
)
