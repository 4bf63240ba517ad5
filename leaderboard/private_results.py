"""Signed private-split results as the leaderboard shows them, read from scored bundles.

Owns reading a scored bundle's private-result.json and refusing one whose signature does not hold
under the maintainers' key (given, or published by a suite folder of the same content). The site
puts each beside the method's public test score (`site.py`); nothing here judges.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wdqa.benchmark.records import ScoreSummary
from wdqa.core.errors import WdqaError

from .bundle_archive import read_archive
from .bundle_checks import PRIVATE_RESULT
from .signing import key_id, read_public_key, signature_problem

# The public split a private split is the held-out twin of: their gap is what the site shows.
PUBLIC_TWIN = {"private-test": "test"}


class PrivateResultError(WdqaError):
    """A scored bundle the site cannot show: no signed result, or a signature that does not hold."""


@dataclass(frozen=True)
class PrivateResult:
    method: str
    base_model: str
    split: str
    suite: str  # name@version
    judge: str
    prompt_version: str
    judge_key: str
    summary: ScoreSummary
    canaries: int
    canaries_named: int
    key_id: str  # the maintainer key the signature holds under
    source: str

    @property
    def flagged(self) -> bool:
        """The method named a canary's decoy label: it read the labels, not the weights."""
        return self.canaries_named > 0

    @property
    def public_split(self) -> str | None:
        return PUBLIC_TWIN.get(self.split)


def _suite_keys(suite_dirs: Sequence[str | Path]) -> dict[str, str]:
    """content sha256 -> the maintainer public key each suite folder publishes."""
    from wdqa.core.suite import Suite

    keys = {}
    for folder in suite_dirs:
        suite = Suite.load(folder, verify=False)
        if suite.maintainer_public_key:
            keys[suite.content_sha256] = suite.maintainer_public_key
    return keys


def load_private_results(
    bundles: Sequence[str | Path], public_key: str | None = None, suite_dirs: Sequence[str | Path] = ()
) -> list[PrivateResult]:
    keys = _suite_keys(suite_dirs) if public_key is None else {}
    return [_load(Path(b), public_key, keys) for b in bundles]


def _load(bundle: Path, public_key: str | None, keys: dict[str, str]) -> PrivateResult:
    files = read_archive(bundle).files
    if PRIVATE_RESULT not in files:
        raise PrivateResultError(
            f"{bundle} holds no {PRIVATE_RESULT}: it is not scored yet; the maintainers score it with `wdqa score-private`"
        )
    try:
        result: dict[str, Any] = json.loads(files[PRIVATE_RESULT])
        suite, summary = result["suite"], result["summary"]
        key = public_key or keys.get(suite["content_sha256"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise PrivateResultError(f"{bundle}: {PRIVATE_RESULT} is not a signed result ({err}); ask the maintainers for it again") from err
    if key is None:
        raise PrivateResultError(
            f"{bundle}: no maintainer key to check its signature with; pass --public-key FILE, or --suite with the "
            f"suite folder ({suite.get('name')}) whose suite.json publishes the key"
        )
    key = read_public_key(key, "the maintainer public key")
    problem = signature_problem(result, key)
    if problem is not None:
        raise PrivateResultError(f"{bundle}: {PRIVATE_RESULT}: {problem}; the site shows signed results only")
    judge, canaries = result["judge"], result["canaries"]
    return PrivateResult(
        method=result["method"]["name"],
        base_model=suite.get("base_model", "unknown"),
        split=result["split"],
        suite=f"{suite['name']}@{suite.get('version', '')}",
        judge=judge["name"],
        prompt_version=judge["prompt_version"],
        judge_key=judge["key"],
        summary=ScoreSummary(**summary),
        canaries=int(canaries["n"]),
        canaries_named=int(canaries["named"]),
        key_id=key_id(key),
        source=str(bundle),
    )
