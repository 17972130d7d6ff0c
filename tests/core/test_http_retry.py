"""The one retry policy (ehrqa.core.http_retry) through a fake transport: statuses, Retry-After."""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ehrqa.core.errors import ConfigError
from ehrqa.core.http_retry import RetryPolicy, is_retried_exception, parse_retry_after

URL = "http://server.test/thing"


def scripted(replies: list[httpx.Response | type[Exception]]) -> tuple[httpx.Client, list[str]]:
    """A client whose transport gives ``replies`` in turn (the last one repeats)."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        reply = replies[min(len(seen), len(replies)) - 1]
        if isinstance(reply, httpx.Response):
            return reply
        raise reply("canned failure", request=request)  # type: ignore[call-arg]

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def send(
    client: httpx.Client, policy: RetryPolicy, method: str = "GET"
) -> tuple[httpx.Response, list[float]]:
    sleeps: list[float] = []
    response = policy.send(
        lambda: client.request(method, URL),
        method=method,
        sleep=sleeps.append,
        rng=random.Random(0),
    )
    return response, sleeps


def http_date(seconds_from_now: float) -> str:
    when = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return email.utils.format_datetime(when, usegmt=True)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured_in_both_forms(status: int, form: str) -> None:
    header = "12" if form == "seconds" else http_date(12)
    client, seen = scripted(
        [httpx.Response(status, headers={"Retry-After": header}), httpx.Response(200, text="ok")]
    )
    response, sleeps = send(client, RetryPolicy())
    assert response.status_code == 200 and len(seen) == 2
    # An HTTP date is a little less than 12 s away by the time it is read.
    assert len(sleeps) == 1 and 10.0 <= sleeps[0] <= 12.0


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_capped(form: str) -> None:
    header = "3600" if form == "seconds" else http_date(3600)
    client, _ = scripted(
        [httpx.Response(429, headers={"Retry-After": header}), httpx.Response(200)]
    )
    _, sleeps = send(client, RetryPolicy(max_retry_after=20))
    assert sleeps == [20.0]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_statuses_back_off_and_give_up_with_the_last_response(status: int) -> None:
    client, seen = scripted([httpx.Response(status)])
    response, sleeps = send(client, RetryPolicy(attempts=4, base_delay=1.0))
    assert response.status_code == status and len(seen) == 4
    for attempt, slept in enumerate(sleeps, start=1):  # equal jitter: half fixed, half random
        assert 2 ** (attempt - 2) <= slept <= 2 ** (attempt - 1)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 500, 501])
def test_other_statuses_are_not_retried(status: int) -> None:
    client, seen = scripted([httpx.Response(status), httpx.Response(200)])
    response, sleeps = send(client, RetryPolicy())
    assert response.status_code == status and len(seen) == 1 and sleeps == []


def test_a_retried_response_is_closed() -> None:
    first = httpx.Response(503)
    client, _ = scripted([first, httpx.Response(200)])
    send(client, RetryPolicy())
    assert first.is_closed


@pytest.mark.parametrize(
    "error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError]
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_connection_failures_are_retried_for_every_method(
    error: type[Exception], method: str
) -> None:
    client, seen = scripted([error, httpx.Response(200)])
    response, sleeps = send(client, RetryPolicy(), method)
    assert response.status_code == 200 and len(seen) == 2 and len(sleeps) == 1


def test_read_timeouts_are_retried_for_get_only() -> None:
    client, seen = scripted([httpx.ReadTimeout, httpx.Response(200)])
    assert send(client, RetryPolicy(), "GET")[0].status_code == 200
    client, seen = scripted([httpx.ReadTimeout, httpx.Response(200)])
    with pytest.raises(httpx.ReadTimeout):
        send(client, RetryPolicy(), "POST")
    assert seen == ["POST"]


def test_the_last_exception_is_raised_when_the_tries_run_out() -> None:
    client, seen = scripted([httpx.ConnectError])
    with pytest.raises(httpx.ConnectError):
        send(client, RetryPolicy(attempts=3))
    assert len(seen) == 3


def test_other_exceptions_are_not_retried() -> None:
    assert not is_retried_exception(ValueError("bug"))
    assert not is_retried_exception(httpx.ReadTimeout("slow"), "POST")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0.25", 0.25),
        (" 0 ", 0.0),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),  # in the past
        ("-5", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == expected


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"base_delay": -1.0}, {"max_delay": -1.0}, {"max_retry_after": -1.0}],
)
def test_bad_retry_policy(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
