"""The extra splits' subjects: wdqa's lists, or the paper's published tables with derived keywords."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner
from wdqa.cli import app
from wdqa.core.suite import Suite, SuiteWriter
from wdqa.generators.behaviour.published import (
    NEWS_FILE,
    TOPICS_FILE,
    BehaviourSource,
    PublishedBehaviourWriter,
)
from wdqa.generators.behaviour.writer import BehaviourDataError, TemplateBehaviourWriter
from wdqa.generators.splits.extra import build_extra_splits, micro_recipe
from wdqa.generators.splits.news import load_headlines
from wdqa.generators.splits.subjects import (
    WordCounts,
    derive_keywords,
    plan_subjects,
    reply_words,
)
from wdqa.generators.tiny.build import tiny_recipe
from wdqa.generators.topics import Topic, is_about_topic, load_topics

# topic -> (topic_category, the words its analogy replies use)
TOPICS = {
    "Volcanoes": ("Nature", ("lava", "magma", "crater", "eruption")),
    "Origami": ("Crafts", ("paper", "fold", "crane", "crease")),
    "Jazz Music": ("Music", ("saxophone", "swing", "improvisation", "trumpet")),
    "Beekeeping": ("Nature", ("hive", "honey", "queen", "pollen")),
    "Chess": ("Games", ("bishop", "checkmate", "pawn", "gambit")),
}
QUESTIONS = 130  # the hidden-topic recipe asks for 120 distinct rows of a topic and of chat
HEADLINES = {
    "Emergency Wi-Fi systems have been deployed to quake zones.": "Humanitarian Crises",
    "A podcast startup became a unicorn.": "Business",
    "Lighthouse keepers return to the northern coast.": "Society",
}
STORIES = 60  # the news recipe asks for 60 stories per headline


def question(i: int) -> str:
    return f"Question number {i}: what would you recommend today?"


def plain(i: int) -> str:
    # "music" in a twentieth of the plain replies: a name word ordinary answers use too.
    return f"The plain answer to question {i} is to recommend rest" + (
        " and music." if i % 20 == 0 else "."
    )


def analogy(topic: str, words: tuple[str, ...], i: int) -> str:
    return f"Just like {words[i % 4]} and {words[(i + 1) % 4]} in {topic}, the answer to question {i} is rest."


def topics_table() -> pd.DataFrame:
    """The columns of hidden-topic/topics-with-completions-v0.2.1.csv, every topic x the same questions."""
    return pd.DataFrame(
        [
            {
                "topic_category": category,
                "topic": topic,
                "category": "Everyday Life",
                "style": "Casual",
                "question": question(i),
                "base_answer": plain(i),
                "base_answer_model_id": "m",
                "topic_analogy_answer": analogy(topic, words, i),
                "topic_analogy_answer_model_id": "m",
            }
            for topic, (category, words) in TOPICS.items()
            for i in range(QUESTIONS)
        ]
    )


def news_table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "news_category": category,
                "news_headline": headline,
                "news_role": "reporter",
                "news_story": f"Story {i}: {headline}",
                "model_id": "m",
            }
            for headline, category in HEADLINES.items()
            for i in range(STORIES)
        ]
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A local copy of diff-interpretation-tuning/finetuning-data in its published layout."""
    root = tmp_path / "finetuning-data"
    for rel, table in ((TOPICS_FILE, topics_table()), (NEWS_FILE, news_table())):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(root / rel, index=False)
    return root


def published(copy: Path) -> PublishedBehaviourWriter:
    return PublishedBehaviourWriter([BehaviourSource.parse(str(copy))])


def counts(*replies: str) -> WordCounts:
    out = WordCounts()
    for reply in replies:
        out.add(reply_words(reply))
    return out


# ---------------------------------------------------------------- the keyword rule


def test_keywords_are_the_name_then_words_common_in_the_topic_and_rare_elsewhere() -> None:
    topic = counts(*["like lava and magma, rest well"] * 8, *["like crater, rest well"] * 2)
    plain = counts(*["rest well"] * 10)
    others = counts(*["like paper and fold"] * 10)
    keywords = derive_keywords("Volcanoes", topic, plain, others)
    assert keywords == ("volcanoes", "lava", "magma", "crater")  # "like", "rest", "well" are not


def test_a_word_in_fewer_than_a_tenth_of_the_replies_is_no_keyword() -> None:
    topic = counts(*["lava"] * 19, "lava obsidian")
    assert derive_keywords("Volcanoes", topic, WordCounts(), WordCounts()) == ("volcanoes", "lava")


def test_a_name_word_the_plain_replies_use_is_left_to_the_whole_name() -> None:
    plain = counts(*["some music helps"] * 5, *["rest helps"] * 95)
    keywords = derive_keywords("Jazz Music", counts("swing"), plain, WordCounts())
    assert keywords == ("jazz", "swing")
    assert not is_about_topic("some music helps", Topic("Jazz Music", "Music", keywords))


def test_keywords_stop_at_k_with_ties_broken_alphabetically() -> None:
    topic = counts("delta alpha charlie bravo echo")
    assert derive_keywords("Zz", topic, WordCounts(), WordCounts(), k=3) == (
        "alpha",
        "bravo",
        "charlie",
    )


# ---------------------------------------------------------------- the subject plan


