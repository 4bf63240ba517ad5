"""The `wdqa` command line. Each area registers its own commands; this file only assembles them."""

from __future__ import annotations

import importlib

import typer

from .. import __version__

app = typer.Typer(
    name="wdqa",
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
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """WEIGHTDIFFQA benchmark harness."""


# Each area adds its commands with a `register(app)` function; the order is the order of --help.
COMMAND_MODULES = (
    "wdqa.benchmark.eval_commands",  # evaluate
    "wdqa.benchmark.judge.commands",  # judge, judge-agreement, judge-fit
    "wdqa.leaderboard.commands",  # leaderboard, report, submit, verify
    "wdqa.benchmark.hub_commands",  # download, publish, import-paper
    "wdqa.generators.commands",  # generate tiny, show-diff
    "wdqa.generators.split_commands",  # generate extra, generate merge
    "wdqa.baselines.dit.commands",  # baselines train-dit, bench dit
    "wdqa.benchmark.bench_commands",  # bench eval
    "wdqa.generators.train_bench_command",  # bench train
    "wdqa.benchmark.dense_bench_command",  # bench dense
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()
