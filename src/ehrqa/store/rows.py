"""One row mapper: a database row into a typed dataclass, column by field name.

Every ehrqa store reads its rows through :func:`from_row`, so a query names its columns
(``AS resource_count``) instead of code counting positions (``row[4]``). It takes a
``sqlite3.Row``, a psycopg ``dict_row``, or a plain tuple with its cursor's
``description``; columns the dataclass has no field for are ignored, and a missing column
is an error unless the field has a default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import sqlite3

    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

#: What a DB-API cursor's ``description`` holds: one sequence per column, its name first.
Description = Sequence[Sequence[Any]]


@cache
def _fields(cls: type[DataclassInstance]) -> tuple[tuple[str, bool], ...]:
    """(name, required) of each init field of ``cls``; cached, as rows come by thousands."""
    return tuple(
        (f.name, f.default is MISSING and f.default_factory is MISSING)
        for f in fields(cls)
        if f.init
    )


def from_row(
    cls: type[T],
    row: sqlite3.Row | Mapping[str, Any] | Sequence[Any],
    description: Description | None = None,
) -> T:
    """``cls`` built from the row's columns of the same names as its fields.

    ``description`` (a cursor's) names the columns of a plain tuple row. ValueError, naming
    the columns the row has, when a field without a default has no column.
    """
    named: Any = row if description is None else dict(zip(_names(description), row, strict=True))
    spec = _fields(cls)
    try:  # the common case, every field a column: one comprehension (stores read many rows)
        values = {name: named[name] for name, _ in spec}
    except (KeyError, IndexError, TypeError):
        values = _present(cls, named, spec)
    return cls(**values)


def _present(
    cls: type[DataclassInstance], named: Any, spec: tuple[tuple[str, bool], ...]
) -> dict[str, Any]:
    """The fields the row has columns for; ValueError for a required one it lacks."""
    values: dict[str, Any] = {}
    for name, required in spec:
        try:
            values[name] = named[name]
        except (KeyError, IndexError, TypeError):
            if required:
                raise ValueError(
                    f"{cls.__name__} needs a column {name!r}; the row has "
                    f"{_columns(named)}: name it in the query (… AS {name})"
                ) from None
    return values


def _names(description: Description) -> list[str]:
    return [str(column[0]) for column in description]


def _columns(row: Any) -> str:
    keys = row.keys() if hasattr(row, "keys") else None
    return ", ".join(map(str, keys)) if keys is not None else "no column names (pass description)"
