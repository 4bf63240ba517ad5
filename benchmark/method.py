"""The one protocol interpretation methods implement, and loading a method from a file.

Owns what a method is and how a user's file (or a built-in's name) becomes one. Only the method's
own process (`worker/`) calls the loaders here; running methods over a suite lives in `runner.py`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .. import core
from ..core.errors import WdqaError
from ..core.types import Case

if TYPE_CHECKING:  # not imported at run time: a method's process reports a broken file before loading transformers
    from ..core.engine import Engine
    from ..core.registry import Registry
    from ..core.suite import Suite


class MethodError(WdqaError):
    """A method file or object that cannot be used; the message names the file."""


@runtime_checkable
class Method(Protocol):
    """Answers the suite's question about each diff. Batch-first: one call, many cases.

    Attributes:
        name: shown in every table.
        oracle: True if the method must be told each diff's trigger (marked oracle, never ranked).
        access: optional, "black-box" (replies only: the diff's tensors and `engine.forward` are
            sealed off, and reading them fails the case) or "white-box" (the default); recorded in
            the run manifest and shown by `wdqa report` (docs/white-box.md).

    `answer` gets the cases and the Engine (M, and M′ = M ⊕ case.diff through `engine.chat`; for
    white-box methods also `engine.forward`, the logit lens and the diff's tensors) and returns one
    answer string per case, in order.

    Learned methods (see `LearnedMethod`) also define `fit(cases, labels, engine)` — the training
    split's cases with their label texts, in the same order — and `save(folder)` / `load(folder)`;
    `wdqa evaluate` fits them once per run folder and reloads the saved state on resume. A method
    may also define `bind_suite(suite)` (`SuiteBoundMethod`) and `fingerprint()`
    (`FingerprintedMethod`).
    """

    name: str
    oracle: bool

    def answer(self, cases: Sequence[Case], engine: Engine) -> list[str]: ...


@runtime_checkable
class LearnedMethod(Method, Protocol):
    def fit(self, cases: Sequence[Case], labels: Sequence[str], engine: Engine) -> None: ...

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...


@runtime_checkable
class SuiteBoundMethod(Method, Protocol):
    """A method that uses what the suite publishes (DIT: the adapter trained on its train split).
    `bind_suite` is called in the method's process once the suite is open (without its labels),
    before any `fit` or `answer`."""

    def bind_suite(self, suite: Suite) -> None: ...


@runtime_checkable
class FingerprintedMethod(Method, Protocol):
    """A method whose answers depend on more than its source (DIT: its adapter's tensors).
    `fingerprint()`, asked after `bind_suite`, joins the method's identity in the run manifest, so
    a run never resumes from answers another adapter gave."""

    def fingerprint(self) -> str: ...


@dataclass(frozen=True)
class LoadedMethod:
    method: Method
    sha256: str  # identity for the run manifest: the source file's hash, or a built-in's name and version
    builtin: bool


class Baselines(Protocol):
    """What this part uses of the built-in baselines. They live in wdqa.baselines, a part above this
    one: wdqa's own entry point (group `wdqa.baselines` in pyproject.toml) names the module that
    provides them, so nothing here imports it (docs/architecture.md)."""

    METHODS: Registry[Any]  # name -> factory, with the distribution that registered each
    DEFAULT_COMPARISON: tuple[str, ...]  # the baselines `wdqa evaluate` runs beside a method

    def get_baseline(self, spec: str, guesser: str = ...) -> Method: ...


def builtin_baselines() -> Baselines:
    """The module wdqa's `wdqa.baselines` entry point names (wdqa.baselines.registry)."""
    points = [p for p in metadata.entry_points(group="wdqa.baselines", name="wdqa") if p.dist is None or p.dist.name == "wdqa"]
    if not points:
        raise MethodError("wdqa's entry point for its built-in baselines is missing; reinstall wdqa (pip install -e .)")
    return points[0].load()


def load_method_spec(spec: str, guesser: str = "salient-words") -> LoadedMethod:
    """`baseline:NAME[:ARGUMENT]` (a built-in, or a method an installed package registers, with its
    guesser) or anything `load_method` takes."""
    if not spec.startswith("baseline:"):
        method, digest = load_method(spec)
        return LoadedMethod(method, digest, builtin=False)
    from .. import __version__

    baselines = builtin_baselines()
    name = spec.split(":", 1)[1]
    method = baselines.get_baseline(name, guesser)  # an unknown name or guesser: the error lists the known ones
    if guesser != "salient-words":
        method.name = f"{method.name}[{guesser}]"  # a different guesser is a different method
    origin = baselines.METHODS.entry(name.partition(":")[0]).origin
    if origin != "wdqa":  # a plugin's identity: its package, version and the source of its module
        source = Path(inspect.getsourcefile(type(method)) or "")
        code = hashlib.sha256(source.read_bytes() if source.is_file() else b"").hexdigest()
        digest = hashlib.sha256(f"plugin:{origin}:{name}:{guesser}:{code}".encode()).hexdigest()
        return LoadedMethod(method, digest, builtin=False)
    # A built-in's identity is its name, its guesser, wdqa's version and the code that makes its
    # answers: a changed baseline (or engine) never resumes from answers its older code gave.
    digest = hashlib.sha256(f"builtin:{name}:{guesser}:{__version__}:{builtin_code_sha256()}".encode()).hexdigest()
    return LoadedMethod(method, digest, builtin=True)


def builtin_code_sha256() -> str:
    """One hash over the files that decide what a built-in baseline answers: the baselines package
    (code, question lists, prompts) and the engine that runs M and M′."""
    baselines = Path(getattr(builtin_baselines(), "__file__", None) or "").parent
    here = Path(core.__file__ or "").resolve().parent
    files = sorted(p for p in baselines.rglob("*") if p.is_file() and p.suffix in (".py", ".txt", ".jinja", ".json"))
    files += [here / "engine.py", here / "lora.py", here / "triggers.py"]
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def load_method(spec: str, **options: Any) -> tuple[Method, str]:
    """Load `path/to/file.py`, `file.py:object` or `package.module:object`.

    Returns the method and the sha256 of its source (for the run manifest). A file that defines
    exactly one Method (instance, or class with a no-argument constructor) needs no `:object`.
    """
    target, _, attr = spec.partition(":")
    path = Path(target)
    if target.endswith(".py") or path.exists():
        if not path.is_file():
            raise MethodError(f"method file {target} does not exist")
        source = path.read_bytes()
        name = f"wdqa_method_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise MethodError(f"cannot import {target} as a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            raise MethodError(f"importing method file {target} failed: {type(err).__name__}: {err}") from err
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise MethodError(f"cannot import method module {target!r}: {err}") from err
        source = Path(module.__file__ or "").read_bytes() if getattr(module, "__file__", None) else b""
    obj = _pick(module, attr, spec)
    method = _instantiate(obj, spec, options)
    return method, hashlib.sha256(source).hexdigest()


def _is_method_like(obj: Any) -> bool:
    return callable(getattr(obj, "answer", None)) and hasattr(obj, "name")


def _pick(module: Any, attr: str, spec: str) -> Any:
    if attr:
        if not hasattr(module, attr):
            raise MethodError(f"{spec}: the module has no object named {attr!r}")
        return getattr(module, attr)
    candidates = {
        k: v
        for k, v in vars(module).items()
        if not k.startswith("_") and _is_method_like(v) and getattr(v, "__module__", module.__name__) == module.__name__
    }
    # An instance beats its own class when a file defines both.
    instances = {k: v for k, v in candidates.items() if not isinstance(v, type)}
    chosen = instances or candidates
    if not chosen:
        raise MethodError(
            f"{spec} defines no method: expected an object with a `name` and an "
            "`answer(cases, engine)` method (see the README's method API)"
        )
    if len(chosen) > 1:
        raise MethodError(f"{spec} defines several methods {sorted(chosen)}; pick one with {spec}:NAME")
    return next(iter(chosen.values()))


def _instantiate(obj: Any, spec: str, options: dict[str, Any]) -> Method:
    if isinstance(obj, type):
        try:
            obj = obj(**options)
        except TypeError as err:
            raise MethodError(f"{spec}: cannot construct {obj.__name__}: {err}") from err
    if not _is_method_like(obj):
        raise MethodError(f"{spec}: {obj!r} has no `name` and `answer(cases, engine)`")
    if not hasattr(obj, "oracle"):
        try:
            obj.oracle = False
        except AttributeError:
            pass
    return obj
