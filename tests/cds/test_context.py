"""The patient context: active problems apart from circumstances, newest results, no future."""

from __future__ import annotations

from typing import Any

import pytest

from cds_fakes import NOW, ckd_resources
from ehrqa.fhir.normalize import normalize
from ehrqa.meds.context import context_from_records, context_from_store, results_named
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


def lab(oid: str, loinc: str, display: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}]},
        "effectiveDateTime": "2024-10-01",
        "valueQuantity": {"value": value, "unit": unit},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Check kidney function and potassium.", ["egfr", "creat", "k"]),
        ("Creatinine only", ["creat"]),  # not the albumin/creatinine ratio
        ("Urine ACR yearly", ["acr"]),
        ("HbA1c every 3-6 months; eGFR yearly", ["egfr"]),  # no HbA1c on record
        ("Urine culture", []),
    ],
)
def test_results_named_finds_the_newest_result_each_name_means(
    text: str, expected: list[str]
) -> None:
    labs = [
        lab("egfr", "33914-3", "Glomerular filtration rate/1.73 sq M.predicted", 38, "mL/min"),
        lab("creat", "38483-4", "Creatinine [Mass/volume] in Blood", 1.6, "mg/dL"),
        lab("k", "6298-4", "Potassium [Moles/volume] in Blood", 5.1, "mmol/L"),
        lab("acr", "14959-1", "Microalbumin/Creatinine [Mass Ratio] in Urine", 40, "mg/g"),
    ]
    context = context_from_records([normalize(r) for r in labs], "p1", NOW)
    assert [r.id for r in results_named(context, text)] == expected
