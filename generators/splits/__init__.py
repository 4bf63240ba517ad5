"""The suite's splits beyond in-distribution hidden-topic: one module per split, one registry.

`SPLIT_BUILDERS[name].build(context, subjects, size, seed)` returns index rows and diffs ready for
`SuiteWriter.write_split`; `extra.py` adds them all to a suite (the tiny one included).
"""

from __future__ import annotations

from . import full_finetune, news, null, ood_trigger, rank, trigger_inversion
from .common import SplitBuild, SplitContext, SplitDef

SPLIT_BUILDERS: dict[str, SplitDef] = {
    s.name: s
    for s in (
        ood_trigger.SPLIT,
        rank.SPLIT,
        full_finetune.SPLIT,
        news.SPLIT,
        trigger_inversion.SPLIT,
        null.SPLIT,
    )
}


def get_split(name: str) -> SplitDef:
    if name not in SPLIT_BUILDERS:
        raise ValueError(f"unknown split {name!r}; known splits: {', '.join(SPLIT_BUILDERS)}")
    return SPLIT_BUILDERS[name]


__all__ = ["SPLIT_BUILDERS", "SplitBuild", "SplitContext", "SplitDef", "get_split"]
