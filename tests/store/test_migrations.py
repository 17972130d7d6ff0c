"""The one migration runner, against SQLite and PostgreSQL connections alike.

Each case runs on a SQLite file and on a fresh PostgreSQL schema (skipped, saying so, when
no server answers: see tests/store/conftest.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from ehrqa.core.errors import StoreError
from ehrqa.store.migrations import (
    Migratable,
    Migration,
    PostgresSchema,
    SqliteDatabase,
    check_sequence,
    migrate,
    split_sqlite_script,
)

STEPS: tuple[Migration[Any], ...] = (
    Migration(1, "table a", "CREATE TABLE a (x INTEGER NOT NULL); INSERT INTO a VALUES (1)"),
    Migration(2, "table b", "CREATE TABLE b (y TEXT)"),
)
# Creates table c, then fails: c must not be left behind.
BROKEN = Migration[Any](
    3, "table c, then a typo", "CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1)"
)


def tables(database: Migratable[Any]) -> set[str]:
    """The tables of the database, without the runner's own."""
    conn: Any = database.connection
    if isinstance(database, SqliteDatabase):
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {row[0] for row in rows}
    assert isinstance(database, PostgresSchema)
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        [database.schema],
    ).fetchall()
    return {row[0] for row in rows} - {"schema_version"}


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[SqliteDatabase | PostgresSchema]:
    """An empty database of each engine, as the stores connect to them."""
    if request.param == "sqlite":
        path = tmp_path / "m.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        yield SqliteDatabase(conn, f"the test database at {path}")
        conn.close()
        return
    import psycopg

    url = request.getfixturevalue("postgres_server")
    schema = request.getfixturevalue("pg_schemas")()
    with psycopg.connect(url, autocommit=True) as pg_conn:
        pg_conn.execute("SELECT set_config('search_path', %s, false)", [schema])
        yield PostgresSchema(pg_conn, f"the test schema {schema}", schema)


def test_a_new_database_gets_every_step_in_order(database: Migratable[Any]) -> None:
    assert migrate(database, STEPS) == 2
    assert database.read_version() == 2
    assert tables(database) == {"a", "b"}
    assert migrate(database, STEPS) == 2  # a second open applies nothing
    assert database.connection.execute("SELECT count(*) FROM a").fetchone()[0] == 1


def test_an_older_database_is_migrated_in_place_with_its_data(database: Migratable[Any]) -> None:
    migrate(database, STEPS[:1])
    database.connection.execute("INSERT INTO a VALUES (42)")
    assert migrate(database, STEPS) == 2
    assert sorted(r[0] for r in database.connection.execute("SELECT x FROM a")) == [1, 42]
    assert tables(database) == {"a", "b"}


def test_a_failed_step_is_rolled_back_whole_and_named(database: Migratable[Any]) -> None:
    migrate(database, STEPS)
    with pytest.raises(StoreError) as caught:
        migrate(database, (*STEPS, BROKEN))
    message = str(caught.value)
    assert database.where in message
    assert "schema version 3 (table c, then a typo)" in message
    assert "nowhere" in message and "stays at version 2" in message
    assert database.read_version() == 2
    assert tables(database) == {"a", "b"}  # no c: nothing of step 3 remains


def test_a_failure_in_an_early_step_keeps_the_steps_before(database: Migratable[Any]) -> None:
    broken_second = Migration[Any](2, "typo", "CREATE TABLE b (y TEXT); SELEC 1")
    with pytest.raises(StoreError, match="to schema version 2"):
        migrate(database, (STEPS[0], broken_second))
    assert database.read_version() == 1
    assert tables(database) == {"a"}


def test_a_database_newer_than_the_code_is_refused_naming_both_versions(
    database: Migratable[Any],
) -> None:
    migrate(database, STEPS)
    with database.transaction():
        database.write_version(7)
    with pytest.raises(StoreError) as caught:
        migrate(database, STEPS)
    assert str(caught.value) == (
        f"{database.where} has schema version 7, newer than this ehrqa (2): upgrade ehrqa"
    )
    assert tables(database) == {"a", "b"}


