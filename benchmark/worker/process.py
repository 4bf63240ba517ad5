"""The runner's side of a method's own process: start it, send it requests with deadlines, and
kill and restart it when it hangs, exits or crashes.

The process is `python -m wdqa.benchmark.worker` (a fresh interpreter: nothing of the runner's
memory is inherited), or forked from a zygote that is one (zygote.py), in its own session, so a
Ctrl-C in the terminal reaches only the runner, which then kills it. What it prints on stderr is
passed through, and its last lines are kept to explain a crash.
"""

from __future__ import annotations

import collections
import hashlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ...core.errors import WdqaError
from ...core.model_options import ModelOptions
from ...core.suite import Suite
from ..method import MethodError
from .launch import Child, start_fresh
from .protocol import (
    Answer,
    Answered,
    Channel,
    ChannelClosed,
    ChannelTimeout,
    Done,
    Failed,
    Fit,
    LoadMethod,
    LoadModel,
    LoadState,
    MethodLoaded,
    ModelLoaded,
    OpenSuite,
    ProtocolError,
    Request,
    SuiteOpened,
)
from .zygote import Zygote

EXPECTED_REPLY: dict[type, type] = {
    LoadMethod: MethodLoaded,
    OpenSuite: SuiteOpened,
    LoadModel: ModelLoaded,
    Fit: Done,
    LoadState: Done,
    Answer: Answered,
}
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE}


class MethodProcessError(WdqaError):
    """A method's process failed outside answer(): it could not load the suite or the model, fit,
    or be restarted. The method's traceback, when there is one, is chained to this error."""


class MethodTraceback(Exception):
    """The traceback of an exception raised inside the method's process (its text, as printed there)."""


@dataclass(frozen=True)
class MethodSpec:
    """A method as the user named it: a file, file.py:object, module:object or baseline:NAME."""

    spec: str
    guesser: str = "salient-words"  # built-in black-box baselines only


@dataclass(frozen=True)
class CallResult:
    """One answer() call: the answers, or why there are none."""

    answers: list[str] | None
    error: str | None
    seconds: float
    usage: list[dict[str, int]] | None = None  # per case, with the answers (wdqa/core/meter.py Usage)


