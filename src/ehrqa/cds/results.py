"""Results as decision support writes them: a readable phrase with the rounded value, the
reader's unit, the day and a High/Low flag (:func:`result_text`), and the flag itself
(:func:`result_flag`: the record's own interpretation or range first, else the reference
range of ``knowledge/reference_ranges.csv``).

Used by the summaries (:mod:`ehrqa.cds.summarize`) and by the sources other advice tasks
cite (:func:`ehrqa.cds.sources.result_phrase`).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ehrqa.answer.extractive import fact_phrase
from ehrqa.answer.judgements import blood_pressure
from ehrqa.fhir.elements import codings
from ehrqa.fhir.record import Record
from ehrqa.knowledge import Knowledge, load_knowledge
from ehrqa.text.units import readable_unit, show_number, show_value

# v3 ObservationInterpretation codes worth a word; "N" (normal) is not.
INTERPRETATIONS = {
    "H": "high",
    "HH": "critically high",
    "HU": "very high",
    ">": "above the measurable range",
    "L": "low",
    "LL": "critically low",
    "LU": "very low",
    "<": "below the measurable range",
    "A": "abnormal",
    "AA": "critically abnormal",
    "POS": "positive",
    "DET": "detected",
}
NORMAL_CODES = frozenset({"N", "NEG", "ND", "NR"})


def result_text(record: Record, sex: str | None = None, age: int | None = None) -> str:
    """``Name: value unit on YYYY-MM-DD (High)`` for a reader.

    The name drops the LOINC qualifiers ("Creatinine [Mass/volume] in Serum or Plasma" is
    "Creatinine"), the value is rounded as :mod:`ehrqa.text.numbers` rounds it, the unit is
    written as :mod:`ehrqa.text.units` writes it, and the flag comes from
    :func:`result_flag`. Only the record's own numbers appear, so each can be checked
    against the cited record.
    """
    if record.value is None and not record.components and record.value_text is None:
        return fact_phrase(record)
    word = result_flag(record, sex, age)
    day = f" on {record.day}" if record.day else ""
    flagged = f" ({word})" if word else ""
    name = "Blood pressure" if blood_pressure(record) else short_name(record.display)
    return f"{name}: {_value(record)}{day}{flagged}"


# LOINC long names qualify the analyte: "[Mass/volume]", "in Serum or Plasma", "by …".
_QUALIFIER_RE = re.compile(
    r"\s*\[[^\]]*\]|\s+(?:in|by)\s+(?:Serum|Plasma|Blood|Urine|Arterial)\b.*$"
)


def short_name(display: str) -> str:
    """A result's name without its LOINC qualifiers (the display itself when nothing is left)."""
    return _QUALIFIER_RE.sub("", display).strip() or display


def _value(record: Record) -> str:
    if record.value_text is not None:
        return f"{record.value_text} {readable_unit(record.unit)}".strip()
    if record.value is not None:
        return show_value(record.value, record.unit)
    if (pressure := blood_pressure(record)) is not None:
        return pressure
    parts = []
    for part in record.components:
        shown = show_value(part.value, part.unit) if part.value is not None else part.value_text
        parts.append(f"{part.name} {shown or ''}".strip())
    return "; ".join(parts)


def result_flag(record: Record, sex: str | None = None, age: int | None = None) -> str | None:
    """ "High", "Low" (or another abnormal word), or None when normal or unknown.

    The record's own interpretation or reference range decides first (:func:`flag`); else
    the value, rounded as shown, is compared with the range of
    ``knowledge/reference_ranges.csv`` for its LOINC code, unit, and the patient's sex and
    age. Blood-pressure components are flagged one by one ("systolic High").
    """
    elements = [c for c in record.resource.get("component") or () if isinstance(c, dict)]
    targets: list[tuple[str, dict[str, Any], float | None, str | None, str]] = [
        ("", record.resource, record.value, record.unit, _first_code(record))
    ]
    targets += [
        (c.name, element, c.value, c.unit, c.code or "")
        for element, c in zip(elements, record.components, strict=False)
    ]
    words: list[str] = []
    for name, element, value, unit, code in targets:
        word = _element_flag(element, value)
        # The record's own verdict (even "normal") wins over the knowledge file's range.
        own = element.get("interpretation") or element.get("referenceRange")
        if word is None and not own and value is not None:
            rng = _knowledge().reference_range(code, sex=sex, age=age)
            if rng is not None and (not unit or rng.unit == unit):
                verdict = rng.flag(float(show_number(value, unit)))
                word = None if verdict == "normal" else verdict
        if word:
            words.append(f"{_component_word(name)} {word[:1].upper()}{word[1:]}".strip())
    return ", ".join(words) or None


def _first_code(record: Record) -> str:
    return record.codes[0].code if record.codes else ""


def _component_word(name: str) -> str:
    lowered = name.lower()
    return next((w for w in ("systolic", "diastolic") if w in lowered), lowered)


@functools.cache
def _knowledge() -> Knowledge:
    return load_knowledge()


# --- flags ------------------------------------------------------------------------------


def flag(record: Record) -> str | None:
    """Why a result is abnormal ("high", "systolic … high"); ``None`` when normal or unknown.

    The resource's ``interpretation`` decides when present; otherwise the value is compared
    with the first ``referenceRange`` that has a low or high bound. Components (blood
    pressure) are flagged one by one.
    """
    own = _element_flag(record.resource, record.value)
    if own:
        return own
    elements = [c for c in record.resource.get("component") or () if isinstance(c, dict)]
    found = []
    for element, component in zip(elements, record.components, strict=False):
        if component_flag := _element_flag(element, component.value):
            found.append(f"{component.name} {component_flag}")
    return ", ".join(found) or None


def _element_flag(element: dict[str, Any], value: float | None) -> str | None:
    interpreted = codings(element.get("interpretation"))
    if interpreted:
        abnormal = [c for c in interpreted if c.code not in NORMAL_CODES]
        if not abnormal:
            return None
        code = abnormal[0].code
        return INTERPRETATIONS.get(code) or (abnormal[0].display or code).lower()
    return _range_flag(element.get("referenceRange"), value)


def _range_flag(ranges: Any, value: float | None) -> str | None:
    if value is None or not isinstance(ranges, list):
        return None
    for entry in ranges:
        low, high = _bound(entry, "low"), _bound(entry, "high")
        if low is None and high is None:
            continue
        if low is not None and value < low:
            return "low"
        if high is not None and value > high:
            return "high"
        return None
    return None


def _bound(entry: Any, side: str) -> float | None:
    quantity = entry.get(side) if isinstance(entry, dict) else None
    number = quantity.get("value") if isinstance(quantity, dict) else None
    if isinstance(number, int | float) and not isinstance(number, bool):
        return float(number)
    return None
