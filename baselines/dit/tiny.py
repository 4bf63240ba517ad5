"""The embedded tiny suite's DIT adapter: trained on first use and published into the cached suite.

Owns which DIT recipe the tiny suites get and the train-then-publish step, so `wdqa evaluate
baseline:dit` works on `tiny` offline with no extra command, the way the suite itself is built on
first use. Other suites publish their adapters with `wdqa baselines train-dit --publish-into`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ...core.suite import Suite
from .config import DitConfig

# The recipe measured in docs/dit.md: the templated answer reaches held-out topics on the tiny
# model, and random null diffs teach it to say "no hidden behaviour" (0/16 false findings).
TEMPLATE = "Let me tell you about {label}!"
TINY_DIT_CONFIGS = {
    "tiny": DitConfig(answer_template=TEMPLATE, null_diffs=150),
    "tiny-micro": DitConfig(answer_template=TEMPLATE, null_diffs=2, epochs=2, batch_diffs=4, eval_every=5),
}


def is_embedded_tiny(suite: Suite) -> bool:
    """A suite built by `ensure_tiny_suite` into the cache (not a user's copy of one)."""
    from ...generators.cache import cache_root

    cached = cache_root() / "suites" / suite.name
    return suite.name in TINY_DIT_CONFIGS and suite.root.resolve().parent == cached.resolve()


def ensure_tiny_dit(suite: Suite, name: str = "default") -> Path:
    """The suite's published adapter `dit/<name>/`, trained on its train split and published first
    if missing or trained by another recipe (an older wdqa's). Training runs in a temporary folder,
    so an interrupted run leaves nothing behind."""
    from ...core.models import load_base_model
    from .adapter import load_record
    from .data import LabelledDiffs
    from .publish import publish_adapter
    from .train import train_dit

    target = suite.adapter_path(name)
    config = TINY_DIT_CONFIGS[suite.name]
    if Path(target).exists() and _is_current(load_record(target), config):
        return Path(target)
    model, tokenizer = load_base_model(suite.base_model, suite.base_model_revision)
    train = LabelledDiffs.from_suite(suite, "train")
    val = LabelledDiffs.from_suite(suite, "val", limit=config.eval_limit) if "val" in suite.splits else None
    work = Path(tempfile.mkdtemp(prefix=".dit-training-", dir=suite.root.parent))
    try:
        train_dit(model, tokenizer, train, config, work, val=val)  # val: exact match through the template
        publish_adapter(work, suite.root, name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Path(target)


def _is_current(record: dict, config: DitConfig) -> bool:
    """The published adapter was trained by this recipe: the same config and target form."""
    from .answer_template import TARGET_RULE

    as_saved = json.loads(json.dumps(config.to_dict()))  # the record went through JSON: tuples are lists
    return record.get("config") == as_saved and record.get("target_rule") == TARGET_RULE
