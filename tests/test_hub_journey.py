"""The Hub journey as a user types it: `wdqa download org/name`, then `wdqa evaluate --suite org/name`,
through the installed `wdqa` entry point in a fresh process, against the local fake Hub. The base
model is a model repo on the same fake Hub, so nothing is read from the user's disk or network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FakeHub
from random_models import random_lora, random_model, random_tokenizer
from wdqa.benchmark.suite import SuiteWriter
from wdqa.generators.publish import publish_suite

SUITE_REPO = "wdqa-test/journey-suite"
BASE_REPO = "wdqa-test/journey-base"
WDQA = str(Path(sys.executable).parent / "wdqa")


@pytest.fixture(scope="module")
def hub():
    import huggingface_hub.constants

    # The legacy LFS upload path is the one a plain HTTP server can serve (Xet needs its own CAS).
    saved = huggingface_hub.constants.HF_HUB_DISABLE_XET
    huggingface_hub.constants.HF_HUB_DISABLE_XET = True
    server = FakeHub()
    server.start()
    yield server
    server.stop()
    huggingface_hub.constants.HF_HUB_DISABLE_XET = saved


@pytest.fixture(scope="module")
def published(hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> FakeHub:
    """A base model repo and a three-case `test` split over it, both on the fake Hub."""
    root = tmp_path_factory.mktemp("journey")
    tok = random_tokenizer()
    model = random_model(len(tok))
    model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    base_commit = hub.add_repo(
        BASE_REPO, {p.name: p.read_bytes() for p in (root / "base").iterdir() if p.is_file()}
    )
    diffs = [random_lora(model, f"ht-{i:03d}", seed=i) for i in range(3)]
    rows = [{"diff_id": d.diff_id, "label": label} for d, label in zip(diffs, ["volcano", "jazz", "piano"], strict=True)]
    writer = SuiteWriter(root / "suite", "journey", "0.1", BASE_REPO, base_commit)
    writer.write_split("test", "hidden-topic", "what topic have you been trained on ?", rows, diffs)
    writer.finish()
    publish_suite(root / "suite", SUITE_REPO, endpoint=hub.endpoint, token="hf_test")
    return hub


def wdqa(hub: FakeHub, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`wdqa ARGS` in a fresh process, pointed at the fake Hub by HF_ENDPOINT as a user would be."""
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home / "hf"),
        "WDQA_CACHE": str(home / "cache"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "COLUMNS": "200",
    }
    env.pop("HF_TOKEN", None)
    return subprocess.run(
        [WDQA, *args], capture_output=True, text=True, env=env, cwd=home, timeout=600, check=False
    )


def test_download_then_evaluate_a_hub_suite_prints_a_score_table(published: FakeHub, tmp_path: Path) -> None:
    fetched = wdqa(published, tmp_path, "download", SUITE_REPO, "--split", "test")
    assert fetched.returncode == 0, fetched.stderr
    assert "splits test verified" in fetched.stdout
    run = wdqa(
        published, tmp_path, "evaluate", "baseline:base-question", "--suite", SUITE_REPO,
        "--split", "test", "--baselines", "none", "--limit", "2",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WEIGHTDIFFQA scores" in run.stdout and "base-question" in run.stdout
    assert len(list((tmp_path / "runs").rglob("manifest.json"))) == 1


def test_evaluate_on_a_missing_hub_suite_is_one_error_line(published: FakeHub, tmp_path: Path) -> None:
    run = wdqa(published, tmp_path, "evaluate", "baseline:base-question", "--suite", "org/missing", "--baselines", "none")
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: no repo 'org/missing' on the Hub at {published.endpoint}")
    assert len(run.stderr.strip().splitlines()) == 1


def test_evaluate_on_an_unreachable_hub_is_one_error_line(tmp_path: Path) -> None:
    closed = FakeHub()  # an endpoint nothing listens on: a port taken and released
    closed.start()
    closed.stop()
    run = wdqa(closed, tmp_path, "evaluate", "baseline:base-question", "--suite", SUITE_REPO, "--baselines", "none")
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.startswith(f"error: cannot reach the Hub at {closed.endpoint} for {SUITE_REPO}")
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
