"""Publishing a trained DIT adapter with its suite, so users evaluate DIT without training it.

Owns copying `adapter.safetensors` + `dit.json` to `<suite>/dit/<name>/` and re-finishing the
manifest (`rehash_manifest`: the sha256 of every file in `suite.json`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ...core.suite import Suite, rehash_manifest
from .adapter import ADAPTER_FILE, RECORD_FILE, load_adapter


def publish_adapter(adapter_dir: str | Path, suite_root: str | Path, name: str = "default") -> Path:
    """Copy a trained adapter into the suite and re-hash the manifest; returns the adapter path."""
    adapter_dir = Path(adapter_dir)
    suite = Suite.load(suite_root, verify=False)
    load_adapter(adapter_dir)  # refuse to publish a file that does not read back as an adapter
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"adapter name {name!r} must be a plain folder name (e.g. `default`, `rank1`)")
    target = suite.root / "dit" / name
    target.mkdir(parents=True, exist_ok=True)
    for file in (ADAPTER_FILE, RECORD_FILE):
        if (adapter_dir / file).exists():
            shutil.copyfile(adapter_dir / file, target / file)
    rehash_manifest(suite.root)
    return target / ADAPTER_FILE
