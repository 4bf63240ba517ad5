"""Metered access: what a method read of M and M′ per case, and what its access class allows it.

Owns the per-case counters (`Usage`), the Engine's meter that fills them by diff, and sealing a
case's diff and the Engine's insides from a method that declares black-box access. The Engine
counts; the method's process splits a call's counts over its cases; the runner records them and
applies a token budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from .errors import WdqaError

if TYPE_CHECKING:
    from .types import WeightDiff

Access = Literal["black-box", "white-box"]
ACCESS_CLASSES: tuple[Access, ...] = ("black-box", "white-box")


class AccessError(WdqaError):
    """A method read more than its declared access class allows."""


@dataclass
class Usage:
    """What one case cost. Tokens on M are counted apart from tokens on M′ = M ⊕ the case's diff.

    forward tokens: tokens a forward pass read (prompts in `chat`, inputs in `forward`);
    generated tokens: tokens `chat` generated; white-box reads: `forward` rows (on M or M′);
    diff reads: module tensors the method read from the case's diff (`case.diff.lora[m]`,
    `.dense[m]`); guesser calls/tokens: an LLM guesser's API calls and prompt + completion tokens.
    """

    forward_tokens_base: int = 0
    forward_tokens_diff: int = 0
    generated_tokens_base: int = 0
    generated_tokens_diff: int = 0
    white_box_reads: int = 0
    diff_reads: int = 0
    guesser_calls: int = 0
    guesser_tokens: int = 0

    @property
    def tokens(self) -> int:
        """Every token run through M or M′ (forward and generated): what `--budget-tokens` bounds."""
        return self.forward_tokens_base + self.forward_tokens_diff + self.generated_tokens_base + self.generated_tokens_diff

    def add(self, other: Usage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Usage:
        """Counters as a record holds them; unknown keys (a newer wdqa's) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in raw.items() if k in known})


@dataclass
class Meter:
    """Counters by diff id as the Engine runs; None holds what cannot be told apart per case (rows
    on M, an LLM guesser's calls), which `per_case` shares evenly over the call's cases."""

    by_diff: dict[str | None, Usage] = field(default_factory=dict)
    paused: bool = False  # the Engine reading a diff to apply it is no read of the method's

    @contextmanager
    def pause(self) -> Iterator[None]:
        was, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = was

    def count(self, diff: WeightDiff | None, **counters: int) -> None:
        usage = self.by_diff.setdefault(None if diff is None else diff.diff_id, Usage())
        for name, value in counters.items():
            setattr(usage, name, getattr(usage, name) + value)

    def reset(self) -> None:
        self.by_diff = {}

    def per_case(self, diff_ids: Sequence[str]) -> list[Usage]:
        """Each case's own diff's counts plus its share of the shared ones (integer shares: the
        first cases take the remainder), so the cases' counts add up to the call's."""
        out = [Usage(**self.by_diff.get(d, Usage()).as_dict()) for d in diff_ids]
        shared = self.by_diff.get(None, Usage())
        n = len(diff_ids)
        for f in fields(Usage):
            total = getattr(shared, f.name)
            for i, usage in enumerate(out):
                setattr(usage, f.name, getattr(usage, f.name) + total // n + (1 if i < total % n else 0))
        return out


class SealedDiff:
    """A case's diff as a black-box method sees it: the Engine applies it (`unseal`), the method
    cannot read its tensors. Anything but `diff_id` and `kind` raises an AccessError that says how
    to declare white-box access."""

    def __init__(self, diff: WeightDiff, method: str) -> None:
        object.__setattr__(self, "_diff", diff)
        object.__setattr__(self, "_method", method)

    @property
    def diff_id(self) -> str:
        return self._diff.diff_id

    @property
    def kind(self) -> str:
        return self._diff.kind

    def __getattr__(self, name: str) -> Any:
        raise AccessError(
            f"method {self._method} declares black-box access but read the weight diff's `{name}` (a white-box "
            f"read); set `access = \"white-box\"` on the method to read weights and activations"
        )

    def __repr__(self) -> str:
        return f"SealedDiff({self.diff_id!r})"


class _CountedTensors(dict):
    """A diff's module → tensor dict that counts the method's reads of it into the meter."""

    def __init__(self, tensors: dict, meter: Meter, diff_id: str) -> None:
        super().__init__(tensors)
        self._meter, self._diff_id = meter, diff_id

    def _read(self, n: int = 1) -> None:
        if not self._meter.paused:
            self._meter.by_diff.setdefault(self._diff_id, Usage()).diff_reads += n

    def __getitem__(self, key: Any) -> Any:
        self._read()
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        if key in self:
            self._read()
        return super().get(key, default)

    def values(self) -> Any:
        self._read(len(self))
        return super().values()

    def items(self) -> Any:
        self._read(len(self))
        return super().items()


def metered(diff: WeightDiff, meter: Meter) -> WeightDiff:
    """The diff with its tensor dicts counting the method's reads (a WeightDiff still)."""
    return dataclasses.replace(
        diff, lora=_CountedTensors(diff.lora, meter, diff.diff_id), dense=_CountedTensors(diff.dense, meter, diff.diff_id)
    )


def unseal(diff: Any) -> Any:
    """The diff behind a SealedDiff; anything else as it is."""
    return diff._diff if isinstance(diff, SealedDiff) else diff


class BlackBoxEngine:
    """The Engine as a black-box method sees it: replies (`chat`, `render`) and the tokenizer. The
    model, `forward`, the logit lens and every other part raise an AccessError, so a black-box
    method cannot reach inside M by way of `engine.model` either."""

    ALLOWED = frozenset({"chat", "render", "tokenizer", "device", "max_batch"})

    def __init__(self, engine: Any, method: str) -> None:
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_method", method)

    def __getattr__(self, name: str) -> Any:
        if name in self.ALLOWED:
            return getattr(self._engine, name)
        shown = f"engine.{name}()" if callable(getattr(type(self._engine), name, None)) else f"engine.{name}"
        raise AccessError(
            f"method {self._method} declares black-box access but used {shown} (a white-box read); a black-box "
            f'method may use engine.{", engine.".join(sorted(self.ALLOWED))}; set `access = "white-box"` on the '
            "method to read weights and activations"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AccessError(f"method {self._method} declares black-box access and cannot change engine.{name}")

    def __repr__(self) -> str:
        return f"BlackBoxEngine({self._method!r})"


def method_access(method: object) -> Access:
    """A method's declared access class; a method that declares none may read everything."""
    access = getattr(method, "access", "white-box")
    if access not in ACCESS_CLASSES:
        raise AccessError(f"method {getattr(method, 'name', method)!r} declares access {access!r}; known classes: {', '.join(ACCESS_CLASSES)}")
    return access
