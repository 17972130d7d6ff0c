"""Chat models served over HTTP by an OpenAI-compatible server (llama-server, vLLM, …).

Talks to ``POST {base_url}/chat/completions`` with ``stream: true`` through ``httpx`` and
reads the server-sent events itself, so no vendor SDK is needed. Error messages name the
URL and the HTTP status but never the request or response bodies: those may hold patient
data.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ehrqa.errors import BackendUnavailableError, ConfigError
from ehrqa.llm.base import ChatMessage, GenerationOptions

if TYPE_CHECKING:
    import httpx

API_KEY_ENV_VARS = ("EHRQA_OPENAI_API_KEY", "OPENAI_API_KEY")

_STATUS_HINTS = {
    401: "check the API key (EHRQA_OPENAI_API_KEY or OPENAI_API_KEY)",
    403: "check the API key (EHRQA_OPENAI_API_KEY or OPENAI_API_KEY)",
    404: "check that the base URL ends where the API starts (often '/v1') "
    "and that the server serves this model name",
}


class OpenAICompatChatModel:
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``model`` is sent as the request's ``model`` field; for vLLM it may be the served name
    of a LoRA adapter. ``extra_body`` is merged into every request body (e.g.
    ``{"top_k": 1}`` or vLLM's ``guided_json``). ``context_window`` cannot be asked of the
    server portably, so it is given here. The API key comes from ``api_key``, else the
    ``EHRQA_OPENAI_API_KEY`` or ``OPENAI_API_KEY`` environment variable, else none is sent.
    The underlying ``httpx.Client`` is thread-safe, so one instance may serve many threads.
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
    ) -> None:
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
        key = api_key or next((os.environ[v] for v in API_KEY_ENV_VARS if os.environ.get(v)), "")
        headers = {"Accept": "text/event-stream"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout, headers=headers)

    @property
    def url(self) -> str:
        """The chat-completions endpoint this model posts to."""
        return f"{self.base_url}/chat/completions"

    def generate(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Iterator[str]:
        """Stream the server's reply to ``messages``, one content delta at a time.

        Raises :class:`BackendUnavailableError` when the server cannot be reached, answers
        with an HTTP error, or sends an error event in the stream.
        """
        httpx = self._httpx
        try:
            with self._client.stream("POST", self.url, json=self._body(messages, options)) as r:
                if r.status_code >= 400:
                    raise self._status_error(r)
                yield from _content_deltas(r.iter_lines(), self.url)
        except httpx.ConnectError as exc:
            raise BackendUnavailableError(
                f"cannot connect to {self.url}: is the server running at {self.base_url}?"
            ) from exc
        except httpx.TimeoutException as exc:
            raise BackendUnavailableError(
                f"{self.url} did not answer in time: raise the timeout or check the server"
            ) from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"request to {self.url} failed ({type(exc).__name__}): check the server"
            ) from exc

    def count_tokens(self, text: str) -> int:
        """Return an estimate of the tokens in ``text``: ``ceil(len(text) / 4)``.

        The server's tokenizer is not available here; four characters per token is the
        usual rule of thumb for English with BPE tokenizers, so budget with some margin.
        """
        return math.ceil(len(text) / 4)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _body(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "seed": options.seed,
        }
        if options.stop:
            body["stop"] = list(options.stop)
        body.update(self.extra_body)
        return body

    def _status_error(self, response: httpx.Response) -> BackendUnavailableError:
        status = response.status_code
        hint = _STATUS_HINTS.get(status, "check the server's log")
        return BackendUnavailableError(
            f"{self.url} answered HTTP {status} {response.reason_phrase}: {hint}"
        )


def _content_deltas(lines: Iterator[str], url: str) -> Iterator[str]:
    """Yield the ``delta.content`` strings of an OpenAI server-sent event stream."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, ': keep-alive' comments, 'event:' lines
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except json.JSONDecodeError as exc:
            raise BackendUnavailableError(
                f"{url} sent an event that is not JSON: is it an OpenAI-compatible server?"
            ) from exc
        if "error" in event:
            raise BackendUnavailableError(f"{url} reported an error in the stream")
        for choice in event.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield content
