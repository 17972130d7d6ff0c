"""Request limits: body size (413), question length (422) and generation time (504)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ehrqa.api.errors import GenerationTimeoutError

T = TypeVar("T")
MB = 1024 * 1024
MAX_QUESTION_CHARS = 1000
INGEST_PATH = "/v1/ingest"


@dataclass(frozen=True)
class ApiLimits:
    """What one request may send and take; the defaults suit a single small-model server."""

    max_body_bytes: int = field(default=1 * MB, metadata={"help": "largest JSON body"})
    max_ingest_bytes: int = field(default=20 * MB, metadata={"help": "largest ingest upload"})
    generation_timeout_s: float = field(
        default=120.0, metadata={"help": "seconds one answer or advice may take"}
    )

    def __post_init__(self) -> None:
        if min(self.max_body_bytes, self.max_ingest_bytes) < 1:
            raise ValueError("body size limits must be at least 1 byte")
        if self.generation_timeout_s <= 0:
            raise ValueError("generation_timeout_s must be positive")

    def body_limit(self, path: str) -> int:
        """The largest body accepted on ``path``."""
        return self.max_ingest_bytes if path == INGEST_PATH else self.max_body_bytes


class BodyTooLargeError(HTTPException):
    """Raised while the body streams in, once it passes the limit (rendered as 413).

    An HTTPException so that FastAPI's body parsing lets it through unchanged.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    """What a 413 says: the limit, and how to get under it."""
    return (
        f"the request body is larger than this route accepts ({limit:,} bytes): send a smaller "
        "body (split large ingests into several files)"
    )


def _too_large(limit: int) -> JSONResponse:
    body = {"error": "PayloadTooLargeError", "message": too_large_message(limit)}
    return JSONResponse(body, status_code=413)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """Answers 413 when the declared ``Content-Length`` or the streamed body is too large."""

    def __init__(self, app: ASGIApp, limits: ApiLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the body as it arrives."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.body_limit(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLargeError:
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


async def in_worker(run: Callable[[], T], timeout_s: float) -> T:
    """``run()`` in a worker thread, without holding the event loop; 504 after ``timeout_s``.

    A thread cannot be stopped: on timeout the work finishes in the background (and the
    model stays busy until then), but the client gets its answer at once.
    """
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, run)
    try:
        return await asyncio.wait_for(future, timeout_s)
    except TimeoutError as exc:
        raise timeout_error(timeout_s) from exc


def timeout_error(timeout_s: float) -> GenerationTimeoutError:
    """The 504 error for an answer that took longer than ``timeout_s``."""
    return GenerationTimeoutError(
        f"no answer within {timeout_s:g} s: the model is busy or too slow for this server; "
        "try again, use answer_mode 'extractive', or raise the limit"
    )
