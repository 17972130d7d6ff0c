"""The CDS Hooks 2.0 service over HTTP: discovery, cards, errors, feedback, links."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_fakes import FakeLibrary
from ehrqa.api.app import create_app
from ehrqa.cds.hooks import FeedbackStore
from ehrqa.core.config import EhrqaConfig
from ehrqa.fhir.normalize import normalize
from ehrqa.store import SqliteStore

FIXTURES = Path(__file__).parent.parent / "fixtures" / "cds_hooks"
NOW = date(2025, 1, 1)
PATIENT_VIEW = "/cds-services/ehrqa-patient-view"
ORDER_SELECT = "/cds-services/ehrqa-order-select"
CARD_ID = "0c8d4c38-0c5e-4bd2-a83c-7c1b1b0f3b9e"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for value in request["prefetch"].values():
        entries = value.get("entry", [{"resource": value}])
        found += [e["resource"] for e in entries]
    return found


@pytest.fixture
def make_client(tmp_path: Path) -> Callable[..., TestClient]:
    def make(**kwargs: Any) -> TestClient:
        kwargs.setdefault("now", NOW)
        app = create_app(EhrqaConfig(home=str(tmp_path)), **kwargs)
        return TestClient(app, base_url="http://127.0.0.1")  # loopback: no tokens here

    return make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    db = SqliteStore(tmp_path / "store.sqlite3")
    db.upsert(normalize(r) for r in resources(load("patient_view.json")))
    return db


def check_cards(cards: list[dict[str, Any]]) -> None:
    for card in cards:
        assert len(card["summary"]) < 140
        assert card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"]
        assert card["uuid"] and card["detail"]
        for link in card["links"]:
            assert link["url"].startswith("http://127.0.0.1/") and link["type"] == "absolute"


def test_healthz_and_discovery(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok", "store": False, "library": False}
    services = client.get("/cds-services").json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        ("ehrqa-patient-view", "patient-view"),
        ("ehrqa-order-select", "order-select"),
    ]
    assert services[0]["prefetch"]["labs"].startswith("Observation?patient={{context.patientId}}")


def test_the_spec_example_patient_view_with_prefetch_gives_a_triple_whammy_card(client: TestClient):
    response = client.post(PATIENT_VIEW, json=load("patient_view.json"))
    assert response.status_code == 200
    cards = response.json()["cards"]
    check_cards(cards)
    assert cards[0]["indicator"] == "critical"
    assert "Triple whammy" in cards[0]["summary"]
    assert {c["indicator"] for c in cards} == {"critical", "warning"}


def test_order_select_with_a_penicillin_allergy_gives_a_critical_card(client: TestClient):
    response = client.post(ORDER_SELECT, json=load("order_select.json"))
    assert response.status_code == 200
    cards = response.json()["cards"]
    check_cards(cards)
    assert cards[0]["indicator"] == "critical"
    assert cards[0]["summary"] == "Penicillin V allergy recorded: amoxicillin is a penicillin."


def test_store_only_request_links_to_records_that_resolve(
    make_client: Callable[..., TestClient], store: SqliteStore
):
    client = make_client(store=store)
    body = load("patient_view.json")
    del body["prefetch"]
    cards = client.post(PATIENT_VIEW, json=body).json()["cards"]
    check_cards(cards)
    urls = [link["url"] for card in cards for link in card["links"]]
    assert "http://127.0.0.1/v1/records/MedicationRequest/cds-ibuprofen" in urls
    for url in urls:
        record = client.get(url.removeprefix("http://127.0.0.1"))
        assert record.status_code == 200
        assert record.json()["ref"] == url.split("/v1/records/")[1]


def test_a_patient_only_in_the_prefetch_gets_cards_without_record_links(
    make_client: Callable[..., TestClient], store: SqliteStore
):
    body = load("patient_view.json")
    body["context"]["patientId"] = body["prefetch"]["patient"]["id"] = "only-in-prefetch"
    for value in body["prefetch"].values():
        for entry in value.get("entry", []):
            subject = entry["resource"].get("subject") or entry["resource"].get("patient")
            subject["reference"] = "Patient/only-in-prefetch"
    cards = make_client(store=store).post(PATIENT_VIEW, json=body).json()["cards"]
    assert cards and all(card["links"] == [] for card in cards)


def test_a_patient_in_neither_prefetch_nor_store_is_412(client: TestClient):
    body = load("patient_view.json")
    del body["prefetch"]
    response = client.post(PATIENT_VIEW, json=body)
    assert response.status_code == 412
    assert "prefetch" in response.json()["message"]


def test_the_now_header_hides_later_results(make_client: Callable[..., TestClient]):
    client = make_client(now=None)
    later = client.post(
        PATIENT_VIEW, json=load("patient_view.json"), headers={"X-Ehrqa-Now": "2025-01-01"}
    )
    earlier = client.post(
        PATIENT_VIEW, json=load("patient_view.json"), headers={"X-Ehrqa-Now": "2024-10-01"}
    )
    topics = lambda r: {c["source"]["topic"]["code"] for c in r.json()["cards"]}  # noqa: E731
    assert "renal" in topics(later)
    assert "renal" not in topics(earlier)  # the eGFR of 2024-11-20 is in the future then


def _without(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            body = body[key]
        del body[last]

    return edit


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            body = body[key]
        body[last] = value

    return edit


MALFORMED = [
    ("missing hook", PATIENT_VIEW, "patient_view.json", _without("hook"), "hook is required"),
    (
        "wrong hook",
        PATIENT_VIEW,
        "patient_view.json",
        _set("hook", "order-select"),
        "answers hook 'patient-view'",
    ),
    (
        "bad hookInstance",
        PATIENT_VIEW,
        "patient_view.json",
        _set("hookInstance", "42"),
        "hookInstance must be a UUID",
    ),
    ("no context", PATIENT_VIEW, "patient_view.json", _without("context"), "context is required"),
    (
        "no patientId",
        PATIENT_VIEW,
        "patient_view.json",
        _without("context.patientId"),
        "context.patientId is required",
    ),
    (
        "no userId",
        PATIENT_VIEW,
        "patient_view.json",
        _without("context.userId"),
        "context.userId is required",
    ),
    (
        "bad userId",
        PATIENT_VIEW,
        "patient_view.json",
        _set("context.userId", "dr who"),
        "context.userId must be a reference",
    ),
    (
        "prefetch not an object",
        PATIENT_VIEW,
        "patient_view.json",
        _set("prefetch", []),
        "prefetch must be a JSON object",
    ),
    (
        "prefetch not a resource",
        PATIENT_VIEW,
        "patient_view.json",
        _set("prefetch.labs", 3),
        "prefetch.labs must be a FHIR resource",
    ),
    (
        "prefetch resource without id",
        PATIENT_VIEW,
        "patient_view.json",
        _set("prefetch.patient", {"resourceType": "Patient"}),
        "prefetch.patient",
    ),
    (
        "draftOrders not a Bundle",
        ORDER_SELECT,
        "order_select.json",
        _set("context.draftOrders", {"resourceType": "MedicationRequest"}),
        "context.draftOrders must be a FHIR Bundle",
    ),
    (
        "no draftOrders",
        ORDER_SELECT,
        "order_select.json",
        _without("context.draftOrders"),
        "context.draftOrders must be a FHIR Bundle",
    ),
    (
        "no selections",
        ORDER_SELECT,
        "order_select.json",
        _without("context.selections"),
        "context.selections is required",
    ),
    (
        "unknown selection",
        ORDER_SELECT,
        "order_select.json",
        _set("context.selections", ["MedicationRequest/x"]),
        "not in context.draftOrders",
    ),
]


@pytest.mark.parametrize(
    ("case", "path", "fixture", "edit", "message"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_requests_are_400_with_a_message(
    client: TestClient,
    case: str,
    path: str,
    fixture: str,
    edit: Callable[[dict[str, Any]], None],
    message: str,
):
    body = copy.deepcopy(load(fixture))
    edit(body)
    response = client.post(path, json=body)
    assert response.status_code == 400, case
    assert message in response.json()["message"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object")],
)
def test_a_body_that_is_not_a_json_object_is_400(client: TestClient, content: bytes, message: str):
    response = client.post(
        PATIENT_VIEW, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_a_bad_now_header_is_400(client: TestClient):
    response = client.post(
        PATIENT_VIEW, json=load("patient_view.json"), headers={"X-Ehrqa-Now": "soon"}
    )
    assert response.status_code == 400
    assert "X-Ehrqa-Now" in response.json()["message"]


@pytest.mark.parametrize("path", ["/cds-services/nope", "/cds-services/nope/feedback"])
def test_an_unknown_service_is_404(client: TestClient, path: str):
    response = client.post(path, json=load("patient_view.json"))
    assert response.status_code == 404
    assert response.json()["error"] == "NotFoundError"
    assert "ehrqa-patient-view" in response.json()["message"]


def test_feedback_is_accepted_and_stored(client: TestClient, tmp_path: Path):
    item = {
        "card": CARD_ID,
        "outcome": "accepted",
        "outcomeTimestamp": "2025-01-01T10:00:00Z",
        "acceptedSuggestions": [{"id": "1b8f6e3a-8c2b-4f7e-9d7c-2b9b8f0f2a11"}],
    }
    response = client.post(f"{PATIENT_VIEW}/feedback", json={"feedback": [item]})
    assert response.status_code == 200
    assert response.json() == {"stored": 1}
    assert FeedbackStore.in_home(tmp_path).items(CARD_ID) == [
        {"service": "ehrqa-patient-view", **item}
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {
            "feedback": [
                {"card": CARD_ID, "outcome": "ignored", "outcomeTimestamp": "2025-01-01T10:00:00Z"}
            ]
        },
        {"feedback": [{"card": CARD_ID, "outcome": "accepted"}]},
    ],
)
def test_malformed_feedback_is_400(client: TestClient, body: dict[str, Any], tmp_path: Path):
    response = client.post(f"{PATIENT_VIEW}/feedback", json=body)
    assert response.status_code == 400
    assert FeedbackStore.in_home(tmp_path).items() == []


def test_chunk_links_resolve_when_there_is_a_library(make_client: Callable[..., TestClient]):
    client = make_client(library=FakeLibrary())
    chunk = client.get("/v1/docs/chunks/uti%231")
    assert chunk.status_code == 200
    assert chunk.json()["ref"] == "doc:uti#1"
    assert client.get("/v1/docs/chunks/uti%2399").status_code == 404


def test_records_and_chunks_are_404_without_a_store_or_library(client: TestClient):
    assert client.get("/v1/records/Patient/cds-pt-1").status_code == 404
    assert client.get("/v1/docs/chunks/uti%231").status_code == 404


def test_cors_is_off_by_default_and_allows_the_configured_origins(
    make_client: Callable[..., TestClient],
):
    preflight = {"Origin": "https://ehr.example", "Access-Control-Request-Method": "POST"}
    closed = make_client().options(PATIENT_VIEW, headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    opened = make_client(cors_origins=["https://ehr.example"]).options(
        PATIENT_VIEW, headers=preflight
    )
    assert opened.headers["access-control-allow-origin"] == "https://ehr.example"
