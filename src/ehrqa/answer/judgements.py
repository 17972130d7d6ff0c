"""Judgements computed by code, never left to a model: trend direction, a value against its
reference range, a condition's control against its monitoring target.

Each function is pure: it takes the selected records (and the knowledge base) and returns
a :class:`Judgement`, a sentence that cites its records, plus the spans it takes from the
knowledge files (a range's bounds, a target, their source) rather than from a record, so
the verifier can tell knowledge from invention.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from ehrqa.fhir.record import Record
from ehrqa.fhir.render import insurers
from ehrqa.knowledge import Knowledge, Monitor, ReferenceRange
from ehrqa.text.numbers import display_number
from ehrqa.text.units import show_number, show_value, with_unit

# Relative change below which a series counts as stable ("about the same").
STABLE_SHARE = 0.03
_SYSTOLIC = "8480-6"
_DIASTOLIC = "8462-4"


@dataclass(frozen=True)
class Judgement:
    """A computed verdict: the sentence, the records it rests on, and its knowledge spans."""

    sentence: str
    refs: tuple[str, ...]
    knowledge: tuple[str, ...] = field(default=())


def _cite(records: Sequence[Record]) -> str:
    return "".join(f"[{r.ref}]" for r in records)


def _loinc(record: Record) -> str | None:
    return next((c.code for c in record.codes if c.system_name == "LOINC"), None)


def _series_value(record: Record) -> tuple[float, str | None] | None:
    """The one number a series follows: the value, or a blood pressure's systolic."""
    if record.value is not None:
        return record.value, record.unit
    for component in record.components:
        if component.code == _SYSTOLIC and component.value is not None:
            return component.value, component.unit
    return None


def _shown(record: Record) -> str:
    """The record's value as an answer shows it (blood pressure as systolic/diastolic)."""
    by_code = {c.code: c for c in record.components if c.value is not None}
    sys_, dia = by_code.get(_SYSTOLIC), by_code.get(_DIASTOLIC)
    if sys_ is not None and dia is not None and sys_.value is not None and dia.value is not None:
        pair = f"{show_number(sys_.value, sys_.unit)}/{show_number(dia.value, dia.unit)}"
        return with_unit(pair, sys_.unit)
    found = _series_value(record)
    if found is None:
        return record.value_text or ""
    return show_value(found[0], found[1])


def trend(records: Sequence[Record]) -> Judgement | None:
    """The direction of one measure's series, first → last, or None for fewer than 2 values.

    Records of one day are one reading (the newest of them counts); the direction is "up",
    "down" or "about the same" (a relative change under :data:`STABLE_SHARE`).
    """
    by_day: dict[str, Record] = {}
    for record in sorted(records, key=lambda r: r.date or ""):
        if record.day and _series_value(record) is not None:
            by_day[record.day] = record
    if len(by_day) < 2:
        return None
    series = list(by_day.values())
    first, last = series[0], series[-1]
    a = _series_value(first)
    b = _series_value(last)
    assert a is not None and b is not None  # filtered above
    change = (b[0] - a[0]) / abs(a[0]) if a[0] else (b[0] - a[0])
    if abs(change) < STABLE_SHARE:
        direction = "stayed about the same"
    else:
        direction = "went up" if change > 0 else "went down"
    name = first.display
    sentence = (
        f"{name} {direction}: {_shown(first)} on {first.day} {_cite([first])} → "
        f"{_shown(last)} on {last.day} {_cite([last])}."
    )
    return Judgement(sentence, (first.ref, last.ref))


def _range_text(rng: ReferenceRange) -> str:
    low = display_number(rng.low) if rng.low is not None else None
    high = display_number(rng.high) if rng.high is not None else None
    if low is not None and high is not None:
        bounds = f"{low}–{with_unit(high, rng.unit)}"
    elif high is not None:
        bounds = f"up to {with_unit(high, rng.unit)}"
    else:
        bounds = f"{with_unit(low or '', rng.unit)} or more"
    return f"normal {bounds}; source: {rng.source}"


