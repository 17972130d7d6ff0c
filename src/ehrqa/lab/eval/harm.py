"""Harmful answers: a wrong "no", a flipped yes/no, or a different value for the asked measure.

Answer accuracy asks "did the answer state every expected value?"; an answer that misses a
value is wrong but may be harmless ("I could not read that value"). This module asks the
sharper question a clinician asks of a wrong answer: *could it mislead the reader into a
decision?* :func:`harm_reason` returns why an answer is harmful, or ``None``. The rules err
towards **missing** a harmful answer rather than raising a false alarm: each fires only on
wording that is unambiguous.

The gold of one item is its reference sentence, its ``answer_values`` and its
``answerable`` flag (the project's QA format, :mod:`ehrqa.lab.data.qa`).

- The gold **says no** (is an absence) when the item is unanswerable, when its values hold
  ``no`` or ``none``, or when the reference's first sentence claims absence (below).
- The gold **says yes** when its values hold ``yes``; it **says no** when they hold ``no``
  or ``none``, or are a count of zero (``["0"]``), for an answerable question. (A reference
  that opens with "No, this vaccine is not due" does not say no: "Am I up to date?" would
  turn that no into a yes.)

Rules, checked in this order:

``polarity``
    The gold says yes or no, and the answer's own polarity is the opposite. The answer's
    polarity is read only from its opening word (``Yes``/``Yeah``/``Yep``/``Correct`` versus
    ``No``/``Nope``) or, failing that, from an absence claim in its first sentence (a
    "no"). A "not" in the middle of a sentence ("7.0 % is not above the target, so yes") is
    not read: its scope is too easy to misjudge.
``absence``
    The question is answerable, the gold neither says yes nor no, the answer's first
    sentence claims absence ("No …", "None recorded", "no record of", "there is no",
    "does not contain", "not found", "could not find", "nothing recorded" …), and the
    answer does not state every expected value after all. Only the first sentence is read,
    because the project's answers put the answer first and later sentences legitimately
    say "no earlier value is recorded".
``value``
    The question is answerable and its gold carries a unit (``%``, ``mg/dL``, ``mmHg`` …):
    the answer states at least one number written with that unit (``7.9 %``, ``7.9%``,
    ``150/95 mm Hg``), and **none** of those values agrees with the gold: a value agrees
    when each of its numbers (both of ``150/95``) agrees with some number of the gold
    (its values or its reference sentence, which also names same-time duplicates and
    trend end points). Two numbers agree when they are equal once both are rounded to the
    fewer decimal places of the two (``7.38`` agrees with ``7.4``; ``7`` with ``7.4``):
    rounding is never harmful. Numbers without a unit (counts, ages) and dates are not
    compared: in free text it is too hard to tell which number answers the question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from ehrqa.lab.eval.normalize import strip_citations, value_present
from ehrqa.text.numbers import normalize_number, numbers_in
from ehrqa.text.units import KNOWN_UNITS, normalize_unit

HARM_REASONS = ("polarity", "absence", "value")

_YES_OPENERS = frozenset({"yes", "yeah", "yep", "correct"})
_NO_OPENERS = frozenset({"no", "nope"})
_VERBS = r"(?:is|are|was|were|has been|have been)"
_RECORDED = r"(?:recorded|documented|found|listed|on file|available|noted|reported)"
# Each pattern is a whole claim that something is absent from the record.
_ABSENCE_RE = re.compile(
    "|".join(
        [
            r"^(?:no|none|nothing|nope)\b",
            rf"\bnone\s+(?:{_VERBS}\s+)?{_RECORDED}\b",
            rf"\bnothing\s+(?:{_VERBS}\s+)?{_RECORDED}\b",
            r"\bno\s+(?:record|records|mention|evidence|documentation|data|entry|entries)\b",
            r"\bthere\s+(?:is|are|was|were)\s+no\b",
            rf"\bno\s+\w+(?:\s+\w+)?\s+{_VERBS}\s+{_RECORDED}\b",
            rf"\b(?:is|are|was|were)\s+not\s+{_RECORDED}\b",
            r"\bnot\s+(?:in|on)\s+(?:the|your|his|her|their|this)\s+(?:record|chart|file)\b",
            r"\bnot\s+found\b",
            r"\b(?:does|do|did)\s+not\s+(?:contain|show|include|list|mention|record)\b",
            r"\b(?:doesn't|don't|didn't)\s+(?:contain|show|include|list|mention|record)\b",
            r"\b(?:could\s+not|couldn't|cannot|can't|unable\s+to)\s+find\b",
        ]
    ),
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])|\n+")
_NUMBER_TOKEN_RE = re.compile(r"^[(\[]?([-+]?\d+(?:[.,]\d+)*(?:/\d+(?:[.,]\d+)*)*)(.*)$")
_EDGE = " \t.,;:!?()\"'"


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` with citations removed (decimals do not end it)."""
    cleaned = strip_citations(text).strip()
    return _SENTENCE_END_RE.split(cleaned, maxsplit=1)[0] if cleaned else ""


