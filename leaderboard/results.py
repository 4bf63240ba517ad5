"""Results as the leaderboard sees them: per-case judge scores of one method on one base model.

Owns turning run folders (through `wdqa.benchmark.records`) into `ResultSet`s; per-case score
tables made elsewhere are read by `score_table.py`. Nothing here renders or judges anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from wdqa.benchmark.records import RunError, RunFolder, ScoreRecord, ScoreSummary, summarize
from wdqa.benchmark.run_manifest import RunManifest


@dataclass(frozen=True)
class SuiteRef:
    """Which suite a result was scored on, as the run manifest states it."""

    name: str
    version: str
    revision: str
    content_sha256: str
    root: str | None = None

    @property
    def label(self) -> str:
        rev = self.revision or self.version
        return f"{self.name}@{rev}" if rev else self.name


@dataclass(frozen=True)
class ResultSet:
    """Every judged case of one method on one base model under one (judge, prompt version)."""

    method: str
    oracle: bool
    base_model: str
    suite: SuiteRef
    judge: str
    prompt_version: str
    judge_key: str
    records: tuple[ScoreRecord, ...]
    sources: tuple[str, ...] = ()
    manifests: tuple[RunManifest, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. train_fraction for data scaling

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.base_model, self.method, self.judge_key)

    @property
    def slug(self) -> str:
        raw = f"{self.base_model}--{self.method}--{self.judge_key}"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)

    @cached_property
    def splits(self) -> list[str]:
        return sorted({r.split for r in self.records})

    def records_for(self, split: str) -> list[ScoreRecord]:
        return [r for r in self.records if r.split == split]

    @cached_property
    def summaries(self) -> dict[str, ScoreSummary]:
        # Same aggregate as `wdqa evaluate` writes, so the site and the run's summary.json agree.
        return {split: summarize(self.records_for(split)) for split in self.splits}


def _judge_of(key: str, manifest: RunManifest, records: Sequence[ScoreRecord]) -> tuple[str, str]:
    """The judge's name and prompt version: as the manifest lists it, else as its records say."""
    entry = manifest.judge(key)
    if entry is not None:
        return entry.name, entry.prompt_version
    if records:
        return records[0].judge, records[0].prompt_version
    return key, ""


def load_run(path: str | Path, judge: str | None = None) -> list[ResultSet]:
    """One ResultSet per judge key of the run (or only `judge`, given as a key or a judge name)."""
    run = RunFolder(path)
    manifest = run.manifest()
    keys = run.judge_keys()
    if not keys:
        raise RunError(
            f"run {run.path} has no scores yet; judge it first with `wdqa judge {run.path}`"
        )
    if judge is not None:
        chosen = [k for k in keys if judge in (k, _judge_of(k, manifest, [])[0])]
        if not chosen:
            raise RunError(
                f"run {run.path} has no scores by judge {judge!r}; it has: {', '.join(keys)}"
            )
        keys = chosen
    suite = manifest.suite
    suite_ref = SuiteRef(
        name=suite.name,
        version=suite.version,
        revision=suite.revision or "",
        content_sha256=suite.content_sha256 or "",
        root=suite.root,
    )
    fraction = manifest.method.train_fraction()
    out = []
    for key in keys:
        records = tuple(sorted(run.scores(key).values(), key=lambda r: r.case_id))
        name, prompt_version = _judge_of(key, manifest, records)
        out.append(
            ResultSet(
                method=manifest.method.name,
                oracle=manifest.method.oracle,
                base_model=suite.base_model or "unknown",
                suite=suite_ref,
                judge=name,
                prompt_version=prompt_version,
                judge_key=key,
                records=records,
                sources=(str(run.path),),
                manifests=(manifest,),
                extra={"train_fraction": fraction} if fraction is not None else {},
            )
        )
    return out


def merge(results: Sequence[ResultSet]) -> list[ResultSet]:
    """Join runs of the same (base model, method, judge) — e.g. one run per split — into one set.

    A case scored in two runs is refused: which one counts would be a silent choice.
    """
    grouped: dict[tuple[str, str, str], list[ResultSet]] = {}
    for r in results:
        grouped.setdefault(r.identity, []).append(r)
    merged = []
    for parts in grouped.values():
        if len(parts) == 1:
            merged.append(parts[0])
            continue
        seen: dict[str, str] = {}
        records: list[ScoreRecord] = []
        for part in parts:
            for rec in part.records:
                if rec.case_id in seen:
                    raise RunError(
                        f"case {rec.case_id} of method {part.method} is scored in both {seen[rec.case_id]} "
                        f"and {', '.join(part.sources)}; pass only one of these runs"
                    )
                seen[rec.case_id] = ", ".join(part.sources)
                records.append(rec)
        first = parts[0]
        merged.append(
            ResultSet(
                method=first.method,
                oracle=any(p.oracle for p in parts),
                base_model=first.base_model,
                suite=first.suite,
                judge=first.judge,
                prompt_version=first.prompt_version,
                judge_key=first.judge_key,
                records=tuple(sorted(records, key=lambda r: r.case_id)),
                sources=tuple(s for p in parts for s in p.sources),
                manifests=tuple(m for p in parts for m in p.manifests),
                extra=first.extra,
            )
        )
    return sorted(merged, key=lambda r: r.identity)


def load_runs(paths: Sequence[str | Path], judge: str | None = None) -> list[ResultSet]:
    return merge([rs for p in paths for rs in load_run(p, judge)])
