"""Units as a reader writes them: ``mm[Hg]`` → ``mmHg``, ``Cel`` → ``°C``, ``{score}`` → nothing.

The spellings live in ``units.csv`` beside this module (UCUM code, reader's spelling), so a
clinician can review them; codes not listed are shown as recorded.
"""

from __future__ import annotations

import csv
import functools
import re
from importlib import resources

from ehrqa.text.numbers import display_number, numbers_in


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


# Canonical unit → spellings (already lower-cased, brackets and spaces removed).
_UNIT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "%": ("percent", "percentage", "pct"),
    "mmhg": ("millimetersofmercury", "millimetresofmercury"),
    "/min": (
        "permin",
        "perminute",
        "/minute",
        "beats/min",
        "breaths/min",
        "bpm",
        "beatsperminute",
        "breathsperminute",
        "beats/minute",
        "breaths/minute",
    ),
    "kg/m2": ("kilogramspersquaremeter", "kg/squaremeter"),
    "kg": ("kilogram", "kilograms", "kgs"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "cm": ("centimeter", "centimeters", "centimetre", "centimetres"),
    "m": ("meter", "meters", "metre", "metres"),
    "in": ("in_i", "inch", "inches"),
    "lb": ("lb_av", "lbs", "pound", "pounds"),
    "cel": ("°c", "degc", "celsius", "degreescelsius", "degreesc", "ºc"),
    "degf": ("°f", "fahrenheit", "degreesfahrenheit", "degreesf", "ºf"),
    "mg/dl": (),
    "g/dl": (),
    "mmol/l": (),
    "mmol/mol": (),
    "mg/g": (),
    "ku/l": (),
    "u/l": (),
    "ng/ml": (),
    "pmol/l": (),
    "ml": ("milliliter", "milliliters"),
    "l": (),
    "fl": ("femtoliter", "femtoliters", "femtolitre", "femtolitres"),
    "pg": ("picogram", "picograms"),
    "10*3/ul": ("k/ul", "thousand/ul", "10*9/l"),
    "10*6/ul": ("m/ul", "million/ul", "10*12/l"),
    "ml/min/1.73_m2": ("ml/min/1.73m2",),
    "score": (),
    "#": (),
    "ph": (),
    "h": ("hour", "hours", "hr", "hrs"),
    "days": ("day", "d"),
    "weeks": ("week", "wk", "wks"),
    "years": ("year", "yr", "yrs"),
}
_CANONICAL_UNIT = {s: canon for canon, spellings in _UNIT_SYNONYMS.items() for s in spellings}
KNOWN_UNITS = frozenset(_UNIT_SYNONYMS)
# Units that are also English words or letters: counted only right after a number.
_AMBIGUOUS_UNITS = frozenset({"in", "m", "g", "l", "h", "days", "weeks", "years", "#"})
_SUPERSCRIPTS = str.maketrans({"²": "2", "³": "3", "⁶": "6", "⁹": "9", "µ": "u", "μ": "u"})


def normalize_unit(unit: str) -> str:
    """Canonical spelling of a unit: lower case, no spaces, brackets or braces, synonyms merged.

    ``"mm[Hg]"``, ``"mmHg"`` and ``"mm Hg"`` → ``"mmhg"``; ``"kg/m²"`` → ``"kg/m2"``;
    ``"percent"`` → ``"%"``; ``"{score}"`` → ``"score"``; ``"×10^3/µL"`` and ``"×10³/µL"``
    → ``"10*3/ul"``.
    Unknown units are returned in that normal form.
    """
    # "×10³/µL" is 10*3/uL: a superscript after 10 is its exponent.
    text = re.sub(r"10([²³⁶⁹])", r"10*\1", unit.strip().lower()).translate(_SUPERSCRIPTS)
    text = re.sub(r"(?<=\d)\^", "*", text).replace("^", "")
    text = re.sub(r"[\s\[\]{}]", "", text)
    text = re.sub(r"^[x×]\s*(?=10\*)", "", text)
    return _CANONICAL_UNIT.get(text, text)


EDGE_PUNCT = " \t.,;:!?()\"'"
_LEADING_NUMBER_RE = re.compile(r"^(?:[-+]?\d[\d.,]*(?:/(?=\d))?)+")


def unit_present(expected: str, answer: str) -> bool:
    """Whether ``answer`` states the unit ``expected`` in any spelling :func:`normalize_unit`
    merges ("°C" for ``Cel``, "mmHg" for ``mm[Hg]``); ambiguous short units only after a
    number."""
    want = normalize_unit(expected)
    raw = [t.strip(EDGE_PUNCT) for t in answer.split()]
    tokens = [t for t in raw if t]
    for i, token in enumerate(tokens):
        glued = _LEADING_NUMBER_RE.sub("", token)
        after_number = glued != token or (i > 0 and bool(numbers_in(tokens[i - 1])))
        for n in (1, 2, 3):
            span = tokens[i : i + n]
            if len(span) < n:
                break
            forms = {normalize_unit(" ".join(span)), normalize_unit(" ".join([glued, *span[1:]]))}
            if want in forms and (want not in _AMBIGUOUS_UNITS or after_number):
                return True
    return False
