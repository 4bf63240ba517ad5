"""`wdqa evaluate`: run a method (and the built-in baselines) on a suite, judge, print scores."""

from __future__ import annotations

import hashlib
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .evaluate import RunMismatchError, RunResult, RunSpec, evaluate, run_dir_for
from .method import MethodError, load_method
from .suite import Suite


def _builtin(name: str, guesser: str = "salient-words") -> RunSpec:
    from .. import __version__
    from ..baselines.registry import get_baseline

    method = get_baseline(name, guesser)
    if guesser != "salient-words":
        method.name = f"{method.name}[{guesser}]"  # a different guesser is a different method
    # A built-in's identity is its name, its guesser and wdqa's version: a new release re-runs it.
    digest = hashlib.sha256(f"builtin:{name}:{guesser}:{__version__}".encode()).hexdigest()
    return RunSpec(method=method, spec=f"baseline:{name}", sha256=digest, builtin=True)


def _user_method(spec: str, guesser: str) -> RunSpec:
    if spec.startswith("baseline:"):
        return _builtin(spec.split(":", 1)[1], guesser)
    method, digest = load_method(spec)
    return RunSpec(method=method, spec=spec, sha256=digest)


def score_table(results: list[RunResult], judge_label: str) -> Table:
    table = Table(title=f"WEIGHTDIFFQA scores (judge: {judge_label})", show_lines=False)
    for col in ("method", "split", "mean [95% CI]", "n", "1", "2", "3", "4", "5", "failed"):
        table.add_column(col, justify="left" if col in ("method", "split") else "right")
    for r in results:
        for _key, splits in r.summary.items():
            for split, s in splits.items():
                name = f"{r.name} (oracle)" if r.oracle else r.name
                table.add_row(
                    name,
                    split,
                    f"{s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]",
                    str(s.n),
                    *(f"{100 * s.dist.get(str(k), 0.0):.0f}%" for k in range(1, 6)),
                    str(s.failed),
                )
    return table


def register(app: typer.Typer) -> None:
    @app.command(name="evaluate")
    def evaluate_cmd(
        method: str = typer.Argument(
            ..., help="Method file (my_method.py), file.py:object, package.module:object, or baseline:NAME."
        ),
        suite: str = typer.Option("tiny", "--suite", "-s", help="Suite: `tiny` (offline default), a folder, or a Hub repo id."),
        split: list[str] = typer.Option(["test"], "--split", help="Split(s) to evaluate on; repeat the flag for several."),
        judge: str = typer.Option("", "--judge", help="Judge spec (default: the offline judge). See `wdqa judge --help`."),
        baselines: str = typer.Option(
            "default", "--baselines", help="Comma-separated built-in baselines to run beside the method, `default`, or `none`."
        ),
        runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders go."),
        run_dir: Path | None = typer.Option(None, "--run-dir", help="Run folder for the method (default: under --runs-dir)."),
        batch_size: int = typer.Option(32, "--batch-size", help="Cases per method call."),
        timeout: float = typer.Option(300.0, "--timeout", help="Seconds a method may spend per case before the case is marked failed."),
        limit: int | None = typer.Option(None, "--limit", help="Only the first N cases of each split (quick checks)."),
        device: str | None = typer.Option(None, "--device", help="torch device (default: cuda if available, else cpu)."),
        revision: str | None = typer.Option(None, "--revision", help="Suite revision (Hub suites)."),
        seed: int = typer.Option(0, "--seed"),
        overwrite: bool = typer.Option(False, "--overwrite", help="Start again when the run folder holds another method version's answers."),
        fit_split: str = typer.Option("train", "--fit-split", help="Split that learned methods (those with fit()) train on."),
        guesser: str = typer.Option(
            "salient-words", "--guesser",
            help="How black-box baselines turn replies into an answer: salient-words (offline) or openai:MODEL.",
        ),
    ) -> None:
        """Run METHOD on a suite, judge its answers, and compare with the built-in baselines.

        Examples:

          wdqa evaluate submissions/examples/ask_directly.py

          wdqa evaluate my_method.py --suite org/wdqa-qwen3-4b --split test --judge openai:gpt-4.1

          wdqa evaluate baseline:20-questions --baselines none --limit 10

        An interrupted run resumes where it stopped; a finished run reruns instantly.
        """
        from ..baselines.dit.method import DitAdapterMissingError
        from ..baselines.registry import DEFAULT_COMPARISON
        from .engine import Engine
        from .judge.registry import DEFAULT_JUDGE, get_judge
        from .models import load_base_model
        from .sources import resolve_suite

        console = Console()
        try:
            specs = [_user_method(method, guesser)]
        except (MethodError, KeyError) as err:  # KeyError: an unknown baseline or guesser
            raise typer.BadParameter(str(err), param_hint="METHOD") from err
        names = list(DEFAULT_COMPARISON) if baselines == "default" else [] if baselines == "none" else [
            b.strip() for b in baselines.split(",") if b.strip()
        ]
        try:
            specs += [_builtin(n, guesser) for n in names if f"baseline:{n}" != specs[0].spec]
        except KeyError as err:
            raise typer.BadParameter(str(err), param_hint="--baselines") from err
        the_judge = get_judge(judge or DEFAULT_JUDGE)
        the_suite: Suite = resolve_suite(suite, splits=split, revision=revision)
        for s in split:
            the_suite.split(s)
        console.print(f"suite [bold]{the_suite.name}[/] ({the_suite.base_model}), splits {', '.join(split)}")
        model, tokenizer = load_base_model(the_suite.base_model, the_suite.base_model_revision, device)
        engine = Engine(model, tokenizer)
        n_cases = sum(min(the_suite.splits[s].n_diffs, limit or 10**9) for s in split)
        results = []
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            for i, run in enumerate(specs):
                task = progress.add_task(run.method.name, total=n_cases)
                target = run_dir if (i == 0 and run_dir) else run_dir_for(runs_dir, the_suite, run.method.name)
                try:
                    results.append(
                        evaluate(
                            run, the_suite, split, engine, the_judge, target, batch_size, timeout, limit, seed,
                            overwrite, progress=lambda k, t=task: progress.advance(t, k), fit_split=fit_split,
                        )
                    )
                except (RunMismatchError, DitAdapterMissingError) as err:  # each message says how to proceed
                    progress.stop()
                    console.print(f"[red]error:[/red] {err}")
                    raise typer.Exit(1) from None
        console.print(score_table(results, f"{the_judge.name} @ {the_judge.prompt_version}"))
        mine = results[0]
        console.print(f"run folder: {mine.run_dir}")
        if mine.stats.failed:
            console.print(
                f"[red]{mine.stats.failed} case(s) failed[/]; they count as score 1 and are retried on the next run. "
                f"First failure:\n{mine.stats.first_error}"
            )
