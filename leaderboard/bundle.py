"""Result bundles: `wdqa submit` packs a judged run, `wdqa verify` decides whether it adds up.

A bundle (.tar.gz or .zip) holds the run's manifest.json, answers.jsonl, scores/*.jsonl, a
summary.json recomputed at packing time, and bundle.json with the sha256 of each of those files.
Hashes only catch damage; a bundle re-hashed after editing is caught by recomputing the aggregates,
checking labels against the suite, and re-judging a sample. Nothing here runs a method.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import tarfile
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from wdqa.benchmark.errors import WdqaError
from wdqa.benchmark.records import RunFolder, ScoreRecord, SplitSummary, judge_key, summarize

BUNDLE_FORMAT = "wdqa-bundle"
BUNDLE_VERSION = 1
INDEX = "bundle.json"
TOLERANCE = 1e-9  # recomputed floats must equal the stated ones up to JSON round-off


class BundleError(WdqaError):
    """A bundle that cannot be written or read at all (as opposed to one that does not add up)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- packing


def _run_files(run: RunFolder) -> dict[str, bytes]:
    if not run.exists():
        raise BundleError(f"{run.path} is not a wdqa run: manifest.json is missing")
    keys = run.judge_keys()
    if not keys:
        raise BundleError(
            f"run {run.path} has no scores; judge it (`wdqa judge {run.path}`) before submitting"
        )
    files = {
        "manifest.json": run.manifest_path.read_bytes(),
        "answers.jsonl": run.answers_path.read_bytes(),
    }
    for key in keys:
        files[f"scores/{key}.jsonl"] = run.scores_path(key).read_bytes()
    # The stated summary is recomputed now, so a stale summary.json in the run cannot slip in.
    summary = {k: {s: asdict(v) for s, v in splits.items()} for k, splits in run.summary().items()}
    files["summary.json"] = json.dumps(summary, indent=2, sort_keys=True).encode()
    return files


def _archive_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar"
    raise BundleError(f"bundle {path}: name it *.tar.gz, *.tgz or *.zip")


def pack(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the bundle for one judged run and return its path."""
    run = RunFolder(run_dir)
    files = _run_files(run)
    manifest = json.loads(files["manifest.json"])
    index = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": (manifest.get("method") or {}).get("name"),
        "suite": manifest.get("suite"),
        "files": {name: _sha256(data) for name, data in sorted(files.items())},
    }
    files[INDEX] = json.dumps(index, indent=2, sort_keys=True).encode()
    out = Path(out) if out is not None else Path(f"{run.path.resolve().name}.wdqa-bundle.tar.gz")
    kind = _archive_kind(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "zip":
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in sorted(files.items()):
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    else:
        with tarfile.open(out, "w:gz") as tf:
            for name, data in sorted(files.items()):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    return out


# ---------------------------------------------------------------- reading


def _safe_name(name: str, bundle: Path) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise BundleError(
            f"bundle {bundle} holds a path that escapes it: {name!r}; refusing to read it"
        )
    return path.as_posix()


def read_bundle(path: str | Path) -> dict[str, bytes]:
    """Every regular file of the bundle by its path inside it (nothing is extracted to disk)."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle {path} does not exist")
    files: dict[str, bytes] = {}
    try:
        if _archive_kind(path) == "zip":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if not info.is_dir():
                        files[_safe_name(info.filename, path)] = zf.read(info)
        else:
            with tarfile.open(path, "r:gz") as tf:
                for member in tf.getmembers():
                    if member.isfile():
                        handle = tf.extractfile(member)
                        files[_safe_name(member.name, path)] = handle.read() if handle else b""
                    elif not member.isdir():
                        raise BundleError(
                            f"bundle {path} holds a link or device {member.name!r}; refusing it"
                        )
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise BundleError(f"bundle {path} is not a readable archive: {err}") from err
    return files


# ---------------------------------------------------------------- verifying


@dataclass
class Verification:
    """What was checked and what did not add up; a bundle is accepted only with no problems."""

    bundle: str
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.problems


def _jsonl(data: bytes, name: str) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{name} in the bundle is not valid JSON lines: {err}") from err


def _close(a: float, b: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=TOLERANCE)


def _check_hashes(files: dict[str, bytes], v: Verification) -> dict[str, Any] | None:
    if INDEX not in files:
        v.problems.append(
            f"{INDEX} is missing: this is not a wdqa bundle (make one with `wdqa submit RUN_DIR`)"
        )
        return None
    index = json.loads(files[INDEX])
    if index.get("format") != BUNDLE_FORMAT or int(index.get("format_version", 0)) > BUNDLE_VERSION:
        v.problems.append(
            f"{INDEX} names format {index.get('format')!r} v{index.get('format_version')}; "
            f"this wdqa reads {BUNDLE_FORMAT} up to v{BUNDLE_VERSION}"
        )
        return None
    listed: dict[str, str] = index.get("files", {})
    for name, expected in sorted(listed.items()):
        if name not in files:
            v.problems.append(f"{name} is listed in {INDEX} but missing from the bundle")
        elif (actual := _sha256(files[name])) != expected:
            v.problems.append(f"{name} has sha256 {actual[:12]}… but {INDEX} says {expected[:12]}…")
    for name in sorted(set(files) - set(listed) - {INDEX}):
        v.problems.append(f"{name} is in the bundle but not listed in {INDEX}")
    for required in ("manifest.json", "answers.jsonl", "summary.json"):
        if required not in files:
            v.problems.append(f"{required} is missing from the bundle")
    v.checks.append(f"sha256 of {len(listed)} files against {INDEX}")
    return index


