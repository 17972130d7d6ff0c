"""Every RecordStore backend: filters, lexical search, patients, upserts, transactions.

The ``store`` fixture runs each test against SQLite and PostgreSQL (tests/store/conftest.py).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import PATIENT_ID, bundle, observation, patient, write_json
from ehrqa.core.errors import NotFoundError
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.record import Record
from ehrqa.ingest.files import ingest_paths
from ehrqa.store import RecordQuery, RecordStore, UpsertStats


@pytest.fixture
def filled(store: Any, tmp_path: Path) -> Any:
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


def record(resource: dict[str, Any]) -> Record:
    """A normalised record with the search text ingestion would give it."""
    rec = normalize(resource)
    rec.search_text = ""
    return rec


def test_query_filters_by_type_code_window_and_order(filled: RecordStore) -> None:
    q = RecordQuery(PATIENT_ID, types=("Observation",), codes=("4548-4",))
    assert [r.id for r in filled.query(q)] == ["a2", "a1"]
    q = RecordQuery(
        PATIENT_ID, types=("Observation",), start="2024-01-01", end="2024-12-31", order="oldest"
    )
    assert [r.id for r in filled.query(q)] == ["g1", "a2"]
    q = RecordQuery(PATIENT_ID, categories=("laboratory",), limit=1)
    assert [r.id for r in filled.query(q)] == ["a2"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (RecordQuery(PATIENT_ID), ["a2", "g1", "a1", "p1"]),
        (RecordQuery(PATIENT_ID, order="oldest"), ["p1", "a1", "g1", "a2"]),
        (RecordQuery(PATIENT_ID, exclude_types=("Observation",)), ["p1"]),
        (RecordQuery(PATIENT_ID, statuses=("final",), limit=2), ["a2", "g1"]),
        (RecordQuery(PATIENT_ID, statuses=("amended",)), []),
        (RecordQuery(PATIENT_ID, categories=("LABORATORY",)), ["a2", "g1", "a1"]),
        (RecordQuery(PATIENT_ID, categories=("labor",)), []),
        (RecordQuery(PATIENT_ID, codes=("2339-0", "4548-4"), end="2024-06-01"), ["g1", "a1"]),
        (RecordQuery(PATIENT_ID, start="2024-11-02"), ["a2"]),
        (RecordQuery(PATIENT_ID, limit=0), []),
        (RecordQuery(PATIENT_ID, limit=-1), ["a2", "g1", "a1", "p1"]),
        (RecordQuery("nobody"), []),
    ],
)
def test_query_table(filled: RecordStore, query: RecordQuery, expected: list[str]) -> None:
    assert [r.id for r in filled.query(query)] == expected


def test_queries_never_cross_patients(filled: RecordStore) -> None:
    assert "x1" not in {r.id for r in filled.query(RecordQuery(PATIENT_ID))}
    assert [r.id for r, _ in filled.search("p2", ["hemoglobin"])] == ["x1"]


def test_search_ranks_by_bm25_and_filters_types(filled: RecordStore) -> None:
    hits = filled.search(PATIENT_ID, ["glucose"])
    assert [r.id for r, _ in hits] == ["g1"]
    assert filled.search(PATIENT_ID, ["glucose"], types=("Condition",)) == []
    assert filled.search(PATIENT_ID, ['weird "quote']) == []


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ([], []),
        (["  ", "??"], []),
        (["Hemoglobin A1c"], ["a2", "a1"]),  # a phrase, stemmed, case-folded
        (["a1c blood"], []),  # words apart are not the phrase
        (["glucose", "hemoglobin"], ["g1", "a1", "a2"]),
        (["blood"], ["g1", "a1", "a2"]),
        (["7.8"], ["a2"]),
    ],
)
def test_search_terms_are_phrases(
    filled: RecordStore, terms: list[str], expected: list[str]
) -> None:
    assert sorted(r.id for r, _ in filled.search(PATIENT_ID, terms)) == sorted(expected)


def test_search_scores_are_sorted_and_limited(filled: RecordStore) -> None:
    hits = filled.search(PATIENT_ID, ["glucose", "blood", "blood"])
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    assert hits[0][0].id == "g1"  # two matching phrases beat one
    assert len(filled.search(PATIENT_ID, ["blood"], limit=2)) == 2
    assert filled.search(PATIENT_ID, ["blood"], limit=0) == []
    assert len(filled.search(PATIENT_ID, ["blood"], limit=-1)) == 3


def test_patients_and_counts(filled: RecordStore) -> None:
    rows = filled.patients()
    assert [(p.id, p.name, p.resource_count) for p in rows] == [
        ("p1", "Ada Lovelace", 4),
        ("p2", "Bob Other", 2),
    ]
    assert [p.id for p in filled.patients("bob")] == ["p2"]
    assert [p.id for p in filled.patients("P")] == ["p1", "p2"]
    assert len(filled.patients("%_")) == 2  # LIKE wildcards work as in SQLite
    assert filled.patients("\\") == []
    assert filled.patient("Patient/p1").birth_date == "1970-05-01"
    assert filled.type_counts(PATIENT_ID) == {"Observation": 3, "Patient": 1}
    assert filled.type_counts("nobody") == {}


def test_missing_things_raise_not_found(filled: RecordStore) -> None:
    with pytest.raises(NotFoundError, match="ehrqa patients"):
        filled.patient("nobody")
    with pytest.raises(NotFoundError, match="Type/id"):
        filled.get("Observation/none")


def test_records_round_trip(filled: RecordStore) -> None:
    record = filled.get("Observation/a2")
    assert (record.value, record.unit, record.day, record.category) == (
        7.8,
        "%",
        "2024-11-02",
        ("laboratory",),
    )
    assert record.codes[0].code == "4548-4"
    assert record.resource == observation("a2", "2024-11-02", 7.8)
    many = filled.get_many(["Observation/a1", "Observation/none", "Observation/a2"])
    assert [r.id for r in many] == ["a1", "a2"]
    assert filled.get_many([]) == []
    assert [r.ref for r in filled.iter_records("p2")] == ["Observation/x1", "Patient/p2"]
    assert len(list(filled.iter_records())) == 6


def test_upsert_counts_inserts_updates_unchanged_and_stale(store: RecordStore) -> None:
    def versioned(value: float, updated: str) -> Record:
        meta = {"meta": {"versionId": updated[-1], "lastUpdated": updated}}
        return record(observation("o1", "2024-01-01", value, **meta))

    assert store.upsert([record(patient()), versioned(7.0, "2024-01-01T00:00:01Z")]) == (
        UpsertStats(inserted=2)
    )
    newer, older = versioned(6.5, "2024-01-01T00:00:03Z"), versioned(9.9, "2024-01-01T00:00:02Z")
    assert store.upsert([newer, older, newer]) == UpsertStats(updated=1, stale=1, unchanged=1)
    assert store.get("Observation/o1").value == 6.5
    assert [r.id for r, _ in store.search(PATIENT_ID, ["6.5"])] == ["o1"]
    assert store.search(PATIENT_ID, ["7.0"]) == []
    assert store.query(RecordQuery(PATIENT_ID, codes=("4548-4",)))[0].value == 6.5


def test_a_duplicate_in_one_batch_is_compared_with_the_first(store: RecordStore) -> None:
    first, second = record(observation("o1", "2024-01-01", 1.0)), None
    second = record(observation("o1", "2024-01-01", 2.0))
    assert store.upsert([first, second, second]) == UpsertStats(inserted=1, updated=1, unchanged=1)
    assert [r.value for r in store.iter_records()] == [2.0]
    assert len(store.query(RecordQuery(PATIENT_ID, codes=("4548-4",)))) == 1


def test_a_transaction_commits_all_or_nothing(store: RecordStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert([record(patient())])
        with store.transaction():  # nested: joins the outer one
            store.upsert([record(observation("o1", "2024-01-01", 1.0))])
        assert len(list(store.iter_records())) == 2  # visible inside
        raise RuntimeError("stop")
    assert list(store.iter_records()) == [] and store.patients() == []
    with store.transaction():
        store.upsert([record(patient())])
        store.upsert([record(observation("o1", "2024-01-01", 1.0))])
    assert store.patient(PATIENT_ID).resource_count == 2


def test_a_failing_file_leaves_nothing_of_itself(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write_json(tmp_path / "a.json", bundle(patient(), observation("o1", "2024-01-01", 1.0)))
    ingest_paths(store, [good])
    original = store._insert

    def insert_then_fail(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_insert", insert_then_fail)
    bad = write_json(
        tmp_path / "b.json", bundle(patient("p2"), observation("o2", "2024-01-02", 2.0))
    )
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_paths(store, [bad])
    assert [r.ref for r in store.iter_records()] == ["Observation/o1", "Patient/p1"]
    assert [p.id for p in store.patients()] == ["p1"]


def test_two_threads_ingest_different_patients_at_once(store: RecordStore, tmp_path: Path) -> None:
    files = []
    for n in range(2):
        pid = f"t{n}"
        obs = [observation(f"{pid}-o{i}", "2024-01-01", float(i), pid=pid) for i in range(150)]
        files.append(write_json(tmp_path / f"{pid}.json", bundle(patient(pid), *obs)))
    errors: list[BaseException] = []

    def ingest(path: Path) -> None:
        try:
            ingest_paths(store, [path])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert [(p.id, p.resource_count) for p in store.patients()] == [("t0", 151), ("t1", 151)]
    assert len(store.search("t1", ["hemoglobin"], limit=500)) == 150
