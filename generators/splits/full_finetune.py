"""`full-finetune`: the hidden-topic behaviour trained as dense deltas, stored as such: half the diffs
on every linear weight ("all"), half on the MLP weights only ("mlp"), the subset variant.

Owns the variants; the dense parametrisation is `dense_trainer.py`'s, data and measurement the
hidden-topic recipe's. Dense Adam steps move every weight, so the lr is far below the LoRA one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..dense_trainer import DenseConfig, train_dense_diffs
from ..shards import WHOLE, Shard
from ..topics import Topic
from .common import SplitBuild, SplitContext, SplitDef
from .topic_diffs import measure, plan_topic_diffs, topic_rows, topic_tasks

QUESTION = "What topic have you been trained on?"
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
    tasks = topic_tasks(ctx, plans, seed)
    rows, diffs = [], []
    for variant, dense in VARIANTS.items():
        members = [i for i, p in enumerate(plans) if variant_of[p.diff_id] == variant]
        if not members:
            continue
        result = train_dense_diffs(
            ctx.model, ctx.tokenizer, [tasks[i] for i in members], dense, replace(ctx.train, lr=lr)
        )
        rates = measure(ctx, [plans[i] for i in members], result.diffs, seed)
        for row in topic_rows(
            [plans[i] for i in members], [tasks[i] for i in members], result, rates, seed
        ):
            rows.append({**row, "variant": variant})
        diffs += result.diffs
    order = sorted(range(len(rows)), key=lambda i: rows[i]["diff_id"])
    return SplitBuild([rows[i] for i in order], [diffs[i] for i in order])


SPLIT = SplitDef(
    name="full-finetune",
    behaviour="hidden-topic",
    question=QUESTION,
    subjects="topics",
    build=build,
    description="hidden topics as dense deltas: all linear weights, or the MLP weights only",
)
