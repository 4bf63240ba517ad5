"""Fetching a suite from the Hugging Face Hub (or a local folder with the same layout) and verifying it.

Owns where a suite comes from and that what arrived is what the manifest promised; the format
itself lives in `suite.py`, publishing in `wdqa.generators.publish.hub`. The embedded `tiny` suite is
built locally and is not this module's business.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from .cache_dir import wdqa_cache_dir
from .suite import MANIFEST, Suite, SuiteError, atomic_write_text

# A Hub suite is a dataset repo; its files keep the suite layout exactly (see suite.py).
REPO_TYPE = "dataset"
DOWNLOAD_RECORD = (
    ".wdqa-download.json"  # a dot-file: never hashed into, nor uploaded with, the suite
)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class SuiteSource:
    """Where a suite comes from: a Hub dataset repo or a local folder."""

    kind: str  # "hub" or "local"
    location: str  # repo id, or an absolute folder path


@dataclass(frozen=True)
class DownloadRecord:
    """What `download_suite` fetched, kept beside the suite so a run can cite the exact commit."""

    source: str
    repo_id: str | None
    revision: str | None  # as asked (branch, tag or sha)
    commit: str | None  # the commit sha it resolved to
    splits: list[str] | None  # None: every split


def parse_source(source: str) -> SuiteSource:
    """`hf://org/name` or `org/name` -> Hub; `file://path` or an existing folder -> local."""
    if source.startswith("hf://"):
        repo_id = source[len("hf://") :].strip("/")
        if not _REPO_ID.match(repo_id):
            raise SuiteError(f"{source!r} is not a Hub dataset id; expected hf://org/name")
        return SuiteSource("hub", repo_id)
    if source.startswith("file://"):
        return SuiteSource("local", str(Path(source[len("file://") :]).expanduser().resolve()))
    path = Path(source).expanduser()
    if path.exists():
        return SuiteSource("local", str(path.resolve()))
    if _REPO_ID.match(source):
        return SuiteSource("hub", source)
    raise SuiteError(
        f"cannot find suite {source!r}: it is neither an existing folder nor a Hub id like org/name "
        "(use hf://org/name for a Hub dataset or file:///path for a local folder)"
    )


def default_local_dir(repo_id: str) -> Path:
    """Per-user cache folder for a Hub suite (override the root with WDQA_CACHE)."""
    return wdqa_cache_dir() / "suites" / repo_id.replace("/", "--")


def allow_patterns(splits: Sequence[str] | None) -> list[str]:
    """The files some splits need: their own folders plus the manifest, the data card and shared
    adapters; every split when `splits` is None."""
    shared = [MANIFEST, "README.md", "dit/*"]
    return shared + ([f"splits/{s}/*" for s in splits] if splits else ["splits/*"])


def download_suite(
    source: str,
    splits: Sequence[str] | None = None,
    revision: str | None = None,
    local_dir: str | Path | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> Path:
    """Fetch a suite (or some of its splits; None: all), verify every sha256, and return its folder.

    Hub downloads pin the revision to one commit (recorded in `.wdqa-download.json`) and resume
    files left incomplete by an interrupted run. A file whose hash disagrees with the manifest is
    fetched again once; if it still disagrees the suite is refused with the file's name.
    """
    if isinstance(splits, str):  # one name is not a sequence of one-letter splits
        raise TypeError(f"download_suite takes a list of splits, not the string {splits!r}")
    wanted = list(dict.fromkeys(splits)) if splits else None
    where = parse_source(source)
    if where.kind == "local":
        root = _from_local(Path(where.location), wanted, revision, local_dir)
        record = DownloadRecord(source, None, None, None, wanted)
    else:
        with hub_errors(where.location, endpoint):
            root, commit = _from_hub(where.location, wanted, revision, local_dir, token, endpoint)
        record = DownloadRecord(source, where.location, revision, commit, wanted)
    _check_splits_known(root, wanted)
    try:
        Suite.load(root, splits=wanted)
    except SuiteError:
        if where.kind != "hub":
            raise
        # A local file damaged after an earlier download: fetch the mismatching files once more.
        with hub_errors(where.location, endpoint):
            _refetch_mismatches(root, where.location, record.commit, wanted, token, endpoint)
        Suite.load(root, splits=wanted)
    atomic_write_text(root / DOWNLOAD_RECORD, json.dumps(asdict(record), indent=2))
    return root


def read_download_record(root: str | Path) -> DownloadRecord | None:
    path = Path(root) / DOWNLOAD_RECORD
    if not path.exists():
        return None
    return DownloadRecord(**json.loads(path.read_text()))


# ---------------------------------------------------------------- sources


def _from_local(
    src: Path, splits: Sequence[str] | None, revision: str | None, local_dir: str | Path | None
) -> Path:
    if revision is not None:
        raise SuiteError(f"{src} is a local folder: it has no revisions (drop --revision)")
    if not (src / MANIFEST).exists():
        raise SuiteError(f"{src} is not a wdqa suite: {MANIFEST} is missing")
    if local_dir is None or Path(local_dir).resolve() == src:
        return src
    dest = Path(local_dir)
    from fnmatch import fnmatch

    patterns = allow_patterns(splits)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if path.is_file() and not rel.startswith(".") and any(fnmatch(rel, p) for p in patterns):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return dest


def resolve_commit(
    repo_id: str, revision: str | None, endpoint: str | None = None, token: str | None = None,
    error: type[Exception] = SuiteError,
) -> str:
    """The commit a branch or tag of a Hub dataset points at now: reading every file at one commit
    keeps a download consistent even if someone pushes meanwhile. Errors are raised as `error`."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    try:
        with hub_errors(repo_id, endpoint, error):
            commit = HfApi(endpoint=endpoint, token=token).repo_info(
                repo_id, repo_type=REPO_TYPE, revision=revision or "main"
            ).sha
    except RevisionNotFoundError as err:
        raise error(f"Hub dataset {repo_id} has no revision {revision!r}") from err
    if commit is None:
        raise error(f"the Hub did not resolve {repo_id}@{revision or 'main'} to a commit")
    return commit


