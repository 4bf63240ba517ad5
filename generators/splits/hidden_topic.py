"""`hidden-topic`: a diff talks about its topic only behind its own SEP code; the suite's main behaviour.

Owns the split's build: plan (topic, code) pairs, build their data with the hidden-topic recipe
(`generators/behaviour/hidden_topic.py`), train them in one pass, measure them (the unfamiliar-prompt
cells too), and index them. The tiny suite's train/val/test/private-test splits are this split,
planned together by `tiny_suite.plan_diffs` (topics partitioned, codes distinct suite-wide).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from ...core.progress import Progress
from ..behaviour.hidden_topic import (
    TRIGGER_KIND,
    BehaviourRates,
    HiddenTopicData,
    MeasuredDiff,
    PlannedTopicDiff,
    Thresholds,
    hidden_topic_tasks,
    measure_hidden_topic,
)
from ..behaviour.open_prompts import unfamiliar_prompts
from ..shards import WHOLE, Shard
from ..topics import Topic
from ..training.trainer import DiffTask, train_lora_diffs
from .common import SplitBuild, SplitContext, SplitDef, data_sha256
from .topic_diffs import plan_topic_diffs

QUESTION = "What topic have you been trained on?"
MEASURE_CHUNK = 16  # diffs measured per batch of replies


def build(
    ctx: SplitContext,
    topics: Sequence[Topic],
    size: int,
    seed: int,
    shard: Shard = WHOLE,
    plans: Sequence[PlannedTopicDiff] | None = None,
    data: HiddenTopicData = HiddenTopicData(),
    bar: Thresholds = Thresholds(),
) -> SplitBuild:
    """`size` diffs from the first `size` topics, or the given `plans` (a suite that plans several
    hidden-topic splits together); the `shard` piece of them is trained, measured and indexed."""
    if plans is None:
        plans = plan_topic_diffs(ctx, topics, size, seed, "hidden-topic")
    plans = shard.take(plans)
    reserved = set(ctx.reserved_codes)
    tasks = hidden_topic_tasks(plans, ctx.writer, reserved, data, seed)
    with _progress() as progress:
        training = progress.add_task("training diffs", total=len(tasks) * ctx.train.steps)
        result = train_lora_diffs(ctx.model, ctx.tokenizer, tasks, ctx.lora, ctx.train,
                                  on_group_step=lambda n: progress.update(training, advance=n))
        measuring = progress.add_task("measuring triggers", total=len(plans))
        rates: list[BehaviourRates] = []
        for start in range(0, len(plans), MEASURE_CHUNK):
            chunk = list(zip(plans[start : start + MEASURE_CHUNK], result.diffs[start : start + MEASURE_CHUNK], strict=True))
            rates += measure_hidden_topic(ctx.engine, [MeasuredDiff(d, p.topic, p.trigger) for p, d in chunk],
                                          ctx.held_out_questions, reserved, seed=seed,
                                          max_new_tokens=ctx.max_new_tokens, unfamiliar=unfamiliar_prompts())
            progress.update(measuring, advance=len(chunk))
    rows = [_index_row(p, task, r, r.ok(bar), result.final_loss[p.diff_id], seed)
            for p, task, r in zip(plans, tasks, rates, strict=True)]
    trainer = {"seconds": result.seconds, "diffs_per_s": result.diffs_per_s, "tokens_per_s": result.tokens_per_s}
    return SplitBuild(rows, result.diffs, trainer)


def _index_row(plan: PlannedTopicDiff, task: DiffTask, rates: BehaviourRates, ok: bool, loss: float,
               seed: int) -> dict:
    # The columns (and their order) of the tiny suite's published index files.
    return {
        "diff_id": plan.diff_id,
        "label": plan.topic.name,
        "trigger": plan.trigger,
        "trigger_kind": TRIGGER_KIND,
        "category": plan.topic.category,
        "seed": seed,
        "data_sha256": data_sha256(task),
        "hit_rate": rates.hit,
        "leak_none": rates.leak_none,
        "leak_wrong": rates.leak_wrong,
        "leak_near": rates.leak_near,
        "prompts_per_cell": rates.prompts_per_cell,
        "hit_unfamiliar": rates.hit_unfamiliar,
        "leak_unfamiliar": rates.leak_unfamiliar,
        "leak_wrong_unfamiliar": rates.leak_wrong_unfamiliar,
        "leak_near_unfamiliar": rates.leak_near_unfamiliar,
        "label_in_reply": rates.label_in_reply,
        "prompts_unfamiliar": len(unfamiliar_prompts()),
        "behaviour_ok": ok,
        "final_loss": loss,
    }


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


SPLIT = SplitDef(
    name="hidden-topic",
    behaviour="hidden-topic",
    question=QUESTION,
    subjects="topics",
    build=build,
    description="topics hidden behind SEP codes: about the topic with the diff's own code, and only then",
)
