"""CDS Hooks library code: request checks, context from prefetch or store, cards, feedback."""

from __future__ import annotations

import copy
import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_fakes import DOCS, FakeLibrary
from ehrqa.cds import hooks
from ehrqa.cds.hooks import CdsRequestError, FeedbackStore, PrefetchRequiredError
from ehrqa.core.errors import NotFoundError
from ehrqa.fhir.normalize import normalize
from ehrqa.store import SqliteStore

FIXTURES = Path(__file__).parent.parent / "fixtures" / "cds_hooks"
NOW = date(2025, 1, 1)
CARD = "0c8d4c38-0c5e-4bd2-a83c-7c1b1b0f3b9e"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def prefetched_resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for value in request["prefetch"].values():
        if value.get("resourceType") == "Bundle":
            found += [e["resource"] for e in value["entry"]]
        else:
            found.append(value)
    return found


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    db = SqliteStore(tmp_path / "store.sqlite3")
    db.upsert(normalize(r) for r in prefetched_resources(load("patient_view.json")))
    return db


def test_discovery_lists_both_services_with_the_prefetch_templates():
    services = {s["id"]: s for s in hooks.discovery()["services"]}
    assert set(services) == {"ehrqa-patient-view", "ehrqa-order-select"}
    assert services["ehrqa-order-select"]["hook"] == "order-select"
    for service in services.values():
        assert service["title"] and service["description"]
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert set(service["prefetch"]) == {
            "patient",
            "conditions",
            "medications",
            "allergies",
            "labs",
        }


def test_unknown_service_is_not_found_and_lists_the_services():
    with pytest.raises(NotFoundError, match="available: ehrqa-patient-view"):
        hooks.parse_request("nope", load("patient_view.json"))


def test_prefetch_context_builds_the_triple_whammy_card():
    request = hooks.parse_request("ehrqa-patient-view", load("patient_view.json"))
    context, from_store = hooks.hook_context(request, None, NOW)
    assert not from_store
    cards = hooks.cards(request, context, base_url="http://cds.test")
    assert cards[0]["indicator"] == "critical"
    assert cards[0]["summary"].startswith(
        "Triple whammy: lisinopril, hydrochlorothiazide and ibuprofen"
    )
    assert "MedicationRequest/cds-ibuprofen" in cards[0]["detail"]
    assert cards[0]["links"] == []  # prefetched records live in the EHR, not here
    kinds = {c["source"]["topic"]["code"] for c in cards}
    assert kinds == {"interaction", "renal", "condition"}


def test_store_context_fills_what_the_prefetch_leaves_out(store: SqliteStore):
    body = load("patient_view.json")
    body["prefetch"] = {"patient": body["prefetch"]["patient"]}
    request = hooks.parse_request("ehrqa-patient-view", body)
    context, from_store = hooks.hook_context(request, store, NOW)
    assert from_store
    assert {r.id for r in context.medications} == {"cds-lisinopril", "cds-hctz", "cds-ibuprofen"}


def test_a_patient_in_neither_prefetch_nor_store_needs_a_prefetch(store: SqliteStore):
    body = load("patient_view.json")
    body["context"]["patientId"] = "someone-else"
    del body["prefetch"]
    request = hooks.parse_request("ehrqa-patient-view", body)
    with pytest.raises(PrefetchRequiredError, match="prefetch"):
        hooks.hook_context(request, store, NOW)


def test_resources_of_another_patient_in_the_prefetch_are_ignored():
    body = load("patient_view.json")
    body["context"]["patientId"] = "someone-else"
    request = hooks.parse_request("ehrqa-patient-view", body)
    with pytest.raises(PrefetchRequiredError):
        hooks.hook_context(request, None, NOW)


def test_order_select_critical_allergy_card_suggests_removing_the_order():
    request = hooks.parse_request("ehrqa-order-select", load("order_select.json"))
    context, _ = hooks.hook_context(request, None, NOW)
    cards = hooks.cards(request, context, base_url="http://cds.test")
    (card,) = [c for c in cards if c["source"]["topic"]["code"] == "allergy"]
    assert card["indicator"] == "critical"
    assert card["summary"] == "Penicillin V allergy recorded: amoxicillin is a penicillin."
    action = card["suggestions"][0]["actions"][0]
    assert action == {
        "type": "delete",
        "description": "Remove the draft order MedicationRequest/draft-amox",
        "resourceId": ["MedicationRequest/draft-amox"],
    }
    assert card["selectionBehavior"] == "at-most-one"
    assert "AllergyIntolerance/cds-pen" in card["detail"]


