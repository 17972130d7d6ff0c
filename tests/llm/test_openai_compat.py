"""OpenAICompatChatModel against a real HTTP server on 127.0.0.1 that streams SSE."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ehrqa.errors import BackendUnavailableError, ConfigError
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions
from ehrqa.llm.openai_compat import OpenAICompatChatModel

PATIENT_TEXT = "Jane Roe, MRN 123456, HIV positive"
ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", PATIENT_TEXT)]
GREEDY = GenerationOptions(max_tokens=32)


class FakeServer:
    """A tiny OpenAI-like server; ``respond(handler, body)`` decides what each POST gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict]] = []
        self.respond: Callable[[BaseHTTPRequestHandler, dict], None] = stream_words(["Hi"])
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                server.requests.append((self.path, dict(self.headers), body))
                server.respond(self, body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send_sse(handler: BaseHTTPRequestHandler, events: list[str]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.end_headers()
    for event in events:
        handler.wfile.write(event.encode())
        handler.wfile.flush()


def chunk(content: str | None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    event = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(event)}\n\n"


def stream_words(words: list[str]) -> Callable[[BaseHTTPRequestHandler, dict], None]:
    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        events = [chunk(None), ": keep-alive\n\n"]  # role-only first delta, an SSE comment
        events += [chunk(w) for w in words]
        events += [chunk(None, "stop"), "data: [DONE]\n\n", chunk("after done")]
        send_sse(handler, events)

    return respond


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as s:
        yield s


@pytest.fixture(autouse=True)
def _no_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EHRQA_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_streams_content_deltas_until_done(server: FakeServer) -> None:
    server.respond = stream_words(["The ", "HbA1c ", "was ", "7.2%."])
    model = OpenAICompatChatModel(server.base_url, "qwen2.5-3b")
    assert isinstance(model, ChatModel)
    assert list(model.generate(ASK, GREEDY)) == ["The ", "HbA1c ", "was ", "7.2%."]


def test_sends_an_openai_chat_request(server: FakeServer) -> None:
    model = OpenAICompatChatModel(
        server.base_url + "/", "my-lora", api_key="sk-test", extra_body={"top_k": 1}
    )
    options = GenerationOptions(max_tokens=7, temperature=0.5, top_p=0.9, stop=("\n",), seed=3)
    list(model.generate(ASK, options))
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body == {
        "model": "my-lora",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": PATIENT_TEXT},
        ],
        "stream": True,
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 3,
        "stop": ["\n"],
        "top_k": 1,
    }


def test_api_key_comes_from_the_environment(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    monkeypatch.setenv("EHRQA_OPENAI_API_KEY", "sk-ehrqa")
    list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    assert [h.get("Authorization") for _, h, _ in server.requests] == [
        "Bearer sk-openai",
        "Bearer sk-ehrqa",
    ]


def test_no_authorization_header_without_a_key(server: FakeServer) -> None:
    list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    assert "Authorization" not in server.requests[0][1]


def test_chunks_arrive_before_the_reply_is_finished(server: FakeServer) -> None:
    release = threading.Event()

    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        send_sse(handler, [chunk("first ")])
        release.wait(timeout=5)  # hold the rest back until the client has seen the first
        handler.wfile.write((chunk("second") + "data: [DONE]\n\n").encode())

    server.respond = respond
    stream = OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY)
    assert next(stream) == "first "
    release.set()
    assert list(stream) == ["second"]


def test_http_error_names_url_and_status_but_not_the_messages(server: FakeServer) -> None:
    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        echo = json.dumps({"error": {"message": f"boom on {body['messages']}"}}).encode()
        handler.send_response(500)
        handler.send_header("Content-Length", str(len(echo)))
        handler.end_headers()
        handler.wfile.write(echo)

    server.respond = respond
    model = OpenAICompatChatModel(server.base_url, "m")
    with pytest.raises(BackendUnavailableError) as info:
        list(model.generate(ASK, GREEDY))
    message = str(info.value)
    assert f"{server.base_url}/chat/completions" in message
    assert "HTTP 500" in message
    assert "MRN" not in message and "boom" not in message


def test_404_hints_at_the_base_url(server: FakeServer) -> None:
    server.respond = lambda handler, body: handler.send_error(404)
    with pytest.raises(BackendUnavailableError, match=r"HTTP 404.*/v1"):
        list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))


def test_error_event_in_the_stream_is_raised_without_its_text(server: FakeServer) -> None:
    server.respond = lambda handler, body: send_sse(
        handler,
        [chunk("partial "), f"data: {json.dumps({'error': {'message': PATIENT_TEXT}})}\n\n"],
    )
    stream = OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY)
    assert next(stream) == "partial "
    with pytest.raises(BackendUnavailableError, match="error in the stream") as info:
        next(stream)
    assert "MRN" not in str(info.value)


def test_non_json_event_is_a_clear_error(server: FakeServer) -> None:
    server.respond = lambda handler, body: send_sse(handler, ["data: <html>\n\n"])
    with pytest.raises(BackendUnavailableError, match="not JSON"):
        list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))


def test_slow_server_times_out(server: FakeServer) -> None:
    never = threading.Event()

    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        never.wait(timeout=2)

    server.respond = respond
    model = OpenAICompatChatModel(server.base_url, "m", timeout=0.2)
    with pytest.raises(BackendUnavailableError, match="did not answer in time"):
        list(model.generate(ASK, GREEDY))
    never.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_asks_whether_the_server_runs() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAICompatChatModel(base_url, "m", timeout=5)
    with pytest.raises(BackendUnavailableError, match=f"is the server running at {base_url}"):
        list(model.generate(ASK, GREEDY))


@pytest.mark.parametrize(
    ("base_url", "model", "match"),
    [
        ("127.0.0.1:8080/v1", "m", "must start with http"),
        ("http://127.0.0.1:8080/v1", "", "put it after '#'"),
    ],
)
def test_bad_configuration(base_url: str, model: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OpenAICompatChatModel(base_url, model)


@pytest.mark.parametrize(("text", "count"), [("", 0), ("abc", 1), ("abcd", 1), ("abcde", 2)])
def test_count_tokens_is_a_characters_over_four_estimate(text: str, count: int) -> None:
    assert OpenAICompatChatModel("http://127.0.0.1:1/v1", "m").count_tokens(text) == count


def test_capabilities() -> None:
    model = OpenAICompatChatModel("http://h:1/v1", "qwen", context_window=32768)
    assert (model.name, model.context_window, model.supports_grammar) == ("qwen", 32768, False)
    assert model.url == "http://h:1/v1/chat/completions"
    model.close()
