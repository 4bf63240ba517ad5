"""Test helper: is a process still running? Shared by the tests that kill a parent and check its
children are gone."""

from __future__ import annotations

from pathlib import Path


def running(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie waiting for its (new) parent to reap it is not.
    The state follows the last ")" of /proc/PID/stat: the command name before it may hold spaces."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
