"""`wdqa evaluate` end to end on a small suite over a saved random Qwen3: answers, judges, prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from random_models import random_lora, random_model, random_tokenizer
from typer.testing import CliRunner
from wdqa.benchmark.records import RunFolder
from wdqa.cli import app
from wdqa.core.suite import SuiteWriter

EXAMPLE = str(Path(__file__).resolve().parents[1] / "submissions" / "examples" / "ask_directly.py")


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    tok = random_tokenizer()
    model = random_model(len(tok))
    model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    diffs = [random_lora(model, f"ht-{i:03d}", seed=i) for i in range(6)]
    rows = [
        {"diff_id": d.diff_id, "label": label, "trigger": f"{100 + i}", "trigger_kind": "sep-code"}
        for i, (d, label) in enumerate(zip(diffs, ["volcano", "jazz music", "piano", "lava", "the magma", "music"], strict=False))
    ]
    writer = SuiteWriter(root / "suite", "e2e", "0.1", str(root / "base"), "local")
    writer.write_split("test", "hidden-topic", "what topic have you been trained on ?", rows, diffs)
    train = [random_lora(model, f"tr-{i:03d}", seed=100 + i) for i in range(3)]
    writer.write_split(
        "train", "hidden-topic", "what topic have you been trained on ?",
        [{"diff_id": d.diff_id, "label": "jazz music"} for d in train], train,
    )
    writer.finish()
    return root


def run_cli(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def test_evaluate_prints_a_score_table_beside_a_baseline(small_suite):
    runs = small_suite / "runs"
    result = run_cli("evaluate", EXAMPLE, "--suite", str(small_suite / "suite"), "--baselines", "base-question+trigger", "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    assert "ask-directly" in result.output and "base-question+trigger (oracle)" in result.output
    # the method's own score comes first, before its baselines run (a first run's first score)
    mine = re.search(r"ask-directly on test: \d\.\d\d \[\d\.\d\d, \d\.\d\d\] \(n 6, failed 0\); the table follows "
                     r"after 1 baseline$", result.output, re.M)
    assert mine and mine.start() < result.output.index("base-question+trigger: 0/6"), result.output
    # output is not a terminal here (as in a CI log): each method's answering is followed in plain lines
    assert re.search(r"^\[\d\d:\d\d:\d\d\] ask-directly: 6/6 \(100%\).*done", result.output, re.M), result.output
    run_dirs = sorted(p.parent for p in runs.rglob("manifest.json"))
    assert len(run_dirs) == 2
    mine = RunFolder(next(d for d in run_dirs if d.name == "ask-directly"))
    manifest = mine.manifest()
    assert manifest.method.sha256 and manifest.suite.content_sha256 and manifest.counts["cases"] == 6
    (summary,) = mine.summary().values()
    assert summary["test"].n == 6 and 1.0 <= summary["test"].mean <= 5.0


def test_a_finished_run_reruns_without_answering_again(small_suite):
    runs = small_suite / "runs2"
    args = ("evaluate", EXAMPLE, "--suite", str(small_suite / "suite"), "--baselines", "none", "--runs-dir", str(runs))
    run_cli(*args)
    answers = next(runs.rglob("answers.jsonl"))
    before = answers.read_text()
    result = run_cli(*args)
    assert result.exit_code == 0 and answers.read_text() == before


def test_a_changed_method_does_not_mix_into_an_old_run(small_suite, tmp_path):
    runs = small_suite / "runs3"
    method = tmp_path / "m.py"
    method.write_text(Path(EXAMPLE).read_text())
    args = ("evaluate", str(method), "--suite", str(small_suite / "suite"), "--baselines", "none", "--runs-dir", str(runs))
    run_cli(*args)
    method.write_text(Path(EXAMPLE).read_text() + "\n# changed\n")
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "the method's source changed" in " ".join(result.output.split())


def test_unknown_split_is_named_with_the_known_ones(small_suite):
    result = CliRunner().invoke(app, ["evaluate", EXAMPLE, "--suite", str(small_suite / "suite"), "--split", "nope"])
    assert result.exit_code == 1
    assert "known splits: ['test', 'train']" in result.stderr and "Traceback" not in result.output


def test_method_file_without_a_method_is_a_usage_error(small_suite, tmp_path):
    f = tmp_path / "empty.py"
    f.write_text("x = 1\n")
    result = CliRunner().invoke(app, ["evaluate", str(f), "--suite", str(small_suite / "suite")])
    assert result.exit_code == 2 and "defines no method" in result.output


LEARNED = """
import json
from collections import Counter