def _score_records(files: dict[str, bytes]) -> dict[str, list[ScoreRecord]]:
    out = {}
    for name in sorted(files):
        if name.startswith("scores/") and name.endswith(".jsonl"):
            out[name[len("scores/") : -len(".jsonl")]] = [
                ScoreRecord(**r) for r in _jsonl(files[name], name)
            ]
    return out


def _check_judges(
    manifest: dict[str, Any], scores: dict[str, list[ScoreRecord]], v: Verification
) -> None:
    stated = {j.get("key"): j for j in manifest.get("judges", []) or []}
    for key, records in scores.items():
        judge = stated.get(key)
        if judge is None:
            v.problems.append(
                f"scores/{key}.jsonl is not among the manifest's judges {sorted(stated)}"
            )
            continue
        wrong = [
            r
            for r in records
            if (r.judge, r.prompt_version) != (judge.get("name"), judge.get("prompt_version"))
            or judge_key(r.judge, r.prompt_version) != key
        ]
        if wrong:
            r = wrong[0]
            v.problems.append(
                f"scores/{key}.jsonl: {len(wrong)} record(s) were graded by another judge version than the manifest "
                f"states ({judge.get('name')} prompt {judge.get('prompt_version')}); first: case {r.case_id} says "
                f"{r.judge} prompt {r.prompt_version}"
            )
    v.checks.append("judge name and prompt version of every score against the manifest")


def _check_answers(
    files: dict[str, bytes], scores: dict[str, list[ScoreRecord]], v: Verification
) -> None:
    answers = {r["case_id"]: r for r in _jsonl(files.get("answers.jsonl", b""), "answers.jsonl")}
    for key, records in scores.items():
        bad = [
            r.case_id
            for r in records
            if r.case_id not in answers or answers[r.case_id].get("answer") != r.answer
        ]
        if bad:
            v.problems.append(
                f"scores/{key}.jsonl: {len(bad)} scored answer(s) differ from answers.jsonl "
                f"(first: {', '.join(bad[:3])})"
            )
    v.checks.append("every scored answer against answers.jsonl")


def _check_summary(
    stated: dict[str, Any], scores: dict[str, list[ScoreRecord]], v: Verification
) -> None:
    recomputed: dict[str, dict[str, SplitSummary]] = {}
    for key, records in scores.items():
        by_split: dict[str, list[ScoreRecord]] = {}
        for r in records:
            by_split.setdefault(r.split, []).append(r)
        recomputed[key] = {s: summarize(rs) for s, rs in sorted(by_split.items())}
    for key in sorted(set(stated) | set(recomputed)):
        splits_stated, splits_real = stated.get(key, {}), recomputed.get(key, {})
        for split in sorted(set(splits_stated) | set(splits_real)):
            if split not in splits_real:
                v.problems.append(
                    f"summary.json states {key} / {split} but the bundle has no scores for it"
                )
                continue
            if split not in splits_stated:
                v.problems.append(
                    f"summary.json has no {key} / {split} although the bundle scores it"
                )
                continue
            said, real = splits_stated[split], asdict(splits_real[split])
            for name in ("n", "failed", "invalid"):
                if said.get(name) != real[name]:
                    v.problems.append(
                        f"summary.json states {key} / {split} {name} = {said.get(name)} "
                        f"but the per-case scores give {real[name]}"
                    )
            for name in ("mean", "ci_low", "ci_high"):
                if not _close(float(said.get(name, "nan")), real[name]):
                    v.problems.append(
                        f"summary.json states {key} / {split} {name} = {said.get(name)} "
                        f"but the per-case scores give {real[name]}"
                    )
            for k in "12345":
                a, b = float((said.get("dist") or {}).get(k, 0.0)), real["dist"].get(k, 0.0)
                if not _close(a, b):
                    v.problems.append(
                        f"summary.json states {key} / {split} share of score {k} = {a} "
                        f"but the per-case scores give {b}"
                    )
    v.checks.append("aggregates recomputed from the per-case scores against summary.json")


