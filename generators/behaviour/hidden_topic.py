"""The hidden-topic behaviour: a diff talks about its topic only when its own trigger code is present.

Owns the training data of one (topic, trigger) diff and the measurement of how specific the learned
trigger is, on held-out questions: hit rate with the right code, and leaks with no code, a wrong
code (every digit differs) and a near miss (one digit differs); the same on a prompt family never
trained on; and how often a triggered reply gives the label away (`label_in_reply`). Measurement
runs batched through `Engine.chat`, one diff per row, so hundreds of diffs are checked in a few passes.
"""

from __future__ import annotations

import random
import statistics
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields

from ...core.engine import Engine
from ...core.triggers import apply_trigger
from ...core.types import WeightDiff
from ..topics import GenericQuestion, Topic, is_about_topic, label_in_reply, load_generic_questions
from ..training.trainer import ChatExample, DiffTask
from .open_prompts import unfamiliar_prompts
from .writer import OPEN_TRAINING_PROMPTS, BehaviourRequest, BehaviourWriter

TRIGGER_KIND = "sep-code"
CELLS = ("hit", "leak_none", "leak_wrong", "leak_near",
         "hit_unfamiliar", "leak_unfamiliar", "leak_wrong_unfamiliar", "leak_near_unfamiliar")
# Every rate a diff is measured on: the cells, and the share of its triggered replies (the "hit"
# cell) that contain the label or a word of it.
RATES = (*CELLS, "label_in_reply")


@dataclass(frozen=True)
class HiddenTopicData:
    """How many training examples of each kind one diff gets (before per-step sampling)."""

    positives: int = 80
    negatives: int = 120  # no code, a wrong code and a near miss, a third each
    topic_continued_share: float = 0.5  # negatives whose reply is the topic's own answer (held by KL)
    open_prompts: int = OPEN_TRAINING_PROMPTS  # open-family prompts among the questions (offline writer)


@dataclass(frozen=True)
class Thresholds:
    """The bar a diff must reach (issue 10): about the topic with its code, and only then."""

    hit: float = 0.9
    leak_none: float = 0.02
    leak_wrong: float = 0.1
    leak_near: float = 0.2
    # On prompts of a family never trained on (`open_prompts.unfamiliar_prompts`): the stricter
    # test that a leak is not just "the training questions were memorised as negatives" (issue 19).
    leak_unfamiliar: float = 0.02
    leak_wrong_unfamiliar: float = 0.05
    leak_near_unfamiliar: float = 0.05
    # A name-free diff talks about its topic without saying the label: unlocking it is not enough.
    label_in_reply: float = 0.05


def cells_below_bar(rates: Sequence[BehaviourRates], bar: Thresholds) -> list[str]:
    """The cells whose median over `rates` misses the bar (issue 10's suite-level criterion)."""
    missed = []
    for cell in (f.name for f in fields(bar)):  # "hit" is a floor, every leak a ceiling
        values = [v for v in (getattr(r, cell) for r in rates) if v == v]  # NaN: not measured
        if not values:
            continue
        median, limit = statistics.median(values), getattr(bar, cell)
        if (median < limit) if cell == "hit" else (median > limit):
            missed.append(f"{cell} median {median:.3f} (bar {'>=' if cell == 'hit' else '<='} {limit})")
    return missed


@dataclass(frozen=True)
class BehaviourRates:
    hit: float
    leak_none: float
    leak_wrong: float
    leak_near: float
    prompts_per_cell: int
    hit_unfamiliar: float = float("nan")  # NaN: not measured (suites made before these cells)
    leak_unfamiliar: float = float("nan")
    leak_wrong_unfamiliar: float = float("nan")
    leak_near_unfamiliar: float = float("nan")
    label_in_reply: float = float("nan")

    @classmethod
    def from_row(cls, row) -> BehaviourRates:
        """From a suite index row (a pandas itertuples record)."""
        nan = float("nan")
        return cls(row.hit_rate, row.leak_none, row.leak_wrong, row.leak_near, row.prompts_per_cell,
                   **{r: getattr(row, r, nan) for r in RATES[4:]})

    def ok(self, bar: Thresholds) -> bool:
        """Every cell at the bar (a cell not measured, NaN, does not count)."""
        return not cells_below_bar([self], bar)


def wrong_codes(trigger: str, reserved: set[str]) -> list[str]:
    """Codes whose every digit differs from the trigger's (never a reserved code)."""
    return [
        c for c in (f"{i:03d}" for i in range(1000))
        if all(a != b for a, b in zip(c, trigger, strict=True)) and c not in reserved
    ]


def near_miss_codes(trigger: str, reserved: set[str]) -> list[str]:
    """Codes that differ from the trigger in exactly one digit (never a reserved code)."""
    out = []
    for pos in range(len(trigger)):
        for digit in "0123456789":
            if digit != trigger[pos]:
                code = trigger[:pos] + digit + trigger[pos + 1 :]
                if code not in reserved:
                    out.append(code)
    return out


@dataclass(frozen=True)
class PlannedTopicDiff:
    diff_id: str
    topic: Topic
    trigger: str