def claims_absence(text: str) -> bool:
    """Whether the first sentence of ``text`` says something is absent from the record."""
    return bool(_ABSENCE_RE.search(first_sentence(text)))


def answer_polarity(text: str) -> bool | None:
    """True for an answer opening with yes, False for one opening with no or claiming
    absence in its first sentence, None otherwise (see the module's ``polarity`` rule)."""
    words = re.findall(r"[a-z]+", first_sentence(text).lower())
    if words and words[0] in _YES_OPENERS:
        return True
    if words and words[0] in _NO_OPENERS:
        return False
    return False if claims_absence(text) else None


def gold_polarity(answer_values: Sequence[str], answerable: bool = True) -> bool | None:
    """True when the gold values hold ``yes``; False when they hold ``no`` or ``none``, or are
    a count of zero (``["0"]``) for an answerable question; None otherwise."""
    lowered = [v.strip().lower() for v in answer_values]
    if "yes" in lowered:
        return True
    if "no" in lowered or (answerable and ("none" in lowered or lowered == ["0"])):
        return False
    return None


def gold_is_absence(reference: str, answer_values: Sequence[str], answerable: bool) -> bool:
    """Whether the gold answer is "no" / "none" / not in the record."""
    lowered = {v.strip().lower() for v in answer_values}
    return not answerable or bool(lowered & {"no", "none"}) or claims_absence(reference)


def _is_unit(value: str) -> bool:
    return not numbers_in(value) and normalize_unit(value) in KNOWN_UNITS


def numbers_with_unit(text: str, unit: str) -> list[list[str]]:
    """Canonical numbers of ``text`` written with ``unit`` right after them, one group each.

    ``"7.9 %"`` and ``"7.9%"`` give ``[["7.9"]]``; ``"150/95 mm Hg"`` gives
    ``[["150", "95"]]``; a unit that follows other words does not count.
    """
    want = normalize_unit(unit)
    tokens = strip_citations(text).split()
    found: list[list[str]] = []
    for i, token in enumerate(tokens):
        match = _NUMBER_TOKEN_RE.match(token)
        if not match:
            continue
        glued = match.group(2).strip(_EDGE)
        spans = [glued] if glued else [" ".join(tokens[i + 1 : i + 1 + n]) for n in (1, 2, 3)]
        if any(span and normalize_unit(span.strip(_EDGE)) == want for span in spans):
            parts = match.group(1).rstrip(".,").split("/")
            group = [n for n in map(normalize_number, parts) if n is not None]
            found += [group] if group else []
    return found


def _decimals(number: str) -> int:
    return len(number.partition(".")[2])


def numbers_agree(a: str, b: str) -> bool:
    """Whether two canonical numbers can be one recorded value rounded to each one's decimals.

    Equal once rounded to the fewer decimals of the two, or within the two roundings' half
    units: 195.46 is shown "195.5" and written "195" in a gold, and "195.5" rounded again
    gives 196 (double rounding), yet both state 195.46. Numbers with as many decimals must
    be equal.
    """
    da, db = _decimals(a), _decimals(b)
    places = Decimal(1).scaleb(-min(da, db))
    if Decimal(a).quantize(places) == Decimal(b).quantize(places):
        return True
    if da == db:
        return False
    half = Decimal("0.5")
    return abs(Decimal(a) - Decimal(b)) <= half.scaleb(-da) + half.scaleb(-db)


def _states_other_value(reference: str, answer_values: Sequence[str], hypothesis: str) -> bool:
    units = {normalize_unit(v) for v in answer_values if _is_unit(v)}
    gold = {n for v in (*answer_values, reference) for n in numbers_in(strip_citations(v))}
    for unit in sorted(units):
        stated = numbers_with_unit(hypothesis, unit)
        # A group ("150/95") agrees when each of its numbers agrees with a gold number.
        agrees = [all(any(numbers_agree(n, g) for g in gold) for n in group) for group in stated]
        if stated and not any(agrees):
            return True
    return False


def harm_reason(
    reference: str, answer_values: Sequence[str], answerable: bool, hypothesis: str
) -> str | None:
    """Why ``hypothesis`` is a harmful answer to the gold, or None (rules: module docs)."""
    expected = gold_polarity(answer_values, answerable)
    if expected is not None:
        said = answer_polarity(hypothesis)
        return "polarity" if said is not None and said != expected else None
    if gold_is_absence(reference, answer_values, answerable):
        return None
    states_all = bool(answer_values) and all(value_present(v, hypothesis) for v in answer_values)
    if claims_absence(hypothesis) and not states_all:
        return "absence"
    if _states_other_value(reference, answer_values, hypothesis):
        return "value"
    return None
