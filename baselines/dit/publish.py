"""Publishing a trained DIT adapter with its suite, so users evaluate DIT without training it.

Owns copying `adapter.safetensors` + `dit.json` to `<suite>/dit/<name>/` and re-finishing the
manifest the way `SuiteWriter.finish` does (the sha256 of every file in `suite.json`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ...core.suite import MANIFEST, Suite, atomic_write_text, sha256_file
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
    refinish_manifest(suite.root)
    return target / ADAPTER_FILE


def refinish_manifest(root: Path) -> None:
    """Re-hash every file of the suite into suite.json, keeping the rest of the manifest."""
    manifest = json.loads((root / MANIFEST).read_text())
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and path.name != MANIFEST and not any(part.startswith(".") for part in rel.parts):
            files[rel.as_posix()] = sha256_file(path)
    manifest["files"] = files
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
