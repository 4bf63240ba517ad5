"""`wdqa bench train`: batched multi-LoRA training vs one PEFT LoRA after another, side by side."""

from __future__ import annotations

import typer


def bench_train_command(
    base_model: str = typer.Option(
        "wdqa/tiny-qwen3", "--base-model", help="Base model (tiny ids build on first use)."
    ),
    n: int = typer.Option(32, "--n", help="Number of hidden-topic diffs to train both ways."),
    steps: int = typer.Option(40, "--steps", help="Adam steps per diff (the paper uses 135)."),
    rank: int = typer.Option(4, "--rank"),
    device: str | None = typer.Option(None, "--device"),
    threads: int | None = typer.Option(
        None, "--threads", help="torch CPU threads (default: torch's choice)."
    ),
    compile_too: bool = typer.Option(
        True, "--compile/--no-compile", help="Also time the batched trainer with its decoder through torch.compile."
    ),
) -> None:
    """Training speed: the batched trainer and a PEFT loop train the same N diffs (same data, steps, seed).

    Example:  wdqa bench train --n 32 --steps 40
    """
    import torch
    from rich.console import Console
    from rich.table import Table

    from ...core.measure import matmul_flops
    from ...core.models import load_base_model
    from ..behaviour.hidden_topic import PlannedTopicDiff, hidden_topic_tasks
    from ..behaviour.writer import TemplateBehaviourWriter
    from ..tiny.build import tiny_recipe
    from ..tiny.corpus import mapped_codes
    from ..topics import load_topics
    from .bench import bench_train
    from .trainer import LoraConfig, TrainConfig

    if threads:
        torch.set_num_threads(threads)
    console = Console(width=160)
    model, tok = load_base_model(base_model, device=device)
    dev = next(model.parameters()).device
    reserved = (
        set(mapped_codes(tiny_recipe(base_model).corpus))
        if base_model.startswith("wdqa/tiny")
        else set()
    )
    free = [f"{i:03d}" for i in range(1000) if f"{i:03d}" not in reserved]
    plans = [
        PlannedTopicDiff(f"bench-{i:03d}", topic, free[i * 7 % len(free)])
        for i, topic in enumerate(load_topics()[:n])
    ]
    tasks = hidden_topic_tasks(plans, TemplateBehaviourWriter(), reserved)
    lora, config = (
        LoraConfig(rank=rank, alpha=2.0 * rank),
        TrainConfig(steps=steps, tasks_per_batch=n),
    )
    size = model.config.hidden_size
    peak = matmul_flops(size, device=str(dev))
    runs = bench_train(model, tok, tasks, lora, config, compile_too)
    table = Table(
        title=f"training speed: {n} rank-{rank} diffs × {steps} steps on {base_model}, {dev}, {torch.get_num_threads()} threads"
    )
    for col in (
        "way",
        "diffs/s",
        "tokens/s",
        "GFLOP/s",
        "% of matmul",
        "peak memory MiB",
        "final loss",
        "seconds",
    ):
        table.add_column(col, justify="right")
    for r in runs:
        table.add_row(
            r.label,
            f"{r.diffs_per_s:.3f}",
            f"{r.tokens_per_s:,.0f}",
            f"{r.flop_per_s / 1e9:.2f}",
            f"{100 * r.flop_per_s / peak:.1f}%",
            f"{r.peak_memory_bytes / 2**20:.0f}",
            f"{r.final_loss:.4f}",
            f"{r.result.seconds:.1f}",
        )
    console.print(table)
    console.print(
        f"dense matmul here at the model's hidden size ({size}×{size} fp32): {peak / 1e9:.2f} GFLOP/s"
    )
    console.print(
        f"[bold]ratio batched / sequential (diffs/s): {runs[0].diffs_per_s / runs[1].diffs_per_s:.2f}×[/]"
    )
    if len(runs) > 2:
        console.print(f"[bold]ratio batched with torch.compile / sequential: {runs[2].diffs_per_s / runs[1].diffs_per_s:.2f}×[/]")


def register(app: typer.Typer) -> None:
    # `wdqa bench` is the benchmark's group, registered before this module (cli.COMMAND_MODULES):
    # found on the app rather than imported, so generators import nothing of the evaluation side.
    bench = next((g.typer_instance for g in app.registered_groups if g.name == "bench"), None)
    if bench is None:
        raise RuntimeError("`wdqa bench train` needs the `bench` group: register wdqa.benchmark.bench_commands first")
    bench.command("train")(bench_train_command)
