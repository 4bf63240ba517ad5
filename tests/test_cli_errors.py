"""Every expected error reaches the user as one line, `error: <message>`, never a traceback; `--debug`
shows the traceback. Most cases go through typer's CliRunner on the app; the entry point itself
(`wdqa`, as a user types it) is run as a subprocess for the behaviours that live in `main()`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hub import FakeHub
from local_openai_server import LocalOpenAIServer, RawBody
from random_models import random_model
from test_suite_format import VOCAB, write_suite
from typer.testing import CliRunner
from wdqa.benchmark.records import AnswerRecord, RunFolder
from wdqa.benchmark.run_manifest import RunManifest, RunMethod, RunSuite
from wdqa.cli import app, error_line
from wdqa.core.suite import Suite

runner = CliRunner()
WDQA = str(Path(sys.executable).parent / "wdqa")


def one_error_line(result, code: int = 1) -> str:  # noqa: ANN001 - click's Result
    """The single line a failed command printed on stderr; checks the exit status and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    write_suite(root, random_model(VOCAB))
    return root


# ---------------------------------------------------------------- suites, splits, paths


def test_a_missing_suite_path_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "baseline:base-question", "--suite", str(tmp_path / "missing"), "--baselines", "none"])
    assert "no suite" in one_error_line(result) and "missing" in result.stderr


def test_an_unknown_split_is_one_line_naming_the_known_ones(suite_dir: Path) -> None:
    result = runner.invoke(app, ["evaluate", "baseline:base-question", "--suite", str(suite_dir), "--split", "nope", "--baselines", "none"])
    assert "no split 'nope'; known splits: ['test']" in one_error_line(result)


def test_an_unknown_split_in_bench_is_one_line(suite_dir: Path) -> None:
    result = runner.invoke(app, ["bench", "eval", "--suite", str(suite_dir), "--split", "nope"])
    assert "no split 'nope'" in one_error_line(result)


def test_a_diff_that_is_not_in_the_suite_is_one_line(suite_dir: Path) -> None:
    assert "no diff 'ht-nope'" in one_error_line(runner.invoke(app, ["show-diff", str(suite_dir), "ht-nope"]))


def test_merging_missing_suites_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")])
    assert "is not a wdqa suite" in one_error_line(result)


def test_a_missing_run_is_one_line(tmp_path: Path) -> None:
    for args in (["judge", str(tmp_path / "run")], ["submit", str(tmp_path / "run")], ["report", str(tmp_path / "run")]):
        assert "is not a wdqa run" in one_error_line(runner.invoke(app, args), code=2)


def test_a_missing_bundle_is_one_line(tmp_path: Path) -> None:
    assert "does not exist" in one_error_line(runner.invoke(app, ["verify", str(tmp_path / "b.tar.gz")]), code=2)


def test_a_damaged_run_record_is_one_line_naming_file_and_line(suite_dir: Path, tmp_path: Path) -> None:
    run = judged_run(suite_dir, tmp_path)
    run.answers_path.write_text('{"case_id": "test/ht-000", "split": "test", "diff_id": "ht-000", "answer": "x"}\n{oops\n{"case_id": "test/ht-001"}\n')
    line = one_error_line(runner.invoke(app, ["judge", str(run.path)]))
    assert "answers.jsonl line 2 is not valid JSON" in line


# ---------------------------------------------------------------- WDQA_CACHE


def test_a_wdqa_cache_that_is_a_file_is_one_line_naming_it(tmp_path: Path) -> None:
    cache = tmp_path / "cache-file"
    cache.write_text("not a folder")
    result = runner.invoke(app, ["evaluate", "baseline:base-question", "--baselines", "none"], env={"WDQA_CACHE": str(cache)})
    line = one_error_line(result)
    assert f"cannot use {cache} (WDQA_CACHE)" in line and "it is a file" in line and "set WDQA_CACHE" in line


def test_a_wdqa_cache_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["download"], env={"WDQA_CACHE": str(tmp_path / "file" / "cache")})
    assert "set WDQA_CACHE to a folder you can write" in one_error_line(result)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to mount a read-only folder")
def test_a_read_only_wdqa_cache_is_one_line(tmp_path: Path) -> None:
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    # A real read-only file system: a bind mount remounted read-only in a private mount namespace.
    script = f'mount --bind "{cache}" "{cache}" && mount -o remount,ro,bind "{cache}" "{cache}" && exec "$@"'
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount here: {probe.stderr.decode().strip()}")
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", WDQA, "evaluate", "baseline:base-question", "--baselines", "none"],
        capture_output=True, text=True, env={**os.environ, "WDQA_CACHE": str(cache)}, timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: cannot use {cache} (WDQA_CACHE) for wdqa's cache: read-only file system; set WDQA_CACHE to a folder you can write"


# ---------------------------------------------------------------- the Hub


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    server = FakeHub()
    server.start()
    yield server
    server.stop()


