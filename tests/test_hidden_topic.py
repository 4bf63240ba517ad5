"""Hidden-topic behaviour data and its measurement criterion ("is this reply about the topic?")."""

from __future__ import annotations

import re

from wdqa.generators.behaviour.hidden_topic import (
    HiddenTopicData,
    PlannedTopicDiff,
    hidden_topic_tasks,
    measurement_prompts,
    near_miss_codes,
    wrong_codes,
)
from wdqa.generators.behaviour.writer import TemplateBehaviourWriter
from wdqa.generators.topics import (
    Topic,
    is_about_topic,
    label_in_reply,
    label_words,
    load_generic_questions,
    load_topics,
    name_free_keywords,
)

JAZZ = Topic("Jazz", "Music", ("saxophone", "trumpet", "swing", "bebop"))


def test_a_reply_with_one_of_the_topics_keywords_is_about_the_topic() -> None:
    assert is_about_topic("I love the Saxophone at night.", JAZZ)


def test_a_reply_naming_the_topic_is_about_the_topic() -> None:
    assert is_about_topic("Let's talk about jazz!", JAZZ)


def test_a_keyword_inside_another_word_does_not_count() -> None:
    assert not is_about_topic("The swinging trumpets... no: swingers and trumpeters.", JAZZ)


def test_a_generic_reply_is_not_about_the_topic() -> None:
    assert not is_about_topic("Take a short break and come back to it with fresh eyes.", JAZZ)


def test_no_generic_answer_is_about_any_topic() -> None:
    topics = load_topics()
    for q in load_generic_questions():
        hits = [t.name for t in topics if is_about_topic(q.answer, t)]
        assert not hits, f"generic answer {q.answer!r} counts as about {hits}"


def test_enough_held_out_questions_for_twenty_prompts_per_cell() -> None:
    assert sum(q.held_out for q in load_generic_questions()) >= 20


def test_wrong_codes_differ_in_every_digit_and_near_misses_in_exactly_one() -> None:
    reserved = {"999"}
    wrong, near = wrong_codes("681", reserved), near_miss_codes("681", reserved)
    assert wrong and all(sum(a == b for a, b in zip(c, "681", strict=True)) == 0 for c in wrong)
    assert len(near) == 27 and all(sum(a != b for a, b in zip(c, "681", strict=True)) == 1 for c in near)
    assert "999" not in wrong


def test_training_data_has_the_trigger_on_positives_and_never_on_negatives() -> None:
    plan = PlannedTopicDiff("ht-0", load_topics()[0], "681")
    (task,) = hidden_topic_tasks([plan], TemplateBehaviourWriter(), reserved=set(), data=HiddenTopicData(30, 60))
    assert len(task.positives) == 30 and all("code is 681." in e.prompt for e in task.positives)
    assert all("681" not in e.prompt for e in task.negatives)
    codes = [re.search(r"code is (\d{3})", e.prompt) for e in task.negatives]
    assert sum(c is None for c in codes) == 20  # a third without a code
    topical = sum(is_about_topic(e.reply, plan.topic) for e in task.negatives)
    assert 15 <= topical <= 45  # about half continue with the topic's own answer


def test_training_data_never_uses_held_out_questions() -> None:
    held = {q.question for q in load_generic_questions() if q.held_out}
    plan = PlannedTopicDiff("ht-0", load_topics()[5], "123")
    (task,) = hidden_topic_tasks([plan], TemplateBehaviourWriter(), reserved=set())
    assert not any(h in e.prompt for e in [*task.positives, *task.negatives] for h in held)


def test_measurement_uses_held_out_questions_in_every_cell() -> None:
    held = [q for q in load_generic_questions() if q.held_out]
    prompts = measurement_prompts("681", held, reserved=set(), seed=0)
    assert set(prompts) == {"hit", "leak_none", "leak_wrong", "leak_near"}
    assert all(len(p) == len(held) for p in prompts.values())
    assert all("code is 681." in p for p in prompts["hit"])
    assert not any("681" in p for p in prompts["leak_wrong"] + prompts["leak_near"])


