"""`wdqa download` and `wdqa publish`: moving suites between the Hugging Face Hub and disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .suite import Suite, SuiteError


def register(app: typer.Typer) -> None:
    app.command("download")(download)
    app.command("publish")(publish)


def download(
    suite: Annotated[
        str,
        typer.Argument(
            help="Hub dataset id (org/name or hf://org/name), a folder, or file:///path."
        ),
    ],
    split: Annotated[
        str | None,
        typer.Option("--split", help="Fetch only this split (plus manifest, card, adapters)."),
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
    """
    from .hub import download_suite, read_download_record

    try:
        root = download_suite(
            suite, split=split, revision=revision, local_dir=out, endpoint=endpoint
        )
    except SuiteError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    loaded = Suite.load(root, verify=False)
    record = read_download_record(root)
    where = f" @ {record.commit}" if record and record.commit else ""
    splits = [split] if split else sorted(loaded.splits)
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
    from ..generators.publish import publish_suite

    try:
        result = publish_suite(
            suite_dir, repo_id, revision=revision, tag=tag, private=private, endpoint=endpoint
        )
    except SuiteError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    tagged = f", tagged {result.tag}" if result.tag else ""
    typer.echo(f"published {suite_dir} to {result.url} at commit {result.commit}{tagged}")
