"""Fetching a base model from the Hub into the local cache, with progress, before anything loads it.

Owns the download (huggingface_hub's own bars on a terminal, plain lines otherwise), what a rerun
after a cut download fetches (the files not yet complete: huggingface_hub >= 2 resumes a cut file
within one run, by Range requests, but deletes a partial file when it gives up), and one-line
errors for a model that cannot be fetched. Which revision to fetch is `model_revision.py`'s business; loading is `models.py`'s.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import WdqaError

# What from_pretrained reads: configs, tokenizer files and chat templates, safetensors weights.
# `.bin` weights are fetched only when a repo has no safetensors (many repos hold both).
MODEL_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]
LEGACY_WEIGHTS = ["*.bin"]
# httpx's errors for a connection lost while a file's bytes were arriving (named, not imported: the
# transport library is huggingface_hub's choice); a Hub that cannot be reached at all is hub_errors'.
MID_TRANSFER_ERRORS = ("RemoteProtocolError", "ReadError", "ReadTimeout")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelLoadError(WdqaError):
    """The base model a suite names cannot be fetched or loaded (unknown id, offline, gated, broken)."""


def is_hub_id(model_id: str) -> bool:
    return bool(_HUB_ID.match(model_id))


def fetch_base_model(model_id: str, revision: str | None = None, endpoint: str | None = None) -> Path:
    """The local snapshot folder of Hub model `model_id` at `revision`, downloading what is missing
    (a download cut short earlier resumes where it stopped)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RevisionNotFoundError

    from .hub import hub_errors

    if not is_hub_id(model_id):
        raise ModelLoadError(
            f"base model {model_id!r} is neither an existing folder nor a Hub model id like org/name; "
            "check the path (relative to where you run wdqa) or the model id"
        )
    where = f"{model_id}@{revision}" if revision else model_id
    try:
        with hub_errors(model_id, endpoint, ModelLoadError), _progress_bars_on():
            kwargs: dict[str, Any] = dict(revision=revision, endpoint=endpoint, tqdm_class=_progress_class())
            folder = Path(snapshot_download(model_id, allow_patterns=MODEL_PATTERNS, **kwargs))
            if not any(folder.glob("*.safetensors")):
                folder = Path(snapshot_download(model_id, allow_patterns=LEGACY_WEIGHTS, **kwargs))
    except RevisionNotFoundError as err:
        raise ModelLoadError(f"base model {model_id} has no revision {revision!r} on the Hub; check the revision") from err
    except ModelLoadError as err:
        cause = err.__cause__
        if cause is not None and type(cause).__name__ in MID_TRANSFER_ERRORS:
            raise ModelLoadError(
                f"the download of base model {where} stopped ({type(cause).__name__}: {_first_line(cause)}); "
                "run the command again: it fetches only the files not yet complete"
            ) from cause
        raise
    return folder


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextmanager
def _progress_bars_on() -> Iterator[None]:
    """huggingface_hub's bars on for the download, unless the user turned them off
    (HF_HUB_DISABLE_PROGRESS_BARS); transformers turns them off globally when it loads a model."""
    from huggingface_hub import constants
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    turned_on = are_progress_bars_disabled() and constants.HF_HUB_DISABLE_PROGRESS_BARS is not True
    if turned_on:
        enable_progress_bars()
    try:
        yield
    finally:
        if turned_on:
            disable_progress_bars()


def _progress_class() -> type | None:
    """huggingface_hub's own bars on a terminal; on a pipe or a log file, plain lines (a bar redrawn
    with carriage returns makes one unreadable line in a log)."""
    if sys.stderr.isatty():
        return None
    return plain_line_progress()


@functools.cache
def plain_line_progress() -> type:
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _PlainLineProgress(hf_tqdm):  # type: ignore[misc,valid-type]
        """A progress bar printed as whole lines: when it starts, every 10 s, and when it ends."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0), 10.0)
            kwargs.pop("bar_format", None)  # the Xet formats assume a redrawn bar
            super().__init__(*args, **kwargs)

        def display(self, msg: str | None = None, pos: int | None = None) -> bool:
            if not self.total and not self.n:  # an aggregate bar not yet sized says nothing
                return True
            line = (msg or self.__str__()).strip()
            if line and line != getattr(self, "_last_line", None):
                self._last_line = line
                self.fp.write(line + "\n")
                self.fp.flush()
            return True

    return _PlainLineProgress