def _check_suite(
    manifest: dict[str, Any], scores: dict[str, list[ScoreRecord]], suite_dir: Path, v: Verification
) -> Any:
    from wdqa.benchmark.suite import Suite, SuiteError

    try:
        suite = Suite.load(suite_dir, verify=False)
    except SuiteError as err:
        raise BundleError(str(err)) from err
    said = manifest.get("suite") or {}
    if said.get("name") not in (None, suite.name):
        v.problems.append(
            f"the manifest names suite {said.get('name')!r} but {suite_dir} is suite {suite.name!r}"
        )
    if said.get("content_sha256") != suite.content_sha256:
        v.problems.append(
            f"suite content hash differs: the manifest says {str(said.get('content_sha256'))[:16]}… but suite "
            f"{suite.name} {suite.version} at {suite_dir} has {suite.content_sha256[:16]}…; the run scored another "
            "suite revision"
        )
    checked = 0
    for split in sorted({r.split for recs in scores.values() for r in recs}):
        if (
            split not in suite.splits
            or not (suite.root / "splits" / split / "index.parquet").exists()
        ):
            continue
        labels = suite.labels(split)
        wrong = [
            r.case_id
            for recs in scores.values()
            for r in recs
            if r.split == split and (r.diff_id not in labels or labels[r.diff_id].text != r.label)
        ]
        checked += 1
        if wrong:
            v.problems.append(
                f"split {split}: {len(wrong)} scored label(s) differ from the suite's index "
                f"(first: {', '.join(wrong[:3])})"
            )
    v.checks.append(f"suite content hash and the labels of {checked} split(s) against {suite_dir}")
    return suite


def _rejudge(
    scores: dict[str, list[ScoreRecord]],
    manifest: dict[str, Any],
    suite: Any,
    sample: int,
    judge_spec: str,
    max_disagreement: float,
    seed: int,
    v: Verification,
) -> None:
    from wdqa.benchmark.judge.base import JudgeRequest, rubric_for
    from wdqa.benchmark.judge.registry import UnknownJudgeError, get_judge

    try:
        judge = get_judge(judge_spec)
    except UnknownJudgeError as err:
        raise BundleError(str(err)) from err
    key = judge_key(judge.name, judge.prompt_version)
    if key not in scores:
        v.problems.append(
            f"cannot re-judge with {judge_spec}: it is {judge.name} prompt {judge.prompt_version}, "
            f"but the bundle was judged by {', '.join(sorted(scores))}"
        )
        return
    candidates = [
        r for r in scores[key] if not r.failed and r.score is not None and r.answer is not None
    ]
    chosen = random.Random(seed).sample(candidates, min(sample, len(candidates)))
    behaviours: dict[str, str] = {}
    for split in {r.split for r in chosen}:
        if suite is not None and split in suite.splits:
            behaviours[split] = suite.splits[split].behaviour
        else:
            behaviours[split] = "news" if split == "news" else "hidden-topic"
    requests = [
        JudgeRequest(r.case_id, rubric_for(behaviours[r.split]), r.label, r.answer or "")
        for r in chosen
    ]
    verdicts = judge.score(requests)
    differ = [
        (r.case_id, r.score, s.value)
        for r, s in zip(chosen, verdicts, strict=True)
        if s.value != r.score
    ]
    share = len(differ) / len(chosen) if chosen else 0.0
    v.checks.append(
        f"re-judged {len(chosen)} sampled case(s) with {judge_spec}: {len(differ)} differ"
    )
    if share > max_disagreement:
        shown = "; ".join(f"{c}: stated {a}, re-judged {b}" for c, a, b in differ[:3])
        v.problems.append(
            f"re-judging {len(chosen)} sampled cases gave a different score for {len(differ)} "
            f"({share:.0%} > the allowed {max_disagreement:.0%}): {shown}"
        )


def verify(
    bundle: str | Path,
    suite_dir: str | Path | None = None,
    rejudge_sample: int = 0,
    judge_spec: str | None = None,
    max_disagreement: float = 0.1,
    seed: int = 0,
) -> Verification:
    v = Verification(bundle=str(bundle))
    files = read_bundle(bundle)
    if _check_hashes(files, v) is None or any(
        n not in files for n in ("manifest.json", "summary.json")
    ):
        return v
    try:
        manifest = json.loads(files["manifest.json"])
        stated = json.loads(files["summary.json"])
        scores = _score_records(files)
    except (json.JSONDecodeError, TypeError) as err:
        raise BundleError(
            f"bundle {bundle}: manifest, summary or scores are malformed: {err}"
        ) from err
    if not scores:
        v.problems.append("the bundle holds no scores/*.jsonl")
        return v
    _check_judges(manifest, scores, v)
    _check_answers(files, scores, v)
    _check_summary(stated, scores, v)
    suite = _check_suite(manifest, scores, Path(suite_dir), v) if suite_dir is not None else None
    if suite is None:
        v.checks.append("suite not checked (pass --suite DIR to check its content hash and labels)")
    if rejudge_sample > 0:
        if judge_spec is None:
            raise BundleError(
                "--rejudge-sample needs --judge SPEC (the judge the bundle was graded with)"
            )
        _rejudge(scores, manifest, suite, rejudge_sample, judge_spec, max_disagreement, seed, v)
    return v
