"""Where wdqa keeps its on-disk caches (built models and suites, embeddings, LLM replies): $WDQA_CACHE, else the platform's user cache dir.

Owns the location only; each cache owns its own file format.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from pathlib import Path

import platformdirs

from .errors import WdqaError


class CacheDirError(WdqaError):
    """The cache folder cannot be created or written (a file in its place, read-only, no permission)."""


_writable: set[Path] = set()  # folders already shown writable in this process


def wdqa_cache_dir() -> Path:
    """The folder for wdqa caches, created on first use and checked writable (once per process)."""
    from_env = os.environ.get("WDQA_CACHE")
    root = Path(from_env or platformdirs.user_cache_dir("wdqa"))
    if root in _writable:
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as err:
        where = "WDQA_CACHE" if from_env else "the default cache folder"
        why = "it is a file, not a folder" if root.is_file() else (err.strerror or str(err)).lower()
        raise CacheDirError(
            f"cannot use {root} ({where}) for wdqa's cache: {why}; set WDQA_CACHE to a folder you can write"
        ) from err
    _writable.add(root)
    return root


def open_sqlite_cache(path: Path, create_table: str) -> sqlite3.Connection:
    """A cache database shared safely between threads and processes (WAL), its table created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(create_table)
    return conn


class SqliteCache:
    """A cache file opened on first use (so building one costs nothing) and guarded by a lock, since
    threads share the connection. Subclasses name the file and the table and own the queries."""

    filename: str
    create_table: str

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else wdqa_cache_dir() / self.filename
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_sqlite_cache(self.path, self.create_table)
        return self._conn
