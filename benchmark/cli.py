"""The `wdqa` command line. Each area registers its own commands; this file only assembles them."""

from __future__ import annotations

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


def _register_all() -> None:
    # One line per area; each module adds its commands with a `register(app)` function.
    from . import bench_commands, eval_commands

    eval_commands.register(app)
    bench_commands.register(app)
    __import__("wdqa.leaderboard.commands", fromlist=["register"]).register(app)
    __import__("wdqa.benchmark.hub_commands", fromlist=["register"]).register(app)
    __import__("wdqa.baselines.dit.commands", fromlist=["register"]).register(app)
    __import__("wdqa.benchmark.judge.commands", fromlist=["register"]).register(app)
    __import__("wdqa.generators.commands", fromlist=["register"]).register(app)
    __import__("wdqa.generators.train_bench_command", fromlist=["register"]).register(app)
    __import__("wdqa.generators.split_commands", fromlist=["register"]).register(app)


_register_all()
