"""The `wdqa` command line. Each area registers its own commands; this file assembles them and owns
how an expected error reaches the user: one line, `error: <message>`, on stderr with exit status 1
(typer's own usage errors keep exit 2). `--debug` (or WDQA_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import errno
import importlib
import sys
import warnings
from typing import Any

import click
import typer
from typer.core import TyperGroup

from . import __version__
from .core.allocator import tune_allocator
from .core.errors import WdqaError, WdqaWarning, one_line

DEBUG = "wdqa.debug"  # key in click's ctx.meta, shared by every subcommand's context

# OS errors that a user causes and fixes (a missing path, a file where a folder should be, no
# permission, a read-only or full disk), with what to do; any other OSError keeps its traceback.
EXPECTED_OS_ERRORS = {
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a file stands where a folder is needed: move it or choose another path",
    errno.EEXIST: "a file stands where a folder is needed: move it or choose another path",
    errno.EISDIR: "a folder stands where a file is needed: choose another path",
    errno.EACCES: "choose a path you may write, or fix its permissions",
    errno.EPERM: "choose a path you may write, or fix its permissions",
    errno.EROFS: "choose a path on a writable disk",
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some disk space",
}


def error_line(err: BaseException) -> str | None:
    """The one-line message for an expected error, or None when `err` is a bug (keeps its traceback)."""
    if isinstance(err, WdqaError):
        return one_line(str(err)) or type(err).__name__
    if isinstance(err, OSError) and err.errno in EXPECTED_OS_ERRORS:
        where = f": {err.filename}" if err.filename else ""
        return f"{err.strerror or err}{where}; {EXPECTED_OS_ERRORS[err.errno]}"
    return None


class WdqaGroup(TyperGroup):
    """The root command: every subcommand runs inside `invoke`, where expected errors become one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (WdqaError, OSError) as err:
            message = error_line(err)
            if message is None or ctx.meta.get(DEBUG):
                raise
            # Printed here rather than as a ClickException, which typer would draw as a panel.
            click.echo(f"error: {message}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="wdqa",
    cls=WdqaGroup,
    help=(
        "WEIGHTDIFFQA: can your method say in words what fine-tuning changed?\n\n"
        "Typical session: `wdqa evaluate submissions/examples/ask_directly.py` "
        "(runs on the embedded offline `tiny` suite), then `wdqa report runs/*`."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wdqa {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(
        False, "--debug", envvar="WDQA_DEBUG", help="Show the traceback of an expected error instead of one line."
    ),
) -> None:
    """WEIGHTDIFFQA benchmark harness."""
    ctx.meta[DEBUG] = debug


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """wdqa's own warnings as one line, `warning: <message>`; others as Python prints them."""
    if issubclass(category, WdqaWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main() -> None:
    """The `wdqa` entry point."""
    warnings.showwarning = _show_warning
    tune_allocator()  # before any model loads; the processes wdqa starts inherit it
    app(prog_name="wdqa")


# Each area adds its commands with a `register(app)` function; the order is the order of --help.
COMMAND_MODULES = (
    "wdqa.benchmark.eval_commands",  # evaluate
    "wdqa.benchmark.judge.commands",  # judge, judge-agreement, judge-fit
    "wdqa.leaderboard.commands",  # leaderboard, report, submit, verify
    "wdqa.leaderboard.private_commands",  # keygen, score-private
    "wdqa.benchmark.hub_commands",  # download, publish, import-paper
    "wdqa.generators.commands",  # generate tiny, show-diff
    "wdqa.generators.split_commands",  # generate extra, generate merge
    "wdqa.baselines.dit.commands",  # baselines train-dit, bench dit
    "wdqa.benchmark.bench_commands",  # bench eval
    "wdqa.generators.training.bench_command",  # bench train
    "wdqa.benchmark.dense_bench_command",  # bench dense
    "wdqa.benchmark.cli_bench_command",  # bench cli
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()
