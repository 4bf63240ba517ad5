"""The judge stage: grade a run's answers with one judge, appending scores/<judge_key>.jsonl.

Owns pairing answers with labels, resuming (cases already graded by this judge and prompt
version are skipped), the per-case order seed and the both-orders flip check. `wdqa evaluate`
and `wdqa judge` both call `judge_run`; neither the answers nor the labels are produced here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ...core.types import Label, Score
from ..records import AnswerRecord, RunError, RunFolder, ScoreRecord, _append_jsonl, judge_key
from ..run_manifest import RunJudge
from .base import Judge, JudgeRequest, rubric_for

CHUNK = 64  # scores are appended per chunk: an interrupted stage loses at most one chunk


@dataclass(frozen=True)
class JudgeStageResult:
    key: str
    judged: int  # graded now
    skipped: int  # already graded by this judge and prompt version with the same answer
    failed: int  # the method gave no answer: recorded without asking the judge
    invalid: int  # the judge's reply was unusable
    seconds: float
    flip_rate: float | None = None  # share of pairs whose grade changes with the order of the texts
    flips: int = 0
    order_pairs: int = 0
    usage: dict[str, Any] | None = None  # tokens / cost, for judges that report them


def case_seed(case_id: str, seed: int = 0) -> int:
    """A stable per-case seed: the same case is shown in the same order on every rerun."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{case_id}".encode()).digest()[:4], "big")


def flipped(request: JudgeRequest) -> JudgeRequest:
    """The same pair with the other order of the two texts (judges order by the seed's parity)."""
    return replace(request, seed=request.seed ^ 1)


def judge_run(
    run: RunFolder,
    judge: Judge,
    labels: Mapping[str, Label],
    seed: int = 0,
    both_orders: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> JudgeStageResult:
    """Grade every answer of `run` not yet graded by `judge`, but those of its private splits;
    `labels` maps case_id to its label.

    Appends to scores/<judge_key>.jsonl (a case whose answer changed since it was graded is
    graded again; the newer record wins on read) and refreshes summary.json.
    """
    t0 = time.perf_counter()
    key = judge_key(judge.name, judge.prompt_version)
    private = set(run.manifest().private_splits) if run.exists() else set()  # answered for the maintainers to judge
    answers = {c: a for c, a in run.answers().items() if a.split not in private}
    missing = sorted(set(answers) - set(labels))
    if missing:
        raise RunError(
            f"{run.path}: {len(missing)} answered cases have no label in the suite (e.g. {missing[:3]}); "
            "is the run's manifest pointing at the suite it was answered on?"
        )
    done = run.scores(key)
    todo = [a for a in answers.values() if not (a.case_id in done and done[a.case_id].answer == a.answer)]
    failed = [a for a in todo if a.error is not None or a.answer is None]
    to_grade = [a for a in todo if a.error is None and a.answer is not None]

    run.append_scores(key, (_failed_record(a, labels, judge) for a in failed))
    invalid = flips = order_pairs = 0
    for start in range(0, len(to_grade), CHUNK):
        chunk = to_grade[start : start + CHUNK]
        requests = [_request(a, labels, seed) for a in chunk]
        scores = judge.score(requests)
        if len(scores) != len(requests):
            raise RuntimeError(f"judge {judge.name} returned {len(scores)} scores for {len(requests)} requests")
        if both_orders:
            other = judge.score([flipped(r) for r in requests])
            _append_jsonl(
                run.path / "judge-orders" / f"{key}.jsonl",
                ({"case_id": s.case_id, "score": s.value, "score_other_order": o.value} for s, o in zip(scores, other, strict=True)),
            )
            both_valid = [(s.value, o.value) for s, o in zip(scores, other, strict=True) if s.valid and o.valid]
            order_pairs += len(both_valid)
            flips += sum(a != b for a, b in both_valid)
        run.append_scores(key, (_record(a, labels, s) for a, s in zip(chunk, scores, strict=True)))
        invalid += sum(not s.valid for s in scores)
        if progress is not None:
            progress(min(start + CHUNK, len(to_grade)), len(to_grade))
    run.write_summary()
    return JudgeStageResult(
        key=key,
        judged=len(to_grade),
        skipped=len(answers) - len(todo),
        failed=len(failed),
        invalid=invalid,
        seconds=time.perf_counter() - t0,
        flip_rate=(flips / order_pairs if order_pairs else None) if both_orders else None,
        flips=flips,
        order_pairs=order_pairs,
        usage=getattr(judge, "usage_summary", lambda: None)(),
    )


def record_judge_in_manifest(run: RunFolder, judge: Judge, usage: dict[str, Any] | None = None) -> None:
    """List the judge in the run's manifest so a verifier knows which score files to expect;
    `usage` (API calls, tokens, cost of the last grading) is kept with it when given."""
    entry = RunJudge(judge_key(judge.name, judge.prompt_version), judge.name, judge.prompt_version, usage or None)
    run.write_manifest(run.manifest().with_judge(entry))


def _request(answer: AnswerRecord, labels: Mapping[str, Label], seed: int) -> JudgeRequest:
    label = labels[answer.case_id]
    return JudgeRequest(answer.case_id, rubric_for(label.behaviour), label.text, answer.answer or "", case_seed(answer.case_id, seed))


def _record(answer: AnswerRecord, labels: Mapping[str, Label], score: Score) -> ScoreRecord:
    return ScoreRecord(
        case_id=answer.case_id,
        split=answer.split,
        diff_id=answer.diff_id,
        label=labels[answer.case_id].text,
        answer=answer.answer,
        score=score.value,
        judge=score.judge,
        prompt_version=score.prompt_version,
        raw=score.raw,
        prompt=score.prompt,
        usage=score.usage,
    )


def _failed_record(answer: AnswerRecord, labels: Mapping[str, Label], judge: Judge) -> ScoreRecord:
    return ScoreRecord(
        case_id=answer.case_id,
        split=answer.split,
        diff_id=answer.diff_id,
        label=labels[answer.case_id].text,
        answer=answer.answer,
        score=None,
        judge=judge.name,
        prompt_version=judge.prompt_version,
        raw=json.dumps({"method_error": (answer.error or "no answer")[:500]}),
        failed=True,
    )


__all__ = ["JudgeStageResult", "case_seed", "flipped", "judge_run", "record_judge_in_manifest"]
