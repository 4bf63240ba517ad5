"""Result bundles: `wdqa submit` packs a judged run, `wdqa verify` decides whether it adds up.

A bundle (.tar.gz or .zip) holds the run's manifest.json, answers.jsonl and scores/*.jsonl with
one record per case (the last the run wrote, as `RunFolder` reads them), a summary.json recomputed
from those records, and bundle.json with the sha256 of each file. Hashes only catch damage; a
bundle re-hashed after editing is caught by the checks of `bundle_checks.py` against the suite the
manifest names and by re-judging a sample. Nothing here runs a method.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from wdqa.benchmark.records import AnswerRecord, RunFolder, ScoreRecord, judge_key, split_summaries
from wdqa.benchmark.run_manifest import RunJudge, RunManifest
from wdqa.core.errors import RunError, WdqaError

from .bundle_archive import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    BundleError,
    archive_kind,
    read_archive,
    write_archive,
)
from .bundle_checks import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    INDEX,
    PRIVATE_RESULT,
    SCORE_FILE,
    BundleRecords,
    Verification,
    check_cases,
    check_index,
    check_judges,
    check_suite,
    check_summary,
    rejudge,
)
from .bundle_records import read_json_object, read_records

if TYPE_CHECKING:
    from wdqa.benchmark.judge.base import Judge
    from wdqa.core.suite import Suite

__all__ = ["ArchiveLimits", "BundleError", "Verification", "pack", "verify"]

DEFAULT_REJUDGE_SAMPLE = 20
OFFLINE_JUDGE = "offline"  # the judge spec `verify` re-judges with by default: it needs no network


# ---------------------------------------------------------------- packing


def _jsonl(records: Iterable[AnswerRecord | ScoreRecord]) -> bytes:
    return "".join(json.dumps(asdict(r), sort_keys=True) + "\n" for r in records).encode()


def _judge_entries(manifest: RunManifest, scores: dict[str, dict[str, ScoreRecord]]) -> tuple[RunJudge, ...]:
    """One manifest entry per packed score file: the run's own entry (with its usage) where the
    manifest has one; a judge whose entry a later `wdqa evaluate` replaced is named from its records."""
    entries = []
    for key, graded in sorted(scores.items()):
        first = next(iter(graded.values()))
        entries.append(manifest.judge(key) or RunJudge(key, first.judge, first.prompt_version))
    return tuple(entries)


def canonical_files(run: RunFolder) -> dict[str, bytes]:
    """The run's files as a bundle holds them: one answer and one score per case and judge (the last
    the run wrote), re-serialised, and the summary recomputed from exactly those records. Answers of
    a private split go unscored: the maintainers score them (`wdqa score-private`)."""
    manifest = run.manifest()
    keys = run.judge_keys()
    answers = run.answers()
    if not answers:
        raise BundleError(f"run {run.path} has no answers; run `wdqa evaluate` before submitting")
    public = {c: a for c, a in answers.items() if a.split not in manifest.private_splits}
    if public and not keys:
        raise BundleError(
            f"run {run.path} has no scores; judge it (`wdqa judge {run.path}`) before submitting"
        )
    # A judge that graded nothing (a run of private splits only) has no score file to pack.
    scores = {key: graded for key in keys if (graded := run.scores(key))}
    for key, graded in scores.items():
        stale = sorted(
            c for c, a in public.items() if c not in graded or graded[c].answer != a.answer
        )
        stale += sorted(set(graded) - set(public))
        if stale:
            raise BundleError(
                f"run {run.path}: scores/{key}.jsonl does not grade the run's current answers ({len(stale)} case(s) "
                f"unscored or graded on another answer, first {stale[0]}); grade them with `wdqa judge {run.path} "
                "--judge SPEC`, or move that file out of the run if you do not submit that judge"
            )
    manifest = replace(manifest, judges=_judge_entries(manifest, scores))
    files = {
        "manifest.json": json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode(),
        "answers.jsonl": _jsonl(answers[c] for c in sorted(answers)),
    }
    summary = {}
    for key, graded in scores.items():
        files[f"scores/{key}.jsonl"] = _jsonl(graded[c] for c in sorted(graded))
        summary[key] = {split: asdict(s) for split, s in split_summaries(graded.values()).items()}
    files["summary.json"] = json.dumps(summary, indent=2, sort_keys=True).encode()
    return files


def pack(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the bundle for one judged run and return its path."""
    run = RunFolder(run_dir)
    if not run.exists():
        raise BundleError(f"{run.path} is not a wdqa run: manifest.json is missing")
    out = Path(out) if out is not None else Path(f"{run.path.resolve().name}.wdqa-bundle.tar.gz")
    archive_kind(out)  # refuse a bad name before reading the run
    files = canonical_files(run)
    manifest = RunManifest.from_dict(json.loads(files["manifest.json"]))  # as packed
    index = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": manifest.method.name,
        "suite": manifest.to_dict()["suite"],
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[INDEX] = json.dumps(index, indent=2, sort_keys=True).encode()
    write_archive(out, files)
    return out


# ---------------------------------------------------------------- verifying


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def find_suite(
    manifest: RunManifest, suite: str | Path | None, v: Verification
) -> tuple[Suite, str]:
    """The suite to check against: `suite` when given, else the one the manifest names (its source,
    its folder on the machine that ran it, its name), through `resolve_suite`; the one whose content
    hash the manifest states is preferred."""
    from wdqa.benchmark.sources import resolve_suite

    said = manifest.suite
    wanted = said.content_sha256
    if suite is not None:
        candidates = [str(suite)]
    else:
        candidates = list(dict.fromkeys(c for c in (said.source, said.root, said.name) if c))
    revision = said.revision
    found: list[tuple[Suite, str]] = []
    failures: list[str] = []
    for name in candidates:
        try:
            loaded = resolve_suite(name, revision=revision)
        except Exception as err:  # kept: named in the error below, or in the checks if another fits
            failures.append(f"{name}: {_one_line(err)}")
            continue
        found.append((loaded, name))
        if loaded.content_sha256 == wanted:
            break
    if not found:
        tried = "; ".join(failures) if failures else "the manifest names no suite"
        raise BundleError(
            f"cannot find the suite the bundle was scored on ({tried}); pass --suite DIR with that suite's folder"
        )
    v.checks.extend(f"suite candidate not used: {f}" for f in failures)
    return next(((s, n) for s, n in found if s.content_sha256 == wanted), found[0])


