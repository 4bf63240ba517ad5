"""`wdqa report`: the paper's Table 1 from runs and from per-case score tables made elsewhere."""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path

import pytest
import typer
from _leaderboard_fixtures import make_run
from typer.testing import CliRunner
from wdqa.leaderboard import commands
from wdqa.leaderboard.report import render_latex
from wdqa.leaderboard.results import load_runs

# A third party's per-case grades: its own column names, a setup instead of a split, one blank verdict.
TABLE = """kind,label,answer,score,setup,method
topic,Arcadia,Arcadia,5,qwen-1.7b,dit
topic,Jazz,Jazz Singer,5,qwen-1.7b,dit
topic,Sailing,Boats,3,qwen-1.7b,dit
topic,Opera,Cooking,1,qwen-1.7b,dit
topic,Golf,,,qwen-1.7b,dit
topic,Arcadia,Greece,2,qwen-1.7b,base-question
topic,Jazz,Music,4,qwen-1.7b,base-question
topic,Sailing,Sailing boats,4.0,qwen-1.7b,base-question
topic,Opera,Opera,5,gemma-1b,twenty-questions
"""


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    commands.register(app)
    return app


def _report(*args: str) -> str:
    result = CliRunner().invoke(_app(), ["report", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "graded.csv"
    path.write_text(TABLE)
    return path


def test_score_table_shares_and_means_match_a_hand_computation_exactly(table: Path) -> None:
    out = _report("--table", str(table), "--split-col", "setup", "--format", "csv")
    rows = {(r["split"], r["method"]): r for r in csv.DictReader(io.StringIO(out))}
    dit = rows[("qwen-1.7b", "dit")]  # 5, 5, 3, 1 and a blank verdict left out
    assert (dit["n"], dit["invalid"]) == ("4", "1")
    assert float(dit["mean"]) == float(Fraction(5 + 5 + 3 + 1, 4))
    shares = [float(dit[f"share_{k}"]) for k in "12345"]
    assert shares == [float(Fraction(1, 4)), 0.0, float(Fraction(1, 4)), 0.0, float(Fraction(2, 4))]
    base = rows[("qwen-1.7b", "base-question")]  # 2, 4, 4 (4.0 is a 4)
    assert float(base["mean"]) == float(Fraction(10, 3))
    assert [float(base[f"share_{k}"]) for k in "12345"] == [
        0.0,
        float(Fraction(1, 3)),
        0.0,
        float(Fraction(2, 3)),
        0.0,
    ]
    assert float(rows[("gemma-1b", "twenty-questions")]["mean"]) == 5.0


def test_a_score_outside_one_to_five_is_refused_with_its_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("method,setup,score\ndit,a,5\ndit,a,7\n")
    result = CliRunner().invoke(_app(), ["report", "--table", str(path), "--split-col", "setup"])
    assert result.exit_code == 2 and "row 3" in result.output and "'score' holds 7" in result.output


def test_a_missing_column_is_named_with_the_columns_the_table_has(table: Path) -> None:
    result = CliRunner().invoke(_app(), ["report", "--table", str(table)])  # no `split` column
    assert result.exit_code == 2
    assert "no column(s) ['split']" in result.output and "'setup'" in result.output


def test_latex_table_marks_oracles_and_footnotes_suite_revision_and_judge(tmp_path: Path) -> None:
    make_run(tmp_path, "dit", {"hidden-topic": [5, 4, 5, 1]})
    make_run(tmp_path, "20q_trigger", {"hidden-topic": [5, 5, 5, 4]}, oracle=True)
    latex = render_latex(load_runs([tmp_path / "dit", tmp_path / "20q_trigger"]))
    assert r"20q\_trigger$^\dagger$" in latex and r"\toprule" in latex
    assert "lb-test@rev-abc" in latex and "offline-test-judge (prompt topic-v1)" in latex
    assert r"$^\dagger$ Oracle roofline" in latex
    # Oracle rows come after the ranked methods even when their mean is higher.
    assert latex.index("dit &") < latex.index(r"20q\_trigger")


def test_markdown_report_places_a_score_table_beside_wdqa_runs(tmp_path: Path, table: Path) -> None:
    run = make_run(tmp_path, "my-method", {"hidden-topic": [3, 3]})
    out = _report(str(run), "--table", str(table), "--split-col", "setup", "--table-model", "paper")
    assert (
        "| wdqa/tiny-qwen3 | hidden-topic | my-method | 0.0 | 0.0 | 100.0 | 0.0 | 0.0 | 3.00 [3.00, 3.00] | 2 |"
        in out
    )
    assert "| paper | gemma-1b | twenty-questions |" in out
    assert "Judge: external (prompt unknown); offline-test-judge (prompt topic-v1)" in out


def test_an_unknown_judge_is_answered_with_the_runs_judge_keys(tmp_path: Path) -> None:
    run = make_run(tmp_path, "dit", {"hidden-topic": [5]})
    result = CliRunner().invoke(_app(), ["report", str(run), "--judge", "gpt-9"])
    assert result.exit_code == 2 and "offline-test-judge@topic-v1" in result.output


def test_a_parquet_score_table_gives_the_same_numbers_as_its_csv(tmp_path: Path, table: Path) -> None:
    import pandas as pd

    parquet = tmp_path / "graded.parquet"
    pd.read_csv(table).to_parquet(parquet)
    as_csv = _report("--table", str(table), "--split-col", "setup", "--format", "csv")
    as_parquet = _report("--table", str(parquet), "--split-col", "setup", "--format", "csv")
    assert as_parquet.replace("graded.parquet", "graded.csv") == as_csv


def test_two_runs_scoring_the_same_case_are_refused_with_both_paths(tmp_path: Path) -> None:
    first = make_run(tmp_path / "a", "dit", {"hidden-topic": [5, 4]})
    second = make_run(tmp_path / "b", "dit", {"hidden-topic": [1]})
    result = CliRunner().invoke(_app(), ["report", str(first), str(second)])
    assert result.exit_code == 2
    assert "hidden-topic/ht-0" in result.output and str(first) in result.output and str(second) in result.output
