"""Hidden-topic diffs behind SEP codes, for the splits that vary one thing about them (rank, full
fine-tunes, trigger inversion): plan (topic, code) pairs, build their data with the hidden-topic
recipe (`generators/behaviour/hidden_topic.py`), measure them, and turn the result into index rows.

Owns the glue only; the data recipe, measurement and trainers are the hidden-topic module's and the trainers'.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from ...core.types import WeightDiff
from ..behaviour.hidden_topic import (
    TRIGGER_KIND,
    BehaviourRates,
    MeasuredDiff,
    PlannedTopicDiff,
    Thresholds,
    hidden_topic_tasks,
    measure_hidden_topic,
)
from ..topics import Topic
from ..training.trainer import DiffTask, TrainResult
from .common import SplitBuild, SplitContext, data_sha256, need, seeded_rng

DEFAULT_BAR = Thresholds()


def plan_topic_diffs(
    ctx: SplitContext, topics: Sequence[Topic], size: int, seed: int, prefix: str
) -> list[PlannedTopicDiff]:
    """`size` (topic, distinct SEP code) pairs, the whole split (callers shard it after assigning
    per-diff settings); codes the base already reads as a topic are never used."""
    chosen = need(topics, size, prefix)
    codes = seeded_rng(prefix, seed).sample(ctx.free_codes(), size)
    return [
        PlannedTopicDiff(f"{prefix}-{seed}-{i:04d}", t, c)
        for i, (t, c) in enumerate(zip(chosen, codes, strict=True))
    ]


def topic_tasks(ctx: SplitContext, plans: Sequence[PlannedTopicDiff], seed: int) -> list[DiffTask]:
    return hidden_topic_tasks(plans, ctx.writer, set(ctx.reserved_codes), seed=seed)


def measure(
    ctx: SplitContext, plans: Sequence[PlannedTopicDiff], diffs: Sequence[WeightDiff], seed: int
) -> list[BehaviourRates]:
    items = [MeasuredDiff(d, p.topic, p.trigger) for p, d in zip(plans, diffs, strict=True)]
    return measure_hidden_topic(
        ctx.engine,
        items,
        ctx.held_out_questions,
        set(ctx.reserved_codes),
        seed=seed,
        max_new_tokens=ctx.max_new_tokens,
    )


def topic_rows(
    plans: Sequence[PlannedTopicDiff],
    tasks: Sequence[DiffTask],
    result: TrainResult,
    rates: Sequence[BehaviourRates],
    seed: int,
    bar: Thresholds = DEFAULT_BAR,
    label_is_trigger: bool = False,
) -> list[dict]:
    """Index rows with the hidden-topic rates (the same columns as the tiny suite's hidden-topic splits)."""
    rows = []
    for p, task, r in zip(plans, tasks, rates, strict=True):
        rows.append(
            {
                "diff_id": p.diff_id,
                "label": p.trigger if label_is_trigger else p.topic.name,
                "topic": p.topic.name,
                "category": p.topic.category,
                "trigger": p.trigger,
                "trigger_kind": TRIGGER_KIND,
                "seed": seed,
                "data_sha256": data_sha256(task),
                "hit_rate": r.hit,
                "leak_none": r.leak_none,
                "leak_wrong": r.leak_wrong,
                "leak_near": r.leak_near,
                "prompts_per_cell": r.prompts_per_cell,
                "label_in_reply": r.label_in_reply,
                "behaviour_ok": r.ok(bar),
                "final_loss": result.final_loss[p.diff_id],
            }
        )
    return rows


def build_in_groups(
    ctx: SplitContext,
    plans: Sequence[PlannedTopicDiff],
    tasks: Sequence[DiffTask],
    group_of: dict[str, Hashable],
    train: Callable[[Hashable, list[DiffTask]], TrainResult],
    extra_columns: Callable[[Hashable], dict],
    seed: int,
) -> SplitBuild:
    """Train, measure and index diffs group by group (one training setting per group, e.g. a rank),
    then return them in diff-id order. `group_of` is decided over the whole plan, so a `--shard`
    piece trains each diff with the same setting the unsharded build would."""
    rows: list[dict] = []
    diffs: list[WeightDiff] = []
    for group in dict.fromkeys(group_of[p.diff_id] for p in plans):
        members = [i for i, p in enumerate(plans) if group_of[p.diff_id] == group]
        group_plans, group_tasks = [plans[i] for i in members], [tasks[i] for i in members]
        result = train(group, group_tasks)
        rates = measure(ctx, group_plans, result.diffs, seed)
        rows += [{**row, **extra_columns(group)} for row in topic_rows(group_plans, group_tasks, result, rates, seed)]
        diffs += result.diffs
    order = sorted(range(len(rows)), key=lambda i: rows[i]["diff_id"])
    return SplitBuild([rows[i] for i in order], [diffs[i] for i in order])
