"""The zygote's own process (zygote.py is the runner's end): import what every method process
imports, then fork method processes on the runner's request and poll and reap them for it.

    python -m wdqa.benchmark.worker.zygote_server --socket FD --parent PID --preload MODULES   (Zygote.start)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from importlib import import_module
from typing import Any

from ...core.lifetime import die_with_parent
from .launch import exit_status
from .zygote import MAX_MESSAGE


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wdqa.benchmark.worker.zygote_server")
    parser.add_argument("--socket", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--preload", required=True, help="comma-separated modules to import before forking")
    args = parser.parse_args()
    die_with_parent(args.parent)
    for module in filter(None, args.preload.split(",")):
        try:
            import_module(module)
        except Exception as err:  # a broken install: one line, and the runner starts processes fresh
            print(f"wdqa: the method-process zygote could not import {module} ({type(err).__name__}: {err}); "
                  "method processes start fresh instead", file=sys.stderr, flush=True)
            sys.exit(1)
    serve_forks(socket.socket(fileno=args.socket))


def serve_forks(sock: socket.socket) -> None:
    """Answer the runner's requests until it closes the socket, then end the children left."""
    live: set[int] = set()
    try:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 4)
            except OSError:
                return
            if not data:
                return
            request = json.loads(data)
            try:
                reply = _handle(sock, request, fds, live)
            finally:
                for fd in fds:
                    os.close(fd)
            try:
                sock.send(json.dumps({**reply, "id": request.get("id")}).encode())
            except OSError:  # the runner is gone
                return
    finally:
        for pid in live:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            os.waitpid(pid, 0)


def _handle(sock: socket.socket, request: dict[str, Any], fds: list[int], live: set[int]) -> dict[str, Any]:
    op, pid = request.get("op"), request.get("pid")
    if op == "spawn" and len(fds) == 4:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        child = os.fork()
        if child == 0:
            _become_method_process(sock, fds, request["cwd"], request["env"], parent)  # never returns
        live.add(child)
        return {"pid": child}
    if op in ("poll", "reap") and pid in live:
        if op == "poll":
            return {"status": exit_status(pid)}
        os.waitpid(pid, 0)
        live.discard(pid)
        return {}
    return {"error": f"not a zygote request: {op!r} with {len(fds)} fds for pid {pid!r}"}


def _become_method_process(sock: socket.socket, fds: list[int], cwd: str, env: dict[str, str], parent: int) -> None:
    """In the forked child: set up what a fresh method process has, then serve the runner."""
    code = 1
    try:
        import atexit
        import random

        os.setsid()
        sock.close()
        requests, replies, err, out = fds
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        # A fresh interpreter seeds these from the OS; forked, every child would share the zygote's.
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        from .child import run_method_process

        run_method_process(requests, replies, parent)
        code = 0
        atexit._run_exitfuncs()  # as a fresh interpreter does when it ends
    except BaseException:  # noqa: BLE001 - nothing may return into the zygote's loop
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


if __name__ == "__main__":
    main()