@dataclass
class MethodProcess:
    """A method loaded in its own process. Use `MethodProcess.start(spec)` as a context manager.

    `startup_timeout` bounds loading the method, the suite and the model (None: no bound);
    `kill_grace` is how long SIGTERM gets before SIGKILL; with a `zygote`, the process (and its
    replacement after a kill) is forked from it, otherwise started as a fresh interpreter.
    """

    spec: MethodSpec
    startup_timeout: float | None = None
    kill_grace: float = 1.0
    zygote: Zygote | None = None
    fingerprint: str | None = None
    device: str | None = None  # set once the model is loaded
    dtype: str | None = None
    # The Engine's counters (GenerationStats) summed over answer() calls, for the run manifest.
    generation: dict[str, int] = field(default_factory=lambda: dict(sequences=0, new_tokens=0, forward_batches=0))
    restarts: int = 0
    _loaded: MethodLoaded | None = None
    _setup: list[Request] = field(default_factory=list)  # what a fresh process replays, in order
    _model: LoadModel | None = None  # sent before the first fit or answer
    _child: Child | None = None
    _channel: Channel | None = None
    _stderr_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=20))
    _stderr_thread: threading.Thread | None = None

    # -- life cycle

    @classmethod
    def start(
        cls, spec: MethodSpec, startup_timeout: float | None = None, kill_grace: float = 1.0, zygote: Zygote | None = None,
    ) -> MethodProcess:
        """Start the process and load the method there; MethodError if it cannot be loaded."""
        process = cls(spec, startup_timeout, kill_grace, zygote)
        try:
            reply = process._setup_step(LoadMethod(spec.spec, spec.guesser, list(sys.path)))
        except BaseException:
            process.kill()
            raise
        assert isinstance(reply, MethodLoaded)
        process._loaded = reply
        return process

    def __enter__(self) -> MethodProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.kill()  # KeyboardInterrupt or an error: do not wait for an answer in flight

    def close(self) -> None:
        """Let the process finish (it exits when its request pipe closes), or kill it after a grace period."""
        if self._child is None:
            return
        if self._channel is not None:
            os.close(self._channel.write_fd)
            self._channel.write_fd = -1
        self._child.exited(max(self.kill_grace, 5.0))
        self.kill()  # ends what it left behind in its group (or it, if it did not exit)

    def kill(self) -> None:
        """SIGTERM to the process group, SIGKILL after `kill_grace` seconds; whatever the method does."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.returncode is None:
            if not child.exited(0.0):
                _signal_group(child.pid, signal.SIGTERM)
                child.exited(self.kill_grace)
            # Also whatever the method started; the process is not reaped yet, so its group id is still its own.
            _signal_group(child.pid, signal.SIGKILL)
        child.wait()
        self._drop_channel()

    # -- what the run asks of the method

    @property
    def info(self) -> MethodLoaded:
        """What the method's process said about the method when it loaded it."""
        if self._loaded is None:
            raise RuntimeError("the method is not loaded: use MethodProcess.start")
        return self._loaded

    @property
    def pid(self) -> int | None:
        """The method's process id, while one runs."""
        return self._child.pid if self._child is not None else None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def oracle(self) -> bool:
        return self.info.oracle

    @property
    def sha256(self) -> str:
        """The method version a run folder is for: its source, and what it bound (e.g. an adapter)."""
        base = self.info.sha256
        if self.fingerprint is None:
            return base
        return hashlib.sha256(f"{base}:{self.fingerprint}".encode()).hexdigest()

    def open(
        self, suite: Suite, device: str | None = None, threads: int | None = None,
        options: ModelOptions | None = None, max_batch: int = 64,
    ) -> None:
        """Load the suite (without labels) in the method's process and bind the method to it; the
        base model M is loaded (as `options` say; `device` is the --device shortcut) before the
        first fit or answer, so a finished run never loads it."""
        from ...core.models import resolve_base_model

        options = (options or ModelOptions()).with_device(device)
        reply = self._setup_step(OpenSuite(str(suite.root.resolve())))
        assert isinstance(reply, SuiteOpened)
        self.fingerprint = reply.fingerprint
        # The tiny model is installed or built, and a Hub model downloaded (with its progress on the user's
        # terminal), here in the runner; the method's process gets the local folder.
        where = resolve_base_model(suite.base_model, options.revision or suite.base_model_revision)
        self._model = LoadModel(str(where), None, options.as_record(), threads, max_batch)

    def load_model(self) -> None:
        """Load the base model now (otherwise the first fit or answer does); idempotent."""
        if self._model is None:
            raise RuntimeError("open() the suite before fitting or answering")
        if self._model not in self._setup:
            reply = self._setup_step(self._model)
            assert isinstance(reply, ModelLoaded)
            self.device, self.dtype = reply.device, reply.dtype

    def load_state(self, state_dir: Path) -> None:
        self._setup_step(LoadState(str(state_dir)))

    def fit(self, split: str, diff_ids: Sequence[str], labels: Sequence[str], state_dir: Path | None) -> Done:
        """Fit on one split's cases and labels; saves to `state_dir` (and a restart reloads it from
        there). The reply holds the fit's seconds and what it read of M and M′ (its `usage`)."""
        self.load_model()
        request = Fit(split, list(diff_ids), list(labels), str(state_dir) if state_dir is not None else None)
        return self._setup_step(request, replay=LoadState(str(state_dir)) if state_dir is not None else request)

    def answer(
        self,
        split: str,
        diff_ids: Sequence[str],
        triggers: Mapping[str, tuple[str | None, str | None]] | None,
        timeout: float | None,
    ) -> CallResult:
        """Answer cases in one call. A hang past `timeout`, an exit or a crash kills the process and
        comes back as an error (the next call starts a fresh one); it never raises for the method."""
        self._ensure_running()
        self.load_model()
        told = [triggers[d] for d in diff_ids] if triggers is not None else []
        request = Answer(split, list(diff_ids), [t for t, _ in told], [k for _, k in told])
        t0 = time.monotonic()
        deadline = t0 + timeout if timeout else None
        try:
            reply = self._exchange(request, deadline)
        except ChannelTimeout:
            self.kill()
            return CallResult(None, f"no answer within {timeout:g} s; the method process was killed", time.monotonic() - t0)
        except ChannelClosed:
            return CallResult(None, self._death("during answer()"), time.monotonic() - t0)
        except ProtocolError as err:
            self.kill()
            return CallResult(None, f"the method process sent an unreadable reply ({err}); it was killed", time.monotonic() - t0)
        seconds = time.monotonic() - t0
        if isinstance(reply, Failed):
            return CallResult(None, reply.traceback, seconds)
        assert isinstance(reply, Answered)
        if len(reply.answers) != len(diff_ids):
            self.kill()
            return CallResult(None, f"the method process sent {len(reply.answers)} answers for {len(diff_ids)} cases; it was killed", seconds)
        self.generation["sequences"] += reply.sequences
        self.generation["new_tokens"] += reply.new_tokens
        self.generation["forward_batches"] += reply.forward_batches
        return CallResult(reply.answers, None, seconds, reply.usage)

    # -- setup steps, replayed on a fresh process

    def _setup_step(self, request: Request, replay: Request | None = None) -> Any:
        """Send a setup request; raise MethodError/MethodProcessError if it fails. Remembered (as
        `replay`, default the request itself) for a fresh process to replay."""
        self._ensure_running()
        reply = self._setup_exchange(request)
        self._setup.append(replay or request)
        return reply

    def _ensure_running(self) -> None:
        """Start the process if none runs; a fresh one after a kill replays every setup step."""
        if self._child is not None:
            return
        self._launch()
        if not self._setup:
            return
        self.restarts += 1
        for request in self._setup:
            reply = self._setup_exchange(request, restarting=True)
            if isinstance(reply, MethodLoaded) and reply != self._loaded:
                self.kill()
                raise MethodProcessError(
                    f"method {self.spec.spec} changed while it ran (name, flags or source); start the run again"
                )

    def _setup_exchange(self, request: Request, restarting: bool = False) -> Any:
        step = _STEP_NAMES[type(request)]
        timeout = None if isinstance(request, Fit) else self.startup_timeout  # fit() takes what it takes
        again = " (restarting it after a failed call)" if restarting else ""
        try:
            reply = self._exchange(request, time.monotonic() + timeout if timeout else None)
        except ChannelTimeout:
            self.kill()
            raise MethodProcessError(
                f"the method process took longer than {timeout:g} s {step}{again}; it was killed"
            ) from None
        except ChannelClosed:
            # One line: its stderr was passed through as it came.
            raise self._error_class(request)(self._death(f"while {step}", with_stderr=False) + again) from None
        except ProtocolError as err:
            self.kill()
            raise MethodProcessError(f"the method process sent an unreadable reply while {step} ({err}){again}") from None
        if isinstance(reply, Failed):
            self.kill()
            message = reply.error if reply.user_error else f"{reply.error} while {step} in the method's process"
            raise self._error_class(request)(message + again) from MethodTraceback(reply.traceback)
        return reply

    def _error_class(self, request: Request) -> type[WdqaError]:
        return MethodError if isinstance(request, LoadMethod) else MethodProcessError

    # -- the process and its pipes

    def _launch(self) -> None:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            self._child = (self.zygote.launch(request_r, reply_w) if self.zygote is not None else None) or start_fresh(request_r, reply_w)
        finally:
            os.close(request_r)
            os.close(reply_w)
        self._channel = Channel(reply_r, request_w)
        self._stderr_tail.clear()
        self._stderr_thread = threading.Thread(target=_pass_through, args=(self._child.stderr, self._stderr_tail), daemon=True)
        self._stderr_thread.start()

    def _exchange(self, request: Request, deadline: float | None) -> Any:
        assert self._channel is not None
        self._channel.send(request, deadline)
        reply = self._channel.recv(deadline)
        if not isinstance(reply, (EXPECTED_REPLY[type(request)], Failed)):
            raise ProtocolError(f"{type(reply).__name__} in reply to {type(request).__name__}")
        return reply

    def _death(self, when: str, with_stderr: bool = True) -> str:
        """Why the process is gone (it closed its pipe): reap it and say how it ended `when`."""
        child = self._child
        assert child is not None
        exited = child.exited(5.0)
        self.kill()  # reaps it, ends what it left behind, and lets the stderr reader finish
        if not exited:
            return f"the method process closed its reply pipe {when}; it was killed"
        code = child.returncode
        assert code is not None
        if code < 0:
            sig = signal.Signals(-code)
            hint = " (a crash in native code?)" if sig in CRASH_SIGNALS else ""
            text = f"the method process was killed by signal {sig.name} {when}{hint}"
        else:
            text = f"the method process exited with status {code} {when}; sys.exit or os._exit in the method?"
        tail = "".join(self._stderr_tail).rstrip()
        return text + (f"\nits last lines on stderr:\n{tail}" if tail and with_stderr else "")

    def _drop_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2.0)
            self._stderr_thread = None


_STEP_NAMES = {
    LoadMethod: "loading the method",
    OpenSuite: "opening the suite",
    LoadModel: "loading the base model",
    Fit: "running fit()",
    LoadState: "running load()",
    Answer: "running answer()",
}


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pass_through(stream: IO[bytes], tail: collections.deque[str]) -> None:
    """Copy the method's stderr to ours as it comes, keeping the last lines to explain a crash."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        if not line.startswith("Extension modules:"):  # faulthandler's one very long line, of no use in a record
            tail.append(line)
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):  # our stderr closed (e.g. a test's capture ended)
            pass
    stream.close()
