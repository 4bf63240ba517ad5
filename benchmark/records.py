"""The run folder: append-only answer and score records, the manifest, and the summary.

Owns the on-disk run format (docs/run-format.md) and its aggregates; produces nothing itself.
`evaluate`, `judge`, `report`, `leaderboard` and `verify` all read runs through this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import WdqaError
from .suite import atomic_write_text

RUN_SCHEMA_VERSION = 1


class RunError(WdqaError):
    """A run folder that is missing, unreadable or inconsistent; the message names the file."""


@dataclass(frozen=True)
class AnswerRecord:
    case_id: str
    split: str
    diff_id: str
    answer: str | None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ScoreRecord:
    case_id: str
    split: str
    diff_id: str
    label: str
    answer: str | None
    score: int | None
    judge: str
    prompt_version: str
    raw: str = ""
    prompt: str = ""
    failed: bool = False  # the method gave no answer for this case


@dataclass(frozen=True)
class SplitSummary:
    mean: float
    ci_low: float
    ci_high: float
    n: int
    failed: int
    invalid: int
    dist: dict[str, float] = field(default_factory=dict)


def judge_key(judge: str, prompt_version: str) -> str:
    return f"{judge}@{prompt_version}".replace("/", "_").replace(":", "_")


def bootstrap_ci(
    values: Sequence[float], resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (deterministic for a seed)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return (float("nan"), float("nan"))
    if len(x) == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize(records: Iterable[ScoreRecord]) -> SplitSummary:
    """Aggregate one split's scores. A failed answer counts as score 1 (no answer is a wrong answer);
    a judge reply that could not be parsed is left out and counted in `invalid`."""
    values: list[int] = []
    failed = invalid = 0
    for r in records:
        if r.failed:
            failed += 1
            values.append(1)
        elif r.score is None:
            invalid += 1
        else:
            values.append(int(r.score))
    if not values:
        return SplitSummary(float("nan"), float("nan"), float("nan"), 0, failed, invalid, {})
    lo, hi = bootstrap_ci(values)
    counts = np.bincount(np.asarray(values), minlength=6)[1:6]
    dist = {str(k): float(c) / len(values) for k, c in zip(range(1, 6), counts, strict=True)}
    return SplitSummary(float(np.mean(values)), lo, hi, len(values), failed, invalid, dist)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read JSON lines; a torn last line (a crash mid-write) is dropped, any other bad line raises."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as err:
            if i == len(lines) - 1:
                break
            raise RunError(f"{path} line {i + 1} is not valid JSON: {err}") from err
    return out


def _append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class RunFolder:
    """One run on disk. Records are appended as produced so an interrupted run resumes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def answers_path(self) -> Path:
        return self.path / "answers.jsonl"

    def scores_path(self, key: str) -> Path:
        return self.path / "scores" / f"{key}.jsonl"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    # -- manifest

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            raise RunError(f"{self.path} is not a wdqa run: manifest.json is missing")
        try:
            raw = json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise RunError(f"{self.manifest_path} is not valid JSON: {err}") from err
        return upgrade_run_manifest(raw)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest = {"schema_version": RUN_SCHEMA_VERSION, **manifest}
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True, default=str))

    # -- answers

    def answers(self) -> dict[str, AnswerRecord]:
        """Latest record per case (a retried case's newer record wins)."""
        return {r["case_id"]: AnswerRecord(**r) for r in _read_jsonl(self.answers_path)}

    def append_answers(self, records: Iterable[AnswerRecord]) -> None:
        _append_jsonl(self.answers_path, (asdict(r) for r in records))

    # -- scores

    def judge_keys(self) -> list[str]:
        folder = self.path / "scores"
        return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.exists() else []

    def scores(self, key: str) -> dict[str, ScoreRecord]:
        return {r["case_id"]: ScoreRecord(**r) for r in _read_jsonl(self.scores_path(key))}

    def append_scores(self, key: str, records: Iterable[ScoreRecord]) -> None:
        _append_jsonl(self.scores_path(key), (asdict(r) for r in records))

    # -- summary

    def summary(self) -> dict[str, dict[str, SplitSummary]]:
        """Recomputed from the score records (the summary file is a convenience copy)."""
        out: dict[str, dict[str, SplitSummary]] = {}
        for key in self.judge_keys():
            by_split: dict[str, list[ScoreRecord]] = {}
            for r in self.scores(key).values():
                by_split.setdefault(r.split, []).append(r)
            out[key] = {split: summarize(rs) for split, rs in sorted(by_split.items())}
        return out

    def write_summary(self) -> dict[str, dict[str, SplitSummary]]:
        summary = self.summary()
        data = {k: {s: asdict(v) for s, v in splits.items()} for k, splits in summary.items()}
        atomic_write_text(self.path / "summary.json", json.dumps(data, indent=2, sort_keys=True))
        return summary


def upgrade_run_manifest(raw: dict[str, Any]) -> dict[str, Any]:
    """Old run manifests are upgraded on read, never rejected."""
    version = int(raw.get("schema_version", 1))
    if version > RUN_SCHEMA_VERSION:
        raise RunError(f"run schema version {version} is newer than this wdqa ({RUN_SCHEMA_VERSION}); upgrade wdqa")
    suite = raw.get("suite")
    if isinstance(suite, dict) and "content_sha256" not in suite:
        # Runs before the content hash identified the suite by its indexes alone, which cannot prove
        # the diffs were the same: such a run matches no suite and is answered again.
        raw = {**raw, "suite": {**suite, "content_sha256": None}}
    return raw


def split_summaries(records: Iterable[ScoreRecord]) -> dict[str, SplitSummary]:
    """One judge's aggregates per split from one record per case, as `summary.json` holds them
    (`wdqa submit` and `wdqa verify` compute a bundle's summary with this)."""
    by_split: dict[str, list[ScoreRecord]] = {}
    for r in records:
        by_split.setdefault(r.split, []).append(r)
    return {split: summarize(rs) for split, rs in sorted(by_split.items())}
