"""The embedded default suite `tiny`: hidden-topic diffs on the tiny base model, split by topic.

Reads top to bottom: plan (topic, trigger) per diff across the train/val/test/private-test splits,
build them with the `hidden-topic` split definition (`splits/hidden_topic.py`: data, training,
measurement, index rows), stop if the rates miss the bar, write each split with the data card.
The suite is built in fixed units (`unit_diffs` diffs of one split each), in parallel processes or
Ray tasks, and merged in one fixed order, so its bytes do not depend on how many workers built it;
`ensure_tiny_suite` builds the splits a command needs first (the rest only when asked for) and
caches the result by recipe hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import torch

from ..core.errors import WdqaError
from ..core.machine import build_machine, describe
from ..core.models import load_base_model
from ..core.suite import MANIFEST, Suite, SuiteWriter, atomic_write_text, rehash_manifest
from .behaviour.hidden_topic import (
    RATES,
    BehaviourRates,
    HiddenTopicData,
    PlannedTopicDiff,
    Thresholds,
    cells_below_bar,
)
from .behaviour.writer import TemplateBehaviourWriter
from .cache import cache_root, recipe_hash, replace_folder
from .pieces import LocalProcesses, PieceJob, PieceRunner, run_pieces
from .publish.private_split import PRIVATE_SPLIT, maintainer_labels_path, seal_private_split
from .shards import WHOLE, Shard, merge_suites
from .splits import SplitBuild, SplitContext, get_split
from .splits.common import write_split
from .tiny.build import TINY_BASE_ID, TINY_MICRO_ID, ensure_tiny_base, tiny_recipe, usable_cores
from .tiny.corpus import all_codes, mapped_codes
from .tiny_card import tiny_data_card
from .topics import Topic, load_topics
from .training.trainer import LoraConfig, TrainConfig

# 2: name-free hidden-topic replies and the issue-19 cells (label_in_reply, unfamiliar wrong/near);
# 3: on the base that knows its topics, diffs held harder to it (KL 3, 100 steps, 200 open prompts);
# 4: built in units of `unit_diffs` diffs per split (was: one piece per worker across all splits)
SUITE_VERSION = 4


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
    threads: int = 1  # per build process; a build runs one process per core instead (2 threads ran 6x slower)
    # Diffs per build unit: a unit is trained and measured on its own, so a split's bytes are the same
    # whichever splits, workers or order built it (a test split can be built first, alone). 25: two
    # units make the test split, one per core of a 2-core machine.
    unit_diffs: int = 25

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
    unit_diffs=2,  # several units per split, as the default recipe has
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
    piece: bool | None = None,
) -> Suite:
    """Train, measure and write the suite (or the `shard` piece of the chosen splits) to `out_dir`.

    A whole build checks the rates against the bar and seals the private split: its labels go to
    `labels_path` (default: beside `out_dir`, see `maintainer_labels_path`). A piece (`piece`,
    default: a shard other than the whole) does neither: the merge does, over every diff."""
    piece = shard != WHOLE if piece is None else piece
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        suite = _build(out_dir, recipe, splits, shard, check_bar=not piece)
    finally:
        torch.set_num_threads(saved_threads)
    return suite if piece else _seal(suite, recipe, labels_path)


def _seal(suite: Suite, recipe: TinySuiteRecipe, labels_path: Path | None) -> Suite:
    if PRIVATE_SPLIT not in suite.splits:
        return suite
    seal_private_split(suite.root, PRIVATE_SPLIT, labels_path or maintainer_labels_path(suite.root),
                       canary_labels(recipe), recipe.seed)
    return Suite.load(suite.root, verify=False)


def _build(out_dir: str | Path, recipe: TinySuiteRecipe, splits: Sequence[str] | None, shard: Shard,
           check_bar: bool) -> Suite:
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
    if check_bar:
        _check_bar(recipe, rates, ok)
    writer = SuiteWriter(
        out_dir, recipe.name, f"{SUITE_VERSION}+{recipe.revision}", recipe.base_model,
        tiny_recipe(recipe.base_model).revision,
    )
    for split, _ in recipe.split_sizes:
        members = [i for i, row in enumerate(build.rows) if split_of[row["diff_id"]] == split]
        if members:
            write_split(writer, split, hidden_topic, SplitBuild([build.rows[i] for i in members],
                                                               [build.diffs[i] for i in members]), shard)
    writer.extra = {"recipe": recipe.revision, "shard": str(shard), "trainer": build.trainer, "machine": build_machine()}
    card = tiny_data_card(recipe, {s: [r for r, row in zip(rates, build.rows, strict=True)
                                       if split_of[row["diff_id"]] == s] for s, _ in recipe.split_sizes},
                          ok, build.trainer["diffs_per_s"])
    return writer.finish(card)


def _check_bar(recipe: TinySuiteRecipe, rates: Sequence[BehaviourRates], ok: Sequence[bool]) -> None:
    missed = cells_below_bar(rates, recipe.bar)
    if recipe.stop_below_bar and missed:
        raise TinySuiteError(
            f"the recipe does not hide topics behind their own triggers: {'; '.join(missed)} "
            f"over {len(rates)} diffs ({sum(ok)} reach every bar). Rates:\n{rates_table(rates)}"
        )


def merge_tiny_suite(parts: Sequence[str | Path], out: str | Path, recipe: TinySuiteRecipe = TinySuiteRecipe(),
                     labels_path: Path | None = None) -> Suite:
    """Join `--shard i/n` pieces (or build units) into one suite, with a data card summarising all of
    its diffs; stop if their rates miss the bar; seal its private split (labels to `labels_path`,
    default beside `out`)."""
    merged = merge_suites(parts, out, recipe.name)
    rates_by_split, ok = {}, []
    for split, _ in recipe.split_sizes:
        if split in merged.splits:
            df = merged.index(split)
            rates_by_split[split] = [BehaviourRates.from_row(r) for r in df.itertuples()]
            ok += [bool(v) for v in df.behaviour_ok]
    _check_bar(recipe, [r for rates in rates_by_split.values() for r in rates], ok)
    speeds = [Suite.load(p, verify=False).extra.get("trainer", {}).get("diffs_per_s", 0.0) for p in parts]
    writer = SuiteWriter(out, merged.name, merged.version, merged.base_model, merged.base_model_revision)
    writer.splits, writer.extra = merged.splits, merged.extra
    suite = writer.finish(tiny_data_card(recipe, rates_by_split, ok, sum(speeds) / len(speeds)))
    return _seal(suite, recipe, labels_path)


@dataclass(frozen=True)
class BuildUnit:
    """`shard` of split `split`'s planned diffs: built on its own, in one process."""

    split: str
    shard: Shard

    @property
    def folder(self) -> str:
        return f"{self.split}-{self.shard.index:03d}-of-{self.shard.count:03d}"


