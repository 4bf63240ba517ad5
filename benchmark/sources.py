"""From the SUITE a user names to a suite folder on disk: the embedded `tiny` suite (built
offline and cached), a local folder or file:// path, or a Hugging Face Hub dataset repo.

Owns the suite sources, tried in registration order: the first that claims a name fetches it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.registry import Registry
from ..core.suite import Suite, SuiteError

# Embedded suites: name -> a function that builds (once, cached) the splits asked for (None: all)
# and returns the suite's folder.
EMBEDDED: Registry[Callable[[Sequence[str] | None], Path]] = Registry("embedded suite")


@EMBEDDED.register("tiny", help="the offline default: hidden-topic diffs on the project's tiny Qwen3 model (shipped with wdqa), built on first use")
def _tiny(splits: Sequence[str] | None = None) -> Path:
    from ..generators.tiny_suite import ensure_tiny_suite

    return ensure_tiny_suite(splits=splits)


@dataclass(frozen=True)
class SuiteSource:
    """`claims(name)`: whether this source serves the name; `fetch(name, splits, revision)`: the
    suite's folder (built, downloaded or as it is)."""

    claims: Callable[[str], bool]
    fetch: Callable[[str, Sequence[str] | None, str | None], Path]


SOURCES: Registry[SuiteSource] = Registry("suite source")


def _local_path(name: str) -> Path:
    return Path(name[len("file://") :] if name.startswith("file://") else name)


def _hub_download(name: str, splits: Sequence[str] | None, revision: str | None) -> Path:
    from ..core.hub import download_suite

    return download_suite(name, splits=splits, revision=revision)


SOURCES.add("embedded", SuiteSource(lambda name: name in EMBEDDED, lambda name, splits, revision: EMBEDDED.get(name)(splits)))
SOURCES.add("local", SuiteSource(lambda name: _local_path(name).exists(), lambda name, splits, revision: _local_path(name)))
SOURCES.add(
    "hub",
    SuiteSource(
        lambda name: name.startswith("hf://") or (name.count("/") == 1 and not name.startswith((".", "/"))),
        _hub_download,
    ),
)


def resolve_suite(name: str, splits: Sequence[str] | None = None, revision: str | None = None) -> Suite:
    """Load (building or downloading when needed) and verify the suite a user named."""
    for source in SOURCES.entries():
        if source.value.claims(name):
            return Suite.load(source.value.fetch(name, splits, revision), splits=splits)
    raise SuiteError(
        f"no suite {name!r}: not an embedded suite ({', '.join(EMBEDDED)}), not an existing folder, "
        "and not a Hub repo id (org/name); check the path, or name `tiny` or a Hub dataset like org/name"
    )
