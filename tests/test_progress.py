"""Progress in a CI log or under nohup: plain timestamped lines with counts and ETA; bars on a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, TextColumn
from wdqa.core.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def lines(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if line.strip()]


def test_not_a_terminal_prints_a_line_at_start_every_interval_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, force_terminal=False, width=60)
    with Progress(TextColumn("{task.description}"), BarColumn(), console=console, every=30, clock=clock,
                  get_time=clock) as progress:
        task = progress.add_task("training diffs", total=100, loss=float("nan"))
        for _ in range(50):  # 50 steps, 2 s apart: 100 s in all -> a line at 30, 60 and 90 s
            clock.t += 2
            progress.update(task, advance=1, loss=0.5)
        clock.t += 2
        progress.update(task, advance=50, loss=0.25)
    got = lines(out)
    assert len(got) == 1 + 3 + 1, got
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] training diffs: 0/100 \(0%\), loss nan", got[0]), got[0]
    # the middle lines have the count, the share, a rate, elapsed time and an ETA
    assert re.search(r"training diffs: 15/100 \(15%\), 0\.5/s, elapsed 30s, ETA 2m50s, loss 0\.5$", got[1]), got[1]
    assert re.search(r"training diffs: 100/100 \(100%\), [\d.]+/s, elapsed 1m42s, done, loss 0\.25$", got[-1]), got[-1]
    assert all(len(line) > 60 for line in got[1:]), "lines are never wrapped at the console width"


def test_a_task_with_no_total_and_markup_in_its_name_prints_the_plain_name():
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, force_terminal=False)
    with Progress(console=console, clock=clock, get_time=clock) as progress:
        task = progress.add_task("[bold]judge[/]", total=None, status="")
        progress.update(task, completed=3, status="val exact 0.50")
    got = lines(out)
    assert got[0].endswith("] judge: 0"), got
    assert got[-1].endswith("] judge: 3, val exact 0.50"), got


def test_on_a_terminal_it_draws_rich_bars_and_no_plain_lines():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with Progress(TextColumn("{task.description}"), BarColumn(), console=console) as progress:
        assert not progress.plain
        task = progress.add_task("measuring triggers", total=4)
        progress.advance(task, 4)
    assert "measuring triggers" in out.getvalue()
    assert not re.search(r"\[\d\d:\d\d:\d\d\] measuring", out.getvalue())


def test_by_default_progress_goes_to_stderr_and_stdout_stays_what_the_command_returns(capfd):
    with Progress(TextColumn("{task.description}")) as progress:  # under pytest, not a terminal
        task = progress.add_task("building", total=2)
        progress.advance(task, 2)
    print("/the/suite/path")
    out, err = capfd.readouterr()
    assert out == "/the/suite/path\n"
    assert "building: 0/2" in err and "building: 2/2" in err


def test_loading_a_base_model_hides_its_bars_and_leaves_transformers_bars_as_they_were(micro_base: Path, capfd) -> None:
    # load_base_model once turned transformers' bars off for the rest of the process: a method that
    # then downloaded a model of its own saw no progress.
    from transformers.utils import logging as hf_logging
    from wdqa.core.models import load_base_model

    hf_logging.enable_progress_bar()
    load_base_model(str(micro_base))
    assert hf_logging.is_progress_bar_enabled()
    assert "Loading weights" not in capfd.readouterr().err