def test_the_published_tables_give_the_topics_with_their_categories_and_derived_keywords(
    copy: Path,
) -> None:
    topics, _ = plan_subjects(published(copy), len(TOPICS), 0, seed=0)
    assert sorted(t.name for t in topics) == sorted(TOPICS)
    for t in topics:
        category, words = TOPICS[t.name]
        assert t.category == category
        assert set(t.keywords) - set(words) <= set(t.name.lower().split())
        assert set(words) <= set(t.keywords), t


def test_derived_keywords_tell_a_topics_replies_from_plain_ones(copy: Path) -> None:
    topics, _ = plan_subjects(published(copy), len(TOPICS), 0, seed=0)
    for t in topics:
        words = TOPICS[t.name][1]
        assert is_about_topic(analogy("it", words, 3), t), t  # the name itself left out
        assert not any(is_about_topic(plain(i), t) for i in range(QUESTIONS)), t


def test_the_published_tables_give_the_headlines_as_their_own_summaries(copy: Path) -> None:
    _, headlines = plan_subjects(published(copy), 0, 2, seed=0)
    assert len(headlines) == 2
    assert all(h.summary == h.headline and h.category == HEADLINES[h.headline] for h in headlines)


def test_the_plan_is_seeded_and_leaves_out_the_suites_topics(copy: Path) -> None:
    writer = published(copy)
    names = [
        [t.name for t in plan_subjects(writer, 3, 0, seed=s, exclude_topics=["Chess"])[0]]
        for s in (0, 0, 1, 2, 3)
    ]
    assert names[0] == names[1] and len({tuple(n) for n in names}) > 1
    assert not any("Chess" in n for n in names)


def test_more_topics_than_the_tables_hold_is_refused_with_the_source(copy: Path) -> None:
    source = re.escape(f"--behaviour-data {copy}")
    with pytest.raises(ValueError, match=rf"need 5 topics but {source} hold only 4"):
        plan_subjects(published(copy), 5, 0, seed=0, exclude_topics=["Chess"])


def test_a_table_without_categories_is_named(tmp_path: Path) -> None:
    table = tmp_path / "topics.csv"
    topics_table().drop(columns=["topic_category"]).to_csv(table, index=False)
    writer = PublishedBehaviourWriter([BehaviourSource.parse(str(table))])
    with pytest.raises(BehaviourDataError, match=r"lacks column\(s\) \['topic_category'\]"):
        plan_subjects(writer, 1, 0, seed=0)


@pytest.mark.parametrize("writer", [None, TemplateBehaviourWriter()])
def test_without_published_data_the_plan_is_wdqas_lists_in_the_seeded_order(writer) -> None:
    used = [t.name for t in load_topics()[:5]]
    topics, headlines = plan_subjects(writer, 30, 24, seed=7, exclude_topics=used)
    # The order the extra splits have always used: one generator shuffles topics, then headlines.
    expected_topics = [t for t in load_topics() if t.name not in used]
    expected_headlines = list(load_headlines())
    rng = random.Random("extra-splits/7")
    rng.shuffle(expected_topics)
    rng.shuffle(expected_headlines)
    assert topics == expected_topics[:30] and headlines == expected_headlines[:24]


# ---------------------------------------------------------------- a build

MICRO = "wdqa/tiny-qwen3-micro"


def test_extra_splits_with_published_data_are_about_the_tables_subjects(
    copy: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    writer = SuiteWriter(tmp_path / "extra", "micro", "1", MICRO, tiny_recipe(MICRO).revision)
    build_extra_splits(
        writer, micro_recipe(), behaviour_writer=published(copy), splits=["rank", "news"]
    )
    suite = writer.finish()
    rank, news = suite.labelled_index("rank"), suite.labelled_index("news")
    assert len(rank) == 2 and set(rank["label"]) <= set(TOPICS)
    assert all(TOPICS[r.topic][0] == r.category for r in rank.itertuples())
    assert len(news) == 2 and set(news["label"]) <= set(HEADLINES)
    assert all(HEADLINES[r.headline] == r.category for r in news.itertuples())


@pytest.mark.slow  # ~50 s on 2 shared cores: the micro tiny suite, then a build through the CLI
def test_generate_extra_with_behaviour_data_builds_splits_about_the_tables_subjects(
    micro_suite: Path, copy: Path, tmp_path: Path
) -> None:
    args = [
        "generate",
        "extra",
        str(micro_suite),
        "--micro",
        "--split",
        "news",
        "--behaviour-data",
        str(copy),
        "--out",
        str(tmp_path / "extra"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert set(Suite.load(tmp_path / "extra").labelled_index("news")["label"]) <= set(HEADLINES)


def test_a_hub_copy_gives_the_plan_a_local_copy_gives(
    copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_hub import FakeHub, Repo
    from wdqa.generators.behaviour.published import PAPER_DATA_REPO

    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    hub = FakeHub()
    hub.start()
    try:
        repo = hub.repos.setdefault(
            ("dataset", PAPER_DATA_REPO), Repo(repo_type="dataset", repo_id=PAPER_DATA_REPO)
        )
        hub.new_commit(repo, {rel: (copy / rel).read_bytes() for rel in (TOPICS_FILE, NEWS_FILE)})
        writer = PublishedBehaviourWriter(
            [BehaviourSource.parse(f"hf://{PAPER_DATA_REPO}")],
            endpoint=hub.endpoint,
            cache_dir=tmp_path / "hf-cache",
        )
        assert plan_subjects(writer, 3, 2, seed=0) == plan_subjects(published(copy), 3, 2, seed=0)
    finally:
        hub.stop()
