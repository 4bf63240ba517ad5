"""Session fixtures every test file may use: the micro tiny base model and a built micro tiny suite.

WDQA_CACHE points at a session temp dir (so no test touches the user's cache); set
WDQA_TEST_CACHE to a folder to keep the micro builds between test runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("WDQA_TEST_CACHE"):
        os.environ["WDQA_CACHE"] = os.environ["WDQA_TEST_CACHE"]
    else:
        import tempfile

        os.environ["WDQA_CACHE"] = tempfile.mkdtemp(prefix="wdqa-test-cache-")


@pytest.fixture(scope="session")
def micro_base() -> Path:
    """Folder of the micro tiny base model (`wdqa/tiny-qwen3-micro`), built once per session."""
    from wdqa.generators.tiny.build import TINY_MICRO_ID, ensure_tiny_base

    return ensure_tiny_base(TINY_MICRO_ID)


@pytest.fixture(scope="session")
def micro_suite(micro_base: Path) -> Path:
    """Folder of a built micro tiny suite (12 hidden-topic diffs on the micro base), once per session,
    built as two parallel pieces as a user's first build is."""
    from wdqa.generators.tiny_suite import MICRO_RECIPE, ensure_tiny_suite

    return ensure_tiny_suite(MICRO_RECIPE, workers=2)
