"""Record stores: where normalised resources live, behind the :class:`RecordStore` protocol.

:func:`open_store` picks the backend from where the store is: a data directory holds the
embedded SQLite store, a ``.sqlite3`` (``.sqlite``, ``.db``) path is that SQLite file, and a
``postgresql://`` URL names a PostgreSQL database. Any other ``SCHEME://`` URL names a store
that an installed package registers for that scheme in the ``ehrqa.stores`` entry-point
group: a callable taking the URL and returning a :class:`RecordStore`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ehrqa.core.registry import Registry
from ehrqa.store.base import CodedConcept, PatientSummary, RecordQuery, RecordStore, UpsertStats
from ehrqa.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from ehrqa.store.postgres import PostgresStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SUFFIXES = (".sqlite3", ".sqlite", ".db")
_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)

#: Store factories by URL scheme; plugins add theirs in the ``ehrqa.stores`` group.
STORES: Registry[Callable[[str], RecordStore]] = Registry("store", "ehrqa.stores")
STORES.register("postgresql", "ehrqa.store.postgres:PostgresStore", "PostgreSQL (psycopg 3)")
STORES.register("postgres", "ehrqa.store.postgres:PostgresStore", "PostgreSQL (psycopg 3)")


def is_postgres_url(location: str | Path) -> bool:
    """Whether ``location`` is a PostgreSQL connection URL rather than a data directory."""
    return isinstance(location, str) and location.strip().lower().startswith(POSTGRES_SCHEMES)


def store_scheme(location: str | Path) -> str | None:
    """The URL scheme of ``location`` (``postgresql``), or None for a file or folder."""
    match = _URL.match(location.strip()) if isinstance(location, str) else None
    return match.group(1).lower() if match else None


def open_store(location: str | Path) -> SqliteStore | PostgresStore | RecordStore:
    """Open (creating and migrating if needed) the store at ``location``.

    ``location`` is a data directory (the SQLite store ``<dir>/ehrqa.sqlite3``), a SQLite
    file (an existing file, or a new path ending in .sqlite3, .sqlite or .db), or a
    ``postgresql://user@host:port/db`` URL (add ``?options=-csearch_path%3Dname`` for a
    schema other than ``public``), or a URL for a plugin's store (:data:`STORES`).
    """
    scheme = store_scheme(location)
    if scheme is not None:
        return STORES.get(scheme)(str(location).strip())
    from ehrqa.store.sqlite import open_store as open_home_store

    path = Path(location).expanduser()
    if path.is_file() or (not path.is_dir() and path.suffix.lower() in SQLITE_SUFFIXES):
        return SqliteStore(path)
    return open_home_store(path)


__all__ = [
    "STORES",
    "CodedConcept",
    "PatientSummary",
    "RecordQuery",
    "RecordStore",
    "SqliteStore",
    "UpsertStats",
    "is_postgres_url",
    "open_store",
    "store_scheme",
]
