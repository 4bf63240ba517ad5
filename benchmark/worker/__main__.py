"""`python -m wdqa.benchmark.worker --requests FD --replies FD --parent PID`: a method's own process.

Started by `MethodProcess` (process.py), never by hand.
"""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import os
import signal
import sys
import warnings

from ...core.allocator import tune_allocator
from ...core.errors import WdqaWarning
from .child import serve
from .protocol import Channel


def _die_with_parent(parent: int) -> None:
    """Linux: be killed when the runner dies, even mid-answer (otherwise: at the next read)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the runner died before prctl took effect
        os._exit(1)


def _show_warning(message: object, category: type[Warning], filename: str, lineno: int, file: object = None, line: object = None) -> None:
    """wdqa's own warnings as one line on stderr (which the runner passes through), as the CLI prints them."""
    if issubclass(category, WdqaWarning):
        sys.stderr.write(f"warning: {message}\n")
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wdqa.benchmark.worker")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--replies", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args()
    _die_with_parent(args.parent)
    warnings.showwarning = _show_warning
    tune_allocator()  # also when the runner was not started by the `wdqa` command (a notebook)
    faulthandler.enable()  # a crash in native code prints the Python stack to stderr, which the runner keeps
    serve(Channel(args.requests, args.replies))


if __name__ == "__main__":
    main()
