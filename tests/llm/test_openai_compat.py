"""OpenAICompatChatModel against a real HTTP server on 127.0.0.1 that streams SSE."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.llm import load_chat_model, openai_compat
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions
from ehrqa.llm.openai_compat import OpenAICompatChatModel, OpenAIServerError, ReplyInfo

PATIENT_TEXT = "Jane Roe, MRN 123456, HIV positive"
ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", PATIENT_TEXT)]
GREEDY = GenerationOptions(max_tokens=32)


class FakeServer:
    """A tiny OpenAI-like server.

    ``respond(handler, body)`` decides what each chat-completions POST gets; ``routes``
    maps other paths (``GET /v1/models``, tokenize endpoints) to handlers, and any other
    path answers 404. Every request is recorded as (method, path, headers, body).
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], dict]] = []
        self.respond: Callable[[BaseHTTPRequestHandler, dict], None] = stream_words(["Hi"])
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler, dict], None]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle("GET", {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self._handle("POST", json.loads(self.rfile.read(length)))

            def _handle(self, method: str, body: dict) -> None:
                server.requests.append((method, self.path, dict(self.headers), body))
                if self.path in server.routes:
                    server.routes[self.path](self, body)
                elif method == "POST" and self.path.endswith("/chat/completions"):
                    server.respond(self, body)
                else:
                    self.send_error(404)

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

    def chat_requests(self) -> list[tuple[str, str, dict[str, str], dict]]:
        """The recorded chat-completions requests."""
        return [r for r in self.requests if r[1].endswith("/chat/completions")]


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


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff delays the backend asked for, instead of sleeping them."""
    delays: list[float] = []
    monkeypatch.setattr(openai_compat, "_sleep", delays.append)
    return delays


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
    _, path, headers, body = server.chat_requests()[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body == {
        "model": "my-lora",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": PATIENT_TEXT},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 3,
        "repeat_penalty": 1.0,
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
    assert [h.get("Authorization") for _, _, h, _ in server.chat_requests()] == [
        "Bearer sk-openai",
        "Bearer sk-ehrqa",
    ]


def test_no_authorization_header_without_a_key(server: FakeServer) -> None:
    list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    assert all("Authorization" not in headers for _, _, headers, _ in server.requests)


def test_chunks_arrive_before_the_reply_is_finished(server: FakeServer) -> None:
    release = threading.Event()

    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        send_sse(handler, [chunk("first ")])
        release.wait(timeout=5)  # hold the rest back until the client has seen the first
        handler.wfile.write((chunk("second") + chunk(None, "stop") + "data: [DONE]\n\n").encode())

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


def test_connection_refused_is_retried_then_typed(sleeps: list[float]) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAICompatChatModel(base_url, "m", max_retries=3, backoff=1.0)
    with pytest.raises(OpenAIServerError, match=r"\(4 tries\)") as info:
        list(model.generate(ASK, GREEDY))
    assert info.value.status is None and info.value.url.startswith(base_url)
    assert len(sleeps) == 3
    assert all(0.5 * 2**i <= d <= 2**i for i, d in enumerate(sleeps))  # doubling, jittered


@pytest.mark.parametrize(
    ("base_url", "model", "kwargs", "match"),
    [
        ("127.0.0.1:8080/v1", "m", {}, "must start with http"),
        ("http://127.0.0.1:8080/v1", "", {}, "put it after '#'"),
        ("http://127.0.0.1:8080/v1", "m", {"timeout": 0}, "timeout must be > 0"),
        ("http://127.0.0.1:8080/v1", "m", {"max_retries": -1}, "must be >= 0"),
        ("http://127.0.0.1:8080/v1", "m", {"backoff": -0.1}, "must be >= 0"),
    ],
)
def test_bad_configuration(base_url: str, model: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OpenAICompatChatModel(base_url, model, **kwargs)


def test_capabilities() -> None:
    model = OpenAICompatChatModel("http://h:1/v1", "qwen", context_window=32768)
    assert (model.name, model.context_window, model.supports_grammar) == ("qwen", 32768, False)
    assert model.url == "http://h:1/v1/chat/completions"
    assert model.server_root == "http://h:1"
    assert (model.token_counter, model.last_reply) == ("unknown", None)
    model.close()


# --- request body: model names (vLLM LoRA adapters), penalties, extra_body ---------------


@pytest.mark.parametrize(
    "name",
    ["sql-lora", "ehr-ft", "meta-llama/Llama-3.2-1B-Instruct", "llama3.2:1b", "a#b c"],
)
def test_model_name_from_the_spec_is_sent_untouched(server: FakeServer, name: str) -> None:
    model = load_chat_model(f"{server.base_url}#{name}")
    assert isinstance(model, OpenAICompatChatModel)
    list(model.generate(ASK, GREEDY))
    assert server.chat_requests()[0][3]["model"] == name
    assert model.name == name


def test_repeat_penalty_is_sent_under_both_servers_names(server: FakeServer) -> None:
    model = OpenAICompatChatModel(server.base_url, "m")
    list(model.generate(ASK, GenerationOptions(repeat_penalty=1.15)))
    body = server.chat_requests()[0][3]
    assert (body["repeat_penalty"], body["repetition_penalty"]) == (1.15, 1.15)


def test_extra_body_overrides_and_extends_the_request(server: FakeServer) -> None:
    extra = {"temperature": 0.3, "guided_choice": ["yes", "no"], "stream_options": None}
    list(OpenAICompatChatModel(server.base_url, "m", extra_body=extra).generate(ASK, GREEDY))
    body = server.chat_requests()[0][3]
    assert {k: body[k] for k in extra} == extra


# --- streaming: SSE framing, finish reasons, usage -------------------------------------


def test_sse_framing_variants_are_read(server: FakeServer) -> None:
    event = json.dumps({"choices": [{"delta": {"content": "a"}, "finish_reason": None}]})
    split = '{"choices": [{"delta": {"content": "b"},\ndata: "finish_reason": "stop"}]}'
    server.respond = lambda handler, body: send_sse(
        handler,
        [
            f"event: message\nid: 1\ndata:{event}\r\n\r\n",  # no space after 'data:', CRLF
            f"data: {split}\n\n",  # one event's JSON over two data lines
            "retry: 1000\n\n",
        ],
    )
    model = OpenAICompatChatModel(server.base_url, "m")
    assert list(model.generate(ASK, GREEDY)) == ["a", "b"]  # no [DONE]: the finish suffices
    assert model.last_reply == ReplyInfo("stop")


def test_usage_and_finish_reason_are_kept_per_reply(server: FakeServer) -> None:
    usage = {"prompt_tokens": 21, "completion_tokens": 2, "total_tokens": 23}
    final = json.dumps({"choices": [], "usage": usage})
    server.respond = lambda handler, body: send_sse(
        handler, [chunk("Hi"), chunk(None, "length"), f"data: {final}\n\n", "data: [DONE]\n\n"]
    )
    model = OpenAICompatChatModel(server.base_url, "m")
    list(model.generate(ASK, GREEDY))
    assert model.last_reply == ReplyInfo("length", 21, 2)
    seen: list[ReplyInfo | None] = []
    thread = threading.Thread(target=lambda: seen.append(model.last_reply))
    thread.start()
    thread.join()
    assert seen == [None]  # another thread's replies are its own


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([chunk("The HbA1c "), "data: [DONE]\n\n"], "interrupted it.*--interrupt_requests"),
        ([chunk("The HbA1c ")], "failed mid-reply.*--n_ctx"),
        ([], "failed mid-reply"),
    ],
)
def test_unfinished_stream_is_an_error_not_a_short_reply(
    server: FakeServer, events: list[str], match: str
) -> None:
    server.respond = lambda handler, body: send_sse(handler, events)
    with pytest.raises(OpenAIServerError, match=match) as info:
        list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    assert info.value.status == 200


# --- retries --------------------------------------------------------------------------


def fail_then_stream(
    statuses: list[int], headers: dict[str, str] | None = None
) -> Callable[[BaseHTTPRequestHandler, dict], None]:
    """Answer each status in turn (with ``headers``), then stream a normal reply."""
    pending = list(statuses)

    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        if not pending:
            stream_words(["ok"])(handler, body)
            return
        handler.send_response(pending.pop(0))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return respond


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_statuses_are_retried(
    server: FakeServer, sleeps: list[float], status: int
) -> None:
    server.respond = fail_then_stream([status, status])
    model = OpenAICompatChatModel(server.base_url, "m", max_retries=2, backoff=0.5)
    assert list(model.generate(ASK, GREEDY)) == ["ok"]
    assert len(server.chat_requests()) == 3 and len(sleeps) == 2


def test_retries_are_bounded(server: FakeServer, sleeps: list[float]) -> None:
    server.respond = fail_then_stream([503] * 10)
    model = OpenAICompatChatModel(server.base_url, "m", max_retries=2)
    with pytest.raises(OpenAIServerError, match="HTTP 503") as info:
        list(model.generate(ASK, GREEDY))
    assert info.value.status == 503 and len(server.chat_requests()) == 3


@pytest.mark.parametrize(("retry_after", "delay"), [("0.25", 0.25), ("3600", 30.0)])
def test_retry_after_is_honoured_up_to_a_cap(
    server: FakeServer, sleeps: list[float], retry_after: str, delay: float
) -> None:
    server.respond = fail_then_stream([429], {"Retry-After": retry_after})
    list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    assert sleeps == [delay]


def test_retry_after_as_an_http_date_is_honoured(server: FakeServer, sleeps: list[float]) -> None:
    # It used to be ignored (backoff of 0.25-0.5 s instead of the server's 10 s).
    when = datetime.now(UTC) + timedelta(seconds=10)
    header = email.utils.format_datetime(when, usegmt=True)
    server.respond = fail_then_stream([429], {"Retry-After": header})
    list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    assert len(sleeps) == 1 and 8.0 <= sleeps[0] <= 10.0


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_other_errors_are_not_retried(server: FakeServer, sleeps: list[float], status: int) -> None:
    server.respond = fail_then_stream([status])
    with pytest.raises(OpenAIServerError, match=f"HTTP {status}") as info:
        list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    assert (info.value.status, info.value.url) == (status, f"{server.base_url}/chat/completions")
    assert len(server.chat_requests()) == 1 and sleeps == []


def test_no_retry_once_text_has_arrived(server: FakeServer, sleeps: list[float]) -> None:
    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        send_sse(handler, [chunk("partial ")])
        handler.connection.shutdown(socket.SHUT_RDWR)  # the server dies mid-reply

    server.respond = respond
    stream = OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY)
    assert next(stream) == "partial "
    with pytest.raises(OpenAIServerError):
        list(stream)
    assert len(server.chat_requests()) == 1 and sleeps == []


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 2048 tokens. However, you requested 5000",
        "Requested tokens (5000) exceed context window of 2048",
    ],
)
def test_context_overflow_is_a_config_error_without_the_body(
    server: FakeServer, message: str
) -> None:
    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        reply = json.dumps({"error": {"message": f"{message} for {PATIENT_TEXT}"}}).encode()
        handler.send_response(400)
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)

    server.respond = respond
    with pytest.raises(ConfigError, match="does not fit the server's context") as info:
        list(OpenAICompatChatModel(server.base_url, "m").generate(ASK, GREEDY))
    assert "MRN" not in str(info.value) and "HTTP 400" in str(info.value)


# --- the /models check -----------------------------------------------------------------


def serve_models(server: FakeServer, entries: list[dict]) -> None:
    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        reply = json.dumps({"object": "list", "data": entries}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)

    server.routes["/v1/models"] = respond


def test_unknown_model_name_gets_a_did_you_mean(server: FakeServer) -> None:
    serve_models(server, [{"id": "Qwen/Qwen2.5-3B-Instruct"}, {"id": "ehr-ft"}])
    model = OpenAICompatChatModel(server.base_url, "Qwen/Qwen2.5-3B-Instruc")
    with pytest.raises(NotFoundError, match=r"did you mean 'Qwen/Qwen2\.5-3B-Instruct'.*ehr-ft"):
        list(model.generate(ASK, GREEDY))
    assert server.chat_requests() == []


@pytest.mark.parametrize(
    ("served", "name"),
    [(["ehr-ft", "base"], "ehr-ft"), (["llama3.2:latest"], "llama3.2")],  # vLLM LoRA; Ollama
)
def test_served_names_pass_the_check_once(server: FakeServer, served: list, name: str) -> None:
    serve_models(server, [{"id": s} for s in served])
    model = OpenAICompatChatModel(server.base_url, name)
    for _ in range(2):
        assert list(model.generate(ASK, GREEDY)) == ["Hi"]
    assert [r[1] for r in server.requests].count("/v1/models") == 1


def test_server_without_a_model_list_is_trusted(server: FakeServer) -> None:
    model = OpenAICompatChatModel(server.base_url, "anything")
    assert model.list_models() is None
    assert list(model.generate(ASK, GREEDY)) == ["Hi"]


def test_check_can_be_turned_off(server: FakeServer) -> None:
    serve_models(server, [{"id": "other"}])
    list(OpenAICompatChatModel(server.base_url, "m", check_model=False).generate(ASK, GREEDY))
    assert [r[1] for r in server.requests] == ["/v1/chat/completions"]


def test_listed_max_model_len_caps_the_context_window(server: FakeServer) -> None:
    serve_models(server, [{"id": "m", "max_model_len": 2048}, {"id": "x", "max_model_len": 9}])
    model = OpenAICompatChatModel(server.base_url, "m", context_window=8192)
    assert model.list_models() == ["m", "x"]
    assert model.context_window == 2048


# --- count_tokens -----------------------------------------------------------------------


def json_reply(payload: dict) -> Callable[[BaseHTTPRequestHandler, dict], None]:
    def respond(handler: BaseHTTPRequestHandler, body: dict) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return respond


@pytest.mark.parametrize(
    ("path", "payload", "expected_body_keys"),
    [
        ("/extras/tokenize/count", {"count": 7}, {"model", "input"}),  # llama-cpp-python
        ("/tokenize", {"count": 7, "tokens": [1] * 7, "max_model_len": 4096}, {"prompt"}),  # vLLM
        ("/tokenize", {"tokens": [1] * 7}, {"content"}),  # llama-server
    ],
)
def test_count_tokens_asks_the_server_tokenizer(
    server: FakeServer, path: str, payload: dict, expected_body_keys: set[str]
) -> None:
    server.routes[path] = json_reply(payload)
    model = OpenAICompatChatModel(server.base_url, "m")
    assert model.count_tokens(PATIENT_TEXT) == 7
    assert model.count_tokens("again") == 7
    assert model.token_counter == f"server:{path}"
    body = next(r[3] for r in server.requests if r[1] == path)
    assert expected_body_keys <= set(body) and PATIENT_TEXT in body.values()


def test_count_tokens_without_a_tokenizer_estimates_and_says_so_once(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    model = OpenAICompatChatModel(server.base_url, "m")
    with caplog.at_level("WARNING", logger="ehrqa.llm.openai_compat"):
        assert [model.count_tokens(t) for t in ("abcde", PATIENT_TEXT)] == [2, 9]
    assert model.token_counter == "estimate"
    assert len(server.requests) == 2  # the two probes, then no more asking
    assert len(caplog.records) == 1 and "estimated" in caplog.text
    assert "MRN" not in caplog.text


@pytest.mark.parametrize(("text", "count"), [("", 0), ("abc", 1), ("abcd", 1), ("abcde", 2)])
def test_count_tokens_estimate_is_characters_over_four(text: str, count: int) -> None:
    model = OpenAICompatChatModel("http://127.0.0.1:1/v1", "m", server_tokenizer=False)
    assert (model.count_tokens(text), model.token_counter) == (count, "estimate")


def test_count_tokens_while_the_server_is_down_estimates_and_asks_again() -> None:
    model = OpenAICompatChatModel(f"http://127.0.0.1:{free_port()}/v1", "m", timeout=5)
    assert model.count_tokens("abcdefgh") == 2
    assert model.token_counter == "unknown"
