"""Scores of one run folder broken down by a column of the suite's index (e.g. `rank`), the exact
matches of the label, plus the null split's false-finding rate. Used for the rank and null figures in docs/dit.md.

Usage: python experiments/dit_breakdown.py RUN_DIR SUITE_DIR SPLIT [COLUMN] [--judge KEY]
(--judge is needed once a run has been graded by more than one judge; the error lists its keys.)
"""

from __future__ import annotations

import argparse

from wdqa.baselines.dit.validate import normalise
from wdqa.benchmark.records import RunFolder, bootstrap_ci
from wdqa.core.suite import Suite
from wdqa.leaderboard.false_findings import false_findings


def main(run_dir: str, suite_dir: str, split: str, column: str | None = None, judge: str | None = None) -> None:
    run = RunFolder(run_dir)
    keys = run.judge_keys()
    if judge is None and len(keys) != 1:
        raise SystemExit(f"{run_dir} has scores from {len(keys)} judges; pick one with --judge: {', '.join(keys)}")
    if judge is not None and judge not in keys:
        raise SystemExit(f"{run_dir} has no scores from {judge}; it has: {', '.join(keys) or 'none'}")
    key = judge or keys[0]
    print(f"judge: {key}")
    records = [r for r in run.scores(key).values() if r.split == split]
    index = Suite.load(suite_dir, verify=False).labelled_index(split).set_index("diff_id")
    groups: dict[str, list[float]] = {}
    for r in records:
        group = str(index.loc[r.diff_id, column]) if column else split
        groups.setdefault(group, []).append(float(r.score) if r.score is not None else 1.0)
    for group, values in sorted(groups.items(), key=lambda kv: (len(kv[0]), kv[0])):
        lo, hi = bootstrap_ci(values)
        print(f"{split} {column or ''}={group}: mean {sum(values) / len(values):.2f} [{lo:.2f}, {hi:.2f}] n={len(values)}")
    exact = sum(normalise(r.answer or "") == normalise(r.label) for r in records)
    print(f"exact match of the label: {exact}/{len(records)}")
    found = false_findings(records)
    if found is not None:
        print(f"false-finding rate: {found.rate:.2f} [{found.ci_low:.2f}, {found.ci_high:.2f}] ({found.findings}/{found.n})")
    for r in records[:6]:
        print(f"  label {r.label!r} -> answer {r.answer!r} (score {r.score})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("suite_dir")
    parser.add_argument("split")
    parser.add_argument("column", nargs="?")
    parser.add_argument("--judge", help="judge key, e.g. offline-gbt@gbt-ff4bb4f24b+floor0.2")
    args = parser.parse_args()
    main(args.run_dir, args.suite_dir, args.split, args.column, args.judge)
