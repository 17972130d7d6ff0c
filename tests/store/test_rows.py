"""The one row mapper: SQLite rows, psycopg dict rows and plain tuples into dataclasses."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ehrqa.store.base import PatientSummary
from ehrqa.store.rows import from_row


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    age: int | None = None
    tags: tuple[str, ...] = field(default=())


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE people (id TEXT, name TEXT, age INTEGER, extra TEXT)")
    conn.execute("INSERT INTO people VALUES ('p1', 'Ada', 55, 'ignored')")
    yield conn
    conn.close()


def test_a_sqlite_row_maps_by_column_name(db: sqlite3.Connection) -> None:
    db.row_factory = sqlite3.Row
    row = db.execute("SELECT extra, age, name, id FROM people").fetchone()
    assert from_row(Person, row) == Person("p1", "Ada", 55)


def test_a_tuple_maps_through_its_cursor_description(db: sqlite3.Connection) -> None:
    cursor = db.execute("SELECT name, id FROM people")
    assert from_row(Person, cursor.fetchone(), cursor.description) == Person("p1", "Ada")


def test_a_dict_row_maps_as_psycopgs_dict_row_gives_it() -> None:
    row = {"id": "p2", "name": "Bob", "birth_date": None, "gender": "male", "resource_count": 3}
    assert from_row(PatientSummary, row) == PatientSummary("p2", "Bob", None, "male", 3)


@pytest.mark.parametrize(
    ("row", "description", "message"),
    [
        ({"id": "p1"}, None, r"Person needs a column 'name'; the row has id: name it"),
        (("p1", "Ada"), None, r"no column names \(pass description\)"),
        (("Ada",), [("name",)], r"needs a column 'id'; the row has name"),
    ],
    ids=["dict", "tuple-without-description", "tuple"],
)
def test_a_missing_column_is_named(row: Any, description: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_row(Person, row, description)
