"""The one base class for errors a user can act on.

An expected error (a missing file, a corrupt shard, an unknown name, a refused bundle) subclasses
`WdqaError`; its message names the problem and the fix. The CLI prints such an error as one line
and shows the traceback only with `--debug`; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class WdqaError(RuntimeError):
    """An expected, user-fixable error: the message says what went wrong and what to do."""


class RunError(WdqaError):
    """A run folder that is missing, unreadable or inconsistent; the message names the file."""


def one_line(message: str) -> str:
    """A message as one line: a heading and its list ("problems:\n  a\n  b") become "problems: a; b"."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "".join(line + ("" if i == len(lines) - 1 else " " if line.endswith(":") else "; ") for i, line in enumerate(lines))


class WdqaWarning(UserWarning):
    """Something a user should know that did not stop the command (a torn record cut off, ...);
    the CLI prints it as one line, `warning: <message>`."""
