"""The answer stage isolates failing cases, times out hanging ones, tells only oracles the trigger,
and resumes. Methods are files run in their own process (see test_worker.py for hostile ones)."""

from __future__ import annotations

import time

import pytest
from random_models import random_model, random_tokenizer
from test_suite_format import write_suite
from wdqa.benchmark.method import MethodError, load_method
from wdqa.benchmark.records import RunFolder
from wdqa.benchmark.runner import run_answer_stage
from wdqa.benchmark.worker import MethodProcess, MethodSpec
from wdqa.core.engine import Engine
from wdqa.core.suite import Suite


@pytest.fixture()
def setup(tmp_path):
    tok = random_tokenizer()
    model = random_model(len(tok))
    write_suite(tmp_path / "suite", model, n=5, per_shard=2)
    return Suite.load(tmp_path / "suite"), Engine(model, tok), RunFolder(tmp_path / "run")


ECHO = """
import time
from pathlib import Path


class Echo:
    name = "echo"
    oracle = {oracle}

    def answer(self, cases, engine):
        with open({log!r}, "a") as log:
            log.write("".join(c.case_id + "\\n" for c in cases))
        for c in cases:
            if c.case_id in {fail_on!r}:
                raise RuntimeError(f"boom on {{c.case_id}}")
            if c.case_id in {hang_on!r}:
                time.sleep(600)
        answers = [f"{{c.diff.diff_id}} trigger {{c.trigger}}" for c in cases]
        return answers[:-1] if {wrong_count} else answers
"""


def answer_with_echo(suite_root, tmp_path, splits=("test",), batch_size=4, timeout=60.0, limit=None, **echo):
    options = dict(oracle=False, fail_on=(), hang_on=(), wrong_count=False) | echo
    method = tmp_path / "echo.py"
    method.write_text(ECHO.format(log=str(tmp_path / "calls.log"), **options))
    suite = Suite.load(suite_root)
    run = RunFolder(tmp_path / "run")
    with MethodProcess.start(MethodSpec(str(method))) as process:
        process.open(suite)
        stats = run_answer_stage(process, suite, list(splits), run, batch_size, timeout, limit)
    return stats, run.answers()


def calls(tmp_path) -> list[str]:
    return (tmp_path / "calls.log").read_text().split()


def test_a_raising_case_is_marked_failed_and_the_rest_answered(micro_suite, tmp_path):
    culprit = f"test/{Suite.load(micro_suite).case_ids('test')[1]}"
    stats, answers = answer_with_echo(micro_suite, tmp_path, fail_on=(culprit,))
    assert stats.failed == 1 and stats.answered == 3
    assert f"boom on {culprit}" in answers[culprit].error
    assert all(a.answer is not None for cid, a in answers.items() if cid != culprit)


def test_a_hanging_case_in_a_batch_times_out_alone_and_the_run_goes_on(micro_suite, tmp_path):
    culprit = f"test/{Suite.load(micro_suite).case_ids('test')[2]}"
    t0 = time.perf_counter()
    stats, answers = answer_with_echo(micro_suite, tmp_path, hang_on=(culprit,), timeout=2.0)
    assert time.perf_counter() - t0 < 180
    assert stats.failed == 1 and stats.answered == 3
    assert answers[culprit].error == "no answer within 2 s; the method process was killed"
    assert calls(tmp_path).count(culprit) == 2  # in the batch, then alone; not a third time


def test_wrong_number_of_answers_names_the_method_and_case(micro_suite, tmp_path):
    stats, _ = answer_with_echo(micro_suite, tmp_path, wrong_count=True)
    assert stats.failed == 4
    assert "echo.py.answer() returned 0 answers for 1 cases (first case test/" in stats.first_error


def test_an_interrupted_run_resumes_at_the_next_unanswered_case(micro_suite, tmp_path):
    answer_with_echo(micro_suite, tmp_path, limit=3)
    stats, answers = answer_with_echo(micro_suite, tmp_path)
    assert stats.skipped == 3 and len(calls(tmp_path)) == 4 and len(answers) == 4


@pytest.mark.parametrize("oracle", [True, False])
def test_only_an_oracle_is_told_each_trigger(micro_suite, tmp_path, oracle):
    _, answers = answer_with_echo(micro_suite, tmp_path, oracle=oracle)
    triggers = Suite.load(micro_suite).triggers("test")
    expected = {f"test/{d}": f"{d} trigger {t if oracle else None}" for d, (t, _) in triggers.items()}
    assert {cid: a.answer for cid, a in answers.items()} == expected


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