def test_a_hub_repo_that_does_not_exist_is_one_line(hub: FakeHub, tmp_path: Path) -> None:
    result = runner.invoke(app, ["download", "org/no-such-suite", "--endpoint", hub.endpoint, "--out", str(tmp_path / "dl")])
    line = one_error_line(result)
    assert f"no repo 'org/no-such-suite' on the Hub at {hub.endpoint}: check the name, or set HF_TOKEN" in line


def test_a_hub_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    result = runner.invoke(app, ["download", "org/suite", "--endpoint", endpoint, "--out", str(tmp_path / "dl")])
    line = one_error_line(result)
    assert f"cannot reach the Hub at {endpoint} for org/suite" in line and "check your network" in line


# ---------------------------------------------------------------- an LLM judge


def judged_run(suite_dir: Path, tmp_path: Path) -> RunFolder:
    suite = Suite.load(suite_dir)
    run = RunFolder(tmp_path / "run")
    run.write_manifest(RunManifest(RunMethod("m"), RunSuite(suite.name, root=str(suite.root), content_sha256=suite.content_sha256),
                                   splits=("test",)))
    run.append_answers([AnswerRecord("test/ht-000", "test", "ht-000", "topic 0"), AnswerRecord("test/ht-001", "test", "ht-001", "Cooking")])
    return run


@pytest.fixture
def llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalOpenAIServer, Path]]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WDQA_JUDGE_MODEL", "WDQA_JUDGE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "judge.toml"
    config.write_text(f'[judge]\napi_key = "k"\nmax_retries = 1\nbackoff_s = 0.01\nconcurrency = 1\ncache_path = "{tmp_path / "replies.sqlite"}"\n')
    with LocalOpenAIServer() as server:
        yield server, config


def judge_with(llm: tuple[LocalOpenAIServer, Path], run: RunFolder, script: list) -> object:
    server, config = llm
    server.state.script = script
    return runner.invoke(app, ["judge", str(run.path), "--judge", "openai:m", "--base-url", server.base_url, "--judge-config", str(config)])


def test_an_llm_that_refuses_the_key_is_one_line_naming_the_variable(llm, suite_dir: Path, tmp_path: Path) -> None:
    line = one_error_line(judge_with(llm, judged_run(suite_dir, tmp_path), [401]))
    assert "HTTP 401" in line and "set OPENAI_API_KEY" in line


def test_an_llm_that_keeps_failing_is_one_line(llm, suite_dir: Path, tmp_path: Path) -> None:
    line = one_error_line(judge_with(llm, judged_run(suite_dir, tmp_path), [500] * 4))  # two cases, two tries each
    assert "still failing on case test/ht-00" in line and "after 2 tries" in line and "rerun" in line


def test_an_llm_reply_that_is_not_json_is_one_line_quoting_it(llm, suite_dir: Path, tmp_path: Path) -> None:
    line = one_error_line(judge_with(llm, judged_run(suite_dir, tmp_path), [RawBody(b"<html>Gateway timeout</html>")]))
    assert "no chat completion; the body starts b'<html>Gateway timeout</html>'" in line


# ---------------------------------------------------------------- help, and what is not expected


def test_generate_extra_help_shows_its_bracketed_text() -> None:
    result = runner.invoke(app, ["generate", "extra", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "finetuning-data[@rev][/path]" in result.output


def test_a_bug_is_not_an_expected_error() -> None:
    assert error_line(KeyError("x")) is None and error_line(ConnectionResetError(104, "reset")) is None
    assert error_line(FileNotFoundError(2, "No such file or directory", "/x")) == "No such file or directory: /x; check the path"


# ---------------------------------------------------------------- the entry point, as typed


def wdqa(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([WDQA, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


def test_the_entry_point_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    done = wdqa("evaluate", "baseline:base-question", "--suite", str(tmp_path / "missing"), "--baselines", "none")
    assert done.returncode == 1
    assert done.stderr.startswith("error: no suite") and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.slow  # ~20 s: a full evaluate to reach the traceback; the default run stays near 15 min on 2 cores
def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    for done in (
        wdqa("--debug", "evaluate", "baseline:base-question", "--suite", str(tmp_path / "missing"), "--baselines", "none"),
        wdqa("evaluate", "baseline:base-question", "--suite", str(tmp_path / "missing"), "--baselines", "none", WDQA_DEBUG="1"),
    ):
        assert done.returncode == 1 and "Traceback" in done.stderr and "SuiteError" in done.stderr


def test_a_usage_error_keeps_exit_status_2() -> None:
    assert wdqa("evaluate", "--no-such-flag").returncode == 2


def test_a_torn_record_is_one_warning_line(llm, suite_dir: Path, tmp_path: Path) -> None:
    server, config = llm
    run = judged_run(suite_dir, tmp_path)
    with open(run.answers_path, "ab") as fh:
        fh.write(b'{"case_id": "test/ht-002", "split": "te')
    done = wdqa("judge", str(run.path), "--judge", "openai:m", "--base-url", server.base_url, "--judge-config", str(config))
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert done.returncode == 0, done.stderr
    assert warnings and all("answers.jsonl" in w and "case test/ht-002" in w for w in warnings)
    assert "TornRecordWarning" not in done.stderr