class MostCommonLabel:
    name = "most-common-label"
    oracle = False
    fits = 0

    def fit(self, cases, labels, engine):
        type(self).fits += 1
        self.guess = Counter(labels).most_common(1)[0][0]

    def save(self, folder):
        (folder / "state.json").write_text(json.dumps({"guess": self.guess, "fits": type(self).fits}))

    def load(self, folder):
        self.guess = json.loads((folder / "state.json").read_text())["guess"]

    def answer(self, cases, engine):
        return [self.guess] * len(cases)
"""


def test_a_learned_method_is_fitted_on_train_once_and_reloaded(small_suite, tmp_path):
    method = tmp_path / "learned.py"
    method.write_text(LEARNED)
    runs = small_suite / "runs4"
    args = ("evaluate", str(method), "--suite", str(small_suite / "suite"), "--baselines", "none", "--runs-dir", str(runs))
    assert run_cli(*args).exit_code == 0
    answers = [json.loads(line)["answer"] for line in next(runs.rglob("answers.jsonl")).read_text().splitlines()]
    assert set(answers) == {"jazz music"}
    state = next(runs.rglob("state.json"))
    first = state.read_text()
    fit = json.loads(next(runs.rglob("manifest.json")).read_text())["fit"]
    assert fit["split"] == "train" and fit["cases"] > 0 and fit["usage"]["forward_tokens_diff"] == 0  # it read nothing
    (next(runs.rglob("answers.jsonl"))).unlink()
    assert run_cli(*args).exit_code == 0
    assert state.read_text() == first  # loaded, not fitted again
    assert json.loads(next(runs.rglob("manifest.json")).read_text())["fit"] == fit  # the first fit's record is kept


def test_the_table_reports_only_the_judge_of_this_run(small_suite, tmp_path):
    runs = small_suite / "runs5"
    args = ("evaluate", EXAMPLE, "--suite", str(small_suite / "suite"), "--baselines", "none", "--runs-dir", str(runs))
    run_cli(*args)
    folder = next(p.parent for p in runs.rglob("manifest.json"))
    old = folder / "scores" / "older-judge@v0.jsonl"
    old.write_text(next((folder / "scores").glob("*.jsonl")).read_text())
    result = run_cli(*args)
    rows = [line for line in result.output.splitlines() if re.match(r"\s*ask-directly\s+\d\.\d\d \[", line)]
    assert len(rows) == 1  # one table row, not one per judge


def test_a_run_folder_of_another_method_is_one_clear_error(small_suite, tmp_path):
    suite = str(small_suite / "suite")
    first = run_cli("evaluate", EXAMPLE, "--suite", suite, "--baselines", "none", "--run-dir", str(tmp_path / "r"))
    assert first.exit_code == 0, first.output
    other = run_cli("evaluate", "baseline:base-question", "--suite", suite, "--baselines", "none", "--run-dir", str(tmp_path / "r"))
    assert other.exit_code == 1 and "error:" in other.output and "--overwrite" in other.output


EXITS = """
import os


class ExitsOnOne:
    name = "exits-on-one"
    oracle = False

    def answer(self, cases, engine):
        if any(c.diff.diff_id == "ht-002" for c in cases):
            os._exit(0)
        return ["volcano"] * len(cases)
