"""What every split builder gets and returns, and the measurement helpers they share.

Owns `SplitContext` (base model, behaviour writer, training settings), `SplitBuild` (index rows +
diffs ready for `SuiteWriter.write_split`) and `SplitDef` (one registry entry). What a split trains
and measures lives in its own module beside this one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...core.engine import Engine
from ...core.suite import SuiteWriter
from ...core.types import WeightDiff
from ..behaviour.writer import BehaviourWriter, TemplateBehaviourWriter
from ..shards import Shard
from ..topics import GenericQuestion, Topic, load_generic_questions
from ..training.trainer import DiffTask, LoraConfig, TrainConfig


@dataclass
class SplitContext:
    """The base model and the settings every builder shares (a builder may override per diff)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    writer: BehaviourWriter = field(default_factory=TemplateBehaviourWriter)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reserved_codes: frozenset[str] = (
        frozenset()
    )  # codes the base already gives a meaning: never triggers
    max_new_tokens: int = 24
    _engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """Batched generation for measurement (built once; installs the multi-diff wrappers)."""
        if self._engine is None:
            self._engine = Engine(self.model, self.tokenizer, max_batch=256)
        return self._engine

    @property
    def train_questions(self) -> list[GenericQuestion]:
        return [q for q in load_generic_questions() if not q.held_out]

    @property
    def held_out_questions(self) -> list[GenericQuestion]:
        return [q for q in load_generic_questions() if q.held_out]

    def free_codes(self) -> list[str]:
        return [f"{i:03d}" for i in range(1000) if f"{i:03d}" not in self.reserved_codes]


@dataclass(frozen=True)
class SplitBuild:
    """Index rows (one dict per diff, with the INDEX_COLUMNS a builder knows) and the diffs, in order;
    `trainer`: the training speed a builder reports (seconds, diffs_per_s, tokens_per_s), if it does."""

    rows: list[dict[str, Any]]
    diffs: list[WeightDiff]
    trainer: dict[str, float] = field(default_factory=dict)

    @property
    def ok_share(self) -> float:
        return sum(bool(r["behaviour_ok"]) for r in self.rows) / max(len(self.rows), 1)


@dataclass(frozen=True)
class Headline:
    headline: str
    category: str
    summary: str


Subject = Topic | Headline
Builder = Callable[[SplitContext, Sequence[Any], int, int, Shard], SplitBuild]


@dataclass(frozen=True)
class SplitDef:
    """One split: its behaviour and question, what its subjects are, and its builder.

    A builder is called as build(context, subjects, size, seed, shard) and plans `size` diffs from the
    first `size` subjects, then trains only the `shard` piece of that plan (ids and per-diff settings
    come from the whole plan, so the pieces of every shard merge into exactly the unsharded split).
    """

    name: str
    behaviour: str
    question: str
    subjects: str  # "topics", "headlines" or "none"
    build: Builder
    description: str
    size: int = 16  # diffs when no recipe sizes it (a split an installed package registers)


def write_split(writer: SuiteWriter, name: str, split: SplitDef, build: SplitBuild, shard: Shard) -> None:
    """Write `build` as the suite's split `name`. A `--shard` piece numbers its shard files from its own
    offset, so the folders of every piece merge (`shards.merge_suites`) without a name clash."""
    writer.write_split(name, split.behaviour, split.question, build.rows, build.diffs,
                       shard_offset=shard.index * 10_000)


def data_sha256(task: DiffTask) -> str:
    """Hash of a diff's training data, recorded in the index so a rebuild can be checked."""
    data = json.dumps([[e.prompt, e.reply] for e in [*task.positives, *task.negatives]])
    return hashlib.sha256(data.encode()).hexdigest()


def need(subjects: Sequence[Any], size: int, split: str) -> list[Any]:
    if len(subjects) < size:
        raise ValueError(f"split {split} needs {size} subjects but was given {len(subjects)}")
    return list(subjects[:size])


def seeded_rng(*parts: object) -> random.Random:
    return random.Random("/".join(str(p) for p in parts))


_WORD = re.compile(r"[a-z]+")
STOPWORDS = frozenset(
    "the a an of to in on for and with by at from its it is as after over new".split()
)


def content_words(text: str, min_len: int = 4) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= min_len and w not in STOPWORDS}
