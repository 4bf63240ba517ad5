"""The answer stage: a method, in its own process, answers a suite's cases; each answer is written
as it is produced.

Owns batching cases into method calls, failing the cases of a call that raised, hung or killed
the method's process (and isolating the culprit case by case), and resuming an interrupted run.
The method's process (`worker/`) loads the cases itself; this module sends case ids, and the
trigger only to oracles. Judging is a separate stage (`judge/stage.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..core.meter import Usage
from ..core.suite import Suite
from .records import AnswerRecord, RunFolder
from .worker import MethodProcess

Triggers = dict[str, tuple[str | None, str | None]]


@dataclass
class AnswerStats:
    answered: int = 0
    failed: int = 0
    skipped: int = 0  # already answered by an earlier (interrupted) run
    seconds: float = 0.0
    first_error: str | None = None


def run_answer_stage(
    method: MethodProcess,
    suite: Suite,
    splits: Sequence[str],
    run: RunFolder,
    batch_size: int = 32,
    timeout_per_case: float | None = 300.0,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    budget_tokens: int | None = None,
) -> AnswerStats:
    """Answer every not-yet-answered case of the splits; each batch is appended to the run at once.
    With `budget_tokens`, a case that ran more tokens through M and M′ fails with that reason."""
    stats = AnswerStats()
    done = {cid for cid, r in run.answers().items() if r.error is None}
    t0 = time.perf_counter()
    for split in splits:
        case_ids = suite.case_ids(split)[:limit]
        pending = [d for d in case_ids if f"{split}/{d}" not in done]
        stats.skipped += len(case_ids) - len(pending)
        if progress and len(case_ids) > len(pending):
            progress(len(case_ids) - len(pending))
        triggers = suite.triggers(split) if method.oracle else None
        for start in range(0, len(pending), batch_size):
            records = answer_batch(method, split, pending[start : start + batch_size], triggers, timeout_per_case)
            records = [over_budget(r, budget_tokens) for r in records]
            run.append_answers(records)
            _count(records, stats)
            if progress:
                progress(len(records))
    stats.seconds = time.perf_counter() - t0
    return stats


def answer_batch(
    method: MethodProcess,
    split: str,
    diff_ids: Sequence[str],
    triggers: Triggers | None,
    timeout_per_case: float | None,
) -> list[AnswerRecord]:
    """Answer a batch in one call; if the call fails, answer its cases one by one to isolate the
    culprit. A case that failed alone (raised, hung, or ended the process) is not tried again."""
    timeout = timeout_per_case * len(diff_ids) if timeout_per_case else None
    call = method.answer(split, diff_ids, triggers, timeout)
    if call.answers is not None:
        per_case = call.seconds / len(diff_ids)
        usage = call.usage or [None] * len(diff_ids)
        return [_record(split, d, a, None, per_case, u) for d, a, u in zip(diff_ids, call.answers, usage, strict=True)]
    if len(diff_ids) == 1:
        return [_record(split, diff_ids[0], None, call.error, call.seconds)]
    records = []
    for diff_id in diff_ids:
        one = method.answer(split, [diff_id], triggers, timeout_per_case)
        usage = one.usage[0] if one.usage else None
        records.append(_record(split, diff_id, one.answers[0] if one.answers else None, one.error, one.seconds, usage))
    return records


def over_budget(record: AnswerRecord, budget_tokens: int | None) -> AnswerRecord:
    """The record failed with the reason when its case ran more than `budget_tokens` tokens."""
    if budget_tokens is None or record.error is not None or record.usage is None:
        return record
    usage = Usage.from_dict(record.usage)
    if usage.tokens <= budget_tokens:
        return record
    reason = (
        f"over budget: the case ran {usage.tokens} tokens through M and M′ (forward {usage.forward_tokens_base} on M + "
        f"{usage.forward_tokens_diff} on M′, generated {usage.generated_tokens_base} + {usage.generated_tokens_diff}), "
        f"more than --budget-tokens {budget_tokens}"
    )
    return replace(record, answer=None, error=reason)


def _record(
    split: str, diff_id: str, answer: str | None, error: str | None, seconds: float, usage: dict[str, int] | None = None
) -> AnswerRecord:
    return AnswerRecord(f"{split}/{diff_id}", split, diff_id, answer, error, round(seconds, 4), usage)


def _count(records: Sequence[AnswerRecord], stats: AnswerStats) -> None:
    for r in records:
        if r.error is None:
            stats.answered += 1
        else:
            stats.failed += 1
            if stats.first_error is None:
                stats.first_error = f"case {r.case_id}:\n{r.error}"
