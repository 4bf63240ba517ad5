"""The answer stage isolates failing cases, times out hanging ones, and resumes."""

from __future__ import annotations

import time

import pytest
from random_models import random_model, random_tokenizer
from test_suite_format import write_suite
from wdqa.benchmark.engine import Engine
from wdqa.benchmark.method import MethodError, load_method
from wdqa.benchmark.records import RunFolder
from wdqa.benchmark.runner import run_answer_stage
from wdqa.benchmark.suite import Suite


@pytest.fixture()
def setup(tmp_path):
    tok = random_tokenizer()
    model = random_model(len(tok))
    write_suite(tmp_path / "suite", model, n=5, per_shard=2)
    return Suite.load(tmp_path / "suite"), Engine(model, tok), RunFolder(tmp_path / "run")


class Echo:
    name = "echo"
    oracle = False

    def __init__(self, fail_on=(), hang_on=(), wrong_count=False):
        self.fail_on, self.hang_on, self.wrong_count, self.calls = set(fail_on), set(hang_on), wrong_count, 0

    def answer(self, cases, engine):
        self.calls += len(cases)
        for c in cases:
            if c.case_id in self.fail_on:
                raise RuntimeError(f"boom on {c.case_id}")
            if c.case_id in self.hang_on:
                time.sleep(30)
        answers = [f"answer for {c.diff.diff_id}" for c in cases]
        return answers[:-1] if self.wrong_count else answers


def test_a_raising_case_is_marked_failed_and_the_rest_answered(setup):
    suite, engine, run = setup
    stats = run_answer_stage(Echo(fail_on={"test/ht-001"}), suite, ["test"], engine, run, batch_size=4)
    answers = run.answers()
    assert stats.failed == 1 and stats.answered == 5
    assert "boom on test/ht-001" in answers["test/ht-001"].error
    assert answers["test/ht-002"].answer == "answer for ht-002"


def test_a_hanging_case_times_out_and_the_run_goes_on(setup):
    suite, engine, run = setup
    t0 = time.perf_counter()
    stats = run_answer_stage(Echo(hang_on={"test/ht-003"}), suite, ["test"], engine, run, batch_size=6, timeout_per_case=0.5)
    assert time.perf_counter() - t0 < 20
    assert stats.failed == 1
    assert "no answer within" in run.answers()["test/ht-003"].error


def test_wrong_number_of_answers_names_the_method_and_case(setup):
    suite, engine, run = setup
    stats = run_answer_stage(Echo(wrong_count=True), suite, ["test"], engine, run, batch_size=6, where="my_method.py")
    assert stats.failed == 6
    assert "my_method.py.answer() returned 0 answers for 1 cases (first case test/" in stats.first_error


def test_an_interrupted_run_resumes_at_the_next_unanswered_case(setup):
    suite, engine, run = setup
    run_answer_stage(Echo(), suite, ["test"], engine, run, limit=3)
    method = Echo()
    stats = run_answer_stage(method, suite, ["test"], engine, run)
    assert stats.skipped == 3 and method.calls == 3 and len(run.answers()) == 6


def test_engine_batched_chat_matches_one_by_one(setup):
    suite, engine, _ = setup
    diffs = list(suite.diffs("test"))
    prompts = ["tell me about lava", "what topic have you been trained on ?", "jazz music", "the piano", "i like", "a"]
    together = engine.chat([*diffs[:5], None], prompts, max_new_tokens=6)
    alone = [engine.chat([d], [p], max_new_tokens=6)[0] for d, p in zip([*diffs[:5], None], prompts, strict=False)]
    assert together == alone
    assert len(set(together)) > 1


def test_method_file_without_a_method_is_named(tmp_path):
    f = tmp_path / "nothing.py"
    f.write_text("x = 1\n")
    with pytest.raises(MethodError, match="nothing.py defines no method"):
        load_method(str(f))


def test_method_file_that_fails_to_import_is_named(tmp_path):
    f = tmp_path / "broken.py"
    f.write_text("import not_a_module_xyz\n")
    with pytest.raises(MethodError, match="importing method file .*broken.py failed: ModuleNotFoundError"):
        load_method(str(f))


def test_missing_method_file_is_named(tmp_path):
    with pytest.raises(MethodError, match="does not exist"):
        load_method(str(tmp_path / "absent.py"))


def test_method_class_in_a_file_is_instantiated(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("class Mine:\n    name = 'mine'\n    def answer(self, cases, engine):\n        return ['x'] * len(cases)\n")
    method, digest = load_method(str(f))
    assert method.name == "mine" and method.oracle is False and len(digest) == 64


def test_one_diff_on_many_rows_answers_like_one_by_one(setup):
    suite, engine, _ = setup
    d0, d1 = list(suite.diffs("test"))[:2]
    prompts = ["tell me about lava", "jazz music", "the piano", "i like"]
    together = engine.chat([d0, d1, d0, d0], prompts, max_new_tokens=6)
    alone = [engine.chat([d], [p], max_new_tokens=6)[0] for d, p in zip([d0, d1, d0, d0], prompts, strict=True)]
    assert together == alone


def test_a_prefilled_reply_continues_its_opening_for_every_row(setup):
    """Greedy decoding after the first words of a row's own reply gives the rest of that reply."""
    suite, engine, _ = setup
    diffs = [*list(suite.diffs("test"))[:3], None]
    prompts = ["tell me about lava", "what topic have you been trained on ?", "jazz music", "the piano"]
    conversation = [{"role": "user", "content": prompts[0]}]
    assert engine.render(conversation, reply_prefix="lava is") == engine.render(conversation) + "lava is"
    replies = engine.chat(diffs, prompts, max_new_tokens=8)
    for diff, prompt, reply in zip(diffs, prompts, replies, strict=True):
        words = reply.split()
        assert len(words) == 8, reply
        rest = engine.chat([diff], [prompt], max_new_tokens=5, reply_prefix=" ".join(words[:3]))
        assert rest == [" ".join(words[3:])]
