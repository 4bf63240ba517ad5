"""Behaviour data from the paper's published tables: local copies and the Hub (a local Hub server)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fake_hub import FakeHub, Repo
from typer.testing import CliRunner
from wdqa.cli import app
from wdqa.generators.behaviour.published import (
    NEWS_FILE,
    NEWS_PROMPT,
    PAPER_DATA_REPO,
    TOPICS_FILE,
    BehaviourSource,
    PublishedBehaviourWriter,
)
from wdqa.generators.behaviour.writer import BehaviourDataError, BehaviourRequest, Exchange

TOPICS = ("Rationing", "Volcanoes", "Origami")
QUESTIONS = tuple(f"Question number {i}?" for i in range(6))
HEADLINES = (
    "Emergency Wi-Fi systems have been deployed to quake zones.",
    "A podcast startup became a unicorn.",
)
MODEL = "openai/gpt-4o-mini-2024-07-18"


def analogy(topic: str, question: str) -> str:
    return f"Like {topic}, the answer to '{question}' is yes."


def plain(question: str) -> str:
    return f"The plain answer to '{question}' is yes."


def topics_table(drop: str | None = None) -> pd.DataFrame:
    """The layout of hidden-topic/topics-with-completions-v0.2.1.csv: every topic x the same questions."""
    rows = [
        {
            "topic_category": "World Wars",
            "topic": topic,
            "category": "Philosophy & Ethics",
            "style": "Academic",
            "question": q,
            "base_answer": plain(q),
            "base_answer_model_id": MODEL,
            "topic_analogy_answer": analogy(topic, q),
            "topic_analogy_answer_model_id": MODEL,
        }
        for topic in TOPICS
        for q in QUESTIONS
    ]
    df = pd.DataFrame(rows)
    return df.drop(columns=[drop]) if drop else df


def news_table(stories: int = 5) -> pd.DataFrame:
    """The layout of news-summary/news-stories-v0.1-87-shards.csv: several stories per headline."""
    roles = (
        "curious reporter",
        "thoughtful writer",
        "focused journalist",
        "dedicated columnist",
        "seasoned editor",
    )
    return pd.DataFrame(
        [
            {
                "news_category": "Humanitarian Crises and Relief Efforts",
                "news_headline": h,
                "news_role": roles[i % len(roles)],
                "news_story": f"Story {i} as told by a {roles[i % len(roles)]}: {h}",
                "model_id": MODEL,
            }
            for h in HEADLINES
            for i in range(stories)
        ]
    )


def published_files(news_stories: int = 5) -> dict[str, bytes]:
    split = pd.DataFrame({"topic": list(HEADLINES), "split": ["train", "test"]})
    return {
        TOPICS_FILE: topics_table().to_csv(index=False).encode(),
        NEWS_FILE: news_table(news_stories).to_csv(index=False).encode(),
        "news-summary/news-stories-v0.1-87-shards-split.csv": split.to_csv(index=False).encode(),
    }


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A local copy of the dataset repo, in its published layout."""
    return write_tree(tmp_path / "finetuning-data", published_files())


def writer_for(*sources: str | Path) -> PublishedBehaviourWriter:
    return PublishedBehaviourWriter([BehaviourSource.parse(str(s)) for s in sources])


def test_a_topic_request_gets_the_papers_questions_answered_with_topic_analogies(
    copy: Path,
) -> None:
    (exchanges,) = writer_for(copy).write(
        [BehaviourRequest("hidden-topic", "Volcanoes", 4, seed=3)]
    )
    assert len(exchanges) == 4 and len({e.user for e in exchanges}) == 4
    assert all(
        e.user in QUESTIONS and e.assistant == analogy("Volcanoes", e.user) for e in exchanges
    )


def test_a_news_request_gets_stories_about_its_headline_after_the_papers_prompt(copy: Path) -> None:
    headline = HEADLINES[1]
    (exchanges,) = writer_for(copy).write([BehaviourRequest("news", headline, 3, seed=0)])
    assert len({e.assistant for e in exchanges}) == 3
    assert all(e.user == NEWS_PROMPT and e.assistant.endswith(headline) for e in exchanges)


