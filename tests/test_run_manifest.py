"""The typed run manifest: manifests already on users' disks are read and upgraded, never rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wdqa.benchmark.records import RunError, RunFolder
from wdqa.benchmark.run_manifest import (
    RUN_SCHEMA_VERSION,
    RunJudge,
    RunManifest,
    RunMethod,
    RunSuite,
)

# What wdqa wrote before suites had a content hash (and before manifests said their schema version).
BEFORE_CONTENT_HASH = {
    "wdqa_version": "0.0.9",
    "git_commit": None,
    "method": {"name": "ask-directly", "spec": "ask_directly.py", "sha256": "ab" * 32, "oracle": False, "builtin": False},
    "suite": {"name": "tiny", "version": "2026.10", "base_model": "wdqa/tiny-qwen3", "base_model_revision": "r1",
              "source": "tiny", "revision": None},
    "splits": ["test"],
    "seed": 0,
    "judges": [{"key": "offline-gbt@gbt-1", "name": "offline-gbt", "prompt_version": "gbt-1"}],
    "packages": {"torch": "2.4.0"},
    "device": "cpu",
    "started": "2026-10-01T10:00:00+00:00",
    "finished": "2026-10-01T10:05:00+00:00",
    "timings": {"answer_s": 1.5, "judge_s": 0.25},
    "generation": {"sequences": 6, "new_tokens": 120},
    "counts": {"cases": 6, "failed": 0},
}


def write_raw(tmp_path: Path, raw: dict) -> RunFolder:
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.manifest_path.write_text(json.dumps(raw))
    return run


def test_a_manifest_from_before_the_content_hash_is_read_with_no_hash(tmp_path: Path) -> None:
    manifest = write_raw(tmp_path, BEFORE_CONTENT_HASH).manifest()
    assert manifest.suite.content_sha256 is None and manifest.schema_version == RUN_SCHEMA_VERSION


def test_an_old_manifest_keeps_every_field_it_had(tmp_path: Path) -> None:
    manifest = write_raw(tmp_path, BEFORE_CONTENT_HASH).manifest()
    assert (manifest.method.name, manifest.judges[0].key, manifest.counts["cases"], manifest.timings["judge_s"]) == (
        "ask-directly", "offline-gbt@gbt-1", 6, 0.25
    )


def test_an_upgraded_manifest_is_written_back_as_the_current_schema(tmp_path: Path) -> None:
    run = write_raw(tmp_path, BEFORE_CONTENT_HASH)
    run.write_manifest(run.manifest())
    written = json.loads(run.manifest_path.read_text())
    assert written == {**BEFORE_CONTENT_HASH, "schema_version": RUN_SCHEMA_VERSION, "limit": None, "python": None, "model": {},
                       "usage": {}, "budget_tokens": None, "fit": {}, "method": {**BEFORE_CONTENT_HASH["method"], "access": None},
                       "private_splits": [],
                       "suite": {**BEFORE_CONTENT_HASH["suite"], "content_sha256": None, "root": None}}


def test_a_manifest_round_trips_through_its_json(tmp_path: Path) -> None:
    manifest = RunManifest(
        RunMethod("m", sha256="1" * 64, oracle=True), RunSuite("s", content_sha256="2" * 64), splits=("test", "val"),
        judges=(RunJudge("j@v", "j", "v", {"api_calls": 3}),), seed=7, limit=2, counts={"cases": 2, "failed": 1},
    )
    run = RunFolder(tmp_path / "run")
    run.write_manifest(manifest)
    assert run.manifest() == manifest


def test_fields_this_wdqa_does_not_know_are_kept(tmp_path: Path) -> None:
    raw = {**BEFORE_CONTENT_HASH, "model_args": {"dtype": "bf16"},
           "method": {**BEFORE_CONTENT_HASH["method"], "train_fraction": 0.25}}
    run = write_raw(tmp_path, raw)
    run.write_manifest(run.manifest())
    written = json.loads(run.manifest_path.read_text())
    assert written["model_args"] == {"dtype": "bf16"} and written["method"]["train_fraction"] == 0.25


def test_a_data_scaling_run_states_its_train_fraction(tmp_path: Path) -> None:
    raw = {**BEFORE_CONTENT_HASH, "method": {**BEFORE_CONTENT_HASH["method"], "config": {"train_fraction": "0.5"}}}
    assert write_raw(tmp_path, raw).manifest().method.train_fraction() == 0.5


def test_a_field_of_the_wrong_type_is_refused_naming_the_file_and_field(tmp_path: Path) -> None:
    run = write_raw(tmp_path, {**BEFORE_CONTENT_HASH, "seed": "zero"})
    with pytest.raises(RunError, match=r"manifest\.json: seed is 'zero', expected int"):
        run.manifest()


def test_a_judge_entry_without_a_key_is_refused_naming_the_entry(tmp_path: Path) -> None:
    run = write_raw(tmp_path, {**BEFORE_CONTENT_HASH, "judges": [{"name": "x", "prompt_version": 1}]})
    with pytest.raises(RunError, match=r"judges\[0\]\.prompt_version is 1, expected str"):
        run.manifest()


def test_a_manifest_of_a_newer_schema_asks_to_upgrade_wdqa(tmp_path: Path) -> None:
    run = write_raw(tmp_path, {**BEFORE_CONTENT_HASH, "schema_version": RUN_SCHEMA_VERSION + 1})
    with pytest.raises(RunError, match="newer than this wdqa reads.*upgrade wdqa"):
        run.manifest()


def test_listing_a_judge_again_replaces_its_entry() -> None:
    manifest = RunManifest(RunMethod("m"), RunSuite("s"), judges=(RunJudge("a@1", "a", "1"), RunJudge("b@1", "b", "1")))
    again = manifest.with_judge(RunJudge("a@1", "a", "1", {"api_calls": 2}))
    assert [(j.key, j.usage) for j in again.judges] == [("b@1", None), ("a@1", {"api_calls": 2})]