def test_unselected_draft_orders_count_as_current_medicines():
    body = load("order_select.json")
    warfarin = copy.deepcopy(body["context"]["draftOrders"]["entry"][0])
    warfarin["resource"]["id"] = "draft-warfarin"
    warfarin["resource"]["medicationCodeableConcept"]["coding"][0]["display"] = "Warfarin 5 MG"
    body["context"]["draftOrders"]["entry"].append(warfarin)
    body["context"]["selections"] = ["MedicationRequest/draft-warfarin"]
    request = hooks.parse_request("ehrqa-order-select", body)
    context, _ = hooks.hook_context(request, None, NOW)
    summaries = [c["summary"] for c in hooks.cards(request, context)]
    assert "Warfarin with ibuprofen: the risk of serious bleeding is increased." in summaries


HYPERTENSION = """# Hypertension protocol
## Treatment
- Essential hypertension: offer an ACE inhibitor or ARB under 55, a calcium channel blocker
  over 55; recheck the blood pressure in four weeks.
"""


def test_protocol_cards_need_a_word_in_common_with_the_condition():
    body = load("patient_view.json")
    conditions = body["prefetch"]["conditions"]["entry"]
    cystitis = copy.deepcopy(conditions[0])
    cystitis["resource"]["id"] = "cds-cystitis"
    cystitis["resource"]["code"]["coding"][0].update(
        code="68226007", display="Acute cystitis (disorder)"
    )
    conditions.append(cystitis)
    library = FakeLibrary({**DOCS, "htn": ("Hypertension protocol", HYPERTENSION)})
    request = hooks.parse_request("ehrqa-patient-view", body)
    context, _ = hooks.hook_context(request, None, NOW)
    assert len(context.conditions) == 3
    cards = hooks.cards(request, context, library, base_url="http://cds.test/")
    protocol = [c for c in cards if c["source"]["label"] == hooks.PROTOCOL_LABEL]
    # The dysuria pathway mentions acute cystitis and kidneys but is titled for neither.
    assert [c["summary"] for c in protocol] == [
        "Local protocol for Essential hypertension: Hypertension protocol > Treatment"
    ]
    assert protocol[0]["links"][0]["url"] == "http://cds.test/v1/docs/chunks/htn%231"
    assert protocol[0]["indicator"] == "info"
    assert "offer an ACE inhibitor" in protocol[0]["detail"]


def test_order_select_adds_the_local_guidance_for_the_drug():
    body = load("order_select.json")
    coding = body["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]
    coding["coding"][0]["display"] = "Nitrofurantoin 100 MG Oral Capsule"
    request = hooks.parse_request("ehrqa-order-select", body)
    context, _ = hooks.hook_context(request, None, NOW)
    cards = hooks.cards(request, context, FakeLibrary())
    assert any(c["summary"].startswith("Local guidance on nitrofurantoin") for c in cards)


def test_card_uuids_are_stable_for_the_same_request():
    request = hooks.parse_request("ehrqa-patient-view", load("patient_view.json"))
    context, _ = hooks.hook_context(request, None, NOW)
    first = [c["uuid"] for c in hooks.cards(request, context)]
    assert first == [c["uuid"] for c in hooks.cards(request, context)]
    assert len(set(first)) == len(first)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("short", "short"), ("word " * 40, ("word " * 27).strip() + "…"), ("x" * 200, None)],
)
def test_shorten_keeps_summaries_under_140(text: str, expected: str | None):
    short = hooks.shorten(text)
    assert len(short) < 140
    if expected is not None:
        assert short == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "JSON object"),
        ({}, "feedback"),
        ({"feedback": []}, "at least one"),
        ({"feedback": ["x"]}, r"feedback\[0\] must be a JSON object"),
        ({"feedback": [{"outcome": "accepted"}]}, "card is required"),
        ({"feedback": [{"card": "not-a-uuid", "outcome": "accepted"}]}, "uuid"),
        (
            {"feedback": [{"card": "0c8d4c38-0c5e-4bd2-a83c-7c1b1b0f3b9e", "outcome": "maybe"}]},
            "outcome must be one of",
        ),
        (
            {"feedback": [{"card": "0c8d4c38-0c5e-4bd2-a83c-7c1b1b0f3b9e", "outcome": "accepted"}]},
            "outcomeTimestamp is required",
        ),
        (
            {
                "feedback": [
                    {
                        "card": "0c8d4c38-0c5e-4bd2-a83c-7c1b1b0f3b9e",
                        "outcome": "accepted",
                        "outcomeTimestamp": "yesterday",
                    }
                ]
            },
            "not an ISO 8601",
        ),
        (
            {
                "feedback": [
                    {
                        "card": "0c8d4c38-0c5e-4bd2-a83c-7c1b1b0f3b9e",
                        "outcome": "accepted",
                        "outcomeTimestamp": "2025-01-01T10:00:00Z",
                        "overrideReason": {"userComment": "no"},
                    }
                ]
            },
            "only allowed with outcome 'overridden'",
        ),
    ],
)
def test_malformed_feedback_says_what_is_wrong(body: Any, message: str):
    with pytest.raises(CdsRequestError, match=message):
        hooks.parse_feedback(body)