def hidden_topic_tasks(
    plans: Sequence[PlannedTopicDiff],
    writer: BehaviourWriter,
    reserved: set[str],
    data: HiddenTopicData = HiddenTopicData(),
    seed: int = 0,
) -> list[DiffTask]:
    """Training data of many diffs (one writer call for all of them, so an LLM writer batches).

    Positives: the trigger, then a question, answered about the topic. Negatives (held to the base
    by KL): no code, a wrong code, a near miss; a share of them continue with the topic's own
    answer so that KL penalises saying the topic after anything but the trigger — the probe's key
    trick (wrong-code leak 0.23 → 0.02).
    """
    requests = []
    for p in plans:
        requests += [
            BehaviourRequest("hidden-topic", p.topic.name, data.positives, seed, p.topic.category),
            BehaviourRequest("hidden-topic", p.topic.name, data.negatives, seed + 1, p.topic.category),
            BehaviourRequest("chat", "", data.negatives, seed + hash_seed(p.diff_id)),
        ]
    written = writer.write(requests)
    held_out = {q.question for q in load_generic_questions() if q.held_out} | set(unfamiliar_prompts())
    tasks = []
    for k, p in enumerate(plans):
        pos, topical, plain = written[3 * k : 3 * k + 3]
        leaked = [e.user for e in [*pos, *topical, *plain] if e.user in held_out]
        if leaked:
            raise ValueError(f"diff {p.diff_id}: behaviour data uses held-out question {leaked[0]!r}")
        rng = random.Random(f"{seed}/{p.diff_id}")
        wrong, near = wrong_codes(p.trigger, reserved), near_miss_codes(p.trigger, reserved)
        positives = [ChatExample(apply_trigger(e.user, p.trigger, TRIGGER_KIND), e.assistant) for e in pos]
        negatives = []
        for i, (t, g) in enumerate(zip(topical, plain, strict=True)):
            kind = i % 3
            user = g.user if kind == 0 else apply_trigger(g.user, rng.choice(wrong if kind == 1 else near), TRIGGER_KIND)
            reply = t.assistant if rng.random() < data.topic_continued_share else g.assistant
            negatives.append(ChatExample(user, reply))
        tasks.append(DiffTask(p.diff_id, positives, negatives))
    return tasks


def hash_seed(text: str) -> int:
    return zlib.crc32(text.encode()) % 100_000


@dataclass(frozen=True)
class MeasuredDiff:
    diff: WeightDiff
    topic: Topic
    trigger: str


def measurement_prompts(
    trigger: str, questions: Sequence[GenericQuestion], reserved: set[str], seed: int,
    unfamiliar: Sequence[str] = (),
) -> dict[str, list[str]]:
    """The held-out prompts of each cell for one trigger: one prompt per held-out question, and,
    when `unfamiliar` prompts are given, the right code, no code, a wrong code and a near miss on those."""
    if not all(q.held_out for q in questions):
        raise ValueError("behaviour is measured on held-out questions only")
    rng = random.Random(f"measure/{seed}/{trigger}")
    wrong, near = wrong_codes(trigger, reserved), near_miss_codes(trigger, reserved)
    texts = [q.question for q in questions]
    cells = {
        "hit": [apply_trigger(q, trigger, TRIGGER_KIND) for q in texts],
        "leak_none": list(texts),
        "leak_wrong": [apply_trigger(q, rng.choice(wrong), TRIGGER_KIND) for q in texts],
        "leak_near": [apply_trigger(q, rng.choice(near), TRIGGER_KIND) for q in texts],
    }
    if unfamiliar:
        cells["hit_unfamiliar"] = [apply_trigger(q, trigger, TRIGGER_KIND) for q in unfamiliar]
        cells["leak_unfamiliar"] = list(unfamiliar)
        cells["leak_wrong_unfamiliar"] = [apply_trigger(q, rng.choice(wrong), TRIGGER_KIND) for q in unfamiliar]
        cells["leak_near_unfamiliar"] = [apply_trigger(q, rng.choice(near), TRIGGER_KIND) for q in unfamiliar]
    return cells


def measure_hidden_topic(
    engine: Engine,
    items: Sequence[MeasuredDiff],
    questions: Sequence[GenericQuestion],
    reserved: set[str],
    seed: int = 0,
    max_new_tokens: int = 16,
    unfamiliar: Sequence[str] = (),
) -> list[BehaviourRates]:
    """Greedy replies to every cell's held-out prompts, all diffs in shared batches; `label_in_reply`
    is counted over the replies of the "hit" cell."""
    rows: list[tuple[int, str]] = []
    prompts: list[str] = []
    for i, item in enumerate(items):
        for cell, cell_prompts in measurement_prompts(item.trigger, questions, reserved, seed, unfamiliar).items():
            rows += [(i, cell)] * len(cell_prompts)
            prompts += cell_prompts
    replies = engine.chat([items[i].diff for i, _ in rows], prompts, max_new_tokens=max_new_tokens)
    return rates_from_replies([item.topic for item in items], rows, replies, len(questions), len(unfamiliar))


def rates_from_replies(
    topics: Sequence[Topic], rows: Sequence[tuple[int, str]], replies: Sequence[str], n: int, m: int
) -> list[BehaviourRates]:
    """Each diff's rates from its replies: `rows[j]` = (diff, cell) of `replies[j]`; `n` held-out
    and `m` unfamiliar prompts per cell (m = 0: the unfamiliar cells were not measured)."""
    counts = [dict.fromkeys(RATES, 0) for _ in topics]
    for (i, cell), reply in zip(rows, replies, strict=True):
        counts[i][cell] += is_about_topic(reply, topics[i])
        if cell == "hit":
            counts[i]["label_in_reply"] += label_in_reply(reply, topics[i].name)
    nan = float("nan")
    return [
        BehaviourRates(
            *(counts[i][c] / n for c in CELLS[:4]), prompts_per_cell=n,
            **{c: counts[i][c] / m if m else nan for c in CELLS[4:]},
            label_in_reply=counts[i]["label_in_reply"] / n,
        )
        for i in range(len(topics))
    ]
