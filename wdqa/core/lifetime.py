"""A child process that dies with its parent: no method process or build unit left running, burning
the cores, after the command that started it was killed (SIGKILL, `timeout`, a closed terminal).

Ctrl-C reaches the whole process group; a signal sent to the parent alone does not, which is what
this covers.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def die_with_parent(parent: int) -> None:
    """Linux: be killed when the parent dies, even mid-step (elsewhere: nothing; a child then finds
    out at its next read from the parent)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
