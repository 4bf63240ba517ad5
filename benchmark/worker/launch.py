"""Starting a method's process, and the handle the runner keeps on it.

A method's process is started fresh (`python -m wdqa.benchmark.worker`, here) or forked by a
zygote that has already imported torch and transformers (zygote.py). Either way the runner holds
a `Child`: its pid (also its process group: it leads its own session), the read end of its
stderr, whether it has exited (without reaping it, so its pid and group id stay reserved until
the runner's last killpg) and how it ended.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO, Protocol


class Child(Protocol):
    """A method's process as the runner sees it. `returncode` follows subprocess's convention
    (-N: killed by signal N) and is set by `wait()`."""

    pid: int
    stderr: IO[bytes]
    returncode: int | None

    def exited(self, timeout: float) -> bool:
        """Has it exited (waiting up to `timeout` s)? Never reaps it."""
        ...

    def wait(self) -> int:
        """Wait for it to exit, reap it and return its returncode."""
        ...


class FreshChild:
    """A method's process started as a fresh interpreter."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stderr is not None
        self.popen = popen
        self.pid = popen.pid
        self.stderr: IO[bytes] = popen.stderr

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def exited(self, timeout: float) -> bool:
        return poll_until(lambda: _has_exited(self.pid), timeout)

    def wait(self) -> int:
        return self.popen.wait()


def start_fresh(request_r: int, reply_w: int) -> FreshChild:
    """`python -m wdqa.benchmark.worker` reading requests on `request_r`, replying on `reply_w`."""
    command = [
        # -P: the working directory is not put first on sys.path, so a folder named `wdqa` there
        # cannot shadow the installed package.
        sys.executable, "-P", "-m", "wdqa.benchmark.worker",
        "--requests", str(request_r), "--replies", str(reply_w), "--parent", str(os.getpid()),
    ]
    # Own session: a Ctrl-C reaches the runner only, and a kill reaches the whole group.
    return FreshChild(subprocess.Popen(
        command, pass_fds=(request_r, reply_w), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    ))


def poll_until(done: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Call `done()` until it is true or `timeout` s have passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _has_exited(pid: int) -> bool:
    try:
        return exit_status(pid) is not None
    except ChildProcessError:  # reaped already
        return True


def exit_status(pid: int) -> int | None:
    """A child's returncode once it has exited, without reaping it (None while it runs)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
