"""What only the SQLite store does: its file's schema version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ehrqa.core.errors import StoreError
from ehrqa.store import SqliteStore
from ehrqa.store.sqlite import MIGRATIONS


def test_schema_is_migrated_and_newer_schemas_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SqliteStore(path).close()
    assert SqliteStore(path).schema_version == len(MIGRATIONS)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="upgrade ehrqa"):
        SqliteStore(path)
