"""`rank`: the hidden-topic behaviour trained at LoRA ranks 2, 4, 8, 16, 32, 64 (128 where asked),
an equal share of diffs per rank; scale alpha/rank is kept at 2 so every rank starts equally strong.

Owns the rank schedule only; data, training and measurement are the hidden-topic recipe's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..shards import WHOLE, Shard
from ..topics import Topic
from ..training.trainer import DiffTask, TrainResult, train_lora_diffs
from .common import SplitBuild, SplitContext, SplitDef
from .hidden_topic import QUESTION  # the same question as the tiny suite's hidden-topic splits
from .topic_diffs import build_in_groups, plan_topic_diffs, topic_tasks

RANKS = (2, 4, 8, 16, 32, 64)


def rank_lr(lr: float, rank: int, reference_rank: int = 4) -> float:
    """lr · sqrt(4 / rank) above rank 4: with alpha = 2·rank a fixed lr over-trains high ranks (measured:
    rank 64 at lr 2e-3 leaked wrong codes 0.30 vs 0.00 at rank 4), the rsLoRA-style correction."""
    return lr * min(1.0, (reference_rank / rank) ** 0.5)


def build(
    ctx: SplitContext,
    topics: Sequence[Topic],
    size: int,
    seed: int,
    shard: Shard = WHOLE,
    ranks: Sequence[int] = RANKS,
) -> SplitBuild:
    planned = plan_topic_diffs(ctx, topics, size, seed, "rank")
    rank_of = {
        p.diff_id: ranks[i % len(ranks)] for i, p in enumerate(planned)
    }  # from the whole plan
    plans = shard.take(planned)

    def train(rank: int, tasks: list[DiffTask]) -> TrainResult:
        lora = replace(ctx.lora, rank=rank, alpha=2.0 * rank)
        return train_lora_diffs(ctx.model, ctx.tokenizer, tasks, lora, replace(ctx.train, lr=rank_lr(ctx.train.lr, rank)))

    return build_in_groups(
        ctx, plans, topic_tasks(ctx, plans, seed), rank_of, train,  # type: ignore[arg-type]
        lambda rank: {"lr": rank_lr(ctx.train.lr, rank)}, seed,  # type: ignore[arg-type]
    )


SPLIT = SplitDef(
    name="rank",
    behaviour="hidden-topic",
    question=QUESTION,
    subjects="topics",
    build=build,
    description=f"hidden topics trained at LoRA ranks {', '.join(map(str, RANKS))} (alpha = 2 x rank)",
)
