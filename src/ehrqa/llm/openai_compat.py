"""Chat models served over HTTP by an OpenAI-compatible server (vLLM, Ollama, llama.cpp, …).

Talks to ``POST {base_url}/chat/completions`` with ``stream: true`` through ``httpx`` and
reads the server-sent events itself, so no vendor SDK is needed. Tested against
``python -m llama_cpp.server`` (llama-cpp-python); the same requests suit vLLM
(``vllm serve``), Ollama (``http://127.0.0.1:11434/v1``) and llama.cpp's ``llama-server``.

The spec ``http://HOST:PORT/v1#NAME`` selects the served model ``NAME``, sent untouched as
the request's ``model`` field. **LoRA adapters** served by vLLM are model names too:
``vllm serve BASE --enable-lora --lora-modules ehr-ft=/path/to/adapter`` makes
``http://HOST:PORT/v1#ehr-ft`` answer with the adapter applied, per request, while
``#BASE`` answers without it.

What the backend adds over a plain request:

- the first reply checks ``GET {base_url}/models`` once: an unknown name raises
  :class:`~ehrqa.core.errors.NotFoundError` with a did-you-mean (servers that do not list
  models are trusted); a listed ``max_model_len`` (vLLM) caps ``context_window``;
- retries by :mod:`ehrqa.core.http_retry`'s policy (HTTP 429/502/503/504 and connection
  failures, ``Retry-After`` in seconds or as an HTTP date honoured up to a cap), at most
  ``max_retries`` times and only before any text has arrived; a read timeout of the chat
  request is not retried, as it would only add load;
- typed errors: :class:`OpenAIServerError` (a :class:`BackendUnavailableError` with ``url``
  and ``status``) for HTTP errors, :class:`~ehrqa.core.errors.ConfigError` when the prompt does
  not fit the server's context, and an error when a stream ends without finishing (what
  llama-cpp-python's server does when the prompt is too long);
- ``count_tokens`` uses the server's tokenizer where one is offered (llama-cpp-python's
  ``/extras/tokenize/count``; vLLM's and llama-server's ``/tokenize``), else estimates
  ``ceil(len / 4)`` and logs once that it does; :attr:`token_counter` says which;
- llama.cpp's ``repeat_penalty`` (and vLLM's ``repetition_penalty`` when not 1) are sent,
  so greedy replies match the in-process llama.cpp backend; ``extra_body`` is merged into
  every request for anything else server-specific (``{"top_k": 1}``, vLLM's
  ``guided_json``, …);
- :attr:`last_reply` holds the finish reason and, where the server reports usage
  (``stream_options.include_usage``), the token counts of the calling thread's last reply.

The API key is ``api_key``, else ``$EHRQA_OPENAI_API_KEY``, else ``$OPENAI_API_KEY``.
Error messages and logs name the URL and the HTTP status but never request or response
bodies: those may hold patient data.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ehrqa.core.errors import BackendUnavailableError, ConfigError, EhrqaError, NotFoundError
from ehrqa.core.http_retry import RetryPolicy
from ehrqa.llm.base import ChatMessage, GenerationOptions

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

API_KEY_ENV_VARS = ("EHRQA_OPENAI_API_KEY", "OPENAI_API_KEY")
ESTIMATE = "estimate"

_KEY_HINT = "check the API key (EHRQA_OPENAI_API_KEY or OPENAI_API_KEY)"
_STATUS_HINTS = {
    400: "the server rejected the request: check extra_body and the server's log",
    401: _KEY_HINT,
    403: _KEY_HINT,
    404: "check that the base URL ends where the API starts (often '/v1') "
    "and that the server serves this model name",
    429: "the server is overloaded or rate-limited: retry later or lower concurrency",
}
_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "context window")

# Tokenize endpoints, tried in order, relative to the server's root (the base URL less
# '/v1'): (path, request body for (model, text), count read from the JSON reply).
_TokenizeRoute = tuple[str, Callable[[str, str], dict], Callable[[Any], int]]
_TOKENIZE_ROUTES: tuple[_TokenizeRoute, ...] = (
    (  # llama-cpp-python's server
        "/extras/tokenize/count",
        lambda model, text: {"model": model, "input": text},
        lambda reply: int(reply["count"]),
    ),
    (  # vLLM reads 'prompt', llama-server reads 'content'; each ignores the other
        "/tokenize",
        lambda model, text: {
            "model": model,
            "prompt": text,
            "content": text,
            "add_special_tokens": False,
        },
        lambda reply: int(reply["count"]) if "count" in reply else len(reply["tokens"]),
    ),
)

# Replaced in tests so that backoff does not slow them down.
_sleep: Callable[[float], None] = time.sleep


class OpenAIServerError(BackendUnavailableError):
    """An OpenAI-compatible server answered with an HTTP error, or could not be reached.

    ``url`` is the endpoint; ``status`` the HTTP status, or ``None`` when no answer came.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