def range_judgement(
    record: Record, kb: Knowledge, *, sex: str | None = None, age: float | None = None
) -> Judgement | None:
    """Whether the record's value is low, normal or high for its reference range, or None
    when the knowledge files hold no range for its code (or its unit differs).

    "Creatinine 1.21 mg/dL on 2011-11-30 [Observation/…]: normal (normal 0.7–1.3 mg/dL;
    source: MedlinePlus …)." A blood pressure is judged by each component.
    """
    flags: list[str] = []
    spans: list[str] = []
    targets = [(record.value, record.unit, _loinc(record))]
    targets += [(c.value, c.unit, c.code) for c in record.components]
    for value, unit, code in targets:
        if value is None or code is None:
            continue
        rng = kb.reference_range(code, sex=sex, age=age)
        if rng is None or (unit and rng.unit and unit != rng.unit):
            continue
        flags.append(rng.flag(float(show_number(value, unit))))
        text = _range_text(rng)
        spans.append(text if len(targets) == 1 else f"{rng.label}: {text}")
    if not flags:
        return None
    worst = "high" if "high" in flags else "low" if "low" in flags else "normal"
    verdict = {"high": "HIGH", "low": "LOW", "normal": "within the normal range"}[worst]
    sentence = (
        f"{record.display} {_shown(record)} on {record.day} {_cite([record])}: "
        f"{verdict} ({' / '.join(spans)})."
    )
    return Judgement(sentence, (record.ref,), tuple(spans))


def _monitor_value(record: Record, monitor: Monitor) -> float | None:
    if monitor.component:
        for component in record.components:
            if component.code == monitor.component and component.value is not None:
                return component.value
        return None
    return record.value


def control(
    condition: Record, measures: Sequence[Record], monitors: Sequence[Monitor]
) -> Judgement | None:
    """Whether a condition is at its monitoring targets by the newest measurement of each.

    "Diabetes: latest Hemoglobin A1c 6.2 % on 2024-01-02 is at target (< 7 %, ADA …)."
    None when no measure of the condition's monitors was selected.
    """
    clauses: list[str] = []
    spans: list[str] = []
    refs = [condition.ref]
    for monitor in monitors:
        found = [
            (r, v)
            for r in measures
            if _loinc(r) in monitor.loinc and (v := _monitor_value(r, monitor)) is not None
        ]
        if not found:
            continue
        record, value = max(found, key=lambda rv: rv[0].date or "")
        met = monitor.met(float(show_number(value, record.unit)))
        verdict = (
            "at target" if met else "above target" if "<" in monitor.comparator else "below target"
        )
        shown = _shown(record) if monitor.component else show_value(value, record.unit)
        target = (
            f"target {monitor.comparator} {with_unit(display_number(monitor.target), monitor.unit)}"
            f"; source: {monitor.source}"
        )
        clauses.append(
            f"latest {record.display} {shown} on {record.day} {_cite([record])} is {verdict} "
            f"({target})"
        )
        spans.append(target)
        refs.append(record.ref)
    if not clauses:
        return None
    name = re.sub(r"\s*\([^)]*\)", "", condition.display)
    sentence = f"{name} {_cite([condition])}: {'; '.join(clauses)}."
    return Judgement(sentence, tuple(refs), tuple(spans))


# Questions about who pays: answered from the insurers that claims name.
INSURANCE_RE = re.compile(
    r"\b(?:insur\w*|coverage|covered|payer|payor|medicare|medicaid|health\s+plan)\b",
    re.IGNORECASE,
)
_CLAIM_TYPES = ("Claim", "ExplanationOfBenefit")


def payer_judgement(records: Sequence[Record]) -> Judgement | None:
    """Who pays, by the insurers the selected claims name, newest first, with their dates.

    "Insurance named on your claims: Medicare (2019-01-02 to 2024-03-01) [Claim/…][Claim/…];
    private (…)." None when no selected claim names an insurer.
    """
    by_payer: dict[str, list[Record]] = {}
    for record in records:
        if record.resource_type in _CLAIM_TYPES:
            for name in insurers(record.resource):
                by_payer.setdefault(name, []).append(record)
    if not by_payer:
        return None
    clauses = []
    refs: list[str] = []
    ordered = sorted(
        by_payer.items(), key=lambda kv: max(r.date or "" for r in kv[1]), reverse=True
    )
    for name, claims in ordered:
        claims.sort(key=lambda r: r.date or "")
        first, last = claims[0], claims[-1]
        span = first.day if first.day == last.day else f"{first.day} to {last.day}"
        ends = [first] if first is last else [first, last]
        clauses.append(f"{name} ({span}) {_cite(ends)}")
        refs.extend(r.ref for r in ends)
    sentence = f"Insurance named on your claims, newest first: {'; '.join(clauses)}."
    return Judgement(sentence, tuple(refs))


def age_years(birth_date: str | None, on: date) -> float | None:
    """Whole years from ``birth_date`` (ISO) to ``on``, or None when unknown."""
    if not birth_date:
        return None
    try:
        born = date.fromisoformat(birth_date[:10])
    except ValueError:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


__all__ = [
    "INSURANCE_RE",
    "Judgement",
    "age_years",
    "control",
    "payer_judgement",
    "range_judgement",
    "trend",
]
