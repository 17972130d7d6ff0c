"""The SQLite store: filters, lexical search, patients, migrations, errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import PATIENT_ID, bundle, observation, patient, write_json
from ehrqa.errors import NotFoundError, StoreError
from ehrqa.ingest import ingest_paths
from ehrqa.store import RecordQuery, SqliteStore
from ehrqa.store.sqlite import MIGRATIONS


@pytest.fixture
def filled(store: SqliteStore, tmp_path: Path) -> SqliteStore:
    resources = [
        patient(),
        observation("a1", "2023-05-01", 7.9),
        observation("a2", "2024-11-02", 7.8),
        observation(
            "g1",
            "2024-06-01",
            101.0,
            code="2339-0",
            display="Glucose [Mass/volume] in Blood",
            unit="mg/dL",
        ),
        patient("p2", name=[{"given": ["Bob"], "family": "Other"}]),
        observation("x1", "2024-11-03", 5.0, pid="p2"),
    ]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(*resources))])
    return store


def test_query_filters_by_type_code_window_and_order(filled: SqliteStore) -> None:
    q = RecordQuery(PATIENT_ID, types=("Observation",), codes=("4548-4",))
    assert [r.id for r in filled.query(q)] == ["a2", "a1"]
    q = RecordQuery(
        PATIENT_ID, types=("Observation",), start="2024-01-01", end="2024-12-31", order="oldest"
    )
    assert [r.id for r in filled.query(q)] == ["g1", "a2"]
    q = RecordQuery(PATIENT_ID, categories=("laboratory",), limit=1)
    assert [r.id for r in filled.query(q)] == ["a2"]


def test_queries_never_cross_patients(filled: SqliteStore) -> None:
    assert "x1" not in {r.id for r in filled.query(RecordQuery(PATIENT_ID))}
    assert [r.id for r, _ in filled.search("p2", ["hemoglobin"])] == ["x1"]


def test_search_ranks_by_bm25_and_filters_types(filled: SqliteStore) -> None:
    hits = filled.search(PATIENT_ID, ["glucose"])
    assert [r.id for r, _ in hits] == ["g1"]
    assert filled.search(PATIENT_ID, ["glucose"], types=("Condition",)) == []
    assert filled.search(PATIENT_ID, ['weird "quote']) == []


def test_patients_and_counts(filled: SqliteStore) -> None:
    rows = filled.patients()
    assert [(p.id, p.name, p.resource_count) for p in rows] == [
        ("p1", "Ada Lovelace", 4),
        ("p2", "Bob Other", 2),
    ]
    assert [p.id for p in filled.patients("bob")] == ["p2"]
    assert filled.patient("Patient/p1").birth_date == "1970-05-01"
    assert filled.type_counts(PATIENT_ID) == {"Observation": 3, "Patient": 1}


def test_missing_things_raise_not_found(filled: SqliteStore) -> None:
    with pytest.raises(NotFoundError, match="ehrqa patients"):
        filled.patient("nobody")
    with pytest.raises(NotFoundError, match="Type/id"):
        filled.get("Observation/none")


def test_records_round_trip(filled: SqliteStore) -> None:
    record = filled.get("Observation/a2")
    assert (record.value, record.unit, record.day, record.category) == (
        7.8,
        "%",
        "2024-11-02",
        ("laboratory",),
    )
    assert record.codes[0].code == "4548-4"
    assert filled.get_many(["Observation/a1", "Observation/none", "Observation/a2"])[1].id == "a2"


def test_schema_is_migrated_and_newer_schemas_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SqliteStore(path).close()
    assert SqliteStore(path).schema_version == len(MIGRATIONS)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="upgrade ehrqa"):
        SqliteStore(path)
