"""Judgements computed by code, never left to a model: trend direction, a value against its
reference range, a condition's control against its monitoring target.

Each function is pure: it takes the selected records (and the knowledge base) and returns
a :class:`Judgement`, a sentence that cites its records, plus the spans it takes from the
knowledge files (a range's bounds, a target, their source) rather than from a record, so
the verifier can tell knowledge from invention.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from ehrqa.answer.verify import age_on
from ehrqa.fhir.record import Record
from ehrqa.fhir.render import stated_insurers
from ehrqa.knowledge import (
    CHILD_SCHEDULE_SOURCE,
    Knowledge,
    Monitor,
    ReferenceRange,
    ScreeningInterval,
    VaccineInterval,
)
from ehrqa.select.default import CLAIM_TYPES
from ehrqa.select.query import DUE_RE, EVER_OUT_OF_RANGE_RE, PASSED_ON, YES_NO_RE, asks_yes_no
from ehrqa.text.dates import whole_months
from ehrqa.text.names import plain_name
from ehrqa.text.numbers import display_number
from ehrqa.text.units import show_number, show_value, with_unit

# Relative change below which a series counts as stable ("about the same").
STABLE_SHARE = 0.03
# A trend shows each reading between its first and last up to this many, else the extremes.
SHOWN_BETWEEN = 6
_SYSTOLIC = "8480-6"
_DIASTOLIC = "8462-4"


@dataclass(frozen=True)
class Judgement:
    """A computed verdict: the sentence, the records it rests on, and its knowledge spans."""

    sentence: str
    refs: tuple[str, ...]
    knowledge: tuple[str, ...] = field(default=())
    # Every record the verdict was computed from, when more than it cites (a trend rests on
    # each reading of its series); empty when the cited records are all of them.
    evidence: tuple[str, ...] = field(default=())
    # A trend's direction ("up", "down" or "stable") and, when a target says which way is
    # better, its worth ("better" or "worse"); empty for other verdicts.
    direction: tuple[str, ...] = field(default=())

    @property
    def rests_on(self) -> tuple[str, ...]:
        """The records the verdict was computed from: its evidence, else what it cites."""
        return self.evidence or self.refs


def cite(records: Iterable[Record]) -> str:
    """The citations of ``records``, as answers write them: "[Observation/a][Condition/b]"."""
    return "".join(f"[{r.ref}]" for r in records)


def _loinc(record: Record) -> str | None:
    return next((c.code for c in record.codes if c.system_name == "LOINC"), None)


def series_value(record: Record) -> tuple[float, str | None] | None:
    """The one number a series follows: the value, or a blood pressure's systolic."""
    if record.value is not None:
        return record.value, record.unit
    for component in record.components:
        if component.code == _SYSTOLIC and component.value is not None:
            return component.value, component.unit
    return None


def _number(record: Record) -> float:
    """The number a series follows (0 for a record without one; a series has them all)."""
    found = series_value(record)
    return found[0] if found is not None else 0.0


def blood_pressure(record: Record) -> str | None:
    """ "120/80 mmHg" for a blood-pressure panel with both components, else None."""
    by_code = {c.code: c for c in record.components if c.value is not None}
    sys_, dia = by_code.get(_SYSTOLIC), by_code.get(_DIASTOLIC)
    if sys_ is None or dia is None or sys_.value is None or dia.value is None:
        return None
    pair = f"{show_number(sys_.value, sys_.unit)}/{show_number(dia.value, dia.unit)}"
    return with_unit(pair, sys_.unit)


def _shown(record: Record) -> str:
    """The record's value as an answer shows it (blood pressure as systolic/diastolic)."""
    if (pressure := blood_pressure(record)) is not None:
        return pressure
    found = series_value(record)
    if found is None:
        return record.value_text or ""
    return show_value(found[0], found[1])


def better_direction(kb: Knowledge, code: str) -> str | None:
    """ "lower" or "higher" when a monitoring target says which way is better for ``code``."""
    for monitor in kb.monitors:
        if code in monitor.loinc:
            return "lower" if "<" in monitor.comparator else "higher"
    return None


