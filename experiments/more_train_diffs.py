"""Does DIT learn to read a diff with more train diffs than the tiny suite has? (issue 19)

The suite's 471 topics are nearly all used (300 train, 40 val, 50 test, 50 private), so more train
diffs means more diffs per train topic: each copy gives every train topic a new diff behind another
code (never a code of the suite's own diffs), built with the suite's recipe exactly (data, rank,
steps, measurement). Same names, other weights: to name them all, the adapter has to read what the
diffs share (their topic) rather than memorise one diff per name.

    # build copy 1 (300 diffs) in two processes, one per core (about 25 min on 2 cores); then copy 2
    python experiments/more_train_diffs.py build --copy 1 --part 0/2 --out runs/more-train &
    python experiments/more_train_diffs.py build --copy 1 --part 1/2 --out runs/more-train; wait
    # DIT (paper recipe) on the suite's train split alone, then with 1 and 2 copies; test split
    python experiments/more_train_diffs.py dit --out runs/more-train --copies 0,1,2 --seeds 0,1 --steps 400

    # reading or memorising? an adapter trained on the suite's train split alone, asked about new
    # diffs of its own train topics (copy 1: known names, other weights)
    python experiments/more_train_diffs.py transfer runs/more-train/dit/n300-seed0-steps400 --out runs/more-train

`dit` prints exact match and the offline judge per point and appends them to `OUT/dit.jsonl`
(a rerun skips the points already there). Topics stay disjoint from val and test throughout.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from dit_scaling import point  # the scaling curve's point: paper recipe, fixed steps, no early stop
from wdqa.baselines.dit.adapter import load_adapter
from wdqa.baselines.dit.config import DitConfig
from wdqa.baselines.dit.data import LabelledDiffs
from wdqa.baselines.dit.validate import validate
from wdqa.benchmark.judge.registry import get_judge
from wdqa.benchmark.sources import resolve_suite
from wdqa.core.engine import Engine
from wdqa.core.models import load_base_model
from wdqa.core.suite import Suite, SuiteWriter
from wdqa.generators.behaviour.hidden_topic import PlannedTopicDiff
from wdqa.generators.behaviour.writer import TemplateBehaviourWriter
from wdqa.generators.shards import Shard
from wdqa.generators.splits import SplitContext, get_split
from wdqa.generators.splits.common import write_split
from wdqa.generators.tiny.build import tiny_recipe
from wdqa.generators.tiny.corpus import all_codes
from wdqa.generators.tiny_suite import TinySuiteRecipe, _reserved_codes, plan_diffs

SPLIT = "train-more"


def plan_copies(recipe: TinySuiteRecipe, copies: int) -> list[PlannedTopicDiff]:
    """`copies` more diffs of every train topic, copy by copy, each behind a code no diff of the
    suite uses and that topic has not had yet (copy k's codes do not depend on how many follow)."""
    plan = plan_diffs(recipe)
    used = {p.trigger for p in plan}
    pool = [c for c in all_codes() if c not in _reserved_codes(recipe) and c not in used]
    train = [p for p in plan if p.split == "train"]
    rng = random.Random(f"more-train-diffs/{recipe.seed}")
    had: dict[str, set[str]] = {p.diff_id: {p.trigger} for p in train}
    out = []
    for k in range(1, copies + 1):
        for p in train:
            code = rng.choice([c for c in pool if c not in had[p.diff_id]])
            had[p.diff_id].add(code)
            out.append(PlannedTopicDiff(f"{p.diff_id}-x{k}", p.topic, code))
    return out


def copy_of(diff_id: str) -> int:
    return int(diff_id.rsplit("-x", 1)[1])


def concat(parts: list[LabelledDiffs]) -> LabelledDiffs:
    return LabelledDiffs(*(sum((getattr(p, f) for p in parts), []) for f in ("diffs", "labels", "questions", "behaviours")))


def load_copies(out: Path) -> LabelledDiffs:
    """Every built part of every copy under `out`, in folder order (copy 1's parts, then copy 2's, ...)."""
    parts = sorted(p for p in out.glob("copy*-part*") if (p / "suite.json").exists())
    return concat([LabelledDiffs.from_suite(Suite.load(p), SPLIT) for p in parts])


def build_plans(recipe: TinySuiteRecipe, plans: list[PlannedTopicDiff], out: Path, split: str, name: str,
                version: str, description: str):  # -> SplitBuild
    """Train and measure `plans` with `recipe` (data, rank, steps, bar), and write them to `out` as a
    one-split suite on the recipe's base model."""
    model, tokenizer = load_base_model(recipe.base_model)
    context = SplitContext(model, tokenizer, TemplateBehaviourWriter(recipe.data.open_prompts), recipe.lora,
                           recipe.train, frozenset(_reserved_codes(recipe)), max_new_tokens=16)
    hidden_topic = get_split("hidden-topic")
    built = hidden_topic.build(context, [], len(plans), recipe.seed, plans=plans,  # type: ignore[call-arg]
                               data=recipe.data, bar=recipe.bar)
    writer = SuiteWriter(out, name, version, recipe.base_model, tiny_recipe(recipe.base_model).revision)
    write_split(writer, split, hidden_topic, built, Shard())
    writer.finish(description)
    return built


def build(args: argparse.Namespace) -> None:
    recipe = TinySuiteRecipe()
    torch.set_num_threads(recipe.threads)
    shard = Shard.parse(args.part)
    plans = shard.take([p for p in plan_copies(recipe, args.copy) if p.diff_id.endswith(f"-x{args.copy}")])
    out = Path(args.out) / f"copy{args.copy}-part{shard.index}of{shard.count}"
    if (out / "suite.json").exists():
        print(f"{out} is built")
        return
    started = time.perf_counter()
    built = build_plans(recipe, plans, out, SPLIT, "tiny-train-more", f"copy{args.copy}",
                        "Extra train diffs of the tiny suite's train topics (experiments/more_train_diffs.py).\n")
    ok = sum(bool(r["behaviour_ok"]) for r in built.rows)
    hits = sorted(r["hit_rate"] for r in built.rows)
    print(f"{out}: {len(plans)} diffs in {time.perf_counter() - started:.0f} s; at the bar {ok}/{len(plans)}, "
          f"hit median {hits[len(hits) // 2]:.2f}")


def dit(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    out = Path(args.out)
    suite = resolve_suite("tiny", splits=["train", args.split])  # builds only what it reads
    print(f"suite {suite.name} content {suite.content_sha256[:12]}")
    model, tokenizer = load_base_model(suite.base_model, suite.base_model_revision)
    train, test = LabelledDiffs.from_suite(suite, "train"), LabelledDiffs.from_suite(suite, args.split)
    extra = load_copies(out)
    judge = get_judge("offline")
    results = out / "dit.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    for copies in [int(c) for c in args.copies.split(",")]:
        missing = sorted(set(range(1, copies + 1)) - {copy_of(d.diff_id) for d in extra.diffs})
        if missing:
            raise SystemExit(f"copies {missing} are not built under {out}: run the build step first")
        data = concat([train, extra.subset([i for i, d in enumerate(extra.diffs) if copy_of(d.diff_id) <= copies])])
        for seed in [int(s) for s in args.seeds.split(",")]:
            if any(r["copies"] == copies and r["seed"] == seed and r["steps"] == args.steps for r in done):
                continue
            row = point(model, tokenizer, data, test, judge, len(data), seed, args.steps, out / "dit")
            row["copies"] = copies
            print(f"copies {copies} ({len(data)} train diffs) seed {seed}: exact {row['exact']:.2f} "
                  f"judge {row['judge']:.2f} ({row['seconds']:.0f} s) e.g. {row['examples'][:3]}", flush=True)
            with results.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            done.append(row)
    print(f"\n{args.split} split (n={len(test)}), {args.steps} steps of 16 diffs, paper recipe")
    print(f"{'copies':>6} {'train diffs':>11} {'exact':>12} {'judge':>12}")
    for copies in [int(c) for c in args.copies.split(",")]:
        rows = [r for r in done if r["copies"] == copies and r["steps"] == args.steps]
        if rows:
            ex = " / ".join(f"{r['exact']:.2f}" for r in rows)
            ju = " / ".join(f"{r['judge']:.2f}" for r in rows)
            print(f"{copies:>6} {rows[0]['n']:>11} {ex:>12} {ju:>12}")


def transfer(args: argparse.Namespace) -> None:
    """Exact match of trained adapters on the train diffs they fit, on copy 1 of the same topics, and on test."""
    torch.set_num_threads(1)
    suite = resolve_suite("tiny", splits=["train", "test"])
    model, tokenizer = load_base_model(suite.base_model, suite.base_model_revision)
    engine = Engine(model, tokenizer, max_batch=64)
    train, test = LabelledDiffs.from_suite(suite, "train"), LabelledDiffs.from_suite(suite, "test")
    extra = load_copies(Path(args.out))
    at = {d.diff_id: i for i, d in enumerate(extra.diffs)}
    first = list(range(args.n))
    sets = {
        f"train, first {args.n} (fitted)": train.subset(first),
        f"copy 1 of the same {args.n} topics (new diffs)": extra.subset([at[f"{train.diffs[i].diff_id}-x1"] for i in first]),
        "test (new topics)": test,
    }
    for folder in args.adapters:
        adapter = load_adapter(folder)
        for name, data in sets.items():
            score = validate(engine, data, adapter, DitConfig().max_new_tokens)
            print(f"{Path(folder).name}: {name}: exact {score.exact:.2f} (n={score.n}) e.g. {score.examples[:3]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the extra diffs (one process per part)")
    b.add_argument("--copy", type=int, default=1, help="which copy to build (1, 2, ...)")
    b.add_argument("--part", default="0/1", help="i/n: this process builds every n-th diff from the i-th")
    b.add_argument("--out", default="runs/more-train")
    d = sub.add_parser("dit", help="train and score DIT on the train split plus 0, 1, ... copies")
    d.add_argument("--out", default="runs/more-train")
    d.add_argument("--copies", default="0,1,2")
    d.add_argument("--seeds", default="0,1")
    d.add_argument("--steps", type=int, default=400)
    d.add_argument("--split", default="test")
    t = sub.add_parser("transfer", help="exact match of trained adapters on fitted, same-topic and test diffs")
    t.add_argument("adapters", nargs="+", help="adapter folders (from the dit step: OUT/dit/n300-seed0-steps400, ...)")
    t.add_argument("--out", default="runs/more-train", help="where the copies were built")
    t.add_argument("--n", type=int, default=100, help="how many train topics to check")
    args = parser.parse_args()
    {"build": build, "dit": dit, "transfer": transfer}[args.command](args)


if __name__ == "__main__":
    main()
