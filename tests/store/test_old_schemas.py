"""Record stores written by the code before the shared migration runner open with their data.

The DDL below is copied from the stores as they were (commit 1ece7d3, schema version 1):
SQLite kept its version in ``PRAGMA user_version``, PostgreSQL in a ``schema_version``
table. The rows are written as that code wrote them. Do not edit either to follow later
schemas: they stand for databases that exist.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from conftest import observation, patient
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.render import RENDER_VERSION
from ehrqa.store import PatientSummary, RecordQuery, SqliteStore, UpsertStats
from ehrqa.store import postgres as pg
from ehrqa.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from ehrqa.store.sqlite import content_hash

OLD_SQLITE_DDL = """
    CREATE TABLE resources (
        rowid INTEGER PRIMARY KEY,
        ref TEXT NOT NULL UNIQUE,
        resource_type TEXT NOT NULL,
        patient_id TEXT,
        date TEXT,
        day TEXT,
        end_date TEXT,
        status TEXT,
        categories TEXT NOT NULL DEFAULT '',
        version TEXT,
        last_updated TEXT,
        content_hash TEXT NOT NULL,
        text TEXT NOT NULL,
        record BLOB NOT NULL,
        resource BLOB NOT NULL
    );
    CREATE INDEX ix_resources_patient ON resources(patient_id, resource_type, day);
    CREATE TABLE codes (
        res INTEGER NOT NULL REFERENCES resources(rowid) ON DELETE CASCADE,
        system TEXT NOT NULL,
        code TEXT NOT NULL
    );
    CREATE INDEX ix_codes_code ON codes(code);
    CREATE INDEX ix_codes_res ON codes(res);
    CREATE TABLE patients (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        birth_date TEXT,
        gender TEXT
    );
    CREATE VIRTUAL TABLE fts USING fts5(
        patient, body, tokenize = 'porter unicode61 remove_diacritics 2'
    );