def trend(
    records: Sequence[Record], better: str | None = None, *, scope: str = ""
) -> Judgement | None:
    """The direction of one measure's series, first → last, or None for fewer than 2 values.

    Records of one day are one reading (the newest of them counts); the direction is "up",
    "down" or "stable" (a relative change under :data:`STABLE_SHARE`), and "better" or
    "worse" when ``better`` says which way is better ("lower" for HbA1c, "higher" for eGFR).
    ``scope`` says which part of the record the series is ("as an adult").
    """
    by_day: dict[str, Record] = {}
    for record in sorted(records, key=lambda r: r.date or ""):
        if record.day and series_value(record) is not None:
            by_day[record.day] = record
    if len(by_day) < 2:
        return None
    series = list(by_day.values())
    first, last = series[0], series[-1]
    a = series_value(first)
    b = series_value(last)
    assert a is not None and b is not None  # filtered above
    change = (b[0] - a[0]) / abs(a[0]) if a[0] else (b[0] - a[0])
    # Values that read the same as shown (0.26 → 0.26) are stable whatever the raw digits.
    way: tuple[str, ...]
    if abs(change) < STABLE_SHARE or show_number(a[0], a[1]) == show_number(b[0], b[1]):
        direction, way = "was stable", ("stable",)
    else:
        direction = "went up" if change > 0 else "went down"
        way = ("up",) if change > 0 else ("down",)
        if better is not None:  # which way is better comes from a monitoring target
            improved = (change < 0) == (better == "lower")
            direction += " (better)" if improved else " (worse)"
            way += ("better",) if improved else ("worse",)
    name = plain_name(first.display) + (f" ({scope})" if scope else "")
    sentence = (
        f"{name} {direction}: {_shown(first)} on {first.day} {cite([first])} → "
        f"{_shown(last)} on {last.day} {cite([last])}."
    )
    between = series[1:-1]
    if 0 < len(between) <= SHOWN_BETWEEN:
        readings = "; ".join(f"{_shown(r)} on {r.day} {cite([r])}" for r in between)
        sentence += f" In between: {readings}."
    elif between:  # a long series: its extremes, not every reading
        low = min(between, key=_number)
        high = max(between, key=_number)
        if _shown(low) == _shown(high):
            sentence += f" {len(series)} readings in all; those in between were each {_shown(low)}."
        else:
            sentence += (
                f" {len(series)} readings in all; in between, lowest {_shown(low)} on "
                f"{low.day} {cite([low])}, highest {_shown(high)} on {high.day} "
                f"{cite([high])}."
            )
    evidence = tuple(r.ref for r in records)
    return Judgement(sentence, (first.ref, last.ref), evidence=evidence, direction=way)


_ASKED_UP_RE = re.compile(
    r"\b(?:up|higher|ris(?:e|es|en|ing)|rose|increas\w*|climb\w*|creep\w*|gain\w*"
    r"|put\s+on)\b",
    re.IGNORECASE,
)
_ASKED_DOWN_RE = re.compile(
    r"\b(?:down|lower|drop\w*|fall(?:s|en|ing)?|fell|decreas\w*|declin\w*|lost|los(?:e|ing))\b",
    re.IGNORECASE,
)
_ASKED_BETTER_RE = re.compile(r"\b(?:better|improv\w*)\b", re.IGNORECASE)
_ASKED_WORSE_RE = re.compile(r"\b(?:worse\w*|deteriorat\w*)\b", re.IGNORECASE)


def trend_answer(question: str, verdict: Judgement) -> Judgement:
    """A trend asked yes or no ("Is my LDL going up?", "is her kidney function getting
    worse?") opened with "Yes" when the series went the way asked. Any other way is said by
    the sentence's own opening ("LDL went down", "was stable"): a bare "No" there would read
    as a claim that nothing is recorded. A question that asks both ways ("up or down?") or a
    worth no target gives (better or worse, with no target) is left as it is."""
    if not verdict.direction or not asks_yes_no(question):
        return verdict
    asked = {
        word
        for word, pattern in (
            ("up", _ASKED_UP_RE),
            ("down", _ASKED_DOWN_RE),
            ("better", _ASKED_BETTER_RE),
            ("worse", _ASKED_WORSE_RE),
        )
        if pattern.search(question)
    }
    if len(asked) != 1:
        return verdict
    (way,) = asked
    if way not in verdict.direction:  # another way, or a worth no target gives
        return verdict
    return dataclasses.replace(verdict, sentence=f"Yes: {verdict.sentence}")


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


def _range_flag(
    record: Record, kb: Knowledge, *, sex: str | None = None, age: float | None = None
) -> tuple[str, list[str]] | None:
    """The record's value against its reference range: "high", "low" or "normal" (a blood
    pressure is high or low when either part is) and each range's text, or None when the
    knowledge files hold no range for it (or its unit differs)."""
    flags: list[str] = []
    spans: list[str] = []
    targets = [(record.value, record.unit, _loinc(record))]
    targets += [(c.value, c.unit, c.code) for c in record.components]
    for value, unit, code in targets:
        if value is None or code is None:
            continue
        rng = kb.reference_range(code, sex=sex, age=age)
        if rng is None or not rng.measures(unit):
            continue
        flags.append(rng.flag(float(show_number(value, unit))))
        text = _range_text(rng)
        spans.append(text if len(targets) == 1 else f"{rng.label}: {text}")
    if not flags:
        return None
    return "high" if "high" in flags else "low" if "low" in flags else "normal", spans


def range_judgement(
    record: Record, kb: Knowledge, *, sex: str | None = None, age: float | None = None
) -> Judgement | None:
    """Whether the record's value is low, normal or high for its reference range, or None
    when the knowledge files hold no range for its code (or its unit differs).

    "Creatinine 1.21 mg/dL on 2011-11-30 [Observation/…]: normal (normal 0.7–1.3 mg/dL;
    source: MedlinePlus …)." A blood pressure is judged by each component.
    """
    read = _range_flag(record, kb, sex=sex, age=age)
    if read is None:
        return None
    worst, spans = read
    verdict = {"high": "HIGH", "low": "LOW", "normal": "within the normal range"}[worst]
    sentence = (
        f"{plain_name(record.display)} {_shown(record)} on {record.day} {cite([record])}: "
        f"{verdict} ({' / '.join(spans)})."
    )
    return Judgement(sentence, (record.ref,), tuple(spans))


