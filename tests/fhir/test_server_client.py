"""The FHIR server client: paging, $everything fallback, retries, auth, incremental asks."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.fhir.server import (
    BearerToken,
    FhirClient,
    FhirServerError,
    RetryPolicy,
    SmartBackendAuth,
    next_link,
    parse_retry_after,
)
from fixtures.fhir_server.fake_server import (
    BASE,
    FakeFhirServer,
    sample_patient_id,
    sample_resources,
)

PID = sample_patient_id()
TOKEN_URL = "http://auth.test/token"


def make_client(server: FakeFhirServer, **kwargs: Any) -> tuple[FhirClient, list[float]]:
    """A client on ``server`` that records its waits instead of sleeping."""
    sleeps: list[float] = []
    kwargs.setdefault("page_size", 10)
    client = FhirClient(
        BASE, transport=server.transport(), sleep=sleeps.append, rng=random.Random(0), **kwargs
    )
    return client, sleeps


@pytest.fixture
def server() -> FakeFhirServer:
    return FakeFhirServer(sample_resources())


def patient_refs(server: FakeFhirServer) -> set[str]:
    from ehrqa.fhir.elements import patient_id_of

    return {ref for ref, res in server.resources.items() if patient_id_of(res) == PID}


# -- paging and fallback ---------------------------------------------------------------
def test_everything_follows_every_next_link(server: FakeFhirServer) -> None:
    client, _ = make_client(server, page_size=7)
    fetched = client.fetch_patient(PID)
    refs = {f"{r['resourceType']}/{r['id']}" for r in fetched.resources}
    assert fetched.method == "everything"
    assert refs == patient_refs(server)
    assert len(server.requests) == -(-len(refs) // 7)  # one request per page
    assert all("$everything" in url for url in server.urls())
    assert all(url.startswith(BASE) for url in fetched.full_urls)


@pytest.mark.parametrize("refusal", ["404", "501", "outcome"])
def test_falls_back_to_one_search_per_type(server: FakeFhirServer, refusal: str) -> None:
    server.everything = refusal
    client, _ = make_client(server, page_size=3)
    fetched = client.fetch_patient(PID)
    assert fetched.method == "search"
    assert {f"{r['resourceType']}/{r['id']}" for r in fetched.resources} == patient_refs(server)
    searched = [u for u in server.urls() if "patient=" in u]
    assert any("Observation?" in u and "_offset=" in u for u in searched)  # paged
    # The server's refusal is remembered: the next patient goes straight to searches.
    asked = len(server.requests)
    client.fetch_patient(PID)
    assert not any("$everything" in u for u in server.urls()[asked:])


def test_a_patient_the_server_lacks_is_not_found(server: FakeFhirServer) -> None:
    client, _ = make_client(server)
    with pytest.raises(NotFoundError, match=r"Patient/nobody"):
        client.fetch_patient("nobody")


def test_patient_ids_pages_through_the_patient_list() -> None:
    server = FakeFhirServer([*sample_resources(), *sample_resources("-b"), *sample_resources("-c")])
    client, _ = make_client(server, page_size=2)
    assert list(client.patient_ids()) == [PID, PID + "-b", PID + "-c"]
    assert "_elements=id" in server.urls()[0]
    assert len(server.requests) == 2


def test_outcome_entries_are_not_resources() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
            {"resource": {"resourceType": "Patient", "id": "a"}, "search": {"mode": "match"}},
        ],
    }
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=bundle))
    client = FhirClient(BASE, transport=transport)
    assert list(client.patient_ids()) == ["a"]


def test_a_page_linking_to_itself_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        link = [{"relation": "next", "url": f"{BASE}Patient?page=2"}]
        return httpx.Response(200, json={"resourceType": "Bundle", "link": link})

    client = FhirClient(BASE, transport=httpx.MockTransport(handler))
    with pytest.raises(FhirServerError, match="links a page to itself"):
        list(client.patient_ids())


@pytest.mark.parametrize(
    ("bundle", "expected"),
    [
        ({"link": [{"relation": "next", "url": "http://x/p2"}]}, "http://x/p2"),
        ({"link": [{"relation": "self", "url": "http://x/p1"}]}, None),
        ({"link": [{"relation": "next"}]}, None),
        ({}, None),
    ],
)
def test_next_link(bundle: dict[str, Any], expected: str | None) -> None:
    assert next_link(bundle) == expected


# -- incremental ----------------------------------------------------------------------
def test_since_asks_everything_for_changes_only(server: FakeFhirServer) -> None:
    client, _ = make_client(server)
    first = client.fetch_patient(PID)
    condition = next(r for r in first.resources if r["resourceType"] == "Condition")
    server.put({**condition, "clinicalStatus": {"text": "resolved"}})
    changed = client.fetch_patient(PID, since=first.requested_at)
    assert [f"{r['resourceType']}/{r['id']}" for r in changed.resources] == [
        f"Condition/{condition['id']}"
    ]
    assert f"_since={first.requested_at}" in server.urls()[-1]


def test_since_on_searches_uses_last_updated(server: FakeFhirServer) -> None:
    server.everything = "404"
    client, _ = make_client(server)
    first = client.fetch_patient(PID)
    asked = len(server.requests)
    changed = client.fetch_patient(PID, since=first.requested_at)
    assert changed.resources == []  # nothing changed, the Patient included
    searches = [u for u in server.urls()[asked:] if "patient=" in u]
    assert searches and all(f"_lastUpdated=gt{first.requested_at}" in u for u in searches)


def test_requested_at_is_the_server_clock_before_the_first_page(server: FakeFhirServer) -> None:
    client, _ = make_client(server, page_size=5)
    fetched = client.fetch_patient(PID)
    # The server's clock ticks 1 s per request; its Date header has whole seconds.
    assert fetched.requested_at == "2025-01-01T12:00:01Z"


# -- retries ----------------------------------------------------------------------------
def test_429_waits_as_long_as_retry_after_says(server: FakeFhirServer) -> None:
    server.fail("$everything", times=2, status=429, headers={"Retry-After": "3"})
    client, sleeps = make_client(server)
    assert client.fetch_patient(PID).resources
    assert sleeps == [3.0, 3.0]


def test_5xx_backs_off_exponentially_with_jitter(server: FakeFhirServer) -> None:
    server.fail("$everything", times=3, status=503)
    client, sleeps = make_client(server, retry=RetryPolicy(attempts=5, base_delay=1.0))
    assert client.fetch_patient(PID).resources
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps, start=1):
        assert 2 ** (attempt - 2) <= slept <= 2 ** (attempt - 1)


def test_connection_errors_are_retried(server: FakeFhirServer) -> None:
    server.fail("$everything", times=2, error=httpx.ConnectError)
    client, sleeps = make_client(server)
    assert client.fetch_patient(PID).resources
    assert len(sleeps) == 2


def test_retries_are_bounded_and_the_error_names_url_and_status(server: FakeFhirServer) -> None:
    server.fail("$everything", times=99, status=503)
    client, sleeps = make_client(server, retry=RetryPolicy(attempts=3))
    with pytest.raises(FhirServerError, match=r"GET http://fhir\.test/r4/Patient/.*HTTP 503") as e:
        client.fetch_patient(PID)
    assert e.value.status == 503
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_unreachable_server_names_the_url(server: FakeFhirServer) -> None:
    server.fail("Patient", times=99, error=httpx.ConnectTimeout)
    client, _ = make_client(server, retry=RetryPolicy(attempts=2))
    with pytest.raises(FhirServerError, match=r"ConnectTimeout after 2 tries"):
        client.fetch_patient(PID)


def test_errors_do_not_echo_resource_content() -> None:
    secret = {"resourceType": "Patient", "id": "x", "name": [{"family": "Secretname"}]}
    transport = httpx.MockTransport(lambda r: httpx.Response(500, json=secret))
    client = FhirClient(BASE, transport=transport, retry=RetryPolicy(attempts=1))
    with pytest.raises(FhirServerError) as excinfo:
        client.get_json("Patient/x")
    assert "Secretname" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == expected


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=10)
    assert policy.delay(1, 3600.0, random.Random(0)) == 10


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base_delay": -1.0}, {"max_delay": -1.0}])
def test_bad_retry_policy(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize("url", ["fhir.test/r4", "ftp://fhir.test", ""])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigError, match="http"):
        FhirClient(url)


# -- auth ------------------------------------------------------------------------------
def test_bearer_token_is_sent(server: FakeFhirServer) -> None:
    server.token = "s3cret"
    client, _ = make_client(server, auth=BearerToken("s3cret"))
    assert client.fetch_patient(PID).resources
    unauthenticated, _ = make_client(server)
    with pytest.raises(FhirServerError, match=r"HTTP 401.*--token"):
        unauthenticated.fetch_patient(PID)


def _pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class TokenEndpoint:
    """A SMART token endpoint that checks the client assertion with the public key."""

    def __init__(self, public_key: Any, algorithm: str) -> None:
        self.public_key = public_key
        self.algorithm = algorithm
        self.claims: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        assert form["grant_type"] == "client_credentials"
        assert form["scope"] == "system/*.read"
        assert (
            form["client_assertion_type"]
            == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        )
        assert jwt.get_unverified_header(form["client_assertion"])["alg"] == self.algorithm
        claims = jwt.decode(
            form["client_assertion"],
            self.public_key,
            algorithms=[self.algorithm],
            audience=TOKEN_URL,
            options={"verify_exp": False},
        )
        self.claims.append(claims)
        return httpx.Response(
            200, json={"access_token": f"tok{len(self.claims)}", "expires_in": 300}
        )


@pytest.mark.parametrize(
    ("make_key", "algorithm"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS384"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
    ],
)
def test_smart_backend_token_exchange_and_cache(
    server: FakeFhirServer, make_key: Any, algorithm: str
) -> None:
    key = make_key()
    endpoint = TokenEndpoint(key.public_key(), algorithm)
    now = [1_000_000.0]
    auth = SmartBackendAuth("my-app", _pem(key), TOKEN_URL, clock=lambda: now[0])

    def route(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            return endpoint(request)
        server.token = f"tok{len(endpoint.claims)}"
        return server.handle(request)

    client = FhirClient(BASE, auth=auth, transport=httpx.MockTransport(route))
    client.get_json(f"Patient/{PID}")
    client.get_json(f"Patient/{PID}")
    assert len(endpoint.claims) == 1  # cached
    claims = endpoint.claims[0]
    assert claims["iss"] == claims["sub"] == "my-app"
    assert claims["aud"] == TOKEN_URL
    assert 0 < claims["exp"] - now[0] <= 300
    now[0] += 250  # within the 60 s margin of expiry: exchange again
    client.get_json(f"Patient/{PID}")
    assert len(endpoint.claims) == 2
    assert endpoint.claims[0]["jti"] != endpoint.claims[1]["jti"]


def test_smart_token_is_renewed_once_after_a_401(server: FakeFhirServer) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    endpoint = TokenEndpoint(key.public_key(), "ES384")
    server.token = "tok2"  # the server already revoked the first token
    auth = SmartBackendAuth("my-app", _pem(key), TOKEN_URL)

    def route(request: httpx.Request) -> httpx.Response:
        return endpoint(request) if str(request.url) == TOKEN_URL else server.handle(request)

    client = FhirClient(BASE, auth=auth, transport=httpx.MockTransport(route))
    assert client.get_json(f"Patient/{PID}")["id"] == PID
    assert len(endpoint.claims) == 2


def test_smart_token_endpoint_refusal_is_clear() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    auth = SmartBackendAuth("my-app", _pem(key), TOKEN_URL)
    transport = httpx.MockTransport(lambda r: httpx.Response(400, json={"error": "invalid_client"}))
    client = FhirClient(BASE, auth=auth, transport=transport)
    with pytest.raises(FhirServerError, match=r"POST http://auth\.test/token: HTTP 400 invalid"):
        client.get_json("Patient/x")


@pytest.mark.parametrize(
    ("make_pem", "match"),
    [
        (lambda: b"not a key", "not an unencrypted PEM"),
        (lambda: _pem(ec.generate_private_key(ec.SECP256R1())), "P-384"),
    ],
)
def test_smart_key_problems(make_pem: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SmartBackendAuth("a", make_pem(), TOKEN_URL)


def test_smart_key_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="--smart-key"):
        SmartBackendAuth.from_key_file("a", tmp_path / "missing.pem", TOKEN_URL)
