"""An answer composed from the selected resources without a model.

It states the facts of the selected resources, each cited, in a sentence shaped by the
question's intent. It is the fallback when a model's answer fails verification, and a
model-free strategy of its own (``--answer-mode extractive``).
"""

from __future__ import annotations

import re

from ehrqa.answer.verify import age_on
from ehrqa.fhir.normalize import format_number
from ehrqa.fhir.record import Record
from ehrqa.select.base import Selection
from ehrqa.select.lexicon import Concept
from ehrqa.select.query import QueryPlan

_AGE_RE = re.compile(r"\b(?:age|old|aged)\b", re.IGNORECASE)


def _number(value: float) -> str:
    # Exactly as the record shows it: a rounded value would not be the record's fact.
    return format_number(value)


def _value(record: Record) -> str:
    if record.value is not None:
        return f"{_number(record.value)} {record.unit or ''}".strip()
    if record.components:
        parts = []
        for c in record.components:
            shown = _number(c.value) if c.value is not None else (c.value_text or "")
            parts.append(f"{c.name} {shown} {c.unit or ''}".strip())
        return "; ".join(parts)
    return record.value_text or ""


def fact_phrase(record: Record) -> str:
    """A short phrase stating one record's main fact, with its date."""
    name = record.display
    day = record.day
    rtype = record.resource_type
    if rtype == "Observation":
        value = _value(record)
        phrase = f"{name}: {value}" if value else name
        return f"{phrase} on {day}" if day else phrase
    if rtype in ("Condition", "AllergyIntolerance"):
        since = f", since {day}" if day else ""
        ended = f", resolved {record.end_date[:10]}" if record.end_date else ""
        status = f" ({record.status}{since}{ended})" if record.status else f" ({since[2:]})"
        return f"{name}{status}" if status.strip(" ()") else name
    if rtype in ("MedicationRequest", "MedicationStatement"):
        status = f", {record.status}" if record.status else ""
        return f"{name} (prescribed {day}{status})" if day else name
    if rtype == "Patient":
        return record.text.split("]", 1)[-1].strip()
    if day:
        return f"{name} on {day}"
    return record.text.split("]", 1)[-1].strip()


def _is_current(record: Record) -> bool:
    return record.status in ("active", "on-hold", "intended", "recurrence", "relapse")


def _intro(selection: Selection) -> str:
    plan = selection.plan
    records = [item.record for item in selection.items]
    many = len(records) > 1
    if "active" in plan.status and not any(_is_current(r) for r in records):
        return "Nothing current is recorded; earlier entries:"
    if plan.intent == "count":
        return f"{len(records)} found:"
    if plan.order == "latest":
        return "Most recent of each:" if many and plan.concepts[1:] else "Most recent:"
    if plan.order == "earliest":
        return "First recorded:"
    if plan.intent == "exists":
        return "Yes, the record shows:"
    if plan.status:
        return "Current:"
    window = f" {plan.window.phrase}" if plan.window else ""
    return f"Found{window}:"


def _with_citations(phrase: str, cites: list[str], shown: int = 2) -> str:
    # No count here: every number in an answer must be a fact of a cited record.
    more = " (and more records)" if len(cites) > shown else ""
    return f"{phrase} {''.join(cites[:shown])}{more}"


def _age(selection: Selection) -> tuple[int, str, Record] | None:
    """The patient's age, birth date and Patient record when the question asks for the age."""
    plan = selection.plan
    if plan.intent != "demographics" or not _AGE_RE.search(plan.question):
        return None
    for item in selection.items:
        birth = item.record.resource.get("birthDate")
        if item.record.resource_type == "Patient" and isinstance(birth, str):
            age = age_on(birth, plan.now)
            if age is not None:
                return age, birth[:10], item.record
    return None


def _age_phrase(selection: Selection) -> str | None:
    found = _age(selection)
    if found is None:
        return None
    age, birth, record = found
    return f"Age {age} on {selection.plan.now.isoformat()} (born {birth}) [{record.ref}]."


def _groups(selection: Selection) -> list[list[Record]]:
    """Selected records stating the same fact, grouped (a condition seen at many visits)."""
    groups: dict[str, list[Record]] = {}
    for item in selection.items:
        record = item.record
        grouped = record.resource_type in ("Condition", "AllergyIntolerance")
        groups.setdefault(record.display if grouped else fact_phrase(record), []).append(record)
    return list(groups.values())


def _earliest(records: list[Record]) -> Record:
    """The group's earliest record: the one a grouped fact is stated by."""
    return min(records, key=lambda r: r.date or "")


def _untagged(text: str) -> str:
    """``text`` without its "(disorder)"-style tags."""
    return re.sub(r"\([^)]*\)", " ", text)