# A threshold the question names: "is her A1c under 7?", "is his BMI over 30 now?", "is
# her blood pressure below 140/90?". The numbers are the asker's, compared as said.
THRESHOLD_RE = re.compile(
    r"\b(?P<op>under|below|less\s+than|lower\s+than|over|above|more\s+than|greater\s+than"
    r"|higher\s+than|older\s+than|younger\s+than|at\s+least|at\s+most|no\s+more\s+than)\s+"
    r"(?P<a>\d+(?:\.\d+)?)(?:\s*/\s*(?P<b>\d+(?:\.\d+)?))?(?![\d.])"
    r"(?!\s*(?:years?|yrs?|months?|weeks?|days?|times?)\b)",
    re.IGNORECASE,
)
_BELOW = ("under", "below", "less", "lower", "younger")
_ABOVE = ("over", "above", "more", "greater", "higher", "older")


def threshold_met(said: str, values: Sequence[float], limits: Sequence[float]) -> tuple[bool, str]:
    """Whether every value is on the side of its limit that ``said`` ("under", "more than",
    "at least", THRESHOLD_RE's ``op``) names, and that side in words ("below")."""
    op = said.lower().split()
    pairs = list(zip(values, limits, strict=True))
    if op[0] in _BELOW:
        return all(v < t for v, t in pairs), "below"
    if op[0] in _ABOVE:
        return all(v > t for v, t in pairs), "above"
    if op == ["at", "least"]:
        return all(v >= t for v, t in pairs), "at least"
    return all(v <= t for v, t in pairs), "at most"  # at most, no more than


def threshold_judgement(record: Record, question: str) -> Judgement | None:
    """Whether the record's value is on the asked side of a threshold the question names
    ("is her A1c under 7?" → "Yes, below 7: … 6% on …"), or None when the question names
    none or the record holds no number to compare. A blood pressure's "under 140/90" compares
    both its parts; a bare number, its systolic."""
    match = THRESHOLD_RE.search(question)
    found = series_value(record)
    if match is None or found is None:
        return None
    limits = [float(match["a"])]
    values = [float(show_number(found[0], found[1]))]
    if match["b"] is not None:
        by_code = {c.code: c.value for c in record.components if c.value is not None}
        diastolic = by_code.get(_DIASTOLIC)
        if diastolic is None:
            return None
        limits.append(float(match["b"]))
        values.append(float(show_number(diastolic, found[1])))
    met, side = threshold_met(match["op"], values, limits)
    # The asker's number is the question's own, not a fact of the record: left unchecked.
    asked = f"{side} {'/'.join(display_number(t) for t in limits)}"
    # "Not below 30: …" rather than a bare "No", which reads as "nothing recorded".
    opening = f"Yes, {asked}" if met else f"Not {asked}"
    shown = f"{plain_name(record.display)} {_shown(record)} on {record.day} {cite([record])}"
    sentence = f"{opening}: {shown}."
    return Judgement(sentence, (record.ref,), (asked,))


def ever_out_of_range(
    series: Sequence[Record],
    kb: Knowledge,
    question: str,
    age_of: Callable[[Record], float | None],
    sex: str | None = None,
) -> Judgement | None:
    """Whether any reading of one measure was out of its reference range, the way asked
    ("ever high?": above it). Yes with how many and the most extreme one cited, or No
    with how many readings were read from when to when. None when the question does not
    ask it or no reading has a range."""
    match = EVER_OUT_OF_RANGE_RE.search(question)
    if match is None:
        return None
    said = (match["side"] or match["side2"] or "").lower()
    wanted = {"high": ("high",), "higher": ("high",), "elevated": ("high",),
              "raised": ("high",), "low": ("low",), "lower": ("low",)}.get(
        said, ("high", "low")
    )  # fmt: skip
    judged: list[tuple[Record, str, str]] = []
    for record in series:
        if (read := _range_flag(record, kb, sex=sex, age=age_of(record))) is not None:
            judged.append((record, read[0], " / ".join(read[1])))
    if not judged:
        return None
    out = [(r, flag) for r, flag, _ in judged if flag in wanted]
    span = judged[-1][2]
    name = plain_name(judged[0][0].display)
    word = " or ".join(wanted) if len(wanted) == 1 else "out of range"
    days = sorted(r.day or "" for r, _, _ in judged)
    # The counts are of the readings the verdict cites as its evidence: computed here.
    if not out:
        counted = f"none of the {len(judged)}"
        return Judgement(
            f"No: {counted} {name} readings from {days[0]} to {days[-1]} was {word} ({span}).",
            (judged[0][0].ref, judged[-1][0].ref),
            (span, counted),
            evidence=tuple(r.ref for r, _, _ in judged),
        )
    counted = f"{len(out)} of the {len(judged)}"
    extreme = max(out, key=lambda pair: abs(_number(pair[0])) * (1 if pair[1] == "high" else -1))
    record = extreme[0]
    most = {"high": "highest", "low": "lowest"}.get(word, "most extreme")
    sentence = (
        f"Yes: {counted} {name} readings {'was' if len(out) == 1 else 'were'} {word}; the "
        f"{most} was {_shown(record)} on {record.day} {cite([record])} ({span})."
    )
    # The verdict read every reading: they are its evidence, not facts to list again.
    every = tuple(r.ref for r, _, _ in judged)
    return Judgement(sentence, (record.ref,), (span, counted), evidence=every)


