"""Where wdqa keeps its on-disk caches (built models and suites, embeddings, LLM replies): $WDQA_CACHE, else the platform's user cache dir.

Owns the location only; each cache owns its own file format.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def wdqa_cache_dir() -> Path:
    """The folder for wdqa caches, created on first use."""
    root = Path(os.environ.get("WDQA_CACHE") or platformdirs.user_cache_dir("wdqa"))
    root.mkdir(parents=True, exist_ok=True)
    return root
