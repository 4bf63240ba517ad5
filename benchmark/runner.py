"""The answer stage: run a method over a suite's cases, writing each answer as it is produced.

Owns batching cases into method calls, per-case timeouts and error capture, and resuming an
interrupted run. Judging is a separate stage (`judge/stage.py`); this module never sees a label.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .engine import Engine
from .method import Method
from .records import AnswerRecord, RunFolder
from .suite import Suite
from .types import Case


class MethodTimeout(Exception):
    """Raised inside a method call that ran past its time limit."""


@dataclass
class AnswerStats:
    answered: int = 0
    failed: int = 0
    skipped: int = 0  # already answered by an earlier (interrupted) run
    seconds: float = 0.0
    first_error: str | None = None


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after `seconds` with MethodTimeout (SIGALRM; main thread only).

    The alarm fires between Python bytecodes, so a method stuck in Python code or sleeping is
    stopped; a single long native call (one huge matmul) is stopped when it returns.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise MethodTimeout(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check_answers(answers: object, cases: Sequence[Case], where: str) -> list[str]:
    """A method must return one string per case, in order."""
    if not isinstance(answers, (list, tuple)):
        raise TypeError(f"{where}.answer() returned {type(answers).__name__}; expected a list of strings")
    if len(answers) != len(cases):
        raise ValueError(
            f"{where}.answer() returned {len(answers)} answers for {len(cases)} cases "
            f"(first case {cases[0].case_id}); return exactly one string per case, in order"
        )
    for a, c in zip(answers, cases, strict=True):
        if not isinstance(a, str):
            raise TypeError(f"{where}.answer() returned {type(a).__name__} for case {c.case_id}; expected str")
    return list(answers)


def _call(
    method: Method, cases: Sequence[Case], engine: Engine, timeout: float | None, where: str
) -> tuple[list[str] | None, str | None]:
    try:
        with time_limit(timeout):
            return _check_answers(method.answer(list(cases), engine), cases, where), None
    except KeyboardInterrupt:
        raise
    except Exception:
        return None, traceback.format_exc(limit=8)


def answer_cases(
    method: Method,
    cases: Sequence[Case],
    engine: Engine,
    timeout_per_case: float | None = 300.0,
    where: str = "method",
) -> list[AnswerRecord]:
    """Answer a batch; if the batch call fails, answer its cases one by one to isolate the culprit."""
    start = time.perf_counter()
    batch_timeout = timeout_per_case * len(cases) if timeout_per_case else None
    answers, error = _call(method, cases, engine, batch_timeout, where)
    if answers is not None:
        per_case = (time.perf_counter() - start) / len(cases)
        return [_record(c, a, None, per_case) for c, a in zip(cases, answers, strict=True)]
    if len(cases) == 1:
        return [_record(cases[0], None, error, time.perf_counter() - start)]
    records = []
    for case in cases:
        t0 = time.perf_counter()
        one, err = _call(method, [case], engine, timeout_per_case, where)
        records.append(_record(case, one[0] if one else None, err, time.perf_counter() - t0))
    return records


def _record(case: Case, answer: str | None, error: str | None, seconds: float) -> AnswerRecord:
    diff_id = case.case_id.split("/", 1)[1]
    return AnswerRecord(case.case_id, case.split, diff_id, answer, error, round(seconds, 4))


def run_answer_stage(
    method: Method,
    suite: Suite,
    splits: Sequence[str],
    engine: Engine,
    run: RunFolder,
    batch_size: int = 32,
    timeout_per_case: float | None = 300.0,
    limit: int | None = None,
    where: str = "method",
    progress: Callable[[int], None] | None = None,
) -> AnswerStats:
    """Answer every not-yet-answered case of the splits; each batch is appended to the run at once."""
    stats = AnswerStats()
    done = {cid for cid, r in run.answers().items() if r.error is None}
    t0 = time.perf_counter()
    for split in splits:
        pending: list[Case] = []
        for i, case in enumerate(suite.cases(split, oracle=bool(getattr(method, "oracle", False)))):
            if limit is not None and i >= limit:
                break
            if case.case_id in done:
                stats.skipped += 1
                if progress:
                    progress(1)
                continue
            pending.append(case)
            if len(pending) == batch_size:
                _flush(method, pending, engine, run, timeout_per_case, where, stats, progress)
                pending = []
        if pending:
            _flush(method, pending, engine, run, timeout_per_case, where, stats, progress)
    stats.seconds = time.perf_counter() - t0
    return stats


def _flush(
    method: Method,
    cases: list[Case],
    engine: Engine,
    run: RunFolder,
    timeout_per_case: float | None,
    where: str,
    stats: AnswerStats,
    progress: Callable[[int], None] | None,
) -> None:
    records = answer_cases(method, cases, engine, timeout_per_case, where)
    run.append_answers(records)
    for r in records:
        if r.error is None:
            stats.answered += 1
        else:
            stats.failed += 1
            if stats.first_error is None:
                stats.first_error = f"case {r.case_id}:\n{r.error}"
    if progress:
        progress(len(records))
