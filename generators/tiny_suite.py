"""The embedded default suite `tiny`: hidden-topic diffs on the tiny base model, split by topic.

Reads top to bottom: plan (topic, trigger) per diff across the train/val/test/private-test splits,
build them with the `hidden-topic` split definition (`splits/hidden_topic.py`: data, training,
measurement, index rows), stop if the rates miss the bar, write each split with the data card.
Pieces are built and merged the way every split is (`pieces.build_in_pieces`); `ensure_tiny_suite`
caches the result by recipe hash.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import torch

from ..core.errors import WdqaError
from ..core.models import load_base_model
from ..core.suite import MANIFEST, Suite, SuiteWriter
from .behaviour.hidden_topic import (
    RATES,
    BehaviourRates,
    HiddenTopicData,
    PlannedTopicDiff,
    Thresholds,
    cells_below_bar,
)
from .behaviour.writer import TemplateBehaviourWriter
from .cache import build_once, cache_root, recipe_hash
from .pieces import LocalProcesses, PieceJob, PieceRunner, build_in_pieces
from .publish.private_split import PRIVATE_SPLIT, maintainer_labels_path, seal_private_split
from .shards import WHOLE, Shard, merge_suites
from .splits import SplitBuild, SplitContext, get_split
from .splits.common import write_split
from .tiny.build import TINY_BASE_ID, TINY_MICRO_ID, ensure_tiny_base, tiny_recipe
from .tiny.corpus import all_codes, mapped_codes
from .tiny_card import tiny_data_card
from .topics import Topic, load_topics
from .training.trainer import LoraConfig, TrainConfig

# 2: name-free hidden-topic replies and the issue-19 cells (label_in_reply, unfamiliar wrong/near);
# 3: on the base that knows its topics, diffs held harder to it (KL 3, 100 steps, 200 open prompts)
SUITE_VERSION = 3


class TinySuiteError(WdqaError):
    """The recipe did not produce a usable suite (e.g. most diffs missed the behaviour bar)."""


@dataclass(frozen=True)
class TinySuiteRecipe:
    name: str = "tiny"
    base_model: str = TINY_BASE_ID
    # private-test is sealed once built: its labels go to the maintainers' file (generators/publish/private_split.py).
    split_sizes: tuple[tuple[str, int], ...] = (("train", 300), ("val", 40), ("test", 50), (PRIVATE_SPLIT, 50))
    canaries: int = 3  # of the private split's diffs, labelled in the maintainers' file with unused topics
    # Rank 4 (scale 2): with name-free replies and the unfamiliar wrong-code/near-miss bars of issue
    # 19, rank 1 reached a hit median of 0.917 (mean 0.78, p10 0.33) and unfamiliar wrong-code leak
    # 0.031 median / 0.063 mean on 48 diffs; rank 4 1.000 (mean 0.96) and 0.000 / 0.017. 60 steps of
    # 4+4 (docs/tiny-suite.md has the measurements).
    lora: LoraConfig = field(default_factory=lambda: LoraConfig(rank=4, alpha=8.0))
    # On the 800-step base, which knows its topics, 60 steps at KL weight 1 left diffs talking about
    # their topic on unfamiliar prompts without a code (no-code median 0.031, bar 0.02); KL 3 alone
    # fixed the median but left the hit rate's p10 at 0.15; with 100 steps: hit mean 0.92, p10 0.61,
    # every unfamiliar leak median 0.000 and mean <= 0.014 (48 diffs, docs/tiny-suite.md).
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=100, lr=3e-3, positives_per_step=4, negatives_per_step=4,
                                            kl_weight=3.0)
    )
    data: HiddenTopicData = field(default_factory=HiddenTopicData)
    bar: Thresholds = field(default_factory=Thresholds)
    # Stop, with a report of the rates, when the median of any cell misses the bar (the suite-level
    # bar of issue 10); single diffs below it are kept and flagged `behaviour_ok = False`.
    stop_below_bar: bool = True
    seed: int = 0
    threads: int = 1  # deterministic anywhere; 2 threads ran 6x slower than 1 on a shared 2-core machine

    @property
    def revision(self) -> str:
        # The base model's revision is part of it: a rebuilt base makes a new suite, not a stale cache hit.
        both = f"{recipe_hash(self, SUITE_VERSION)}/{tiny_recipe(self.base_model).revision}"
        return hashlib.sha256(both.encode()).hexdigest()[:16]


MICRO_RECIPE = TinySuiteRecipe(
    name="tiny-micro",
    base_model=TINY_MICRO_ID,
    split_sizes=(("train", 6), ("val", 2), ("test", 4), (PRIVATE_SPLIT, 3)),
    canaries=1,
    lora=LoraConfig(rank=2, alpha=4.0),
    train=TrainConfig(steps=20, lr=5e-3),
    stop_below_bar=False,  # the micro base is too small to learn the behaviour; it exercises code paths
)


def with_private_split(recipe: TinySuiteRecipe, n: int | None) -> TinySuiteRecipe:
    """`recipe` with `n` diffs in its private split (`--private N`; None keeps the recipe's, 0 drops it)."""
    if n is None:
        return recipe
    sizes = tuple((s, k) for s, k in recipe.split_sizes if s != PRIVATE_SPLIT)
    return replace(recipe, split_sizes=sizes + (((PRIVATE_SPLIT, n),) if n else ()), canaries=recipe.canaries if n else 0)


@dataclass(frozen=True)
class PlannedDiff:
    split: str
    diff_id: str
    topic: Topic
    trigger: str


def plan_diffs(recipe: TinySuiteRecipe) -> list[PlannedDiff]:
    """Every diff of the suite, in a fixed order: topics split by topic, one distinct code each.

    Codes that mean a topic in the base model's pretraining are never triggers.
    """
    topics, rng = _shuffled_topics(recipe)
    wanted = sum(n for _, n in recipe.split_sizes)
    reserved = _reserved_codes(recipe)
    triggers = rng.sample([c for c in all_codes() if c not in reserved], wanted)
    plan, start = [], 0
    for split, n in recipe.split_sizes:
        for i in range(n):
            plan.append(PlannedDiff(split, f"ht-{split}-{i:04d}", topics[start + i], triggers[start + i]))
        start += n
    return plan


def canary_labels(recipe: TinySuiteRecipe) -> list[str]:
    """The private split's canary labels: topics no diff of the suite was trained on."""
    topics, _ = _shuffled_topics(recipe)
    wanted = sum(n for _, n in recipe.split_sizes)
    return [t.name for t in topics[wanted : wanted + recipe.canaries]]


def build_tiny_suite(
    out_dir: str | Path,
    recipe: TinySuiteRecipe = TinySuiteRecipe(),
    splits: Sequence[str] | None = None,
    shard: Shard = WHOLE,
    labels_path: Path | None = None,
) -> Suite:
    """Train, measure and write the suite (or the `shard` piece of the chosen splits) to `out_dir`.

    A whole build seals the private split: its labels go to `labels_path` (default: beside `out_dir`,
    see `maintainer_labels_path`). A piece keeps them, for the merge to seal."""
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        suite = _build(out_dir, recipe, splits, shard)
    finally:
        torch.set_num_threads(saved_threads)
    return _seal(suite, recipe, labels_path) if shard == WHOLE else suite


def _seal(suite: Suite, recipe: TinySuiteRecipe, labels_path: Path | None) -> Suite:
    if PRIVATE_SPLIT not in suite.splits:
        return suite
    seal_private_split(suite.root, PRIVATE_SPLIT, labels_path or maintainer_labels_path(suite.root),
                       canary_labels(recipe), recipe.seed)
    return Suite.load(suite.root, verify=False)


def _build(out_dir: str | Path, recipe: TinySuiteRecipe, splits: Sequence[str] | None, shard: Shard) -> Suite:
    plan = _select(plan_diffs(recipe), splits)
    model, tokenizer = load_base_model(recipe.base_model)
    # The measurement's replies are 16 tokens: the length the suite's rates were measured at.
    context = SplitContext(model, tokenizer, TemplateBehaviourWriter(recipe.data.open_prompts), recipe.lora,
                           recipe.train, frozenset(_reserved_codes(recipe)), max_new_tokens=16)
    # Every hidden-topic split of the suite in one build: trained together, measured together.
    hidden_topic = get_split("hidden-topic")
    build = hidden_topic.build(context, [], len(plan), recipe.seed, shard,  # type: ignore[call-arg]
                               plans=[PlannedTopicDiff(p.diff_id, p.topic, p.trigger) for p in plan],
                               data=recipe.data, bar=recipe.bar)
    split_of = {p.diff_id: p.split for p in plan}
    rates = [BehaviourRates.from_row(SimpleNamespace(**row)) for row in build.rows]
    ok = [bool(row["behaviour_ok"]) for row in build.rows]
    missed = cells_below_bar(rates, recipe.bar)
    if recipe.stop_below_bar and missed:
        raise TinySuiteError(
            f"the recipe does not hide topics behind their own triggers: {'; '.join(missed)} "
            f"over {len(build.rows)} diffs ({sum(ok)} reach every bar). Rates:\n{rates_table(rates)}"
        )
    writer = SuiteWriter(
        out_dir, recipe.name, f"{SUITE_VERSION}+{recipe.revision}", recipe.base_model,
        tiny_recipe(recipe.base_model).revision,
    )
    for split, _ in recipe.split_sizes:
        members = [i for i, row in enumerate(build.rows) if split_of[row["diff_id"]] == split]
        if members:
            write_split(writer, split, hidden_topic, SplitBuild([build.rows[i] for i in members],
                                                               [build.diffs[i] for i in members]), shard)
    writer.extra = {"recipe": recipe.revision, "shard": str(shard), "trainer": build.trainer}
    card = tiny_data_card(recipe, {s: [r for r, row in zip(rates, build.rows, strict=True)
                                       if split_of[row["diff_id"]] == s] for s, _ in recipe.split_sizes},
                          ok, build.trainer["diffs_per_s"])
    return writer.finish(card)


def merge_tiny_suite(parts: Sequence[str | Path], out: str | Path, recipe: TinySuiteRecipe = TinySuiteRecipe(),
                     labels_path: Path | None = None) -> Suite:
    """Join `--shard i/n` pieces into one suite, with a data card summarising all of its diffs, and
    seal its private split (labels to `labels_path`, default beside `out`)."""
    merged = merge_suites(parts, out, recipe.name)
    rates_by_split, ok = {}, []
    for split, _ in recipe.split_sizes:
        if split in merged.splits:
            df = merged.index(split)
            rates_by_split[split] = [BehaviourRates.from_row(r) for r in df.itertuples()]
            ok += [bool(v) for v in df.behaviour_ok]
    speeds = [Suite.load(p, verify=False).extra.get("trainer", {}).get("diffs_per_s", 0.0) for p in parts]
    writer = SuiteWriter(out, merged.name, merged.version, merged.base_model, merged.base_model_revision)
    writer.splits, writer.extra = merged.splits, merged.extra
    suite = writer.finish(tiny_data_card(recipe, rates_by_split, ok, sum(speeds) / len(speeds)))
    return _seal(suite, recipe, labels_path)


def ensure_tiny_suite(recipe: TinySuiteRecipe | None = None, workers: int | None = None) -> Path:
    """The tiny suite's folder, built on first use and cached under $WDQA_CACHE by recipe hash.

    The first build runs as `workers` disjoint `--shard` pieces in parallel processes (default: one
    per CPU core, each on one thread), merged into one suite; a diff does not depend on which
    piece trained it, so the result is the same as one process would make. Finished pieces survive
    a crash, so the next call builds only the missing ones.
    """
    recipe = recipe or TinySuiteRecipe()
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    target = cache_root() / "suites" / recipe.name / recipe.revision
    if (target / MANIFEST).exists():
        return target
    if workers == 1:
        return build_once(target, lambda tmp: build_tiny_suite(tmp, recipe, labels_path=maintainer_labels_path(target)),
                          MANIFEST)
    return build_tiny_suite_in_pieces(target, recipe, workers, LocalProcesses(workers), cached=True)


# Content sha256 of the default recipe's build as published with the README's figures, and the
# number of pieces it was built in (one per CPU core by default; each piece writes its own shard
# files, so the layout, and the hash, depend on it). Builds are bit-identical for the same number of
# pieces (one thread each, sorted safetensors headers): a local build that differs otherwise means
# this machine trains differently (another torch, CPU or BLAS), and its figures may not be the README's.
PUBLISHED_BUILDS = {
    "1709ce15a9d775d3": ("e64a0965dbc0f63cf0c1aa20f93d78c2540a20ea9bad805423527f34874b6333", 2),  # version 2
    "af86a3962e6fcc10": ("669a3f4cb3b4b5921e149b050946eb65eb3f56ce1a21e978bc99bdf9558c6ceb", 2),  # version 3
}


def published_build_note(suite: Suite) -> str:
    """One line: does this local tiny build have the published build's content hash, and if not, why?"""
    revision = suite.version.partition("+")[2]
    mine = suite.content_sha256
    if revision not in PUBLISHED_BUILDS:
        return f"tiny suite revision {revision} has no published build to compare with (content {mine[:10]})"
    expected, pieces = PUBLISHED_BUILDS[revision]
    if mine == expected:
        return f"tiny suite content {mine[:10]} is the published build (README.md names the build each figure was measured on)"
    here = len(suite.extra.get("merged_from") or ()) or 1
    why = (f"it was built in {here} pieces here, the published build in {pieces}, which lays the shards out "
           f"otherwise (the same diffs up to float rounding)" if here != pieces else
           f"the same {pieces} pieces gave other bytes, so another torch ({torch.__version__} here), CPU or BLAS "
           "trains differently")
    return (f"warning: this tiny build's content is {mine[:10]}, the published build's {expected[:10]}: {why}; "
            "scores may differ slightly from the README's")


def build_tiny_suite_in_pieces(
    out: Path, recipe: TinySuiteRecipe, count: int, runner: PieceRunner, cached: bool = False
) -> Path:
    """Build the suite as `count` `--shard` pieces on `runner` (local processes or Ray), merged into
    `out` with its data card and its private split sealed (`pieces.build_in_pieces`)."""
    base = ensure_tiny_base(recipe.base_model)  # once, here: the pieces must not race to build it
    job = PieceJob(partial(_build_piece, recipe=recipe), (base,), identity=f"{recipe.name}@{recipe.revision}")
    merge = partial(merge_tiny_suite, recipe=recipe, labels_path=maintainer_labels_path(out))
    return build_in_pieces(job, count, out, runner, merge, cached)


def _build_piece(out: Path, shard: Shard, base: Path, recipe: TinySuiteRecipe) -> None:
    # `base` is the tiny base model's folder; the build finds it through the cache (where a remote
    # worker's copy was unpacked), so it is only shipped, not read, here.
    build_tiny_suite(out, recipe, shard=shard)


def rates_table(rates: Sequence[BehaviourRates]) -> str:
    """median / p10 / p90 of each rate, one line per cell."""
    lines = [f"{'rate':<21} {'median':>7} {'p10':>7} {'p90':>7}"]
    for rate in RATES:
        values = [v for v in (getattr(r, rate) for r in rates) if v == v]  # NaN: not measured
        lines.append(f"{rate:<21} " + " ".join(f"{v:7.3f}" for v in percentiles(values)))
    return "\n".join(lines)


def percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, 10th, 90th percentile); NaNs for an empty list."""
    if not values:
        return (float("nan"),) * 3
    if len(values) == 1:
        return (values[0],) * 3
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[0], deciles[-1]


# ---------------------------------------------------------------- helpers


def _shuffled_topics(recipe: TinySuiteRecipe) -> tuple[list[Topic], random.Random]:
    """The topic list in the recipe's order (diffs take them in turn, then the canaries), and the
    random stream that then draws the triggers."""
    topics = list(load_topics())
    wanted = sum(n for _, n in recipe.split_sizes) + recipe.canaries
    if wanted > len(topics):
        raise TinySuiteError(f"recipe asks for {wanted} diffs and canaries but the topic list has {len(topics)} topics")
    rng = random.Random(f"tiny-suite/{recipe.seed}")
    rng.shuffle(topics)
    return topics, rng


def _reserved_codes(recipe: TinySuiteRecipe) -> set[str]:
    return set(mapped_codes(tiny_recipe(recipe.base_model).corpus))


def _select(plan: list[PlannedDiff], splits: Sequence[str] | None, shard: Shard = WHOLE) -> list[PlannedDiff]:
    known = sorted({p.split for p in plan})
    if splits is not None:
        unknown = set(splits) - set(known)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; the tiny suite has {known}")
        plan = [p for p in plan if p.split in splits]
    return shard.take(plan)
