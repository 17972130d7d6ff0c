"""The /v1 routes: patients and records, validation, body limits, ingest, decision support."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ehrqa.api.limits import ApiLimits
from ehrqa.cds import tasks
from ehrqa.lab.data.demo import (
    DEMO_CDS_CONDITION,
    DEMO_CDS_PATIENT,
    DEMO_CDS_SYMPTOMS,
    DEMO_NOW,
    DEMO_PATIENT,
)
from ehrqa.store import SqliteStore

if TYPE_CHECKING:
    from api.conftest import Api, DemoHome

ASK = f"/v1/patients/{DEMO_PATIENT}/ask"
HBA1C = "4548-4"


# --- patients and records --------------------------------------------------------------------


def test_patient_detail_counts_resource_types(api: Api) -> None:
    detail = api.get(f"/v1/patients/{DEMO_PATIENT}").json()
    assert detail["name"] == "Myron Schuster" and detail["birth_date"] == "1951-09-10"
    assert sum(detail["type_counts"].values()) == detail["resource_count"]
    assert detail["type_counts"]["Observation"] > 100


def test_resources_filter_by_code_and_dates_newest_first(api: Api) -> None:
    url = f"/v1/patients/{DEMO_PATIENT}/resources"
    labs = api.get(url, params={"type": "Observation", "code": HBA1C}).json()
    assert len(labs) > 3 and all(r["codes"][0]["code"] == HBA1C for r in labs)
    assert [r["date"] for r in labs] == sorted((r["date"] for r in labs), reverse=True)
    assert all(isinstance(r["value"], float) and r["unit"] == "%" for r in labs)
    assert set(labs[0]) == {
        "ref",
        "resourceType",
        "date",
        "display",
        "status",
        "value",
        "unit",
        "text",
        "codes",
    }
    window = {"code": HBA1C, "since": "2023-01-01", "until": "2023-12-31"}
    assert all(r["date"].startswith("2023") for r in api.get(url, params=window).json())
    assert len(api.get(url, params={"limit": 2}).json()) == 2
    category = api.get(url, params={"category": "laboratory", "limit": 50}).json()
    assert {r["resourceType"] for r in category} == {"Observation"}


def test_record_route_returns_the_resource(api: Api) -> None:
    first = api.get(f"/v1/patients/{DEMO_PATIENT}/resources?limit=1").json()[0]
    record = api.get(f"/v1/records/{first['ref']}").json()
    assert record["ref"] == first["ref"] and record["patientId"] == DEMO_PATIENT
    assert record["resource"]["id"] == record["id"]


def test_chunks_are_served(api: Api, demo_home: DemoHome) -> None:
    chunk_id = demo_home.library.search("metformin", k=1)[0].chunk.id
    chunk = api.get(f"/v1/docs/chunks/{chunk_id.replace('#', '%23')}", as_="scoped").json()
    assert chunk["id"] == chunk_id and chunk["ref"] == f"doc:{chunk_id}"


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        (ASK, {}, "question: Field required"),
        (ASK, {"question": ""}, "question: String should have at least 1 character"),
        (ASK, {"question": "x" * 1001}, "question: String should have at most 1000 characters"),
        (ASK, {"question": "   "}, "question: Value error, must not be blank"),
        (ASK, {"question": "q", "now": "yesterday"}, "now: Input should be a valid date"),
        (ASK, {"question": "q", "answer_mode": "creative"}, "answer_mode: Input should be"),
        (ASK, {"question": "q", "temperature": 2}, "temperature: Extra inputs"),
        (ASK, [], "Input should be a valid dictionary"),
        (f"/v1/patients/{DEMO_PATIENT}/cds/differential", {}, "symptoms: Field required"),
        (f"/v1/patients/{DEMO_PATIENT}/cds/treat", {"condition": 5}, "condition: Input should"),
        ("/v1/cds/ask", {"question": "q", "patient_id": 1}, "patient_id: Input should"),
    ],
)
def test_invalid_bodies_get_422_naming_the_field(
    api: Api, url: str, body: Any, message: str
) -> None:
    response = api.post(url, json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationError"
    assert message in response.json()["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=1001", "limit"), ("since=2024-13-01", "since")],
)
def test_invalid_queries_get_422(api: Api, query: str, field: str) -> None:
    response = api.get(f"/v1/patients/{DEMO_PATIENT}/resources?{query}")
    assert response.status_code == 422
    assert f"query.{field}:" in response.json()["message"]


def test_a_body_that_is_not_json_gets_422(api: Api) -> None:
    response = api.post(ASK, content=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "JSON decode error" in response.json()["message"]


def test_unknown_routes_get_a_json_404(api: Api) -> None:
    response = api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFoundError"


# --- body limits -----------------------------------------------------------------------------


def chunks(data: bytes, size: int = 64) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_bodies_over_the_limit_get_413(make_api: Callable[..., Api]) -> None:
    api = make_api(limits=ApiLimits(max_body_bytes=200, max_ingest_bytes=400))
    big = json.dumps({"question": "x" * 300}).encode()
    declared = api.post(ASK, content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"] == "PayloadTooLargeError"
    assert "200 bytes" in declared.json()["message"]
    streamed = api.post(ASK, content=chunks(big), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    small = json.dumps({"question": "Latest HbA1c?"}).encode()
    assert api.post(ASK, content=small, headers={"Content-Type": "application/json"}).is_success
    ingest = api.post(
        "/v1/ingest", content=b" " * 401, headers={"Content-Type": "application/json"}
    )
    assert ingest.status_code == 413 and "400 bytes" in ingest.json()["message"]


# --- ingest ----------------------------------------------------------------------------------


def resource(rtype: str, rid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": rtype, "id": rid, **extra}


PATIENT = resource("Patient", "up1", name=[{"given": ["Ada"], "family": "Upload"}])
OBSERVATION = resource(
    "Observation",
    "uo1",
    status="final",
    code={"coding": [{"system": "http://loinc.org", "code": HBA1C, "display": "HbA1c"}]},
    subject={"reference": "Patient/up1"},
    effectiveDateTime="2024-02-01",
    valueQuantity={"value": 7.1, "unit": "%"},
)


@pytest.fixture
def fresh(make_api: Callable[..., Api], tmp_path: Path) -> Iterator[Api]:
    store = SqliteStore(tmp_path / "fresh.sqlite3")
    yield make_api(store=store)
    store.close()


def test_admins_ingest_bundles_and_ndjson(fresh: Api) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": PATIENT}]}
    report = fresh.post("/v1/ingest", json=bundle).json()
    assert report["inserted"] == 1 and report["files"] == 1
    ndjson = (json.dumps(OBSERVATION) + "\n" + json.dumps({"resourceType": "Observation"})).encode()
    response = fresh.post(
        "/v1/ingest", content=ndjson, headers={"Content-Type": "application/x-ndjson"}
    )
    report = response.json()
    assert report["inserted"] == 1 and report["invalid"] == 1
    assert report["issues"] and all(i.startswith("upload.ndjson:line 2") for i in report["issues"])
    assert [p["id"] for p in fresh.get("/v1/patients").json()] == ["up1"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b"{}", "text/plain", 415, "takes application/json or application/x-ndjson"),
        (b"  ", "application/json", 400, "the request body is empty"),
        (b"{nope", "application/json", 400, "invalid JSON"),
        (b"[1, 2]", "application/json", 400, "expected a JSON object"),
    ],
)
def test_bad_uploads_are_refused(
    fresh: Api, content: bytes, content_type: str, status: int, message: str
) -> None:
    response = fresh.post("/v1/ingest", content=content, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert message in response.json()["message"]
    assert "ehrqa-upload-" not in response.json()["message"]


def test_scoped_tokens_may_not_ingest(fresh: Api) -> None:
    response = fresh.post("/v1/ingest", as_="scoped", json=PATIENT)
    assert response.status_code == 403
    assert "admin token" in response.json()["message"]
    assert fresh.get("/v1/patients").json() == []


# --- decision support ------------------------------------------------------------------------


def without_timings(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "timings"}


def test_cds_routes_return_what_the_tasks_return(api: Api, demo_home: DemoHome) -> None:
    store, library, pid = demo_home.store, demo_home.library, DEMO_CDS_PATIENT
    base = f"/v1/patients/{pid}/cds"
    runs = [
        (
            f"{base}/differential",
            {"symptoms": DEMO_CDS_SYMPTOMS},
            tasks.run_differential(
                library, DEMO_CDS_SYMPTOMS, DEMO_NOW, store=store, patient_id=pid
            ),
        ),
        (
            f"{base}/treat",
            {"condition": DEMO_CDS_CONDITION},
            tasks.run_treat(library, store, pid, DEMO_CDS_CONDITION, DEMO_NOW),
        ),
        (f"{base}/summarize", {}, tasks.run_summarize_patient(store, pid, DEMO_NOW)),
        (
            "/v1/cds/ask",
            {"question": "At what eGFR should metformin be stopped?", "patient_id": pid},
            tasks.run_ask(
                library,
                "At what eGFR should metformin be stopped?",
                DEMO_NOW,
                store=store,
                patient_id=pid,
            ),
        ),
    ]
    for url, body, expected in runs:
        response = api.post(url, json={**body, "answer_mode": "extractive"})
        assert response.status_code == 200, (url, response.json())
        assert without_timings(response.json()) == without_timings(expected.to_dict()), url
        assert response.json()["sources"] and response.json()["notice"]


def test_advice_needs_a_library(make_api: Callable[..., Api]) -> None:
    api = make_api(library=None)
    base = f"/v1/patients/{DEMO_CDS_PATIENT}/cds"
    for url, body in [
        (f"{base}/differential", {"symptoms": "fever"}),
        (f"{base}/treat", {"condition": "sepsis"}),
        ("/v1/cds/ask", {"question": "Dose of metformin?"}),
    ]:
        response = api.post(url, json=body)
        assert response.status_code == 503, url
        assert "ehrqa docs add" in response.json()["message"]
    assert api.post(f"{base}/summarize", json={}).status_code == 200


def test_openapi_documents_the_routes(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/me",
        "/v1/patients",
        "/v1/patients/{patient_id}",
        "/v1/patients/{patient_id}/resources",
        "/v1/patients/{patient_id}/ask",
        "/v1/patients/{patient_id}/cds/differential",
        "/v1/cds/ask",
        "/v1/ingest",
        "/v1/records/{resource_type}/{resource_id}",
    ):
        assert path in paths, path
    ask = paths["/v1/patients/{patient_id}/ask"]["post"]
    assert ask["summary"] and "text/event-stream" in ask["responses"]["200"]["content"]
    assert "403" in ask["responses"]


def test_unexpected_failures_get_a_json_500_and_log_no_detail(
    make_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenStore:
        def patients(self, search: str | None = None) -> list[Any]:
            raise RuntimeError("secret record text")

    api = make_api(store=BrokenStore())
    api.client = type(api.client)(api.client.app, raise_server_exceptions=False)
    response = api.get("/v1/patients")
    assert response.status_code == 500
    assert response.json()["error"] == "InternalError"
    assert "secret" not in response.text
    assert "RuntimeError on GET /v1/patients" in caplog.text
    assert all("secret" not in r.getMessage() for r in caplog.records)
