"""The patient context: active problems apart from circumstances, newest results, no future."""

from __future__ import annotations

from typing import Any

import pytest

from cds_fakes import NOW, ckd_resources
from ehrqa.cds.context import context_from_records, context_from_store
from ehrqa.fhir.normalize import normalize
from ehrqa.store.sqlite import SqliteStore


def condition(cid: str, display: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"code": status}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": cid, "display": display}]},
        "onsetDateTime": "2015-01-01",
    }


@pytest.mark.parametrize(
    ("display", "status", "where"),
    [
        ("Essential hypertension (disorder)", "active", "conditions"),
        ("Past pregnancy history of miscarriage (situation)", "active", "social"),
        ("Full-time employment (finding)", "active", "social"),
        ("Medication review due (situation)", "active", "social"),
        ("Essential hypertension (disorder)", "resolved", None),
    ],
)
def test_conditions_are_problems_circumstances_or_gone(
    display: str, status: str, where: str | None
) -> None:
    context = context_from_records([normalize(condition("c1", display, status))], "p1", NOW)
    placed = [name for name in ("conditions", "social") if getattr(context, name)]
    assert placed == ([where] if where else [])


def test_newest_result_per_code_and_nothing_after_now() -> None:
    resources = ckd_resources()
    egfr = next(r for r in resources if r["id"] == "egfr")
    older = {**egfr, "id": "egfr-old", "effectiveDateTime": "2024-01-02"}
    future = {**egfr, "id": "egfr-future", "effectiveDateTime": "2025-06-01"}
    records = [normalize(r) for r in [*resources, older, future]]
    context = context_from_records(records, "p1", NOW)
    assert [r.id for r in context.labs] == ["egfr"]
    latest = context.latest("glomerular filtration")
    assert latest is not None and latest.id == "egfr"
    assert context.age == 60 and context.gender == "female"
    assert [r.id for r in context.allergies] == ["pen"]


def test_store_and_records_give_the_same_context(tmp_path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    records = [normalize(r) for r in ckd_resources()]
    store.upsert(records)
    from_store = context_from_store(store, "p1", NOW)
    from_records = context_from_records(records, "p1", NOW)
    for name in ("conditions", "social", "medications", "allergies", "labs", "vitals"):
        assert [r.ref for r in getattr(from_store, name)] == [
            r.ref for r in getattr(from_records, name)
        ], name
    store.close()
