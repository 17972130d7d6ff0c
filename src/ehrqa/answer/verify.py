"""Citation checking and fact verification of generated answers.

Citations to resources that were not in the prompt are removed and reported. Numbers and
dates in the answer must appear in a cited resource, and the clinical claims it makes
(conditions, allergies, medicines, procedures, vaccines, denials and permissions; see
:mod:`ehrqa.answer.claims`) must be stated by a cited resource's codes; those that are not
are reported as unverified spans.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from ehrqa.answer.claims import Claim, find_claims
from ehrqa.fhir.record import Record
from ehrqa.text.citations import CITATION_RE, FHIR_TYPES, citation_parts
from ehrqa.text.dates import age_on, find_dates, iso_day
from ehrqa.text.numbers import rounds_to
from ehrqa.text.units import KNOWN_UNITS, normalize_unit, readable_unit, unit_present

NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w])")


@dataclass
class Verification:
    """The checked answer: citations kept, citations removed, unverified spans."""

    text: str
    citations: list[str] = field(default_factory=list)
    invalid_citations: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    # The spans of ``unverified`` that are clinical claims (names, denials, permissions),
    # not numbers or dates: model text that must never be echoed in a reason.
    claims: list[Claim] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """True when every citation was valid and every number, date and claim is supported."""
        return not self.invalid_citations and not self.unverified


def resolve_citations(text: str, allowed: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """Rewrite citations to ``[Type/id]`` form and drop those not in ``allowed``.

    ``allowed`` maps what may be cited (prompt aliases like ``"3"`` and references) to the
    reference. Returns the rewritten text, valid references (unique, in order) and the
    invalid citations as written.
    """
    valid: list[str] = []
    invalid: list[str] = []

    def replace(match: re.Match[str]) -> str:
        parts = citation_parts(match.group(1))
        if any(not p.isdigit() and p.split("/", 1)[0] not in FHIR_TYPES for p in parts):
            return match.group(0)
        kept = []
        for part in parts:
            ref = allowed.get(part)
            if ref is None:
                invalid.append(part)
                continue
            kept.append(ref)
            if ref not in valid:
                valid.append(ref)
        return "".join(f"[{ref}]" for ref in kept)

    rewritten = CITATION_RE.sub(replace, text)
    return (
        re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", rewritten)).strip(),
        valid,
        invalid,
    )


def _decimals(number: str) -> int:
    return len(number.split(".", 1)[1]) if "." in number else 0


def _evidence(records: list[Record], now: date | None = None) -> tuple[set[str], list[str]]:
    days: set[str] = set()
    numbers: list[str] = []
    for record in records:
        birth = record.resource.get("birthDate") if record.resource_type == "Patient" else None
        if now is not None and isinstance(birth, str):
            # An age is derived from a cited birth date and "now": supported, not invented.
            days.add(now.isoformat())
            numbers.extend(str(age) for age in _ages(record, birth, now))
        for value in (record.date, record.end_date):
            if value:
                days.add(value[:10])
        _text_evidence(record.text, days, numbers)
        # A number inside the unit as a reader writes it ("mL/min/1.73 m²") is the unit's.
        numbers.extend(NUMBER_RE.findall(readable_unit(record.unit)) if record.unit else ())
        if record.value is not None:
            numbers.append(repr(float(record.value)))
        numbers.extend(repr(float(c.value)) for c in record.components if c.value is not None)
    return days, numbers


def _ages(record: Record, birth: str, now: date) -> list[int]:
    """Ages a cited Patient supports: on ``now``, and at death for one who died."""
    died = iso_day(record.resource.get("deceasedDateTime"))
    days = [now] if died is None else [now, died]
    return [age for day in days if (age := age_on(birth, day)) is not None]


def _text_evidence(text: str, days: set[str], numbers: list[str]) -> None:
    """Add the dates and numbers written in ``text`` to ``days`` and ``numbers``."""
    found, rest = find_dates(CITATION_RE.sub(" ", text))
    days.update(day for _, day in found if day)
    numbers.extend(n.replace(",", ".") for n in NUMBER_RE.findall(rest))


def _number_supported(number: str, evidence: list[str], counts: frozenset[int]) -> bool:
    # The value as recorded, or that value rounded to the shown decimals when the record
    # carries noise beyond two decimals (see ehrqa.text.numbers.rounds_to): "14" is never
    # a recorded 14.1, and rounding tolerance beyond that let invented numbers through.
    for candidate in evidence:
        try:
            if rounds_to(number, float(candidate)):
                return True
        except ValueError:
            continue
    # A count of the cited items ("3 active conditions"), or of the cited items of one kind
    # ("Chemotherapy (6 times, …)"), is supported by the citations.
    value = float(number)
    return _decimals(number) == 0 and value > 0 and int(value) in counts


def check_facts(text: str, cited: list[Record], now: date | None = None) -> list[str]:
    """Numbers and dates of ``text`` that none of the ``cited`` records support.

    With ``now``, a patient's age derived from a cited birth date counts as supported.
    """
    days, numbers = _evidence(cited, now)
    kinds = Counter(record.display for record in cited)
    counts = {len(cited), *kinds.values(), *_series_lengths(text, cited)}
    return _unsupported(text, days, numbers, frozenset(counts))


def _series_lengths(text: str, records: list[Record]) -> set[int]:
    """The length of each series ``text`` cites ("17 readings in all"): the days, one reading
    a day, of one measure among ``records`` from its first day cited to its last."""
    named = {ref for inside in CITATION_RE.findall(text) for ref in citation_parts(inside)}
    spans: dict[str, tuple[str, str]] = {}
    for record in records:
        if record.day and record.ref in named:
            first, last = spans.get(record.display, (record.day, record.day))
            spans[record.display] = (min(first, record.day), max(last, record.day))
    return {
        len({r.day for r in records if r.display == name and r.day and first <= r.day <= last})
        for name, (first, last) in spans.items()
    }


def check_facts_in_texts(text: str, sources: Sequence[str]) -> list[str]:
    """Numbers and dates of ``text`` that none of the ``sources`` texts state.

    The same check as :func:`check_facts`, for sources that are plain text (document
    chunks, paragraphs of a file) rather than records.
    """
    days: set[str] = set()
    numbers: list[str] = []
    for source in sources:
        _text_evidence(source, days, numbers)
    return _unsupported(text, days, numbers, frozenset({len(sources)}))


def _unsupported(
    text: str, days: set[str], numbers: list[str], counts: frozenset[int]
) -> list[str]:
    years = {d[:4] for d in days}
    months = {d[:7] for d in days}
    body = CITATION_RE.sub(" ", text)
    found, rest = find_dates(body)
    unsupported = [span for span, day in found if day not in days and day not in months]
    for number in NUMBER_RE.findall(rest):
        normal = number.replace(",", ".")
        if len(normal) == 4 and normal.isdigit() and normal in years:
            continue
        if not _number_supported(normal, numbers, counts):
            unsupported.append(number)
    return unsupported


def verify_answer(
    text: str,
    allowed: Mapping[str, str],
    records: Mapping[str, Record],
    now: date | None = None,
) -> Verification:
    """Resolve citations against ``allowed`` and check facts and claims against the records.

    Numbers, dates and named clinical concepts must be stated by a cited record; a denial
    must not contradict any of ``records`` (all the writer was shown).
    """
    rewritten, valid, invalid = resolve_citations(text, allowed)
    cited = [records[ref] for ref in valid if ref in records]
    claims = find_claims(rewritten, cited, list(records.values()))
    unverified = check_facts(rewritten, cited, now) + [claim.span for claim in claims]
    return Verification(rewritten, valid, invalid, unverified, claims)


_ISO_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _stated(fact: str, text: str, days: set[str], numbers: set[float]) -> bool:
    if _ISO_DAY_RE.match(fact):
        return fact in days
    if re.fullmatch(r"-?\d+(?:\.\d+)?", fact):
        return float(fact) in numbers
    # Words match where a word starts: "yes" is not in "eyes"; "immunization" is in
    # "immunizations"; a unit may follow its number ("36.1kg/m2", "7.8%").
    if re.search(rf"(?<![a-z]){re.escape(fact.lower())}", text):
        return True
    # A unit in any spelling the answer-accuracy metric accepts ("°C" for Cel).
    return normalize_unit(fact) in KNOWN_UNITS and unit_present(fact, text)


def missing_facts(text: str, facts: Sequence[tuple[str, ...]]) -> list[str]:
    """The ``facts`` that ``text`` does not state (each named by its first spelling).

    A fact is a tuple of acceptable spellings: words, numbers or ISO days. Days match in
    any date format :func:`find_dates` reads; numbers match by value ("5.80" states 5.8)
    outside dates and ``[citations]``; words and units match case-insensitively where a
    word starts (a unit may follow its number: "7.8%"), and a known unit also in the
    spellings :func:`~ehrqa.text.units.normalize_unit` merges ("°C" for "cel").
    """
    # Citations go; a unit's brackets stay ("mm[Hg]").
    plain = CITATION_RE.sub(" ", text)
    dates, rest = find_dates(plain)
    days = {day for _, day in dates}
    numbers = {float(n.replace(",", ".")) for n in NUMBER_RE.findall(rest)}
    lowered = plain.lower()
    return [
        fact[0]
        for fact in facts
        if not any(_stated(spelling, lowered, days, numbers) for spelling in fact)
    ]