def _monitor_value(record: Record, monitor: Monitor) -> float | None:
    """The value ``monitor`` reads of ``record``: its component's (the systolic of a blood
    pressure panel), or its own when the record is that component filed on its own."""
    if monitor.component:
        for component in record.components:
            if component.code == monitor.component and component.value is not None:
                return component.value
        return record.value if _loinc(record) == monitor.component else None
    return record.value


def _monitor_readings(measures: Sequence[Record], monitor: Monitor) -> list[tuple[Record, float]]:
    """The ``measures`` that carry ``monitor``'s value, each with that value."""
    return [
        (r, v)
        for r in measures
        if _loinc(r) in monitor.loinc and (v := _monitor_value(r, monitor)) is not None
    ]


def _newest_reading(measures: Sequence[Record], monitor: Monitor) -> tuple[Record, float] | None:
    """The newest of ``measures`` that carries ``monitor``'s value, with that value."""
    found = _monitor_readings(measures, monitor)
    # Of one day's readings the panel, which holds both parts, stands for the day.
    return max(found, key=lambda rv: (rv[0].date or "", bool(rv[0].components))) if found else None


@dataclass
class _Reading:
    """One measurement judged against one or more targets (a blood pressure's systolic and
    diastolic targets are one reading's)."""

    record: Record
    shown: str
    verdicts: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def clause(self) -> str:
        failed = [v for v in self.verdicts if "not controlled" in v]
        verdict = failed[0] if failed else self.verdicts[0]
        sources = "; ".join(dict.fromkeys(self.sources))
        return (
            f"latest {plain_name(self.record.display)} {self.shown} on {self.record.day} "
            f"{cite([self.record])} is {verdict} "
            f"(target {' and '.join(self.targets)}; source: {sources})"
        )

    def spans(self) -> list[str]:
        return [f"target {' and '.join(self.targets)}", *self.sources]


def control(
    conditions: Sequence[Record], measures: Sequence[Record], monitors: Sequence[Monitor]
) -> Judgement | None:
    """Whether a condition is at its monitoring targets by the newest measurement of each.

    "Diabetes: latest Hemoglobin A1c 6.2 % on 2024-01-02 is at target (< 7 %, ADA …)."
    Several conditions judged by the same targets are named together, the verdict said once.
    Without conditions, the measure itself is judged ("Is my blood pressure under
    control?"). A reading with several targets (systolic, diastolic) is one clause, not
    controlled when any target is missed. None when no measure of the monitors was selected.
    """
    readings: dict[str, _Reading] = {}
    seen: set[str] = set()
    for monitor in monitors:
        if (newest := _newest_reading(measures, monitor)) is None:
            continue
        record, value = newest
        key = f"{monitor.measure}/{monitor.component}"
        if key in seen:  # one target per measure (the first listed)
            continue
        seen.add(key)
        met = monitor.met(float(show_number(value, record.unit)))
        shown = _shown(record) if monitor.component else show_value(value, record.unit)
        reading = readings.setdefault(record.ref, _Reading(record, shown))
        reading.verdicts.append(
            "at target (controlled)"
            if met
            else "above target (not controlled)"
            if "<" in monitor.comparator
            else "below target (not controlled)"
        )
        reading.targets.append(
            f"{monitor.comparator} {with_unit(display_number(monitor.target), monitor.unit)}"
        )
        reading.sources.append(monitor.source)
    if not readings:
        return None
    clauses = [r.clause() for r in readings.values()]
    spans = tuple(s for r in readings.values() for s in r.spans())
    refs = [c.ref for c in conditions] + list(readings)
    if not conditions:
        return Judgement(f"{'; '.join(c[0].upper() + c[1:] for c in clauses)}.", tuple(refs),
                         spans)  # fmt: skip
    named = "; ".join(f"{_plain(c.display)} {cite([c])}" for c in conditions)
    sentence = f"{named}: {'; '.join(clauses)}."
    return Judgement(sentence, tuple(refs), spans)


# The side of a defining target on which the condition holds: met "< 30" → obese at ">= 30".
_CONDITION_SIDE = {"<": "≥", "<=": ">", ">": "≤", ">=": "<"}