"""

OLD_POSTGRES_DDL = """
    CREATE TABLE resources (
        id BIGSERIAL PRIMARY KEY,
        doc_len INTEGER NOT NULL,
        ref TEXT COLLATE "C" NOT NULL UNIQUE,
        resource_type TEXT COLLATE "C" NOT NULL,
        patient_id TEXT COLLATE "C",
        date TEXT COLLATE "C",
        day TEXT COLLATE "C",
        end_date TEXT COLLATE "C",
        status TEXT COLLATE "C",
        categories TEXT COLLATE "C" NOT NULL DEFAULT '',
        version TEXT,
        last_updated TEXT COLLATE "C",
        content_hash TEXT NOT NULL,
        text TEXT NOT NULL,
        record BYTEA NOT NULL,
        resource BYTEA NOT NULL,
        tsv TSVECTOR NOT NULL
    );
    CREATE INDEX ix_resources_patient ON resources(patient_id, resource_type, day);
    CREATE INDEX ix_resources_tsv ON resources USING GIN (tsv);
    CREATE TABLE codes (
        res BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
        system TEXT COLLATE "C" NOT NULL,
        code TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX ix_codes_code ON codes(code);
    CREATE INDEX ix_codes_res ON codes(res);
    CREATE TABLE patients (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL,
        birth_date TEXT,
        gender TEXT
    );
    CREATE TABLE schema_version (version INTEGER NOT NULL);
    INSERT INTO schema_version (version) VALUES (1);
"""

PATIENT = patient()
HBA1C = observation("a1", "2024-11-02", 7.8)
LOINC = "http://loinc.org"
A1C_NAME = "Hemoglobin A1c/Hemoglobin.total in Blood"
# (id, ref, type, date, status, categories, text, record fields, resource), as stored.
OLD_ROWS: list[tuple[int, str, str, str, str | None, str, str, dict[str, Any], dict[str, Any]]] = [
    (
        1,
        "Patient/p1",
        "Patient",
        "1970-05-01",
        None,
        "",
        "[Patient/p1] 1970-05-01 Ada Lovelace; female; born 1970-05-01",
        {"codes": [], "category": [], "value": None, "value_text": None, "unit": None},
        PATIENT,
    ),
    (
        2,
        "Observation/a1",
        "Observation",
        "2024-11-02",
        "final",
        "laboratory",
        f"[Observation/a1] 2024-11-02 {A1C_NAME} (LOINC 4548-4) = 7.8 %",
        {
            "codes": [[LOINC, "4548-4", A1C_NAME]],
            "category": ["laboratory"],
            "value": 7.8,
            "value_text": None,
            "unit": "%",
        },
        HBA1C,
    ),
]
OLD_CODES = [(2, LOINC, "4548-4")]
OLD_PATIENT = ("p1", "Ada Lovelace", "1970-05-01", "female")


def resource_values(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The resources columns from ``ref`` on, as the old ``_insert`` wrote them."""
    _, ref, rtype, day, status, categories, text, fields, resource = row
    record = orjson.dumps({**fields, "components": []})
    hashed = content_hash(resource)
    return (
        ref,
        rtype,
        "p1",
        day,
        day,
        None,
        status,
        categories,
        None,
        None,
        hashed,
        text,
        record,
        orjson.dumps(resource),
    )


def check_data_intact(store: Any) -> None:
    """Everything the old rows held reads back, and the store takes new writes."""
    migrations = pg.MIGRATIONS if isinstance(store, pg.PostgresStore) else SQLITE_MIGRATIONS
    assert store.schema_version == len(migrations)
    assert store.render_version == RENDER_VERSION
    assert store.patients() == [PatientSummary(*OLD_PATIENT, 2)]
    assert store.get("Observation/a1") == store.get_many(["Observation/a1"])[0]
    read = store.get("Observation/a1")
    expected = normalize(HBA1C)
    for name in ("ref", "patient_id", "date", "codes", "category", "value", "unit", "resource"):
        assert getattr(read, name) == getattr(expected, name), name
    coded = store.query(RecordQuery(patient_id="p1", codes=("4548-4",)))
    assert [r.ref for r in coded] == ["Observation/a1"]
    assert [r.ref for r, _ in store.search("p1", ["hemoglobin"])] == ["Observation/a1"]
    again = normalize(HBA1C)
    again.search_text = ""
    newer = normalize(observation("a2", "2025-01-05", 7.1))
    assert store.upsert([again, newer]) == UpsertStats(inserted=1, unchanged=1)
    assert store.count() == 3


def test_a_sqlite_store_of_the_old_code_opens_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SQLITE_DDL)
    for row in OLD_ROWS:
        db.execute(
            "INSERT INTO resources (rowid, ref, resource_type, patient_id, date, day, end_date,"
            " status, categories, version, last_updated, content_hash, text, record, resource)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row[0], *resource_values(row)),
        )
        db.execute("INSERT INTO fts (rowid, patient, body) VALUES (?, 'p1', ?)", (row[0], row[6]))
    db.executemany("INSERT INTO codes VALUES (?, ?, ?)", OLD_CODES)
    db.execute("INSERT INTO patients VALUES (?, ?, ?, ?)", OLD_PATIENT)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        check_data_intact(store)
    finally:
        store.close()


def test_a_postgres_store_of_the_old_code_opens_in_place(
    postgres_server: str, pg_schemas: Callable[[], str]
) -> None:
    import psycopg
    from psycopg import sql

    schema = pg_schemas()
    with psycopg.connect(postgres_server, autocommit=True) as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute("SELECT set_config('search_path', %s, true)", [schema])
        conn.execute(OLD_POSTGRES_DDL)
        for row in OLD_ROWS:
            body, who = pg.tokenize([row[6], "p1"])
            conn.execute(
                "INSERT INTO resources (id, doc_len, ref, resource_type, patient_id, date, day,"
                " end_date, status, categories, version, last_updated, content_hash, text,"
                " record, resource, tsv) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, %s, %s, %s, %s, %s::tsvector)",
                (row[0], len(body) + len(who), *resource_values(row), pg.to_tsvector_text(body)),
            )
        conn.execute("SELECT setval(pg_get_serial_sequence('resources', 'id'), 2)")
        for code in OLD_CODES:
            conn.execute("INSERT INTO codes VALUES (%s, %s, %s)", code)
        conn.execute("INSERT INTO patients VALUES (%s, %s, %s, %s)", OLD_PATIENT)
    store = pg.PostgresStore(postgres_server, schema=schema)
    try:
        check_data_intact(store)
    finally:
        store.close()
