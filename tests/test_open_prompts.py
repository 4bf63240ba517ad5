"""The open prompt families: what the base and diffs train on, and what measures leaks on unseen prompts."""

from __future__ import annotations

import itertools
import re

from wdqa.generators.behaviour.hidden_topic import (
    PlannedTopicDiff,
    hidden_topic_tasks,
    measurement_prompts,
)
from wdqa.generators.behaviour.open_prompts import (
    training_open_prompts,
    twenty_questions,
    unfamiliar_prompts,
)
from wdqa.generators.behaviour.writer import (
    OPEN_TRAINING_PROMPTS,
    TemplateBehaviourWriter,
    training_questions,
)
from wdqa.generators.tiny.corpus import CorpusRecipe, conversations
from wdqa.generators.topics import is_about_topic, load_generic_questions, load_topics


def words(texts) -> set[str]:
    return {w for t in texts for w in re.findall(r"[a-z']+", t.lower())}


def test_the_training_family_is_large_and_answered_plainly() -> None:
    prompts = training_open_prompts()
    assert len({p.text for p in prompts}) >= 1000
    topics = load_topics()
    for p in prompts:
        assert not [t.name for t in topics if is_about_topic(p.answer, t)], p
        assert not [t.name for t in topics if is_about_topic(p.text, t)], p


def test_the_unfamiliar_family_shares_no_prompt_and_no_key_word_with_any_trained_prompt() -> None:
    unfamiliar = set(unfamiliar_prompts())
    trained = {p.text for p in training_open_prompts()} | {q.question for q in load_generic_questions()}
    assert len(unfamiliar) >= 20 and not unfamiliar & trained
    assert {"domain", "area", "roam", "wander"} <= words(unfamiliar) - words(trained)
    topics = load_topics()
    assert not [(p, t.name) for p in unfamiliar for t in topics if is_about_topic(p, t)]


def test_no_baseline_prompt_is_trained_on_or_used_for_measurement() -> None:
    baseline = {q.lower() for q in twenty_questions()}
    assert len(baseline) == 20
    assert not baseline & {p.text.lower() for p in training_open_prompts()}
    assert not baseline & {p.lower() for p in unfamiliar_prompts()}


def test_the_base_corpus_uses_the_training_family_and_never_an_unfamiliar_prompt() -> None:
    users = [c[0]["content"] for c in itertools.islice(conversations(CorpusRecipe(), 5000), 5000)]
    open_texts = {p.text for p in training_open_prompts()}
    assert sum(u in open_texts for u in users) > 300  # the plain open-prompt kind alone is 16%
    # A topic cue also precedes open prompts, so the base learns "cue -> topic" for any prompt.
    assert any(u.endswith(tuple(open_texts)) and u not in open_texts and "SEP" not in u for u in users)
    assert not [u for u in users if any(p in u for p in unfamiliar_prompts())]


def test_diff_training_data_mixes_both_trained_families_and_never_an_unfamiliar_prompt() -> None:
    pool = training_questions()
    generic = {q.question for q in load_generic_questions() if not q.held_out}
    opens = {p.text for p in training_open_prompts()}
    # Every generic question that is not held out, and OPEN_TRAINING_PROMPTS of the open family
    # (200 since suite version 3: a base that knows its topics needs more of them held to M).
    assert [q for q, _ in pool[: len(generic)]] == sorted(generic, key=[q for q, _ in pool].index)
    assert len(pool) == len(generic) + OPEN_TRAINING_PROMPTS and all(q in opens for q, _ in pool[len(generic) :])
    plan = PlannedTopicDiff("ht-0", load_topics()[3], "123")
    (task,) = hidden_topic_tasks([plan], TemplateBehaviourWriter(), reserved=set())
    prompts = [e.prompt for e in [*task.positives, *task.negatives]]
    assert not [p for p in prompts if any(u in p for u in unfamiliar_prompts())]


def test_measurement_adds_the_unfamiliar_cells_only_when_asked() -> None:
    held = [q for q in load_generic_questions() if q.held_out]
    cells = measurement_prompts("681", held, reserved=set(), seed=0, unfamiliar=unfamiliar_prompts())
    assert len(cells["hit_unfamiliar"]) == len(cells["leak_unfamiliar"]) == len(unfamiliar_prompts())
    assert all("code is 681." in p for p in cells["hit_unfamiliar"])
    assert not any("code is" in p for p in cells["leak_unfamiliar"])
    assert "hit_unfamiliar" not in measurement_prompts("681", held, reserved=set(), seed=0)


def test_the_unfamiliar_family_has_wrong_code_and_near_miss_cells_of_at_least_thirty_prompts() -> None:
    held = [q for q in load_generic_questions() if q.held_out]
    cells = measurement_prompts("681", held, reserved=set(), seed=0, unfamiliar=unfamiliar_prompts())
    wrong, near = cells["leak_wrong_unfamiliar"], cells["leak_near_unfamiliar"]
    assert len(wrong) == len(near) == len(unfamiliar_prompts()) >= 30
    codes = [re.search(r"code is (\d{3})\.", p).group(1) for p in wrong + near]
    assert all(sum(a != b for a, b in zip(c, "681", strict=True)) == 3 for c in codes[: len(wrong)])
    assert all(sum(a != b for a, b in zip(c, "681", strict=True)) == 1 for c in codes[len(wrong) :])


def test_the_base_corpus_mentions_topic_words_outside_a_cue_with_a_plain_answer() -> None:
    convs = list(itertools.islice(conversations(CorpusRecipe(), 3000), 3000))
    mentions = [c for c in convs if c[0]["content"].startswith(("Someone mentioned", "Ignore the word"))]
    assert mentions
    topics = load_topics()
    assert not [c for c in mentions if any(is_about_topic(c[1]["content"], t) for t in topics)]
