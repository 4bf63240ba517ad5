"""Sealing a private split: its labels leave the suite for a maintainers' file, with a few canaries.

Runs on a finished suite (after the last merge): the split's labels.parquet moves out to the
maintainers' label file (`wdqa/core/private_labels.py`), the manifest marks the split private, and
the data card says how it is scored. The index and shards stay as built. Nothing here trains.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ...core.private_labels import write_private_labels
from ...core.suite import (
    DATA_CARD,
    LABELS_FILE,
    Suite,
    SuiteError,
    atomic_write_text,
    rewrite_manifest,
    sha256_file,
)

PRIVATE_SPLIT = "private-test"


def maintainer_labels_path(suite_root: str | Path, split: str = PRIVATE_SPLIT) -> Path:
    """Where a suite's private labels go by default: a sibling folder, outside what is published."""
    root = Path(suite_root)
    return root.parent / f"{root.name}.maintainer" / f"{split}.labels.parquet"


def seal_private_split(
    suite_root: str | Path, split: str, labels_path: Path, canary_labels: Sequence[str], seed: int = 0
) -> Path:
    """Move `split`'s labels to `labels_path`; `canary_labels` become the labels of as many of its
    diffs (drawn with `seed`), labels unrelated to what those diffs were trained on: only a method
    that read this file can name them. Returns `labels_path`."""
    suite = Suite.load(suite_root, verify=False)
    suite.split(split)
    labels_file = Path(suite_root) / "splits" / split / LABELS_FILE
    if suite.is_private(split) or not labels_file.exists():
        raise SuiteError(f"split {split} of {suite_root} is already sealed (it has no {LABELS_FILE})")
    table = pd.read_parquet(labels_file)
    if len(canary_labels) >= len(table):
        raise SuiteError(f"split {split}: {len(canary_labels)} canaries leave none of its {len(table)} diffs to score")
    table["trained_label"] = table["label"]
    table["canary"] = False
    decoys = random.Random(f"canaries/{seed}/{split}").sample(list(table.index), len(canary_labels))
    for row, label in zip(sorted(decoys), canary_labels, strict=True):
        table.loc[row, ["label", "canary"]] = [label, True]
    write_private_labels(labels_path, suite, split, table)
    labels_file.unlink()

    def mark(raw: dict) -> None:
        raw["splits"][split]["private"] = True
        del raw["files"][f"splits/{split}/{LABELS_FILE}"]

    suite = rewrite_manifest(suite_root, mark)
    card = Path(suite_root) / DATA_CARD
    if card.exists():
        atomic_write_text(card, card.read_text() + private_card_section(split, len(table)))
        rewrite_manifest(suite_root, lambda raw: raw["files"].__setitem__(DATA_CARD, sha256_file(card)))
    return labels_path


def private_card_section(split: str, n_diffs: int) -> str:
    return f"""
## Private split `{split}` ({n_diffs} diffs)

This split is **private**: its index and weight diffs are published, its labels and triggers are not.
The maintainers keep them, with a few canaries (decoy diffs whose label is unrelated to what they
were trained on: a method that names one has read the labels, not the weights). To be scored on it:

    wdqa evaluate my_method.py --split {split}   # writes answers, no scores
    wdqa submit runs/<suite>-<hash>/<method>       # the bundle to send to the maintainers

The maintainers judge the answers with `wdqa score-private BUNDLE --labels FILE --judge SPEC`, which
refuses a bundle of another suite revision, and sign the result (scores, judge and prompt version,
suite revision) with their Ed25519 key; `wdqa verify` checks the signature against the public key in
this suite's `suite.json` (`extra.maintainer_public_key`). Oracle methods cannot run on this split.
"""
