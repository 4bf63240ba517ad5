"""Progress a person can follow anywhere: rich bars on a terminal, plain timestamped lines elsewhere.

Why: rich draws nothing live when output is not a terminal (a CI log, `nohup`, a pipe to a file),
so a long build looked dead for twenty minutes. `Progress` is rich's, with the same calls; where
the console is not a terminal it turns the live bars off and prints one line per task at most
every `every` seconds, when a task starts and when it ends, with counts, rate and ETA:

    [16:41:02] training diffs: 7,200/23,400 (31%), 55.4/s, elapsed 2m10s, ETA 4m52s, loss 0.123

Progress goes to stderr unless a console is given: stdout carries what a command returns (a
suite's path read by `$(...)`, a JSON report), which progress lines must never corrupt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich import progress as rp
from rich.console import Console
from rich.text import Text

PLAIN_EVERY_S = 30.0


class Progress(rp.Progress):
    """`rich.progress.Progress`; on a console that is not a terminal, plain lines instead of bars."""

    def __init__(
        self, *columns: str | rp.ProgressColumn, console: Console | None = None, every: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic, **kwargs: Any,
    ) -> None:
        console = console or Console(stderr=True)
        self.plain = not console.is_terminal
        if self.plain:
            kwargs["disable"] = True
        super().__init__(*columns, console=console, **kwargs)
        self._every = every
        self._clock = clock
        self._logged: dict[rp.TaskID, float] = {}  # task -> clock time of its last line
        self._closed: set[rp.TaskID] = set()  # tasks whose final line is out

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> rp.TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self._log(task_id, force=True)
        return task_id

    def update(self, task_id: rp.TaskID, *args: Any, **kwargs: Any) -> None:
        super().update(task_id, *args, **kwargs)
        self._log(task_id)

    def advance(self, task_id: rp.TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log(task_id)

    def stop(self) -> None:
        if self.plain:
            for task in self.tasks:  # a closing line for each task whose last state was not printed
                self._log(task.id, force=True)
        super().stop()

    def _log(self, task_id: rp.TaskID, force: bool = False) -> None:
        if not self.plain:
            return
        if task_id in self._closed:
            return
        task = self._tasks[task_id]
        now = self._clock()
        last = self._logged.get(task_id)
        if not (force or task.finished or last is None or now - last >= self._every):
            return
        self._logged[task_id] = now
        if task.finished:
            self._closed.add(task_id)
        self.console.print(plain_line(task), markup=False, highlight=False, soft_wrap=True)


def plain_line(task: rp.Task, now: datetime | None = None) -> str:
    """One line for a task: time, description, count (and share of the total), rate, elapsed, ETA, fields."""
    parts = [f"{_count(task.completed)}/{_count(task.total)} ({task.percentage:.0f}%)" if task.total
             else _count(task.completed)]
    if task.speed:
        parts.append(f"{task.speed:,.1f}/s")
    if task.elapsed:
        parts.append(f"elapsed {_duration(task.elapsed)}")
    if task.finished:
        parts.append("done")
    elif task.time_remaining is not None:
        parts.append(f"ETA {_duration(task.time_remaining)}")
    for name, value in task.fields.items():
        if value in ("", None):
            continue
        parts.append(f"{value:.3g}" if name == "status" and isinstance(value, float) else
                     str(value) if name == "status" else
                     f"{name} {value:.3g}" if isinstance(value, float) else f"{name} {value}")
    stamp = (now or datetime.now()).strftime("%H:%M:%S")
    description = Text.from_markup(task.description).plain or "progress"
    return f"[{stamp}] {description}: {', '.join(parts)}"


def _count(n: float | None) -> str:
    return "?" if n is None else f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


@contextmanager
def transformers_bars_off() -> Iterator[None]:
    """transformers' own bars off for a step of a second or two (loading or saving a local model),
    whose bar would only land in the middle of a command's output; on again afterwards if they were."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