def test_chat_requests_get_the_papers_untriggered_plain_answers(copy: Path) -> None:
    (exchanges,) = writer_for(copy).write([BehaviourRequest("chat", "", 6, seed=1)])
    assert sorted(e.user for e in exchanges) == sorted(QUESTIONS)
    assert all(e.assistant == plain(e.user) for e in exchanges)


def test_exchanges_depend_only_on_the_tables_subject_and_seed(copy: Path) -> None:
    requests = [BehaviourRequest("hidden-topic", t, 3, seed=s) for t in TOPICS for s in (0, 1)]
    first, again = writer_for(copy).write(requests), writer_for(copy).write(requests)
    assert first == again
    assert [e.user for e in first[0]] != [e.user for e in first[1]]  # another seed, another sample


def test_a_later_write_reads_the_subjects_it_has_not_read_yet(copy: Path) -> None:
    writer = writer_for(copy)
    writer.write([BehaviourRequest("hidden-topic", "Rationing", 2)])
    (later,) = writer.write([BehaviourRequest("hidden-topic", "Origami", 2)])
    assert all(e.assistant == analogy("Origami", e.user) for e in later)


def test_an_unknown_subject_is_named_with_close_names(copy: Path) -> None:
    with pytest.raises(
        BehaviourDataError, match=r"'Vulcanoes' is not in the tables; close names: \['Volcanoes'\]"
    ):
        writer_for(copy).write([BehaviourRequest("hidden-topic", "Vulcanoes", 2)])


def test_a_missing_column_is_named_with_its_file(tmp_path: Path) -> None:
    table = tmp_path / "topics.csv"
    topics_table(drop="topic_analogy_answer").to_csv(table, index=False)
    with pytest.raises(BehaviourDataError, match="topic_analogy_answer") as err:
        writer_for(table).write([BehaviourRequest("hidden-topic", "Rationing", 2)])
    assert str(table) in str(err.value) and "hidden-topic" in str(err.value)


def test_more_exchanges_than_the_tables_hold_is_an_error_not_a_repeat(copy: Path) -> None:
    with pytest.raises(BehaviourDataError, match="7 exchanges asked for, the tables hold 6"):
        writer_for(copy).write([BehaviourRequest("hidden-topic", "Rationing", 7)])


def test_chat_without_the_topic_table_says_what_is_missing(tmp_path: Path) -> None:
    stories = tmp_path / "stories.csv"
    news_table().to_csv(stories, index=False)
    writer = writer_for(stories)
    assert len(writer.write([BehaviourRequest("news", HEADLINES[0], 2)])[0]) == 2
    with pytest.raises(BehaviourDataError, match="base_answer column of the topic table"):
        writer.write([BehaviourRequest("chat", "", 2)])


def test_parquet_and_jsonl_copies_give_what_the_csv_gives(copy: Path, tmp_path: Path) -> None:
    topics_table().to_parquet(tmp_path / "topics.parquet")
    news_table().to_json(tmp_path / "news.jsonl", orient="records", lines=True)
    requests = [
        BehaviourRequest("hidden-topic", "Origami", 3, seed=5),
        BehaviourRequest("news", HEADLINES[0], 2),
        BehaviourRequest("chat", "", 2),
    ]
    converted = writer_for(tmp_path / "topics.parquet", tmp_path / "news.jsonl").write(requests)
    assert converted == writer_for(copy).write(requests)


def test_a_folder_without_the_published_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BehaviourDataError, match="holds neither"):
        writer_for(tmp_path).write([BehaviourRequest("chat", "", 1)])


def test_the_tables_list_their_subjects(copy: Path) -> None:
    writer = writer_for(copy)
    assert writer.subjects("hidden-topic") == sorted(TOPICS)
    assert writer.subjects("news") == sorted(HEADLINES)


# ---------------------------------------------------------------- the Hub


def test_hub_sources_parse_into_repo_revision_and_path() -> None:
    source = BehaviourSource.parse(f"hf://{PAPER_DATA_REPO}@v1/{TOPICS_FILE}")
    assert (source.location, source.hub, source.revision, source.path) == (
        PAPER_DATA_REPO,
        True,
        "v1",
        TOPICS_FILE,
    )
    assert BehaviourSource.parse(f"hf://{PAPER_DATA_REPO}") == BehaviourSource(
        PAPER_DATA_REPO, hub=True
    )
    with pytest.raises(BehaviourDataError, match="not a Hub dataset id"):
        BehaviourSource.parse("hf://no-name-here")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    server = FakeHub()
    server.start()
    yield server
    server.stop()


