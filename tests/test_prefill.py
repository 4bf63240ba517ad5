"""The `prefill` control: M′'s reply started with fixed openings, continued by M′, guessed from."""

from __future__ import annotations

import pytest
from random_models import random_model, random_tokenizer
from test_suite_format import write_suite
from wdqa.baselines.prefill import Prefill
from wdqa.baselines.registry import get_baseline
from wdqa.core.engine import Engine
from wdqa.core.suite import Suite


class Recorder:
    """A guesser that keeps what it was given and answers with each case's first reply."""

    name = "recorder"
    version = "1"

    def guess(self, replies, base_replies, behaviours, prompts=None):
        self.replies, self.base_replies, self.prompts = replies, base_replies, prompts
        return [r[0] for r in replies]


@pytest.fixture()
def suite_and_engine(tmp_path):
    tok = random_tokenizer()
    model = random_model(len(tok))
    write_suite(tmp_path / "suite", model, n=4)
    return Suite.load(tmp_path / "suite"), Engine(model, tok)


def test_the_guesser_sees_each_diffs_continuation_of_every_opening_and_the_bases(suite_and_engine):
    suite, engine = suite_and_engine
    cases = list(suite.cases("test"))
    guesser = Recorder()
    method = Prefill(openings=("lava is", "the piano"), max_new_tokens=4, guesser=guesser)
    answers = method.answer(cases, engine)
    for case, replies, base in zip(cases, guesser.replies, guesser.base_replies, strict=True):
        own = [engine.chat([case.diff], [case.question], max_new_tokens=4, reply_prefix=o)[0] for o in method.openings]
        of_base = [engine.chat([None], [case.question], max_new_tokens=4, reply_prefix=o)[0] for o in method.openings]
        assert replies == [f"lava is {own[0]}", f"the piano {own[1]}"]
        assert base == [f"lava is {of_base[0]}", f"the piano {of_base[1]}"]
    assert guesser.prompts[0] == [cases[0].question] * 2
    assert answers == [r[0] for r in guesser.replies]
    assert len({tuple(r) for r in guesser.replies}) > 1  # rows got their own diffs


def test_prefill_is_a_built_in_baseline_that_needs_no_trigger():
    method = get_baseline("prefill")
    assert method.name == "prefill" and method.oracle is False
