"""Publishing a finished suite to the Hugging Face Hub as a versioned dataset repo.

Owns the upload side only: verify the suite, create the repo, upload its files as they are (the
data card README.md is the Hub's dataset card), tag the version. Downloading is
`wdqa.core.hub`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.hub import REPO_TYPE
from ...core.model_revision import is_pinned
from ...core.suite import Suite, SuiteError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

# Local bookkeeping never goes to the Hub: download records, import state, huggingface_hub's cache.
IGNORE_PATTERNS = [".*", "**/.*", ".cache/**"]


@dataclass(frozen=True)
class PublishResult:
    repo_id: str
    commit: str
    revision: str
    tag: str | None
    url: str
    warnings: list[str] = field(default_factory=list)


def publish_suite(
    suite_dir: str | Path,
    repo_id: str,
    revision: str | None = None,
    tag: str | None = None,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
) -> PublishResult:
    """Upload a verified suite to `repo_id` (a dataset repo) and tag the commit.

    The upload goes through `HfApi.upload_folder`, which (with hf_xet installed, the default) is
    the resumable multi-commit large-folder upload: re-running after an interruption uploads
    only what is missing. `tag` defaults to `v<suite version>`.
    """
    from huggingface_hub import HfApi

    root = Path(suite_dir)
    suite = Suite.load(root, verify=False)
    # Every split must be present and intact: a published suite is complete by definition.
    missing = [s for s in suite.splits if not (root / "splits" / s).exists()]
    if missing:
        raise SuiteError(
            f"suite {root} lacks splits {missing}; download or generate them before publishing"
        )
    suite.verify(list(suite.splits))
    warnings = _card_warnings(root) + _base_model_warnings(suite)

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    branch = revision or "main"
    if branch != "main":
        api.create_branch(repo_id, branch=branch, repo_type=REPO_TYPE, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=root,
        repo_type=REPO_TYPE,
        revision=branch,
        commit_message=f"wdqa publish {suite.name} {suite.version} (base model {suite.base_model}@{suite.base_model_revision})",
        ignore_patterns=list(IGNORE_PATTERNS),
    )
    commit = info.oid
    tag = tag if tag is not None else _default_tag(suite.version)
    if tag:
        _tag(api, repo_id, tag, commit)
    return PublishResult(
        repo_id=repo_id,
        commit=commit,
        revision=branch,
        tag=tag or None,
        url=f"{api.endpoint}/datasets/{repo_id}",
        warnings=warnings,
    )


def _default_tag(version: str) -> str:
    return version if version.startswith("v") else f"v{version}"


def _tag(api: HfApi, repo_id: str, tag: str, commit: str) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.create_tag(repo_id, tag=tag, revision=commit, repo_type=REPO_TYPE)
    except HfHubHTTPError as err:
        if err.response is None or err.response.status_code != 409:
            raise
        # The tag exists: fine if it already names this commit (a re-run), an error otherwise.
        tagged = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=tag).sha
        if tagged != commit:
            raise SuiteError(
                f"tag {tag} already exists on {repo_id} at commit {tagged}, not {commit}; "
                "bump the suite version or pass another --tag"
            ) from err


def _base_model_warnings(suite: Suite) -> list[str]:
    if is_pinned(suite.base_model, suite.base_model_revision):
        return []
    return [
        f"suite {suite.name} names its base model {suite.base_model} at {suite.base_model_revision!r}, "
        "a name that can move: the model under the suite may change silently; rebuild it pinned to a "
        "commit (wdqa import-paper pins the commit it resolves)"
    ]


def _card_warnings(root: Path) -> list[str]:
    card = root / "README.md"
    if not card.exists():
        return [f"{root} has no README.md data card; the Hub page will be empty"]
    if not card.read_text(encoding="utf-8").startswith("---\n"):
        return [
            f"{card} has no YAML front matter; the Hub will not show the dataset's configs and licence"
        ]
    return []
