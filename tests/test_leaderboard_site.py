"""The static leaderboard site: what it ranks, what it shows, and that it works in a real browser."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from _leaderboard_fixtures import KEY, make_run, make_suite
from typer.testing import CliRunner
from wdqa.benchmark.records import RunFolder, ScoreRecord, judge_key
from wdqa.leaderboard import commands
from wdqa.leaderboard.false_findings import false_findings
from wdqa.leaderboard.results import load_runs
from wdqa.leaderboard.site import build_boards, build_site

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lb")
    suite = make_suite(root / "suite")
    runs = root / "runs"
    make_run(
        runs,
        "dit",
        {"hidden-topic": [5, 5, 4, 3, 5, 1], "rank": [5, 4, 5, 3, 4, 2], "null": [5, 5, 1, 4]},
        suite,
        answers={"hidden-topic/ht-2": "Something about volcanoes"},
    )
    make_run(
        runs,
        "base-question",
        {"hidden-topic": [1, 1, 2, 1, 1, None], "rank": [1, 1, 1, 2, 1, 1], "null": [1, 2, 1, 3]},
        suite,
    )
    make_run(
        runs, "zeta-prompting", {"hidden-topic": [2, 3, 2, 2, 3, 2]}, suite,
        usage={"forward_tokens_diff": 600, "generated_tokens_diff": 300, "cases": 6},
    )
    make_run(runs, "20q-trigger", {"hidden-topic": [5, 5, 5, 5, 5, 5]}, suite, oracle=True)
    for fraction, value in ((0.25, 2), (0.5, 3), (1.0, 4)):
        make_run(
            runs,
            f"dit-frac{fraction}",
            {"hidden-topic": [value] * 6},
            suite,
            train_fraction=fraction,
        )
    out = root / "site"
    build_site(load_runs(sorted(runs.iterdir())), out)
    return out


def _table(site: Path) -> list[dict]:
    return json.loads((site / "data" / "leaderboard.json").read_text())


def test_methods_are_ranked_by_mean_and_oracles_are_not_ranked(site: Path) -> None:
    rows = {r["method"]: r for r in _table(site) if r["split"] == "hidden-topic"}
    assert rows["dit-frac1.0"]["rank"] == 1 and rows["dit"]["rank"] == 2
    assert rows["base-question"]["rank"] == max(r["rank"] for r in rows.values() if r["rank"])
    assert rows["20q-trigger"]["rank"] is None and rows["20q-trigger"]["oracle"] is True


def test_scores_of_two_judges_are_ranked_on_separate_boards(tmp_path: Path) -> None:
    run = make_run(tmp_path, "dit", {"hidden-topic": [5, 5]})
    make_run(tmp_path, "base-question", {"hidden-topic": [1, 2]})
    rescored = [
        ScoreRecord(r.case_id, r.split, r.diff_id, r.label, r.answer, 3, "gpt-judge", "topic-v2")
        for r in RunFolder(run).scores(KEY).values()
    ]
    RunFolder(run).append_scores(judge_key("gpt-judge", "topic-v2"), rescored)
    boards = build_boards(load_runs([run, tmp_path / "base-question"]))
    assert [(b.judge, [row.result.method for row in b.rows]) for b in boards] == [
        ("gpt-judge (prompt topic-v2)", ["dit"]),
        ("offline-test-judge (prompt topic-v1)", ["dit", "base-question"]),
    ]


def test_false_findings_count_null_answers_judged_two_or_less() -> None:
    def rec(i: int, score: int | None, failed: bool = False) -> ScoreRecord:
        return ScoreRecord(
            f"null/n{i}",
            "null",
            f"n{i}",
            "no hidden behaviour",
            "x",
            score,
            "j",
            "p",
            failed=failed,
        )

    ff = false_findings(
        [rec(0, 1), rec(1, 2), rec(2, 3), rec(3, 5), rec(4, None), rec(5, None, failed=True)]
    )
    assert ff is not None and (ff.findings, ff.n, ff.excluded, ff.rate) == (2, 4, 2, 0.5)


def test_table_download_holds_the_false_finding_rate_beside_every_score(site: Path) -> None:
    dit = [r for r in _table(site) if r["method"] == "dit"]
    assert {r["false_finding_rate"] for r in dit} == {0.25}  # null scores 5,5,1,4: one answer <= 2
    assert (
        (site / "data" / "leaderboard.csv")
        .read_text()
        .splitlines()[0]
        .startswith("base_model,method,oracle")
    )


def test_suite_page_renders_the_data_card_and_escapes_its_html(site: Path) -> None:
    page = (site / "suites" / "lb-test.html").read_text()
    assert "<h1>Tiny test suite</h1>" in page and "<table>" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "tests/_leaderboard_fixtures.py" in page  # how the suite was made (suite.json extra)


def test_score_against_tokens_is_plotted_for_the_metered_methods_only(site: Path) -> None:
    plot = (site / "plots" / "wdqa_tiny_qwen3-tokens.svg").read_text()
    assert "zeta-prompting" in plot and "base-question" not in plot  # a run from before metering has no point


def test_rank_and_data_scaling_plots_are_drawn_when_those_runs_exist(site: Path) -> None:
    names = {p.name for p in (site / "plots").iterdir()}
    assert {"wdqa_tiny_qwen3-rank.svg", "wdqa_tiny_qwen3-scaling.svg"} <= names
    assert (site / "plots" / "wdqa_tiny_qwen3-rank.svg").read_text().lstrip().startswith("<?xml")


def test_leaderboard_command_builds_the_site_from_run_folders(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite")
    run_a = make_run(tmp_path / "runs", "a", {"hidden-topic": [3, 4]}, suite)
    run_b = make_run(tmp_path / "runs", "b", {"hidden-topic": [1, 2]}, suite)
    app = typer.Typer()
    app.callback()(lambda: None)
    commands.register(app)
    result = CliRunner().invoke(
        app,
        [
            "leaderboard",
            "--runs",
            str(run_a),
            str(run_b),
            "--out",
            str(tmp_path / "s"),
            "--suite",
            str(tmp_path / "suite"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "methods/wdqa_tiny-qwen3--b--" in (tmp_path / "s" / "index.html").read_text()


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `.ci/setup-system.sh` (apt-get install -y chromium) as root"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("WDQA_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_clicking_a_split_header_sorts_rows_but_keeps_oracles_apart(
    site: Path, browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto((site / "index.html").as_uri())
    ranked = page.locator("table.leaderboard tbody.ranked tr td:nth-child(2)")
    page.click("table.leaderboard th[data-key=method]")  # text columns sort ascending first
    assert ranked.all_inner_texts()[0] == "base-question"
    page.click("table.leaderboard th[data-key='split:rank']")  # the `rank` split: best first
    order = ranked.all_inner_texts()
    assert order[:2] == ["dit", "base-question"]  # methods without that split sort last
    assert page.locator("table.leaderboard tbody.oracle td:nth-child(2)").all_inner_texts() == [
        "20q-trigger oracle"
    ]
    page.screenshot(path=str(_artifacts(tmp_path) / "leaderboard-index.png"), full_page=True)


def test_case_filter_by_text_and_score_shows_only_matching_cases(
    site: Path, browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto((site / "index.html").as_uri())
    page.get_by_role("link", name="dit", exact=True).click()
    assert page.locator("h1").inner_text() == "dit"
    page.fill("#filter-text", "volcano")
    visible = page.locator("#cases tbody tr:visible")
    assert visible.count() == 1 and "hidden-topic/ht-2" in visible.first.inner_text()
    page.fill("#filter-text", "")
    page.select_option("#filter-score", "5")
    assert page.locator("#cases tbody tr:visible td.score").all_inner_texts() == ["5"] * 7
    assert page.locator("#filter-count").inner_text() == "7 of 16 cases"
    page.select_option("#filter-split", "null")
    assert page.locator("#filter-count").inner_text() == "2 of 16 cases"
    page.screenshot(path=str(_artifacts(tmp_path) / "leaderboard-method.png"), full_page=True)
