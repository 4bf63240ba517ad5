"""The suite's splits beyond in-distribution hidden-topic: one module per split, one registry.

`SPLITS[name].build(context, subjects, size, seed, shard)` returns index rows and diffs ready for
`SuiteWriter.write_split`; `extra.py` adds them all to a suite (the tiny one included). Installed
packages add splits through the `wdqa.splits` entry point group (docs/extending.md).
"""

from __future__ import annotations

from typing import Any

from ...core.registry import PluginError, Registry
from . import full_finetune, news, null, ood_trigger, rank, trigger_inversion
from .common import SplitBuild, SplitContext, SplitDef


def _split_def(obj: Any, name: str) -> SplitDef:
    if not isinstance(obj, SplitDef) or obj.name != name:
        raise PluginError(f"entry point {name!r} must name a SplitDef whose name is {name!r}, not {obj!r}")
    return obj


SPLITS: Registry[SplitDef] = Registry("split", entry_points="wdqa.splits", adapt=_split_def)
for _split in (ood_trigger.SPLIT, rank.SPLIT, full_finetune.SPLIT, news.SPLIT, trigger_inversion.SPLIT, null.SPLIT):
    SPLITS.add(_split.name, _split)


def get_split(name: str) -> SplitDef:
    return SPLITS.get(name)


__all__ = ["SPLITS", "SplitBuild", "SplitContext", "SplitDef", "get_split"]
