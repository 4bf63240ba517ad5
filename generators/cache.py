"""Where built artefacts (tiny base models, tiny suites) are cached, and how a build lands there.

Owns the build-in-a-temp-dir-then-rename steps (`build_once` keeps a finished build, `replace_folder` replaces one; the cache root itself is `wdqa/core/cache_dir.py`), so an interrupted build never leaves a half-written folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from ..core.cache_dir import wdqa_cache_dir


def cache_root() -> Path:
    return wdqa_cache_dir()


def recipe_hash(recipe: Any, version: int) -> str:
    """A short content hash of a recipe dataclass: changing any field makes a new cache entry."""
    if not is_dataclass(recipe):
        raise TypeError(f"recipe_hash needs a dataclass, got {type(recipe).__name__}")
    payload = json.dumps({"v": version, "recipe": asdict(recipe)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def build_once(target: Path, build: Callable[[Path], None], marker: str) -> Path:
    """Return `target` if a finished build is there; else run `build(tmp)` and rename tmp to target.

    `marker` is a file that `build` writes last; a folder without it is an interrupted build and is
    rebuilt. If another process finished the same build first, its result is kept.
    """
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.building-"))
    try:
        build(tmp)
        if not (tmp / marker).exists():
            raise RuntimeError(f"build of {target} finished without writing {marker}")
        if target.exists() and not (target / marker).exists():
            shutil.rmtree(target)  # the remains of an interrupted build
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / marker).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def replace_folder(target: Path, build: Callable[[Path], object]) -> Path:
    """Run `build(tmp)` in a new folder beside `target`, then put it in `target`'s place (replacing a
    folder there): `target` is never half-written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.building-"))
    old = target.parent / f".{target.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
    try:
        build(tmp)
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return target
