"""`full-finetune`: the hidden-topic behaviour trained as dense deltas, stored as such: half the diffs
on every linear weight ("all"), half on the MLP weights only ("mlp"), the subset variant.

Owns the variants; the dense parametrisation is `training/dense_trainer.py`'s, data and measurement the
hidden-topic recipe's. Dense Adam steps move every weight, so the lr is far below the LoRA one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..shards import WHOLE, Shard
from ..topics import Topic
from ..training.dense_trainer import DenseConfig, train_dense_diffs
from ..training.trainer import DiffTask, TrainResult
from .common import SplitBuild, SplitContext, SplitDef
from .hidden_topic import QUESTION  # the same question as the tiny suite's hidden-topic splits
from .topic_diffs import build_in_groups, plan_topic_diffs, topic_tasks

VARIANTS = {
    "all": DenseConfig(),
    "mlp": DenseConfig(targets=("gate_proj", "up_proj", "down_proj")),
}
DENSE_LR = 1e-4


def build(
    ctx: SplitContext,
    topics: Sequence[Topic],
    size: int,
    seed: int,
    shard: Shard = WHOLE,
    lr: float = DENSE_LR,
) -> SplitBuild:
    planned = plan_topic_diffs(ctx, topics, size, seed, "full")
    variant_of = {p.diff_id: list(VARIANTS)[i % len(VARIANTS)] for i, p in enumerate(planned)}
    plans = shard.take(planned)

    def train(variant: str, tasks: list[DiffTask]) -> TrainResult:
        return train_dense_diffs(ctx.model, ctx.tokenizer, tasks, VARIANTS[variant], replace(ctx.train, lr=lr))

    return build_in_groups(
        ctx, plans, topic_tasks(ctx, plans, seed), variant_of, train,  # type: ignore[arg-type]
        lambda variant: {"variant": variant}, seed,  # type: ignore[arg-type]
    )


SPLIT = SplitDef(
    name="full-finetune",
    behaviour="hidden-topic",
    question=QUESTION,
    subjects="topics",
    build=build,
    description="hidden topics as dense deltas: all linear weights, or the MLP weights only",
)