def still_met(
    condition: Record | None, measures: Sequence[Record], monitors: Sequence[Monitor]
) -> Judgement | None:
    """Whether a condition defined by a measure still holds, by that measure's newest value.

    "Not by the latest measure: Body Mass Index 27.7 kg/m² on 2020-04-23 is below the
    obesity threshold (obesity is ≥ 30 kg/m²; source: CDC …); the record lists Body mass
    index 30+ - obesity since 2014-04-10." ``condition`` is the record's entry, if any. None
    when no measure of ``monitors`` (each with ``defines``) was selected.
    """
    for monitor in monitors:
        if (newest := _newest_reading(measures, monitor)) is None:
            continue
        record, value = newest
        met = monitor.met(float(show_number(value, record.unit)))
        same_day = [
            monitor.met(float(show_number(v, r.unit)))
            for r, v in _monitor_readings(measures, monitor)
            if r.day == record.day
        ]
        if any(other != met for other in same_day):
            continue  # two readings of that day disagree: no verdict from either
        shown = _shown(record) if monitor.component else show_value(value, record.unit)
        name = monitor.condition
        threshold = with_unit(display_number(monitor.target), monitor.unit)
        rule = (
            f"{name} is {_CONDITION_SIDE[monitor.comparator]} {threshold}; source: {monitor.source}"
        )
        measured = f"{plain_name(record.display)} {shown} on {record.day} {cite([record])}"
        if met:
            opening = f"Not by the latest measure: {measured} is outside the {name} range"
        else:
            opening = f"Yes, by the latest measure: {measured} is in the {name} range"
        if condition is None:
            return Judgement(f"{opening} ({rule}).", (record.ref,), (rule,))
        since = f" since {condition.day}" if condition.day else ""
        listed = f"the record lists {_plain(condition.display)}{since} {cite([condition])}"
        sentence = f"{opening} ({rule}); {listed}."
        return Judgement(sentence, (record.ref, condition.ref), (rule,))
    return None


# "Did her prediabetes stay prediabetes?": asked the other way round from "has it crossed
# into diabetes?".
_STAYED_RE = re.compile(r"\b(?:stay\w*|remain\w*)\b", re.IGNORECASE)


def progression(
    condition: Record | None, measures: Sequence[Record], monitor: Monitor, question: str
) -> Judgement | None:
    """Whether a condition has turned into the one it becomes, by the newest reading of its
    measure against that condition's threshold (``monitor.becomes_at``).

    "No: the latest Hemoglobin A1c, 5.9% on 2023-12-16, is below the diabetes threshold
    (diabetes is ≥ 6.5%; source: ADA …): still in the prediabetes range, not diabetes
    (controlled)." Asked whether it stayed ("did it stay prediabetes?"), the yes and no
    change places. None when no reading of the measure was selected.
    """
    if monitor.becomes is None or monitor.becomes_at is None or monitor.becomes_source is None:
        return None
    if (newest := _newest_reading(measures, monitor)) is None:
        return None
    record, value = newest
    shown_value = float(show_number(value, record.unit))
    crossed = shown_value >= monitor.becomes_at
    threshold = with_unit(display_number(monitor.becomes_at), monitor.unit)
    rule = f"{monitor.becomes} is ≥ {threshold}; source: {monitor.becomes_source}"
    measured = f"{plain_name(record.display)}, {show_value(value, record.unit)} on {record.day}"
    normal = monitor.met(shown_value)
    if _STAYED_RE.search(question):  # stayed what it was: neither crossed nor back to normal
        said = "Yes" if not crossed and not normal else "No"
    else:
        said = "Yes" if crossed else "No"
    if crossed:
        state = f"in the {monitor.becomes} range (not controlled)"
        side = "at or above"
    else:
        where = "normal range" if normal else f"{monitor.condition} range"
        state = f"in the {where}, not {monitor.becomes} (controlled)"
        side = "below"
    sentence = (
        f"{said}: the latest {measured} {cite([record])}, is {side} the {monitor.becomes} "
        f"threshold ({rule}): {state}."
    )
    refs: tuple[str, ...] = (record.ref,)
    if condition is not None:
        since = f" since {condition.day}" if condition.day else ""
        sentence += f" The record lists {_plain(condition.display)}{since} {cite([condition])}."
        refs += (condition.ref,)
    return Judgement(sentence, refs, (rule,))


def payer_judgement(records: Sequence[Record], *, history: bool = False) -> Judgement | None:
    """Who pays: the insurer of the newest selected claim, then earlier insurers.

    "On the latest claim (2024-03-01) the insurer is Medicare [Claim/…]; earlier:
    private (last claim 2012-05-02) [Claim/…]." None when no selected claim names one.
    """
    by_payer: dict[str, list[Record]] = {}
    for record in records:
        if record.resource_type in CLAIM_TYPES:
            for name in stated_insurers(record.resource, record.text):
                by_payer.setdefault(name, []).append(record)
    if not by_payer:
        return None
    newest = {name: max(claims, key=lambda r: r.date or "") for name, claims in by_payer.items()}
    ordered = sorted(newest.items(), key=lambda kv: kv[1].date or "", reverse=True)
    if history:  # "which insurers have I had?": each payer with its first and last claim
        spans, cited = [], []
        for name, last in ordered:
            first = min(by_payer[name], key=lambda r: r.date or "")
            when = (
                f"claims from {first.day} {cite([first])} to {last.day} {cite([last])}"
                if first.day != last.day
                else f"a claim on {last.day} {cite([last])}"
            )
            spans.append(f"{name} ({when})")
            cited += [first.ref, last.ref]
        every = tuple(dict.fromkeys(r.ref for claims in by_payer.values() for r in claims))
        sentence = f"Payers in the record: {'; '.join(spans)}."
        return Judgement(sentence, tuple(dict.fromkeys(cited)), evidence=every)
    (name, last), earlier = ordered[0], ordered[1:]
    sentence = f"On the latest claim ({last.day}) the insurer is {name} {cite([last])}"
    if earlier:
        before = [f"{n} (last claim {r.day}) {cite([r])}" for n, r in earlier]
        sentence += f"; earlier: {'; '.join(before)}"
    refs = tuple(r.ref for _, r in ordered)
    # A payer's newest claim and the explanation of benefit of the same day both state it.
    same_day = tuple(r.ref for name, last in ordered for r in by_payer[name] if r.day == last.day)
    return Judgement(f"{sentence}.", refs, evidence=tuple(dict.fromkeys(refs + same_day)))