def test_a_callable_step_gets_the_connection(database: Migratable[Any]) -> None:
    seen: list[Any] = []

    def add_column(conn: Any) -> None:
        seen.append(conn)
        conn.execute("ALTER TABLE a ADD COLUMN note TEXT")

    migrate(database, (STEPS[0], Migration[Any](2, "a note", add_column)))
    assert seen == [database.connection]
    database.connection.execute("INSERT INTO a (x, note) VALUES (2, 'kept')")


def test_a_callable_that_raises_is_rolled_back(database: Migratable[Any]) -> None:
    def half_then_fail(conn: Any) -> None:
        conn.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("the data did not convert")

    with pytest.raises(StoreError, match="the data did not convert") as caught:
        migrate(database, (STEPS[0], Migration[Any](2, "convert", half_then_fail)))
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert tables(database) == {"a"} and database.read_version() == 1


class SeenBefore:
    """The database as a second process read it before the first one migrated it."""

    def __init__(self, inner: Migratable[Any]) -> None:
        self.inner = inner
        self.where = inner.where
        self.connection = inner.connection

    def read_version(self) -> int:
        return 0

    def transaction(self) -> AbstractContextManager[int]:
        return self.inner.transaction()

    def run_script(self, script: str) -> None:
        self.inner.run_script(script)

    def write_version(self, version: int) -> None:
        self.inner.write_version(version)


def test_a_step_another_process_applied_meanwhile_is_skipped(database: Migratable[Any]) -> None:
    migrate(database, STEPS)
    assert migrate(SeenBefore(database), STEPS) == 2  # no "table a already exists"
    assert database.read_version() == 2


@pytest.mark.parametrize(
    "versions", [[2], [1, 3], [2, 1], [1, 1]], ids=["from-2", "gap", "unordered", "twice"]
)
def test_migrations_must_be_numbered_one_two_in_order(versions: list[int]) -> None:
    steps = [Migration[Any](v, "x", "SELECT 1") for v in versions]
    with pytest.raises(ValueError, match="numbered 1, 2"):
        check_sequence(steps)


def test_sqlite_scripts_split_where_sqlite_ends_a_statement() -> None:
    script = """
        CREATE TABLE t (x TEXT DEFAULT 'a;b');
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c;d'; END;
        ;
    """
    assert split_sqlite_script(script) == [
        "CREATE TABLE t (x TEXT DEFAULT 'a;b');",
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c;d'; END;",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        split_sqlite_script("CREATE TABLE t (x TEXT DEFAULT 'unclosed;")


def test_sqlite_works_in_either_transaction_mode(tmp_path: Path) -> None:
    # The feedback store keeps sqlite3's default (implicit transactions) mode.
    conn = sqlite3.connect(tmp_path / "legacy.sqlite3")
    database = SqliteDatabase(conn, "legacy")
    assert migrate(database, STEPS) == 2
    assert not conn.in_transaction
    conn.close()
    reopened = sqlite3.connect(tmp_path / "legacy.sqlite3")
    assert reopened.execute("PRAGMA user_version").fetchone()[0] == 2
    reopened.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_processes_opening_one_new_database_together_all_succeed(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if engine == "postgres":
        import psycopg

        url = request.getfixturevalue("postgres_server")
        schema = request.getfixturevalue("pg_schemas")()

        def connect() -> Migratable[Any]:
            conn = psycopg.connect(url, autocommit=True)
            conn.execute("SELECT set_config('search_path', %s, false)", [schema])
            return PostgresSchema(conn, schema, schema)
    else:

        def connect() -> Migratable[Any]:
            path = tmp_path / "shared.sqlite3"
            conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
            return SqliteDatabase(conn, "shared")

    def slow_b(conn: Any) -> None:
        time.sleep(0.2)  # long enough for the others to be waiting on the lock
        conn.execute("CREATE TABLE b (y TEXT)")

    steps = (STEPS[0], Migration[Any](2, "slow b", slow_b))
    errors: list[BaseException] = []
    openers = [connect() for _ in range(4)]

    def open_one(database: Migratable[Any]) -> None:
        try:
            migrate(database, steps)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(db,)) for db in openers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert openers[0].read_version() == 2 and tables(openers[0]) == {"a", "b"}
    assert openers[0].connection.execute("SELECT count(*) FROM a").fetchone()[0] == 1
    for database in openers:
        database.connection.close()
