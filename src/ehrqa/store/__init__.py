"""Record stores: where normalised resources live, behind the :class:`RecordStore` protocol.

:func:`open_store` picks the backend from where the store is: a data directory holds the
embedded SQLite store, a ``.sqlite3`` (``.sqlite``, ``.db``) path is that SQLite file, and a
``postgresql://`` URL names a PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ehrqa.store.base import CodedConcept, PatientSummary, RecordQuery, RecordStore, UpsertStats
from ehrqa.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from ehrqa.store.postgres import PostgresStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SUFFIXES = (".sqlite3", ".sqlite", ".db")


def is_postgres_url(location: str | Path) -> bool:
    """Whether ``location`` is a PostgreSQL connection URL rather than a data directory."""
    return isinstance(location, str) and location.strip().lower().startswith(POSTGRES_SCHEMES)


def open_store(location: str | Path) -> SqliteStore | PostgresStore:
    """Open (creating and migrating if needed) the store at ``location``.

    ``location`` is a data directory (the SQLite store ``<dir>/ehrqa.sqlite3``), a SQLite
    file (an existing file, or a new path ending in .sqlite3, .sqlite or .db), or a
    ``postgresql://user@host:port/db`` URL (add ``?options=-csearch_path%3Dname`` for a
    schema other than ``public``).
    """
    if is_postgres_url(location):
        from ehrqa.store.postgres import PostgresStore

        return PostgresStore(str(location).strip())
    from ehrqa.store.sqlite import open_store as open_home_store

    path = Path(location).expanduser()
    if path.is_file() or (not path.is_dir() and path.suffix.lower() in SQLITE_SUFFIXES):
        return SqliteStore(path)
    return open_home_store(path)


__all__ = [
    "CodedConcept",
    "PatientSummary",
    "RecordQuery",
    "RecordStore",
    "SqliteStore",
    "UpsertStats",
    "is_postgres_url",
    "open_store",
]
