"""The maintainers' commands for a private split: `wdqa keygen` and `wdqa score-private`.

Owns flag parsing and printing only; the work is in `signing.py` and `private_scoring.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("keygen")
    def keygen_command(
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the key pair (the private key is readable by you only).")],
        suite: Annotated[
            Path | None,
            typer.Option("--suite", help="Publish the public key in this suite folder's suite.json (extra.maintainer_public_key)."),
        ] = None,
    ) -> None:
        """Make the maintainers' Ed25519 key pair that signs private-split results; with --suite,
        publish its public key in the suite (its content hash does not change).

        Examples:

          wdqa keygen --out ~/.wdqa-maintainer --suite suites/tiny
        """
        from wdqa.core.suite import rewrite_manifest

        from .signing import generate_key_pair, key_id

        key_path, public = generate_key_pair(out)
        typer.echo(f"wrote {key_path} (keep it secret) and its public key {public} (key {key_id(public)})")
        if suite is not None:
            rewrite_manifest(suite, lambda raw: raw.setdefault("extra", {}).__setitem__("maintainer_public_key", public))
            typer.echo(f"published the public key in {suite / 'suite.json'}")

    @app.command("score-private")
    def score_private_command(
        bundle: Annotated[Path, typer.Argument(help="A bundle made by `wdqa submit` with private-split answers.")],
        labels: Annotated[Path, typer.Option("--labels", help="The maintainers' <split>.labels.parquet of the private split.")],
        key: Annotated[Path, typer.Option("--key", help="The maintainers' signing key (maintainer-ed25519.key from `wdqa keygen`).")],
        judge: Annotated[str, typer.Option("--judge", help="Judge spec (default: the offline judge), e.g. openai:MODEL.")] = "",
        suite: Annotated[
            str | None, typer.Option("--suite", help="The suite the bundle was answered on (default: the one its manifest names).")
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="The scored bundle (default: BUNDLE.scored.tar.gz).")] = None,
    ) -> None:
        """Judge a bundle's private-split answers against the maintainers' labels and sign the result
        (scores without the canaries, canaries named, judge and prompt version, suite revision).
        Refuses a bundle of another suite revision or a label file of another split.

        Examples:

          wdqa score-private my-method.wdqa-bundle.tar.gz --labels keep/private-test.labels.parquet --key keep/maintainer-ed25519.key

          wdqa verify my-method.wdqa-bundle.scored.tar.gz
        """
        from wdqa.benchmark.judge.registry import DEFAULT_JUDGE, get_judge

        from .private_scoring import score_private
        from .signing import load_private_key

        signing_key = load_private_key(key)
        path, result = score_private(bundle, labels, get_judge(judge or DEFAULT_JUDGE), signing_key, suite, out)
        s, canaries = result["summary"], result["canaries"]
        typer.echo(
            f"{result['method']['name']} on {result['split']}: mean {s['mean']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}] "
            f"over {s['n']} cases (judge {result['judge']['key']})"
        )
        if canaries["flagged"]:
            typer.echo(f"FLAGGED: the method named {canaries['named']} of {canaries['n']} canary labels: it read the labels")
        typer.echo(f"wrote {path} (signed); check it with `wdqa verify {path}`")
