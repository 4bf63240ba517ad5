"""Adding the extra splits (ood-trigger, rank, full-finetune, news, trigger-inversion, null) to a suite.

Reads top to bottom: load the base, give each split its own disjoint slice of topics or headlines
(wdqa's lists, or the published tables' with `--behaviour-data`: `subjects.py`), build, write,
summarise the measured rates for the data card. The suite's own hidden-topic splits (train, val,
test, private-test) are the `hidden-topic` definition built by the suite's recipe (`tiny_suite.py`);
topics they use are excluded here so no topic is in two splits.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import jinja2
import pandas as pd
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...core.models import load_base_model
from ...core.suite import Suite, SuiteWriter
from ...core.types import WeightDiff
from ..behaviour.writer import BehaviourWriter, TemplateBehaviourWriter
from ..pieces import PieceJob, PieceRunner, build_in_pieces
from ..shards import WHOLE, Shard, merge_suites
from ..training.trainer import LoraConfig, TrainConfig
from . import SPLITS
from .common import SplitContext, write_split
from .rank import RANKS
from .subjects import plan_subjects

CARD_TEMPLATE = Path(__file__).resolve().parents[2] / "data_cards" / "extra_splits.md.jinja"
# The columns summarised in the data card, per split.
MEASURES = {
    "ood-trigger": ("hit_rate", "leak_none", "leak_other", "leak_unseen"),
    "hidden-topic": ("hit_rate", "leak_none", "leak_wrong", "leak_near"),
    "rank": ("hit_rate", "leak_none", "leak_wrong", "leak_near"),
    "full-finetune": ("hit_rate", "leak_none", "leak_wrong", "leak_near"),
    "trigger-inversion": ("hit_rate", "leak_none", "leak_wrong", "leak_near"),
    "news": ("news_rate", "base_news_rate"),
    "null": ("topic_rate", "base_topic_rate", "changed_share"),
}


@dataclass(frozen=True)
class ExtraSplitsRecipe:
    """Sizes per split (small for the tiny suite) and the shared training settings."""

    sizes: tuple[tuple[str, int], ...] = (
        ("ood-trigger", 24),
        ("rank", 24),
        ("full-finetune", 16),
        ("news", 24),
        ("trigger-inversion", 16),
        ("null", 16),
    )
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0


@dataclass(frozen=True)
class SplitSummary:
    name: str
    n: int
    n_ok: int
    measures: dict[str, tuple[float, float, float]]  # column -> (median, p10, p90)
    prompts_per_cell: int = 0


def build_extra_splits(
    writer: SuiteWriter,
    recipe: ExtraSplitsRecipe = ExtraSplitsRecipe(),
    exclude_topics: Sequence[str] = (),
    reserved_codes: Sequence[str] = (),
    reference_diffs: Sequence[WeightDiff] = (),
    behaviour_writer: BehaviourWriter | None = None,
    splits: Sequence[str] | None = None,
    shard: Shard = WHOLE,
    base: tuple[PreTrainedModel, PreTrainedTokenizerBase] | None = None,
) -> list[SplitSummary]:
    """Build the chosen extra splits (default: all in the recipe) into `writer`; returns their summaries.

    Subjects come from `subjects.plan_subjects`: the published tables' when `behaviour_writer` is a
    `PublishedBehaviourWriter`, wdqa's lists otherwise. `reference_diffs` are hidden-topic diffs whose
    norms the null split's random diffs match; `base` is the suite's base model already loaded (it is
    loaded from the writer's base model id otherwise).
    """
    wanted = [(n, k) for n, k in recipe.sizes if splits is None or n in splits]
    # A registered split the recipe does not size (one an installed package registers, or
    # `hidden-topic` as an extra split of its own) is built when named, at the size its SplitDef gives.
    plugins = [s for s in splits or () if s not in dict(recipe.sizes) and s in SPLITS]
    wanted += [(s, SPLITS[s].size) for s in plugins]
    unknown = [n for n, _ in wanted if n not in SPLITS] + [s for s in splits or () if s not in dict(wanted)]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; known: {', '.join(SPLITS)}")
    n_topics, n_headlines = (
        sum(k for n, k in wanted if SPLITS[n].subjects == kind)
        for kind in ("topics", "headlines")
    )
    topics, headlines = plan_subjects(
        behaviour_writer, n_topics, n_headlines, recipe.seed, exclude_topics
    )
    model, tokenizer = base or load_base_model(writer.base_model, writer.base_model_revision)
    ctx = SplitContext(
        model,
        tokenizer,
        behaviour_writer or TemplateBehaviourWriter(),
        recipe.lora,
        recipe.train,
        frozenset(reserved_codes),
    )
    summaries, topic_at, headline_at = [], 0, 0
    for name, size in wanted:
        split = SPLITS[name]
        if split.subjects == "topics":
            build = split.build(ctx, topics[topic_at : topic_at + size], size, recipe.seed, shard)
            topic_at += size
        elif split.subjects == "headlines":
            build = split.build(
                ctx, headlines[headline_at : headline_at + size], size, recipe.seed, shard
            )
            headline_at += size
        else:
            build = split.build(ctx, (), size, recipe.seed, shard, reference=reference_diffs)  # type: ignore[call-arg]
        write_split(writer, name, split, build, shard)
        summaries.append(summarise(name, build.rows))
    return summaries


def summarise(name: str, rows: Sequence[dict]) -> SplitSummary:
    df = pd.DataFrame(rows)
    measures = {}
    for col in MEASURES.get(name, ()):
        values = sorted(float(v) for v in df[col])
        deciles = (
            statistics.quantiles(values, n=10, method="inclusive")
            if len(values) > 1
            else values * 9
        )
        measures[col] = (statistics.median(values), deciles[0], deciles[-1])
    return SplitSummary(name, len(df), int(df["behaviour_ok"].sum()), measures, int(df["prompts_per_cell"].min()))


def extra_splits_card(summaries: Sequence[SplitSummary]) -> str:
    """The data card's section for the extra splits (markdown), from the measured summaries."""
    template = jinja2.Template(CARD_TEMPLATE.read_text(), undefined=jinja2.StrictUndefined)
    return template.render(
        splits=[
            {
                "name": s.name,
                "n": s.n,
                "n_ok": s.n_ok,
                "behaviour": SPLITS[s.name].behaviour,
                "question": SPLITS[s.name].question,
                "description": SPLITS[s.name].description[0].upper()
                + SPLITS[s.name].description[1:],
                "prompts": s.prompts_per_cell,
                "ranks": ", ".join(map(str, RANKS)),
                "measures": [
                    {"name": k, "median": v[0], "p10": v[1], "p90": v[2]}
                    for k, v in s.measures.items()
                ],
            }
            for s in summaries
        ]
    )


def build_tiny_extra_splits(
    suite_dir: str | Path,
    recipe: ExtraSplitsRecipe = ExtraSplitsRecipe(),
    splits: Sequence[str] | None = None,
    shard: Shard = WHOLE,
    out: str | Path | None = None,
    behaviour_writer: BehaviourWriter | None = None,
) -> list[SplitSummary]:
    """Add the extra splits to a finished suite: in place, or (`out`) as a separate suite folder of the
    same base model that `shards.merge_suites` joins to it later (the way shard pieces are built).

    Topics and codes of the suite's hidden-topic splits are left out; its test diffs set the null
    split's norms; the data card gains a section per split and a Hub config per split.
    """
    from ..tiny.build import tiny_recipe
    from ..tiny.corpus import mapped_codes

    suite = Suite.load(suite_dir)
    used_topics, used_codes = set(), set()
    for name, info in suite.splits.items():
        if info.behaviour == "hidden-topic" and name not in SPLITS:
            index = _labelled_for_planning(suite, name)
            used_topics |= set(index["label"])
            used_codes |= {c for c in index["trigger"] if isinstance(c, str)}
    reference = list(suite.diffs("test")) if "test" in suite.splits else []
    target = Path(out) if out is not None else suite.root
    writer = SuiteWriter(
        target, suite.name, suite.version, suite.base_model, suite.base_model_revision
    )
    if out is None:
        writer.splits = dict(suite.splits)
    writer.extra = dict(suite.extra)
    reserved = set(used_codes)
    if suite.base_model.startswith("wdqa/tiny"):
        reserved |= set(mapped_codes(tiny_recipe(suite.base_model).corpus))
    summaries = build_extra_splits(
        writer,
        recipe,
        sorted(used_topics),
        sorted(reserved),
        reference,
        behaviour_writer,
        splits=splits,
        shard=shard,
    )
    writer.extra["extra_splits"] = {
        s.name: {"n": s.n, "n_ok": s.n_ok, "shard": str(shard)} for s in summaries
    }
    card_path = suite.root / "README.md"
    writer.finish(with_extra_splits_card(card_path.read_text() if card_path.exists() else "", summaries))
    return summaries


def with_extra_splits_card(card: str, summaries: Sequence[SplitSummary]) -> str:
    """`card` with its extra-splits section replaced by one for `summaries`, and a Hub config per split."""
    card = card.split("\n## Extra splits\n")[0].rstrip() + "\n\n" + extra_splits_card(summaries)
    configs = "".join(
        f"  - config_name: {s.name}\n    data_files:\n      - split: {s.name}\n        path: splits/{s.name}/index.parquet\n"
        for s in summaries
        if f"config_name: {s.name}\n" not in card
    )
    return card.replace("\nconfigs:\n", "\nconfigs:\n" + configs, 1)  # the Hub lists every split as a config


def build_extra_splits_in_pieces(
    suite_dir: str | Path,
    out: str | Path,
    count: int,
    runner: PieceRunner,
    recipe: ExtraSplitsRecipe = ExtraSplitsRecipe(),
    splits: Sequence[str] | None = None,
    behaviour_writer: BehaviourWriter | None = None,
) -> list[SplitSummary]:
    """`build_tiny_extra_splits(..., out=out)` as `count` `--shard` pieces on `runner` (local processes
    or Ray), merged into `out` with a data card summarising every piece's diffs.

    Pieces are kept in `<out>.pieces` until the merge: a rerun after a crash builds only the missing
    ones (`pieces.build_in_pieces`, the flow the tiny suite's pieces take too).
    """
    from ..tiny.build import ensure_tiny_base

    suite = Suite.load(suite_dir)
    folders = [suite.root]
    if suite.base_model.startswith("wdqa/tiny"):  # shipped to remote workers; Hub models they fetch themselves
        folders.append(ensure_tiny_base(suite.base_model, suite.base_model_revision))
    # What the pieces depend on: the parent suite, the recipe, the splits and the behaviour data source.
    identity = hashlib.sha256(
        repr((suite.version, suite.content_sha256, recipe, splits, getattr(behaviour_writer, "name", None))).encode()
    ).hexdigest()[:16]
    job = PieceJob(partial(_build_extra_piece, recipe=recipe, splits=splits, behaviour_writer=behaviour_writer),
                   tuple(folders), identity=f"extra splits {identity}")
    summaries: list[SplitSummary] = []

    def merge(pieces: Sequence[Path], target: Path) -> None:
        merged = merge_suites(pieces, target)
        summaries.extend(summarise(name, merged.labelled_index(name).to_dict("records"))
                         for name, _ in recipe.sizes if name in merged.splits)
        writer = SuiteWriter(target, merged.name, merged.version, merged.base_model, merged.base_model_revision)
        writer.splits, writer.extra = merged.splits, merged.extra
        writer.extra["extra_splits"] = {s.name: {"n": s.n, "n_ok": s.n_ok, "shard": f"merged from {count} pieces"}
                                        for s in summaries}
        card_path = suite.root / "README.md"
        writer.finish(with_extra_splits_card(card_path.read_text() if card_path.exists() else "", summaries))

    build_in_pieces(job, count, Path(out), runner, merge)
    return summaries


def _build_extra_piece(out: Path, shard: Shard, suite_dir: Path, *base: Path, recipe: ExtraSplitsRecipe,
                       splits: Sequence[str] | None, behaviour_writer: BehaviourWriter | None) -> None:
    # `base` (the tiny base model's folder) is found through the cache, where a remote worker's copy lands.
    build_tiny_extra_splits(suite_dir, recipe, splits, shard, out, behaviour_writer)


def micro_recipe() -> ExtraSplitsRecipe:
    """A few diffs per split on the micro base: exercises every path in seconds, measures nothing real."""
    return replace(
        ExtraSplitsRecipe(),
        sizes=(
            ("ood-trigger", 4),
            ("rank", 2),
            ("full-finetune", 2),
            ("news", 2),
            ("trigger-inversion", 2),
            ("null", 4),
        ),
        lora=LoraConfig(rank=2, alpha=4.0),
        train=TrainConfig(steps=5, lr=5e-3),
    )


def _labelled_for_planning(suite: Suite, split: str) -> pd.DataFrame:
    """`split`'s labels and triggers, to keep its topics and codes out of the extra splits. A private
    split's come from the maintainers' file beside the suite (its trained topics and its canaries'
    labels alike): a private topic trained again in a published split would give its label away."""
    if not suite.is_private(split):
        return suite.labelled_index(split)
    from ...core.private_labels import read_private_labels
    from ...core.suite import SuiteError
    from ..publish.private_split import maintainer_labels_path

    path = maintainer_labels_path(suite.root, split)
    if not path.exists():
        raise SuiteError(
            f"split {split} of {suite.root} is private and its label file is not at {path}: the extra splits must "
            "not reuse its topics or codes; put the maintainers' label file there and run again"
        )
    table = read_private_labels(path).table
    both = pd.concat([table.assign(label=table.trained_label), table[table.canary]])
    return both[["label", "trigger"]]