def build_units(recipe: TinySuiteRecipe) -> list[BuildUnit]:
    """Every unit of the suite, in merge order: split by split (the recipe's order), then by shard."""
    units = []
    for split, n in recipe.split_sizes:
        count = max(1, math.ceil(n / recipe.unit_diffs))
        units += [BuildUnit(split, Shard(i, count)) for i in range(count)]
    return units


def ensure_tiny_suite(
    recipe: TinySuiteRecipe | None = None, workers: int | None = None, splits: Sequence[str] | None = None
) -> Path:
    """The tiny suite's folder under $WDQA_CACHE (by recipe hash), with at least `splits` (default:
    all) on disk, built on first use.

    Only the splits asked for are built: `wdqa evaluate` on the test split builds its 50 diffs, not
    the 440 of the suite; a later command asking for more builds only what is missing (`build_suite`).
    """
    recipe = recipe or TinySuiteRecipe()
    target = cache_root() / "suites" / recipe.name / recipe.revision
    wanted = _known_splits(recipe, splits)
    if set(wanted) <= splits_on_disk(target):
        return target
    runner = LocalProcesses(max(1, workers if workers is not None else usable_cores()))
    return build_suite(target, recipe, runner, wanted, cached=True)


def build_suite(
    out: Path, recipe: TinySuiteRecipe, runner: PieceRunner, splits: Sequence[str] | None = None,
    cached: bool = False, labels_path: Path | None = None,
) -> Path:
    """Build `splits` (default: all) of the suite into `out` as units on `runner` (local processes or
    Ray tasks), the splits asked for first, and merge them, with the splits already in `out`.

    Finished units are kept beside `out` until every split is built, so a crash loses at most the
    units in flight and a later call for more splits merges without rebuilding. `cached`: `out` is a
    cache entry (always replaced whole, never half-written). A private split's labels go to
    `labels_path` (default beside `out`). The merged suite lists the published
    build's other splits (not on disk) when its own splits have the published bytes
    (`published_build`), as a partial download of it would, so its content hash is the published one.
    """
    out = Path(out)
    wanted = _known_splits(recipe, splits)
    present = splits_on_disk(out)
    keep = [s for s, _ in recipe.split_sizes if s in present or s in wanted]
    base = ensure_tiny_base(recipe.base_model)  # once, here: the units must not race to build it
    units = build_units(recipe)
    first = [i for s in wanted for i, u in enumerate(units) if u.split == s]
    rest = [i for i, u in enumerate(units) if u.split in keep and i not in first]
    job = PieceJob(partial(_build_unit, recipe=recipe, units=tuple(units)), (base,),
                   identity=f"{recipe.name}@{recipe.revision}")
    units_dir = out.parent / f"{'.' if cached else ''}{out.name}.units"
    folders = run_pieces(job, len(units), units_dir, runner, only=first + rest, names=[u.folder for u in units])
    parts = [folders[i] for i, u in enumerate(units) if u.split in keep]
    labels = labels_path or maintainer_labels_path(out)

    def merge(tmp: Path) -> None:
        merge_tiny_suite(parts, tmp, recipe, labels_path=labels)
        if (out / "dit").is_dir():  # adapters published into the suite (the DIT default) stay with it
            shutil.copytree(out / "dit", tmp / "dit")
            rehash_manifest(tmp)
        list_published_splits(tmp, recipe.revision)

    replace_folder(out, merge)
    if len(keep) == len(recipe.split_sizes):
        shutil.rmtree(units_dir, ignore_errors=True)
    return out


