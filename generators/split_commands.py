"""`wdqa generate extra` (the extra splits of a suite) and `wdqa generate merge` (shard folders → one suite).

Owns the command-line surface only; the work is in `splits/extra.py` and `shards.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer


def generate_extra(
    suite_dir: Path = typer.Argument(..., help="A finished suite folder (e.g. from `wdqa generate tiny --out`)."),
    split: list[str] = typer.Option(None, "--split", help="Extra split(s) to build (default: all)."),
    shard: str = typer.Option("0/1", "--shard", help="Build piece i of n of each split (disjoint, deterministic)."),
    out: Path | None = typer.Option(None, "--out", help="Write the splits as a separate suite folder (needed with --shard)."),
    micro: bool = typer.Option(False, "--micro", help="A few diffs per split, 5 steps: exercises the code paths in seconds."),
    behaviour_model: str | None = typer.Option(None, "--behaviour-model", help="Write behaviour data with this LLM (env WDQA_BEHAVIOUR_MODEL); default: offline templates."),
    behaviour_base_url: str | None = typer.Option(None, "--behaviour-base-url", help="OpenAI-compatible base URL (env WDQA_BEHAVIOUR_BASE_URL / OPENAI_BASE_URL)."),
    behaviour_api_key: str | None = typer.Option(None, "--behaviour-api-key", help="API key (env WDQA_BEHAVIOUR_API_KEY / OPENAI_API_KEY)."),
    pieces: int = typer.Option(0, "--pieces", help="Build as N --shard pieces in parallel, merged into --out; finished pieces survive a crash."),
    ray: str | None = typer.Option(None, "--ray", help="Run the --pieces as Ray tasks: auto (the running cluster), local, or ray://HOST:PORT. Needs wdqa[ray]."),
    gpus_per_piece: float = typer.Option(0.0, "--gpus-per-piece", help="GPUs Ray gives each piece (with --ray)."),
    behaviour_data: list[str] = typer.Option(None, "--behaviour-data", help="Take behaviour data and the splits' topics and headlines from the paper's published tables instead of an LLM and wdqa's lists: a local copy (folder or table file) or hf://diff-interpretation-tuning/finetuning-data\\[@rev]\\[/path]. Repeat to combine files."),
) -> None:
    """Add ood-trigger, rank, full-finetune, news, trigger-inversion and null splits to a suite.

    Examples:
      wdqa generate extra suites/tiny
      wdqa generate extra suites/tiny --shard 0/2 --out part0   # then: wdqa generate merge suites/tiny part0 part1 --out full
      wdqa generate extra suites/real --behaviour-data hf://diff-interpretation-tuning/finetuning-data
      wdqa generate extra suites/tiny --out extra --pieces 16 --ray auto   # on a Ray cluster; then merge
    """
    if behaviour_data and (behaviour_model or behaviour_base_url):
        raise typer.BadParameter(
            "--behaviour-data and --behaviour-model/--behaviour-base-url both say where behaviour data "
            "comes from (published tables or an LLM); give one of them"
        )
    from rich.console import Console

    from .behaviour.llm import LLMBehaviourWriter, LLMSettings
    from .behaviour.published import BehaviourSource, PublishedBehaviourWriter
    from .behaviour.writer import BehaviourDataError, BehaviourWriter
    from .pieces import runner_for
    from .shards import Shard
    from .splits.extra import (
        ExtraSplitsRecipe,
        build_extra_splits_in_pieces,
        build_tiny_extra_splits,
        micro_recipe,
    )

    piece = Shard.parse(shard)
    if piece.count > 1 and out is None:
        raise typer.BadParameter("--shard needs --out: pieces are separate folders that `wdqa generate merge` joins")
    if (pieces or ray) and (out is None or piece.count > 1 or pieces < 1):
        raise typer.BadParameter("--pieces N (and --ray) build every piece into --out: give --pieces N and --out, not --shard")
    writer: BehaviourWriter | None = None
    if behaviour_data:
        try:
            writer = PublishedBehaviourWriter([BehaviourSource.parse(s) for s in behaviour_data])
        except BehaviourDataError as err:
            raise typer.BadParameter(str(err)) from err
    elif behaviour_model or behaviour_base_url:
        writer = LLMBehaviourWriter(LLMSettings.from_env(behaviour_model, behaviour_base_url, behaviour_api_key))
    console = Console()
    recipe = micro_recipe() if micro else ExtraSplitsRecipe()
    try:
        if pieces:
            runner = runner_for(ray, os.cpu_count() or 1, gpus_per_piece)
            summaries = build_extra_splits_in_pieces(suite_dir, out, pieces, runner, recipe, split or None, writer)
        else:
            summaries = build_tiny_extra_splits(suite_dir, recipe, split or None, piece, out, writer)
    except ValueError as err:  # an impossible plan; wdqa's own errors reach the user through the CLI
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    for s in summaries:
        rates = ", ".join(f"{k} {v[0]:.2f}" for k, v in s.measures.items())
        console.print(f"{s.name}: {s.n} diffs, behaviour took for {s.n_ok}; medians: {rates}")
    console.print(f"written to {out or suite_dir}")


def generate_merge(
    parts: list[Path] = typer.Argument(..., help="Suite folders (shard pieces, or a suite and its extra splits)."),
    out: Path = typer.Option(..., "--out", help="A new, empty folder for the merged suite."),
) -> None:
    """Merge suite folders of the same base model into one suite (shards renumbered, files re-hashed)."""
    from .shards import merge_suites

    suite = merge_suites(parts, out)
    typer.echo(f"merged {len(parts)} parts into {out}: " + ", ".join(f"{k} {v.n_diffs}" for k, v in sorted(suite.splits.items())))


def register(app: typer.Typer) -> None:
    from .commands import generate

    generate.command("extra")(generate_extra)
    generate.command("merge")(generate_merge)
