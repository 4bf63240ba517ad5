"""The Hub journey as a user types it: `wdqa download org/name`, then `wdqa evaluate --suite org/name`,
through the installed `wdqa` entry point in a fresh process, against the local fake Hub. The base
model is a model repo on the same fake Hub, so nothing is read from the user's disk or network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fake_hub import FakeHub, running_fake_hub
from random_models import random_lora, random_model, random_tokenizer
from wdqa.core.model_revision import OVERRIDE_FLAG
from wdqa.core.suite import Suite, SuiteWriter
from wdqa.generators.publish.hub import publish_suite

SUITE_REPO = "wdqa-test/journey-suite"
BASE_REPO = "wdqa-test/journey-base"
WDQA = str(Path(sys.executable).parent / "wdqa")


@pytest.fixture(scope="module")
def hub():
    with running_fake_hub() as server:
        yield server


@pytest.fixture(scope="module")
def base(hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, str]:
    """A random Qwen3 base model as a model repo on the fake Hub: the model and the repo's commit."""
    folder = tmp_path_factory.mktemp("base")
    tok = random_tokenizer()
    model = random_model(len(tok))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    commit = hub.add_repo(BASE_REPO, {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
    return model, commit


def publish_small_suite(hub: FakeHub, root: Path, repo_id: str, model: torch.nn.Module, base_revision: str) -> None:
    """A three-case `test` split over the fake Hub's base model, published as `repo_id`."""
    diffs = [random_lora(model, f"ht-{i:03d}", seed=i) for i in range(3)]
    rows = [{"diff_id": d.diff_id, "label": label} for d, label in zip(diffs, ["volcano", "jazz", "piano"], strict=True)]
    writer = SuiteWriter(root, "journey", "0.1", BASE_REPO, base_revision)
    writer.write_split("test", "hidden-topic", "what topic have you been trained on ?", rows, diffs)
    writer.finish()
    publish_suite(root, repo_id, endpoint=hub.endpoint, token="hf_test")


@pytest.fixture(scope="module")
def published(hub: FakeHub, base: tuple[torch.nn.Module, str], tmp_path_factory: pytest.TempPathFactory) -> FakeHub:
    model, commit = base
    publish_small_suite(hub, tmp_path_factory.mktemp("suite"), SUITE_REPO, model, commit)
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
    # A user's shell, not this test process's (which a developer may run offline).
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(name, None)
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
    # The base model's first download showed its progress: whole lines (stderr is a pipe here).
    assert "Fetching" in run.stderr and "100%" in run.stderr and "\r" not in run.stderr


def test_a_base_model_revision_the_hub_lacks_is_one_error_line(published: FakeHub, tmp_path: Path) -> None:
    run = wdqa(
        published, tmp_path, "evaluate", "baseline:base-question", "--suite", SUITE_REPO, "--baselines", "none",
        "--model-args", "revision=no-such-branch",
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert line == f"error: base model {BASE_REPO} has no revision 'no-such-branch' on the Hub"


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


# ---------------------------------------------------------------- the base model's pinned revision


def test_import_paper_pins_the_hub_commit_of_the_base_model(
    published: FakeHub, base: tuple[torch.nn.Module, str], tmp_path: Path
) -> None:
    from test_import_paper import write_layout

    model, commit = base
    write_layout(tmp_path / "paper", model, "model.", n_files=1, per_file=2, dit=False)
    done = wdqa(
        published, tmp_path, "import-paper", "--source", str(tmp_path / "paper"), "--out", str(tmp_path / "suite"),
        "--base-model", BASE_REPO,
    )
    assert done.returncode == 0, done.stderr
    suite = Suite.load(tmp_path / "suite")
    assert suite.base_model_revision == commit
    (split,) = suite.splits
    assert set(suite.index(split).base_model_revision) == {commit}


@pytest.mark.slow  # ~28 s: two evaluates against the fake Hub; the default run stays near 15 min on 2 cores
def test_evaluate_refuses_a_commit_the_hub_no_longer_has_unless_told(
    published: FakeHub, base: tuple[torch.nn.Module, str], tmp_path: Path
) -> None:
    model, commit = base
    publish_small_suite(published, tmp_path / "gone", "wdqa-test/gone-commit", model, "0123456789abcdef" * 2 + "01234567")
    args = ("evaluate", "baseline:base-question", "--suite", "wdqa-test/gone-commit", "--baselines", "none", "--limit", "1")
    refused = wdqa(published, tmp_path, *args)
    assert refused.returncode == 1
    # (the suite's download progress may come first on stderr; the error is one line, no traceback)
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in refused.stderr
    assert line.startswith(f"error: base model {BASE_REPO} has no commit 0123456789abcdef") and OVERRIDE_FLAG in line
    allowed = wdqa(published, tmp_path, *args, OVERRIDE_FLAG)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert f"evaluating on its current main, commit {commit}" in allowed.stderr
    (manifest,) = (tmp_path / "runs").rglob("manifest.json")
    assert json.loads(manifest.read_text())["suite"]["base_model_revision"] == commit


def test_a_local_base_model_folder_is_pinned_by_its_content(tmp_path: Path) -> None:
    from wdqa.core.model_revision import ModelRevisionError, check_base_model, pin_base_model

    tok = random_tokenizer()
    random_model(len(tok)).save_pretrained(tmp_path / "base")
    pin = pin_base_model(str(tmp_path / "base"))
    assert pin.startswith("sha256:") and check_base_model(str(tmp_path / "base"), pin).warning is None
    config = tmp_path / "base" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "rms_norm_eps": 0.5}))
    with pytest.raises(ModelRevisionError, match=f"restore the folder the suite was made with, or pass {OVERRIDE_FLAG}"):
        check_base_model(str(tmp_path / "base"), pin)
    assert "evaluating on it anyway" in check_base_model(str(tmp_path / "base"), pin, allow_mismatch=True).warning
