"""Sharded generation: `--shard i/n` picks a disjoint, deterministic piece of the work, and
`merge_suites` joins the shard folders into one suite (re-numbered shards, fresh hashes).

Owns splitting work lists and merging suite folders; what each piece builds is the split builders' job.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from ..core.suite import Suite, SuiteError, SuiteWriter

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Piece `index` of `count` (0 <= index < count)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError as err:
            raise ValueError(f"--shard expects i/n with integers, e.g. 0/4; got {text!r}") from err
        if n < 1 or not 0 <= i < n:
            raise ValueError(f"--shard {text}: need 0 <= i < n (pieces are numbered from 0)")
        return cls(i, n)

    def take(self, items: Sequence[T]) -> list[T]:
        """Every n-th item from the i-th: disjoint across pieces, their union is `items`, order kept.

        Callers pass the full work list in a deterministic order (e.g. topics after a seeded shuffle),
        so every machine computes the same pieces without talking to the others.
        """
        return list(items[self.index :: self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard()  # the unsharded build


def merge_suites(parts: Sequence[str | Path], out: str | Path, name: str | None = None) -> Suite:
    """One suite from shard folders of the same base model; refuses overlapping diff ids."""
    if not parts:
        raise SuiteError("merge_suites needs at least one part")
    suites = [Suite.load(p) for p in parts]  # verifies every part's hashes first
    first = suites[0]
    problems = [
        f"{s.root}: base model {s.base_model}@{s.base_model_revision} differs from "
        f"{first.base_model}@{first.base_model_revision} in {first.root}"
        for s in suites[1:]
        if (s.base_model, s.base_model_revision) != (first.base_model, first.base_model_revision)
    ]
    seen: dict[tuple[str, str], Path] = {}
    for s in suites:
        for split in s.splits:
            for diff_id in s.index(split).diff_id:
                if (split, diff_id) in seen:
                    problems.append(
                        f"split {split}: diff {diff_id} is in both {seen[split, diff_id]} and {s.root}"
                    )
                seen[split, diff_id] = s.root
            other = first.splits.get(split)
            info = s.splits[split]
            if other is not None and (other.behaviour, other.question) != (
                info.behaviour,
                info.question,
            ):
                problems.append(
                    f"split {split}: {s.root} has behaviour/question {info.behaviour!r}/{info.question!r}, {first.root} has {other.behaviour!r}/{other.question!r}"
                )
    if problems:
        raise SuiteError("cannot merge these suite parts:\n  " + "\n  ".join(problems[:20]))

    out = Path(out)
    if (out / "suite.json").exists() or (out.exists() and any(out.iterdir())):
        raise SuiteError(f"{out} is not empty; merge into a new folder")
    writer = SuiteWriter(
        out, name or first.name, first.version, first.base_model, first.base_model_revision
    )
    split_names = sorted({sp for s in suites for sp in s.splits})
    for split in split_names:
        frames, next_shard = [], 0
        # A sealed private split travels as its index alone (its labels are the maintainers').
        private = {s.is_private(split) for s in suites if split in s.splits}
        if len(private) > 1:
            raise SuiteError(f"cannot merge split {split}: it is private (sealed) in some parts and not in others")
        for s in suites:
            if split not in s.splits:
                continue
            df = s.index(split) if True in private else s.labelled_index(split)  # labels go to the merged labels file
            renamed = {}
            for shard in dict.fromkeys(df["shard"]):
                renamed[shard] = f"shard-{next_shard:05d}.safetensors"
                next_shard += 1
                dest = out / "splits" / split / renamed[shard]
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(s.root / "splits" / split / shard, dest)
            frames.append(df.assign(shard=df["shard"].map(renamed)))
        info = next(s.splits[split] for s in suites if split in s.splits)
        records = pd.concat(frames, ignore_index=True).to_dict("records")
        writer.write_index(split, info.behaviour, info.question, records, private=True in private)
    writer.extra = {**first.extra, "merged_from": [str(s.root) for s in suites]}
    card = first.root / "README.md"
    return writer.finish(data_card=card.read_text() if card.exists() else None)
