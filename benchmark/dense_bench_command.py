"""`wdqa bench dense`: dense diffs answered batched beside merging each diff into a copy of the model."""

from __future__ import annotations

import typer


def bench_dense_command(
    shape: str = typer.Option("small", "--shape", help="Qwen3 shape: small (default, ~1-2 min on 2 CPU cores), 0.5b (the issue's CPU target), 1.7b, 4b; tiny for tests."),
    n: int = typer.Option(8, "--n", help="Dense diffs."),
    prompts_per_diff: int = typer.Option(4, "--prompts-per-diff", help="Prompts each diff answers (rows of the batch per diff)."),
    prompt_tokens: int = typer.Option(16, "--prompt-tokens"),
    max_new_tokens: int = typer.Option(16, "--max-new-tokens"),
    dtype: str | None = typer.Option(None, "--dtype", help="fp32, bf16 or fp16 for the model and the deltas (default: fp32 on CPU, bf16 on CUDA)."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda if available)."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice)."),
) -> None:
    """Dense (full fine-tune) diffs at scale: N random dense diffs of a random Qwen3-shaped model, each
    answering its prompts greedily, all in one batch (rows grouped by diff, one matmul per distinct diff)
    beside merging each diff into a copy of the model. Prints time, FLOP/s against this machine's matmul
    peak, and peak memory against the target: base weights + the N deltas + 20%.

    Example:  wdqa bench dense            wdqa bench dense --shape 0.5b --dtype bf16
    """
    import torch
    from rich.console import Console
    from rich.table import Table

    from ..core.measure import matmul_flops
    from ..core.models import pick_device, pick_dtype
    from .dense_bench import DTYPES, SHAPES, DenseBench, run_dense_bench

    if shape not in SHAPES:
        raise typer.BadParameter(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}", param_hint="--shape")
    if dtype is not None and dtype not in DTYPES:
        raise typer.BadParameter(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}", param_hint="--dtype")
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    the_dtype = DTYPES[dtype] if dtype else pick_dtype(dev)
    bench = DenseBench(shape, n, prompts_per_diff, prompt_tokens, max_new_tokens, the_dtype, str(dev))
    console = Console(width=160)
    size = SHAPES[shape]["intermediate_size"]
    peak = matmul_flops(size, the_dtype, str(dev))
    report = run_dense_bench(bench)
    name = str(the_dtype).removeprefix("torch.")
    table = Table(
        title=f"{n} dense diffs × {prompts_per_diff} prompts, {prompt_tokens} prompt + {max_new_tokens} new tokens, "
        f"Qwen3 {shape} ({report.parameters / 1e9:.2f}B parameters), {name}, {dev}, {torch.get_num_threads()} threads"
    )
    for col in ("way", "seconds", "answers/s", "new tokens/s", "GFLOP/s", "% of matmul peak", "peak memory MiB", "vs base + deltas"):
        table.add_column(col, justify="right")
    mib = 2**20
    for way in report.ways:
        table.add_row(
            way.label, f"{way.seconds:.2f}", f"{bench.rows / way.seconds:.2f}", f"{bench.rows * max_new_tokens / way.seconds:.1f}",
            f"{way.flop_per_s / 1e9:.1f}", f"{100 * way.flop_per_s / peak:.1f}%", f"{way.peak_bytes / mib:,.0f}",
            f"{way.peak_bytes / (report.base_bytes + report.delta_bytes):.2f}×",
        )
    console.print(table)
    batched, naive = report.ways
    memory = "process RSS above its size before the model was built (freed heap pages trimmed), sampled every 10 ms" if dev.type == "cpu" else "CUDA max_memory_allocated above the start"
    console.print(
        f"base weights {report.base_bytes / mib:,.0f} MiB + {n} deltas {report.delta_bytes / mib:,.0f} MiB; peak memory = {memory}; "
        f"held when each way started: {batched.held_bytes / mib:,.0f} / {naive.held_bytes / mib:,.0f} MiB"
    )
    console.print(f"matmul peak here ({size}×{size} @ {size}×{size}, {name}): {peak / 1e9:.1f} GFLOP/s; GFLOP/s counts the matmuls each way executes")
    within = batched.peak_bytes <= report.budget_bytes
    console.print(
        f"[bold]batched peak {batched.peak_bytes / mib:,.0f} MiB vs target (base + deltas + 20%) {report.budget_bytes / mib:,.0f} MiB: "
        f"{'within' if within else 'OVER'}; speed batched / merge-per-diff: {naive.seconds / batched.seconds:.2f}×[/]"
    )
    console.print(f"greedy answers identical both ways: {report.answers_agree}/{bench.rows}")


def register(app: typer.Typer) -> None:
    from .bench_commands import bench_app

    bench_app.command("dense")(bench_dense_command)
