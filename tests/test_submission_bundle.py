"""`wdqa submit` / `wdqa verify`: honest bundles pass; bundles that do not add up are refused by name."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import typer
from _leaderboard_fixtures import JUDGE, KEY, PROMPT, make_run, make_suite
from typer.testing import CliRunner
from wdqa.benchmark.judge.base import JudgeRequest
from wdqa.benchmark.judge.registry import JUDGES, register_judge
from wdqa.benchmark.suite import Suite
from wdqa.benchmark.types import Score
from wdqa.leaderboard import commands
from wdqa.leaderboard.bundle import pack, read_bundle, verify

SCORES = {"hidden-topic": [5, 4, 1, 3, 5, 2], "null": [5, 1, 5, 5]}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return make_suite(tmp_path_factory.mktemp("suite") / "suite")


@pytest.fixture
def bundle(tmp_path: Path, suite: Suite) -> Path:
    run = make_run(tmp_path / "runs", "dit", SCORES, suite)
    return pack(run, tmp_path / "dit.wdqa-bundle.tar.gz")


def _repack(bundle: Path, edit: Callable[[dict[str, bytes]], None], rehash: bool) -> Path:
    """Tamper with a bundle; with `rehash` the tamperer also fixes bundle.json's hashes."""
    files = read_bundle(bundle)
    edit(files)
    if rehash:
        index = json.loads(files["bundle.json"])
        index["files"] = {
            n: hashlib.sha256(d).hexdigest() for n, d in files.items() if n != "bundle.json"
        }
        files["bundle.json"] = json.dumps(index).encode()
    out = bundle.with_name("tampered.tar.gz")
    with tarfile.open(out, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


def _edit_jsonl(name: str, case_id: str, **changes: object) -> Callable[[dict[str, bytes]], None]:
    def edit(files: dict[str, bytes]) -> None:
        rows = [json.loads(line) for line in files[name].decode().splitlines()]
        for row in rows:
            if row["case_id"] == case_id:
                row.update(changes)
        files[name] = "".join(json.dumps(r) + "\n" for r in rows).encode()

    return edit


def _edit_json(name: str, change: Callable[[dict], None]) -> Callable[[dict[str, bytes]], None]:
    def edit(files: dict[str, bytes]) -> None:
        data = json.loads(files[name])
        change(data)
        files[name] = json.dumps(data).encode()

    return edit


def _problems(path: Path, suite: Suite | None = None) -> str:
    result = verify(path, suite.root if suite else None)
    assert not result.accepted, "a tampered bundle was accepted"
    return "\n".join(result.problems)


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_an_honest_bundle_is_accepted_with_its_suite(
    tmp_path: Path, suite: Suite, suffix: str
) -> None:
    run = make_run(tmp_path / "runs", "dit", SCORES, suite)
    result = verify(pack(run, tmp_path / f"b{suffix}"), suite.root)
    assert result.accepted, result.problems
    assert any("content hash" in c for c in result.checks)


def test_a_changed_score_is_refused_naming_the_file_whose_hash_differs(bundle: Path) -> None:
    tampered = _repack(
        bundle, _edit_jsonl(f"scores/{KEY}.jsonl", "hidden-topic/ht-2", score=5), rehash=False
    )
    assert f"scores/{KEY}.jsonl has sha256" in _problems(tampered)


def test_a_changed_score_with_fixed_hashes_is_refused_by_the_recomputed_mean(bundle: Path) -> None:
    tampered = _repack(
        bundle, _edit_jsonl(f"scores/{KEY}.jsonl", "hidden-topic/ht-2", score=5), rehash=True
    )
    problems = _problems(tampered)
    assert "summary.json states" in problems and "hidden-topic mean = 3.333" in problems
    assert "per-case scores give 4.0" in problems


def test_a_changed_summary_is_refused_naming_the_split_and_the_number(bundle: Path) -> None:
    def inflate(summary: dict) -> None:
        summary[KEY]["null"]["mean"] = 4.9

    problems = _problems(_repack(bundle, _edit_json("summary.json", inflate), rehash=True))
    assert (
        f"summary.json states {KEY} / null mean = 4.9 but the per-case scores give 4.0" in problems
    )


def test_a_wrong_suite_hash_is_refused_against_the_suite_on_disk(
    bundle: Path, suite: Suite
) -> None:
    def other_revision(manifest: dict) -> None:
        manifest["suite"]["content_sha256"] = "0" * 64

    problems = _problems(
        _repack(bundle, _edit_json("manifest.json", other_revision), rehash=True), suite
    )
    assert "suite content hash differs: the manifest says 0000000000000000" in problems
    assert suite.content_sha256[:16] in problems


def test_a_label_that_is_not_the_suites_is_refused(bundle: Path, suite: Suite) -> None:
    edit = _edit_jsonl(f"scores/{KEY}.jsonl", "hidden-topic/ht-1", label="an easier topic")
    problems = _problems(_repack(bundle, edit, rehash=True), suite)
    assert (
        "split hidden-topic: 1 scored label(s) differ from the suite's index (first: hidden-topic/ht-1)"
        in problems
    )


def test_scores_from_another_judge_version_are_refused(bundle: Path) -> None:
    edit = _edit_jsonl(f"scores/{KEY}.jsonl", "null/nl-0", prompt_version="topic-v0")
    assert "another judge version than the manifest states" in _problems(
        _repack(bundle, edit, rehash=True)
    )


class _ConstantJudge:
    """Grades every answer 1 under the fixture's judge name and prompt version."""

    name = JUDGE
    prompt_version = PROMPT

    def score(self, requests: Sequence[JudgeRequest]) -> list[Score]:
        return [Score(r.case_id, 1, self.name, self.prompt_version, raw="1") for r in requests]


@pytest.fixture
def constant_judge():
    register_judge("lb-constant", "test judge: always 1")(lambda arg, **options: _ConstantJudge())
    yield "lb-constant"
    JUDGES.pop("lb-constant")


def test_rejudging_a_sample_refuses_scores_the_judge_does_not_give(
    bundle: Path, suite: Suite, constant_judge: str
) -> None:
    result = verify(bundle, suite.root, rejudge_sample=4, judge_spec=constant_judge, seed=1)
    assert not result.accepted
    assert "re-judging 4 sampled cases gave a different score" in "\n".join(result.problems)


def test_rejudging_a_sample_accepts_scores_the_judge_gives(
    tmp_path: Path, suite: Suite, constant_judge: str
) -> None:
    run = make_run(tmp_path / "runs", "ones", {"hidden-topic": [1] * 6}, suite)
    result = verify(
        pack(run, tmp_path / "ones.zip"), suite.root, rejudge_sample=4, judge_spec=constant_judge
    )
    assert result.accepted, result.problems


def test_verify_command_exits_1_and_prints_the_reason(bundle: Path) -> None:
    tampered = _repack(
        bundle, _edit_jsonl(f"scores/{KEY}.jsonl", "hidden-topic/ht-2", score=5), rehash=True
    )
    app = typer.Typer()
    app.callback()(lambda: None)
    commands.register(app)
    runner = CliRunner()
    refused = runner.invoke(app, ["verify", str(tampered)])
    assert (
        refused.exit_code == 1
        and "REFUSED" in refused.output
        and "hidden-topic mean" in refused.output
    )
    accepted = runner.invoke(app, ["verify", str(bundle)])
    assert accepted.exit_code == 0 and "ACCEPTED" in accepted.output
