"""One chat model per app, shared by all requests, and answers streamed as Server-Sent Events.

:class:`SharedChatModel` loads the configured model on first use and lets one generation
run at a time (llama.cpp contexts are not thread-safe), whether it comes from records QA
or from an advice task. :func:`event_stream` runs a blocking answer in a worker thread and
yields the progress events it reports, then the result (or an error).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, cast

import orjson

from ehrqa.api.limits import timeout_error
from ehrqa.core.errors import EhrqaError
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions

logger = logging.getLogger(__name__)
OnEvent = Callable[[str, dict[str, Any]], None]


class SharedChatModel:
    """A :class:`ChatModel` that loads on first use and generates for one caller at a time."""

    def __init__(self, load: Callable[[], ChatModel]) -> None:
        self._load = load
        self._model: ChatModel | None = None
        self._load_lock = threading.Lock()
        # Re-entrant: a backend's generate may count tokens on the same thread.
        self._busy = threading.RLock()

    def get(self) -> ChatModel:
        """The underlying model, loaded on first call."""
        with self._load_lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @property
    def name(self) -> str:
        """The model's name."""
        return self.get().name

    @property
    def context_window(self) -> int:
        """The model's context window (tokens)."""
        return self.get().context_window

    @property
    def supports_grammar(self) -> bool:
        """Whether the model accepts a grammar."""
        return bool(getattr(self.get(), "supports_grammar", False))

    def generate(
        self, messages: Sequence[ChatMessage], options: GenerationOptions, **kwargs: Any
    ) -> Iterator[str]:
        """The model's reply, streamed while no other generation runs."""
        model = self.get()
        with self._busy:
            yield from model.generate(messages, options, **kwargs)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes for the model."""
        model = self.get()
        with self._busy:
            return model.count_tokens(text)


def shared_model(load: Callable[[], ChatModel]) -> ChatModel:
    """A :class:`SharedChatModel` over ``load``, typed as the protocol it implements.

    (Its capabilities are read-only properties, which the protocol's plain attributes do
    not admit for a type checker.)
    """
    return cast("ChatModel", SharedChatModel(load))


def sse(event: str, data: Any) -> bytes:
    """One Server-Sent Event with a JSON ``data`` line."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_body(exc: Exception) -> dict[str, str]:
    """The ``{"error", "message"}`` body of an exception (details hidden when unexpected)."""
    if isinstance(exc, EhrqaError):
        return {"error": type(exc).__name__, "message": str(exc)}
    return {
        "error": "InternalError",
        "message": "the answer failed unexpectedly; the server log names the error type",
    }


async def event_stream(
    run: Callable[[OnEvent], dict[str, Any]], timeout_s: float
) -> AsyncIterator[bytes]:
    """Run ``run(on_event)`` in a worker thread; yield the events it reports, then ``result``.

    An error in ``run`` becomes one ``error`` event, and so does going past ``timeout_s``
    (the work then finishes in the background). The event loop is never blocked.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def push(event: str, data: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (event, data))

    def work() -> None:
        try:
            push("result", run(push))
        except Exception as exc:  # every failure must reach the client as an event
            if not isinstance(exc, EhrqaError):
                # The type only: messages of unexpected errors may quote record text.
                logger.error("streamed answer failed: %s", type(exc).__name__)
            push("error", error_body(exc))

    worker = loop.run_in_executor(None, work)
    deadline = loop.time() + timeout_s
    while True:
        try:
            event, data = await asyncio.wait_for(queue.get(), max(deadline - loop.time(), 0))
        except TimeoutError:
            yield sse("error", error_body(timeout_error(timeout_s)))
            break
        yield sse(event, data)
        if event in ("result", "error"):
            break
    if worker.done():
        await worker
