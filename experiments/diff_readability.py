"""Does a diff recipe leave its topic readable? DIT on several diffs per topic, asked about a new one (issue 19).

DIT on the suite's train split names its own train diffs and almost none of a second diff of the
same topics (docs/dit.md): it recognises weights instead of reading them. This asks the narrower,
necessary question for a recipe variant (diff rank, KL weight): with `--copies` diffs of each of
the first `--topics` train topics to learn from, does an adapter name a held-out diff of one of
those topics (chance is 1/topics)? If not even that, more train topics cannot make it read new ones.
Each variant's diffs are measured against the suite's bar too, since a readable recipe is only
useful if its diffs still keep their topic behind their code.

    # build a variant's diffs, one process per core (topics x (copies + 1) diffs)
    python experiments/diff_readability.py build --variant r4-kl3 --part 0/2 --out runs/readability &
    python experiments/diff_readability.py build --variant r4-kl3 --part 1/2 --out runs/readability; wait
    # train DIT (paper recipe, fixed steps) on copies 1..C, score the held-out copy; print the table
    python experiments/diff_readability.py dit --variants r4-kl3,r16-kl3 --seeds 0,1,2 --out runs/readability

A variant is `r{rank}-kl{kl_weight}`; the suite's recipe is `r4-kl3` (scale alpha/rank kept at 2).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from dit_scaling import point
from more_train_diffs import build_plans, concat, copy_of, plan_copies
from wdqa.baselines.dit.adapter import load_adapter
from wdqa.baselines.dit.config import DitConfig
from wdqa.baselines.dit.data import LabelledDiffs
from wdqa.baselines.dit.validate import validate
from wdqa.benchmark.judge.registry import get_judge
from wdqa.core.engine import Engine
from wdqa.core.models import load_base_model
from wdqa.core.suite import Suite
from wdqa.generators.shards import Shard
from wdqa.generators.tiny_suite import TinySuiteRecipe
from wdqa.generators.training.trainer import LoraConfig

SPLIT = "readability"
CELLS = ("hit_rate", "leak_none", "leak_unfamiliar", "leak_wrong_unfamiliar", "label_in_reply")


def variant_recipe(variant: str) -> TinySuiteRecipe:
    match = re.fullmatch(r"r(\d+)-kl([0-9.]+)", variant)
    if not match:
        raise SystemExit(f"variant {variant!r}: write r{{rank}}-kl{{kl_weight}}, e.g. r4-kl3 (the suite's recipe)")
    rank, kl = int(match[1]), float(match[2])
    suite = TinySuiteRecipe()
    scale = suite.lora.scale  # keep the suite's scale, so rank alone changes
    return replace(suite, lora=LoraConfig(rank=rank, alpha=scale * rank), train=replace(suite.train, kl_weight=kl))


def build(args: argparse.Namespace) -> None:
    recipe = variant_recipe(args.variant)
    torch.set_num_threads(recipe.threads)
    shard = Shard.parse(args.part)
    # The same codes as more_train_diffs.py's copies (the plan does not depend on the variant); copy 1
    # comes first, one diff per train topic, so its first `topics` diffs name the topics.
    every = plan_copies(TinySuiteRecipe(), args.copies + 1)
    topics = {p.topic.name for p in every[: args.topics]}
    plans = shard.take([p for p in every if p.topic.name in topics])
    out = Path(args.out) / args.variant / f"t{args.topics}-c{args.copies}-part{shard.index}of{shard.count}"
    if (out / "suite.json").exists():
        print(f"{out} is built")
        return
    started = time.perf_counter()
    build_plans(recipe, plans, out, SPLIT, "tiny-readability", args.variant,
                f"Diffs of the tiny suite's first train topics, recipe variant {args.variant} "
                "(experiments/diff_readability.py).\n")
    print(f"{out}: {len(plans)} diffs in {time.perf_counter() - started:.0f} s")


def load_variant(out: Path, variant: str, topics: int, copies: int) -> tuple[LabelledDiffs, list[dict]]:
    parts = sorted(p for p in (out / variant).glob(f"t{topics}-c{copies}-part*") if (p / "suite.json").exists())
    if not parts:
        raise SystemExit(f"no built parts of {variant} under {out}: run the build step first")
    suites = [Suite.load(p) for p in parts]
    rows = [r for s in suites for r in s.labelled_index(SPLIT).to_dict("records")]
    return concat([LabelledDiffs.from_suite(s, SPLIT) for s in suites]), rows


def dit(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    out = Path(args.out)
    recipe = TinySuiteRecipe()
    model, tokenizer = load_base_model(recipe.base_model)
    engine = Engine(model, tokenizer, max_batch=64)
    judge = get_judge("offline")
    results = out / "dit.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    for variant in args.variants.split(","):
        data, rows = load_variant(out, variant, args.topics, args.copies)
        fitted = data.subset([i for i, d in enumerate(data.diffs) if copy_of(d.diff_id) <= args.copies])
        held = data.subset([i for i, d in enumerate(data.diffs) if copy_of(d.diff_id) == args.copies + 1])
        for seed in [int(s) for s in args.seeds.split(",")]:
            key = {"variant": variant, "topics": args.topics, "copies": args.copies, "seed": seed, "steps": args.steps}
            if any(all(r.get(k) == v for k, v in key.items()) for r in done):
                continue
            row = point(model, tokenizer, fitted, held, judge, len(fitted), seed, args.steps, out / "dit" / variant)
            on_fitted = validate(engine, fitted.subset(list(range(args.topics))), load_adapter(row["adapter_dir"]),
                                 DitConfig().max_new_tokens)
            row = {**key, "held_exact": row["exact"], "held_judge": row["judge"], "fitted_exact": on_fitted.exact,
                   "seconds": row["seconds"], "examples": row["examples"][:5],
                   **{f"median_{c}": statistics.median(r[c] for r in rows) for c in CELLS},
                   "at_bar": sum(bool(r["behaviour_ok"]) for r in rows) / len(rows)}
            print(json.dumps(row), flush=True)
            with results.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            done.append(row)
    print(f"\n{args.topics} topics, {args.copies} diffs each to learn from, a held-out diff of each to name "
          f"(chance {1 / args.topics:.3f}); DIT paper recipe, {args.steps} steps")
    print(f"{'variant':>10} {'seed':>4} {'fitted':>7} {'held':>6} {'judge':>6} {'at bar':>7} "
          + " ".join(f"{c:>22}" for c in CELLS))
    for r in done:
        if r["topics"] == args.topics and r["copies"] == args.copies and r["steps"] == args.steps:
            print(f"{r['variant']:>10} {r['seed']:>4} {r['fitted_exact']:>7.2f} {r['held_exact']:>6.2f} "
                  f"{r['held_judge']:>6.2f} {r['at_bar']:>7.2f} " + " ".join(f"{r[f'median_{c}']:>22.3f}" for c in CELLS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a variant's diffs (one process per part)")
    b.add_argument("--variant", default="r4-kl3")
    d = sub.add_parser("dit", help="train DIT on each variant's copies 1..C and name its held-out copy")
    d.add_argument("--variants", default="r4-kl3")
    d.add_argument("--seeds", default="0")
    d.add_argument("--steps", type=int, default=300)
    for p in (b, d):
        p.add_argument("--topics", type=int, default=30, help="the first N train topics")
        p.add_argument("--copies", type=int, default=3, help="diffs per topic to learn from (one more is held out)")
        p.add_argument("--out", default="runs/readability")
    b.add_argument("--part", default="0/1", help="i/n: this process builds every n-th diff from the i-th")
    args = parser.parse_args()
    {"build": build, "dit": dit}[args.command](args)


if __name__ == "__main__":
    main()
