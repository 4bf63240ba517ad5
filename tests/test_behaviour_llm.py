"""The LLM behaviour writer, through the real openai client against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from wdqa.generators.behaviour.llm import LLMBehaviourWriter, LLMSettings
from wdqa.generators.behaviour.writer import (
    BehaviourDataError,
    BehaviourRequest,
    BehaviourWriter,
    TemplateBehaviourWriter,
)


def _good(subject: str, n: int) -> str:
    return json.dumps(
        {
            "conversations": [
                {"user": f"Question {i}?", "assistant": f"Let us talk about {subject}, part {i}."}
                for i in range(n)
            ]
        }
    )


class ChatServer:
    """Replies per subject from a script: a list of replies used in turn (the last one repeats).

    A reply "HTTP500" answers with a server error. Records every prompt and the peak of concurrent requests.
    """

    def __init__(self) -> None:
        self.script: dict[str, list[str]] = {}
        self.prompts: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.delay_s = 0.0
        self.lock = threading.Lock()

    def reply_for(self, prompt: str) -> str:
        subject = re.search(r'"([^"]+)"', prompt)
        name = subject.group(1) if subject else ""
        n = int(re.search(r"Write (\d+)", prompt).group(1))  # type: ignore[union-attr]
        with self.lock:
            queue = self.script.get(name, [])
            text = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else "GOOD")
        return _good(name, n) if text == "GOOD" else text


@pytest.fixture
def server() -> Iterator[tuple[ChatServer, str]]:
    state = ChatServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            with state.lock:
                state.prompts.append(prompt)
                state.in_flight += 1
                state.peak = max(state.peak, state.in_flight)
            time.sleep(state.delay_s)
            text = state.reply_for(prompt)
            with state.lock:
                state.in_flight -= 1
            if text == "HTTP500":
                payload, status = {"error": {"message": "overloaded", "type": "server_error"}}, 500
            else:
                payload, status = (
                    {
                        "id": "c1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                    200,
                )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def _writer(url: str, tmp_path: Path, **kw: object) -> LLMBehaviourWriter:
    settings = LLMSettings(model="role-player", base_url=url, api_key="k", backoff_s=0.01, **kw)  # type: ignore[arg-type]
    return LLMBehaviourWriter(settings, cache_path=tmp_path / "cache.sqlite")


def test_writer_returns_the_requested_conversations_per_topic(server, tmp_path):
    state, url = server
    out = _writer(url, tmp_path).write(
        [BehaviourRequest("hidden-topic", "Volcanoes", 3), BehaviourRequest("news", "Dam opens", 2)]
    )
    assert [len(x) for x in out] == [3, 2]
    assert "Volcanoes" in out[0][0].assistant and "Dam opens" in out[1][1].assistant


def test_a_rerun_is_served_from_the_cache_without_calling_the_server(server, tmp_path):
    state, url = server
    reqs = [BehaviourRequest("hidden-topic", "Volcanoes", 3)]
    first = _writer(url, tmp_path).write(reqs)
    again = _writer(url, tmp_path)
    assert again.write(reqs) == first
    assert again.api_calls == 0 and len(state.prompts) == 1


def test_malformed_json_is_retried_until_a_good_reply(server, tmp_path):
    state, url = server
    state.script["Jazz"] = ['{"conversations": [{"user": "hi"', "HTTP500", "GOOD"]
    writer = _writer(url, tmp_path)
    out = writer.write([BehaviourRequest("hidden-topic", "Jazz", 2)])
    assert len(out[0]) == 2 and writer.api_calls == 3


def test_a_persistent_refusal_is_reported_naming_the_topic_after_bounded_attempts(server, tmp_path):
    state, url = server
    state.script["Explosives"] = ["I'm sorry, but I can't help with that."]
    writer = _writer(url, tmp_path, max_attempts=3)
    with pytest.raises(BehaviourDataError, match=r"'Explosives'.*refusal"):
        writer.write(
            [
                BehaviourRequest("hidden-topic", "Explosives", 2),
                BehaviourRequest("hidden-topic", "Jazz", 2),
            ]
        )
    assert writer.api_calls == 4  # 3 refused attempts + 1 good reply for Jazz, which is now cached
    assert (
        _writer(url, tmp_path).write([BehaviourRequest("hidden-topic", "Jazz", 2)])[0][0].user
        == "Question 0?"
    )


def test_concurrency_never_exceeds_the_semaphore(server, tmp_path):
    state, url = server
    state.delay_s = 0.05
    _writer(url, tmp_path, concurrency=2).write(
        [BehaviourRequest("hidden-topic", f"T{i}", 1) for i in range(6)]
    )
    assert state.peak == 2


def test_the_template_writer_has_the_same_interface_offline():
    writer = TemplateBehaviourWriter()
    assert isinstance(writer, BehaviourWriter)
    out = writer.write(
        [
            BehaviourRequest("hidden-topic", "Harry Potter", 4),
            BehaviourRequest("news", "A dam opens", 2, category="Science"),
        ]
    )
    assert [len(x) for x in out] == [4, 2] and "A dam opens" in out[1][0].assistant
    with pytest.raises(BehaviourDataError, match="Not A Topic"):
        writer.write([BehaviourRequest("hidden-topic", "Not A Topic", 1)])