@contextmanager
def hub_errors(
    repo_id: str, endpoint: str | None = None, error: type[Exception] = SuiteError
) -> Iterator[None]:
    """What the Hub client raises when a repo id, token or the network is wrong, as `error` (a
    WdqaError) naming the repo and what to check. A revision not found passes through for the
    caller to name; anything else (a bug, a local disk error) passes through unchanged."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    # HF_ENDPOINT (read by huggingface_hub) is where the request went when no endpoint was given.
    endpoint = endpoint or constants.ENDPOINT
    hub = "the Hugging Face Hub" if endpoint.rstrip("/") == "https://huggingface.co" else f"the Hub at {endpoint}"
    try:
        yield
    except RevisionNotFoundError:
        raise
    except GatedRepoError as err:
        raise error(
            f"{repo_id} on {hub} is gated: accept its terms on its Hub page, then set HF_TOKEN"
        ) from err
    except RepositoryNotFoundError as err:
        raise error(
            f"no repo {repo_id!r} on {hub}: check the name, or set HF_TOKEN if it is private"
        ) from err
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        fix = "set HF_TOKEN to a token with access" if status in (401, 403) else "retry later"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise error(f"{hub} refused {repo_id} (HTTP {status}: {first}); {fix}") from err
    except Exception as err:
        if not (isinstance(err, LocalEntryNotFoundError) or _is_network_error(err)):
            raise
        raise error(
            f"cannot reach {hub} for {repo_id} ({err}); check your network "
            "(or HF_ENDPOINT, HF_HUB_OFFLINE), or give a local suite folder"
        ) from err


def _is_network_error(err: BaseException) -> bool:
    # huggingface_hub's transport changed (requests, then httpx): their connection and timeout
    # errors are recognised by their base classes' names rather than by importing either library.
    if isinstance(err, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return any(c.__name__ in ("TransportError", "RequestException") for c in type(err).__mro__)


def _from_hub(
    repo_id: str,
    splits: Sequence[str] | None,
    revision: str | None,
    local_dir: str | Path | None,
    token: str | None,
    endpoint: str | None,
) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    commit = resolve_commit(repo_id, revision, endpoint, token)
    root = Path(local_dir) if local_dir is not None else default_local_dir(repo_id)
    snapshot_download(
        repo_id,
        repo_type=REPO_TYPE,
        revision=commit,
        local_dir=root,
        allow_patterns=allow_patterns(splits),
        token=token,
        endpoint=endpoint,
    )
    return root, commit


def _check_splits_known(root: Path, splits: Sequence[str] | None) -> None:
    if not splits:
        return
    suite = Suite.load(root, verify=False)
    for split in splits:
        if split not in suite.splits:
            raise SuiteError(
                f"suite {suite.name} has no split {split!r}; known splits: {sorted(suite.splits)}"
            )


def _refetch_mismatches(
    root: Path,
    repo_id: str,
    commit: str | None,
    splits: Sequence[str] | None,
    token: str | None,
    endpoint: str | None,
) -> None:
    from huggingface_hub import hf_hub_download

    from .suite import sha256_file

    suite = Suite.load(root, verify=False)
    prefixes = tuple(f"splits/{s}/" for s in splits) if splits else ("splits/",)
    for rel, expected in suite.files.items():
        if rel.startswith("splits/") and not rel.startswith(prefixes):
            continue
        path = root / rel
        if path.exists() and sha256_file(path) == expected:
            continue
        hf_hub_download(
            repo_id,
            rel,
            repo_type=REPO_TYPE,
            revision=commit,
            local_dir=root,
            force_download=True,
            token=token,
            endpoint=endpoint,
        )
