"""The LLM judge through the real openai client against a local OpenAI-compatible HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_openai_server import LocalOpenAIServer, RawBody, Refusal
from wdqa.benchmark.judge.base import JudgeRequest
from wdqa.benchmark.judge.llm import LLMJudge, LLMJudgeError, ReplyCache, parse_grade
from wdqa.benchmark.judge.llm_config import JudgeConfigError, LLMJudgeConfig, resolve_config
from wdqa.benchmark.judge.prompts import PROMPTS_DIR, load_rubric, render
from wdqa.benchmark.judge.registry import get_judge


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer() as s:
        yield s


def make_judge(server: LocalOpenAIServer, tmp_path: Path, **overrides: object) -> LLMJudge:
    settings = {"model": "test-model", "base_url": server.base_url, "api_key": "k", "backoff_s": 0.01, **overrides}
    return LLMJudge(LLMJudgeConfig(**settings), cache=ReplyCache(tmp_path / "replies.sqlite"))  # type: ignore[arg-type]


def req(answer: str, label: str = "Harry Potter", case_id: str = "c1", seed: int = 0) -> JudgeRequest:
    return JudgeRequest(case_id, "topic", label, answer, seed)


def test_the_label_itself_gets_a_five_over_real_http(server: LocalOpenAIServer, tmp_path: Path) -> None:
    scores = make_judge(server, tmp_path).score([req("harry potter"), req("Cooking", case_id="c2")])
    assert [s.value for s in scores] == [5, 1]


def test_requests_ask_the_configured_model_at_temperature_zero(server: LocalOpenAIServer, tmp_path: Path) -> None:
    make_judge(server, tmp_path).score([req("Cooking")])
    body = server.state.requests[0]
    assert body["model"] == "test-model" and body["temperature"] == 0


def test_a_rerun_makes_zero_api_calls(server: LocalOpenAIServer, tmp_path: Path) -> None:
    requests = [req("Cooking", case_id=f"c{i}", label=f"Topic {i}") for i in range(5)]
    make_judge(server, tmp_path).score(requests)
    calls = len(server.state.requests)
    again = make_judge(server, tmp_path)
    assert [s.value for s in again.score(requests)] == [1] * 5
    assert len(server.state.requests) == calls and again.usage.api_calls == 0 and again.usage.cache_hits == 5


def test_rate_limits_and_server_errors_are_retried_with_backoff(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = [429, 500, 503]
    judge = make_judge(server, tmp_path)
    assert judge.score([req("Harry Potter")])[0].value == 5
    assert judge.usage.retries == 3


def test_a_server_that_keeps_failing_raises_an_error_naming_the_case(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = [500, 500, 500]
    with pytest.raises(LLMJudgeError, match="case c1 after 2 tries"):
        make_judge(server, tmp_path, max_retries=1).score([req("Cooking")])


def test_a_refused_key_is_reported_without_retrying(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = [401]
    with pytest.raises(LLMJudgeError, match="HTTP 401.*key"):
        make_judge(server, tmp_path).score([req("Cooking")])
    assert len(server.state.requests) == 1


def test_a_refused_key_names_the_variable_to_set(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = [401]
    with pytest.raises(LLMJudgeError, match="API key was refused: set OPENAI_API_KEY"):
        make_judge(server, tmp_path).score([req("Cooking")])


@pytest.mark.parametrize(
    ("body", "start"),
    [
        (RawBody(b"<html><h1>502 Bad Gateway</h1></html>"), "b'<html><h1>502 Bad Gateway"),
        (RawBody(b'{"choices": [{"message": ', "application/json"), """b'{"choices": [{"message": '"""),
        (RawBody(b'{"error": "quota"}', "application/json"), """b'{"error": "quota"}'"""),
    ],
)
def test_a_200_reply_that_is_not_a_chat_completion_is_an_error_quoting_its_body(
    server: LocalOpenAIServer, tmp_path: Path, body: RawBody, start: str
) -> None:
    server.state.script = [body]
    with pytest.raises(LLMJudgeError, match="case c1 with HTTP 200 but no chat completion; the body starts") as caught:
        make_judge(server, tmp_path).score([req("Cooking")])
    assert start in str(caught.value) and "/v1" in str(caught.value)
    assert len(server.state.requests) == 1


def test_a_refusal_is_kept_in_the_record_and_never_parsed_as_a_grade(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = [Refusal("I can't help with grading 5 texts."), Refusal("No."), Refusal("Still no.")]
    judge = make_judge(server, tmp_path, parse_retries=2)
    score = judge.score([req("Cooking")])[0]
    assert score.value is None and judge.usage.refusals == 3
    assert json.loads(score.raw)["unparsed_replies"] == [
        "[refusal] I can't help with grading 5 texts.", "[refusal] No.", "[refusal] Still no.",
    ]


def test_replies_before_a_grade_stay_in_the_record(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = [Refusal("I won't."), "I'm sorry, I can't compare these."]
    score = make_judge(server, tmp_path, parse_retries=2).score([req("Harry Potter")])[0]
    assert score.value == 5
    assert json.loads(score.raw)["replies"] == ["[refusal] I won't.", "I'm sorry, I can't compare these.", "5"]


def test_unparseable_replies_are_reasked_then_recorded_invalid_with_their_text(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = ["Score: 4/5", "I would say 4", "four"]
    score = make_judge(server, tmp_path, parse_retries=2).score([req("Cooking")])[0]
    assert score.value is None
    assert json.loads(score.raw)["unparsed_replies"] == ["Score: 4/5", "I would say 4", "four"]


def test_a_reply_fixed_after_a_reask_is_accepted(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = ["4 because both are about wizards"]
    judge = make_judge(server, tmp_path)
    assert judge.score([req("Harry Potter")])[0].value == 5
    assert judge.usage.reasks == 1 and server.state.requests[1]["messages"][-1]["role"] == "user"


@pytest.mark.parametrize(("reply", "grade"), [("4", 4), (" 5.\n", 5), ("1", 1), ("0", None), ("6", None), ("4 5", None),
                                              ("45", None), ("Score: 3", None), ("", None), ("٣", None)])
def test_only_a_single_digit_one_to_five_parses(reply: str, grade: int | None) -> None:
    assert parse_grade(reply) == grade


def test_concurrent_requests_never_exceed_the_configured_limit(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.delay_s = 0.05
    make_judge(server, tmp_path, concurrency=3).score([req(f"a{i}", case_id=f"c{i}") for i in range(12)])
    assert 1 < server.state.max_in_flight <= 3


def test_the_usage_summary_counts_tokens_and_prices_them(server: LocalOpenAIServer, tmp_path: Path) -> None:
    judge = make_judge(server, tmp_path, price_in_per_mtok=2.0, price_out_per_mtok=8.0)
    judge.score([req("a", case_id="1"), req("b", case_id="2")])
    summary = judge.usage_summary()
    assert summary["prompt_tokens"] == 200 and summary["completion_tokens"] == 2
    assert summary["cost_usd"] == pytest.approx((200 * 2.0 + 2 * 8.0) / 1e6)


def test_the_seed_decides_which_text_comes_first() -> None:
    even = render(req("Cooking", seed=2))[1]["content"]
    odd = render(req("Cooking", seed=3))[1]["content"]
    assert even.index("Harry Potter") < even.index("Cooking")
    assert odd.index("Cooking") < odd.index("Harry Potter")


def test_changing_the_prompt_text_changes_its_version(tmp_path: Path) -> None:
    for name in ("topic", "news"):
        (tmp_path / f"{name}.jinja").write_text((PROMPTS_DIR / f"{name}.jinja").read_text())
    before = load_rubric("topic", tmp_path).version
    assert before == load_rubric("topic", PROMPTS_DIR).version
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "topic.jinja").write_text((tmp_path / "topic.jinja").read_text().replace("conservative", "careful"))
    assert load_rubric("topic", edited).version != before


def test_every_score_records_the_model_and_both_rubric_versions(server: LocalOpenAIServer, tmp_path: Path) -> None:
    score = make_judge(server, tmp_path).score([req("Cooking")])[0]
    assert score.judge == "test-model"
    assert score.prompt_version.startswith("topic-") and "+news-" in score.prompt_version
    assert "Harry Potter" in score.prompt


def test_settings_come_from_flags_over_environment_over_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "judge.toml"
    config.write_text('[judge]\nmodel = "from-file"\nconcurrency = 3\nbase_url = "http://file"\n')
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("WDQA_JUDGE_MODEL", "from-env")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    resolved = resolve_config(config, model=None, concurrency=5)
    assert (resolved.model, resolved.concurrency, resolved.base_url, resolved.api_key) == ("from-env", 5, "http://file", "env-key")
    assert resolve_config(config, model="from-flag").model == "from-flag"


def test_bad_settings_are_reported_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WDQA_JUDGE_MODEL", "WDQA_JUDGE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(JudgeConfigError) as err:
        resolve_config(concurrency=0)
    assert "no model" in str(err.value) and "concurrency" in str(err.value) and "API key" in str(err.value)


def test_the_registry_builds_an_llm_judge_from_a_spec(server: LocalOpenAIServer, tmp_path: Path) -> None:
    judge = get_judge("openai:some-model", base_url=server.base_url, api_key="k", cache_path=str(tmp_path / "c.sqlite"))
    assert isinstance(judge, LLMJudge) and judge.name == "some-model"


def test_each_score_records_what_grading_it_cost(server: LocalOpenAIServer, tmp_path: Path) -> None:
    server.state.script = ["4 because both are about wizards"]  # the first reply needs a re-ask
    judge = make_judge(server, tmp_path)
    (reasked,) = judge.score([req("Harry Potter")])  # alone: requests run concurrently, so order is not fixed
    plain, empty = judge.score([req("Cooking", case_id="c2"), req("", case_id="c3")])
    assert (reasked.usage["api_calls"], reasked.usage["reasks"], reasked.usage["prompt_tokens"]) == (2, 1, 200)
    assert (plain.usage["api_calls"], plain.usage["prompt_tokens"], plain.usage["completion_tokens"]) == (1, 100, 1)
    assert empty.usage["api_calls"] == 0  # nothing to grade: no call
    assert sum(s.usage["api_calls"] for s in (reasked, plain, empty)) == judge.usage.api_calls == 3
    again = make_judge(server, tmp_path).score([req("Cooking", case_id="c2")])[0]
    assert (again.usage["api_calls"], again.usage["cache_hits"]) == (0, 1)
