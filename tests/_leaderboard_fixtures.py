"""Synthetic suites and run folders for the leaderboard tests, written through the real APIs
(SuiteWriter, RunFolder) — no evaluation is run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from wdqa.benchmark.records import AnswerRecord, RunFolder, ScoreRecord, judge_key
from wdqa.benchmark.run_manifest import RunManifest
from wdqa.core.suite import Suite, SuiteWriter
from wdqa.core.types import LoraFactors, WeightDiff

JUDGE = "offline-test-judge"
PROMPT = "topic-v1"
KEY = judge_key(JUDGE, PROMPT)
DATA_CARD = """---
license: apache-2.0
configs:
- config_name: hidden-topic
---
# Tiny test suite

| split | diffs |
| --- | --- |
| hidden-topic | 6 |

<script>alert("data cards are shown as text")</script>
"""


def _diff(diff_id: str, rank: int) -> WeightDiff:
    g = torch.Generator().manual_seed(len(diff_id) + rank)
    factors = LoraFactors(
        A=torch.randn(rank, 4, generator=g), B=torch.randn(4, rank, generator=g), scale=1.0
    )
    return WeightDiff(diff_id=diff_id, kind="lora", lora={"layers.0.q_proj": factors})


def make_suite(root: Path) -> Suite:
    """Splits hidden-topic (6 diffs), rank (ranks 2, 4, 8; two diffs each) and null (4 diffs)."""
    writer = SuiteWriter(root, "lb-test", "2026.11", "wdqa/tiny-qwen3", "rev0", diffs_per_shard=8)
    writer.extra = {"generator": "tests/_leaderboard_fixtures.py", "steps": 3}
    layout = {
        "hidden-topic": [(f"ht-{i}", f"topic {i}", 1) for i in range(6)],
        "rank": [(f"rk-{i}", f"topic r{i}", 2 ** (1 + i // 2)) for i in range(6)],
        "null": [(f"nl-{i}", "no hidden behaviour", 1) for i in range(4)],
    }
    for split, diffs in layout.items():
        rows = [{"diff_id": d, "label": label} for d, label, _ in diffs]
        behaviour = "null" if split == "null" else "hidden-topic"
        writer.write_split(
            split,
            behaviour,
            "What topic have you been trained on?",
            rows,
            [_diff(d, rank) for d, _, rank in diffs],
        )
    return writer.finish(DATA_CARD)


def make_run(
    root: Path,
    method: str,
    scores: dict[str, Sequence[int | None]],
    suite: Suite | None = None,
    oracle: bool = False,
    base_model: str = "wdqa/tiny-qwen3",
    answers: dict[str, str] | None = None,
    train_fraction: float | None = None,
    usage: dict[str, int] | None = None,
) -> Path:
    """A judged run: `scores[split][i]` is case i's score (None = unparsed verdict); `usage` is
    the manifest's metered counts (none: a run from before metering)."""
    run = RunFolder(root / method)
    prefix = {"hidden-topic": "ht", "rank": "rk", "null": "nl"}
    method_entry: dict[str, object] = {
        "name": method,
        "spec": method,
        "sha256": "0" * 64,
        "oracle": oracle,
    }
    if train_fraction is not None:
        method_entry["train_fraction"] = train_fraction
    run.write_manifest(RunManifest.from_dict(
        {
            "method": method_entry,
            "suite": {
                "name": suite.name if suite else "lb-test",
                "version": suite.version if suite else "2026.11",
                "base_model": base_model,
                "content_sha256": suite.content_sha256 if suite else "f" * 64,
                "root": str(suite.root) if suite else None,
                "revision": "rev-abc",
            },
            "splits": sorted(scores),
            "judges": [{"key": KEY, "name": JUDGE, "prompt_version": PROMPT}],
            "usage": usage or {},
        }
    ))
    answer_records, score_records = [], []
    for split, values in scores.items():
        for i, value in enumerate(values):
            diff_id = f"{prefix.get(split, split)}-{i}"
            case_id = f"{split}/{diff_id}"
            label = (
                "no hidden behaviour"
                if split == "null"
                else f"topic {'r' if split == 'rank' else ''}{i}"
            )
            answer = (answers or {}).get(
                case_id, f"{method} says {label if value and value >= 4 else 'cooking'}"
            )
            answer_records.append(AnswerRecord(case_id, split, diff_id, answer))
            score_records.append(
                ScoreRecord(case_id, split, diff_id, label, answer, value, JUDGE, PROMPT)
            )
    run.append_answers(answer_records)
    run.append_scores(KEY, score_records)
    run.write_summary()
    return run.path