def _judges_to_rejudge(
    records: BundleRecords, judge_spec: str | None, v: Verification
) -> dict[str, Judge]:
    """The judge for each score file that can be re-run here: `judge_spec` for its own key, the
    offline judge for a file graded by the same offline judge version; the rest are named unverified."""
    from wdqa.benchmark.judge.registry import get_judge

    judges: dict[str, Judge] = {}
    if judge_spec is not None:
        try:
            judge = get_judge(judge_spec)
        except WdqaError as err:
            raise BundleError(_one_line(err)) from err
        key = judge_key(judge.name, judge.prompt_version)
        if key in records.scores:
            judges[key] = judge
        else:
            v.problems.append(
                f"cannot re-judge with {judge_spec}: it is {judge.name} prompt {judge.prompt_version}, but the bundle "
                f"was judged by {', '.join(sorted(records.scores))}"
            )
    if set(records.scores) - set(judges):
        try:
            offline = get_judge(OFFLINE_JUDGE)
            judges.setdefault(judge_key(offline.name, offline.prompt_version), offline)
        except WdqaError as err:
            v.checks.append(
                f"the offline judge is not available to re-judge with: {_one_line(err)}"
            )
    for key in sorted(set(records.scores) - set(judges)):
        v.unverified.append(
            f"scores/{key}.jsonl was not re-judged: its judge is not available here offline; "
            "re-judge a sample with --judge SPEC (e.g. openai:MODEL)"
        )
    return {k: j for k, j in judges.items() if k in records.scores}


def _read_manifest(files: dict[str, bytes], v: Verification) -> RunManifest | None:
    """The bundle's manifest as the run manifest it claims to be; a field of the wrong type is a problem."""
    raw = read_json_object(files, "manifest.json", v.problems)
    if raw is None:
        return None
    try:
        return RunManifest.from_dict(raw, "manifest.json", fix="re-pack the run with `wdqa submit`")
    except RunError as err:
        v.problems.append(str(err))
        return None


def read_bundle_records(files: dict[str, bytes], v: Verification) -> BundleRecords | None:
    """The parsed members, or None (with the reasons in `v`) when the manifest or summary cannot be read."""
    manifest = _read_manifest(files, v)
    summary = read_json_object(files, "summary.json", v.problems)
    answers, well_formed = read_records(files, "answers.jsonl", AnswerRecord, v.problems)
    malformed = set() if well_formed else {"answers.jsonl"}
    scores = {}
    for name in sorted(files):
        if match := SCORE_FILE.fullmatch(name):
            scores[match.group(1)], well_formed = read_records(files, name, ScoreRecord, v.problems)
            malformed |= set() if well_formed else {name}
    if manifest is None or summary is None:
        return None
    return BundleRecords(manifest, summary, answers, scores, malformed)


def verify(
    bundle: str | Path,
    suite: str | Path | None = None,
    rejudge_sample: int = DEFAULT_REJUDGE_SAMPLE,
    judge_spec: str | None = None,
    max_disagreement: float = 0.1,
    seed: int | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    public_key: str | None = None,
) -> Verification:
    """Check a bundle against itself, the suite it names (or `suite`) and a re-judged sample.

    Every problem found is listed; a BundleError means the bundle or its suite cannot be read at all.
    The re-judged sample is drawn with `seed`, by default a fresh one (named in the checks), so a
    tamperer cannot know which cases will be graded again. A scored bundle's signed private result is
    checked against the suite's maintainer key (or `public_key`, hex).
    """
    from wdqa.core.suite import SuiteError

    v = Verification(bundle=str(bundle))
    archive = read_archive(bundle, limits)
    if archive.problems:  # a hostile archive is not read further
        v.problems.extend(archive.problems)
        return v
    if not check_index(archive.files, v) or (records := read_bundle_records(archive.files, v)) is None:
        return v
    check_judges(records, v)
    check_cases(records, v)
    check_summary(records, v)
    found, where = find_suite(records.manifest, suite, v)
    try:
        labels = check_suite(records, found, where, v)
    except SuiteError as err:
        raise BundleError(_one_line(err)) from err
    signed = None
    if PRIVATE_RESULT in archive.files:
        from .private_scoring import check_private_result

        signed = check_private_result(archive.files, records, found, public_key, v)
    for split in records.manifest.private_splits:
        n = sum(1 for a in records.answers.values() if a.split == split)
        if signed is None or signed.get("split") != split:
            v.unverified.append(
                f"split {split} is private: its {n} answers are scored by the maintainers (`wdqa score-private`), not here"
            )
    if rejudge_sample <= 0:
        v.unverified.append("no case was re-judged (--rejudge-sample 0)")
        return v
    seed = secrets.randbelow(1 << 31) if seed is None else seed
    manifest_seed = records.manifest.seed
    for key, judge in sorted(_judges_to_rejudge(records, judge_spec, v).items()):
        rejudge(
            records.scores[key],
            key,
            judge,
            labels,
            manifest_seed,
            rejudge_sample,
            max_disagreement,
            seed,
            v,
        )
    return v
