"""`wdqa judge`, `wdqa judge-agreement`, `wdqa judge-fit`: re-grade runs and measure judges.

Thin command wrappers: the work is in stage.py (grading a run), fit.py (the offline judge's
recipe) and agreement.py (metrics). Every table names the judge that produced it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ...core.errors import one_line
from ...core.progress import Progress
from .registry import DEFAULT_JUDGE

if TYPE_CHECKING:  # the metrics (scipy, scikit-learn) are imported when a command needs them
    from .agreement import Agreement, GroupMean

console = Console()


def _fail(message: str, err: Exception | None = None) -> NoReturn:
    """A bad argument (unknown judge, run or pairs file): one line on stderr, exit 2 as a usage error."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(2) from err


def _llm_options(base_url: str | None, concurrency: int | None, config: Path | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if base_url:
        options["base_url"] = base_url
    if concurrency:
        options["concurrency"] = concurrency
    if config:
        options["config_file"] = config
    return options


def _judge(spec: str, base_url: str | None, concurrency: int | None, config: Path | None) -> Any:
    from .registry import get_judge

    options = _llm_options(base_url, concurrency, config) if spec.startswith("openai") else {}
    try:
        return get_judge(spec, **options)
    except ValueError as err:  # unknown judge or bad settings: the message says what to do
        _fail(str(err), err)


def agreement_table(title: str, rows: dict[str, Agreement]) -> Table:
    table = Table(title=title)
    for col in ("pairs", "n", "exact", "within-1", "Spearman", "kappa (quadratic)", "mean ref", "mean judge"):
        table.add_column(col, justify="left" if col == "pairs" else "right")
    for name, a in rows.items():
        table.add_row(name, str(a.n), f"{a.exact:.1%}", f"{a.within_1:.1%}", f"{a.spearman:.3f}", f"{a.kappa:.3f}",
                      f"{a.mean_reference:.2f}", f"{a.mean_other:.2f}")
    return table


def group_table(title: str, means: list[GroupMean]) -> Table:
    table = Table(title=title)
    for col in ("group", "n", "reference mean", "judge mean", "|error|"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for m in means:
        style = "red" if m.error > 0.15 else None
        table.add_row(m.group, str(m.n), f"{m.mean_reference:.2f}", f"{m.mean_other:.2f}", f"{m.error:.2f}", style=style)
    return table


def _pairs_agreement(pairs_path: Path, spec: str | None, base_url: str | None, concurrency: int | None,
                     config: Path | None) -> None:
    import numpy as np

    from .agreement import GroupMean, agreement, group_means
    from .base import JudgeRequest
    from .fit import ENCODERS, RUBRICS, SCHEMES, evaluate_recipe, read_pairs, rubric_features
    from .offline import encoder_spelling, encoders_by_name

    pairs = read_pairs(pairs_path)
    rows: dict[str, Agreement] = {}
    means: list[GroupMean] = []
    if spec is None:
        label = "offline recipe refitted on held-out folds (fit.py)"
        encoders = encoders_by_name(ENCODERS)
        with console.status("embedding pairs and fitting held-out models..."):
            features = rubric_features(pairs, encoders)
            spelling = encoder_spelling(encoders)
            for scheme in SCHEMES:
                for rubric, report in evaluate_recipe(features, scheme, spelling).items():
                    rows[f"{rubric}, {report['validation']}"] = _agreement_of(report)
                    if scheme == SCHEMES[0]:
                        means += [GroupMean(**g) for g in report["groups"]]
    else:
        judge = _judge(spec, base_url, concurrency, config)
        label = f"{judge.name} @ {judge.prompt_version}" + (" (in-sample: it was fitted on these pairs)" if spec.startswith("offline") else "")
        requests = [JudgeRequest(f"row-{i}", r.kind, r.label, r.answer, seed=i) for i, r in enumerate(pairs.itertuples())]
        with console.status(f"grading {len(requests)} pairs with {judge.name}..."):
            scores = judge.score(requests)
        valid = np.array([s.valid for s in scores])
        grades = np.array([s.value if s.valid else 0 for s in scores])
        for rubric in RUBRICS:
            m = (pairs["kind"] == rubric).to_numpy() & valid
            if m.any():
                rows[rubric] = agreement(pairs["score"][m].tolist(), grades[m].tolist())
                sub = pairs[m]
                means += group_means((sub["setup"] + " / " + sub["method"]).tolist(), sub["score"].tolist(), grades[m].tolist())
        if (~valid).any():
            console.print(f"[yellow]{int((~valid).sum())} pairs got no valid grade and are left out[/yellow]")
    console.print(agreement_table(f"Agreement with the reference LLM grades in {pairs_path.name}\njudge: {label}", rows))
    console.print(group_table(f"Mean grade per (setup, method) - judge: {label}", means))


def _agreement_of(report: dict[str, Any]) -> Agreement:
    from .agreement import Agreement

    return Agreement(**{k: report[k] for k in Agreement.__dataclass_fields__})


def _runs_agreement(run_dir: Path, keys: list[str]) -> None:
    from ..records import RunFolder
    from .agreement import agreement

    run = RunFolder(run_dir)
    available = run.judge_keys()
    if len(keys) != 2:
        _fail(f"--judges takes two judge keys; this run has: {', '.join(available) or 'none'}")
    missing = [k for k in keys if k not in available]
    if missing:
        _fail(f"{run_dir} has no scores for {missing}; it has: {', '.join(available) or 'none'}. "
              f"Grade it first with `wdqa judge {run_dir} --judge SPEC`.")
    a, b = (run.scores(k) for k in keys)
    common = sorted(c for c in set(a) & set(b) if a[c].score is not None and b[c].score is not None)
    rows = {"all splits": agreement([a[c].score for c in common], [b[c].score for c in common])}  # type: ignore[misc]
    splits = sorted({a[c].split for c in common})
    for split in splits:
        ids = [c for c in common if a[c].split == split]
        rows[split] = agreement([a[c].score for c in ids], [b[c].score for c in ids])  # type: ignore[misc]
    console.print(agreement_table(f"{run_dir}: reference {keys[0]} vs judge {keys[1]} ({len(common)} cases graded by both)", rows))


def register(app: typer.Typer) -> None:
    @app.command(name="judge")
    def judge_cmd(
        run_dir: Path = typer.Argument(..., help="A finished run folder (with manifest.json and answers.jsonl)."),
        judge: str = typer.Option(DEFAULT_JUDGE, "--judge", help="Judge spec: offline, offline:MODEL.joblib, openai:MODEL."),
        both_orders: bool = typer.Option(False, "--both-orders", help="Also grade each pair with the two texts swapped; report the flip rate."),
        suite_path: Path | None = typer.Option(None, "--suite", help="Suite folder with the labels (default: the one the run's manifest names)."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (else OPENAI_BASE_URL)."),
        concurrency: int | None = typer.Option(None, "--concurrency", help="Parallel API requests of an LLM judge."),
        config: Path | None = typer.Option(None, "--judge-config", help="TOML file with a \\[judge] table (model, base_url, ...)."),
    ) -> None:
        """(Re-)grade a run's answers with a judge, next to the scores it already has.

        Scores go to RUN_DIR/scores/<judge>@<version>.jsonl (append-only; cases already graded by this judge and prompt version are skipped, so an interrupted run resumes) and summary.json is refreshed. The method is not re-run.

        Examples:
          wdqa judge runs/tiny-1a2b/ask-directly
          wdqa judge runs/tiny-1a2b/ask-directly --judge openai:gpt-4.1 --both-orders
          OPENAI_BASE_URL=http://localhost:8000/v1 wdqa judge RUN --judge openai:Qwen/Qwen3-8B
        """
        from ...core.suite import Suite, SuiteError
        from ..records import RunError, RunFolder
        from .stage import judge_run, record_judge_in_manifest

        run = RunFolder(run_dir)
        try:
            manifest = run.manifest()
            root = suite_path or manifest.suite.root
            if not root:
                raise RunError(f"{run.manifest_path} names no suite root; pass the suite folder with --suite")
            suite = Suite.load(root, verify=False)
            expected = manifest.suite.content_sha256
            if expected and expected != suite.content_sha256:
                raise SuiteError(f"suite at {root} has content sha256 {suite.content_sha256[:12]}… but the run was answered on "
                                 f"{expected[:12]}…; pass the right suite with --suite")
            labels = {f"{split}/{d}": label
                      for split in manifest.splits or sorted(suite.splits) if not suite.is_private(split)
                      for d, label in suite.labels(split).items()}
        except (RunError, SuiteError) as err:
            _fail(str(err), err)
        the_judge = _judge(judge, base_url, concurrency, config)
        columns = (TextColumn("grading with {task.fields[judge]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("judge", total=None, judge=the_judge.name)
            result = judge_run(run, the_judge, labels, seed=manifest.seed, both_orders=both_orders,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
        record_judge_in_manifest(run, the_judge, result.usage)
        # one line, never wrapped: the judge key in it is a score file's name, to be copied whole
        console.print(f"{result.key}: graded {result.judged}, already graded {result.skipped}, "
                      f"failed answers {result.failed}, invalid replies {result.invalid} ({result.seconds:.1f} s)",
                      soft_wrap=True)
        if result.flip_rate is not None:
            console.print(f"order flip rate: {result.flip_rate:.1%} ({result.flips} of {result.order_pairs} pairs change grade when the texts swap)")
        if result.usage:
            console.print("usage: " + ", ".join(f"{k} {v}" for k, v in result.usage.items() if v is not None))
        table = Table(title=f"{run_dir} (judge: {result.key})")
        for col in ("split", "mean [95% CI]", "n", "failed", "invalid"):
            table.add_column(col, justify="left" if col == "split" else "right")
        for split, s in run.summary().get(result.key, {}).items():
            table.add_row(split, f"{s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]", str(s.n), str(s.failed), str(s.invalid))
        console.print(table)

    @app.command(name="judge-agreement")
    def agreement_cmd(
        pairs: Path | None = typer.Option(None, "--pairs", help="CSV of graded pairs: kind,label,answer,score,setup,method."),
        judge: str | None = typer.Option(None, "--judge", help="With --pairs: grade the pairs with this judge instead of refitting the offline recipe."),
        runs: Path | None = typer.Option(None, "--runs", help="A run folder whose answers two judges have graded."),
        judges: tuple[str, str] | None = typer.Option(None, "--judges", help="With --runs: two judge keys (file names in RUN/scores/), reference first."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL for an LLM judge."),
        concurrency: int | None = typer.Option(None, "--concurrency", help="Parallel API requests of an LLM judge."),
        config: Path | None = typer.Option(None, "--judge-config", help="TOML file with a \\[judge] table."),
    ) -> None:
        """How closely a judge agrees with reference grades: exact, within-1, Spearman, quadratic kappa,
        and the mean grade per (setup, method) next to the reference mean.

        Examples:
          wdqa judge-agreement --pairs shared/judge-calibration/graded-pairs.csv
              (the offline recipe, refitted with whole setups held out)
          wdqa judge-agreement --pairs graded-pairs.csv --judge openai:gpt-4.1
          wdqa judge-agreement --runs runs/tiny-1a2b/ask-directly --judges offline-gbt@gbt-0123 gpt-4.1@topic-…
        """
        if (pairs is None) == (runs is None):
            _fail("give exactly one of --pairs FILE or --runs RUN_DIR")
        if pairs is not None:
            from .fit import PairsError

            try:
                _pairs_agreement(pairs, judge, base_url, concurrency, config)
            except PairsError as err:
                _fail(str(err), err)
        else:
            _runs_agreement(runs, list(judges or []))  # type: ignore[arg-type]

    @app.command(name="judge-fit")
    def fit_cmd(
        pairs: Path = typer.Option(..., "--pairs", help="CSV of real LLM grades: kind,label,answer,score,setup,method."),
        out: Path | None = typer.Option(None, "--out", help="Model file to write (default: the one shipped in the package)."),
    ) -> None:
        """Refit the offline judge to real LLM grades; write the model file and its provenance JSON.

        Validates first (topic: each setup held out in turn; news: whole labels held out), prints that held-out agreement, then fits on every pair. The pairs are read, never copied.

        Example:
          wdqa judge-fit --pairs shared/judge-calibration/graded-pairs.csv
          wdqa judge-fit --pairs my-grades.csv --out my-judge.joblib   # then --judge offline:my-judge.joblib
        """
        from .fit import PairsError, fit_offline_judge
        from .offline import MODEL_FILE

        try:
            with console.status("embedding pairs, validating on held-out groups, fitting..."):
                provenance = fit_offline_judge(pairs, out or MODEL_FILE)
        except PairsError as err:
            _fail(str(err), err)
        rows = {f"{rubric}, {a['validation']}": _agreement_of(a)
                for key in ("held_out_agreement", "held_out_agreement_new_labels")
                for rubric, a in provenance[key].items()}
        console.print(agreement_table(f"offline judge, held-out agreement (model sha256 {provenance['model_sha256'][:10]})", rows))
        for rubric, a in provenance["held_out_agreement"].items():
            console.print(f"{rubric} ({a['validation']}): per (setup, method) mean error avg "
                          f"{a['group_mean_error_avg']:.3f}, max {a['group_mean_error_max']:.3f}")
        console.print(f"wrote {out or MODEL_FILE} and {(out or MODEL_FILE).with_suffix('.json')}")

