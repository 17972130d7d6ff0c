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
from ehrqa.select.default import matches_concept
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


def _names(plan: QueryPlan, firsts: list[Record], i: int) -> tuple[str, ...]:
    """The question's own names for the fact of ``firsts[i]`` ("HbA1c" for a haemoglobin A1c).

    A name counts only when it names this fact and no other: "concussion" names both
    "Concussion with no loss of consciousness" and "Concussion injury of brain", so an
    answer saying "concussion" has not said which; "HbA1c" does not name the glucose of
    "HbA1c and glucose". A drug class names many medicines, so for a class only the
    member named in the record counts ("diphenhydramine" states the antihistamine; "an
    antihistamine" does not).
    """
    record = firsts[i]
    others = [other for j, other in enumerate(firsts) if j != i]
    names: list[str] = []
    for concept in plan.concepts:
        if record.resource_type not in concept.resource_types:
            continue
        if concept.kind == "drug_class":
            display = record.display.lower()
            names.extend(
                term
                for term in concept.terms
                if term in display and not any(term in o.display.lower() for o in others)
            )
        elif matches_concept(record, concept) and not any(
            matches_concept(other, concept) for other in others
        ):
            names.extend((concept.name, *concept.synonyms, *concept.terms))
    return tuple(names)


def _unit(unit: str | None) -> tuple[str, ...]:
    """``unit`` as a key fact (an answer may spell it as a reader would: see
    :func:`~ehrqa.answer.verify.missing_facts`).

    Empty for no unit, a dimensionless "1" or an annotation such as "{score}".
    """
    if not unit or unit == "1" or unit.startswith("{"):
        return ()
    return (unit.lower(),)


_SEX_RE = re.compile(r"\b(?:sex|gender|male|female)\b", re.IGNORECASE)
_BIRTH_RE = re.compile(r"\b(?:born|birth|birthday|dob|birthdate)\b", re.IGNORECASE)


def _patient_facts(record: Record, question: str) -> list[tuple[str, ...]]:
    """The sex or birth date a demographics question asks for (the name is not asked)."""
    facts: list[tuple[str, ...]] = []
    gender = record.resource.get("gender")
    if _SEX_RE.search(question) and isinstance(gender, str) and gender:
        facts.append((gender.lower(),))
    birth = record.resource.get("birthDate")
    if _BIRTH_RE.search(question) and isinstance(birth, str) and birth:
        facts.append((birth[:10],))
    return facts


def key_facts(selection: Selection) -> list[tuple[str, ...]]:
    """What a complete answer states, as the extractive answer would state it.

    Each fact is a tuple of acceptable spellings. The age for an age question, the sex or
    birth date for a demographics question; the count for a "how many" question; "yes"
    for a yes/no question ("Is …", "Do I …") that found records, unless it asks about a
    change; then, for every distinct fact (a list's items, a trend's values, a panel's
    results), its name (the longest word of its display, or a name of the question's
    concept that names this fact alone: "HbA1c"; for a drug class, the member medicine),
    its value (a number and its unit, a coded value such as "never smoked tobacco", or
    the first two component values of a blood pressure and their unit), and its date
    when the question asks for the latest or first one, for a date, or whether a
    condition is on the record (since when), when another fact has the same name (two
    doses, a trend's values), and always for a visit. A name is a word the other facts'
    names lack when there is one. The hybrid answerer falls back to the extractive answer
    when a model's answer leaves one out.
    """
    if not selection.items:
        return []
    if (age := _age(selection)) is not None:
        return [(str(age[0]),)]
    plan = selection.plan
    if plan.intent == "count":
        return [(str(len(selection.items)),)]
    # The record holds what a yes/no question asks about: the answer must say so, not "No".
    yes_no = plan.intent == "exists" or (plan.intent != "trend" and _YES_NO_RE.match(plan.question))
    facts: list[tuple[str, ...]] = [("yes",)] if yes_no else []
    firsts = [_earliest(records) for records in _groups(selection)]
    vocab = [_display_words(first.display) for first in firsts]
    words = [_name_word(first.display, _others(vocab, i)) for i, first in enumerate(firsts)]
    for i, first in enumerate(firsts):
        if first.resource_type == "Patient":
            group = _patient_facts(first, plan.question)
        else:
            # Facts of one name (two Hep B doses, five weights) are told apart by their dates.
            dated = words[i] is not None and words.count(words[i]) > 1
            group = _group_facts(first, plan, words[i], _names(plan, firsts, i), dated)
        # A fact already required (a second dose's name) is not required twice.
        facts.extend(fact for fact in group if fact not in facts)
    return facts


def uncited_facts(selection: Selection, citations: list[str]) -> list[str]:
    """The facts of ``selection`` that no citation supports, each by its earliest record.

    A complete answer cites a record of every fact it must state: naming "pregnancy"
    while citing only the gingivitis record, or dating the concussion asked about by
    citing the other concussion, does not ground the fact. A count is one fact (the
    number), so a "how many" answer need not cite each record counted.
    """
    if selection.plan.intent == "count" or _age(selection) is not None:
        return []
    cited = set(citations)
    return [
        _earliest(records).ref
        for records in _groups(selection)
        if not cited.intersection(r.ref for r in records)
    ]


def _display_words(display: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+", _untagged(display))}


def _others(vocab: list[set[str]], i: int) -> frozenset[str]:
    """The words of every fact's name but the ``i``-th's."""
    return frozenset(w for j, words in enumerate(vocab) if j != i for w in words)


# A question answered yes or no, whatever else it asks ("Is otitis media an active problem?").
_YES_NO_RE = re.compile(r"^\W*(?:is|are|am|was|were|do|does|did|has|have|had)\b", re.IGNORECASE)
_ASKS_DATE_RE = re.compile(r"\b(?:when|date|onset)\b", re.IGNORECASE)
_DATED_IF_EXISTS = ("Condition", "AllergyIntolerance")
# A visit is told by its date: "General examination of patient" names many.
_ALWAYS_DATED = ("Encounter",)


def _group_facts(
    first: Record, plan: QueryPlan, word: str | None, names: tuple[str, ...], dated: bool
) -> list[tuple[str, ...]]:
    """The name, value and date of one group's fact, stated by its earliest record ``first``.

    ``word`` names the fact, as do the question's ``names`` for it. The date counts when
    the fact is ``dated`` (another fact has its name) or a visit, for "latest"/"first"
    questions, for those that ask for a date ("What is the onset date of my
    pharyngitis?": the onset, not the day it resolved) and for "have I ever had"
    questions about a condition or allergy (recorded since when).
    """
    facts: list[tuple[str, ...]] = []
    if word:
        facts.append(tuple(dict.fromkeys((word, *names))))
    if first.value is not None:
        facts.append((format_number(first.value),))
        if unit := _unit(first.unit):
            facts.append(unit)
    elif first.value_text and (stated := _coded_value(first.value_text)):
        facts.append((stated,))
    shown = [c for c in first.components[:2] if c.value is not None]
    facts.extend((format_number(c.value),) for c in shown if c.value is not None)
    if shown and (unit := _unit(shown[0].unit)):
        facts.append(unit)
    asks_date = (
        dated
        or first.resource_type in _ALWAYS_DATED
        or plan.intent == "when"
        or _ASKS_DATE_RE.search(plan.question)
        or (plan.intent == "exists" and first.resource_type in _DATED_IF_EXISTS)
    )
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