# Questions about a condition's or a measure's control against its target.
CONTROL_RE = re.compile(
    r"\b(?:controlled|under\s+control|control|managed|at\s+target|on\s+target|target|goal"
    r"|where\s+(?:it|they)\s+should\s+be)\b",
    re.IGNORECASE,
)
# "How long have I had …": a duration from the onset.
HOW_LONG_RE = re.compile(r"\bhow\s+long\b|\bhow\s+many\s+years\b", re.IGNORECASE)
# Questions about death or being alive.
DEATH_RE = re.compile(
    r"\b(?:die[ds]?|dead|deceased|death|pass(?:ed)?\s+away|alive|(?<!for\sa\s)living"
    r"(?!\s+(?:with|situation|arrangements?|alone|conditions?|will|room))"
    rf"|{PASSED_ON})\b",
    re.IGNORECASE,
)
_ALIVE_RE = re.compile(
    r"\b(?:alive|(?<!for\sa\s)living(?!\s+(?:with|situation|arrangements?|alone)))\b",
    re.IGNORECASE,
)


def _add_years(day: date, years: float) -> date:
    whole = int(years)
    try:
        return day.replace(year=day.year + whole)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + whole, day=28)


def vaccine_due(
    records: Sequence[Record], kb: Knowledge, now: date, *, annual_only: bool = False
) -> list[Judgement]:
    """For each vaccine with a known interval, its last dose and whether a dose is due now.

    "Not due: last Td (adult) on 2019-10-19 [Immunization/…]; next due 2029-10-19 (every 10
    years; source: CDC …)." A series without a booster says so. ``annual_only``: only the
    yearly vaccines (flu), as for a child, whose series follow the childhood schedule.
    """
    groups: dict[str, list[Record]] = {}
    intervals: dict[str, VaccineInterval] = {}
    for record in records:
        if record.resource_type == "Procedure":
            # A shot filed as a procedure ("Vaccination for diphtheria, pertussis, and
            # tetanus") is a dose of each vaccine its display names.
            for shot in _procedure_vaccines(record, kb):
                groups.setdefault(shot.vaccine, []).append(record)
                intervals[shot.vaccine] = shot
            continue
        if record.resource_type != "Immunization":
            continue
        for coding in record.codes:
            if (interval := kb.vaccine_interval(coding.code)) is not None:
                groups.setdefault(interval.vaccine, []).append(record)
                intervals[interval.vaccine] = interval
                break
    found = []
    for vaccine, doses in groups.items():
        interval = intervals[vaccine]
        if annual_only and not interval.annual:
            continue
        last = max(doses, key=lambda r: r.date or "")
        if not last.day:
            continue
        if interval.annual or interval.years:
            years = 1 if interval.annual else interval.years or 0
            every = "every year" if interval.annual else f"every {interval.years:g} years"
            found.append(_next_due(last, years, f"({every}; source: {interval.source})", now))
        else:
            head = f"last {plain_name(last.display)} on {last.day} {cite([last])}"
            rule = f"no routine booster (source: {interval.source})"
            found.append(Judgement(f"Series recorded: {head}; {rule}.", (last.ref,), (rule,)))
    return found


def _next_due(last: Record, years: float, rule: str, now: date) -> Judgement:
    """Whether a repeat of ``last`` (a dose, a screening test) is due ``years`` after it:
    "Not due: last Td (adult) on 2019-10-19 [Immunization/…]; next due 2029-10-19 (…)."
    ``rule`` is the interval and its source as the answer shows them."""
    next_due = _add_years(date.fromisoformat(last.day or ""), years)
    verdict = "Due now" if next_due <= now else "Not due"
    rule = f"next due {next_due.isoformat()} {rule}"
    head = f"last {plain_name(last.display)} on {last.day} {cite([last])}"
    return Judgement(f"{verdict}: {head}; {rule}.", (last.ref,), (rule,))


def screening_due(
    records: Sequence[Record], interval: ScreeningInterval, now: date
) -> Judgement | None:
    """When a screening test is next due at average risk, from its last time.

    "Not due: last Colonoscopy on 2019-02-12 [Procedure/…]; next due 2029-02-12 at average
    risk (every 10 years; source: USPSTF …)." None when none of ``records`` is dated.
    """
    dated = [r for r in records if r.day]
    if not dated:
        return None
    last = max(dated, key=lambda r: r.day or "")
    rule = f"at average risk (every {interval.years:g} years; source: {interval.source})"
    return _next_due(last, interval.years, rule, now)


def _procedure_vaccines(record: Record, kb: Knowledge) -> list[VaccineInterval]:
    """The vaccines with an interval that a vaccination filed as a procedure gave."""
    display = " ".join(c.display for c in record.codes).lower() or record.text.lower()
    found = []
    for interval in kb.vaccine_intervals:
        concept = kb.by_name.get(interval.vaccine)
        if (
            concept is not None
            and any(term in display for term in concept.procedure_terms)
            and any(term in display for term in concept.terms)
        ):
            found.append(interval)
    return found


