"""Units as a reader writes them: ``mm[Hg]`` → ``mmHg``, ``Cel`` → ``°C``, ``{score}`` → nothing.

The spellings live in ``units.csv`` beside this module (UCUM code, reader's spelling), so a
clinician can review them; codes not listed are shown as recorded.
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

from ehrqa.text.numbers import display_number


@functools.cache
def _rows() -> dict[str, tuple[str, int | None]]:
    text = resources.files("ehrqa.text").joinpath("units.csv").read_text(encoding="utf-8")
    rows = csv.reader(line for line in text.splitlines() if line and not line.startswith("#"))
    table: dict[str, tuple[str, int | None]] = {}
    for row in rows:
        if row[0] == "ucum":
            continue
        cells = [*row, "", ""]
        table[row[0]] = (cells[1], int(cells[2]) if cells[2].strip() else None)
    return table


def _table() -> dict[str, str]:
    return {code: reader for code, (reader, _) in _rows().items()}


def readable_units() -> dict[str, str]:
    """Every listed UCUM code and its reader's spelling (for the web page's patient view)."""
    return dict(_table())


def unit_decimals(unit: str | None) -> int | None:
    """How many decimals a noisy value in ``unit`` is shown with (None: by its size)."""
    return _rows().get(unit or "", ("", None))[1]


def readable_unit(unit: str | None) -> str:
    """The reader's spelling of ``unit`` ("" for none, "1" or an annotation like ``{score}``)."""
    if not unit or unit == "1":
        return ""
    table = _table()
    if unit in table:
        return table[unit]
    if unit.startswith("{") and unit.endswith("}"):
        return ""  # an annotation ({score}, {nominal}) is not a unit a reader needs
    return unit


def show_number(value: float, unit: str | None) -> str:
    """A measured value's number, rounded for its unit ("102" for 102.03 mmHg)."""
    return display_number(value, unit_decimals(unit))


def show_value(value: float, unit: str | None) -> str:
    """A measured value with its readable unit, rounded for that unit ("102 mmHg")."""
    return with_unit(show_number(value, unit), unit)


def with_unit(number: str, unit: str | None) -> str:
    """``number`` followed by its readable unit ("7.8%", "82.3 kg", "98 mmHg")."""
    shown = readable_unit(unit)
    if not shown:
        return number
    return f"{number}{shown}" if shown == "%" else f"{number} {shown}"
