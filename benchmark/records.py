"""The run folder: append-only answer and score records, the manifest, and the summary.

Owns the on-disk run format (docs/run-format.md) and its aggregates; produces nothing itself.
`evaluate`, `judge`, `report`, `leaderboard` and `verify` all read runs through this module.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# RunError is defined beside WdqaError (run_manifest.py raises it too); readers of runs import it from here.
from ..core.errors import RunError as RunError
from ..core.errors import WdqaWarning
from .run_manifest import RunManifest


@dataclass(frozen=True)
class AnswerRecord:
    case_id: str
    split: str
    diff_id: str
    answer: str | None
    error: str | None = None
    seconds: float = 0.0
    usage: dict[str, int] | None = None  # what the case read of M and M′ (wdqa/core/meter.py Usage); None before metering


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
    usage: dict[str, int] | None = None  # what grading it cost an LLM judge (types.Score.usage); None otherwise


@dataclass(frozen=True)
class ScoreSummary:
    """One judge's scores on one split, aggregated (summary.json holds one per judge key and split)."""

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


def summarize(records: Iterable[ScoreRecord]) -> ScoreSummary:
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
        return ScoreSummary(float("nan"), float("nan"), float("nan"), 0, failed, invalid, {})
    lo, hi = bootstrap_ci(values)
    counts = np.bincount(np.asarray(values), minlength=6)[1:6]
    dist = {str(k): float(c) / len(values) for k, c in zip(range(1, 6), counts, strict=True)}
    return ScoreSummary(float(np.mean(values)), lo, hi, len(values), failed, invalid, dist)


class TornRecordWarning(WdqaWarning):
    """A record file ended in an incomplete line: a writer stopped mid-record (a crash, a kill)."""


# Record files are JSON lines, appended whole. A writer that dies mid-write leaves at most one
# incomplete last line (no newline); readers leave it out and the next append cuts it off, so the
# case it held has no record and is done again. A bad line anywhere else was not made by a crash.


def _read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every complete line; an incomplete last line is left out with a
    TornRecordWarning, and any other line that is not a JSON object raises RunError."""
    try:
        with open(path, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)  # a writer's batch is seen whole or not at all
            data = fh.read()
    except FileNotFoundError:
        return []
    cut = data.rfind(b"\n") + 1
    if cut < len(data):
        warnings.warn(
            f"{path}: leaving out its incomplete last line ({_torn_what(data[cut:])}), left by a writer "
            "that stopped mid-record; that case counts as not done, and the next write cuts the line off",
            TornRecordWarning,
            stacklevel=1,
        )
    out = []
    for number, line in enumerate(data[:cut].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RunError(
                f"{path} line {number} is not valid JSON ({err}); a crash can only cut the last line short, "
                "so the file was edited or damaged: restore it, or delete that line to redo its case"
            ) from err
        if not isinstance(record, dict):
            raise RunError(f"{path} line {number} is not a JSON object; restore the file, or delete that line to redo its case")
        out.append((number, record))
    return out


def _typed_records(path: Path, kind: type[Any]) -> dict[str, Any]:
    """The latest record per case (a retried case's newer record wins), as dataclass `kind`."""
    out: dict[str, Any] = {}
    for number, raw in _read_records(path):
        try:
            record = kind(**raw)
        except TypeError as err:
            raise RunError(
                f"{path} line {number} is not a {kind.__name__} ({err}); restore the file, or delete that line to redo its case"
            ) from err
        out[record.case_id] = record
    return out


def _append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records as whole lines in one write, under an exclusive lock, after cutting off an
    incomplete last line a crashed writer left.

    The lock (flock on the file itself) keeps two processes appending to one run (two evaluates on
    one folder) from interleaving partial lines, and lets a reader holding the shared lock see
    whole batches; the cut keeps the next record from being glued onto a fragment.
    """
    data = b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _cut_torn_tail(fd, path)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


def _cut_torn_tail(fd: int, path: Path) -> None:
    """Truncate an open record file to its last newline (the caller holds the exclusive lock)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = end = size
    while end > 0:  # scan back block by block: the torn record may be long
        start = max(0, end - (1 << 16))
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            start += newline + 1
            break
        end = start
    tail = os.pread(fd, min(size - start, 1 << 12), start)
    os.ftruncate(fd, start)
    warnings.warn(
        f"{path}: cut off its incomplete last line ({_torn_what(tail)}, {size - start} bytes), left by a "
        "writer that stopped mid-record; that case is done again",
        TornRecordWarning,
        stacklevel=1,
    )


_CASE_ID = re.compile(rb'"case_id":\s*("(?:[^"\\]|\\.)*")')


def _torn_what(tail: bytes) -> str:
    """Which case an incomplete record was about, when its case_id made it to disk."""
    match = _CASE_ID.search(tail)
    if match:
        try:
            return f"case {json.loads(match.group(1))}"
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    return "its case id was not written"


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

    def manifest(self) -> RunManifest:
        """The run's manifest; one written by an older wdqa is upgraded as it is read."""
        if not self.manifest_path.exists():
            raise RunError(f"{self.path} is not a wdqa run: manifest.json is missing")
        try:
            raw = json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise RunError(f"{self.manifest_path} is not valid JSON: {err}") from err
        return RunManifest.from_dict(raw, str(self.manifest_path))

    def write_manifest(self, manifest: RunManifest) -> None:
        from ..core.suite import (
            atomic_write_text,  # suite.py imports torch: readers of runs need not
        )

        atomic_write_text(self.manifest_path, json.dumps(manifest.to_dict(), indent=2, sort_keys=True, default=str))

    # -- answers

    def answers(self) -> dict[str, AnswerRecord]:
        """Latest record per case (a retried case's newer record wins)."""
        return _typed_records(self.answers_path, AnswerRecord)

    def append_answers(self, records: Iterable[AnswerRecord]) -> None:
        _append_jsonl(self.answers_path, (asdict(r) for r in records))

    # -- scores

    def judge_keys(self) -> list[str]:
        folder = self.path / "scores"
        return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.exists() else []

    def scores(self, key: str) -> dict[str, ScoreRecord]:
        return _typed_records(self.scores_path(key), ScoreRecord)

    def append_scores(self, key: str, records: Iterable[ScoreRecord]) -> None:
        _append_jsonl(self.scores_path(key), (asdict(r) for r in records))

    # -- summary

    def summary(self) -> dict[str, dict[str, ScoreSummary]]:
        """Recomputed from the score records (the summary file is a convenience copy)."""
        out: dict[str, dict[str, ScoreSummary]] = {}
        for key in self.judge_keys():
            by_split: dict[str, list[ScoreRecord]] = {}
            for r in self.scores(key).values():
                by_split.setdefault(r.split, []).append(r)
            out[key] = {split: summarize(rs) for split, rs in sorted(by_split.items())}
        return out

    def write_summary(self) -> dict[str, dict[str, ScoreSummary]]:
        summary = self.summary()
        data = {k: {s: asdict(v) for s, v in splits.items()} for k, splits in summary.items()}
        from ..core.suite import atomic_write_text

        atomic_write_text(self.path / "summary.json", json.dumps(data, indent=2, sort_keys=True))
        return summary


def split_summaries(records: Iterable[ScoreRecord]) -> dict[str, ScoreSummary]:
    """One judge's aggregates per split from one record per case, as `summary.json` holds them
    (`wdqa submit` and `wdqa verify` compute a bundle's summary with this)."""
    by_split: dict[str, list[ScoreRecord]] = {}
    for r in records:
        by_split.setdefault(r.split, []).append(r)
    return {split: summarize(rs) for split, rs in sorted(by_split.items())}
