"""Per-case score tables made elsewhere (CSV or parquet), read as ResultSets.

Owns mapping a third party's columns (method, split/setup, score, ...) onto wdqa's score records,
so published results can be re-tabulated beside wdqa runs with the same aggregate code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from wdqa.benchmark.records import ScoreRecord, judge_key

from ..core.errors import WdqaError
from .results import ResultSet, SuiteRef


class ScoreTableError(WdqaError, ValueError):
    """A score table that cannot be mapped; the message names the file, the column or the row."""


@dataclass(frozen=True)
class TableMapping:
    """Which column holds what. Optional columns may be None; constants fill what a table lacks."""

    method_col: str = "method"
    split_col: str = "split"
    score_col: str = "score"
    model_col: str | None = None
    label_col: str | None = None
    answer_col: str | None = None
    base_model: str = "external"  # used when model_col is None
    judge: str = "external"
    prompt_version: str = "unknown"
    oracle_methods: tuple[str, ...] = ()


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ScoreTableError(f"score table {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return pd.read_csv(
            path, sep="\t" if path.suffix.lower() == ".tsv" else ",", keep_default_na=True
        )
    raise ScoreTableError(
        f"score table {path}: unknown format {path.suffix!r}; use .csv, .tsv or .parquet"
    )


def _parse_score(value: object, path: Path, row: int, col: str) -> int | None:
    """1..5 (5.0 is fine); an empty cell is an unparsed verdict; anything else is refused."""
    if (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() == ""
    ):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        number = float("nan")
    if not number.is_integer() or not 1 <= number <= 5:
        raise ScoreTableError(
            f"score table {path} row {row + 2} (counting the header as row 1): column {col!r} "
            f"holds {value!r}, expected an integer 1..5 or an empty cell"
        )
    return int(number)


def read_score_table(path: str | Path, mapping: TableMapping) -> list[ResultSet]:
    """One ResultSet per (base model, method) in the table; each split/setup value is a split."""
    path = Path(path)
    frame = _read_frame(path)
    wanted = [mapping.method_col, mapping.split_col, mapping.score_col]
    wanted += [c for c in (mapping.model_col, mapping.label_col, mapping.answer_col) if c]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ScoreTableError(
            f"score table {path} has no column(s) {missing}; its columns are {list(frame.columns)}. "
            "Map them with --method-col/--split-col/--score-col/--model-col/--label-col/--answer-col."
        )
    key = judge_key(mapping.judge, mapping.prompt_version)
    grouped: dict[tuple[str, str], list[ScoreRecord]] = {}
    for row, rec in enumerate(frame.to_dict(orient="records")):
        method = str(rec[mapping.method_col])
        split = str(rec[mapping.split_col])
        model = str(rec[mapping.model_col]) if mapping.model_col else mapping.base_model
        label = str(rec[mapping.label_col]) if mapping.label_col else ""
        answer = str(rec[mapping.answer_col]) if mapping.answer_col else None
        grouped.setdefault((model, method), []).append(
            ScoreRecord(
                case_id=f"{split}/row-{row + 2}",
                split=split,
                diff_id=f"row-{row + 2}",
                label=label,
                answer=answer,
                score=_parse_score(rec[mapping.score_col], path, row, mapping.score_col),
                judge=mapping.judge,
                prompt_version=mapping.prompt_version,
            )
        )
    suite = SuiteRef(name=path.name, version="", revision="", content_sha256="")
    return [
        ResultSet(
            method=method,
            oracle=method in mapping.oracle_methods,
            base_model=model,
            suite=suite,
            judge=mapping.judge,
            prompt_version=mapping.prompt_version,
            judge_key=key,
            records=tuple(records),
            sources=(str(path),),
        )
        for (model, method), records in sorted(grouped.items())
    ]


def read_score_tables(paths: Sequence[str | Path], mapping: TableMapping) -> list[ResultSet]:
    return [rs for p in paths for rs in read_score_table(p, mapping)]
