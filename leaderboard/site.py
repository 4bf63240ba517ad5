"""`wdqa leaderboard`: build the static leaderboard site from result sets.

Owns the site's layout (which pages, tables, downloads and figures exist) and writing it; the HTML
is in `templates/`, the sorting/filtering in `static/site.js`. The site works opened from disk
(file://): every number is rendered into the HTML, nothing is fetched at view time.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from wdqa.benchmark.records import ScoreRecord, ScoreSummary, summarize

from . import plots
from .false_findings import NULL_SPLIT, FalseFindings, false_findings
from .private_results import PrivateResult
from .report import metering
from .results import ResultSet
from .suite_card import SuiteCard, find_suite_cards

STATIC_DIR = Path(__file__).parent / "static"
PREFERRED_RANK_SPLITS = ("hidden-topic", "test")
RANK_SPLIT = "rank"


@dataclass(frozen=True)
class Row:
    result: ResultSet
    rank: int | None  # None for oracle rooflines: shown, never ranked
    cells: dict[str, ScoreSummary | None]
    false_findings: FalseFindings | None
    page: str
    private: PrivateResult | None = None  # the maintainers' signed score on the private split
    # public twin split's mean minus the private mean, under the same judge (None: not comparable)
    gap: float | None = None


@dataclass
class Board:
    """One base model's table under one judge: methods x splits. Scores of different judges (or
    prompt versions) are never ranked against each other, so each judge gets its own board."""

    base_model: str
    judge: str  # "name (prompt version)"
    judge_key: str
    splits: list[str]
    rank_split: str
    rows: list[Row]
    oracle_rows: list[Row]
    plots: dict[str, str] = field(default_factory=dict)  # caption -> svg path relative to site root
    private_split: str | None = None  # shown beside the public splits when a method has a signed result


def choose_rank_split(results: Sequence[ResultSet], wanted: str | None = None) -> str:
    splits = sorted({s for r in results for s in r.splits if s != NULL_SPLIT})
    if wanted is not None:
        return wanted
    for name in PREFERRED_RANK_SPLITS:
        if name in splits:
            return name
    if not splits:
        return NULL_SPLIT
    # Otherwise the split most methods were run on (ties: alphabetical), so most rows get a rank.
    return max(splits, key=lambda s: (sum(s in r.splits for r in results), -splits.index(s)))


def _row(
    result: ResultSet, splits: Sequence[str], rank: int | None, private: Sequence[PrivateResult] = ()
) -> Row:
    signed = next((p for p in private if (p.base_model, p.method) == (result.base_model, result.method)), None)
    return Row(
        result=result,
        rank=rank,
        cells={s: result.summaries.get(s) for s in splits},
        false_findings=false_findings(result.records),
        page=f"methods/{result.slug}.html",
        private=signed,
        gap=_gap(result, signed),
    )


def _gap(result: ResultSet, private: PrivateResult | None) -> float | None:
    """Public mean minus private mean: a large gap suggests fitting to the public split. Only under
    the same judge and prompt version, where the two means are on one scale."""
    if private is None or private.public_split is None or private.judge_key != result.judge_key:
        return None
    public = result.summaries.get(private.public_split)
    if public is None or not public.n or not private.summary.n:
        return None
    return public.mean - private.summary.mean


def build_boards(
    results: Sequence[ResultSet], rank_split: str | None = None, private: Sequence[PrivateResult] = ()
) -> list[Board]:
    boards = []
    for base_model, key in sorted({(r.base_model, r.judge_key) for r in results}):
        mine = [r for r in results if (r.base_model, r.judge_key) == (base_model, key)]
        judge = f"{mine[0].judge} (prompt {mine[0].prompt_version or 'unknown'})"
        splits = sorted({s for r in mine for s in r.splits if s != NULL_SPLIT})
        chosen = choose_rank_split(mine, rank_split)

        def score(r: ResultSet, split: str = chosen) -> float:
            s = r.summaries.get(split)
            return s.mean if s is not None and s.n else float("-inf")

        ranked = sorted((r for r in mine if not r.oracle), key=lambda r: (-score(r), r.method))
        rows, previous, rank = [], None, 0
        for i, r in enumerate(ranked):
            # Equal means share a rank ("1, 1, 3"); a method without the rank split gets none.
            if score(r) != previous:
                rank, previous = i + 1, score(r)
            rows.append(_row(r, splits, rank if score(r) > float("-inf") else None, private))
        oracle_rows = [
            _row(r, splits, None, private)
            for r in sorted((r for r in mine if r.oracle), key=lambda r: -score(r))
        ]
        boards.append(
            Board(
                base_model,
                judge,
                key,
                splits,
                chosen,
                rows,
                oracle_rows,
                private_split=next((row.private.split for row in rows + oracle_rows if row.private), None),
            )
        )
    return boards


# ---------------------------------------------------------------- downloads


TABLE_COLUMNS = [
    "base_model",
    "method",
    "oracle",
    "rank",
    "judge",
    "prompt_version",
    "suite",
    "split",
    "n",
    "failed",
    "invalid",
    "mean",
    "ci_low",
    "ci_high",
    "share_1",
    "share_2",
    "share_3",
    "share_4",
    "share_5",
    "false_finding_rate",
    "false_findings",
    "null_judged",
    "signed_by",
    "canaries_named",
    "gap",
]


def table_records(boards: Sequence[Board]) -> list[dict[str, Any]]:
    out = []
    for board in boards:
        for row in board.rows + board.oracle_rows:
            r, ff = row.result, row.false_findings
            for split, s in r.summaries.items():
                out.append(
                    {
                        "base_model": r.base_model,
                        "method": r.method,
                        "oracle": r.oracle,
                        "rank": row.rank,
                        "judge": r.judge,
                        "prompt_version": r.prompt_version,
                        "suite": r.suite.label,
                        "split": split,
                        "n": s.n,
                        "failed": s.failed,
                        "invalid": s.invalid,
                        "mean": _finite(s.mean),
                        "ci_low": _finite(s.ci_low),
                        "ci_high": _finite(s.ci_high),
                        **{f"share_{k}": s.dist.get(k, 0.0) for k in "12345"},
                        "false_finding_rate": _finite(ff.rate) if ff else None,
                        "false_findings": ff.findings if ff else None,
                        "null_judged": ff.n if ff else None,
                    }
                )
            if (p := row.private) is not None:
                out.append(_private_record(r, row, p))
    return out


def _private_record(r: ResultSet, row: Row, p: PrivateResult) -> dict[str, Any]:
    s = p.summary
    return {
        "base_model": r.base_model, "method": r.method, "oracle": r.oracle, "rank": row.rank, "judge": p.judge,
        "prompt_version": p.prompt_version, "suite": p.suite, "split": p.split, "n": s.n, "failed": s.failed,
        "invalid": s.invalid, "mean": _finite(s.mean), "ci_low": _finite(s.ci_low), "ci_high": _finite(s.ci_high),
        **{f"share_{k}": s.dist.get(k, 0.0) for k in "12345"},
        "signed_by": p.key_id, "canaries_named": p.canaries_named, "gap": _finite(row.gap),
    }


def _finite(x: float | None) -> float | None:
    # A split with no valid score has a NaN mean; JSON has no NaN, so downloads say null.
    return None if x is None or x != x else x


def case_records(result: ResultSet) -> list[dict[str, Any]]:
    return [asdict(r) for r in result.records]


def _csv(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


# ---------------------------------------------------------------- figures


def _board_plots(
    board: Board, boards: Sequence[Board], cards: dict[str, SuiteCard], out: Path
) -> dict[str, str]:
    figures: dict[str, str] = {}
    slug = "".join(c if c.isalnum() else "_" for c in board.base_model)
    if sum(b.base_model == board.base_model for b in boards) > 1:
        slug += "-" + "".join(c if c.isalnum() else "_" for c in board.judge_key)
    for split in board.splits:
        bars = [
            (row.result.method + (" †" if row.result.oracle else ""), s.dist)
            for row in board.rows + board.oracle_rows
            if (s := row.cells.get(split)) is not None and s.n
        ]
        if bars:
            rel = f"plots/{slug}-{split}-scores.svg"
            (out / rel).write_text(
                plots.score_distribution_svg(bars, f"{board.base_model} — {split}")
            )
            figures[f"Score distribution, split {split}"] = rel
    costs = _cost_points(board)
    if costs:
        rel = f"plots/{slug}-tokens.svg"
        (out / rel).write_text(plots.score_vs_tokens_svg(costs, f"{board.base_model} — score against tokens ({board.rank_split})"))
        figures[f"Score against tokens per case (split {board.rank_split})"] = rel
    rank_series = _rank_series(board, cards)
    if rank_series:
        rel = f"plots/{slug}-rank.svg"
        (out / rel).write_text(
            plots.rank_generalisation_svg(rank_series, f"{board.base_model} — rank generalisation")
        )
        figures["Rank generalisation (split rank)"] = rel
    scaling = _scaling_series(board)
    if scaling:
        rel = f"plots/{slug}-scaling.svg"
        (out / rel).write_text(
            plots.data_scaling_svg(
                scaling, f"{board.base_model} — data scaling ({board.rank_split})"
            )
        )
        figures[f"Data scaling (split {board.rank_split})"] = rel
    return figures


def _cost_points(board: Board) -> dict[str, plots.Point]:
    """Each metered method's score on the board's main split at its tokens per case (runs made
    before metering have none and are left out)."""
    points = {}
    for row in board.rows + board.oracle_rows:
        tokens = metering(row.result)[1]
        s = row.cells.get(board.rank_split)
        if tokens is not None and s is not None and s.n:
            points[row.result.method + (" †" if row.result.oracle else "")] = plots.Point(tokens, s.mean, s.ci_low, s.ci_high)
    return points


def _point(x: float, records: Sequence[ScoreRecord]) -> plots.Point:
    s = summarize(records)
    return plots.Point(x, s.mean, s.ci_low, s.ci_high)


def _rank_series(board: Board, cards: dict[str, SuiteCard]) -> dict[str, list[plots.Point]]:
    """Mean score per LoRA rank on the `rank` split; the rank of each diff comes from the suite index."""
    series: dict[str, list[plots.Point]] = {}
    for row in board.rows + board.oracle_rows:
        card = cards.get(row.result.suite.name)
        ranks = card.diff_ranks(RANK_SPLIT) if card else {}
        records = row.result.records_for(RANK_SPLIT)
        by_rank: dict[int, list[ScoreRecord]] = {}
        for rec in records:
            if rec.diff_id in ranks and ranks[rec.diff_id] > 0:
                by_rank.setdefault(ranks[rec.diff_id], []).append(rec)
        if len(by_rank) >= 2:
            series[row.result.method] = [_point(float(k), v) for k, v in sorted(by_rank.items())]
    return series


def _scaling_series(board: Board) -> dict[str, list[plots.Point]]:
    """Runs whose manifest states `method.train_fraction`, grouped by judge, on the ranking split."""
    series: dict[str, list[plots.Point]] = {}
    for row in board.rows:
        fraction = row.result.extra.get("train_fraction")
        records = row.result.records_for(board.rank_split)
        if fraction is not None and records:
            series.setdefault(f"train_fraction runs ({row.result.judge})", []).append(
                _point(float(fraction), records)
            )
    return {k: v for k, v in series.items() if len(v) >= 2}


# ---------------------------------------------------------------- the site


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("wdqa.leaderboard", "templates"),
        autoescape=select_autoescape(["html", "jinja"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda x, digits=2: "—" if x is None or x != x else f"{x:.{digits}f}"
    env.filters["pct"] = lambda x: "—" if x is None or x != x else f"{100 * x:.0f}%"
    env.filters["tojson_pretty"] = lambda x: json.dumps(x, indent=2, sort_keys=True, default=str)
    return env


def build_site(
    results: Sequence[ResultSet],
    out: str | Path,
    suite_dirs: Sequence[str | Path] = (),
    rank_split: str | None = None,
    title: str = "WEIGHTDIFFQA leaderboard",
    private: Sequence[PrivateResult] = (),
) -> Path:
    """Write the whole site under `out` (replacing the pages it owns) and return index.html.
    `private`: signed private-split results, shown beside each method's public scores."""
    out = Path(out)
    for folder in ("methods", "suites", "plots", "data/cases", "static"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    boards = build_boards(results, rank_split, private)
    cards = find_suite_cards(results, suite_dirs)
    for board in boards:
        board.plots = _board_plots(board, boards, cards, out)
    env = _environment()
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    common = {"title": title, "built": built, "cards": cards}

    records = table_records(boards)
    (out / "data" / "leaderboard.json").write_text(json.dumps(records, indent=1, default=str))
    (out / "data" / "leaderboard.csv").write_text(_csv(records, TABLE_COLUMNS))
    for name in ("site.css", "site.js"):
        shutil.copyfile(STATIC_DIR / name, out / "static" / name)

    index = out / "index.html"
    index.write_text(env.get_template("index.html.jinja").render(root="", boards=boards, **common))
    for board in boards:
        for row in board.rows + board.oracle_rows:
            r = row.result
            cases = case_records(r)
            (out / "data" / "cases" / f"{r.slug}.json").write_text(
                json.dumps(cases, indent=1, ensure_ascii=False)
            )
            (out / "data" / "cases" / f"{r.slug}.csv").write_text(
                _csv(cases, list(ScoreRecord.__dataclass_fields__))
            )
            figure = None
            bars = [(split, s.dist) for split, s in r.summaries.items() if s.n]
            if bars:
                figure = f"plots/method-{r.slug}.svg"
                (out / figure).write_text(
                    plots.score_distribution_svg(bars, f"{r.method} on {r.base_model}")
                )
            page = env.get_template("method.html.jinja").render(
                root="../", board=board, row=row, result=r, figure=figure, **common
            )
            (out / row.page).write_text(page)
    for card in cards.values():
        page = env.get_template("suite.html.jinja").render(root="../", card=card, **common)
        (out / "suites" / f"{card.slug}.html").write_text(page)
    return index
