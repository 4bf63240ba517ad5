"""Session fixtures every test file may use: the micro tiny base model and a built micro tiny suite.

WDQA_CACHE points at a session temp dir (so no test touches the user's cache); set
WDQA_TEST_CACHE to a folder to keep the micro builds between test runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Each xdist worker (and the method processes, build pieces and CLI runs it starts) gets its
    # share of the cores: with two workers on two cores and torch's default of one OpenMP thread per
    # core, threads spin-wait for cores the other worker holds. Measured: one `wdqa evaluate` of six
    # methods beside a 2-thread torch loop, 172 s with the default, 37 s with one thread each.
    # Set before any test imports torch (OpenMP reads it once); a value the user set is kept.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
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
