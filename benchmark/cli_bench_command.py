"""`wdqa bench cli`: how long `wdqa --help` and a few `wdqa CMD --help` take in fresh processes, beside
the interpreter's own start (`python -c pass`). Owns the timing only; what makes --help fast is that
command modules import torch, transformers and the like inside their commands.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import typer

# What a user types first; each runs in a fresh process, as from a shell.
HELP_COMMANDS = (
    ("--help",),
    ("evaluate", "--help"),
    ("download", "--help"),
    ("report", "--help"),
    ("generate", "extra", "--help"),
    ("bench", "dense", "--help"),
)
TARGET_S = 1.5  # issue 20: every --help answers in under 1.5 s


def wdqa_executable() -> str:
    """The `wdqa` entry point installed beside this interpreter (else the one on PATH)."""
    found = shutil.which("wdqa", path=str(Path(sys.executable).parent)) or shutil.which("wdqa")
    if found is None:
        raise typer.BadParameter("no `wdqa` entry point beside this Python or on PATH; install wdqa (pip install -e .)")
    return found


def median_seconds(argv: list[str], repeats: int) -> float:
    """Median wall time of `argv` run `repeats` times, each in a fresh process, output discarded."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise typer.BadParameter(f"`{' '.join(argv)}` exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return statistics.median(times)


def bench_cli_command(
    repeats: int = typer.Option(5, "--repeats", min=1, help="Fresh processes per command (the median is shown)."),
) -> None:
    """Start-up time of the CLI: `wdqa --help` and a few `wdqa CMD --help`, the median of fresh
    processes, beside `python -c pass` and as a ratio to it, with the machine's load average (a busy
    machine slows both alike).

    Example:  wdqa bench cli
    """
    from rich.console import Console
    from rich.table import Table

    console = Console()
    wdqa = wdqa_executable()
    load = os.getloadavg()
    python_s = median_seconds([sys.executable, "-c", "pass"], repeats)
    table = Table(title=f"CLI start-up, median of {repeats} fresh processes ({os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    for col in ("command", "seconds", "÷ python -c pass", f"< {TARGET_S} s"):
        table.add_column(col, justify="left" if col == "command" else "right")
    table.add_row("python -c pass", f"{python_s:.3f}", "1.0", "")
    slowest = 0.0
    for args in HELP_COMMANDS:
        seconds = median_seconds([wdqa, *args], repeats)
        slowest = max(slowest, seconds)
        table.add_row(f"wdqa {' '.join(args)}", f"{seconds:.3f}", f"{seconds / python_s:.1f}", "yes" if seconds < TARGET_S else "NO")
    console.print(table)
    console.print(f"slowest --help {slowest:.2f} s = {slowest / python_s:.1f}× python -c pass (target < {TARGET_S} s)")


def register(app: typer.Typer) -> None:
    from .bench_commands import bench_app

    bench_app.command("cli")(bench_cli_command)
