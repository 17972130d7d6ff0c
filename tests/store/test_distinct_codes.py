"""RecordStore.distinct_codes: a patient's distinct codings with the records carrying each.

The ``store`` fixture runs each test against SQLite and PostgreSQL (tests/store/conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import PATIENT_ID, bundle, observation, patient, write_json
from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_PATIENT
from ehrqa.store import CodedConcept, RecordStore, SqliteStore

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def condition(cid: str, code: str, display: str, pid: str = PATIENT_ID) -> dict[str, Any]:
    """A Condition with one SNOMED coding."""
    return {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": "2020-01-01",
    }


def blood_pressure(oid: str) -> dict[str, Any]:
    """A blood-pressure panel with systolic and diastolic components."""
    panel = observation(oid, "2024-01-01", 0.0, code="55284-4", display="Blood Pressure")
    del panel["valueQuantity"]
    panel["component"] = [
        {
            "code": {"coding": [{"system": LOINC, "code": code, "display": name}]},
            "valueQuantity": {"value": value, "unit": "mm[Hg]"},
        }
        for code, name, value in (
            ("8480-6", "Systolic Blood Pressure", 120),
            ("8462-4", "Diastolic Blood Pressure", 80),
        )
    ]
    return panel


def test_concepts_are_distinct_per_patient_with_their_records(store: Any, tmp_path: Path) -> None:
    resources = [
        patient(),
        observation("a1", "2023-05-01", 7.9),
        observation("a2", "2024-11-02", 7.8),
        condition("c1", "16114001", "Fracture of ankle"),
        condition("c2", "16114001", "Fracture of ankle"),
        blood_pressure("bp1"),
        patient("p2", name=[{"given": ["Bob"], "family": "Other"}]),
        condition("x1", "44054006", "Diabetes", pid="p2"),
    ]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(*resources))])
    got = store.distinct_codes(PATIENT_ID)
    assert got == [
        CodedConcept(
            "Condition", SNOMED, "16114001", "Fracture of ankle", ("Condition/c1", "Condition/c2")
        ),
        CodedConcept("Observation", LOINC, "55284-4", "Blood Pressure", ("Observation/bp1",)),
        CodedConcept("Observation", "", "8462-4", "Diastolic Blood Pressure", ("Observation/bp1",)),
        CodedConcept(
            "Observation",
            LOINC,
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            ("Observation/a1", "Observation/a2"),
        ),
        CodedConcept("Observation", "", "8480-6", "Systolic Blood Pressure", ("Observation/bp1",)),
    ]
    assert [c.display for c in store.distinct_codes("p2")] == ["Diabetes"]
    assert store.distinct_codes("nobody") == []


def test_a_code_with_two_displays_gives_two_concepts(store: Any, tmp_path: Path) -> None:
    resources = [
        patient(),
        observation("a1", "2023-05-01", 7.9),
        observation("a2", "2024-11-02", 7.8, display="Hemoglobin A1c"),
    ]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(*resources))])
    got = [(c.display, c.refs) for c in store.distinct_codes(PATIENT_ID)]
    assert got == [
        ("Hemoglobin A1c", ("Observation/a2",)),
        ("Hemoglobin A1c/Hemoglobin.total in Blood", ("Observation/a1",)),
    ]


def expected_concepts(store: RecordStore, patient_id: str) -> list[CodedConcept]:
    """distinct_codes computed the slow way, from every record of the patient."""
    found: dict[tuple[str, str, str, str], set[str]] = {}
    for record in store.iter_records(patient_id):
        keys = [(c.system, c.code, c.display) for c in record.codes]
        if record.resource_type == "Observation":
            keys += [("", c.code, c.name) for c in record.components if c.code]
        for key in keys:
            found.setdefault((record.resource_type, *key), set()).add(record.ref)
    concepts = [CodedConcept(*key, tuple(sorted(refs))) for key, refs in found.items()]
    return sorted(concepts, key=lambda c: (c.resource_type, c.display, c.system, c.code))


def test_demo_patient_concepts_equal_the_records_codes(demo_store: SqliteStore) -> None:
    got = demo_store.distinct_codes(DEMO_PATIENT)
    assert len(got) > 150
    assert got == expected_concepts(demo_store, DEMO_PATIENT)


def test_postgres_concepts_equal_the_sqlite_stores(
    demo_store: SqliteStore, pg_demo_store: Any
) -> None:
    assert pg_demo_store.distinct_codes(DEMO_PATIENT) == demo_store.distinct_codes(DEMO_PATIENT)
