"""The maintainers' label file of a private split: written beside (never inside) the suite when the
split is sealed, read by `wdqa score-private`.

A parquet table, one row per diff of the split: the split's labels-file columns (label, trigger,
category, ...) plus `canary` (a decoy whose label is unrelated to what the diff was trained on) and
`trained_label`. Its schema metadata names the suite, the split and the sha256 of the published
index it labels, so a file for another split or suite revision is refused. Nothing here judges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import WdqaError
from .suite import INDEX_FILE, Suite, SuiteError, atomic_write_bytes
from .types import Label

FORMAT = "wdqa-private-labels"
META_KEY = b"wdqa"


class PrivateLabelsError(WdqaError):
    """A maintainer label file that cannot be read, or that does not label the split it is used for."""


@dataclass(frozen=True)
class PrivateLabels:
    path: Path
    suite: str
    split: str
    index_sha256: str  # of splits/<split>/index.parquet as published
    table: pd.DataFrame

    def labels(self, behaviour: str) -> dict[str, Label]:
        """diff_id -> the label an answer is judged against (a canary's is its decoy label)."""
        return {
            r.diff_id: Label(diff_id=r.diff_id, text=r.label, behaviour=behaviour,
                             trigger=r.trigger if isinstance(r.trigger, str) else None,
                             category=getattr(r, "category", None))
            for r in self.table.itertuples()
        }

    @property
    def canaries(self) -> set[str]:
        return set(self.table.loc[self.table.canary, "diff_id"])


def index_sha256(suite: Suite, split: str) -> str:
    return suite.files[f"splits/{split}/{INDEX_FILE}"]


def write_private_labels(path: Path, suite: Suite, split: str, table: pd.DataFrame) -> None:
    meta = {"format": FORMAT, "format_version": 1, "suite": suite.name, "split": split,
            "index_sha256": index_sha256(suite, split)}
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(arrow, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def read_private_labels(path: str | Path) -> PrivateLabels:
    path = Path(path)
    try:
        arrow = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise PrivateLabelsError(
            f"cannot read the label file {path}: {err}; pass the maintainers' <split>.labels.parquet written "
            "when the private split was generated"
        ) from err
    raw = (arrow.schema.metadata or {}).get(META_KEY)
    meta = json.loads(raw) if raw else {}
    if meta.get("format") != FORMAT:
        raise PrivateLabelsError(
            f"{path} is not a private split's label file (no {FORMAT} metadata); pass the "
            "<split>.labels.parquet that `wdqa generate … --private N` wrote beside the suite"
        )
    return PrivateLabels(path, meta["suite"], meta["split"], meta["index_sha256"], arrow.to_pandas())


def check_labels_match(labels: PrivateLabels, suite: Suite, split: str) -> None:
    """The file labels exactly this split of this suite revision, or a one-line refusal."""
    fix = "pass the label file written with this suite revision's private split"
    if not suite.is_private(split):
        raise SuiteError(f"split {split!r} of suite {suite.name} is not private; its labels are in the suite")
    if labels.split != split or labels.suite != suite.name:
        raise PrivateLabelsError(
            f"label file {labels.path} labels split {labels.split!r} of suite {labels.suite}, not split {split!r} "
            f"of suite {suite.name}; {fix}"
        )
    published = index_sha256(suite, split)
    if labels.index_sha256 != published:
        raise PrivateLabelsError(
            f"label file {labels.path} labels an index with sha256 {labels.index_sha256[:12]}…, but split {split} "
            f"of suite {suite.name} {suite.version} publishes {published[:12]}… (another revision); {fix}"
        )
    ids, labelled = set(suite.index(split).diff_id), set(labels.table.diff_id)
    if ids != labelled:
        odd = sorted(ids ^ labelled)
        raise PrivateLabelsError(
            f"label file {labels.path} does not label the diffs of split {split} ({len(odd)} differ, first "
            f"{odd[0]}); {fix}"
        )
