"""`wdqa bench …`: speed figures measured side by side in one run (see bench.py)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

# torch and the benchmark helpers are imported inside the commands: `wdqa --help` stays fast.
bench_app = typer.Typer(help="Speed benchmarks that print figures side by side (batched vs naive, FLOP/s vs this machine's matmul).", no_args_is_help=True)


@bench_app.command("eval")
def bench_eval(
    suite: str = typer.Option("tiny", "--suite", "-s", help="Suite to take diffs from."),
    split: str = typer.Option("test", "--split"),
    n: int = typer.Option(32, "--n", help="Number of diffs (cases)."),
    max_new_tokens: int = typer.Option(20, "--max-new-tokens"),
    device: str | None = typer.Option(None, "--device"),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice)."),
    method: str = typer.Option(
        "wdqa.benchmark.bench:AskTheQuestion", "--method", help="Method for the in-process vs own-process figure."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Cases per method call (as `wdqa evaluate --batch-size`)."),
) -> None:
    """Evaluation speed: batched multi-diff generation vs loading each diff into a PEFT model; a
    method answering the same cases in this process vs in its own process, as `wdqa evaluate` runs
    it; and that process started fresh vs forked from a zygote, as `wdqa evaluate` starts baselines.

    Example:  wdqa bench eval --suite tiny --n 32
    """
    import torch

    from ..core.engine import Engine
    from ..core.measure import matmul_flops
    from ..core.models import load_base_model
    from .bench import (
        bench_batched,
        bench_method_process,
        bench_peft_sequential,
        bench_process_start,
    )
    from .sources import resolve_suite

    if threads:
        torch.set_num_threads(threads)
    console = Console()
    the_suite = resolve_suite(suite, splits=[split])
    diffs = [d for _, d in zip(range(n), the_suite.diffs(split), strict=False)]
    question = the_suite.splits[split].question
    model, tok = load_base_model(the_suite.base_model, the_suite.base_model_revision, device)
    engine = Engine(model, tok, max_batch=max(len(diffs), 1))
    dev = str(engine.device)
    peak = matmul_flops(model.config.hidden_size * 4 if dev == "cpu" else 4096, device=dev)
    engine.chat(diffs[:2], [question] * 2, max_new_tokens=2)  # warm-up
    runs = [bench_batched(engine, diffs, question, max_new_tokens), bench_peft_sequential(engine, diffs, question, max_new_tokens)]
    table = Table(title=f"evaluation speed: {len(diffs)} diffs of {the_suite.name}/{split}, {max_new_tokens} new tokens, {dev}, {torch.get_num_threads()} threads")
    for col in ("way", "cases/s", "new tokens", "seconds", "GFLOP/s", "% of matmul peak"):
        table.add_column(col, justify="right")
    for r in runs:
        table.add_row(r.label, f"{r.cases_per_s:.2f}", str(r.new_tokens), f"{r.seconds:.2f}", f"{r.flop_per_s / 1e9:.2f}", f"{100 * r.flop_per_s / peak:.1f}%")
    console.print(table)
    console.print(f"matmul peak here ({model.config.hidden_size * 4 if dev == 'cpu' else 4096}² fp32): {peak / 1e9:.1f} GFLOP/s")
    console.print(f"[bold]speed-up batched / PEFT one at a time: {runs[0].cases_per_s / runs[1].cases_per_s:.1f}×[/]")
    ids = [d.diff_id for d in diffs]
    cost = bench_method_process(Engine(model, tok), the_suite, split, ids, method, batch_size, device, threads)
    console.print(
        f"method {method}, {cost.cases} cases in calls of {batch_size} (median of 3): in this process {cost.in_process_s:.2f} s, "
        f"in its own process {cost.own_process_s:.2f} s ([bold]{cost.ratio:.2f}×[/]); "
        f"starting that process (method, suite, base model): {cost.startup_s:.2f} s; "
        f"same answers: {'yes' if cost.same_answers else 'NO'}"
    )
    start = bench_process_start(the_suite, split, ids[:batch_size], method, device, threads)
    console.print(
        f"starting {method}'s process until its base model is loaded (median of 3): fresh interpreter "
        f"{start.fresh_s:.2f} s, forked from the run's zygote {start.forked_s:.2f} s ([bold]{start.ratio:.0f}× faster[/]; "
        f"the first fork waits for the zygote's own imports, once per run: {start.zygote_s:.2f} s); "
        f"same answers: {'yes' if start.same_answers else 'NO'}"
    )


@bench_app.command("judge")
def bench_judge(
    pairs: str = typer.Option(..., "--pairs", help="Graded-pairs CSV (kind, label, answer, ...): the texts to grade."),
    n: int = typer.Option(300, "--n", help="Distinct pairs per rubric."),
    naive_n: int = typer.Option(30, "--naive-n", help="Of those, how many to grade one call per pair (the naive way)."),
) -> None:
    """Offline judge speed: one batched call vs one call per pair, both with an empty embedding cache,
    then the batched call again with the cache warm. Encoders are loaded (and MPNet unpacked) first.

    Example:  wdqa bench judge --pairs shared/judge-calibration/graded-pairs.csv
    """
    import tempfile
    import time
    from pathlib import Path

    import torch

    from .judge.base import JudgeRequest
    from .judge.embeddings import EmbeddingCache
    from .judge.fit import PairsError, read_pairs
    from .judge.offline import OfflineJudge

    console = Console()
    try:
        table_in = read_pairs(pairs)
    except PairsError as err:  # a bad --pairs file: a usage error, one line
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    with tempfile.TemporaryDirectory() as tmp:
        def fresh_judge(name: str) -> OfflineJudge:
            return OfflineJudge(cache=EmbeddingCache(Path(tmp) / f"{name}.sqlite"))

        start = time.perf_counter()
        fresh_judge("load").score([JudgeRequest("warm-up", "topic", "Chess", "Chess")])  # loads the encoders
        console.print(f"loading the judge and its encoders: {time.perf_counter() - start:.1f} s")
        table = Table(title=f"offline judge speed, {torch.get_num_threads()} torch threads")
        for col in ("rubric", "way", "pairs", "seconds", "pairs/s"):
            table.add_column(col, justify="right")
        for rubric in ("topic", "news"):
            sub = table_in[table_in["kind"] == rubric].drop_duplicates(["label", "answer"]).head(n)
            if len(sub) == 0:
                continue
            requests = [JudgeRequest(f"{rubric}-{i}", rubric, r.label, r.answer) for i, r in enumerate(sub.itertuples())]
            timed = []
            batched = fresh_judge(f"{rubric}-batched")
            for way, judge, reqs, one_by_one in (
                ("batched, cold cache", batched, requests, False),
                ("batched, warm cache", batched, requests, False),
                ("one call per pair, cold cache", fresh_judge(f"{rubric}-naive"), requests[:naive_n], True),
            ):
                start = time.perf_counter()
                for chunk in ([[r] for r in reqs] if one_by_one else [reqs]):
                    judge.score(chunk)
                seconds = time.perf_counter() - start
                timed.append(len(reqs) / seconds)
                table.add_row(rubric, way, str(len(reqs)), f"{seconds:.2f}", f"{len(reqs) / seconds:.1f}")
            console.print(f"{rubric}: batched cold / one call per pair: {timed[0] / timed[2]:.1f}x pairs/s")
        console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
