"""One schema-migration runner for every ehrqa database, SQLite or PostgreSQL.

A database's schema is declared as data: an ordered tuple of :class:`Migration` s, each
moving the schema one version forward with a SQL script or a callable. :func:`migrate`
reads the stored version once, refuses a database newer than the code, and applies each
pending migration in its own transaction together with the bump of the stored version,
so a failure leaves the database at the last version that was applied whole.

Where the version is kept differs by engine, and is the only thing an adapter hides:
SQLite's ``PRAGMA user_version`` (:class:`SqliteDatabase`), or a one-row ``schema_version``
table in a PostgreSQL schema (:class:`PostgresSchema`).

Never edit a released migration: add one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ehrqa.core.errors import StoreError

if TYPE_CHECKING:
    from psycopg import Connection

ConnT = TypeVar("ConnT")
ConnT_co = TypeVar("ConnT_co", covariant=True)

# Advisory-lock namespace (first key of pg_advisory_xact_lock(int, int)); the second key is
# the hashed schema name. Kept from the PostgreSQL store so old and new code exclude each other.
LOCK_MIGRATE = 0x65687271  # "ehrq"


@dataclass(frozen=True)
class Migration(Generic[ConnT]):
    """One step of a schema: to ``version`` from the one before, by ``apply``.

    ``apply`` is a SQL script (statements separated by ``;``) or a callable given the raw
    connection, for a step SQL alone cannot say (e.g. a column added only where missing).
    """

    version: int
    description: str
    apply: str | Callable[[ConnT], None]


class Migratable(Protocol[ConnT_co]):
    """What :func:`migrate` needs of a database: its version, transactions, scripts."""

    @property
    def where(self) -> str:
        """The database as messages name it, e.g. ``the token store at /x/auth.sqlite3``."""
        ...

    @property
    def connection(self) -> ConnT_co:
        """The raw connection, given to callable migrations."""
        ...

    def read_version(self) -> int:
        """The stored schema version (0 for a new database)."""
        ...

    def transaction(self) -> AbstractContextManager[int]:
        """A write transaction; yields the stored version read under its lock."""
        ...

    def run_script(self, script: str) -> None:
        """Run the statements of a SQL script inside the current transaction."""
        ...

    def write_version(self, version: int) -> None:
        """Store ``version`` inside the current transaction."""
        ...


def check_sequence(migrations: Sequence[Migration[Any]]) -> int:
    """The latest version of ``migrations``; ValueError unless they number 1, 2, … in order."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, … in order, got {versions}")
    return len(migrations)


def migrate(database: Migratable[ConnT], migrations: Sequence[Migration[ConnT]]) -> int:
    """Bring ``database`` to the latest version of ``migrations``; return that version.

    StoreError, naming the database and both versions, when it is newer than the code;
    StoreError naming the failed version (whose changes are rolled back) when a
    migration fails.
    """
    latest = check_sequence(migrations)
    current = database.read_version()
    if current > latest:
        raise StoreError(
            f"{database.where} has schema version {current}, newer than this ehrqa "
            f"({latest}): upgrade ehrqa"
        )
    for step in migrations[current:]:
        try:
            with database.transaction() as stored:
                # Another process opening the same database may have applied it meanwhile.
                if stored >= step.version:
                    continue
                if isinstance(step.apply, str):
                    database.run_script(step.apply)
                else:
                    step.apply(database.connection)
                database.write_version(step.version)
        except Exception as exc:
            raise StoreError(
                f"cannot migrate {database.where} to schema version {step.version} "
                f"({step.description}): {exc}. Nothing of version {step.version} was applied; "
                f"the database stays at version {step.version - 1}"
            ) from exc
    return latest


def split_sqlite_script(script: str) -> list[str]:
    """The statements of a SQLite script, split where SQLite itself sees a statement end.

    ``executescript`` would commit the open transaction first, so statements are run one
    by one; a ``;`` inside a string literal or a trigger body does not end one.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending!r}")
    return statements


class SqliteDatabase:
    """A SQLite connection migrated through its ``PRAGMA user_version``.

    Works in either of sqlite3's transaction modes: transactions are begun explicitly
    (``BEGIN IMMEDIATE``, so two processes queue instead of both migrating).
    """

    def __init__(self, connection: sqlite3.Connection, where: str) -> None:
        self.connection = connection
        self.where = where

    def read_version(self) -> int:
        """The file's ``user_version``."""
        return int(self.connection.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[int]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on an exception."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.read_version()
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def run_script(self, script: str) -> None:
        """Run each statement of ``script``."""
        for statement in split_sqlite_script(script):
            self.connection.execute(statement)

    def write_version(self, version: int) -> None:
        """Set ``user_version`` (a header field, so it commits or rolls back with the rest)."""
        self.connection.execute(f"PRAGMA user_version = {int(version)}")


class PostgresSchema:
    """A PostgreSQL schema migrated through its one-row ``schema_version`` table.

    ``connection`` is in autocommit mode with ``search_path`` set to ``schema``. Every
    transaction takes an advisory lock on the schema, so concurrent openers queue. The
    schema and its version table are created by the first migration's transaction, so
    opening a store that is up to date writes nothing.
    """

    def __init__(self, connection: Connection[Any], where: str, schema: str) -> None:
        self.connection = connection
        self.where = where
        self.schema = schema

    def read_version(self) -> int:
        """The stored version; 0 while the schema has no version table."""
        found = self.connection.execute(
            "SELECT to_regclass('schema_version') IS NOT NULL"
        ).fetchone()
        if not _first(found):
            return 0
        row = self.connection.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(_first(row) or 0)

    @contextmanager
    def transaction(self) -> Iterator[int]:
        """A transaction holding the schema's migration lock, the schema created if missing;
        yields the stored version."""
        from psycopg import sql

        with self.connection.transaction():
            self.connection.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_MIGRATE, self.schema]
            )
            self.connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            yield self.read_version()

    def run_script(self, script: str) -> None:
        """Run ``script`` (without parameters PostgreSQL takes several statements at once)."""
        self.connection.execute(script)

    def write_version(self, version: int) -> None:
        """Replace the stored version (in a version table made on first use)."""
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
        )
        self.connection.execute("DELETE FROM schema_version")
        self.connection.execute("INSERT INTO schema_version (version) VALUES (%s)", [version])


def _first(row: Any) -> Any:
    """The first column of a row from either a tuple or a dict row factory."""
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
