"""`wdqa baselines train-dit` and `wdqa bench dit`: train, publish and time DIT."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ...core.progress import Progress

baselines_app = typer.Typer(help="Built-in baselines that need training (DIT).", no_args_is_help=True)


def _pick_judge(name: str):  # noqa: ANN202 - Judge | None, imported lazily
    if name in ("exact", "none"):
        return None
    from ...benchmark.judge.registry import get_judge

    return get_judge(name)


@baselines_app.command("train-dit")
def train_dit_cmd(
    suite: str = typer.Option("tiny", "--suite", "-s", help="Suite: `tiny` (offline default), a folder, or a Hub repo id."),
    split: str = typer.Option("train", "--split", help="Labelled split to train on."),
    val_split: str | None = typer.Option("val", "--val-split", help="Held-out split scored during training (`none` to skip)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default runs/dit/SUITE-SPLIT). A checkpoint there is resumed."),
    config_file: Path | None = typer.Option(None, "--config", help="TOML file with DitConfig fields; flags override it."),
    epochs: int | None = typer.Option(None, "--epochs"),
    lr: float | None = typer.Option(None, "--lr"),
    rank: int | None = typer.Option(None, "--rank", help="DIT adapter rank (paper: 16)."),
    alpha: float | None = typer.Option(None, "--alpha"),
    batch_diffs: int | None = typer.Option(None, "--batch-diffs", help="Different diffs per step (one batch row each)."),
    max_diffs: int | None = typer.Option(None, "--max-diffs", help="Train on only N diffs of the split."),
    fraction: float | None = typer.Option(None, "--fraction", help="Train on this share of the split (data-scaling curve)."),
    answer_template: str | None = typer.Option(None, "--answer-template", help="Train the adapter to say the label inside this text, e.g. 'Let me tell you about {label}!' (default: the bare label, as the paper)."),
    null_diffs: int | None = typer.Option(None, "--null-diffs", help="Also train on N random LoRAs of matched rank and norm labelled 'no hidden behaviour'."),
    eval_every: int | None = typer.Option(None, "--eval-every", help="Steps between validation checks."),
    checkpoint_every: int | None = typer.Option(None, "--checkpoint-every", help="Steps between checkpoints."),
    patience: int | None = typer.Option(None, "--patience", help="Checks without improvement before stopping early."),
    seed: int | None = typer.Option(None, "--seed"),
    val_judge: str = typer.Option("offline", "--val-judge", help="Judge for the validation score (`exact` = exact match only)."),
    publish_into: Path | None = typer.Option(None, "--publish-into", help="Suite folder to publish the adapter into (dit/NAME/)."),
    name: str = typer.Option("default", "--name", help="Adapter name under the suite's dit/ folder."),
    device: str | None = typer.Option(None, "--device"),
    model_args: str | None = typer.Option(
        None, "--model-args", help="How to load the base model, as `wdqa evaluate --model-args`: dtype=…,device=…,device_map=…,attn_implementation=…,revision=…"
    ),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads."),
    compile_decoder: bool | None = typer.Option(None, "--compile/--no-compile", help="Run the decoder through torch.compile: same losses, faster steps after a minute or two of compiling (docs/dit.md)."),
) -> None:
    """Train the DIT adapter: M ⊕ Δᵢ ⊕ A learns to answer the suite's question with each label.

    Examples:

      wdqa baselines train-dit --suite tiny --split train

      wdqa baselines train-dit --suite tiny --fraction 0.25 --out runs/dit/quarter

      wdqa baselines train-dit --suite tiny --publish-into ~/.cache/wdqa/suites/tiny

    An interrupted run resumes from the last checkpoint in --out.
    """
    import torch

    from ...benchmark.sources import resolve_suite
    from ...core.model_options import check_model_options, parse_model_args
    from ...core.models import load_base_model
    from .config import DitConfig
    from .data import LabelledDiffs
    from .publish import publish_adapter
    from .train import train_dit

    if threads:
        torch.set_num_threads(threads)
    console = Console()
    config = DitConfig.from_toml(config_file) if config_file else DitConfig()
    config = config.override(
        epochs=epochs, lr=lr, rank=rank, alpha=alpha, batch_diffs=batch_diffs, max_diffs=max_diffs, fraction=fraction,
        null_diffs=null_diffs, answer_template=answer_template,
        eval_every=eval_every, checkpoint_every=checkpoint_every, patience=patience, seed=seed, compile=compile_decoder,
    )
    config.validate()
    options = parse_model_args(model_args).with_device(device)
    check_model_options(options)
    the_suite = resolve_suite(suite)
    use_val = val_split not in (None, "none", "") and val_split in the_suite.splits
    if val_split not in (None, "none", "") and not use_val:
        console.print(f"[yellow]suite {the_suite.name} has no split {val_split!r}: training without validation[/]")
    train = LabelledDiffs.from_suite(the_suite, split)
    val = LabelledDiffs.from_suite(the_suite, val_split, limit=config.eval_limit) if use_val else None  # type: ignore[arg-type]
    judge = _pick_judge(val_judge) if val is not None else None
    model, tokenizer = load_base_model(the_suite.base_model, the_suite.base_model_revision, options=options)
    out_dir = out or Path("runs") / "dit" / f"{the_suite.name}-{split}"
    console.print(
        f"DIT on [bold]{the_suite.name}/{split}[/] ({len(train)} diffs), rank {config.rank}, lr {config.lr}, "
        f"{config.batch_diffs} diffs/step, validation: {val_split if val else 'none'} ({judge.name if judge else 'exact match'})"
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"), console=console,
    ) as bar:
        task = bar.add_task("train-dit", total=None, status="")

        def progress(state, entry) -> None:  # noqa: ANN001
            status = f"loss {entry['train_loss']:.3f}"
            if "val_exact" in entry:
                judged = f", judge {entry['val_judge']:.2f}" if entry.get("val_judge") is not None else ""
                status += f" | val exact {entry['val_exact']:.2f}{judged}"
                bar.console.print(f"step {entry['step']}: {status}")
            bar.update(task, total=state.total_steps, completed=state.step, status=status)

        result = train_dit(model, tokenizer, train, config, out_dir, val=val, judge=judge, progress=progress)
    rec = result.record
    console.print(
        f"trained {rec['steps']}/{rec['total_steps']} steps in {rec['train_seconds']:.0f} s"
        f"{' (stopped early)' if rec['stopped_early'] else ''}; best step {rec['best_step']}, best val {rec['best_val']}"
    )
    console.print(f"adapter: {out_dir / 'adapter.safetensors'}  record: {out_dir / 'dit.json'}")
    if publish_into is not None:
        path = publish_adapter(out_dir, publish_into, name)
        console.print(f"published into the suite: {path} (suite.json re-hashed)")


def bench_dit_cmd(
    suite: str = typer.Option("tiny", "--suite", "-s"),
    split: str = typer.Option("train", "--split", help="Split whose diffs are used."),
    n: int = typer.Option(64, "--n", help="Diffs for the evaluation comparison."),
    batch_diffs: int = typer.Option(64, "--batch-diffs", help="Diffs per training step."),
    steps: int = typer.Option(20, "--steps", help="Timed training steps."),
    adapter: Path | None = typer.Option(None, "--adapter", help="Trained adapter for the evaluation timing (default: a fresh one)."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice)."),
    device: str | None = typer.Option(None, "--device"),
    compile_too: bool = typer.Option(True, "--compile/--no-compile", help="Also time training with the decoder through torch.compile (compiling takes a minute or two)."),
) -> None:
    """Time DIT training (diffs/s, tokens/s, FLOP/s vs this machine's fp32 matmul; eager and torch.compile) and evaluation (batched vs one PEFT model per diff), side by side in one run.

    Example:  wdqa bench dit --suite tiny --threads 1
    """
    import torch

    from ...benchmark.bench import plain_copy
    from ...benchmark.sources import resolve_suite
    from ...core.engine import Engine
    from ...core.models import load_base_model
    from .adapter import DitAdapter, load_adapter
    from .bench import eval_speed_batched, eval_speed_peft, matmul_peak, train_speed
    from .config import DitConfig
    from .data import LabelledDiffs

    if threads:
        torch.set_num_threads(threads)
    console = Console()
    the_suite = resolve_suite(suite, splits=[split])
    data = LabelledDiffs.from_suite(the_suite, split)
    model, tokenizer = load_base_model(the_suite.base_model, the_suite.base_model_revision, device)
    peft_base = plain_copy(model)
    h, i = model.config.hidden_size, model.config.intermediate_size
    config = DitConfig(batch_diffs=batch_diffs)
    speeds = [("eager", train_speed(model, tokenizer, data, config, steps=steps))]
    if compile_too:
        speeds.append(("torch.compile", train_speed(model, tokenizer, data, replace(config, compile=True), steps=steps)))
    speed = speeds[0][1]
    tokens_per_step = speed.tokens // speed.steps
    peak = matmul_peak([(tokens_per_step, h, h), (tokens_per_step, h, i), (tokens_per_step, i, h), (1024, 1024, 1024)])
    if adapter is not None:
        dit = load_adapter(adapter)
    else:
        dit = DitAdapter(Engine(model, tokenizer).wrapped, config.targets, config.rank, config.scale).to_weight_diff()
    engine = Engine(model, tokenizer, max_batch=n)
    diffs, question = data.diffs[:n], data.questions[0]
    batched = eval_speed_batched(engine, diffs, question, dit, 20)
    peft = eval_speed_peft(peft_base, tokenizer, diffs, question, dit, 20)

    where = f"{engine.device}, {torch.get_num_threads()} thread(s)"
    table = Table(title=f"DIT training on {the_suite.name}/{split} ({where})")
    for col in ("way", "diffs/step", "steps", "diffs/s", "tokens/s", "GFLOP/s", "peak", "% peak"):
        table.add_column(col, justify="right")
    for way, sp in speeds:
        table.add_row(
            way, str(batch_diffs), str(sp.steps), f"{sp.diffs_per_s:.1f}", f"{sp.tokens_per_s:.0f}", f"{sp.flop_per_s / 1e9:.2f}", f"{peak.flop_per_s / 1e9:.1f}", f"{100 * sp.flop_per_s / peak.flop_per_s:.1f}%",
        )
    console.print(table)
    if len(speeds) > 1:
        console.print(f"torch.compile / eager: {speeds[1][1].diffs_per_s / speed.diffs_per_s:.2f}x")
    console.print(
        f"{speed.flop_per_step / 1e9:.3f} GFLOP per step (forward + backward, counted by FlopCounterMode); peak = best fp32 "
        f"matmul GFLOP/s measured now over the model's shapes, reached at m,k,n = {peak.shape}",
        markup=False,
    )
    table = Table(title=f"DIT evaluation: {len(diffs)} diffs, greedy 20 new tokens ({where})")
    for col in ("way", "cases/s", "seconds"):
        table.add_column(col, justify="right" if col != "way" else "left")
    for r in (batched, peft):
        table.add_row(r.label, f"{r.cases_per_s:.2f}", f"{r.seconds:.2f}")
    console.print(table)
    same = sum(a == b for a, b in zip(batched.answers, peft.answers, strict=True))
    console.print(f"[bold]batched / one PEFT model at a time: {batched.cases_per_s / peft.cases_per_s:.1f}x[/]; identical answers: {same}/{len(diffs)}")


def register(app: typer.Typer) -> None:
    from ...benchmark.bench_commands import bench_app

    app.add_typer(baselines_app, name="baselines")
    bench_app.command("dit")(bench_dit_cmd)
