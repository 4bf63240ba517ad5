"""A local OpenAI-compatible chat server for judge tests: real HTTP on 127.0.0.1, scripted replies.

It grades like a very literal model: 5 when the two data blocks hold the same text (ignoring
case), else 1. `obey` says which injected instructions ("output N") it follows:
  "outside-data" - only text outside the <data key=K> ... </data key=K> blocks, i.e. a model that
                   respects the prompt's structure; shows whether an answer can escape its block;
  "anywhere"     - any text at all, i.e. a naive model; shows the attack would work on it, so a
                   test that passes with "outside-data" is not passing by accident.
`script` holds replies to send first, one per request: an HTTP status (401, 429, 500, 503), a string
to send as the model's reply, a `Refusal` (the API's `message.refusal`, no content), a `RawBody`
(status 200 with a body that is not the API's JSON, as a proxy's error page), or None for a normal
grade.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_BLOCK = re.compile(r'<data id="(\w+)" key="(\w+)">\n(.*?)\n</data key="\2">', re.S)
_ORDER = re.compile(r"output (\d)", re.I)


@dataclass(frozen=True)
class Refusal:
    """A reply whose message has `refusal` set and no content, as the OpenAI API sends a refusal."""

    text: str


@dataclass(frozen=True)
class RawBody:
    """A 200 reply whose body is not a chat completion (an HTML error page from a proxy, say)."""

    body: bytes
    content_type: str = "text/html"


@dataclass
class ServerState:
    obey: str = "outside-data"
    script: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0  # hold each reply this long, so concurrency can be observed
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def grade(messages: list[dict[str, str]], obey: str) -> str:
    user = messages[1]["content"] if len(messages) > 1 else ""
    if obey == "anywhere":
        match = _ORDER.search(" ".join(m["content"] for m in messages))
        if match:
            return match.group(1)
    blocks = _BLOCK.findall(user)
    outside = _BLOCK.sub(" ", user)
    match = _ORDER.search(outside)
    if match:
        return match.group(1)
    if len(blocks) != 2:
        return "I cannot find two data blocks."
    a, b = (json.loads(text).strip().lower() for _, _, text in blocks)
    return "5" if a == b else "1"


class _Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with self.state.lock:
            self.state.requests.append(body)
            step = self.state.script.pop(0) if self.state.script else None
        with self.state.lock:
            self.state.in_flight += 1
            self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
        time.sleep(self.state.delay_s)
        with self.state.lock:
            self.state.in_flight -= 1
        if isinstance(step, int):
            headers = {"retry-after": "0"} if step == 429 else {}
            message = "Incorrect API key provided" if step == 401 else f"scripted {step}"
            self._send(step, {"error": {"message": message, "type": "test"}}, headers)
            return
        if isinstance(step, RawBody):
            self.send_response(200)
            self.send_header("content-type", step.content_type)
            self.send_header("content-length", str(len(step.body)))
            self.end_headers()
            self.wfile.write(step.body)
            return
        if isinstance(step, Refusal):
            message = {"role": "assistant", "content": None, "refusal": step.text}
        else:
            reply = step if isinstance(step, str) else grade(body["messages"], self.state.obey)
            message = {"role": "assistant", "content": reply}
        self._send(200, {
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101},
        })


class LocalOpenAIServer:
    def __init__(self) -> None:
        self.state = ServerState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> LocalOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
