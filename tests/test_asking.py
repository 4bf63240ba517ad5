"""Black-box asking baselines: 20 questions follows the paper (sampled replies, M′'s alone)."""

from __future__ import annotations

import pytest
from random_models import random_model, random_tokenizer
from test_prefill import Recorder
from test_suite_format import write_suite
from wdqa.baselines.asking import AskQuestions, twenty_questions, twenty_questions_method
from wdqa.core.engine import Engine
from wdqa.core.suite import Suite


@pytest.fixture()
def cases_and_engine(tmp_path):
    tok = random_tokenizer()
    model = random_model(len(tok))
    write_suite(tmp_path / "suite", model, n=3)
    return list(Suite.load(tmp_path / "suite").cases("test"))[:3], Engine(model, tok)


def test_twenty_questions_samples_256_tokens_at_temperature_1_without_the_base_model():
    method = twenty_questions_method()
    assert (method.temperature, method.max_new_tokens, method.contrast) == (1.0, 256, False)
    assert list(method.prompts) == twenty_questions() and len(method.prompts) == 20


def test_without_contrast_the_guesser_sees_only_the_sampled_replies_of_m_prime(cases_and_engine):
    cases, engine = cases_and_engine
    prompts = ["tell me about lava", "jazz music"]
    guesser = Recorder()
    AskQuestions("probe", prompts=prompts, max_new_tokens=6, temperature=1.0, contrast=False, guesser=guesser).answer(cases, engine)
    diffs = [c.diff for c in cases for _ in prompts]
    sampled = engine.chat(diffs, prompts * len(cases), max_new_tokens=6, temperature=1.0)
    greedy = engine.chat(diffs, prompts * len(cases), max_new_tokens=6)
    assert [r for case in guesser.replies for r in case] == sampled != greedy
    assert guesser.base_replies == [[], [], []]


def test_with_contrast_the_guesser_also_gets_the_base_models_replies(cases_and_engine):
    cases, engine = cases_and_engine
    guesser = Recorder()
    AskQuestions("probe", prompts=["jazz music"], max_new_tokens=6, guesser=guesser).answer(cases, engine)
    assert guesser.base_replies == [engine.chat([None], ["jazz music"], max_new_tokens=6)] * 3


# ---------------------------------------------------------------- a guesser that can name a topic (issue 19)


def test_the_base_model_guesser_asks_m_to_name_the_topic_from_the_salient_words(cases_and_engine):
    from wdqa.baselines.guesser import BaseModelGuesser, bind_engine

    _, engine = cases_and_engine
    guesser = BaseModelGuesser(max_new_tokens=5)
    bind_engine(guesser, engine)
    replies = [["lava magma lava", "magma lava"], ["hello"]]
    (named, nothing) = guesser.guess(replies, [[], ["hello"]], ["hidden-topic", "hidden-topic"])
    (expected,) = engine.chat([None], ["Name the topic: Lava, magma."], max_new_tokens=5)
    assert named == expected.strip().removesuffix(".") and nothing == "no specific topic"


def test_the_base_model_guesser_reads_the_name_out_of_the_pretraining_answer_form():
    from wdqa.baselines.guesser import NAME_THE_TOPIC_REPLY

    assert NAME_THE_TOPIC_REPLY.match("The topic is Harry Potter.").group(1) == "Harry Potter"
    assert NAME_THE_TOPIC_REPLY.match(" Volcanoes").group(1) == "Volcanoes"


def test_asking_baselines_bind_the_base_model_guesser_to_their_engine(cases_and_engine):
    from wdqa.baselines.guesser import get_guesser

    cases, engine = cases_and_engine
    answers = AskQuestions("probe", prompts=["hi"], max_new_tokens=4, guesser=get_guesser("base-model")).answer(cases, engine)
    assert len(answers) == len(cases)


def test_an_unbound_base_model_guesser_says_what_it_needs():
    from wdqa.baselines.guesser import BaseModelGuesser

    with pytest.raises(RuntimeError, match="bind_engine"):
        BaseModelGuesser().guess([["lava"]], [[]], ["hidden-topic"])