@dataclass(frozen=True)
class ReplyInfo:
    """What the server said about one finished reply (token counts only where it reports
    usage; llama-cpp-python's server does not when streaming)."""

    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class OpenAICompatChatModel:
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``model`` is sent as the request's ``model`` field untouched; for vLLM it may be the
    served name of a LoRA adapter. ``extra_body`` is merged last into every request body.
    ``context_window`` cannot be asked of most servers, so it is given here (vLLM's listed
    ``max_model_len`` lowers it). ``timeout`` bounds each read (connecting takes at most
    10 s of it); ``max_retries`` and ``backoff`` (seconds, doubled per retry) bound retries.
    ``check_model`` turns the ``/models`` check off; ``server_tokenizer`` makes
    ``count_tokens`` estimate without asking the server. The ``httpx.Client`` underneath is
    thread-safe, so one instance may serve many threads.
    """

    supports_grammar = False
    supports_logprobs = False  # top_logprobs is not served portably enough to score letters

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        context_window: int = 8192,
        extra_body: Mapping[str, Any] | None = None,
        name: str | None = None,
        max_retries: int = 2,
        backoff: float = 0.5,
        check_model: bool = True,
        server_tokenizer: bool = True,
    ) -> None:
        _check_settings(base_url, model, timeout, max_retries, backoff)
        try:
            import httpx
        except ImportError as exc:
            raise BackendUnavailableError(
                "the OpenAI-compatible backend needs httpx: pip install 'ehrqa[openai]'"
            ) from exc
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or model
        self.context_window = context_window
        self.extra_body = dict(extra_body or {})
        self.max_retries = max_retries
        self.backoff = backoff
        self.retry = RetryPolicy(attempts=max_retries + 1, base_delay=backoff)
        self._rng = random.Random()
        self._httpx = httpx
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers=_headers(api_key),
        )
        self._model_checked = not check_model
        self._check_lock = threading.Lock()
        self._token_route: _TokenizeRoute | None = None
        self._token_counter = "unknown" if server_tokenizer else ESTIMATE
        self._local = threading.local()

    @property
    def url(self) -> str:
        """The chat-completions endpoint this model posts to."""
        return f"{self.base_url}/chat/completions"

    @property
    def server_root(self) -> str:
        """The server's root URL: the base URL less a final ``/v1`` (where extras live)."""
        return self.base_url.removesuffix("/v1")

    @property
    def token_counter(self) -> str:
        """How ``count_tokens`` counts: ``"server:PATH"``, ``"estimate"``, or ``"unknown"``
        before the first count."""
        return self._token_counter

    @property
    def last_reply(self) -> ReplyInfo | None:
        """The :class:`ReplyInfo` of this thread's last finished reply, if any."""
        info: ReplyInfo | None = getattr(self._local, "reply", None)
        return info

    def generate(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Iterator[str]:
        """Stream the server's reply to ``messages``, one content delta at a time.

        Raises :class:`OpenAIServerError` when the server cannot be reached, answers with
        an HTTP error, sends an error event or ends the stream unfinished;
        :class:`NotFoundError` when it does not serve the model; :class:`ConfigError`
        when the prompt does not fit its context window.
        """
        self._ensure_model_served()
        self._local.reply = None
        httpx = self._httpx
        response = self._post_with_retries(self._body(messages, options))
        try:
            info = yield from _read_stream(response.iter_lines(), self.url)
        except httpx.TimeoutException as exc:
            raise self._timeout_error() from exc
        except httpx.HTTPError as exc:
            raise OpenAIServerError(
                f"the stream from {self.url} broke off ({type(exc).__name__}): "
                "check the server's log",
                url=self.url,
            ) from exc
        finally:
            response.close()
        self._local.reply = info

    def count_tokens(self, text: str) -> int:
        """Return the tokens in ``text`` by the server's tokenizer, or an estimate.

        The first call finds which tokenize endpoint the server offers (see
        :attr:`token_counter`); without one, ``ceil(len(text) / 4)`` is returned, the usual
        rule of thumb for English with BPE tokenizers, so budget with some margin.
        """
        if self._token_counter == "unknown":
            return self._probe_token_count(text)
        if self._token_route is None:
            return _estimate_tokens(text)
        count = self._server_token_count(self._token_route, text)
        return _estimate_tokens(text) if count is None else count

    def list_models(self) -> list[str] | None:
        """The model names ``GET {base_url}/models`` lists, or ``None`` when it lists none.

        Raises :class:`OpenAIServerError` when the server cannot be reached or refuses the
        API key.
        """
        url = f"{self.base_url}/models"
        response = self._request_with_retries("GET", url)
        if response.status_code in (401, 403):
            raise _status_error(url, response)
        if response.status_code >= 400:
            return None
        try:
            entries = response.json()["data"]
            self._cap_context(entries)
            return [str(entry["id"]) for entry in entries]
        except (ValueError, KeyError, TypeError):
            return None  # not an OpenAI model list: nothing to check against

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _ensure_model_served(self) -> None:
        if self._model_checked:
            return
        with self._check_lock:
            if self._model_checked:
                return
            served = self.list_models()
            if served is not None and not _is_served(self.model, served):
                raise NotFoundError(_unknown_model_message(self.base_url, self.model, served))
            self._model_checked = True

    def _cap_context(self, entries: Iterable[Mapping[str, Any]]) -> None:
        for entry in entries:
            limit = entry.get("max_model_len")
            if entry.get("id") == self.model and isinstance(limit, int) and limit > 0:
                self.context_window = min(self.context_window, limit)

    def _body(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "seed": options.seed,
            # llama.cpp's name; its servers default to 1.1, so it is always sent
            "repeat_penalty": options.repeat_penalty,
        }
        if options.repeat_penalty != 1.0:
            body["repetition_penalty"] = options.repeat_penalty  # vLLM's name
        if options.stop:
            body["stop"] = list(options.stop)
        body.update(self.extra_body)
        return body

    def _post_with_retries(self, body: dict) -> httpx.Response:
        """Send the chat request and return the open streaming response, or raise."""
        response = self._request_with_retries("POST", self.url, json=body, stream=True)
        if response.status_code < 400:
            return response
        try:
            response.read()  # for the context-overflow check; its text is never shown
        except self._httpx.HTTPError:
            pass  # the status alone still makes a useful error
        finally:
            response.close()
        raise _status_error(self.url, response)

    def _request_with_retries(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request under :mod:`ehrqa.core.http_retry`'s policy; the last response is
        returned, a transport failure that outlasts the tries raises."""
        errors = self._httpx
        stream = kwargs.pop("stream", False)

        def send() -> httpx.Response:
            request = self._client.build_request(method, url, **kwargs)
            return self._client.send(request, stream=stream)

        try:
            return self.retry.send(send, method=method, sleep=lambda s: _sleep(s), rng=self._rng)
        except errors.TimeoutException as exc:
            raise self._timeout_error(url) from exc
        except (errors.NetworkError, errors.RemoteProtocolError) as exc:
            raise self._connect_error(url, exc) from exc

    def _connect_error(self, url: str, exc: Exception) -> OpenAIServerError:
        tries = f" ({self.max_retries + 1} tries)" if self.max_retries else ""
        return OpenAIServerError(
            f"cannot connect to {url}{tries}, {type(exc).__name__}: "
            f"is the server running at {self.base_url}?",
            url=url,
        )

    def _timeout_error(self, url: str | None = None) -> OpenAIServerError:
        url = url or self.url
        return OpenAIServerError(
            f"{url} did not answer in time: raise the timeout or check the server", url=url
        )

    def _probe_token_count(self, text: str) -> int:
        """Find the server's tokenize endpoint while counting ``text``; remember it."""
        try:
            for route in _TOKENIZE_ROUTES:
                count = self._server_token_count(route, text, probing=True)
                if count is not None:
                    self._token_route, self._token_counter = route, f"server:{route[0]}"
                    return count
        except OpenAIServerError:
            return _estimate_tokens(text)  # server down: ask again next time
        self._token_counter = ESTIMATE
        logger.warning(
            "%s offers no tokenize endpoint: token counts are estimated as characters / 4",
            self.server_root,
        )
        return _estimate_tokens(text)

    def _server_token_count(
        self, route: _TokenizeRoute, text: str, *, probing: bool = False
    ) -> int | None:
        """The count ``route`` gives for ``text``, or ``None`` when it gives none."""
        path, make_body, read_count = route
        url = self.server_root + path
        httpx = self._httpx
        try:
            response = self._client.post(url, json=make_body(self.model, text))
        except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:
            if probing:
                raise self._connect_error(url, exc) from exc
            return None
        if response.status_code >= 400:
            return None
        try:
            return read_count(response.json())
        except (ValueError, KeyError, TypeError):
            return None


def _check_settings(
    base_url: str, model: str, timeout: float, max_retries: int, backoff: float
) -> None:
    """Raise :class:`ConfigError` naming the first unusable constructor argument."""
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"base URL {base_url!r} must start with http:// or https://, "
            "e.g. http://127.0.0.1:8080/v1"
        )
    if not model:
        raise ConfigError(
            "no model name given for the OpenAI-compatible server: "
            "put it after '#', e.g. http://127.0.0.1:8080/v1#qwen2.5-3b"
        )
    if timeout <= 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
    if max_retries < 0 or backoff < 0:
        raise ConfigError(f"max_retries and backoff must be >= 0, got {max_retries} and {backoff}")


def _headers(api_key: str | None) -> dict[str, str]:
    """Request headers, with the bearer key from ``api_key`` or the environment."""
    key = api_key or next((os.environ[v] for v in API_KEY_ENV_VARS if os.environ.get(v)), "")
    headers = {"Accept": "text/event-stream, application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _is_served(model: str, served: Sequence[str]) -> bool:
    """Whether ``model`` is listed; Ollama lists ``name:latest`` for ``name``."""
    return model in served or f"{model}:latest" in served


def _unknown_model_message(base_url: str, model: str, served: Sequence[str]) -> str:
    close = difflib.get_close_matches(model, list(served), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(repr(s) for s in served[:10]) or "none"
    return (
        f"{base_url} does not serve a model named {model!r}: {hint}it serves {listed}; "
        f"put a served name after '#', e.g. {base_url}#{served[0] if served else 'NAME'}"
    )


def _status_error(url: str, response: httpx.Response) -> EhrqaError:
    """The typed error for an HTTP error ``response`` (whose body has been read)."""
    status = response.status_code
    if status in (400, 413) and _is_context_overflow(response):
        return ConfigError(
            f"{url} answered HTTP {status}: the prompt does not fit the server's context "
            "window; shorten it, lower max_tokens, or serve the model with a larger context"
        )
    hint = _STATUS_HINTS.get(status, "check the server's log")
    return OpenAIServerError(
        f"{url} answered HTTP {status} {response.reason_phrase}: {hint}", url=url, status=status
    )


def _is_context_overflow(response: httpx.Response) -> bool:
    """Whether an error body says the context is too small (its text is never shown)."""
    try:
        text = response.text.lower()
    except (UnicodeDecodeError, RuntimeError):
        return False
    return any(marker in text for marker in _CONTEXT_MARKERS)


def _sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The data of each server-sent event in ``lines`` (multi-line data joined by '\\n')."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            value = line[len("data:") :]
            data.append(value[1:] if value.startswith(" ") else value)
        # other lines: ': comment' keep-alives, 'event:', 'id:', 'retry:' fields
    if data:
        yield "\n".join(data)


def _read_stream(lines: Iterable[str], url: str) -> Generator[str, None, ReplyInfo]:
    """Yield the ``delta.content`` strings of an OpenAI chat stream; return its ReplyInfo.

    Raises :class:`OpenAIServerError` on an error event, on data that is not JSON, and
    when the stream ends (with or without ``[DONE]``) before any choice has a finish
    reason: every OpenAI-compatible server sets one on a whole reply, so a reply without
    it was cut short and must not pass for a whole one.
    """
    finish: str | None = None
    usage: Mapping[str, Any] = {}
    done = False
    for data in _sse_data(lines):
        if data.strip() == "[DONE]":
            done = True
            break
        event = _parse_event(data, url)
        usage = event.get("usage") or usage
        for choice in event.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield content
            finish = choice.get("finish_reason") or finish
    if finish is None:
        raise OpenAIServerError(_unfinished_message(url, done), url=url, status=200)
    return _reply_info(finish, usage)


def _unfinished_message(url: str, done: bool) -> str:
    """Why a stream may have ended without a finish reason, and what to do about it."""
    if done:  # '[DONE]' early: llama-cpp-python's server interrupts for a newer request
        cause = (
            "the server interrupted it, as llama-cpp-python's server does when another "
            "request arrives: start it with --interrupt_requests False, or send one "
            "request at a time"
        )
    else:  # llama-cpp-python's server closes the stream when the prompt is too long
        cause = (
            "the server failed mid-reply, as llama-cpp-python's server does when the prompt "
            "does not fit its context window: shorten it or start the server with a larger "
            "--n_ctx; check the server's log"
        )
    return f"the stream from {url} ended before the reply was finished: {cause}"


def _parse_event(data: str, url: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except json.JSONDecodeError as exc:
        raise OpenAIServerError(
            f"{url} sent an event that is not JSON: is it an OpenAI-compatible server?",
            url=url,
        ) from exc
    if not isinstance(event, dict):
        raise OpenAIServerError(f"{url} sent an event that is not a JSON object", url=url)
    if "error" in event:
        raise OpenAIServerError(
            f"{url} reported an error in the stream: check the server's log", url=url
        )
    return event


def _reply_info(finish: str | None, usage: Mapping[str, Any]) -> ReplyInfo:
    def count(key: str) -> int | None:
        value = usage.get(key)
        return value if isinstance(value, int) else None

    return ReplyInfo(finish, count("prompt_tokens"), count("completion_tokens"))
