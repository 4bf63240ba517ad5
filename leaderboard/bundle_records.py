"""A bundle's JSON members as typed records, with every malformed line named by file and line.

Owns the field type rules (read from the record dataclasses of benchmark/records.py, so a field
added there is checked here too) and the one-record-per-case rule of a canonical bundle. What the
records must agree with (each other, the suite, the judge) is `bundle_checks.py`'s business.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any, TypeVar

MAX_SHOWN = 5  # problems named per file; the rest are counted

R = TypeVar("R")


def _report(problems: list[str], found: list[str], name: str) -> None:
    problems.extend(found[:MAX_SHOWN])
    if len(found) > MAX_SHOWN:
        problems.append(f"{name}: and {len(found) - MAX_SHOWN} more problems like these")


def _json_type(value: Any) -> str:
    kinds = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
    }
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def read_json_object(
    files: dict[str, bytes], name: str, problems: list[str]
) -> dict[str, Any] | None:
    """A JSON object member, or None with the reason in `problems`."""
    try:
        value = json.loads(files[name].decode("utf-8"))
    except UnicodeDecodeError as err:
        problems.append(f"{name} is not UTF-8 text: {err}")
        return None
    except json.JSONDecodeError as err:
        problems.append(f"{name} is not valid JSON: {err}")
        return None
    if not isinstance(value, dict):
        problems.append(f"{name} holds a JSON {_json_type(value)} where an object was expected")
        return None
    return value


def _options(hint: Any) -> tuple[Any, ...]:
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return typing.get_args(hint) if union else (hint,)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the record field's type; a bool is never taken for a number."""
    for option in _options(hint):
        if option is Any:
            return True
        if option is type(None) or option is bool or option is str:
            if isinstance(value, option):
                return True
        elif option is int or option is float:
            number = int if option is int else int | float
            if isinstance(value, number) and not isinstance(value, bool):
                return True
        elif isinstance(value, typing.get_origin(option) or option):  # a list or dict field
            return True
    return False


def _type_text(hint: Any) -> str:
    return " or ".join(
        "null" if o is type(None) else getattr(o, "__name__", str(o)) for o in _options(hint)
    )


@functools.cache
def _fields(kind: type) -> tuple[tuple[dataclasses.Field[Any], ...], dict[str, Any]]:
    return dataclasses.fields(kind), typing.get_type_hints(kind)


def typed_record(row: Any, kind: type[R], where: str) -> tuple[R | None, str | None]:
    """`kind(**row)` when every field is present with its type, else the reason naming `where`."""
    if not isinstance(row, dict):
        return None, f"{where} is a JSON {_json_type(row)} where a record object was expected"
    fields, hints = _fields(kind)
    wrong = []
    for f in fields:
        if f.name not in row:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                wrong.append(f"lacks field {f.name!r}")
        elif not _fits(row[f.name], hints[f.name]):
            shown = json.dumps(row[f.name])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            wrong.append(f"field {f.name!r} is {shown}, expected {_type_text(hints[f.name])}")
    unknown = sorted(set(row) - {f.name for f in fields})
    if unknown:
        wrong.append(f"has unknown field(s) {', '.join(map(repr, unknown))}")
    if wrong:
        return None, f"{where} {'; '.join(wrong)}"
    return kind(**row), None


def read_records(
    files: dict[str, bytes], name: str, kind: type[R], problems: list[str]
) -> tuple[dict[str, R], bool]:
    """One record per case (the last, as the run reads them) from a JSON-lines member, and whether
    every line was a well-formed record (when not, the member's aggregates cannot be compared).

    Malformed lines, wrong field types and duplicate cases are named in `problems`: a bundle made by
    `wdqa submit` holds exactly one well-formed record per case.
    """
    try:
        text = files[name].decode("utf-8")
    except UnicodeDecodeError as err:
        problems.append(f"{name} is not UTF-8 text: {err}")
        return {}, False
    found: list[str] = []
    records: dict[str, R] = {}
    copies: dict[str, int] = {}
    # Split on "\n" only: a JSON string may hold U+2028 and friends, which str.splitlines splits on.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            found.append(f"{where} is not valid JSON: {err}")
            continue
        record, wrong = typed_record(row, kind, where)
        if record is None:
            found.append(str(wrong))
            continue
        case_id = record.case_id  # type: ignore[attr-defined]
        copies[case_id] = copies.get(case_id, 0) + 1
        records[case_id] = record  # the last record wins, as in the run
    well_formed = not found
    duplicated = sorted(c for c, n in copies.items() if n > 1)
    if duplicated:
        found.append(
            f"{name} holds more than one record for {len(duplicated)} case(s) (first: {duplicated[0]}, "
            f"{copies[duplicated[0]]} records); a bundle holds one record per case, the last the run wrote: "
            "re-pack the run with `wdqa submit`"
        )
    _report(problems, found, name)
    return records, well_formed
