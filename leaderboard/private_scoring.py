"""`wdqa score-private`: the maintainers judge a bundle's private-split answers and sign the result;
`wdqa verify` checks such a result.

Reads top to bottom: read the bundle (it must add up), find the suite it was answered on (the same
content hash), check the label file labels that suite's private split, judge every answer against
the maintainers' labels, count the canaries named, sign, and write the scored bundle (the bundle's
members plus private-result.json). The signed result holds aggregates only: per-case scores would
let a submitter learn the labels one answer at a time. Nothing here runs a method.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wdqa.benchmark.records import AnswerRecord, ScoreRecord, judge_key, summarize
from wdqa.core.errors import WdqaError
from wdqa.core.private_labels import check_labels_match, read_private_labels

from .bundle import find_suite, read_bundle_records
from .bundle_archive import read_archive, write_archive
from .bundle_checks import (
    INDEX,
    PRIVATE_RESULT,
    BundleRecords,
    Verification,
    check_cases,
    check_index,
)
from .signing import key_id, read_public_key, sign, signature_problem

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from wdqa.benchmark.judge.base import Judge
    from wdqa.core.private_labels import PrivateLabels
    from wdqa.core.suite import Suite

RESULT_FORMAT = "wdqa-private-result"
# A canary counts as named when the judge grades the answer against its decoy label this high (the
# paper's "correct" scores), or the answer holds the decoy label verbatim.
CANARY_NAMED_SCORE = 4


class PrivateScoringError(WdqaError):
    """A bundle the maintainers cannot score: another suite revision, a label file of another split,
    answers missing, a bundle that does not add up."""


def score_private(
    bundle: Path, labels_path: Path, judge: Judge, key: Ed25519PrivateKey, suite: str | None = None,
    out: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Judge `bundle`'s answers on the private split `labels_path` labels, and write the scored bundle
    (default: beside it, `.scored` before the extension). Returns its path and the signed result."""
    files, records = _read(bundle)
    found = _answered_suite(records, suite)
    labels = read_private_labels(labels_path)
    check_labels_match(labels, found, labels.split)
    answers = _private_answers(records, found, labels.split)
    scores = _judge(answers, labels, found.splits[labels.split].behaviour, judge, records.manifest.seed)
    result = sign(_result(records, found, labels, answers, scores, judge), key)
    files[PRIVATE_RESULT] = json.dumps(result, indent=2, sort_keys=True).encode()
    index = json.loads(files[INDEX])
    index["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items()) if n != INDEX}
    files[INDEX] = json.dumps(index, indent=2, sort_keys=True).encode()
    out = out or bundle.with_name(bundle.name.replace(".tar.gz", "").replace(".zip", "") + ".scored.tar.gz")
    write_archive(out, files)
    return out, result


def _read(bundle: Path) -> tuple[dict[str, bytes], BundleRecords]:
    v = Verification(bundle=str(bundle))
    files = read_archive(bundle).files
    records = read_bundle_records(files, v) if check_index(files, v) else None
    if records is not None:
        check_cases(records, v)
    if records is None or v.problems:
        raise PrivateScoringError(
            f"bundle {bundle} does not add up ({v.problems[0] if v.problems else 'unreadable'}); "
            f"run `wdqa verify {bundle}` for every problem, and ask for a bundle packed by `wdqa submit`"
        )
    return files, records


def _answered_suite(records: BundleRecords, suite: str | None) -> Suite:
    found, where = find_suite(records.manifest, suite, Verification(bundle=""))
    said = records.manifest.suite.content_sha256
    if said != found.content_sha256:
        raise PrivateScoringError(
            f"the bundle was answered on suite {records.manifest.suite.name} content {str(said)[:12]}…, but the suite "
            f"at {where} is {found.content_sha256[:12]}… (another revision); score it with the revision it was "
            "answered on (--suite DIR), or ask the submitter to evaluate this one"
        )
    return found


def _private_answers(records: BundleRecords, suite: Suite, split: str) -> dict[str, AnswerRecord]:
    answers = {c: a for c, a in records.answers.items() if a.split == split}
    expected = {f"{split}/{d}" for d in suite.case_ids(split)}
    if set(answers) != expected:
        odd = sorted(set(answers) ^ expected)
        raise PrivateScoringError(
            f"the bundle answers {len(answers)} of the {len(expected)} cases of split {split} ({len(odd)} missing or "
            f"foreign, first {odd[0]}); ask for a bundle of a run on the whole split (`wdqa evaluate … --split {split}`)"
        )
    return answers


def _judge(
    answers: Mapping[str, AnswerRecord], labels: PrivateLabels, behaviour: str, judge: Judge, seed: int
) -> dict[str, ScoreRecord]:
    """One score per case, against the maintainers' labels; a failed answer is scored as failed."""
    from wdqa.benchmark.judge.base import JudgeRequest, rubric_for
    from wdqa.benchmark.judge.stage import case_seed

    by_diff = labels.labels(behaviour)
    answered = [a for a in answers.values() if a.error is None and a.answer is not None]
    requests = [JudgeRequest(a.case_id, rubric_for(behaviour), by_diff[a.diff_id].text, a.answer or "",
                             case_seed(a.case_id, seed)) for a in answered]
    verdicts = dict(zip((a.case_id for a in answered), judge.score(requests), strict=True))
    scores = {}
    for c, a in sorted(answers.items()):
        verdict = verdicts.get(c)
        scores[c] = ScoreRecord(c, a.split, a.diff_id, by_diff[a.diff_id].text, a.answer,
                                verdict.value if verdict else None, judge.name, judge.prompt_version,
                                failed=verdict is None)
    return scores


def answers_sha256(answers: Iterable[AnswerRecord]) -> str:
    """What the signature binds the result to: each answer's case, text and error."""
    lines = (json.dumps({"case_id": a.case_id, "answer": a.answer, "error": a.error}, sort_keys=True)
             for a in sorted(answers, key=lambda a: a.case_id))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _named(score: ScoreRecord) -> bool:
    said = (score.answer or "").casefold()
    return (score.score or 0) >= CANARY_NAMED_SCORE or score.label.casefold() in said


def _result(
    records: BundleRecords, suite: Suite, labels: PrivateLabels, answers: Mapping[str, AnswerRecord],
    scores: Mapping[str, ScoreRecord], judge: Judge,
) -> dict[str, Any]:
    canaries = {f"{labels.split}/{d}" for d in labels.canaries}
    named = sum(_named(scores[c]) for c in canaries)
    manifest = records.manifest
    return {
        "format": RESULT_FORMAT,
        "format_version": 1,
        "method": {"name": manifest.method.name, "sha256": manifest.method.sha256, "oracle": manifest.method.oracle},
        "suite": {"name": suite.name, "version": suite.version, "content_sha256": suite.content_sha256,
                  "base_model": suite.base_model, "revision": manifest.suite.revision},
        "split": labels.split,
        "index_sha256": labels.index_sha256,
        "answers_sha256": answers_sha256(answers.values()),
        "judge": {"key": judge_key(judge.name, judge.prompt_version), "name": judge.name,
                  "prompt_version": judge.prompt_version},
        # Canaries are left out of the score: their labels are decoys no honest method can name.
        "summary": asdict(summarize(s for c, s in scores.items() if c not in canaries)),
        "canaries": {"n": len(canaries), "named": named, "flagged": named > 0},
        "scored": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------- checking (wdqa verify)


def check_private_result(
    files: Mapping[str, bytes], records: BundleRecords, suite: Suite, public_key: str | None, v: Verification
) -> dict[str, Any] | None:
    """The signed result in a scored bundle: its signature under the suite's maintainer key (or
    `public_key`), its suite revision, and the bundle's answers as they were signed."""
    try:
        result = json.loads(files[PRIVATE_RESULT])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        v.problems.append(f"{PRIVATE_RESULT} is not valid JSON: {err}; ask the maintainers for the scored bundle again")
        return None
    key = public_key or suite.maintainer_public_key
    if key is None:
        v.problems.append(
            f"{PRIVATE_RESULT} cannot be checked: suite {suite.name} publishes no maintainer public key; pass the "
            "maintainers' key with --public-key FILE (their maintainer-ed25519.pub)"
        )
        return None
    key = read_public_key(key, "the maintainer public key")
    problem = signature_problem(result, key)
    if problem is not None:
        v.problems.append(f"{PRIVATE_RESULT}: {problem}; only the maintainers' `wdqa score-private` makes a valid one")
        return None
    split = result.get("split")
    if result.get("suite", {}).get("content_sha256") != suite.content_sha256:
        v.problems.append(f"{PRIVATE_RESULT} was signed for another suite revision than {suite.name} {suite.version}")
    if result.get("method", {}).get("sha256") != records.manifest.method.sha256:
        v.problems.append(f"{PRIVATE_RESULT} was signed for another method than the bundle's manifest names")
    signed, now = result.get("answers_sha256"), answers_sha256(a for a in records.answers.values() if a.split == split)
    if signed != now:
        v.problems.append(
            f"the answers of split {split} were edited after signing (their sha256 is {now[:12]}…, the signed result "
            f"says {str(signed)[:12]}…); only the answers the maintainers scored count: submit those unchanged"
        )
    v.checks.append(f"{PRIVATE_RESULT}: Ed25519 signature by maintainer key {key_id(key)}, suite revision, answers")
    return result