def _build_unit(out: Path, shard: Shard, base: Path, recipe: TinySuiteRecipe, units: tuple[BuildUnit, ...]) -> None:
    # `shard.index` is the unit's place in `units`; `base` is the tiny base model's folder, which the
    # build finds through the cache (where a remote worker's copy was unpacked), so it is only shipped.
    unit = units[shard.index]
    build_tiny_suite(out, recipe, splits=[unit.split], shard=unit.shard, piece=True)


def splits_on_disk(root: Path) -> set[str]:
    """The splits of the suite at `root` whose files are there (a manifest may list more)."""
    if not (root / MANIFEST).exists():
        return set()
    return set(Suite.load(root, verify=False).splits_on_disk)


def _known_splits(recipe: TinySuiteRecipe, splits: Sequence[str] | None) -> list[str]:
    order = [s for s, _ in recipe.split_sizes]
    if splits is None:
        return order
    unknown = sorted(set(splits) - set(order))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; the {recipe.name} suite has {order}")
    return list(dict.fromkeys(splits))


# ---------------------------------------------------------------- the published build

PUBLISHED_DIR = Path(__file__).parent / "data" / "published"


def published_build(revision: str) -> dict | None:
    """The split files (sha256 per path) and split infos of the build the README's figures were
    measured on, shipped with wdqa (`data/published/<revision>.json`); None for another revision."""
    path = PUBLISHED_DIR / f"{revision}.json"
    return json.loads(path.read_text()) if path.exists() else None


def publish_build_record(suite: Suite) -> Path:
    """Write `data/published/<revision>.json` from a whole local build (the maintainers' step when a
    new recipe's figures are published)."""
    revision = suite.version.partition("+")[2]
    missing = sorted(set(suite.splits) - set(suite.splits_on_disk))
    if missing:
        raise ValueError(f"{suite.root} lacks splits {missing}; publish a whole build")
    record = {"content_sha256": suite.content_sha256, "built_on": suite.extra.get("machine"),
              "splits": {k: vars(v) for k, v in sorted(suite.splits.items())},
              "files": {k: v for k, v in sorted(suite.files.items()) if k.startswith("splits/")}}
    PUBLISHED_DIR.mkdir(parents=True, exist_ok=True)
    path = PUBLISHED_DIR / f"{revision}.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def _split_files(files: dict[str, str], split: str) -> dict[str, str]:
    return {k: v for k, v in files.items() if k.startswith(f"splits/{split}/")}


def list_published_splits(root: Path, revision: str) -> bool:
    """If every split at `root` has the published build's bytes, add the published build's other
    splits to its manifest (listed, not on disk: `wdqa download --split` builds them) and return True."""
    published = published_build(revision)
    if published is None:
        return False
    manifest = json.loads((root / MANIFEST).read_text())
    built = list(manifest["splits"])
    if any(_split_files(manifest["files"], s) != _split_files(published["files"], s) for s in built):
        return False
    for split, info in published["splits"].items():
        if split not in built:
            manifest["splits"][split] = info
            manifest["files"] |= _split_files(published["files"], split)
    manifest["splits"] = dict(sorted(manifest["splits"].items()))
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    return True


def published_build_note(suite: Suite) -> str:
    """One line: do this local tiny build's splits have the published build's bytes, and if not, why?"""
    revision = suite.version.partition("+")[2]
    published = published_build(revision)
    mine = suite.content_sha256
    if published is None:
        return f"tiny suite revision {revision} has no published build to compare with (content {mine[:10]})"
    here = sorted(suite.splits_on_disk)
    differ = [s for s in here if _split_files(suite.files, s) != _split_files(published["files"], s)]
    if not differ:
        return (f"tiny suite content {published['content_sha256'][:10]}: splits {', '.join(here)} are the published "
                "build's bytes (README.md names the build each figure was measured on)")
    return (f"warning: this tiny build's splits {', '.join(differ)} are not the published build's bytes "
            f"(content {published['content_sha256'][:10]}, built with {describe(published.get('built_on'))}; this one "
            f"with {describe(suite.extra.get('machine') or build_machine())}): another torch or CPU trains other "
            "bytes, and scores differ from the README's (by up to 0.22 between two measured CPUs); compare a "
            "method with the baselines of its own run, which ran on this build")


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