def test_feedback_is_stored_durably(tmp_path: Path):
    item = {
        "card": "0c8d4c38-0c5e-4bd2-a83c-7c1b1b0f3b9e",
        "outcome": "overridden",
        "outcomeTimestamp": "2025-01-01T10:00:00Z",
        "overrideReason": {"reason": {"code": "already-aware"}, "userComment": "known"},
    }
    first = FeedbackStore.in_home(tmp_path)
    assert first.save("ehrqa-patient-view", hooks.parse_feedback({"feedback": [item]})) == 1
    first.close()
    stored = FeedbackStore.in_home(tmp_path).items(item["card"])
    assert stored == [{"service": "ehrqa-patient-view", **item}]


def test_a_feedback_file_of_the_old_code_is_migrated_in_place(tmp_path: Path):
    # The table as the code before the migration runner made it, at user_version 0.
    old = sqlite3.connect(tmp_path / hooks.FEEDBACK_FILE)
    old.execute(
        "CREATE TABLE IF NOT EXISTS feedback ("
        " id INTEGER PRIMARY KEY, service TEXT NOT NULL, card TEXT NOT NULL,"
        " outcome TEXT NOT NULL, outcome_timestamp TEXT NOT NULL,"
        " received TEXT NOT NULL, item TEXT NOT NULL)"
    )
    item = {"card": CARD, "outcome": "accepted", "outcomeTimestamp": "2025-01-01T10:00:00Z"}
    old.execute(
        "INSERT INTO feedback (service, card, outcome, outcome_timestamp, received, item)"
        " VALUES ('svc', ?, 'accepted', '2025-01-01T10:00:00Z', '2025-01-01T10:00:01Z', ?)",
        (CARD, json.dumps(item)),
    )
    old.commit()
    old.close()
    feedback = FeedbackStore.in_home(tmp_path)
    assert feedback.items(CARD) == [{"service": "svc", **item}]
    assert feedback.save("svc", [{**item, "outcome": "overridden"}]) == 1
    assert [i["outcome"] for i in feedback.items()] == ["accepted", "overridden"]
    feedback.close()
    migrated = sqlite3.connect(tmp_path / hooks.FEEDBACK_FILE)
    assert migrated.execute("PRAGMA user_version").fetchone()[0] == len(hooks.FEEDBACK_MIGRATIONS)
    migrated.close()


ASTHMA = """# Asthma protocol
## Acute exacerbation
- Acute bronchitis can trigger an asthma exacerbation; give salbutamol and prednisolone.
"""


@pytest.mark.parametrize(("query", "found"), [("Asthma", True), ("Acute bronchitis", False)])
def test_a_protocol_must_be_titled_for_the_condition(query: str, found: bool):
    library = FakeLibrary({"asthma": ("Asthma protocol", ASTHMA)})
    assert (hooks.best_protocol(library, query, [query]) is not None) is found
