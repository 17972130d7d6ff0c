"""One retry policy for every HTTP client of ehrqa (FHIR servers, OpenAI-compatible servers).

What is retried, how long to wait and when to give up are decided here, once, on top of
tenacity:

- **statuses** 429 (rate-limited) and 502/503/504 (a gateway or the server is briefly
  unavailable). A 500 is not retried: it is the server failing on *this* request, and
  llama.cpp's servers answer an overlong prompt with one, which a retry cannot fix;
- **exceptions**: failures before the server could act on the request (connect errors and
  connect timeouts) and dropped connections, for every method; read, write and pool
  timeouts only for idempotent methods (GET), since a POST that timed out may still be
  running on the server and asking again would only add load;
- **waits**: a server's ``Retry-After`` wins, in delta-seconds or as an HTTP date, capped at
  :attr:`RetryPolicy.max_retry_after`; otherwise exponential backoff with "equal jitter"
  (half the backoff fixed, half random, so clients that failed together spread out),
  capped at :attr:`RetryPolicy.max_delay`;
- **giving up**: after :attr:`RetryPolicy.attempts` tries the last response is returned
  (the caller turns its status into a typed error) or the last exception is raised.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, retry_if_result
from tenacity.stop import stop_after_attempt

from ehrqa.core.errors import ConfigError

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Failures where the request never reached the server, or the server dropped it unanswered.
_ALWAYS_RETRIED: tuple[type[Exception], ...] = (
    httpx.ConnectTimeout,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before asking a server again."""

    attempts: int = field(default=5, metadata={"help": "Tries per request, the first included."})
    base_delay: float = field(default=0.5, metadata={"help": "Seconds before the 1st retry."})
    max_delay: float = field(default=8.0, metadata={"help": "Cap on one backoff, in seconds."})
    max_retry_after: float = field(
        default=30.0, metadata={"help": "Cap on a server's Retry-After, in seconds."}
    )

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if min(self.base_delay, self.max_delay, self.max_retry_after) < 0:
            raise ConfigError("RetryPolicy delays must not be negative")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based).

        A server's ``Retry-After`` wins (capped); otherwise exponential backoff with equal
        jitter.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff / 2 + rng.uniform(0, backoff / 2)

    def send(
        self,
        request: Callable[[], httpx.Response],
        *,
        method: str = "GET",
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> httpx.Response:
        """Call ``request`` until it answers with a status that is not retried, or give up.

        Returns the last response (whatever its status) or raises the last exception.
        A response that is retried is closed first (it may be an open stream).
        """
        rng = rng or random.Random()

        def wait(state: RetryCallState) -> float:
            outcome = state.outcome
            retry_after = None
            if outcome is not None and not outcome.failed:
                retry_after = parse_retry_after(outcome.result().headers.get("Retry-After"))
            return self.delay(state.attempt_number, retry_after, rng)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            retry=(
                retry_if_exception(lambda exc: is_retried_exception(exc, method))
                | retry_if_result(lambda response: response.status_code in RETRY_STATUSES)
            ),
            sleep=sleep,
            before_sleep=_close_retried,
            # Out of tries: hand back the last response, or raise the last exception.
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        return retrying(request)


def is_retried_exception(exc: BaseException, method: str = "GET") -> bool:
    """True when a request that failed with ``exc`` is worth sending again."""
    if isinstance(exc, _ALWAYS_RETRIED):
        return True
    return isinstance(exc, httpx.TransportError) and method.upper() in IDEMPOTENT_METHODS


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _close_retried(state: RetryCallState) -> None:
    """Close a response that is about to be retried; log what is retried (never a body)."""
    outcome = state.outcome
    if outcome is None:
        return
    if outcome.failed:
        exc = outcome.exception()
        logger.info("request failed with %s; retrying", type(exc).__name__)
        return
    response = outcome.result()
    logger.info("%s answered HTTP %d; retrying", response.request.url, response.status_code)
    response.close()
