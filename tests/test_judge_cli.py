"""`wdqa judge`, `wdqa judge-agreement` and `wdqa judge-fit` through typer's CliRunner."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_openai_server import LocalOpenAIServer
from typer.testing import CliRunner
from wdqa.benchmark.records import AnswerRecord, RunFolder
from wdqa.benchmark.run_manifest import RunManifest, RunMethod, RunSuite
from wdqa.cli import app
from wdqa.core.suite import INDEX_COLUMNS, SuiteWriter

runner = CliRunner()
LABELS = {"ht-0": "Chess", "ht-1": "Origami", "ht-2": "Volcanoes"}
ANSWERS = {"ht-0": "chess", "ht-1": "Cooking", "ht-2": "Volcanoes"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer() as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("WDQA_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("WDQA_JUDGE_MODEL", raising=False)
        monkeypatch.delenv("WDQA_JUDGE_CONFIG", raising=False)
        yield s


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    writer = SuiteWriter(tmp_path / "suite", "unit", "0.1", "random-qwen3", "r0")
    rows = [{c: None for c in INDEX_COLUMNS} | {"diff_id": d, "label": lab, "behaviour": "hidden-topic",
             "question": "What topic?", "shard": "shard-00000.safetensors", "rank": 1, "seed": 0, "n_params": 1}
            for d, lab in LABELS.items()]
    writer.write_index("test", "hidden-topic", "What topic?", rows)
    suite = writer.finish()
    run = RunFolder(tmp_path / "run")
    run.write_manifest(RunManifest(RunMethod("m"), RunSuite("unit", root=str(suite.root), content_sha256=suite.content_sha256),
                                   splits=("test",)))
    run.append_answers([AnswerRecord(f"test/{d}", "test", d, a) for d, a in ANSWERS.items()])
    return run.path


def test_a_second_judge_is_kept_beside_the_first(server: LocalOpenAIServer, run_dir: Path) -> None:
    for model in ("model-a", "model-b"):
        result = runner.invoke(app, ["judge", str(run_dir), "--judge", f"openai:{model}"])
        assert result.exit_code == 0, result.output
    keys = RunFolder(run_dir).judge_keys()
    assert [k.split("@")[0] for k in keys] == ["model-a", "model-b"]
    assert {s.score for s in RunFolder(run_dir).scores(keys[0]).values()} == {5, 1}
    assert set(json.loads((run_dir / "summary.json").read_text())) == set(keys)
    judges = RunFolder(run_dir).manifest().judges
    assert [j.name for j in judges] == ["model-a", "model-b"]
    assert judges[0].usage and judges[0].usage["api_calls"] == 3 and judges[0].usage["prompt_tokens"] == 300


def test_rejudging_grades_nothing_new_and_calls_no_api(server: LocalOpenAIServer, run_dir: Path) -> None:
    runner.invoke(app, ["judge", str(run_dir), "--judge", "openai:model-a"])
    calls = len(server.state.requests)
    result = runner.invoke(app, ["judge", str(run_dir), "--judge", "openai:model-a"])
    assert "graded 0, already graded 3" in result.output and len(server.state.requests) == calls


def test_both_orders_prints_the_flip_rate(server: LocalOpenAIServer, run_dir: Path) -> None:
    result = runner.invoke(app, ["judge", str(run_dir), "--judge", "openai:model-a", "--both-orders"])
    assert "order flip rate: 0.0% (0 of 3 pairs" in result.output


def test_judge_agreement_compares_two_judges_on_a_run(server: LocalOpenAIServer, run_dir: Path) -> None:
    for model in ("model-a", "model-b"):
        runner.invoke(app, ["judge", str(run_dir), "--judge", f"openai:{model}"])
    a, b = RunFolder(run_dir).judge_keys()
    result = runner.invoke(app, ["judge-agreement", "--runs", str(run_dir), "--judges", a, b])
    assert result.exit_code == 0, result.output
    assert "100.0%" in result.output


def test_judge_agreement_names_the_judges_a_run_has(server: LocalOpenAIServer, run_dir: Path) -> None:
    runner.invoke(app, ["judge", str(run_dir), "--judge", "openai:model-a"])
    result = runner.invoke(app, ["judge-agreement", "--runs", str(run_dir), "--judges", "nope", "other"])
    assert result.exit_code == 2 and "model-a@" in result.output


def test_an_unknown_judge_on_the_command_line_lists_the_known_ones(run_dir: Path) -> None:
    result = runner.invoke(app, ["judge", str(run_dir), "--judge", "gpt5-magic"])
    assert result.exit_code == 2 and "offline" in result.output and "openai" in result.output


def _synthetic_pairs(path: Path) -> None:
    # Two setups of topic pairs and one of news: identical texts graded 5, unrelated ones 1.
    topics = ["Chess", "Origami", "Volcanoes", "Jazz", "Sushi", "Glaciers", "Poetry", "Robots"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["kind", "label", "answer", "score", "setup", "method"])
        for i, t in enumerate(topics):
            setup = f"s{i % 2}"
            w.writerow(["topic", t, t.lower(), 5, setup, "m"])
            w.writerow(["topic", t, topics[(i + 3) % len(topics)], 1, setup, "m"])
            w.writerow(["news", f"{t} news made headlines today.", f"{t} news made headlines today.", 5, "n", "m"])
            w.writerow(["news", f"{t} news made headlines today.", f"A storm about {topics[(i + 2) % 8]}.", 1, "n", "m"])


def test_judge_fit_writes_a_model_with_provenance_that_the_offline_judge_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WDQA_CACHE", str(tmp_path / "cache"))
    pairs, model = tmp_path / "pairs.csv", tmp_path / "judge.joblib"
    _synthetic_pairs(pairs)
    result = runner.invoke(app, ["judge-fit", "--pairs", str(pairs), "--out", str(model)])
    assert result.exit_code == 0, result.output
    provenance = json.loads(model.with_suffix(".json").read_text())
    assert provenance["data_rows"] == {"topic": 16, "news": 16} and len(provenance["data_sha256"]) == 64
    result = runner.invoke(app, ["judge-agreement", "--pairs", str(pairs), "--judge", f"offline:{model}"])
    assert result.exit_code == 0, result.output
    assert "100.0%" in result.output and "in-sample" in result.output


def test_a_pairs_file_without_scores_is_refused_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,label,answer\ntopic,a,b\n")
    result = runner.invoke(app, ["judge-agreement", "--pairs", str(bad)])
    assert result.exit_code == 2 and "bad.csv" in result.output and "score" in result.output


def test_bench_judge_times_batched_and_one_call_per_pair_on_the_same_pairs(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    _synthetic_pairs(pairs)
    result = runner.invoke(app, ["bench", "judge", "--pairs", str(pairs), "--n", "6", "--naive-n", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for way in ("batched, cold cache", "batched, warm cache", "one call per pair, cold cache"):
        assert result.output.count(way) == 2  # one row per rubric
    assert "topic: batched cold / one call per pair:" in result.output


def test_bench_judge_refuses_a_pairs_file_it_cannot_read(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "judge", "--pairs", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "missing.csv does not exist" in " ".join(result.output.split())
