"""From the SUITE a user names to a suite folder on disk: the embedded `tiny` suite (built
offline and cached), a local folder or file:// path, or a Hugging Face Hub dataset repo."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .suite import Suite, SuiteError

EMBEDDED = {"tiny": "the offline default: the project's tiny Qwen3 model and its hidden-topic suite, built on first use"}


def resolve_suite(name: str, splits: Sequence[str] | None = None, revision: str | None = None) -> Suite:
    """Load (building or downloading when needed) and verify the suite a user named."""
    if name in EMBEDDED:
        from ..generators.tiny_suite import ensure_tiny_suite

        return Suite.load(ensure_tiny_suite(), splits=splits)
    local = Path(name[len("file://") :] if name.startswith("file://") else name)
    if local.exists():
        return Suite.load(local, splits=splits)
    if name.startswith("hf://") or (name.count("/") == 1 and not name.startswith((".", "/"))):
        from .hub import download_suite

        root = download_suite(name, splits=splits, revision=revision)
        return Suite.load(root, splits=splits)
    raise SuiteError(
        f"no suite {name!r}: not an embedded suite ({', '.join(EMBEDDED)}), not an existing folder, "
        "and not a Hub repo id (org/name); check the path, or name `tiny` or a Hub dataset like org/name"
    )
