"""The run manifest: what a run folder's `manifest.json` says about the run, as typed values.

Owns the manifest's fields, its schema version, reading it (older manifests are upgraded, never
rejected) and writing it back as JSON. The run folder's files and records live in `records.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from ..core.errors import RunError

RUN_SCHEMA_VERSION = 1
RESTORE = "restore it, or move the run folder aside and evaluate again"

T = TypeVar("T")


@dataclass(frozen=True)
class RunMethod:
    """The method that answered: `sha256` is its identity (source, or a built-in's name and code,
    combined with its `fingerprint()`); a run resumes only under the same one."""

    name: str
    spec: str = ""
    sha256: str = ""
    oracle: bool = False
    builtin: bool = False
    access: str | None = None  # "black-box" or "white-box" as the method declared (wdqa/core/meter.py); None before
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. train_fraction of a data-scaling run

    def train_fraction(self) -> float | None:
        """The share of training diffs a learned method saw, when the run states it (docs/leaderboard.md)."""
        for holder in (self.extra, self.extra.get("config")):
            value = holder.get("train_fraction") if isinstance(holder, Mapping) else None
            if value is not None:
                try:
                    return float(value)
                except (TypeError, ValueError):
                    return None
        return None


@dataclass(frozen=True)
class RunSuite:
    """The suite answered on. `content_sha256` is None for a run made before suites had a content
    hash: such a run matches no suite, so it is answered again rather than trusted."""

    name: str
    version: str = ""
    base_model: str = ""
    base_model_revision: str | None = None
    content_sha256: str | None = None
    root: str | None = None  # the suite's folder on the machine that ran it
    source: str | None = None  # what `--suite` named: a local path or a Hub repo id
    revision: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunJudge:
    """A judge whose scores the run holds in scores/<key>.jsonl; `usage` is the API calls, tokens
    and cost of its last grading, for judges that report them."""

    key: str
    name: str
    prompt_version: str
    usage: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RunManifest:
    """`manifest.json` of a run folder (docs/run-format.md). A value: change it with `replace`."""

    method: RunMethod
    suite: RunSuite
    splits: tuple[str, ...] = ()  # every split answered into this folder, in the order first asked
    # Those of `splits` that are private: answered, never judged here (the maintainers score them).
    private_splits: tuple[str, ...] = ()
    judges: tuple[RunJudge, ...] = ()
    seed: int = 0
    limit: int | None = None
    device: str = "auto"  # the device the method's process ran the base model on, once it ran
    started: str | None = None
    finished: str | None = None
    wdqa_version: str | None = None
    git_commit: str | None = None
    python: str | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    generation: Mapping[str, int] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    # What the cases read of M and M′, summed over the answered cases (wdqa/core/meter.py Usage),
    # with `cases`: how many cases were metered; and the per-case token budget the run applied.
    usage: Mapping[str, int] = field(default_factory=dict)
    budget_tokens: int | None = None
    # A learned method's fit: split, cases, seconds and `usage`, what fitting read of M and M′
    # (summed over its cases); empty for a method that does not learn.
    fit: Mapping[str, Any] = field(default_factory=dict)
    # How the base model was loaded (dtype, device, device_map, attention, revision, max_batch), what
    # was actually loaded (`loaded`) and any earlier settings of a resumed run (`earlier`): recorded,
    # not part of the run's identity (docs/run-format.md).
    model: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields this wdqa does not know, kept as read
    schema_version: int = RUN_SCHEMA_VERSION

    def judge(self, key: str) -> RunJudge | None:
        return next((j for j in self.judges if j.key == key), None)

    def with_judge(self, judge: RunJudge) -> RunManifest:
        """This manifest with `judge` listed last, replacing an entry of the same key."""
        return replace(self, judges=(*(j for j in self.judges if j.key != judge.key), judge))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "manifest.json", fix: str = RESTORE) -> RunManifest:
        """Read a manifest as written by any wdqa version up to this one. A field of the wrong type
        is a RunError naming `source` (the file), the field, and `fix` (what to do)."""
        if not isinstance(raw, Mapping):
            raise RunError(f"{source} is not a JSON object; {fix}")
        raw = upgrade(raw, source)
        read = _Reader(source, fix)
        return cls(
            method=read.part(raw, "method", RunMethod),
            suite=read.part(raw, "suite", RunSuite),
            splits=tuple(read.strings(raw, "splits")),
            private_splits=tuple(read.strings(raw, "private_splits")),
            judges=tuple(read.judge(j, i) for i, j in enumerate(read.value(raw, "judges", list, []))),
            seed=read.value(raw, "seed", int, 0),
            limit=read.value(raw, "limit", int, None),
            device=read.value(raw, "device", str, "auto"),
            started=read.value(raw, "started", str, None),
            finished=read.value(raw, "finished", str, None),
            wdqa_version=read.value(raw, "wdqa_version", str, None),
            git_commit=read.value(raw, "git_commit", str, None),
            python=read.value(raw, "python", str, None),
            packages=read.value(raw, "packages", dict, {}),
            timings=read.value(raw, "timings", dict, {}),
            generation=read.value(raw, "generation", dict, {}),
            counts=read.value(raw, "counts", dict, {}),
            usage=read.value(raw, "usage", dict, {}),
            budget_tokens=read.value(raw, "budget_tokens", int, None),
            fit=read.value(raw, "fit", dict, {}),
            model=read.value(raw, "model", dict, {}),
            extra={k: v for k, v in raw.items() if k not in _FIELDS},
            schema_version=RUN_SCHEMA_VERSION,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `manifest.json` holds (unknown fields read from an older or newer
        manifest are written back unchanged)."""
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in ("method", "suite"):
                value = {**value.extra, **{g.name: getattr(value, g.name) for g in fields(value) if g.name != "extra"}}
            elif f.name == "judges":
                value = [_judge_dict(j) for j in value]
            elif isinstance(value, tuple | Mapping):
                value = list(value) if isinstance(value, tuple) else dict(value)
            out[f.name] = value
        return out


