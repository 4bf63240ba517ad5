"""The judge stage: pairing answers with labels, resuming, failed answers, both orders."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from wdqa.benchmark.judge.base import JudgeRequest
from wdqa.benchmark.judge.stage import case_seed, judge_run, record_judge_in_manifest
from wdqa.benchmark.records import AnswerRecord, RunError, RunFolder
from wdqa.benchmark.run_manifest import RunJudge, RunManifest, RunMethod, RunSuite
from wdqa.core.types import Label, Score


class ExactMatchJudge:
    """5 for the label itself, else 1; optionally order-sensitive (adds 1 when the label comes second)."""

    name = "exact-match"
    prompt_version = "v1"

    def __init__(self, order_sensitive: bool = False) -> None:
        self.calls: list[JudgeRequest] = []
        self.order_sensitive = order_sensitive

    def score(self, requests: Sequence[JudgeRequest]) -> list[Score]:
        self.calls.extend(requests)
        out = []
        for r in requests:
            value = 5 if r.label.lower() == r.answer.lower() else 1
            if self.order_sensitive and r.seed % 2 and value == 1:
                value = 2
            out.append(Score(r.case_id, value, self.name, self.prompt_version, raw=str(value)))
        return out


LABELS = {
    "test/a": Label("a", "Chess", "hidden-topic"),
    "test/b": Label("b", "Origami", "hidden-topic"),
    "test/c": Label("c", "A storm hit.", "news"),
}


@pytest.fixture
def run(tmp_path) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    folder.write_manifest(RunManifest(RunMethod("m"), RunSuite("t")))
    folder.append_answers([
        AnswerRecord("test/a", "test", "a", "chess"),
        AnswerRecord("test/b", "test", "b", "Cooking"),
        AnswerRecord("test/c", "test", "c", None, error="Traceback: boom"),
    ])
    return folder


def test_every_answer_gets_one_score_record_and_a_summary(run: RunFolder) -> None:
    result = judge_run(run, ExactMatchJudge(), LABELS)
    scores = run.scores("exact-match@v1")
    assert {k: s.score for k, s in scores.items()} == {"test/a": 5, "test/b": 1, "test/c": None}
    assert result.judged == 2 and result.failed == 1
    assert json.loads((run.path / "summary.json").read_text())["exact-match@v1"]["test"]["n"] == 3


def test_a_failed_answer_is_recorded_without_asking_the_judge(run: RunFolder) -> None:
    judge = ExactMatchJudge()
    judge_run(run, judge, LABELS)
    assert "test/c" not in {r.case_id for r in judge.calls}
    assert run.scores("exact-match@v1")["test/c"].failed


def test_a_rerun_skips_cases_already_scored(run: RunFolder) -> None:
    judge_run(run, ExactMatchJudge(), LABELS)
    again = ExactMatchJudge()
    result = judge_run(run, again, LABELS)
    assert again.calls == [] and result.skipped == 3


def test_a_changed_answer_is_graded_again(run: RunFolder) -> None:
    judge_run(run, ExactMatchJudge(), LABELS)
    run.append_answers([AnswerRecord("test/b", "test", "b", "origami")])
    judge_run(run, ExactMatchJudge(), LABELS)
    assert run.scores("exact-match@v1")["test/b"].score == 5


def test_an_answer_without_a_label_is_refused_with_its_case_id(run: RunFolder) -> None:
    with pytest.raises(RunError, match="test/c"):
        judge_run(run, ExactMatchJudge(), {k: v for k, v in LABELS.items() if k != "test/c"})


def test_news_cases_are_sent_with_the_news_rubric(run: RunFolder) -> None:
    run.append_answers([AnswerRecord("test/c", "test", "c", "A storm hit.")])
    judge = ExactMatchJudge()
    judge_run(run, judge, LABELS)
    assert {r.case_id: r.rubric for r in judge.calls}["test/c"] == "news"


def test_both_orders_reports_the_flip_rate_of_an_order_sensitive_judge(run: RunFolder) -> None:
    result = judge_run(run, ExactMatchJudge(order_sensitive=True), LABELS, both_orders=True)
    # "chess" is 5 both ways; "Cooking" is 1 one way and 2 the other
    assert result.order_pairs == 2 and result.flips == 1 and result.flip_rate == 0.5


def test_the_per_case_order_seed_is_stable_and_depends_on_the_case() -> None:
    assert case_seed("test/a") == case_seed("test/a")
    assert len({case_seed(f"test/{i}") % 2 for i in range(20)}) == 2


def test_a_rejudged_run_lists_the_judge_in_its_manifest(run: RunFolder) -> None:
    record_judge_in_manifest(run, ExactMatchJudge())
    record_judge_in_manifest(run, ExactMatchJudge())
    assert run.manifest().judges == (RunJudge("exact-match@v1", "exact-match", "v1"),)
