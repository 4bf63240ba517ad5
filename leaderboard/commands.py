"""The leaderboard's commands: `wdqa report`, `wdqa leaderboard`, `wdqa submit`, `wdqa verify`.

Owns flag parsing and printing only; each command calls one module (report, site, bundle).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the modules behind them import numpy and pandas: each command imports them when it runs
    from .results import ResultSet
    from .score_table import TableMapping


def _gather(
    runs: list[Path], judge: str | None, tables: list[Path], mapping: TableMapping
) -> list[ResultSet]:
    from wdqa.benchmark.records import RunError

    from .results import load_runs
    from .score_table import ScoreTableError, read_score_tables

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


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        runs: Annotated[
            list[Path] | None, typer.Argument(help="Run folders (made by `wdqa evaluate`).")
        ] = None,
        fmt: Annotated[
            str, typer.Option("--format", "-f", help="latex | markdown | csv")
        ] = "markdown",
        judge: Annotated[
            str | None, typer.Option("--judge", help="Only this judge key or judge name.")
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
        ] = None,
        table: Annotated[list[Path] | None, typer.Option("--table", help=TABLE_HELP)] = None,
        method_col: Annotated[str, typer.Option(help="Table column naming the method.")] = "method",
        split_col: Annotated[
            str, typer.Option(help="Table column naming the split (or setup).")
        ] = "split",
        score_col: Annotated[
            str, typer.Option(help="Table column holding the 1-5 judge score.")
        ] = "score",
        model_col: Annotated[
            str | None, typer.Option(help="Table column naming the base model, if any.")
        ] = None,
        label_col: Annotated[
            str | None, typer.Option(help="Table column holding the label, if any.")
        ] = None,
        answer_col: Annotated[
            str | None, typer.Option(help="Table column holding the answer, if any.")
        ] = None,
        table_model: Annotated[
            str, typer.Option(help="Base model name when the table has no model column.")
        ] = "external",
        table_judge: Annotated[str, typer.Option(help="Judge that graded the table.")] = "external",
        table_prompt: Annotated[str, typer.Option(help="That judge's prompt version.")] = "unknown",
        oracle: Annotated[
            list[str] | None,
            typer.Option("--oracle", help="Mark this table method as an oracle; repeatable."),
        ] = None,
    ) -> None:
        """Write the paper's Table 1: per base model and method, the share of each score 1..5 and the
        average with a 95% CI, plus a footnote naming suite revision, judge and prompt version.

        Examples:

          wdqa report runs/* --format latex > table1.tex

          wdqa report runs/dit --table graded-pairs.csv --split-col setup --format markdown
        """
        from .score_table import TableMapping

        mapping = TableMapping(
            method_col,
            split_col,
            score_col,
            model_col,
            label_col,
            answer_col,
            table_model,
            table_judge,
            table_prompt,
            tuple(oracle or []),
        )
        results = _gather(list(runs or []), judge, list(table or []), mapping)
        from .report import RENDERERS, render

        if fmt not in RENDERERS:
            typer.echo(
                f"error: unknown --format {fmt!r}; known formats: {', '.join(RENDERERS)}", err=True
            )
            raise typer.Exit(2)
        text = render(results, fmt)
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {out}")

    @app.command("leaderboard")
    def leaderboard_command(
        runs: Annotated[
            list[Path] | None, typer.Option("--runs", help="A run folder; repeatable.")
        ] = None,
        more_runs: Annotated[
            list[Path] | None,
            typer.Argument(help="More run folders, so `--runs runs/*` works.", show_default=False),
        ] = None,
        out: Annotated[
            Path, typer.Option("--out", "-o", help="Folder to write the site into.")
        ] = Path("site"),
        suite: Annotated[
            list[Path] | None,
            typer.Option("--suite", help="Suite folder whose data card to show; repeatable."),
        ] = None,
        judge: Annotated[
            str | None, typer.Option("--judge", help="Only this judge key or judge name.")
        ] = None,
        rank_split: Annotated[
            str | None,
            typer.Option(
                help="Split that ranks the methods (default: hidden-topic, else test, else the most common)."
            ),
        ] = None,
        title: Annotated[str, typer.Option(help="Site title.")] = "WEIGHTDIFFQA leaderboard",
        private: Annotated[
            list[Path] | None,
            typer.Option("--private", help="A bundle scored by `wdqa score-private`: its signed private-test result is shown beside the method's public scores; repeatable."),
        ] = None,
        public_key: Annotated[
            Path | None,
            typer.Option("--public-key", help="The maintainers' public key to check --private results with (default: the one a --suite folder publishes)."),
        ] = None,
    ) -> None:
        """Build the static leaderboard site: methods x splits per base model with CIs, score bars,
        false findings on the null split, per-method case pages, downloads, plots and data cards.
        Open OUT/index.html from disk or publish the folder on GitHub/HF Pages.

        Examples:

          wdqa leaderboard --runs runs/dit --runs runs/base-question --out site/

          wdqa leaderboard --runs runs/* --suite suites/tiny --out site/

          wdqa leaderboard --runs runs/* --suite suites/tiny --private my-method.wdqa-bundle.scored.tar.gz --out site/
        """
        from wdqa.core.suite import SuiteError

        from .private_results import load_private_results
        from .score_table import TableMapping
        from .site import build_site

        folders = list(runs or []) + list(more_runs or [])
        if not folders:
            typer.echo("error: no runs given; pass run folders with --runs DIR...", err=True)
            raise typer.Exit(2)
        results = _gather(folders, judge, [], TableMapping())
        key = public_key.read_text() if public_key is not None else None
        signed = load_private_results(list(private or []), key, list(suite or []))  # a bad signature: one line
        try:
            index = build_site(
                results, out, suite_dirs=list(suite or []), rank_split=rank_split, title=title, private=signed
            )
        except SuiteError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err
        typer.echo(f"wrote {index} ({len(results)} result set(s)); open it in a browser")

    @app.command("submit")
    def submit_command(
        run_dir: Annotated[Path, typer.Argument(help="A judged run folder.")],
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                "-o",
                help="Bundle path, *.tar.gz or *.zip (default: RUN.wdqa-bundle.tar.gz).",
            ),
        ] = None,
    ) -> None:
        """Pack a judged run into a result bundle to send to the leaderboard: the manifest, one answer
        and one score per case and judge (the last the run wrote, so a resumed or re-judged run packs
        clean), the summary recomputed from those, and the sha256 of each file; see submissions/README.md.

        Examples:

          wdqa submit runs/my-method --out my-method.wdqa-bundle.tar.gz

          wdqa verify my-method.wdqa-bundle.tar.gz
        """
        from wdqa.benchmark.records import RunError

        from .bundle import BundleError, pack

        try:
            path = pack(run_dir, out)
        except (BundleError, RunError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err
        typer.echo(f"wrote {path}; check it with `wdqa verify {path}`")

    @app.command("verify")
    def verify_command(
        bundle: Annotated[Path, typer.Argument(help="A bundle made by `wdqa submit`.")],
        suite: Annotated[
            str | None,
            typer.Option(
                "--suite",
                help="The suite the run claims: a folder, `tiny` or a Hub id (default: the one the manifest names).",
            ),
        ] = None,
        rejudge_sample: Annotated[
            int, typer.Option(help="Re-judge this many random cases per judge (0: none).")
        ] = 20,
        judge: Annotated[
            str | None,
            typer.Option(
                "--judge",
                help="Judge spec to re-judge with, e.g. openai:MODEL (default: the offline judge, where it graded the bundle).",
            ),
        ] = None,
        max_disagreement: Annotated[
            float, typer.Option(help="Largest share of re-judged cases whose score may differ.")
        ] = 0.1,
        seed: Annotated[
            int | None,
            typer.Option(help="Seed of the re-judged sample (default: a fresh one, printed)."),
        ] = None,
        public_key: Annotated[
            Path | None,
            typer.Option(
                "--public-key",
                help="The maintainers' public key file to check a signed private result with (default: the suite's).",
            ),
        ] = None,
    ) -> None:
        """Check a result bundle: archive limits, file hashes, one answer and one score per case,
        scores 1-5, judge versions, the aggregates recomputed, the suite's content hash, every case of
        each split and only those, the suite's labels, a re-judged random sample, and the signature of
        a private-split result (a bundle scored by `wdqa score-private`). Prints ACCEPTED,
        or REFUSED with every problem and exit code 1.

        Examples:

          wdqa verify my-method.wdqa-bundle.tar.gz

          wdqa verify bundle.zip --suite suites/tiny --rejudge-sample 50 --judge openai:gpt-4.1
        """
        from .bundle import BundleError
        from .bundle import verify as verify_bundle

        key = public_key.read_text() if public_key is not None else None
        try:
            result = verify_bundle(bundle, suite, rejudge_sample, judge, max_disagreement, seed, public_key=key)
        except BundleError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err
        for check in result.checks:
            typer.echo(f"checked: {check}")
        if result.accepted:
            typer.echo(f"ACCEPTED {bundle}")
            for note in result.unverified:
                typer.echo(f"  not checked: {note}")
            return
        typer.echo(f"REFUSED {bundle}: {len(result.problems)} problem(s)")
        for problem in result.problems:
            typer.echo(f"  - {problem}")
        raise typer.Exit(1)
