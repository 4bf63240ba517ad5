"""Where wdqa keeps its on-disk caches (built models and suites, embeddings, LLM replies): $WDQA_CACHE, else the platform's user cache dir.

Owns the location only; each cache owns its own file format.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import platformdirs


def wdqa_cache_dir() -> Path:
    """The folder for wdqa caches, created on first use."""
    root = Path(os.environ.get("WDQA_CACHE") or platformdirs.user_cache_dir("wdqa"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def open_sqlite_cache(path: Path, create_table: str) -> sqlite3.Connection:
    """A cache database shared safely between threads and processes (WAL), its table created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(create_table)
    return conn
