"""`wdqa download` and `wdqa publish`: moving suites between the Hugging Face Hub and disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("download")(download)
    app.command("publish")(publish)
    app.command("import-paper")(import_paper)


def download(
    suite: Annotated[
        str,
        typer.Argument(
            help="`tiny` (the embedded offline suite, built locally), a Hub dataset id (org/name or hf://org/name), a folder, or file:///path."
        ),
    ] = "tiny",
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            help="Fetch only this split (plus manifest, card, adapters); repeat the flag for several.",
        ),
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch, tag or commit sha (default: main).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Destination folder (default: the wdqa cache).")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", envvar="HF_ENDPOINT", help="Hub endpoint URL.")
    ] = None,
) -> None:
    """Download a suite (or one split), pin its revision, resume if interrupted, verify every sha256.

    Examples:

        wdqa download wdqa/weightdiffqa-qwen3-4b --split hidden-topic

        wdqa download hf://wdqa/weightdiffqa-qwen3-4b --revision v1.0 --out suites/qwen3-4b

        wdqa download ./suites/qwen3-4b --split news

        wdqa download            # the embedded offline `tiny` suite (its diffs built on first use)
    """
    from ..core.hub import download_suite, read_download_record
    from ..core.suite import Suite
    from .sources import EMBEDDED

    if suite in EMBEDDED:  # nothing to fetch: an embedded suite is built offline (the splits asked for) and cached
        suite = str(EMBEDDED.get(suite)(split or None))
    root = download_suite(suite, splits=split, revision=revision, local_dir=out, endpoint=endpoint)
    loaded = Suite.load(root, verify=False)
    record = read_download_record(root)
    where = f" @ {record.commit}" if record and record.commit else ""
    splits = split or sorted(loaded.splits_on_disk)
    typer.echo(
        f"{loaded.name} {loaded.version}{where}: splits {', '.join(splits)} verified (sha256) in {root}"
    )


def publish(
    suite_dir: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A finished suite folder.")
    ],
    repo_id: Annotated[
        str, typer.Option("--repo-id", help="Hub dataset repo, org/name (created if missing).")
    ],
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch to push to (default: main).")
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Version tag (default: v<suite version>).")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", envvar="HF_ENDPOINT", help="Hub endpoint URL.")
    ] = None,
) -> None:
    """Verify a suite, upload it to a Hub dataset repo (resumable), and tag the version.

    The token comes from `hf auth login` or HF_TOKEN. Re-running after an interruption uploads only
    what is missing.

    Examples:

        wdqa publish suites/qwen3-4b --repo-id my-org/weightdiffqa-qwen3-4b

        wdqa publish suites/qwen3-4b --repo-id my-org/weightdiffqa-qwen3-4b --tag v1.1 --private
    """
    from ..core.hub import hub_errors
    from ..generators.publish.hub import publish_suite

    with hub_errors(repo_id, endpoint):
        result = publish_suite(
            suite_dir, repo_id, revision=revision, tag=tag, private=private, endpoint=endpoint
        )
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    tagged = f", tagged {result.tag}" if result.tag else ""
    typer.echo(f"published {suite_dir} to {result.url} at commit {result.commit}{tagged}")


def import_paper(
    out: Annotated[Path, typer.Option("--out", help="Suite folder to write (rerun to resume).")],
    experiment: Annotated[
        str,
        typer.Option("--experiment", help="hidden-topic, news-summary, rank-generalization, ..."),
    ] = "hidden-topic",
    model: Annotated[
        str,
        typer.Option(
            "--model", help="Folder under the experiment, e.g. qwen3-4b, qwen3-4b-rank-008."
        ),
    ] = "qwen3-4b",
    source: Annotated[
        str, typer.Option("--source", help="hf://diff-interpretation-tuning/loras or a local copy.")
    ] = "hf://diff-interpretation-tuning/loras",
    paper_split: Annotated[str, typer.Option("--paper-split", help="test, train or all.")] = "test",
    base_model: Annotated[
        str | None,
        typer.Option("--base-model", help="Base model id or folder (default: from --model)."),
    ] = None,
    base_weights: Annotated[
        Path | None, typer.Option("--base-weights", help="Base safetensors (full fine-tunes only).")
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Source repo revision.")
    ] = None,
    base_model_revision: Annotated[
        str | None,
        typer.Option("--base-model-revision", help="Base model branch, tag or commit to pin (default: the commit main points at now)."),
    ] = None,
) -> None:
    """Convert the paper's published weight diffs (and DIT adapter) into a wdqa suite.

    Streams one source file at a time, skips finished files on a rerun, refuses any pickle that
    needs more than tensors and containers, and writes a data card citing the paper with the
    sha256 of every source file.

    Examples:

        wdqa import-paper --experiment hidden-topic --model qwen3-4b --out suites/paper-qwen3-4b

        wdqa import-paper --source ./loras-mirror --experiment news-summary --model gemma3-4b --out suites/news
    """
    from ..core.hub import hub_errors
    from ..core.progress import Progress
    from ..generators.publish.import_paper import ImportConfig
    from ..generators.publish.import_paper import import_paper as run_import

    cfg = ImportConfig(
        experiment, model, source, out, paper_split, base_model, base_weights, revision,
        base_model_revision=base_model_revision,
    )
    with Progress() as progress:
        task = progress.add_task("source files", total=None)

        def on_file(name: str, n: int, total: int) -> None:
            progress.update(task, completed=n, total=total, description=f"converting {name}")

        with hub_errors(source):
            report = run_import(cfg, on_file=on_file)
    typer.echo(
        f"{report.n_diffs} diffs -> {report.root} split {report.split} "
        f"({len(report.files_converted)} files converted, {len(report.files_skipped)} already done; "
        f"DIT adapter: {'yes' if report.dit_adapter else 'none published'}); "
        f"source revision {report.source_revision}; peak memory {report.peak_rss_mb:.0f} MB"
    )
    for diff_id, names in report.untransferred.items():
        if names:
            typer.echo(
                f"warning: {diff_id} changed {len(names)} non-linear parameters (e.g. {names[0]}); "
                "a wdqa diff keeps linear layers only",
                err=True,
            )
