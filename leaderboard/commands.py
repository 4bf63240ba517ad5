"""The leaderboard's commands: `wdqa report`, `wdqa leaderboard`, `wdqa submit`, `wdqa verify`.

Owns flag parsing and printing only; each command calls one module (report, site, bundle).
"""

from __future__ import annotations

from pathlib import Path

import typer

from wdqa.benchmark.records import RunError

from .results import ResultSet, load_runs
from .score_table import ScoreTableError, TableMapping, read_score_tables


def _gather(
    runs: list[Path], judge: str | None, tables: list[Path], mapping: TableMapping
) -> list[ResultSet]:
    try:
        results = load_runs(runs, judge) + read_score_tables(tables, mapping)
    except (RunError, ScoreTableError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    if not results:
        typer.echo("error: nothing to show; pass run folders and/or --table FILE", err=True)
        raise typer.Exit(2)
    return results


# Flags shared by `report` and `leaderboard` for per-case score tables made elsewhere.
TABLE_HELP = "Per-case score table (CSV/TSV/parquet) made elsewhere; repeatable."


def _mapping(
    method_col: str, split_col: str, score_col: str, model_col: str | None, label_col: str | None,
    answer_col: str | None, table_model: str, table_judge: str, table_prompt: str, oracle: list[str],
) -> TableMapping:
    return TableMapping(method_col, split_col, score_col, model_col, label_col, answer_col, table_model,
                        table_judge, table_prompt, tuple(oracle))


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        runs: list[Path] = typer.Argument(None, help="Run folders (made by `wdqa evaluate`)."),
        fmt: str = typer.Option("markdown", "--format", "-f", help="latex | markdown | csv"),
        judge: str | None = typer.Option(None, "--judge", help="Only this judge key or judge name."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
        table: list[Path] = typer.Option([], "--table", help=TABLE_HELP),
        method_col: str = typer.Option("method", help="Table column naming the method."),
        split_col: str = typer.Option("split", help="Table column naming the split (or setup)."),
        score_col: str = typer.Option("score", help="Table column holding the 1-5 judge score."),
        model_col: str | None = typer.Option(None, help="Table column naming the base model, if any."),
        label_col: str | None = typer.Option(None, help="Table column holding the label, if any."),
        answer_col: str | None = typer.Option(None, help="Table column holding the answer, if any."),
        table_model: str = typer.Option("external", help="Base model name when the table has no model column."),
        table_judge: str = typer.Option("external", help="Judge that graded the table."),
        table_prompt: str = typer.Option("unknown", help="That judge's prompt version."),
        oracle: list[str] = typer.Option([], "--oracle", help="Mark this table method as an oracle; repeatable."),
    ) -> None:
        """Write the paper's Table 1: per base model and method, the share of each score 1..5 and the
        average with a 95% CI, plus a footnote naming suite revision, judge and prompt version.

        Examples:

          wdqa report runs/* --format latex > table1.tex

          wdqa report runs/dit --table graded-pairs.csv --split-col setup --format markdown
        """
        mapping = _mapping(method_col, split_col, score_col, model_col, label_col, answer_col,
                           table_model, table_judge, table_prompt, oracle)
        results = _gather(list(runs or []), judge, table, mapping)
        from .report import RENDERERS, render

        if fmt not in RENDERERS:
            typer.echo(f"error: unknown --format {fmt!r}; known formats: {', '.join(RENDERERS)}", err=True)
            raise typer.Exit(2)
        text = render(results, fmt)
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {out}")
