"""The service against web pages and hostile requests (issue 17, findings 2 and 7).

Each test is an attack that worked before: DNS rebinding (any Host answered without
tokens), cross-site "simple" POSTs storing feedback, ``/static/app.js%00.js`` → 500 and
404s naming the install path, markup and ``javascript:`` links echoed into cards,
failed sign-ins missing from the audit log, ``X-Ehrqa-Now: 9999-12-31``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from ehrqa.api.app import create_app
from ehrqa.api.audit import AuditLog
from ehrqa.api.guard import RequestGuard, host_name
from ehrqa.api.web_routes import STATIC_DIR
from ehrqa.cds.hooks import FeedbackStore, markdown_text, plain_text, safe_url
from ehrqa.core.config import EhrqaConfig
from ehrqa.lab.data.demo import DEMO_PATIENT

if TYPE_CHECKING:
    from api.conftest import Api

FIXTURES = Path(__file__).parent.parent / "fixtures" / "cds_hooks"
FEEDBACK = "/cds-services/ehrqa-patient-view/feedback"
ORDER_SELECT = "/cds-services/ehrqa-order-select"
ITEM = {
    "card": "0c8d4c38-0c5e-4bd2-a83c-7c1b1b0f3b9e",
    "outcome": "accepted",
    "outcomeTimestamp": "2025-01-01T10:00:00Z",
}
ATTACK = '<img src=x onerror="alert(1)"> [click](javascript:alert(1)) <script>x()</script>'


def no_auth_client(home: Path, **kwargs: Any) -> TestClient:
    """The app without tokens, called as a browser on this machine would (Host 127.0.0.1)."""
    app = create_app(EhrqaConfig(home=str(home)), now=date(2025, 1, 1), **kwargs)
    return TestClient(app, base_url="http://127.0.0.1:8080")


def stored_feedback(home: Path) -> int:
    feedback = FeedbackStore.in_home(home)
    try:
        return len(feedback.items())
    finally:
        feedback.close()


# --- finding 2: DNS rebinding ----------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example"])
def test_without_tokens_a_foreign_host_is_refused(make_api: Callable[..., Api], host: str) -> None:
    api = make_api(auth=None)
    response = api.client.get("/v1/patients", headers={"Host": host})
    assert response.status_code == 400
    assert response.json()["error"] == "HostNotAllowedError"
    assert DEMO_PATIENT not in response.text


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8080", "localhost:8080", "LOCALHOST.", "[::1]:8080", "::1"]
)
def test_without_tokens_loopback_names_are_answered(
    make_api: Callable[..., Api], host: str
) -> None:
    api = make_api(auth=None)
    response = api.client.get("/v1/patients", headers={"Host": host})
    assert response.status_code == 200 and response.json()


def test_configured_host_names_are_answered(make_api: Callable[..., Api]) -> None:
    api = make_api(auth=None, allowed_hosts=["ehr.ward7.local"])
    assert api.client.get("/v1/me", headers={"Host": "ehr.ward7.local:8080"}).status_code == 200
    assert api.client.get("/v1/me", headers={"Host": "evil.example"}).status_code == 400


def test_the_configs_allowed_hosts_are_read(tmp_path: Path) -> None:
    config = EhrqaConfig(home=str(tmp_path), allowed_hosts=" ehr.local , Other.Host ")
    assert config.host_names() == ("ehr.local", "other.host")
    client = TestClient(create_app(config), base_url="http://other.host")
    assert client.get("/healthz").status_code == 200


def test_with_tokens_the_host_is_not_checked_unless_configured(
    make_api: Callable[..., Api],
) -> None:
    api = make_api()  # a rebinding page has no token: the token is the protection
    response = api.client.get("/v1/me", headers={**api.auth("admin"), "Host": "ehr.example"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("value", "name"),
    [("[::1]:80", "::1"), ("LocalHost:1", "localhost"), ("a.b.", "a.b"), ("", ""), ("::1", "::1")],
)
def test_host_name(value: str, name: str) -> None:
    assert host_name(value) == name


# --- finding 2: cross-site POSTs -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {},  # fetch() with a Blob body sends no Content-Type at all
    ],
    ids=["text", "text-cross-site", "form", "multipart", "none"],
)
def test_state_changes_take_json_only(tmp_path: Path, headers: dict[str, str]) -> None:
    client = no_auth_client(tmp_path)
    body = json.dumps({"feedback": [ITEM]}).encode()
    response = client.post(FEEDBACK, content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "UnsupportedMediaTypeError"
    assert stored_feedback(tmp_path) == 0


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9999"])
def test_without_tokens_json_from_a_foreign_origin_is_refused(tmp_path: Path, origin: str) -> None:
    client = no_auth_client(tmp_path)
    response = client.post(FEEDBACK, json={"feedback": [ITEM]}, headers={"Origin": origin})
    assert response.status_code == 403
    assert response.json()["error"] == "CrossSiteRequestError"
    assert stored_feedback(tmp_path) == 0


@pytest.mark.parametrize(
    ("origin", "cors"),
    [(None, ()), ("http://127.0.0.1:8080", ()), ("https://ehr.example", ("https://ehr.example",))],
    ids=["no-origin", "same-origin", "cors-origin"],
)
def test_json_from_this_service_or_an_allowed_origin_is_stored(
    tmp_path: Path, origin: str | None, cors: tuple[str, ...]
) -> None:
    client = no_auth_client(tmp_path, cors_origins=cors)
    headers = {"Origin": origin} if origin else {}
    response = client.post(FEEDBACK, json={"feedback": [ITEM]}, headers=headers)
    assert response.status_code == 200 and response.json() == {"stored": 1}


def test_with_tokens_a_foreign_origin_with_a_token_is_answered(
    make_api: Callable[..., Api],
) -> None:
    api = make_api()
    response = api.post(FEEDBACK, json={"feedback": [ITEM]}, headers={"Origin": "https://x.org"})
    assert response.status_code == 200


def test_every_state_changing_route_refuses_text_plain(make_api: Callable[..., Api]) -> None:
    api = make_api(auth=None)
    paths = api.client.get("/openapi.json").json()["paths"]
    posts = [
        path.replace("{patient_id}", DEMO_PATIENT).replace("{service_id}", "x")
        for path, methods in paths.items()
        if "post" in methods
    ]
    assert len(posts) >= 7
    for path in posts:
        response = api.client.post(path, content=b"{}", headers={"Content-Type": "text/plain"})
        assert response.status_code == 415, path


def test_the_guard_is_a_pure_function() -> None:
    guard = RequestGuard.build(no_auth=True)
    assert guard.refusal("GET", "/v1/me", {"host": "localhost"}) is None
    refused = guard.refusal("POST", "/v1/ingest", {"host": "localhost", "content-length": "2"})
    assert refused is not None and refused.status == 415
    ndjson = {"host": "localhost", "content-length": "2", "content-type": "application/x-ndjson"}
    assert guard.refusal("POST", "/v1/ingest", ndjson) is None
    assert guard.refusal("POST", "/v1/cds/ask", ndjson) is not None  # NDJSON: ingest only


# --- finding 7 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/static/app.js%00.js", "/static/%00", "/static/a%0a.js", "/static/" + "a" * 5000 + ".js"],
)
def test_odd_static_names_are_404_not_500(tmp_path: Path, path: str) -> None:
    response = no_auth_client(tmp_path).get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "NotFoundError"


def test_a_404_does_not_name_the_install_path(tmp_path: Path) -> None:
    response = no_auth_client(tmp_path).get("/static/nothere.js")
    assert response.status_code == 404
    assert str(STATIC_DIR) not in response.text and "site-packages" not in response.text
    assert "/work" not in response.text


def hostile_order_select() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "order_select.json").read_text())
    body = copy.deepcopy(body)
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"]["text"] = f"Amoxicillin {ATTACK}"
    draft["medicationCodeableConcept"]["coding"][0]["display"] = f"Amoxicillin 500 MG {ATTACK}"
    return body


def test_card_text_from_the_request_carries_no_markup_or_script_links(tmp_path: Path) -> None:
    response = no_auth_client(tmp_path).post(ORDER_SELECT, json=hostile_order_select())
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert cards and cards[0]["indicator"] == "critical"
    text = json.dumps(cards)
    assert "<img" not in text and "<script" not in text and "onerror" not in text
    for card in cards:
        # Brackets only escaped (\\[): no markdown link can form.
        assert not re.search(r"(?<!\\)[\[\]]", card["detail"]), card["detail"]
        for link in card["links"]:
            assert link["url"].startswith(("http://", "https://"))


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ('a <img src=x onerror="y"> b', "a  b"),
        ("HbA1c < 7 and > 5", "HbA1c < 7 and > 5"),
        ("bell\x07 and\x00 nul", "bell and nul"),
    ],
)
def test_plain_text_removes_tags_and_control_characters(text: str, plain: str) -> None:
    assert plain_text(text) == plain


def test_markdown_text_escapes_links_and_html() -> None:
    escaped = markdown_text("**Bold** [x](javascript:alert(1)) \\[y](z) <b>b</b> 1 < 2")
    assert escaped == "**Bold** \\[x\\](javascript:alert(1)) \\\\\\[y\\](z) b 1 &lt; 2"


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://ehr.example/a", True),
        ("http://127.0.0.1/v1/records/X/1", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        ("data:text/html,x", False),
        ('http://x/"><img>', False),
        (None, False),
    ],
)
def test_only_http_links_are_kept(url: Any, kept: bool) -> None:
    assert (safe_url(url) is not None) is kept


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({}, "(no token)"),
        ({"Authorization": "Bearer guessed-secret"}, "(unknown or revoked token)"),
    ],
    ids=["missing", "unknown"],
)
def test_failed_sign_ins_are_audited_without_the_token(
    make_api: Callable[..., Api], tmp_path: Path, headers: dict[str, str], token: str
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    api = make_api(audit=log)
    assert api.client.get("/v1/patients", headers=headers).status_code == 401
    (line,) = [json.loads(raw) for raw in log.path.read_text().splitlines()]
    assert line["token"] == token and line["status"] == 401
    assert line["route"] == "/v1/patients" and line["method"] == "GET"
    assert "guessed-secret" not in log.path.read_text()


def test_a_revoked_token_is_audited_as_unknown(
    make_api: Callable[..., Api], tmp_path: Path
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    api = make_api(audit=log)
    assert api.get("/v1/me", as_="revoked").status_code == 401
    raw = log.path.read_text()
    assert '"(unknown or revoked token)"' in raw and api.secrets["revoked"] not in raw


@pytest.mark.parametrize("day", ["9999-12-31", "2201-01-01", "1899-12-31"])
def test_x_ehrqa_now_outside_1900_to_2200_is_400(tmp_path: Path, day: str) -> None:
    body = json.loads((FIXTURES / "order_select.json").read_text())
    response = no_auth_client(tmp_path).post(ORDER_SELECT, json=body, headers={"X-Ehrqa-Now": day})
    assert response.status_code == 400
    assert "X-Ehrqa-Now must be a date between 1900-01-01 and 2200-12-31" in response.text


@pytest.mark.parametrize("day", ["9999-12-31", "1800-01-01"])
def test_a_body_now_outside_1900_to_2200_is_422(make_api: Callable[..., Api], day: str) -> None:
    api = make_api()
    body = {"question": "How old am I?", "now": day}
    response = api.post(f"/v1/patients/{DEMO_PATIENT}/ask", json=body)
    assert response.status_code == 422 and "now:" in response.json()["message"]


@pytest.mark.parametrize("question", ["", "   ", "\n"])
def test_an_empty_question_is_refused_before_the_qa_system_is_built(
    make_api: Callable[..., Api], question: str
) -> None:
    api = make_api()
    response = api.post(f"/v1/patients/{DEMO_PATIENT}/ask", json={"question": question})
    assert response.status_code == 422 and "question" in response.json()["message"]
    assert api.client.app.state.ehrqa._qa == {}  # type: ignore[attr-defined]


def test_a_damaged_store_is_503_not_500(tmp_path: Path) -> None:
    from ehrqa.store import SqliteStore

    store = SqliteStore(tmp_path / "s.sqlite3")
    store._db.execute("DROP TABLE patients")  # what a damaged file reads like
    client = no_auth_client(tmp_path, store=store)
    response = client.get("/v1/patients")
    assert response.status_code == 503 and response.json()["error"] == "StoreError"
    store.close()
