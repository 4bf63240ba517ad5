"""The messages between the runner and a method's process, and the pipe that carries them.

Every message is a frozen dataclass sent as one frame: an 8-byte big-endian length, then
`{"type": <class name>, "fields": {...}}` as UTF-8 JSON. JSON, not pickle: the runner reads replies
written by the method's code, and unpickling them would run whatever that code chose. Replies are
checked against their dataclass's field types before anyone uses them.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
import types
import typing
from dataclasses import asdict, dataclass, fields
from typing import Any, Union

HEADER = struct.Struct(">Q")
MAX_FRAME = 64 << 20  # bytes; a batch's answers are far smaller, a bigger frame is refused unread


# ---------------------------------------------------------------- requests (runner -> method process)


@dataclass(frozen=True)
class LoadMethod:
    """Import the method (`file.py`, `file.py:object`, `module:object` or `baseline:NAME`)."""

    spec: str
    guesser: str  # how built-in black-box baselines turn replies into answers
    sys_path: list[str]  # the runner's import path, so `module:object` resolves as it would there


@dataclass(frozen=True)
class OpenSuite:
    """Load the suite without its labels, and let the method bind suite artefacts (DIT's adapter)."""

    suite_root: str


@dataclass(frozen=True)
class LoadModel:
    """Load the base model M (a local folder or a Hub id) and build the Engine."""

    base_model: str
    base_model_revision: str | None
    options: dict[str, str | None]  # ModelOptions.as_record(): dtype, device, device_map, attention, revision
    threads: int | None  # torch CPU threads; None: torch's choice
    max_batch: int  # the Engine's rows per forward pass (halved on a GPU out-of-memory)


@dataclass(frozen=True)
class Fit:
    """Fit a learned method on one split: its cases, with the label texts the runner sends."""

    split: str
    diff_ids: list[str]
    labels: list[str]  # labels[i] is the label of diff_ids[i]
    state_dir: str | None  # save the fitted state here (methods with save/load)


@dataclass(frozen=True)
class LoadState:
    """Reload the state an earlier `Fit` saved."""

    state_dir: str


@dataclass(frozen=True)
class Answer:
    """Answer these cases of one split, in this order."""

    split: str
    diff_ids: list[str]
    triggers: list[str | None]  # oracle methods only: one per diff id; empty otherwise
    trigger_kinds: list[str | None]


# ---------------------------------------------------------------- replies (method process -> runner)


@dataclass(frozen=True)
class MethodLoaded:
    name: str
    oracle: bool
    access: str  # "black-box" or "white-box" (wdqa/core/meter.py)
    sha256: str  # the method's identity: its source file, or a built-in's name and wdqa version
    builtin: bool
    learned: bool  # defines fit()
    persistent: bool  # defines save() and load()


@dataclass(frozen=True)
class SuiteOpened:
    fingerprint: str | None  # the method's `fingerprint()` (e.g. its adapter's hash) after binding


@dataclass(frozen=True)
class ModelLoaded:
    device: str
    dtype: str  # e.g. "bfloat16"
    seconds: float


@dataclass(frozen=True)
class Done:
    seconds: float
    usage: dict[str, int] | None = None  # a fit's counts over all its cases (benchmark/meter.py Usage)


@dataclass(frozen=True)
class Answered:
    answers: list[str]
    seconds: float
    sequences: int  # the Engine's counters for this call (GenerationStats)
    new_tokens: int
    forward_batches: int
    usage: list[dict[str, int]]  # per case, in order: the meter's counts (wdqa/core/meter.py Usage)


@dataclass(frozen=True)
class Failed:
    """The request raised. `error` is one line; `user_error` marks a WdqaError, whose message is
    written for the user and shown as is."""

    error: str
    traceback: str
    user_error: bool


Request = LoadMethod | OpenSuite | LoadModel | Fit | LoadState | Answer
Reply = MethodLoaded | SuiteOpened | ModelLoaded | Done | Answered | Failed
MESSAGES: dict[str, type] = {
    cls.__name__: cls
    for cls in (LoadMethod, OpenSuite, LoadModel, Fit, LoadState, Answer, MethodLoaded, SuiteOpened, ModelLoaded, Done, Answered, Failed)
}


# ---------------------------------------------------------------- encoding


class ProtocolError(Exception):
    """A frame that is not a well-formed message."""


class ChannelClosed(Exception):
    """The other end closed its pipe (it exited, or was killed)."""


class ChannelTimeout(Exception):
    """No complete message before the deadline."""


def encode(message: Any) -> bytes:
    payload = json.dumps({"type": type(message).__name__, "fields": asdict(message)}).encode()
    return HEADER.pack(len(payload)) + payload


def decode(payload: bytes) -> Any:
    try:
        raw = json.loads(payload.decode())
        cls = MESSAGES[raw["type"]]
        values = raw["fields"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ProtocolError(f"not a protocol message ({type(err).__name__}: {err})") from None
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    if not isinstance(values, dict) or set(values) != names:
        raise ProtocolError(f"{cls.__name__} with fields {sorted(values) if isinstance(values, dict) else values!r}")
    for name, value in values.items():
        if not _conforms(value, hints[name]):
            raise ProtocolError(f"{cls.__name__}.{name} is {type(value).__name__}, expected {hints[name]}")
    return cls(**values)


def _conforms(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


# ---------------------------------------------------------------- the pipe


class Channel:
    """Frames over a pair of pipe file descriptors, with optional deadlines (time.monotonic())."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def send(self, message: Any, deadline: float | None = None) -> None:
        data = memoryview(encode(message))
        while data:
            if deadline is not None:
                _wait(self.write_fd, deadline, for_write=True)
            try:
                written = os.write(self.write_fd, data)
            except (BrokenPipeError, OSError) as err:
                raise ChannelClosed(str(err)) from None
            data = data[written:]

    def recv(self, deadline: float | None = None) -> Any:
        (size,) = HEADER.unpack(self._read(HEADER.size, deadline))
        if size > MAX_FRAME:
            raise ProtocolError(f"a {size}-byte message (the limit is {MAX_FRAME})")
        return decode(self._read(size, deadline))

    def _read(self, n: int, deadline: float | None) -> bytes:
        data = bytearray()
        while len(data) < n:
            if deadline is not None:
                _wait(self.read_fd, deadline, for_write=False)
            try:
                chunk = os.read(self.read_fd, n - len(data))
            except OSError as err:
                raise ChannelClosed(str(err)) from None
            if not chunk:
                raise ChannelClosed("end of file")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            try:
                os.close(fd)
            except OSError:
                pass


def _wait(fd: int, deadline: float, for_write: bool) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ChannelTimeout()
    ready = select.select([], [fd], [], remaining)[1] if for_write else select.select([fd], [], [], remaining)[0]
    if not ready:
        raise ChannelTimeout()