def child_vaccines(
    records: Sequence[Record],
    kb: Knowledge,
    birth: date,
    now: date,
    asked: frozenset[str] = frozenset(),
) -> Judgement | None:
    """A child's shots against the routine childhood schedule for their age.

    "Up to date for age 8 by the childhood schedule: tetanus (DTaP) 5 of 5 doses due by now
    (last 2017-05-19) [Immunization/…]; …; next: tetanus (Tdap) dose 6 by age 13 (source:
    CDC …)." Doses are counted one a day. ``asked``: the vaccine concepts the question
    names ("is he due for his MMR?"); all of the schedule when empty, which needs every
    dose the record holds (the selector adds them). None when nothing is due yet.
    """
    months = whole_months(birth, now)
    doses: dict[str, list[Record]] = {}
    for record in records:
        if record.resource_type != "Immunization":
            continue
        for coding in record.codes:
            if (series := kb.child_series(coding.code)) is not None:
                doses.setdefault(series.vaccine, []).append(record)
                break
    behind: list[str] = []
    met: list[str] = []
    coming: list[tuple[int, str]] = []
    refs: list[str] = []
    # Counted and scheduled numbers ("5 of 5", "dose 6 by age 13 years"): computed from the
    # cited doses and the schedule file, not stated by a record.
    computed: list[str] = []
    for series in kb.child_schedule:
        if asked and series.vaccine not in asked:
            continue
        given = doses.get(series.vaccine, [])
        days = sorted({r.day for r in given if r.day})
        due = series.doses_due(months)
        name = series.label or series.vaccine
        cites = cite(sorted(given, key=lambda r: r.date or "")[-1:]) if given else ""
        last = f" (last {days[-1]}) {cites}" if days else ""
        if due and len(days) < due:
            computed.append(f"{len(days)} of {due} doses")
            behind.append(f"{name} {computed[-1]} due by now{last}")
        elif due:
            computed.append(f"{min(len(days), due)} of {due}")
            met.append(f"{name} {computed[-1]}{last}")
        if (step := series.next_step(months)) is not None and len(days) < step[1]:
            computed.append(f"dose {len(days) + 1} by age {_age_words(step[0])}")
            coming.append((step[0], f"{name} {computed[-1]}"))
        refs += [r.ref for r in given]
    if not behind and not met:
        return None
    age = _age_words(months)
    computed.append(f"for age {age}")
    parts = []
    if behind:
        parts.append(f"Behind for age {age} by the childhood schedule: {'; '.join(behind)}.")
        if met:
            parts.append(f"Up to date: {'; '.join(met)}.")
    else:
        parts.append(f"Up to date for age {age} by the childhood schedule: {'; '.join(met)}.")
    if coming:
        soon = [text for _, text in sorted(coming)[:3]]
        parts.append(f"Next: {'; '.join(soon)}.")
    source = f"source: {CHILD_SCHEDULE_SOURCE}"
    parts.append(f"({source}; catch-up schedules and medical reasons can differ.)")
    spans = (source, *sorted(set(computed), key=len, reverse=True))
    return Judgement(" ".join(parts), tuple(dict.fromkeys(refs)), spans)


def _age_words(months: int) -> str:
    """Ages as the schedule says them: "4 months", "18 months", "7 years"."""
    if months < 24:
        return f"{months} month{'s' if months != 1 else ''}"
    return f"{months // 12} years"


def duration(records: Sequence[Record], now: date) -> list[Judgement]:
    """How long each condition has been recorded: from its earliest onset to its end or now."""
    by_name: dict[str, list[Record]] = {}
    for record in records:
        if record.resource_type in ("Condition", "AllergyIntolerance") and record.day:
            by_name.setdefault(record.display, []).append(record)
    found = []
    for name, group in by_name.items():
        first = min(group, key=lambda r: r.date or "")
        ended = next((r.end_date[:10] for r in group if r.end_date), None)
        until = date.fromisoformat(ended) if ended else now
        years = age_on(first.day or "", until)
        if years is None:
            continue
        span = f"{years} years" if years != 1 else "1 year"
        tail = f" until it resolved on {ended}" if ended else ""
        sentence = f"{_plain(name)}: {span}, since {first.day}{tail} {cite([first])}."
        found.append(Judgement(sentence, (first.ref,), (span,)))
    return found


def survival(condition: Record, patient: Record) -> Judgement | None:
    """How long the patient lived after a condition was first recorded: from its onset to
    the date of death. None when the patient's death or the onset is not recorded."""
    died = patient.resource.get("deceasedDateTime")
    if not isinstance(died, str) or not died or not condition.day:
        return None
    start, end = date.fromisoformat(condition.day), date.fromisoformat(died[:10])
    if end < start:
        return None
    months = whole_months(start, end)
    if months >= 12:
        years, rest = divmod(months, 12)
        span = f"{years} year{'s' if years != 1 else ''}"
        span += f" and {rest} month{'s' if rest != 1 else ''}" if rest else ""
    elif months >= 1:
        span = f"{months} month{'s' if months != 1 else ''}"
    else:
        days = (end - start).days
        span = f"{days} day{'s' if days != 1 else ''}"
    sentence = (
        f"{span[0].upper()}{span[1:]}: {_plain(condition.display)} was first recorded on "
        f"{condition.day} {cite([condition])} and the patient died on {died[:10]} "
        f"{cite([patient])}."
    )
    return Judgement(sentence, (condition.ref, patient.ref), (span,))