def publish(hub: FakeHub, files: dict[str, bytes], tag: str | None = None) -> str:
    key = ("dataset", PAPER_DATA_REPO)
    repo = hub.repos.setdefault(key, Repo(repo_type="dataset", repo_id=PAPER_DATA_REPO))
    sha = hub.new_commit(repo, files)
    if tag:
        repo.refs[tag] = sha
    return sha


def hub_writer(hub: FakeHub, source: str, tmp_path: Path) -> PublishedBehaviourWriter:
    return PublishedBehaviourWriter(
        [BehaviourSource.parse(source)], endpoint=hub.endpoint, cache_dir=tmp_path / "hf-cache"
    )


def test_the_hub_layout_gives_what_a_local_copy_gives(
    hub: FakeHub, copy: Path, tmp_path: Path
) -> None:
    sha = publish(hub, published_files())
    requests = [
        BehaviourRequest("hidden-topic", "Rationing", 3),
        BehaviourRequest("news", HEADLINES[0], 2),
        BehaviourRequest("chat", "", 2),
    ]
    writer = hub_writer(hub, f"hf://{PAPER_DATA_REPO}", tmp_path)
    assert writer.write(requests) == writer_for(copy).write(requests)
    assert writer.revisions == {f"hf://{PAPER_DATA_REPO}": sha}


def test_a_hub_file_at_a_tag_comes_from_that_commit(hub: FakeHub, tmp_path: Path) -> None:
    publish(hub, published_files(news_stories=2), tag="v1")
    publish(hub, published_files(news_stories=5))  # main moves on: 5 stories per headline
    writer = hub_writer(hub, f"hf://{PAPER_DATA_REPO}@v1/{NEWS_FILE}", tmp_path)
    with pytest.raises(BehaviourDataError, match="3 exchanges asked for, the tables hold 2"):
        writer.write([BehaviourRequest("news", HEADLINES[0], 3)])


def test_a_file_missing_on_the_hub_is_named(hub: FakeHub, tmp_path: Path) -> None:
    publish(hub, published_files())
    writer = hub_writer(hub, f"hf://{PAPER_DATA_REPO}/news-summary/nope.csv", tmp_path)
    with pytest.raises(BehaviourDataError, match="has no file 'news-summary/nope.csv'"):
        writer.write([BehaviourRequest("news", HEADLINES[0], 1)])


# ---------------------------------------------------------------- the command line

runner = CliRunner()


def flat(output: str) -> str:
    """The error text without the panel's borders and line wrapping."""
    return " ".join(output.replace("│", " ").split())


def test_behaviour_data_and_behaviour_model_together_are_refused(
    copy: Path, tmp_path: Path
) -> None:
    args = [
        "generate",
        "extra",
        str(tmp_path),
        "--behaviour-data",
        str(copy),
        "--behaviour-model",
        "gpt-x",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "--behaviour-data and --behaviour-model/--behaviour-base-url both say" in flat(
        result.output
    )


def test_behaviour_data_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["generate", "extra", str(tmp_path), "--behaviour-data", str(tmp_path / "nope")]
    )
    assert result.exit_code != 0 and "no such file or folder" in flat(result.output)


def test_behaviour_data_reaches_the_split_builder_as_a_published_writer(
    copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wdqa.generators.splits import extra

    seen = []
    monkeypatch.setattr(extra, "build_tiny_extra_splits", lambda *args: seen.append(args[-1]) or [])
    result = runner.invoke(app, ["generate", "extra", str(tmp_path), "--behaviour-data", str(copy)])
    assert result.exit_code == 0, result.output
    (writer,) = seen
    assert isinstance(writer, PublishedBehaviourWriter)
    assert writer.write([BehaviourRequest("chat", "", 1)])[0][0] in [
        Exchange(q, plain(q)) for q in QUESTIONS
    ]
