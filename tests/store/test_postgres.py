"""What only the PostgreSQL store does, and that it answers exactly as the SQLite store."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import PATIENT_ID, observation, patient
from ehrqa.core.errors import BackendUnavailableError, StoreError
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.record import Record
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT, DEMO_QUESTIONS
from ehrqa.select import get_selector
from ehrqa.store import RecordQuery, SqliteStore, is_postgres_url, open_store
from ehrqa.store import postgres as pg
from ehrqa.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS


def record(resource: dict[str, Any]) -> Record:
    rec = normalize(resource)
    rec.search_text = ""
    return rec


# -- pure parts: no server needed ----------------------------------------------------
def test_the_tokenizer_is_the_sqlite_stores() -> None:
    assert f"tokenize = '{pg.FTS_TOKENIZE}'" in SQLITE_MIGRATIONS[0].apply
    assert pg.tokenize(["Hémoglobin A1c/Hemoglobin.total running", "", "7.8 mg/dL"]) == [
        ["hemoglobin", "a1c", "hemoglobin", "total", "run"],
        [],
        ["7", "8", "mg", "dl"],
    ]


@pytest.mark.parametrize(
    ("lexemes", "expected"),
    [
        ([], ""),
        (["a", "b", "a"], "'a':1,3 'b':2"),
        (["it's", "back\\slash"], "'it''s':1 'back\\\\slash':2"),
        (["x" * 3000, "y"], "'y':2"),  # too long for PostgreSQL: left out, positions kept
    ],
)
def test_tsvector_literals(lexemes: list[str], expected: str) -> None:
    assert pg.to_tsvector_text(lexemes) == expected


@pytest.mark.parametrize(
    ("phrase", "positions", "count"),
    [
        (["a"], {"a": [1, 5]}, 2),
        (["a", "b"], {"a": [1, 5], "b": [2, 9]}, 1),
        (["a", "a"], {"a": [1, 2, 3]}, 2),  # overlapping occurrences count, as in FTS5
        (["a", "b"], {"a": [1]}, 0),
        ([], {"a": [1]}, 0),
    ],
)
def test_phrase_count(phrase: list[str], positions: dict[str, list[int]], count: int) -> None:
    assert pg.phrase_count(phrase, positions) == count


def test_bm25_is_fts5s_bm25() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(patient, body, tokenize = '{pg.FTS_TOKENIZE}')")
    rows = [("p", "glucose glucose in blood"), ("p", "blood"), ("q", "other words here")]
    db.executemany("INSERT INTO t (patient, body) VALUES (?, ?)", rows)
    match = 'body : ("glucose" OR "in blood")'
    (expected,) = db.execute("SELECT -bm25(t, 0.0, 1.0) FROM t WHERE t MATCH ?", [match]).fetchone()
    avgdl = sum(len(pg.tokenize([p, b])[0]) + len(pg.tokenize([b])[0]) for p, b in rows) / 3
    idfs = [pg.idf(3, 1), pg.idf(3, 1)]
    assert pg.bm25([2.0, 1.0], idfs, 5, avgdl) == expected


@pytest.mark.parametrize(
    ("location", "postgres"),
    [
        ("postgresql://u@h/db", True),
        ("postgres://u@h/db", True),
        (" POSTGRESQL://u@h/db", True),
        ("/var/lib/ehrqa", False),
        (Path("postgresql:"), False),
        ("postgresql.d", False),
    ],
)
def test_store_locations(location: str | Path, postgres: bool) -> None:
    assert is_postgres_url(location) is postgres


def test_a_directory_opens_the_sqlite_store(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "ehrqa.sqlite3"
    store.close()


@pytest.mark.parametrize("name", ["records.sqlite3", "records.DB", "old-store"])
def test_a_sqlite_file_path_opens_that_file(tmp_path: Path, name: str) -> None:
    if name == "old-store":  # an existing file opens as SQLite whatever its name
        SqliteStore(tmp_path / name).close()
    store = open_store(str(tmp_path / name))
    assert isinstance(store, SqliteStore) and store.path == tmp_path / name
    store.close()
    assert (tmp_path / name).is_file()


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'ehrqa\[postgres\]'"):
        open_store("postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://postgres@127.0.0.1:1/postgres",
            "cannot connect to PostgreSQL at postgres@127.0.0.1:1/postgres",
        ),
        ("postgresql://u:secret@127.0.0.1:1/db", "start the server"),
        ("postgresql://127.0.0.1:5432/db?nonsense=1", "fix the store URL"),
    ],
)
def test_unreachable_servers_are_store_errors(url: str, message: str) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match=message) as caught:
        pg.PostgresStore(url, connect_timeout=2)
    assert "secret" not in str(caught.value)


# -- against a server ----------------------------------------------------------------
def test_schema_is_migrated_and_newer_schemas_are_refused(
    postgres_server: str, pg_schemas: Callable[[], str]
) -> None:
    import psycopg

    schema = pg_schemas()
    pg.PostgresStore(postgres_server, schema=schema).close()
    store = pg.PostgresStore(postgres_server, schema=schema)
    assert store.schema_version == len(pg.MIGRATIONS)
    store.close()
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".schema_version SET version = version + 1')
    with pytest.raises(StoreError, match="upgrade ehrqa"):
        pg.PostgresStore(postgres_server, schema=schema)


def test_the_schema_can_come_from_the_url(
    postgres_server: str, pg_schemas: Callable[[], str]
) -> None:
    schema = pg_schemas()
    sep = "&" if "?" in postgres_server else "?"
    store = open_store(f"{postgres_server}{sep}options=-csearch_path%3D{schema}")
    assert isinstance(store, pg.PostgresStore) and store.schema == schema
    store.upsert([record(patient())])
    store.close()
    other = pg.PostgresStore(postgres_server, schema=pg_schemas())
    assert other.patients() == []  # schemas keep stores apart
    other.close()
    again = pg.PostgresStore(postgres_server, schema=schema)
    assert [p.id for p in again.patients()] == [PATIENT_ID]
    again.close()


def test_a_reader_is_not_blocked_by_a_writer_and_sees_only_commits(
    postgres_server: str, pg_schemas: Callable[[], str]
) -> None:
    store = pg.PostgresStore(postgres_server, schema=pg_schemas())
    store.upsert([record(patient())])
    written, release = threading.Event(), threading.Event()

    def write() -> None:
        with store.transaction():
            store.upsert([record(observation("o1", "2024-01-01", 1.0))])
            written.set()
            release.wait(timeout=30)

    writer = threading.Thread(target=write)
    writer.start()
    assert written.wait(timeout=30)
    started = time.perf_counter()
    during = store.patient(PATIENT_ID).resource_count
    assert time.perf_counter() - started < 5 and during == 1
    release.set()
    writer.join(timeout=30)
    assert store.patient(PATIENT_ID).resource_count == 2
    store.close()


def test_concurrent_writers_of_the_same_record_queue_up(
    postgres_server: str, pg_schemas: Callable[[], str]
) -> None:
    store = pg.PostgresStore(postgres_server, schema=pg_schemas())
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def write(value: float) -> None:
        barrier.wait(timeout=30)
        try:
            results.append(store.upsert([record(observation("o1", "2024-01-01", value))]))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=write, args=(float(v),)) for v in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.inserted for r in results) == 1 and sum(r.updated for r in results) == 3
    assert store.count() == 1
    store.close()


def test_search_scores_equal_the_sqlite_stores(demo_store: SqliteStore, pg_demo_store: Any) -> None:
    term_sets = [
        ["glucose"],
        ["blood pressure", "glucose", "glucose"],
        ["hemoglobin", "a1c", "HbA1c"],
        ["diabetes mellitus type 2"],
        ["vaccine", "influenza", "2024"],
    ]
    for terms in term_sets:
        for types in ((), ("Observation",), ("Condition", "Procedure")):
            want = demo_store.search(DEMO_PATIENT, terms, types=types)
            got = pg_demo_store.search(DEMO_PATIENT, terms, types=types)
            # The same records, the same best five in order, scores within 1 %: FTS5's
            # statistics also count the records of no patient (Organization, Practitioner),
            # the PostgreSQL store's are the patient's own (so they stay flat at 1,000
            # patients). Stop words ("the", "of"), which selectors never search, are left
            # out: hundreds of near-ties there reorder at the limit.
            assert {r.ref for r, _ in got} == {r.ref for r, _ in want}, (terms, types)
            assert [r.ref for r, _ in got[:5]] == [r.ref for r, _ in want[:5]], (terms, types)
            by_ref = {r.ref: score for r, score in want}
            assert [s for _, s in got] == pytest.approx([by_ref[r.ref] for r, _ in got], rel=1e-2)


QUESTIONS = (
    *DEMO_QUESTIONS,
    "What was my last blood pressure?",
    "Have I ever had a chest x-ray?",
    "What did the doctor write about my diabetes?",
    "What was my glucose in 2021?",
)


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("selector", ["default", "bm25"])
def test_selectors_choose_the_same_records(
    demo_store: SqliteStore, pg_demo_store: Any, selector: str, question: str
) -> None:
    chooser = get_selector(selector)
    want = chooser.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    got = chooser.select(pg_demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert [i.record.ref for i in got.items] == [i.record.ref for i in want.items]
    assert [i.score for i in got.items] == pytest.approx([i.score for i in want.items], rel=1e-2)
    assert got.candidates == want.candidates


def test_the_questions_above_are_not_all_abstentions(demo_store: SqliteStore) -> None:
    chosen = [get_selector().select(demo_store, DEMO_PATIENT, q, DEMO_NOW).items for q in QUESTIONS]
    assert sum(bool(items) for items in chosen) >= 5


def test_demo_queries_are_equal(demo_store: SqliteStore, pg_demo_store: Any) -> None:
    for query in (
        RecordQuery(DEMO_PATIENT, types=("Observation",), codes=("4548-4",)),
        RecordQuery(DEMO_PATIENT, categories=("vital-signs",), start="2020-01-01", limit=50),
        RecordQuery(DEMO_PATIENT, exclude_types=("Claim", "ExplanationOfBenefit"), order="oldest"),
    ):
        assert pg_demo_store.query(query) == demo_store.query(query)
    assert pg_demo_store.type_counts(DEMO_PATIENT) == demo_store.type_counts(DEMO_PATIENT)
    assert pg_demo_store.patients() == demo_store.patients()


def test_a_bulk_upsert_fits_the_servers_lock_table(pg_schemas: Any, postgres_server: str) -> None:
    """60,000 references in one transaction: more than the default lock table holds
    (max_locks_per_transaction 64 x 100 connections), which one lock per reference broke."""
    store = pg.PostgresStore(postgres_server, schema=pg_schemas())
    try:
        records = [
            Record(
                f"Observation/bulk-{i}", "Observation", f"bulk-{i}", "p1", f"[Observation/bulk-{i}]"
            )
            for i in range(60_000)
        ]
        assert store.upsert(records).inserted == 60_000
        assert store.count() == 60_000
    finally:
        store.close()