def death(patient: Record, question: str, age_at_death: int | None) -> Judgement:
    """Whether the patient died (and when, at what age), asked either way round."""
    died = patient.resource.get("deceasedDateTime")
    alive_asked = bool(_ALIVE_RE.search(question))
    cited = cite([patient])
    if isinstance(died, str) and died:
        age = f" at age {age_at_death}" if age_at_death is not None else ""
        if not YES_NO_RE.match(question):  # "When did she pass away?"
            return Judgement(f"Died on {died[:10]}{age} {cited}.", (patient.ref,))
        answer = "No" if alive_asked else "Yes"
        return Judgement(f"{answer}: died on {died[:10]}{age} {cited}.", (patient.ref,))
    if patient.resource.get("deceasedBoolean") is True:
        answer = "No" if alive_asked else "Yes"
        return Judgement(
            f"{answer}: the record marks the patient as deceased {cited}.", (patient.ref,)
        )
    answer = "Yes" if alive_asked else "No"
    return Judgement(f"{answer}: the record shows no date of death {cited}.", (patient.ref,))


# "Have you ever smoked?", "Did he use to smoke?", "Did he smoke?" (the past too): a former
# smoker answers "Yes".
_EVER_SMOKED_RE = re.compile(
    r"^\W*(?:did|was|were|had)\b"
    r"|\b(?:ever|used\s+to|use\s+to|in\s+the\s+past|previously|history)\b",
    re.IGNORECASE,
)


def smoking(records: Sequence[Record], question: str, kb: Knowledge) -> Judgement | None:
    """Whether the patient smokes (or ever smoked), from the latest smoking-status value.

    None when the question is not a yes/no one or no smoking status with a known value
    (``social_findings.toml``) is among ``records``.
    """
    concept = kb.concept("smoking status")  # social.toml: its codes
    asks_quit = bool(_QUIT_RE.search(question))
    if concept is None or not (YES_NO_RE.match(question) or asks_quit):
        return None
    statuses = [
        (r, state)
        for r in records
        if concept.codes & {c.code for c in r.codes}
        and (state := kb.smoking_state(r.value_text or "")) is not None
    ]
    if not statuses:
        return None
    if asks_quit:
        return _quit(sorted(statuses, key=lambda pair: pair[0].date or ""))
    record, state = max(statuses, key=lambda pair: pair[0].date or "")
    ever = bool(_EVER_SMOKED_RE.search(question))
    if state == "current" or (ever and state == "former"):
        lead = "Yes"
    else:
        lead = "No, not now" if state == "former" else "No"
    value = plain_name(record.value_text or "")
    sentence = f"{lead}: the latest smoking status, on {record.day}, is {value} {cite([record])}."
    return Judgement(sentence, (record.ref,))


# "When did she quit smoking?", "how long ago did he stop smoking?"
_QUIT_RE = re.compile(
    r"\b(?:quit|quitting|stop(?:ped|ping)?|g[ai]ve\s+up|giving\s+up)\b.{0,30}\b(?:smok|tobacco"
    r"|cigarette)",
    re.IGNORECASE,
)


def _quit(statuses: Sequence[tuple[Record, str]]) -> Judgement:
    """When the statuses, oldest first, turn from current smoking to former: between the
    last "current" and the first "former" after it; never a day the record does not give."""
    last_current = None
    for i, (_, state) in enumerate(statuses):
        if state == "current":
            last_current = i
    newest, state = statuses[-1]
    if state != "former":
        value = plain_name(newest.value_text or "")
        return Judgement(
            f"The record does not show that the patient quit: the latest smoking status, on "
            f"{newest.day}, is {value} {cite([newest])}.",
            (newest.ref,),
        )
    if last_current is None:
        first = next(r for r, s in statuses if s == "former")
        return Judgement(
            f"The record does not say when: every smoking status found, from {first.day} "
            f"{cite([first])} to {newest.day} {cite([newest])}, is a former smoker's "
            f"({plain_name(newest.value_text or '')}).",
            (first.ref, newest.ref),
        )
    before = statuses[last_current][0]
    after = next(r for r, s in statuses[last_current + 1 :] if s == "former")
    return Judgement(
        f"Between {before.day} and {after.day}: the smoking status was "
        f"{plain_name(before.value_text or '')} on {before.day} {cite([before])} and "
        f"{plain_name(after.value_text or '')} on {after.day} {cite([after])}.",
        (before.ref, after.ref),
    )


def _plain(display: str) -> str:
    return re.sub(r"\s*\([^)]*\)", "", display).strip()


__all__ = [
    "CONTROL_RE",
    "DEATH_RE",
    "DUE_RE",
    "HOW_LONG_RE",
    "YES_NO_RE",
    "Judgement",
    "better_direction",
    "blood_pressure",
    "cite",
    "control",
    "death",
    "duration",
    "payer_judgement",
    "range_judgement",
    "screening_due",
    "series_value",
    "smoking",
    "trend",
    "vaccine_due",
]
