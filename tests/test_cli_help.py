"""Every `wdqa ... --help` answers, and answers without importing the heavy libraries: the root and a
few commands through the installed entry point as a user types them, every command and sub-command
of the command tree through click's runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner
from wdqa.cli import app

WDQA = str(Path(sys.executable).parent / "wdqa")
HEAVY = ("torch", "transformers", "sklearn", "huggingface_hub", "datasets", "pandas", "peft", "scipy")


def command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The root and every command and sub-command under it, as the words a user types."""
    paths = [path]
    # typer's groups are not click.Group subclasses in every release: a group is what has commands.
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += command_paths(sub, (*path, name))
    return paths


ALL_PATHS = command_paths(typer.main.get_command(app))


def test_the_command_tree_holds_every_area() -> None:
    names = {" ".join(p) for p in ALL_PATHS}
    assert {"evaluate", "download", "publish", "import-paper", "report", "submit", "verify", "generate extra", "bench cli"} <= names


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: " ".join(p) or "wdqa")
def test_help_of_every_command_exits_cleanly(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "Usage: " in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args", [["--help"], ["evaluate", "--help"], ["generate", "extra", "--help"], ["bench", "dense", "--help"]])
def test_help_through_the_installed_entry_point(args: list[str]) -> None:
    done = subprocess.run([WDQA, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.lstrip().startswith(f"Usage: wdqa {' '.join(args[:-1])}".rstrip()), done.stdout[:300]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import sys, wdqa.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_help_of_every_command_loads_no_heavy_library() -> None:
    # All the --help screens in one fresh process: a command whose signature pulls in torch shows here.
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from test_cli_help import ALL_PATHS, app\n"
        "for path in ALL_PATHS:\n"
        "    assert CliRunner().invoke(app, [*path, '--help']).exit_code == 0, path\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    tests = str(Path(__file__).parent)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True, cwd=tests)
    assert done.stdout.strip() == "[]", done.stderr