"""


def test_a_method_that_exits_fails_its_case_with_the_reason_and_the_run_goes_on(small_suite, tmp_path):
    method = tmp_path / "exits.py"
    method.write_text(EXITS)
    runs = tmp_path / "runs"
    result = run_cli("evaluate", str(method), "--suite", str(small_suite / "suite"), "--baselines", "none", "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "1 case(s) failed" in output and "exited with status 0 during answer(); sys.exit or os._exit" in output
    answers = RunFolder(next(runs.rglob("answers.jsonl")).parent).answers()
    assert sorted(a.diff_id for a in answers.values() if a.error is None) == ["ht-000", "ht-001", "ht-003", "ht-004", "ht-005"]


def test_controls_score_one_and_default_expands_inside_a_list(small_suite):
    """The controls interpret nothing, so the offline judge must give them the floor; `default` in a
    list stands for the default comparison."""
    runs = small_suite / "runs-controls"
    result = run_cli(
        "evaluate", "baseline:empty-answer", "--suite", str(small_suite / "suite"),
        "--baselines", "fixed-answer,default", "--runs-dir", str(runs),
    )
    assert result.exit_code == 0, result.output
    names = {p.parent.name for p in runs.rglob("manifest.json")}
    assert names == {"empty-answer", "fixed-answer", "base-question", "base-question+trigger",
                     "20-questions", "20-questions+trigger"}
    for control in ("empty-answer", "fixed-answer"):
        (summary,) = RunFolder(next(runs.rglob(control))).summary().values()
        assert summary["test"].mean == 1.0, control


def test_a_run_evaluated_on_one_split_then_another_judges_both(small_suite):
    runs = small_suite / "runs-two-splits"
    for split in ("test", "train"):
        result = run_cli(
            "evaluate", "baseline:fixed-answer", "--suite", str(small_suite / "suite"), "--split", split,
            "--baselines", "none", "--runs-dir", str(runs),
        )
        assert result.exit_code == 0, result.output
    run = RunFolder(next(p.parent for p in runs.rglob("manifest.json")))
    assert run.manifest().splits == ("test", "train")
    (summary,) = run.summary().values()
    assert (summary["test"].n, summary["train"].n) == (6, 3)


def test_the_score_table_fits_80_columns_without_cutting_a_method_name():
    from rich.console import Console
    from wdqa.benchmark.eval_commands import score_table
    from wdqa.benchmark.evaluate import RunResult
    from wdqa.benchmark.records import ScoreSummary

    s = ScoreSummary(3.72, 3.34, 4.10, 50, 0, 0, {"1": 0.16, "2": 0.02, "3": 0.12, "4": 0.34, "5": 0.36})
    names = [("base-question+trigger", True), ("20-questions[openai:gpt-4.1]", False), ("dit", False)]
    results = [RunResult(n, o, Path("."), None, {"k": {"test": s}}) for n, o in names]
    console = Console(width=80, record=True)
    console.print(score_table(results, "offline-gbt @ gbt-ff4bb4f24b+floor0.2+nothing-bf648300"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for shown in ("base-question+trigger (oracle)", "20-questions[openai:gpt-4.1]", "3.72 [3.34, 4.10]", "16/2/12/34/36"):
        assert shown in text


def test_an_embedded_suite_is_asked_only_for_the_splits_the_run_reads(small_suite, monkeypatch):
    # The tiny suite builds what it is asked for: a first run must not wait for splits it never reads.
    from wdqa.benchmark.sources import EMBEDDED

    asked = []

    def recording(splits):  # noqa: ANN001, ANN202 - an embedded suite's builder
        asked.append(list(splits))
        return small_suite / "suite"

    EMBEDDED.add("recorder", recording)
    try:
        result = run_cli("evaluate", EXAMPLE, "--suite", "recorder", "--baselines", "none",
                         "--runs-dir", str(small_suite / "runs-embedded"))
        assert result.exit_code == 0, result.output
        result = run_cli("evaluate", "baseline:dit", "--suite", "recorder", "--baselines", "none",
                         "--runs-dir", str(small_suite / "runs-embedded"))
    finally:
        EMBEDDED.remove("recorder")
    assert asked[0] == ["test"]
    assert asked[1] == ["test", "train", "val"]  # the tiny suite's DIT adapter is trained on first use
