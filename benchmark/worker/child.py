"""What runs inside a method's own process: load the method, the suite without its labels and the
base model, then answer the runner's requests one at a time.

Started by `process.MethodProcess`, as `python -m wdqa.benchmark.worker` or forked by a zygote
(zygote.py); either way `run_method_process` is where it begins. Whatever a request
raises, a BaseException such as SystemExit included, becomes a `Failed` reply; only a crash, an
`os._exit` or the runner's kill ends this process.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.allocator import tune_allocator
from ...core.errors import WdqaError, WdqaWarning
from ...core.lifetime import die_with_parent
from ...core.meter import BlackBoxEngine, SealedDiff, Usage, metered, method_access
from ...core.suite import Suite
from ...core.types import Case
from ..method import FingerprintedMethod, LoadedMethod, SuiteBoundMethod, load_method_spec
from .protocol import (
    Answer,
    Answered,
    Channel,
    ChannelClosed,
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
    Reply,
    Request,
    SuiteOpened,
)

if TYPE_CHECKING:  # transformers loads with the model (LoadModel), after a broken method file is reported
    from ...core.engine import Engine


def run_method_process(requests: int, replies: int, parent: int) -> None:
    """Serve the runner's requests on these pipe fds until it closes them; `parent` is the process
    that started this one (the runner, or the zygote that forked it)."""
    die_with_parent(parent)
    warnings.showwarning = _show_warning
    tune_allocator()  # also when the runner was not started by the `wdqa` command (a notebook)
    faulthandler.enable()  # a crash in native code prints the Python stack to stderr, which the runner keeps
    serve(Channel(requests, replies))


def _show_warning(message: object, category: type[Warning], filename: str, lineno: int, file: object = None, line: object = None) -> None:
    """wdqa's own warnings as one line on stderr (which the runner passes through), as the CLI prints them."""
    if issubclass(category, WdqaWarning):
        sys.stderr.write(f"warning: {message}\n")
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))  # type: ignore[arg-type]


def serve(channel: Channel) -> None:
    """Answer requests until the runner closes its end of the pipe."""
    host = MethodHost()
    while True:
        try:
            request = channel.recv()
        except (ChannelClosed, ProtocolError):
            return
        try:
            channel.send(host.handle(request))
        except ChannelClosed:  # the runner is gone
            return


def check_answers(answers: object, cases: Sequence[Case], where: str) -> list[str]:
    """A method must return one string per case, in order."""
    if not isinstance(answers, (list, tuple)):
        raise TypeError(f"{where}.answer() returned {type(answers).__name__}; expected a list of strings")
    if len(answers) != len(cases):
        raise ValueError(
            f"{where}.answer() returned {len(answers)} answers for {len(cases)} cases "
            f"(first case {cases[0].case_id}); return exactly one string per case, in order"
        )
    for a, c in zip(answers, cases, strict=True):
        if not isinstance(a, str):
            raise TypeError(f"{where}.answer() returned {type(a).__name__} for case {c.case_id}; expected str")
    return list(answers)


