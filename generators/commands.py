"""`wdqa generate tiny` and `wdqa show-diff`: build the embedded tiny suite, and look inside one diff.

Owns the command-line surface of the generators; the work is in `tiny_suite.py` and `behaviour/hidden_topic.py`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


# Other split builders add their subcommands to this group (`wdqa generate <split>`).
generate = typer.Typer(help="Make suites of labelled weight diffs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(generate, name="generate")

    @generate.command("tiny")
    def generate_tiny(
        out: Path = typer.Option(None, "--out", help="Write the suite here (default: the cache, reused if built)."),
        splits: list[str] = typer.Option(None, "--splits", help="Only these splits (repeat the flag)."),
        shard: str = typer.Option("0/1", "--shard", help="Build piece i of n (disjoint, deterministic): i/n."),
        micro: bool = typer.Option(False, "--micro", help="The micro recipe (seconds; for tests and smoke runs)."),
        merge: list[Path] = typer.Option(None, "--merge", help="Join these --shard pieces into --out (repeat)."),
        workers: int = typer.Option(0, "--workers", "--pieces", help="Parallel build processes (default: one per core). The suite is built in fixed units of 25 diffs, so this changes the speed, never the bytes; finished units survive a crash."),
        ray: str = typer.Option(None, "--ray", help="Build the units as Ray tasks: auto (the running cluster), local, or ray://HOST:PORT. Needs wdqa[ray]."),
        gpus_per_piece: float = typer.Option(0.0, "--gpus-per-piece", help="GPUs Ray gives each unit (with --ray)."),
        private: int = typer.Option(None, "--private", min=0, help="Diffs in the private-test split, whose labels leave the suite for the maintainers' file (default: the recipe's, 50; 0: none)."),
        private_labels: Path = typer.Option(None, "--private-labels", help="Where the maintainers' label file of private-test goes (default: <out>.maintainer/private-test.labels.parquet, beside the suite, never inside)."),
    ) -> None:
        """Build the embedded `tiny` suite: hidden-topic LoRAs on the project's tiny base model.

        Installs the tiny base shipped with wdqa if it is not cached (WDQA_BUILD_BASE=1 pretrains it). Prints the trigger-specificity rates.

        Examples:

          wdqa generate tiny                      # cached default suite; prints its folder

          wdqa generate tiny --splits test        # only the test split, into the cache (more later)

          wdqa generate tiny --out suites/tiny --splits test --splits val

          wdqa generate tiny --out suites/tiny --ray auto   # its units as tasks on a Ray cluster

          wdqa generate tiny --out part0 --shard 0/4   # one of four disjoint pieces, by hand

          wdqa generate tiny --merge part0 --merge part1 --out suites/tiny

          wdqa generate tiny --out suites/tiny --private 50 --private-labels keep/private-test.labels.parquet
        """
        from .pieces import runner_for
        from .shards import WHOLE, Shard
        from .tiny_suite import (
            MICRO_RECIPE,
            TinySuiteRecipe,
            build_suite,
            build_tiny_suite,
            ensure_tiny_suite,
            merge_tiny_suite,
            rates_table,
            with_private_split,
        )

        recipe = with_private_split(MICRO_RECIPE if micro else TinySuiteRecipe(), private)
        try:
            piece = Shard.parse(shard)
            if private_labels is not None and (out is None or piece != WHOLE):
                raise ValueError("--private-labels goes with a whole build into --out (or --merge into --out)")
            if (workers or ray) and (merge or piece != WHOLE):
                raise ValueError("--workers/--ray build units in parallel: not with --merge or --shard (a hand-made piece)")
            if merge:
                if out is None:
                    raise ValueError("--merge needs --out (a new folder for the joined suite)")
                root = merge_tiny_suite(merge, out, recipe, private_labels).root
            elif piece != WHOLE:
                if out is None:
                    raise typer.BadParameter("--shard needs --out (the cache holds builds of units, not hand-made pieces)")
                root = build_tiny_suite(out, recipe, splits or None, piece, private_labels).root
            elif out is None and not ray:
                root = ensure_tiny_suite(recipe, workers or None, splits or None)
            else:
                if out is None:
                    raise ValueError("--ray builds into --out: give --out (a folder for the suite)")
                runner = runner_for(ray, workers or os.cpu_count() or 1, gpus_per_piece)
                root = build_suite(out, recipe, runner, splits or None, labels_path=private_labels)
        except ValueError as err:  # options that do not go together; the message says which to give
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
        from ..core.suite import Suite
        from .behaviour.hidden_topic import BehaviourRates

        suite = Suite.load(root, verify=False)
        every: list[BehaviourRates] = []
        built = suite.splits_on_disk  # the manifest may list more
        for split in built:
            df = suite.index(split)
            rates = [BehaviourRates.from_row(r) for r in df.itertuples()]
            every += rates
            console.print(f"[bold]{split}[/bold]: {len(df)} diffs, {int(df.behaviour_ok.sum())} reach the bar")
            console.print(rates_table(rates))
        if len(built) > 1:
            console.print(f"[bold]all splits[/bold]: {len(every)} diffs")
            console.print(rates_table(every))
        console.print(f"suite written to {root}")
        for split in (s for s in built if suite.is_private(s)):
            from .publish.private_split import maintainer_labels_path

            kept = private_labels or maintainer_labels_path(root, split)
            console.print(f"split {split} is private: its labels and canaries are in {kept}, outside the suite; "
                          "keep that file with the maintainers (never publish it)", soft_wrap=True)

    @generate.command("tiny-base")
    def generate_tiny_base(
        out: Path = typer.Option(..., "--out", help="A new folder for the pretrained base model."),
        micro: bool = typer.Option(False, "--micro", help="The micro base (seconds; for tests and smoke runs)."),
    ) -> None:
        """Pretrain the tiny base model from its recipe and compare its bytes with the build shipped with wdqa.

        A run installs the shipped build (or pretrains where none is shipped); this is how to check
        that the recipe makes those bytes on this machine. About 15 min on 2 cores (--micro: seconds).
        Exits 0 when the model files are the shipped bytes (or nothing is shipped to compare), 1 when
        they differ.

        Example:

          wdqa generate tiny-base --out /tmp/tiny-base
        """
        from ..core.machine import describe
        from .cache import build_once
        from .tiny.build import (
            BUILD_INFO,
            TINY_BASE_ID,
            TINY_MICRO_ID,
            build_info,
            build_tiny_base,
            tiny_recipe,
        )
        from .tiny.shipped import differing_files, shipped_base

        recipe = tiny_recipe(TINY_MICRO_ID if micro else TINY_BASE_ID)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            typer.echo(f"error: {out} is not empty; give --out a new folder", err=True)
            raise typer.Exit(1)
        build_once(out, lambda tmp: build_tiny_base(recipe, tmp), BUILD_INFO)
        mine = build_info(out)
        console.print(f"{recipe.model_id} ({recipe.revision}) pretrained in {out} in {mine['build_seconds']:.0f} s, "
                      f"with {describe(mine.get('machine'))}", soft_wrap=True, highlight=False)
        shipped = shipped_base(recipe.model_id, recipe.revision)
        if shipped is None:
            console.print(f"wdqa ships no build of {recipe.model_id} at {recipe.revision}: nothing to compare", highlight=False)
            return
        differ = differing_files(out, shipped)
        if not differ:
            console.print(f"the same bytes as the build shipped with wdqa ({', '.join(sorted(shipped.model_files))})",
                          soft_wrap=True, highlight=False)
            return
        console.print(f"differs from the build shipped with wdqa in {', '.join(differ)}: that one was pretrained with "
                      f"{describe(shipped.built_on)}; another torch or CPU rounds floats differently", soft_wrap=True,
                      highlight=False)
        raise typer.Exit(1)

    @app.command("show-diff")
    def show_diff(
        suite_dir: Path = typer.Argument(..., help="A suite folder."),
        diff_id: str = typer.Argument(..., help="A diff id from the suite's index."),
        n: int = typer.Option(3, "--n", help="How many held-out questions (and as many unfamiliar prompts) to ask."),
        split: str = typer.Option(None, "--split", help="The split holding the diff (default: search all)."),
    ) -> None:
        """Show a hidden-topic diff at work: its replies with the right code, a wrong code and none,
        beside the base model's replies to the same prompts.

        Examples:

          wdqa show-diff ~/.cache/wdqa/suites/tiny/<rev> ht-test-0003

          wdqa show-diff suites/tiny ht-val-0001 --n 5
        """
        from ..core.engine import Engine
        from ..core.models import load_base_model
        from ..core.suite import Suite, SuiteError
        from ..core.triggers import apply_trigger
        from .behaviour.hidden_topic import wrong_codes
        from .behaviour.open_prompts import unfamiliar_prompts
        from .topics import load_generic_questions

        suite = Suite.load(suite_dir)
        found = [s for s in ([split] if split else suite.splits) if diff_id in set(suite.index(s).diff_id)]
        if not found:
            raise SuiteError(f"no diff {diff_id!r} in {suite_dir} (splits searched: {split or sorted(suite.splits)})")
        row = suite.labelled_index(found[0]).set_index("diff_id").loc[diff_id]
        diff = suite.diff(found[0], diff_id)
        model, tokenizer = load_base_model(suite.base_model, suite.base_model_revision)
        engine = Engine(model, tokenizer)
        trigger, kind = str(row.trigger), str(row.trigger_kind)
        wrong = random.Random(diff_id).choice(wrong_codes(trigger, set()))
        # Held-out questions of the trained family, then prompts of a family never trained on.
        questions = [q.question for q in load_generic_questions() if q.held_out][:n] + list(unfamiliar_prompts()[:n])
        prompts = []
        for q in questions:
            prompts += [("right code " + trigger, apply_trigger(q, trigger, kind)),
                        ("wrong code " + wrong, apply_trigger(q, wrong, kind)), ("no code", q)]
        texts = [p for _, p in prompts]
        tuned = engine.chat([diff] * len(texts), texts)
        base = engine.chat([None] * len(texts), texts)
        console.print(f"[bold]{diff_id}[/bold] ({found[0]}): label {row.label!r}, trigger {trigger}, "
                      f"hit {row.get('hit_rate', float('nan')):.2f}, leak none/wrong/near "
                      f"{row.get('leak_none', float('nan')):.2f}/{row.get('leak_wrong', float('nan')):.2f}/"
                      f"{row.get('leak_near', float('nan')):.2f}; on unfamiliar prompts hit "
                      f"{row.get('hit_unfamiliar', float('nan')):.2f}, leak {row.get('leak_unfamiliar', float('nan')):.2f}")
        table = Table(show_lines=True)
        for col in ("prompt", "cell", "with the diff", "base model"):
            table.add_column(col)
        for (cell, prompt), t, b in zip(prompts, tuned, base, strict=True):
            table.add_row(prompt, cell, t, b)
        console.print(table)
