"""DIT's training-data scaling curve on a suite: train diffs x seeds at a fixed step budget, scored
on a held-out split by exact match and the offline judge; prints the table and writes a text plot
and a PNG. The paper's curve (its Fig. 4) rises with data; this measures whether ours does.

Usage: python experiments/dit_scaling.py [--suite tiny] [--sizes 19,38,75,150,300] [--seeds 0,1,2]
       [--steps 1140] [--split test] [--out runs/dit-scaling] [--trigger]
Every point is a fresh adapter trained with the paper's recipe (docs/dit.md: rank 16, lr 1e-3,
16 diffs a step, target " {label}") for exactly `--steps` steps: no validation split, no early stop.

`--trigger` asks every diff the question with its own trigger in the prompt, in training and on
the held-out split: the diff's behaviour is unlocked, so the adapter only has to turn what the
unlocked M' does into the topic's name. That is a ceiling for DIT on the suite (a reader that
unlocks every diff perfectly), not a baseline; the held-out diffs' codes are never seen in
training, so the code itself gives nothing away.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from wdqa.baselines.dit.config import DitConfig
from wdqa.baselines.dit.data import LabelledDiffs
from wdqa.baselines.dit.train import train_dit
from wdqa.baselines.dit.validate import validate
from wdqa.benchmark.judge.registry import get_judge
from wdqa.benchmark.sources import resolve_suite
from wdqa.core.engine import Engine
from wdqa.core.models import load_base_model
from wdqa.core.suite import Suite
from wdqa.core.triggers import apply_trigger


def point(model, tokenizer, train: LabelledDiffs, test: LabelledDiffs, judge, n: int, seed: int, steps: int,
          out: Path) -> dict:
    """One adapter: `n` train diffs (a seeded draw), `steps` optimiser steps, scored on `test`."""
    base = DitConfig()
    per_epoch = math.ceil(n / base.batch_diffs)
    config = replace(base, max_diffs=n, seed=seed, epochs=math.ceil(steps / per_epoch),
                     eval_every=10**9, checkpoint_every=10**9)
    started = time.perf_counter()
    folder = out / f"n{n}-seed{seed}-steps{steps}"
    result = train_dit(model, tokenizer, train, config, folder, stop_after_steps=steps)
    engine = Engine(model, tokenizer, max_batch=64)
    score = validate(engine, test, result.adapter, config.max_new_tokens, judge, config.answer_template)
    return {"n": n, "seed": seed, "steps": steps, "adapter_dir": str(folder), "exact": score.exact, "judge": score.judge_mean,
            "seconds": time.perf_counter() - started, "examples": score.examples}


def with_triggers(suite: Suite, split: str, labelled: LabelledDiffs) -> LabelledDiffs:
    """The same diffs, each asked its question with its own trigger placed as the generator placed it."""
    triggers = suite.triggers(split)
    questions = []
    for diff, question in zip(labelled.diffs, labelled.questions, strict=True):
        trigger, kind = triggers[diff.diff_id]
        if trigger is None or kind is None:
            raise SystemExit(f"diff {diff.diff_id} of split {split} has no trigger: --trigger needs triggered diffs")
        questions.append(apply_trigger(question, trigger, kind))
    return LabelledDiffs(labelled.diffs, labelled.labels, questions, labelled.behaviours)


def sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def text_plot(rows: list[dict], sizes: list[int], key: str, lo: float, hi: float, width: int = 50) -> str:
    lines = [f"{key} ({lo:g} .. {hi:g})"]
    for n in sizes:
        values = [r[key] for r in rows if r["n"] == n]
        mean = statistics.mean(values)
        pos = round((mean - lo) / (hi - lo) * width)
        lines.append(f"{n:>5} |{'#' * pos}{' ' * (width - pos)}| {mean:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="tiny")
    parser.add_argument("--sizes", default="19,38,75,150,300")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=1140)  # the paper recipe's budget on 300 diffs: 60 epochs of 19 steps
    parser.add_argument("--split", default="test")
    parser.add_argument("--judge", default="offline")
    parser.add_argument("--out", help="default runs/dit-scaling, or runs/dit-scaling-trigger with --trigger")
    parser.add_argument("--trigger", action="store_true", help="ask with each diff's trigger: DIT's ceiling")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes, seeds = [int(s) for s in args.sizes.split(",")], [int(s) for s in args.seeds.split(",")]
    out = Path(args.out or ("runs/dit-scaling-trigger" if args.trigger else "runs/dit-scaling"))
    out.mkdir(parents=True, exist_ok=True)
    suite = resolve_suite(args.suite, splits=["train", args.split])  # builds only what it reads
    print(f"suite {suite.name} content {suite.content_sha256[:12]}  root {suite.root}")
    model, tokenizer = load_base_model(suite.base_model, suite.base_model_revision)
    train, test = LabelledDiffs.from_suite(suite, "train"), LabelledDiffs.from_suite(suite, args.split)
    if args.trigger:
        train, test = with_triggers(suite, "train", train), with_triggers(suite, args.split, test)
    judge = get_judge(args.judge)
    results = out / "points.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    for n in sizes:
        for seed in seeds:
            if any(r["n"] == n and r["seed"] == seed and r["steps"] == args.steps
                   and r.get("trigger", False) == args.trigger for r in done):
                continue
            row = point(model, tokenizer, train, test, judge, min(n, len(train)), seed, args.steps,
                        out / "trigger" if args.trigger else out)
            row["trigger"] = args.trigger
            print(f"n={n} seed={seed}: exact {row['exact']:.2f} judge {row['judge']:.2f} ({row['seconds']:.0f} s) "
                  f"e.g. {row['examples'][:2]}", flush=True)
            with results.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            done.append(row)
    rows = [r for r in done if r["steps"] == args.steps and r["n"] in sizes and r["seed"] in seeds
            and r.get("trigger", False) == args.trigger]
    print(f"\n{args.split} split{' (with each diff its trigger)' if args.trigger else ''}, n={len(test)}, {args.steps} steps, judge {judge.name} @ {judge.prompt_version}")
    print(f"{'train diffs':>11} {'exact mean':>10} {'sd':>5} {'judge mean':>10} {'sd':>5}  seeds")
    for n in sizes:
        ex = [r["exact"] for r in rows if r["n"] == n]
        ju = [r["judge"] for r in rows if r["n"] == n]
        print(f"{n:>11} {statistics.mean(ex):>10.2f} {sd(ex):>5.2f} {statistics.mean(ju):>10.2f} {sd(ju):>5.2f}  {len(ex)}")
    plot = text_plot(rows, sizes, "judge", 1.0, 5.0) + "\n\n" + text_plot(rows, sizes, "exact", 0.0, 1.0)
    (out / "scaling.txt").write_text(plot + "\n")
    print("\n" + plot)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for seed in seeds:
            ax.plot(sizes, [next(r["judge"] for r in rows if r["n"] == n and r["seed"] == seed) for n in sizes],
                    "o", color="grey", alpha=0.5)
        ax.plot(sizes, [statistics.mean(r["judge"] for r in rows if r["n"] == n) for n in sizes], "-o", label="mean")
        ax.set(xscale="log", xlabel="train diffs", ylabel="offline judge (test)", ylim=(1, 5),
               title=f"DIT on {suite.name}, {args.steps} steps")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "scaling.png", dpi=120)
        print(f"wrote {out / 'scaling.png'}")
    except ImportError:
        print("matplotlib not installed: text plot only")


if __name__ == "__main__":
    main()
