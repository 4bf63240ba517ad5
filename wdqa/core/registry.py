"""One registry for every extension point: methods, judges, guessers, splits, executors, suite sources.

Owns a name -> thing table filled by a decorator (`@REGISTRY.register("name")`) or by an
installed package's entry point, and the error for an unknown name. What a registered thing is
(a judge factory, a split definition...) is each extension point's business, not this module's.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from .errors import WdqaError, WdqaWarning

T = TypeVar("T")


class UnknownNameError(WdqaError, ValueError):
    """A name no registry entry has; the message lists the known names and suggests a close one."""


class PluginError(WdqaError):
    """An installed package's entry point that cannot be loaded or clashes with a registered name."""


class PluginWarning(WdqaWarning):
    """An installed package's entry point was left out (it failed to load, or its name was taken)."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    help: str = ""
    origin: str = "wdqa"  # the distribution that registered it, with its version for plugins


class Registry(Generic[T]):
    """Names -> things of one kind, in registration order.

    `entry_points` names the group (`wdqa.judges`, ...) through which installed packages add
    entries; they are loaded on the first lookup or listing, never at import, so `wdqa --help`
    imports no plugin. `adapt` turns an entry point's object into a `T` (e.g. a Method class
    into a method factory); by default the object is the entry itself.
    """

    def __init__(
        self,
        kind: str,
        plural: str | None = None,
        entry_points: str | None = None,
        adapt: Callable[[Any, str], T] | None = None,
        error: type[WdqaError] = UnknownNameError,
        syntax: str = "",
    ) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.group = entry_points
        self.adapt = adapt
        self.error = error
        self.syntax = syntax  # shown after the names in an unknown-name error, e.g. "(NAME or NAME:ARG)"
        self._entries: dict[str, Entry[T]] = {}
        self._broken: dict[str, str] = {}  # plugin name -> why it could not be loaded
        self._plugin_names: set[str] = set()
        self._plugins_loaded = entry_points is None

    # -- filling

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        """Decorator: `@JUDGES.register("offline", help="...")` above the factory or definition."""

        def add(value: T) -> T:
            self.add(name, value, help)
            return value

        return add

    def add(self, name: str, value: T, help: str = "", origin: str = "wdqa") -> None:
        if name in self._entries:
            raise PluginError(
                f"{self.kind} {name!r} is registered twice (by {self._entries[name].origin} and by {origin}); "
                f"rename one of them"
            )
        self._entries[name] = Entry(name, value, help, origin)

    def remove(self, name: str) -> None:
        """Take an entry out again (tests that register a throwaway entry)."""
        self._entries.pop(name, None)

    def refresh(self) -> None:
        """Forget what installed packages added: the next lookup reads the entry points again (after
        a package was installed into a running process, or a test put one on sys.path)."""
        for name in self._plugin_names:
            self._entries.pop(name, None)
        self._plugin_names.clear()
        self._broken.clear()
        self._plugins_loaded = self.group is None

    # -- lookup

    def get(self, name: str) -> T:
        return self.entry(name).value

    def entry(self, name: str) -> Entry[T]:
        self._load_plugins()
        if name in self._entries:
            return self._entries[name]
        if name in self._broken:
            raise PluginError(self._broken[name])
        raise self.error(self.unknown(name))

    def unknown(self, name: str) -> str:
        """The message for an unknown name: the known ones, and a close match when there is one."""
        entries = self.entries()
        close = difflib.get_close_matches(name, [e.name for e in entries], n=1, cutoff=0.6)
        message = f"unknown {self.kind} {name!r};" + (f" did you mean {close[0]!r}?" if close else "")
        message += f" known {self.plural}" + (f" {self.syntax}" if self.syntax else "") + ":"
        if any(e.help for e in entries):  # one line each, with what it does (the CLI joins them)
            return message + "".join(f"\n  {e.name} - {e.help}" if e.help else f"\n  {e.name}" for e in entries)
        return message + " " + (", ".join(e.name for e in entries) or "none")

    def names(self) -> list[str]:
        self._load_plugins()
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        self._load_plugins()
        return list(self._entries.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __len__(self) -> int:
        return len(self.names())

    # -- plugins

    def _load_plugins(self) -> None:
        """Add every entry point of the group once. One that fails to import is left out with a
        warning, and asking for its name is an error that says why: a broken plugin never hides
        the built-ins."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in metadata.entry_points(group=self.group or ""):
            dist = point.dist
            origin = f"{dist.name} {dist.version}" if dist is not None else "an installed package"
            if point.name in self._entries:
                warnings.warn(
                    f"{origin} registers a {self.kind} {point.name!r} (entry point {point.value}), but "
                    f"{self._entries[point.name].origin} already has that name: the package's is left out; rename it",
                    PluginWarning,
                    stacklevel=2,
                )
                continue
            try:
                loaded = point.load()
                value = self.adapt(loaded, point.name) if self.adapt else loaded
            except Exception as err:
                why = (
                    f"the {self.kind} {point.name!r} that {origin} registers (entry point {point.value} in group "
                    f"{self.group}) failed to load: {type(err).__name__}: {err}; fix or uninstall that package"
                )
                self._broken[point.name] = why
                warnings.warn(why, PluginWarning, stacklevel=2)
                continue
            doc = (getattr(loaded, "__doc__", None) or "").strip().splitlines()
            self.add(point.name, value, help=doc[0] if doc else "", origin=origin)
            self._plugin_names.add(point.name)