_FIELDS = {f.name for f in fields(RunManifest)}


def upgrade(raw: Mapping[str, Any], source: str = "manifest.json") -> dict[str, Any]:
    """An older manifest as the current schema: upgraded on read, never rejected.

    - no `schema_version`: written before runs were versioned, read as version 1.
    - a `suite` without `content_sha256`: made before the content hash, when the suite was named by
      its indexes alone, which cannot prove the diffs were the same; it gets None, which matches
      no suite, so such a run is answered again.
    """
    version = raw.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunError(f"{source}: schema_version is {version!r}, not an integer; restore the file from a backup")
    if version > RUN_SCHEMA_VERSION:
        raise RunError(
            f"{source} has run schema version {version}, newer than this wdqa reads ({RUN_SCHEMA_VERSION}); "
            "upgrade wdqa (pip install -U wdqa)"
        )
    out = dict(raw)
    suite = out.get("suite")
    if isinstance(suite, Mapping) and "content_sha256" not in suite:
        out["suite"] = {**suite, "content_sha256": None}
    return out


def _judge_dict(judge: RunJudge) -> dict[str, Any]:
    out: dict[str, Any] = {"key": judge.key, "name": judge.name, "prompt_version": judge.prompt_version}
    if judge.usage:
        out["usage"] = dict(judge.usage)
    return out


class _Reader:
    """Typed reads of a manifest's fields, each failing with the file and the field's path."""

    def __init__(self, source: str, fix: str) -> None:
        self.source = source
        self.fix = fix

    def fail(self, where: str, value: Any, expected: str) -> RunError:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return RunError(f"{self.source}: {where} is {shown}, expected {expected}; the file was edited or damaged: {self.fix}")

    def value(self, raw: Mapping[str, Any], key: str, kind: type[T], default: T, where: str = "") -> T:
        value = raw.get(key, default)
        if value is None and default is None:
            return default
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.fail(f"{where}{key}", value, kind.__name__ if default is not None else f"{kind.__name__} or null")
        return value

    def strings(self, raw: Mapping[str, Any], key: str) -> list[str]:
        values = self.value(raw, key, list, [])
        if not all(isinstance(v, str) for v in values):
            raise self.fail(key, values, "a list of strings")
        return values

    def part(self, raw: Mapping[str, Any], key: str, kind: Callable[..., T]) -> T:
        part = raw.get(key)
        if not isinstance(part, Mapping) or not isinstance(part.get("name"), str):
            raise self.fail(key, part, 'an object with a "name"')
        known = {f.name: f for f in fields(kind)}  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for name, f in known.items():
            if name == "extra" or name not in part:
                continue
            kind_of = {"bool": bool, "str": str, "str | None": str}.get(str(f.type), str)
            values[name] = self.value(part, name, kind_of, None if "None" in str(f.type) else f.default, f"{key}.")
        return kind(**values, extra={k: v for k, v in part.items() if k not in known})

    def judge(self, raw: Any, index: int) -> RunJudge:
        where = f"judges[{index}]"
        if not isinstance(raw, Mapping):
            raise self.fail(where, raw, "an object with key, name and prompt_version")
        key, name, version = (self.value(raw, k, str, "", f"{where}.") for k in ("key", "name", "prompt_version"))
        usage = self.value(raw, "usage", dict, None, f"{where}.")
        return RunJudge(key, name, version, usage)