class MethodHost:
    """The method, its suite (label-free) and its Engine, as the requests build them up."""

    def __init__(self) -> None:
        self.loaded: LoadedMethod | None = None
        self.where = "method"  # how the user named the method, for error messages
        self.suite: Suite | None = None
        self.engine: Engine | None = None

    def handle(self, request: Request) -> Reply:
        handlers: dict[type, Callable[[Any], Reply]] = {
            LoadMethod: self.load_method,
            OpenSuite: self.open_suite,
            LoadModel: self.load_model,
            Fit: self.fit,
            LoadState: self.load_state,
            Answer: self.answer,
        }
        try:
            return handlers[type(request)](request)
        except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from a method too
            text = traceback.format_exc(limit=8)
            if isinstance(err, SystemExit):
                text += f"the method called sys.exit({err.code!r}); return answers or raise an exception instead\n"
            if isinstance(err, WdqaError):  # written for the user: shown as is
                return Failed(str(err), text, True)
            return Failed(f"{type(err).__name__}: {err}", text, False)

    @property
    def method(self) -> Any:
        if self.loaded is None:
            raise RuntimeError("no method loaded: LoadMethod must come first")
        return self.loaded.method

    def load_method(self, request: LoadMethod) -> Reply:
        sys.path.extend(p for p in request.sys_path if p not in sys.path)
        self.loaded = load_method_spec(request.spec, request.guesser)
        self.where = request.spec
        m = self.loaded.method
        return MethodLoaded(
            name=str(m.name),
            oracle=bool(getattr(m, "oracle", False)),
            access=method_access(m),
            sha256=self.loaded.sha256,
            builtin=self.loaded.builtin,
            learned=callable(getattr(m, "fit", None)),
            persistent=callable(getattr(m, "save", None)) and callable(getattr(m, "load", None)),
        )

    def open_suite(self, request: OpenSuite) -> Reply:
        # The runner verified the suite's hashes; here it is read through `index`/`cases` only, which
        # never load a label.
        self.suite = Suite.load(request.suite_root, verify=False)
        if isinstance(self.method, SuiteBoundMethod):
            self.method.bind_suite(self.suite)
        fingerprinted = isinstance(self.method, FingerprintedMethod)
        return SuiteOpened(str(self.method.fingerprint()) if fingerprinted else None)

    def load_model(self, request: LoadModel) -> Reply:
        import torch

        from ...core.engine import Engine
        from ...core.model_options import ModelOptions
        from ...core.models import load_base_model

        t0 = time.perf_counter()
        if request.threads:
            torch.set_num_threads(request.threads)
        options = ModelOptions.from_record(request.options)
        model, tokenizer = load_base_model(request.base_model, request.base_model_revision, options=options)
        self.engine = Engine(model, tokenizer, max_batch=request.max_batch)
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        return ModelLoaded(str(self.engine.device), dtype, time.perf_counter() - t0)

    def fit(self, request: Fit) -> Reply:
        t0 = time.perf_counter()
        # Fitting is sealed and metered as answering is: a black-box method learns from replies only.
        cases, engine = self._as_allowed(self._cases(request.split, request.diff_ids))
        self.method.fit(cases, list(request.labels), engine)
        if request.state_dir is not None:
            Path(request.state_dir).mkdir(parents=True, exist_ok=True)
            self.method.save(Path(request.state_dir))
        total = Usage()
        for usage in self._engine().meter.per_case([c.diff.diff_id for c in cases]):
            total.add(usage)
        return Done(time.perf_counter() - t0, total.as_dict())

    def load_state(self, request: LoadState) -> Reply:
        t0 = time.perf_counter()
        self.method.load(Path(request.state_dir))
        return Done(time.perf_counter() - t0)

    def answer(self, request: Answer) -> Reply:
        cases = self._cases(request.split, request.diff_ids)
        if request.triggers:
            cases = [
                dataclasses.replace(c, trigger=t, trigger_kind=k)
                for c, t, k in zip(cases, request.triggers, request.trigger_kinds, strict=True)
            ]
        cases, view = self._as_allowed(cases)
        engine = self._engine()
        stats = engine.stats
        before = (stats.sequences, stats.new_tokens, stats.forward_batches)
        t0 = time.perf_counter()
        answers = check_answers(self.method.answer(cases, view), cases, self.where)
        seconds = time.perf_counter() - t0
        stats = engine.stats
        sequences, new_tokens, batches = (max(0, now - then) for now, then in zip(
            (stats.sequences, stats.new_tokens, stats.forward_batches), before, strict=True))
        usage = [u.as_dict() for u in engine.meter.per_case([c.diff.diff_id for c in cases])]
        return Answered(answers, seconds, sequences, new_tokens, batches, usage)

    def _as_allowed(self, cases: list[Case]) -> tuple[list[Case], Engine | BlackBoxEngine]:
        """The cases and the engine as the method's access class allows it to read them: a black-box
        method gets sealed diffs and the engine's replies only, a white-box one diffs whose tensor
        reads are counted. The engine's meter is reset, so it counts this call alone."""
        engine = self._engine()
        engine.access, engine.method_name = method_access(self.method), self.where
        engine.meter.reset()
        if engine.access == "black-box":
            return [dataclasses.replace(c, diff=SealedDiff(c.diff, self.where)) for c in cases], BlackBoxEngine(engine, self.where)
        return [dataclasses.replace(c, diff=metered(c.diff, engine.meter)) for c in cases], engine

    def _engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("no base model loaded: LoadModel must come first")
        return self.engine

    def _cases(self, split: str, diff_ids: Sequence[str]) -> list[Case]:
        if self.suite is None:
            raise RuntimeError("no suite open: OpenSuite must come first")
        return list(self.suite.cases(split, diff_ids=diff_ids))
