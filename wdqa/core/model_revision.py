"""The base model's pinned revision: the Hub commit a suite's diffs were made against, or, for a local
folder, the sha256 of its config and weight files. Import pins it; `wdqa evaluate` checks that the
model it is about to load is that one. Loading the model is `models.py`'s job, not this module's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import WdqaError

LOCAL_PREFIX = "sha256:"  # a local folder's pin: "sha256:<hex>" over its config and weight files
TINY_PREFIX = "wdqa/tiny"  # the project's own model: its build recipe's revision pins it (generators/tiny)
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin")
OVERRIDE_FLAG = "--allow-model-revision-mismatch"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class ModelRevisionError(WdqaError):
    """The base model at hand is not the one a suite was made against, or its revision cannot be resolved."""


class ModelRevisionNotFound(ModelRevisionError):
    """The Hub has the model but not the revision asked for."""


@dataclass(frozen=True)
class RevisionCheck:
    """What `check_base_model` found: the revision to load and, when it differs from the suite's pin
    (allowed by the override), a one-line warning."""

    revision: str
    warning: str | None = None


def is_pinned(model_id: str, revision: str) -> bool:
    """True when `revision` names one fixed model: a Hub commit sha, a local content hash, or the tiny
    model's build revision; False for a branch or tag such as "main", which can move."""
    return model_id.startswith(TINY_PREFIX) or revision.startswith(LOCAL_PREFIX) or bool(_COMMIT.match(revision))


def local_model_hash(folder: Path) -> str:
    """`sha256:<hex>` over the names and contents of a model folder's config and weight files (the
    top level, which is what `from_pretrained` reads); dot-files are bookkeeping and not hashed."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ModelRevisionError(f"{folder} holds no config or weight files (*.json, *.safetensors, *.bin); is it a model folder?")
    digest = hashlib.sha256()
    for path in files:
        file_hash = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                file_hash.update(chunk)
        digest.update(f"{path.name}\0{file_hash.hexdigest()}\n".encode())
    return LOCAL_PREFIX + digest.hexdigest()


def hub_commit(model_id: str, revision: str | None = None, endpoint: str | None = None) -> str:
    """The commit a Hub model's branch, tag or sha points at now (HF_ENDPOINT or `endpoint` picks the Hub)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    from .hub import hub_errors

    try:
        with hub_errors(model_id, endpoint, ModelRevisionError):
            sha = HfApi(endpoint=endpoint).model_info(model_id, revision=revision or "main").sha
    except RevisionNotFoundError as err:
        raise ModelRevisionNotFound(f"base model {model_id} has no revision {revision!r} on the Hub") from err
    if sha is None:
        raise ModelRevisionError(f"the Hub did not resolve base model {model_id}@{revision or 'main'} to a commit")
    return sha


def pin_base_model(model_id: str, revision: str | None = None, endpoint: str | None = None) -> str:
    """The pin to record for a base model at import time: its folder's content hash, or the Hub
    commit that `revision` (default main) resolves to now."""
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        return local_model_hash(folder)
    return hub_commit(model_id, revision, endpoint)


def check_base_model(model_id: str, pinned: str, allow_mismatch: bool = False) -> RevisionCheck:
    """Refuse (ModelRevisionError) a base model that is not the one the suite pins, unless allowed.

    A local folder is hashed and compared with a `sha256:` pin. A Hub commit pin must still exist
    on the Hub: if it does, loading at that commit loads exactly it; if it is gone (a rewritten
    history), the override evaluates on the model's current main commit instead. Offline, or with
    the Hub out of reach, the pinned commit is left to the loader (from the local cache). A branch
    or tag pin (older suites: "main") cannot be compared and is loaded as it is.
    """
    if model_id.startswith(TINY_PREFIX):
        return RevisionCheck(pinned)
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        if not pinned.startswith(LOCAL_PREFIX):
            return RevisionCheck(pinned)
        found = local_model_hash(folder)
        if found == pinned:
            return RevisionCheck(pinned)
        what = f"base model folder {folder} has content {found[:19]}… but the suite was made against {pinned[:19]}…"
        if not allow_mismatch:
            raise ModelRevisionError(f"{what}; restore the folder the suite was made with, or pass {OVERRIDE_FLAG} to evaluate on it anyway")
        return RevisionCheck(pinned, f"{what}; evaluating on it anyway ({OVERRIDE_FLAG})")
    from huggingface_hub import constants

    if not _COMMIT.match(pinned) or constants.HF_HUB_OFFLINE:
        return RevisionCheck(pinned)
    try:
        return RevisionCheck(hub_commit(model_id, pinned))
    except ModelRevisionNotFound as err:
        what = f"base model {model_id} has no commit {pinned} on the Hub, the one the suite was made against"
        if not allow_mismatch:
            raise ModelRevisionError(
                f"{what}; ask the suite's publisher, or pass {OVERRIDE_FLAG} to evaluate on its current main"
            ) from err
        current = hub_commit(model_id)
        return RevisionCheck(current, f"{what}; evaluating on its current main, commit {current} ({OVERRIDE_FLAG})")
    except ModelRevisionError:
        # The Hub cannot be asked (offline, unreachable, no access): the loader reads that exact
        # commit from the local cache if it is there, and says what is wrong if it is not.
        return RevisionCheck(pinned)


def check_requested_revision(model_id: str, requested: str, pinned: str, allow_mismatch: bool = False) -> RevisionCheck:
    """A revision the user asked for (`--model-args revision=...`): the Hub commit it resolves to,
    refused (ModelRevisionError) when it is not the suite's pin, unless allowed."""
    if model_id.startswith(TINY_PREFIX) or Path(model_id).expanduser().is_dir():
        raise ModelRevisionError(
            f"revision={requested} applies to a Hub base model, and {model_id} is a local model; leave revision out"
        )
    commit = hub_commit(model_id, requested)
    if commit == pinned or requested == pinned:
        return RevisionCheck(commit)
    what = f"base model {model_id} revision {requested} is commit {commit}, not {pinned}, the one the suite was made against"
    if not allow_mismatch:
        raise ModelRevisionError(f"{what}; pass {OVERRIDE_FLAG} to evaluate on it anyway")
    return RevisionCheck(commit, f"{what}; evaluating on it anyway ({OVERRIDE_FLAG})")
