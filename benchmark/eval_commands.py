"""`wdqa evaluate`: run a method (and the built-in baselines) on a suite, judge, print scores.

Each method runs in its own process (`worker/`); this process never imports a method's file.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..core.errors import WdqaError

if TYPE_CHECKING:
    from .evaluate import RunResult


def _check_baselines(names: list[str], guesser: str) -> None:
    """An unknown baseline or guesser is a usage error before anything is loaded (the error lists the known ones)."""
    from .method import builtin_baselines

    baselines = builtin_baselines()
    for name in names:
        baselines.get_baseline(name, guesser)


def score_table(results: list[RunResult], judge_label: str) -> Table:
    """One row per (method, split). Fits an 80-column terminal: a method name is never cut (it sets
    the first column's width), the share of each score is one column ("88/10/2/0/0"), and a single
    split goes in the title rather than in a column."""
    rows = []
    for r in results:
        for _key, splits in r.summary.items():
            for split, s in splits.items():
                name = f"{r.name} (oracle)" if r.oracle else r.name
                shares = "/".join(f"{100 * s.dist.get(str(k), 0.0):.0f}" for k in range(1, 6))
                rows.append((name, split, f"{s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]", str(s.n), shares, str(s.failed)))
    splits = list(dict.fromkeys(row[1] for row in rows))
    one_split = len(splits) == 1
    table = Table(
        title="WEIGHTDIFFQA scores" + (f", split {escape(splits[0])}" if one_split else ""),
        caption=f"judge: {escape(judge_label)}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
    )
    table.add_column("method", min_width=max((len(row[0]) for row in rows), default=6), overflow="fold")
    if not one_split:
        table.add_column("split", overflow="fold")
    table.add_column("mean [95% CI]", justify="right", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("% 1/2/3/4/5", justify="right", no_wrap=True)
    table.add_column("failed", justify="right")
    for name, split, *figures in rows:
        table.add_row(escape(name), *([] if one_split else [escape(split)]), *figures)
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
            "default", "--baselines", help="Comma-separated built-in baselines to run beside the method (`default` stands for the default four), or `none`."
        ),
        runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders go."),
        run_dir: Path | None = typer.Option(None, "--run-dir", help="Run folder for the method (default: under --runs-dir)."),
        batch_size: int = typer.Option(32, "--batch-size", help="Cases per method call."),
        timeout: float = typer.Option(300.0, "--timeout", help="Seconds a method may spend per case before the case is marked failed."),
        limit: int | None = typer.Option(None, "--limit", help="Only the first N cases of each split (quick checks)."),
        device: str | None = typer.Option(None, "--device", help="torch device (default: cuda if available, else cpu); the same as device= in --model-args."),
        model_args: str | None = typer.Option(
            None, "--model-args",
            help="How to load the base model, key=value,...: dtype=auto|bf16|fp16|fp32, device=auto|cpu|cuda|cuda:N, "
            "device_map=auto (a model larger than one GPU; needs accelerate), attn_implementation=eager|sdpa|flash_attention_2, "
            "revision=COMMIT (default: the one the suite pins). Recorded in the run manifest.",
        ),
        max_batch: int = typer.Option(64, "--max-batch", min=1, help="Rows per forward pass of the base model (halved on a GPU out-of-memory)."),
        budget_tokens: int | None = typer.Option(
            None, "--budget-tokens", min=1,
            help="Per-case budget: a case that runs more tokens through M and M′ (forward and generated) fails as over budget.",
        ),
        revision: str | None = typer.Option(None, "--revision", help="Suite revision (Hub suites)."),
        seed: int = typer.Option(0, "--seed"),
        overwrite: bool = typer.Option(False, "--overwrite", help="Start again when the run folder holds another method version's answers."),
        fit_split: str = typer.Option("train", "--fit-split", help="Split that learned methods (those with fit()) train on."),
        guesser: str = typer.Option(
            "salient-words", "--guesser",
            help="How built-in baselines turn replies (the lenses: the tokens they read) into an answer: salient-words (offline), base-model (offline: M names the topic from the salient words) or openai:MODEL.",
        ),
        allow_model_revision_mismatch: bool = typer.Option(
            False, "--allow-model-revision-mismatch",
            help="Evaluate even when the base model at hand is not the commit (or folder content) the suite pins.",
        ),
    ) -> None:
        """Run METHOD on a suite, judge its answers, and compare with the built-in baselines.

        Examples:

          wdqa evaluate submissions/examples/ask_directly.py

          wdqa evaluate my_method.py --suite org/wdqa-qwen3-4b --split test --judge openai:gpt-4.1

          wdqa evaluate baseline:20-questions --baselines none --limit 10

          wdqa evaluate my_method.py --suite org/wdqa-qwen3-4b --model-args dtype=bf16,device_map=auto

        Each method runs in its own process, which never holds a label of the evaluated splits: a
        method that hangs past --timeout, exits or crashes fails its cases and the run goes on.
        An interrupted run resumes where it stopped; a finished run reruns without answering again.
        """
        # Imported here, not at the top: `wdqa --help` must not pay for torch and the suite code.
        from ..core.model_options import check_model_options, parse_model_args
        from ..core.model_revision import check_base_model, check_requested_revision
        from ..core.models import resolve_base_model
        from ..core.progress import Progress
        from .evaluate import evaluate, run_dir_for
        from .judge.registry import DEFAULT_JUDGE, get_judge
        from .method import MethodError, builtin_baselines
        from .sources import EMBEDDED, resolve_suite
        from .worker import MethodProcess, MethodSpec
        from .worker.zygote import Zygote

        console = Console()
        # Every model setting is checked before any process starts or anything is fetched.
        options = parse_model_args(model_args).with_device(device)
        check_model_options(options)
        # `default` stands for the default comparison, also inside a list (`default,empty-answer`).
        names = [] if baselines == "none" else list(dict.fromkeys(
            n for b in baselines.split(",") if b.strip()
            for n in (builtin_baselines().DEFAULT_COMPARISON if b.strip() == "default" else [b.strip()])
        ))
        try:
            _check_baselines(names, guesser)
        except WdqaError as err:
            raise typer.BadParameter(str(err), param_hint="--baselines") from err
        specs = [MethodSpec(method, guesser)] + [MethodSpec(f"baseline:{n}", guesser) for n in names if f"baseline:{n}" != method]
        results = []
        with ExitStack() as stack:
            # The user's method is loaded (in its own process) first: a broken file is a usage error
            # before the suite is fetched or any model loaded.
            try:
                mine = stack.enter_context(MethodProcess.start(specs[0]))
            except MethodError as err:
                raise typer.BadParameter(str(err), param_hint="METHOD") from err
            # The baselines' processes are forked from a zygote, which imports torch and transformers
            # once (while the suite is fetched or built) instead of once per baseline.
            zygote = stack.enter_context(Zygote.start()) if len(specs) > 1 else None
            the_judge = get_judge(judge or DEFAULT_JUDGE)
            # Only what this run needs is fetched, or built for an embedded suite: a first run of the
            # tiny suite builds its test split's 50 diffs, not all 440.
            the_suite = resolve_suite(suite, splits=_splits_needed(split, fit_split if mine.info.learned else None,
                                                                   suite in EMBEDDED and "dit" in {*names, method.removeprefix("baseline:")}), revision=revision)
            for s in split:
                the_suite.split(s)
            if suite in EMBEDDED:  # say whether the README's figures were measured on this very build
                from ..generators.tiny_suite import published_build_note

                console.print(published_build_note(the_suite), highlight=False)
            # The model the diffs were made against, or a one-line refusal, before any model loads.
            if options.revision:
                pin = check_requested_revision(
                    the_suite.base_model, options.revision, the_suite.base_model_revision, allow_model_revision_mismatch
                )
            else:
                pin = check_base_model(the_suite.base_model, the_suite.base_model_revision, allow_model_revision_mismatch)
            if pin.warning:
                typer.echo(f"warning: {pin.warning}", err=True)
                the_suite.base_model_revision = pin.revision  # what is loaded, and what the manifests record
            console.print(f"suite [bold]{escape(the_suite.name)}[/] ({escape(the_suite.base_model)}), splits {escape(', '.join(split))}")
            # Fetched (a first download shows its progress) before the progress display starts.
            resolve_base_model(the_suite.base_model, options.revision or the_suite.base_model_revision)
            n_cases = sum(min(the_suite.splits[s].n_diffs, limit or 10**9) for s in split)
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
            ) as progress:
                # An expected error (a WdqaError) leaves the progress display and reaches the CLI's
                # root, which prints it as one line.
                for i, spec in enumerate(specs):
                    the_method = mine if i == 0 else stack.enter_context(MethodProcess.start(spec, zygote=zygote))
                    # A private split publishes no trigger: oracle baselines run on the other splits.
                    method_splits = [s for s in split if i == 0 or not (the_method.oracle and the_suite.is_private(s))]
                    if len(method_splits) < len(split):
                        console.print(f"{escape(the_method.name)} is an oracle: not run on the private split(s), "
                                      "which publish no trigger", highlight=False)
                    if not method_splits:
                        continue
                    task = progress.add_task(escape(the_method.name), total=n_cases)
                    target = run_dir if (i == 0 and run_dir) else run_dir_for(runs_dir, the_suite, the_method.name)
                    results.append(
                        evaluate(
                            the_method, the_suite, method_splits, the_judge, target, batch_size, timeout, limit, seed,
                            overwrite, progress=lambda k, t=task: progress.advance(t, k), fit_split=fit_split,
                            model_options=options, max_batch=max_batch, budget_tokens=budget_tokens,
                        )
                    )
                    if i == 0 and len(specs) > 1:  # the user's score first, not after every baseline
                        for line in _score_lines(results[0], len(specs) - 1):
                            console.print(line, highlight=False, soft_wrap=True)
        if any(splits for r in results for splits in r.summary.values()):
            console.print(score_table(results, f"{the_judge.name} @ {the_judge.prompt_version}"))
        first = results[0]
        console.print(f"run folder: {first.run_dir}")
        for private_split, n in first.private_answers.items():
            console.print(
                f"split {private_split} is private: {n} answers written to {first.run_dir}, no scores (its labels are "
                f"kept by the maintainers). Pack them with `wdqa submit {first.run_dir}` and send the bundle to be scored.",
                highlight=False, soft_wrap=True,
            )
        if first.stats.failed:
            console.print(
                f"[red]{first.stats.failed} case(s) failed[/]; they count as score 1 and are retried on the next run. "
                f"First failure:\n{first.stats.first_error}"
            )


def _splits_needed(scored: Sequence[str], fit_split: str | None, trains_dit: bool) -> list[str]:
    """The splits a run reads: those it scores, the one a learned method fits on, and the train and
    val splits the embedded suite's DIT adapter is trained on when `baseline:dit` first runs."""
    extra = ([fit_split] if fit_split else []) + (["train", "val"] if trains_dit else [])
    return list(dict.fromkeys([*scored, *extra]))


def _score_lines(result: RunResult, baselines: int) -> list[str]:
    """One line per scored split of the user's method, printed before its baselines run."""
    name = escape(f"{result.name} (oracle)" if result.oracle else result.name)
    return [f"[bold]{name}[/] on {escape(split)}: " + escape(f"{s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}] (n {s.n}, "
            f"failed {s.failed}); the table follows after {baselines} baseline{'s' if baselines > 1 else ''}")
            for splits in result.summary.values() for split, s in splits.items()]
