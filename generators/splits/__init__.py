"""The suite's splits: one module per split definition, one registry.

`SPLITS[name].build(context, subjects, size, seed, shard)` returns index rows and diffs ready for
`common.write_split`. `hidden-topic` is the suite's main behaviour: the tiny suite's train, val,
test and private-test splits are built from it (`tiny_suite.py`); `extra.py` adds the others to a
suite. Installed packages add splits through the `wdqa.splits` entry point group (docs/extending.md).
"""

from __future__ import annotations

from typing import Any

from ...core.registry import PluginError, Registry
from . import full_finetune, hidden_topic, news, null, ood_trigger, rank, trigger_inversion
from .common import SplitBuild, SplitContext, SplitDef


def _split_def(obj: Any, name: str) -> SplitDef:
    if not isinstance(obj, SplitDef) or obj.name != name:
        raise PluginError(f"entry point {name!r} must name a SplitDef whose name is {name!r}, not {obj!r}")
    return obj


SPLITS: Registry[SplitDef] = Registry("split", entry_points="wdqa.splits", adapt=_split_def)
for _split in (ood_trigger.SPLIT, rank.SPLIT, full_finetune.SPLIT, news.SPLIT, trigger_inversion.SPLIT, null.SPLIT,
               hidden_topic.SPLIT):
    SPLITS.add(_split.name, _split)


def get_split(name: str) -> SplitDef:
    return SPLITS.get(name)


__all__ = ["SPLITS", "SplitBuild", "SplitContext", "SplitDef", "get_split"]
