"""A zygote: a process that has imported what a method's process imports (torch, transformers,
the engine, the built-in baselines) and forks method processes from that state.

Importing torch and transformers costs a fresh interpreter about 8-10 s of CPU on a 2-core
machine, and `wdqa evaluate` starts one method process per method (five for the default table),
plus a fresh one after every hang or crash. Forked from the zygote, each starts in milliseconds.

The zygote is itself a fresh interpreter, started by the runner with the same flags as a method's
process: it never holds the runner's memory, so a process forked from it holds nothing of the
runner's either (no label). A forked process is set up as a fresh one is: its own session,
stdin from /dev/null, the runner's stdout, a stderr pipe to the runner, the runner's working
directory, PR_SET_PDEATHSIG on its parent (the zygote, which has it on the runner), and Python's
random generators seeded from the OS, and the runner's environment as it is at the fork. A
variable that a library reads once, when imported (HF_HOME, OMP_NUM_THREADS), keeps the value it
had when the zygote started: the zygote lives for one run, started by it, so set such variables
before the run as usual.

The runner and the zygote speak over a Unix socket, one request and one reply at a time:
`spawn` (the pipes travel as file descriptors) answers the new pid; `poll` says whether a child
has exited without reaping it, so its pid and process group stay reserved until the runner's last
killpg; `reap` reaps it. When the runner closes the socket the zygote kills what is left and exits.

    python -m wdqa.benchmark.worker.zygote_server --socket FD --parent PID --preload MODULES   (Zygote.start)

If the zygote cannot import what it preloads (a broken install), it says so in one line and exits;
every method process then starts fresh, and reports the failure itself if it fails the same way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any

from .launch import poll_until

MAX_MESSAGE = 1 << 20  # a spawn request carries the runner's environment
# What every method process imports before its first answer; the rest (a method's own file, a
# model's weights) is loaded after the fork.
PRELOAD = ("wdqa.benchmark.worker.child", "wdqa.baselines.registry", "wdqa.core.engine", "wdqa.core.models")


class ZygoteGone(Exception):
    """The zygote exited (or closed its socket)."""


class Zygote:
    """The runner's end. `Zygote.start()` as a context manager; `launch()` forks a method process,
    or returns None when the zygote is gone: start it fresh then."""

    def __init__(self, popen: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.popen = popen
        self.sock = sock
        self.forked = 0
        self._lock = threading.Lock()
        self._last_id = 0

    @classmethod
    def start(cls, preload: Sequence[str] = PRELOAD) -> Zygote:
        """Start the zygote; it imports `preload` in the background while the runner goes on."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            popen = subprocess.Popen(
                [sys.executable, "-P", "-m", "wdqa.benchmark.worker.zygote_server",
                 "--socket", str(theirs.fileno()), "--parent", str(os.getpid()), "--preload", ",".join(preload)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(popen, ours)

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (the zygote then kills its remaining children and exits) and reap it."""
        self.sock.close()
        try:
            self.popen.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def launch(self, request_r: int, reply_w: int) -> ForkedChild | None:
        """Fork a method process reading requests on `request_r` and replying on `reply_w` (the
        caller closes its copies), or None when this zygote cannot serve this runner any more."""
        if self.popen.poll() is not None:
            return None
        err_r, err_w = os.pipe()
        try:
            sys.stdout.flush()
            reply = self.call({"op": "spawn", "cwd": os.getcwd(), "env": dict(os.environ)}, (request_r, reply_w, err_w, 1))
        except ZygoteGone:
            os.close(err_r)
            return None
        finally:
            os.close(err_w)
        self.forked += 1
        return ForkedChild(self, int(reply["pid"]), os.fdopen(err_r, "rb"))

    def call(self, request: dict[str, Any], fds: tuple[int, ...] = ()) -> dict[str, Any]:
        """One request and its reply. A reply to an earlier request that was interrupted (Ctrl-C
        while waiting) is skipped: replies carry their request's id."""
        with self._lock:
            self._last_id += 1
            request = {**request, "id": self._last_id}
            try:
                socket.send_fds(self.sock, [json.dumps(request).encode()], list(fds))
                while True:
                    data = self.sock.recv(MAX_MESSAGE)
                    if not data:
                        raise ZygoteGone
                    reply = json.loads(data)
                    if reply.get("id") == request["id"]:
                        break
            except OSError as err:  # the socket is closed, or the zygote gone
                raise ZygoteGone from err
        if "error" in reply:
            raise ZygoteGone(reply["error"])
        return reply


class ForkedChild:
    """A method process forked by a zygote (launch.Child): the zygote is its parent, so the zygote
    polls and reaps it on the runner's behalf."""

    def __init__(self, zygote: Zygote, pid: int, stderr: IO[bytes]) -> None:
        self.zygote = zygote
        self.pid = pid
        self.stderr = stderr
        self.returncode: int | None = None

    def exited(self, timeout: float) -> bool:
        return poll_until(lambda: self._status() is not None, timeout)

    def wait(self) -> int:
        while (status := self._status()) is None:
            time.sleep(0.02)
        try:
            self.zygote.call({"op": "reap", "pid": self.pid})
        except ZygoteGone:
            pass
        self.returncode = status
        return status

    def _status(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        try:
            status = self.zygote.call({"op": "poll", "pid": self.pid})["status"]
        except ZygoteGone:
            # Its children die with it (PR_SET_PDEATHSIG), and nothing is left to ask.
            return -signal.SIGKILL
        return None if status is None else int(status)