def _name_word(display: str, shared: frozenset[str] = frozenset()) -> str | None:
    """The longest word of a display name without its "(disorder)"-style tag, lowercased.

    Words of four letters or more are preferred; a short name ("Hib", "IPV") is its own
    longest word. Words in ``shared`` (those of the other facts' names) are passed over
    when another word is left: "Assessment of anxiety" beside "Assessment of health and
    social care needs" is named by "anxiety".
    """
    plain = _untagged(display)
    words = re.findall(r"[A-Za-z]{4,}", plain) or re.findall(r"[A-Za-z][A-Za-z0-9]+", plain)
    own = [w for w in words if w.lower() not in shared] or words
    return max(own, key=len).lower() if own else None


def _coded_value(text: str) -> str | None:
    """How an answer states a coded value: the phrase ("never smoked tobacco") when short,
    else its longest word."""
    phrase = " ".join(_untagged(text).split()).lower()
    return phrase if len(phrase) <= 40 else _name_word(phrase)


def _names(concept: Concept, record: Record) -> tuple[str, ...]:
    """The question's own names for ``record``'s concept ("HbA1c" for a haemoglobin A1c).

    A drug class names many medicines, so for a class only the member named in the record
    counts ("diphenhydramine" states the antihistamine; "an antihistamine" does not).
    """
    if record.resource_type not in concept.resource_types:
        return ()
    if concept.kind == "drug_class":
        display = record.display.lower()
        return tuple(term for term in concept.terms if term in display)
    return (concept.name, *concept.synonyms, *concept.terms)


def key_facts(selection: Selection, groups: int = 3) -> list[tuple[str, ...]]:
    """What a complete answer states, as the extractive answer would state it.

    Each fact is a tuple of acceptable spellings. The age for an age question; the count
    for a "how many" question; "yes" for a yes/no question the record answers; then, for
    each of the first ``groups`` distinct facts, its name (the longest word of its display,
    or a name of the question's concept: "HbA1c"; for a drug class, the member medicine),
    its value (a number, a coded value such as "never smoked tobacco", or the first two
    component values of a blood pressure), and its date when the question asks for the
    latest or first one, or for a date. A name is a word the other facts' names lack
    when there is one. The hybrid answerer falls back to the extractive answer when a
    model's answer leaves one out.
    """
    if not selection.items:
        return []
    if (age := _age(selection)) is not None:
        return [(str(age[0]),)]
    plan = selection.plan
    if plan.intent == "count":
        return [(str(len(selection.items)),)]
    # The record holds what a yes/no question asks about: the answer must say so, not "No".
    facts: list[tuple[str, ...]] = [("yes",)] if plan.intent == "exists" else []
    taken = 0
    firsts = [_earliest(records) for records in _groups(selection)]
    names = [_display_words(first.display) for first in firsts]
    for i, first in enumerate(firsts):
        shared = frozenset(w for j, other in enumerate(names) if j != i for w in other)
        # A fact already required (a second Hep B dose) does not use up one of the groups.
        new = [fact for fact in _group_facts(first, plan, shared) if fact not in facts]
        if new:
            facts.extend(new)
            taken += 1
        if taken == groups:
            break
    return facts


def _display_words(display: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+", _untagged(display))}


_ASKS_DATE_RE = re.compile(r"\b(?:when|date|onset)\b", re.IGNORECASE)


def _group_facts(first: Record, plan: QueryPlan, shared: frozenset[str]) -> list[tuple[str, ...]]:
    """The name, value and date of one group's fact, stated by its earliest record ``first``.

    The date counts for "latest"/"first" questions and for those that ask for a date
    ("What is the onset date of my pharyngitis?": the onset, not the day it resolved).
    """
    facts: list[tuple[str, ...]] = []
    if word := _name_word(first.display, shared):
        names = [name for concept in plan.concepts for name in _names(concept, first)]
        facts.append(tuple(dict.fromkeys((word, *names))))
    if first.value is not None:
        facts.append((format_number(first.value),))
    elif first.value_text and (stated := _coded_value(first.value_text)):
        facts.append((stated,))
    for component in first.components[:2]:
        if component.value is not None:
            facts.append((format_number(component.value),))
    asks_date = plan.intent == "when" or _ASKS_DATE_RE.search(plan.question)
    if (plan.order in ("latest", "earliest") or asks_date) and first.day:
        facts.append((first.day,))
    return facts


def compose(selection: Selection) -> str:
    """The extractive answer for a non-empty selection (abstention text when empty).

    Records that state the same fact (the same condition recorded at several visits) are
    listed once, with every record cited.
    """
    if not selection.items:
        return selection.empty_reason or "The record does not contain this information."
    if (age := _age_phrase(selection)) is not None:
        return age
    parts = []
    for records in _groups(selection):
        # A condition recorded at many visits is stated once, "since" its earliest onset.
        first = _earliest(records)
        parts.append(_with_citations(fact_phrase(first), [f"[{r.ref}]" for r in records]))
    return f"{_intro(selection)} {'; '.join(parts)}."
