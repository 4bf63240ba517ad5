"""A suite as the site shows it: its data card (README.md) and how it was made (suite.json, indexes).

Owns finding a result's suite on disk (`--suite DIR` or the run manifest's `suite.root`) and
reading it through `wdqa.core.suite`; never verifies shards (the site only reads indexes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from wdqa.core.suite import Suite, SuiteError

from .results import ResultSet, SuiteRef

# Data cards come from whoever made the suite: raw HTML in them is shown as text, never run.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
# Index columns worth a count on the "how it was made" page.
_DESCRIBED_COLUMNS = ("kind", "rank", "trigger_kind", "behaviour", "category")


def split_front_matter(text: str) -> tuple[str, str]:
    """Hub data cards start with YAML metadata between '---' lines; return (yaml, markdown body)."""
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            return text[4:end].strip(), text[end + 4 :].lstrip("\n")
    return "", text


@dataclass
class SuiteCard:
    name: str
    refs: list[SuiteRef]  # what the runs say about it (versions, content hashes)
    suite: Suite | None = None
    problem: str = ""  # why the suite could not be read, shown on the page
    index_counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)

    @cached_property
    def _readme(self) -> tuple[str, str]:
        if self.suite is None or not (self.suite.root / "README.md").exists():
            return "", ""
        return split_front_matter((self.suite.root / "README.md").read_text(encoding="utf-8"))

    @property
    def front_matter(self) -> str:
        return self._readme[0]

    @property
    def readme_html(self) -> str:
        return _MARKDOWN.render(self._readme[1]) if self._readme[1] else ""

    @property
    def content_matches(self) -> dict[str, bool]:
        """Does each content hash a run states equal the suite's on disk?"""
        if self.suite is None:
            return {}
        return {
            r.content_sha256: r.content_sha256 == self.suite.content_sha256
            for r in self.refs
            if r.content_sha256
        }

    @property
    def made_with(self) -> dict[str, Any]:
        return self.suite.extra if self.suite is not None else {}

    def diff_ranks(self, split: str) -> dict[str, int]:
        if self.suite is None or split not in self.suite.splits:
            return {}
        try:
            index = self.suite.index(split)
        except SuiteError:
            return {}
        return {str(d): int(r) for d, r in zip(index["diff_id"], index["rank"], strict=True)}


def _describe(suite: Suite) -> dict[str, dict[str, dict[str, int]]]:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for split in suite.splits:
        try:
            index = suite.labelled_index(split)  # trigger kinds and categories are held back from methods
        except SuiteError:
            continue  # a split not downloaded: the page lists it without counts
        counts[split] = {
            col: {
                str(k): int(v)
                for k, v in index[col].value_counts(dropna=False).sort_index().items()
            }
            for col in _DESCRIBED_COLUMNS
            if col in index.columns
        }
    return counts


def _load(root: Path) -> Suite:
    return Suite.load(root, verify=False)


def find_suite_cards(
    results: Sequence[ResultSet], suite_dirs: Sequence[str | Path] = ()
) -> dict[str, SuiteCard]:
    """One card per suite name the results mention (plus every --suite DIR given)."""
    given: dict[str, Suite] = {}
    for d in suite_dirs:
        suite = _load(Path(d))  # a --suite the user named must load; its error names the folder
        given[suite.name] = suite
    cards: dict[str, SuiteCard] = {}
    for r in results:
        if not r.suite.content_sha256 and r.suite.name not in given:
            continue  # a third-party score table: no suite to show
        card = cards.setdefault(r.suite.name, SuiteCard(name=r.suite.name, refs=[]))
        if r.suite not in card.refs:
            card.refs.append(r.suite)
    for name, suite in given.items():
        cards.setdefault(name, SuiteCard(name=name, refs=[]))
        cards[name].suite = suite
    for card in cards.values():
        if card.suite is None:
            roots = [ref.root for ref in card.refs if ref.root]
            if not roots:
                card.problem = "the runs do not name the suite's folder; pass it with --suite DIR"
            for root in roots:
                try:
                    card.suite = _load(Path(root))
                    card.problem = ""
                    break
                except SuiteError as err:
                    card.problem = f"{err} (pass the suite with --suite DIR)"
        if card.suite is not None:
            card.index_counts = _describe(card.suite)
    return cards
