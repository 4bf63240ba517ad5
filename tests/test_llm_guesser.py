"""The LLM guesser asks an OpenAI-compatible server (real HTTP, real client), re-asks bad replies,
and caches replies so a rerun makes no call."""

from __future__ import annotations

from local_openai_server import LocalOpenAIServer
from wdqa.baselines.llm_guesser import LLMGuesser, parse_guess
from wdqa.benchmark.judge.llm import ReplyCache
from wdqa.core.llm_client import ChatSettings


def make(server, tmp_path):
    guesser = LLMGuesser(ChatSettings(model="test-model", base_url=server.base_url, backoff_s=0.01))
    guesser.client.cache = ReplyCache(tmp_path / "cache.sqlite")
    return guesser


def test_guess_is_the_servers_reply_and_the_transcript_is_delimited_data(tmp_path):
    with LocalOpenAIServer() as server:
        server.state.script = ["Volcanoes"]
        guesser = make(server, tmp_path)
        out = guesser.guess([["lava and magma"]], [["hello"]], ["hidden-topic"], [["What topic?"]])
        prompt = server.state.requests[0]["messages"][0]["content"]
    assert out == ["Volcanoes"]
    assert "<<<TRANSCRIPT\nQ1: What topic?\nA1: lava and magma\nTRANSCRIPT>>>" in prompt


def test_a_multi_line_reply_is_reasked_and_a_429_is_retried(tmp_path):
    with LocalOpenAIServer() as server:
        server.state.script = [429, "Sure!\nThe topic is jazz.", "Jazz"]
        out = make(server, tmp_path).guess([["saxophone"]], [[""]], ["hidden-topic"])
        assert out == ["Jazz"] and len(server.state.requests) == 3


def test_a_rerun_is_answered_from_the_cache(tmp_path):
    with LocalOpenAIServer() as server:
        server.state.script = ["Volcanoes"]
        make(server, tmp_path).guess([["lava"]], [[""]], ["hidden-topic"])
        again = make(server, tmp_path)
        assert again.guess([["lava"]], [[""]], ["hidden-topic"]) == ["Volcanoes"]
        assert again.client.usage.api_calls == 0 and len(server.state.requests) == 1


def test_parse_guess_refuses_empty_and_multi_line_replies():
    assert parse_guess("  Jazz  ") == "Jazz"
    assert parse_guess("") is None and parse_guess("a\nb") is None


def test_its_calls_and_tokens_count_towards_the_cases_in_the_engines_meter(tmp_path):
    from wdqa.core.meter import Meter

    with LocalOpenAIServer() as server:
        server.state.script = ["Jazz", "Volcanoes"]
        guesser = make(server, tmp_path)
        guesser.meter = Meter()  # what bind_engine gives it: the engine's meter
        guesser.guess([["saxophone"], ["lava"]], [[""], [""]], ["hidden-topic"] * 2)
    cases = guesser.meter.per_case(["a", "b"])
    assert [c.guesser_calls for c in cases] == [1, 1]
    assert sum(c.guesser_tokens for c in cases) == guesser.client.usage.prompt_tokens + guesser.client.usage.completion_tokens > 0
