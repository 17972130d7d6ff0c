"""Fuzz every route of the HTTP API: random paths, methods, headers, query strings, JSON
bodies and content types, with and without tokens (issue 17).

Whatever arrives, the service answers with a status below 500 (503 for a missing part is
allowed) and a body with no traceback, no internal-error event and no install path. The
suite runs a short profile; ``benchmarks/fuzz_api.py`` runs the same cases by the ten
thousand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ehrqa
from ehrqa.api.app import create_app
from ehrqa.api.tokens import TokenStore
from ehrqa.core.config import EhrqaConfig
from ehrqa.docs import open_library
from ehrqa.ingest.files import ingest_paths
from ehrqa.llm.fake import FakeChatModel
from ehrqa.store import SqliteStore

FIXTURES = Path(__file__).parent.parent / "fixtures"
PATIENT = "23b32be5-0322-4bfe-8f3a-a12b2822f8dc"  # in synthea_sample.json
INSTALL_PATH = str(Path(ehrqa.__file__).parent)
ROUTES = (
    "/",
    "/healthz",
    "/openapi.json",
    "/static/app.js",
    "/static/units.json",
    "/static/{name}",
    "/v1/me",
    "/v1/patients",
    "/v1/patients/{patient_id}",
    "/v1/patients/{patient_id}/resources",
    "/v1/patients/{patient_id}/labs",
    "/v1/records/{resource_type}/{resource_id}",
    "/v1/docs/chunks/{chunk_id}",
    "/v1/patients/{patient_id}/ask",
    "/v1/patients/{patient_id}/cds/differential",
    "/v1/patients/{patient_id}/cds/treat",
    "/v1/patients/{patient_id}/cds/summarize",
    "/v1/cds/ask",
    "/v1/ingest",
    "/cds-services",
    "/cds-services/{service_id}",
    "/cds-services/{service_id}/feedback",
)
# The last path segments of the POST routes (the others are GET).
POST_ENDINGS = ("ask", "differential", "treat", "summarize", "ingest", "{service_id}", "feedback")
SERVICES = ("ehrqa-patient-view", "ehrqa-order-select", "nope")
CONTENT_TYPES = (
    "application/json",
    "application/fhir+json",
    "application/x-ndjson",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "",
)
BODY_KEYS = (
    "question",
    "now",
    "answer_mode",
    "conversation_id",
    "symptoms",
    "condition",
    "patient_id",
    "feedback",
    "hook",
    "hookInstance",
    "context",
    "prefetch",
    "resourceType",
    "entry",
    "id",
)
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
segment = st.one_of(
    st.just(PATIENT),  # about half the time: the request reaches the route's work
    st.sampled_from(["Patient/" + PATIENT, "..", "%00", "%2e%2e%2f", "a" * 300, "", "Patient"]),
    st.text(max_size=20).map(lambda text: quote(text, safe="")),  # as a client sends it
)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["2024-01-01", "9999-12-31", "0001-01-01", "model", "hybrid", PATIENT]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(BODY_KEYS), st.text(max_size=8)), inner, max_size=5
        ),
    ),
    max_leaves=12,
)


GOOD_BODIES = (
    {"question": "What was my latest HbA1c?"},
    {"question": "Is it getting better?", "conversation_id": "c1", "answer_mode": "hybrid"},
    {"symptoms": "fever, dysuria", "answer_mode": "model"},
    {"condition": "hypertension"},
    {},
    {"question": "first-line treatment?", "patient_id": PATIENT},
    {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2025-01-01"}]},
    {"hook": "patient-view", "hookInstance": "h", "context": {"patientId": PATIENT}},
    {"resourceType": "Patient", "id": "fz1", "birthDate": "1980-01-01"},
)


@dataclass(frozen=True)
class Case:
    """One request: who sends it (with or without tokens) and what it is."""

    auth: bool
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    route: str = "random"

    def describe(self) -> str:
        """A short line naming the case (for failure reports)."""
        body = None if self.body is None else self.body[:120]
        who = "tokens" if self.auth else "no-auth"
        return f"{who} {self.method} {self.path[:160]} {self.headers} {body!r}"


def _often(common: object, *others: object) -> st.SearchStrategy[Any]:
    """``common`` about half the time, else one of ``others`` (requests that get far)."""
    return st.one_of(st.just(common), st.sampled_from(others))


@st.composite
def cases(draw: st.DrawFn, route: str | None = None) -> Case:
    """A random request to one of the routes (or a random path); to ``route`` when given."""
    random_path = st.text(max_size=30).map(lambda t: "/" + quote(t, safe="/"))
    if route is None:
        route = draw(st.one_of(st.sampled_from(ROUTES), st.sampled_from(ROUTES), st.just("random")))
    path = draw(random_path) if route == "random" else route
    for name in ("patient_id", "name", "resource_type", "resource_id", "chunk_id"):
        path = path.replace("{" + name + "}", draw(segment), 1)
    path = path.replace("{service_id}", draw(st.one_of(st.sampled_from(SERVICES), segment)))
    if draw(st.booleans()):
        keys = st.sampled_from(["stream", "type", "since", "until", "limit", "code", "x"])
        query = draw(st.dictionaries(keys, printable, max_size=3))
        path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    post = "POST" if route.split("/")[-1] in POST_ENDINGS else "GET"
    method = draw(_often(post, "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"))
    headers: dict[str, str] = {}
    optional = {
        "Content-Type": _often("application/json", *CONTENT_TYPES).flatmap(
            lambda kind: st.just(kind) | printable
        ),
        "Host": _often("127.0.0.1:8080", "localhost", "[::1]", "evil.example", "", "a:b:c"),
        "Origin": st.sampled_from(["http://127.0.0.1:8080", "http://evil.example", "null", "x"]),
        "Authorization": _often(
            "Bearer ADMIN", "Bearer SCOPED", "Bearer nope", "Basic x", "Bearer "
        ),
        "X-Ehrqa-Now": st.one_of(st.sampled_from(["2025-01-01", "9999-12-31"]), printable),
        "Accept": st.sampled_from(["text/event-stream", "application/json", "*/*"]),
        "If-None-Match": printable,
    }
    for name, values in optional.items():
        if draw(st.booleans()) or (name == "Content-Type" and draw(st.booleans())):
            headers[name] = draw(values)
    body = None
    if method in ("POST", "PUT") or draw(st.booleans()):
        body = draw(
            st.one_of(
                st.sampled_from(GOOD_BODIES).map(lambda v: json.dumps(v).encode()),
                json_value.map(lambda v: json.dumps(v).encode()),
                st.binary(max_size=64),
                st.sampled_from([b"", b"{", b"\xff\xfe", b'{"resourceType": "Bundle"}']),
            )
        )
    return Case(draw(st.booleans()), method, path, headers, body, route)


@dataclass
class Service:
    """Two apps over one small store and library: one with tokens, one without."""

    with_tokens: TestClient
    without: TestClient
    secrets: dict[str, str]


def make_service(home: Path) -> Service:
    """Build the two apps in ``home`` (a store of one patient, a two-document library)."""
    store = SqliteStore(home / "store.sqlite3")
    assert not ingest_paths(store, [FIXTURES / "synthea_sample.json"]).rejected_files
    library = open_library(home, embedder="hash")
    library.add([FIXTURES / "docs"])
    tokens = TokenStore.in_home(home)
    secrets = {
        "ADMIN": tokens.create("admin", admin=True),
        "SCOPED": tokens.create("scoped", patients=[PATIENT]),
    }
    config = EhrqaConfig(home=str(home), embedder="hash", selector="default", model="fake")
    common: dict[str, Any] = {"store": store, "library": library, "now": date(2025, 1, 1)}
    common["model"] = FakeChatModel(default_reply="A reply [1].")
    apps = (create_app(config, auth=tokens, **common), create_app(config, **common))
    clients = [
        TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) for app in apps
    ]
    return Service(clients[0], clients[1], secrets)


def send(service: Service, case: Case) -> tuple[int, str]:
    """Send ``case``; the status and the body text (a stream read to its end)."""
    client = service.with_tokens if case.auth else service.without
    headers = dict(case.headers)
    if "Authorization" in headers:
        scheme, _, token = headers["Authorization"].partition(" ")
        headers["Authorization"] = f"{scheme} {service.secrets.get(token, token)}"
    response = client.request(case.method, case.path, headers=headers, content=case.body)
    return response.status_code, response.text


def problems(status: int, text: str) -> list[str]:
    """What is wrong with a response: a 5xx other than 503, a traceback, the install path."""
    found = []
    if status >= 500 and status != 503:
        found.append(f"status {status}")
    for bad in ("Traceback", INSTALL_PATH, 'File "'):
        if bad in text:
            found.append(f"body holds {bad!r}")
    # An unexpected error by its name in a JSON body or an SSE event, not as a word the
    # request itself supplied ("no web page file 'InternalError'" is a 404 naming the path).
    if INTERNAL_ERROR_RE.search(text):
        found.append("body holds an InternalError")
    return found


INTERNAL_ERROR_RE = re.compile(r'"error"\s*:\s*"InternalError"')


def test_a_path_that_spells_an_error_name_is_no_failure() -> None:
    echoed = '{"error":"NotFoundError","message":"no web page file \'InternalError\'"}'
    assert problems(404, echoed) == []
    assert problems(500, '{"error": "InternalError", "message": "x"}') == [
        "status 500",
        "body holds an InternalError",
    ]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield make_service(tmp_path_factory.mktemp("fuzz-api"))


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_no_request_gets_a_500_or_a_traceback(service: Service, case: Case) -> None:
    status, text = send(service, case)
    assert problems(status, text) == [], case.describe()


@pytest.mark.parametrize(
    "case",
    [
        Case(False, "GET", "/static/app.js%00.js"),
        Case(False, "GET", "/v1/patients", {"Host": "evil.example"}),
        Case(
            False,
            "POST",
            "/cds-services/ehrqa-patient-view/feedback",
            {"Content-Type": "text/plain"},
            b"{}",
        ),
        Case(
            True,
            "POST",
            f"/v1/patients/{PATIENT}/ask",
            {"Authorization": "Bearer ADMIN", "Content-Type": "application/json"},
            b'{"question": "x", "now": "9999-12-31"}',
        ),
        Case(
            False,
            "POST",
            "/v1/ingest",
            {"Content-Type": "application/json"},
            b"[1, 2]",
        ),
        Case(False, "GET", "/v1/records/Patient/%2e%2e%2f%2e%2e"),
        Case(False, "POST", "/cds-services/ehrqa-order-select", {"X-Ehrqa-Now": "\x7f"}, b"{}"),
    ],
    ids=["nul", "host", "csrf", "now", "ingest", "dots", "now-header"],
)
def test_known_attacks_are_clean_4xx(service: Service, case: Case) -> None:
    status, text = send(service, case)
    assert problems(status, text) == [] and 400 <= status < 500, (status, text)