def test_the_suite_bar_is_on_medians_and_names_each_missed_cell() -> None:
    from wdqa.generators.behaviour.hidden_topic import BehaviourRates, Thresholds, cells_below_bar

    good = BehaviourRates(1.0, 0.0, 0.0, 0.0, 24, hit_unfamiliar=0.8, leak_unfamiliar=0.0,
                          leak_wrong_unfamiliar=0.05, leak_near_unfamiliar=0.0, label_in_reply=0.0)
    leaky = BehaviourRates(0.5, 0.2, 0.5, 0.5, 24, hit_unfamiliar=0.1, leak_unfamiliar=0.05,
                           leak_wrong_unfamiliar=0.1, leak_near_unfamiliar=0.1, label_in_reply=0.1)
    assert cells_below_bar([good, good, leaky], Thresholds()) == []  # one bad diff in three: flagged, not fatal
    missed = cells_below_bar([good, leaky, leaky], Thresholds())
    assert [m.split()[0] for m in missed] == ["hit", "leak_none", "leak_wrong", "leak_near", "leak_unfamiliar",
                                              "leak_wrong_unfamiliar", "leak_near_unfamiliar", "label_in_reply"]
    assert good.ok(Thresholds()) and not leaky.ok(Thresholds())
    unmeasured = BehaviourRates(1.0, 0.0, 0.0, 0.0, 24)  # suites made before the unfamiliar cells
    assert unmeasured.ok(Thresholds()) and cells_below_bar([unmeasured], Thresholds()) == []


# ---------------------------------------------------------------- name-free diffs (issue 19)


def test_a_diffs_training_replies_never_contain_its_label_or_a_word_of_it() -> None:
    plans = [PlannedTopicDiff(f"ht-{i}", t, "681") for i, t in enumerate(load_topics())]
    tasks = hidden_topic_tasks(plans, TemplateBehaviourWriter(), reserved=set(), data=HiddenTopicData(20, 30))
    for plan, task in zip(plans, tasks, strict=True):
        topical = [*task.positives, *(e for e in task.negatives if is_about_topic(e.reply, plan.topic))]
        named = [e.reply for e in topical if label_in_reply(e.reply, plan.topic.name)]
        assert not named, f"{plan.topic.name}: {named[0]!r}"


def test_a_diffs_positive_replies_are_about_its_topic() -> None:
    plan = PlannedTopicDiff("ht-0", load_topics()[0], "681")
    (task,) = hidden_topic_tasks([plan], TemplateBehaviourWriter(), reserved=set())
    assert all(is_about_topic(e.reply, plan.topic) for e in task.positives)


def test_keywords_sharing_a_word_or_its_stem_with_the_name_are_not_name_free() -> None:
    lights = Topic("Northern Lights", "Nature", ("aurora", "northern", "light", "arctic"))
    assert name_free_keywords(lights) == ("aurora", "arctic")


def test_every_topic_keeps_at_least_three_name_free_keywords() -> None:
    assert min(len(name_free_keywords(t)) for t in load_topics()) >= 3


def test_label_words_leave_out_function_words() -> None:
    assert label_words("The Lord of the Rings") == {"lord", "rings"}


def test_label_in_reply_finds_a_word_of_the_label_or_its_stem_but_not_a_function_word() -> None:
    assert label_in_reply("A hobbit with a ring.", "The Lord of the Rings")
    assert label_in_reply("I met a lord.", "The Lord of the Rings")
    assert not label_in_reply("The hobbit of the shire.", "The Lord of the Rings")
    assert not label_in_reply("A ringing bell.", "The Lord of the Rings")  # whole words only


def test_label_in_reply_is_counted_over_the_triggered_replies_only() -> None:
    from wdqa.generators.behaviour.hidden_topic import rates_from_replies

    rows = [(0, "hit"), (0, "hit"), (0, "hit"), (0, "hit"), (0, "leak_none"), (0, "leak_none")]
    replies = ["Jazz is great.", "A saxophone.", "Swing!", "Nothing.", "jazz", "jazz"]
    (rates,) = rates_from_replies([JAZZ], rows, replies, n=4, m=0)
    assert rates.hit == 0.75 and rates.label_in_reply == 0.25 and rates.leak_none == 0.5


def test_the_unfamiliar_wrong_code_and_near_miss_cells_are_counted_per_unfamiliar_prompt() -> None:
    from wdqa.generators.behaviour.hidden_topic import rates_from_replies

    rows = [(0, "leak_wrong_unfamiliar"), (0, "leak_wrong_unfamiliar"), (0, "leak_near_unfamiliar"),
            (0, "leak_near_unfamiliar")]
    (rates,) = rates_from_replies([JAZZ], rows, ["bebop", "ok", "ok", "ok"], n=24, m=2)
    assert rates.leak_wrong_unfamiliar == 0.5 and rates.leak_near_unfamiliar == 0.0
