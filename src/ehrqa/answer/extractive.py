"""An answer composed from the selected resources without a model.

It states the facts of the selected resources, each cited, in a sentence shaped by the
question's intent. It is the fallback when a model's answer fails verification, and a
model-free strategy of its own (``--answer-mode extractive``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from ehrqa.answer.judgements import (
    CONTROL_RE,
    DEATH_RE,
    HOW_LONG_RE,
    THRESHOLD_RE,
    YES_NO_RE,
    Judgement,
    better_direction,
    blood_pressure,
    child_vaccines,
    cite,
    control,
    death,
    duration,
    ever_out_of_range,
    payer_judgement,
    progression,
    range_judgement,
    screening_due,
    series_value,
    smoking,
    still_met,
    survival,
    threshold_judgement,
    threshold_met,
    trend,
    trend_answer,
    vaccine_due,
)
from ehrqa.answer.verify import age_on
from ehrqa.fhir.elements import concept_label
from ehrqa.fhir.record import Record
from ehrqa.fhir.render import labelled
from ehrqa.knowledge import Concept, Knowledge, Monitor, load_knowledge
from ehrqa.select.base import Selection, by_kind_only, kind_listing
from ehrqa.select.default import (
    A_USE_OF,
    ADULT_AGE,
    AGE_AT_RE,
    COUNTED_TYPES,
    CURRENT_STATUSES,
    DONE_RE,
    FINDINGS_RE,
    IS_IT_FOR_RE,
    NOT_FOR_REASON,
    PATIENT_FIELDS,
    SYMPTOMS_RE,
    TYPE_LABELS,
    VISIT_ANCHORS,
    WHY_RE,
    SafetyFinding,
    asks_why_visit,
    encounter_id,
    matches_concept,
    no_caution,
)
from ehrqa.select.lexicon import MEDICATION_TYPES, scan
from ehrqa.select.query import (
    AGE_THRESHOLD_RE,
    CONTRA_RE,
    DUE_RE,
    EVER_OUT_OF_RANGE_RE,
    INSURANCE_RE,
    JUDGE_RE,
    PAYER_HISTORY_RE,
    TREND_RE,
    QueryPlan,
    asks_current_condition,
    asks_yes_no,
)

# Values are rounded only where the record carries noise beyond two decimals: the
# verifier accepts exactly that rounding of a cited value (ehrqa.text.numbers.rounds_to).
from ehrqa.text.dates import days_between, iso_day, whole_years
from ehrqa.text.names import plain_name
from ehrqa.text.numbers import exact_number
from ehrqa.text.units import readable_unit, show_number, show_value

_AGE_RE = re.compile(r"\b(?:age|old|aged)\b", re.IGNORECASE)


def _value(record: Record) -> str:
    if record.value is not None:
        return show_value(record.value, record.unit)
    if record.components:
        if (pressure := blood_pressure(record)) is not None:
            return pressure
        parts = []
        for c in record.components:
            shown = show_value(c.value, c.unit) if c.value is not None else (c.value_text or "")
            parts.append(f"{c.name} {shown}".strip())
        return "; ".join(parts)
    return record.value_text or ""


def fact_phrase(record: Record) -> str:
    """A short phrase stating one record's main fact, with its date."""
    name = plain_name(record.display)
    day = record.day
    rtype = record.resource_type
    if rtype == "Observation":
        value = _value(record)
        if not value and not record.resource.get("hasMember"):
            # "Most recent: BMI percentile on 2023-12-09" read as if a value had been given.
            value = "no value recorded"
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


# "Is she pregnant?", "am I anemic?", "is he still obese": a state now, asked with "to be"
# (never "have I had", "was she", "has he ever been").
_STATE_NOW_RE = re.compile(
    r"^\W*(?:so\s+|and\s+|but\s+)?(?:is|am|are)\s+(?:s?he|i|you|they|we|the\s+(?:patient|pt)"
    r"|(?:my|our|his|her)\s+\w+)\b(?!.*\b(?:ever|history|hx|before|previously|in\s+the\s+past"
    r"|been|had)\b)",
    re.IGNORECASE,
)


_HISTORY_OF_RE = re.compile(r"\b(?:history|hx)\s+of\b", re.IGNORECASE)
_POSITIVE_RE = re.compile(r"\b(?:positive|negative)\b", re.IGNORECASE)
# How a condition went: "gotten worse", "any better", "progressing" (not "lose a pregnancy").
_COURSE_RE = re.compile(
    r"\b(?:worse|worsen\w*|better|improv\w*|progress\w*|trend\w*|deteriorat\w*)\b",
    re.IGNORECASE,
)


def _is_current(record: Record) -> bool:
    return record.status in CURRENT_STATUSES


# Records whose presence answers "have I / do I / did I": a diagnosis, a procedure, a shot.
# An observation answers by its value ("Do I smoke?" over "Former smoker" is not "Yes").
_EXISTENCE_TYPES = frozenset(
    {
        "Condition",
        "AllergyIntolerance",
        "Procedure",
        "Immunization",
        "MedicationRequest",
        "MedicationStatement",
        "Encounter",
        "CarePlan",
        "Device",
    }
)


_COUNTED_TYPES = frozenset(COUNTED_TYPES)


@functools.cache
def _kind_heads() -> frozenset[str]:
    """The head noun of each phrase that names a kind: "visit", "problem", "doctor", "test"."""
    phrases = (phrase for rule in load_knowledge().cues for phrase in rule.phrases)
    return frozenset(phrase.split()[-1] for phrase in phrases)


def _unmatched_qualifier(plan: QueryPlan) -> bool:
    """Whether a word nothing matched qualifies the asked kind of record.

    "dental visit", "heart problems": the word names which visits or problems, so records of
    the kind alone do not answer. "What meds am I on right now?": "right" qualifies nothing.
    (A yes/no question is never answered by the kind alone, qualified or not.)
    """
    if plan.concepts or not plan.keywords:
        return False
    kinds = _kind_heads()
    words = re.findall(r"[a-z]+", plan.question.lower())
    return any(
        nxt in kinds or nxt.removesuffix("s") in kinds
        for word, nxt in itertools.pairwise(words)
        if word in plan.keywords
    )


_HOW_BAD_RE = re.compile(
    r"\bhow\s+(?P<what>bad|serious|severe|big|large|advanced|dangerous)\s+(?:was|is|were|are)\b",
    re.IGNORECASE,
)


def _unrecorded_property(question: str) -> str | None:
    """The property a yes/no asks that no record states ("an accident", "serious"), if any
    (``cues.toml [unrecorded]``)."""
    said = " ".join(re.findall(r"[a-z]+", question.lower().replace("'", "")))
    for phrase in sorted(load_knowledge().unrecorded_properties, key=len, reverse=True):
        if re.search(rf"\b{re.escape(phrase)}\b", said):
            return phrase
    return None


_SUSPECTED_RE = re.compile(r"^\s*suspected\b", re.IGNORECASE)


def _suspected_only(records: Sequence[Record]) -> bool:
    """Whether every record is a condition only suspected ("Suspected lung cancer
    (situation)"), never confirmed."""
    return bool(records) and all(
        r.resource_type == "Condition" and _SUSPECTED_RE.match(plain_name(r.display))
        for r in records
    )


# A question of whether a test was done at all ("did they ever drug test me?").
_DONE_ASKED_RE = re.compile(
    r"\b(?:ever|tested|test(?:\s+\w+)?\s+(?:me|him|her|them)|checked|screened|measured|done)\b",
    re.IGNORECASE,
)


def _intro(selection: Selection, judged: bool = False) -> str:
    """The words before the facts: what kind of answer the list is.

    A yes/no question that found records opens with "Yes" (with "No" when only ended
    records were found for a "still"/"currently" question); after a computed verdict the
    facts are only its records.
    """
    plan = selection.plan
    records = [item.record for item in selection.items]
    many = len(records) > 1
    yes_no = asks_yes_no(plan.question)
    if all(NOT_FOR_REASON in item.reasons for item in selection.items):
        asked = " or ".join(c.name for c in plan.concepts if c.kind == "condition") or "it"
        return f"No medicine in the record is recorded as being for {asked}. All of them:"
    unmatched = (
        (yes_no and plan.keywords and not plan.concepts)
        or _unmatched_qualifier(plan)
        or selection.details.get("unmatched_words")
    )
    if unmatched and not judged and all(map(by_kind_only, selection.items)):
        # "Do I have any heart problems?", "When was my last dental visit?" with the asked
        # words known to nothing: these are the record's entries of that kind, not an
        # answer, and never a "Yes" (nor "your last dental visit was …").
        labels = sorted({TYPE_LABELS.get(r.resource_type, r.resource_type) for r in records})
        words = " ".join(plan.keywords)
        newest = "most recent " if plan.order == "latest" and not yes_no else ""
        return (
            f'I could not match "{words}" to a record; the {newest}{" and ".join(labels)} '
            "on record:"
        )

    # Conditions alone: their existence is shown, never a state, control or course they
    # do not record.
    conditions_only = bool(records) and all(r.resource_type == "Condition" for r in records)
    state_now = conditions_only and _STATE_NOW_RE.search(plan.question)
    # A reading is not a thing that ends: with one ("does she have a job right now?" over an
    # employment status answer), the newest reading tells, not "none is current".
    readings = any(r.resource_type == "Observation" for r in records)
    present = "active" in plan.status or bool(state_now)
    if present and not readings and not any(_is_current(r) for r in records):
        # "Is she pregnant?" over a pregnancy that ended: not now ("Yes: Normal pregnancy,
        # resolved 2024-06-06" said she is).
        if yes_no:
            return "No, none is current; earlier entries:"
        return "Nothing current is recorded; earlier entries:"
    if judged:
        return "Records:"
    if yes_no and conditions_only and CONTROL_RE.search(plan.question):
        # "Is her reflux under control?" with no reading to judge it: the record shows the
        # condition, never that it is controlled.
        return (
            "The record holds no reading with a target to judge whether it is controlled; it shows:"
        )
    if (
        conditions_only
        and _COURSE_RE.search(plan.question)
        and not _HISTORY_OF_RE.search(plan.question)
    ):
        # "Has her emphysema gotten worse?" with no reading of it: the record shows the
        # condition, never how it went.
        return "The record holds no reading to tell how it has changed; it shows:"
    if records and (how := _HOW_BAD_RE.search(plan.question)):
        # "How bad was her stroke?": the records show that it happened, never how bad.
        return f"The record does not say how {how['what'].lower()} it was; it shows:"
    if (
        yes_no
        and plan.intent not in ("count", "trend", "demographics")
        and all(r.resource_type in _EXISTENCE_TYPES for r in records)
    ):
        # "Was the shooting an accident?", "was his heart attack serious?": the records show
        # the thing, never that property; a "Yes" would affirm what no record states.
        if (unstated := _unrecorded_property(plan.question)) is not None:
            return f"The record does not say whether it was {unstated}; it shows:"
        if _suspected_only(records):
            # "So the prostate biopsy - was it cancer?" over "Suspected prostate cancer"
            # resolved the same day: a suspicion is never a "Yes".
            return "No confirmed diagnosis: the record lists only a suspicion:"
        # Visits and shots are counted ("Have I ever been to the ER?": how often is part of
        # the answer); the count is of the cited records, one per visit or dose.
        if all(r.resource_type in _COUNTED_TYPES for r in records):
            # "Has he had more than 3 ER visits?" over one: "No, 1 in the record".
            limit = THRESHOLD_RE.search(plan.question)
            count = [float(len(records))]
            met = limit is None or threshold_met(limit["op"], count, [float(limit["a"])])[0]
            return f"{'Yes' if met else 'No'}, {len(records)} in the record:"
        return "Yes, the record shows:"
    if plan.intent == "count":
        days = {r.day for r in records if r.day}
        # A count says when the last one was: grouped facts show first dates.
        last = f", the last on {max(days)}" if days and len(records) > 1 else ""
        types = {r.resource_type for r in records}
        if len(types) == 1 and types <= {"Condition", "Procedure"} and len(days) < len(records):
            # "How many bones did she break?": a fracture is filed twice the day it happens
            # ("Fracture of rib", "Pathological fracture due to osteoporosis"); a birth as
            # "Medical induction of labor" and "Cesarean section".
            return f"{len(days)} (on {len(days)} dates{last}; {len(records)} entries):"
        return f"{len(records)} found{last}:"
    # "Did they ever drug test me?", "was my cholesterol ever checked?": a laboratory test
    # asked whether it was done is answered by being there.
    done = (
        readings
        and _DONE_ASKED_RE.search(plan.question) is not None
        and all("laboratory" in r.category for r in records if r.resource_type == "Observation")
    )
    if plan.order == "latest" and plan.intent == "exists" and yes_no and readings and not done:
        # "Does she have a job right now?": the newest reading answers by its value.
        return "The record shows:"
    if plan.order == "latest":
        return "Most recent of each:" if many and plan.concepts[1:] else "Most recent:"
    if plan.order == "earliest":
        return "First recorded:"
    if plan.intent == "exists":
        if _suspected_only(records):
            return "No confirmed diagnosis: the record lists only a suspicion:"
        existence = [r for r in records if r.resource_type in _EXISTENCE_TYPES]
        if (
            readings
            and not done
            and (not existence or (present and not any(map(_is_current, existence))))
        ):
            # A reading answers by its value ("does she have a job right now?" over
            # "Otherwise unemployed" and ended jobs), never by being there.
            return "The record shows:"
        return "Yes, the record shows:"
    if plan.status:
        died = (selection.details.get("patient") or {}).get("deceased")
        if "active" in plan.status and died and died <= plan.now.isoformat():
            # The record of a patient who died: what was still active at the death.
            return "Still active at the death:"
        return "Current:" if "active" in plan.status else "Ended:"
    window = f" {plan.window.phrase}" if plan.window else ""
    dated = sorted({r.day for r in records if r.day})
    if plan.intent == "when" and dated:
        # "When did I have my heart attack?": the date first, then what was recorded.
        if len(dated) == 1:
            return f"On {dated[0]}{window}:"
        return f"First recorded on {dated[0]} (newest entry {dated[-1]}){window}:"
    return f"Found{window}:"


def _group_with_citations(records: list[Record]) -> str:
    """One group's fact and its citations; a repeated procedure cites every time it counts
    ("Chemotherapy (6 times, …)"), so its count is a fact of the cited records."""
    cites = [f"[{r.ref}]" for r in records]
    counted = records[0].resource_type in ("Procedure", "Immunization") and len(records) > 1
    return _with_citations(_group_phrase(records), cites, len(cites) if counted else 2)


def _with_citations(phrase: str, cites: list[str], shown: int = 2) -> str:
    # No count here: every number in an answer must be a fact of a cited record.
    more = " (and more records)" if len(cites) > shown else ""
    return f"{phrase} {''.join(cites[:shown])}{more}"


def _age(selection: Selection) -> tuple[int, str, Record] | None:
    """The patient's age, birth date and Patient record when the question asks for the age.

    For a patient who died before ``now`` the age is the age at death.
    """
    plan = selection.plan
    if plan.intent != "demographics" or not _AGE_RE.search(plan.question):
        return None
    if AGE_AT_RE.search(plan.question) and not _DIED_RE.search(plan.question):
        # "How old was she when she had her first baby?": the age at that event, never
        # today's age ("Age 56 on 2026-12-06" answered it when no birth was matched).
        return None
    for item in selection.items:
        birth = item.record.resource.get("birthDate")
        if item.record.resource_type == "Patient" and isinstance(birth, str):
            age = age_on(birth, _death_day(item.record) or plan.now)
            if age is not None:
                return age, birth[:10], item.record
    return None


# "How old was she when she passed?": the age at death is the age at that event.
_DIED_RE = re.compile(r"\b(?:pass(?:ed)?|died|die|dying|death|dead|gone)\b", re.IGNORECASE)


def _death_day(record: Record) -> date | None:
    """The day a Patient record says the patient died, if any."""
    return iso_day(record.resource.get("deceasedDateTime"))


def _age_phrase(selection: Selection) -> str | None:
    found = _age(selection)
    if found is None:
        return None
    age, birth, record = found
    # "Is he over 65?": yes or no first, by the computed age.
    asked = AGE_THRESHOLD_RE.match(selection.plan.question.removesuffix(" (age)"))
    verdict = ""
    if asked is not None:
        met = threshold_met(asked["op"], [age], [float(asked["a"])])[0]
        verdict = "Yes: " if met else "No: "
    died = _death_day(record)
    if died is not None and died <= selection.plan.now:
        return f"{verdict}Died on {died.isoformat()} at age {age} (born {birth}) [{record.ref}]."
    return f"{verdict}Age {age} on {selection.plan.now.isoformat()} (born {birth}) [{record.ref}]."


# One fact however many records state it: a condition seen at many visits, a medicine
# ordered at every refill (one line per medicine, with its first and last order).
_GROUPED_TYPES = ("Condition", "AllergyIntolerance", "MedicationRequest", "MedicationStatement")
MANY_TIMES = 4  # a procedure done this often is stated once, with its count and dates
SHOWN_DOSES = 8  # a vaccine's doses are listed by date up to this many, else first to last


def reason_of(record: Record) -> str | None:
    """Why a medicine (or procedure, visit) was ordered, as its rendering names it."""
    found = labelled(record.text, "reason")
    return " ".join(_untagged(found).split()) if found else None


def _reasons(records: list[Record]) -> list[str]:
    """The distinct reasons a group's orders name, in order."""
    return list(dict.fromkeys(plain_name(r) for r in map(reason_of, records) if r))


def _group_phrase(records: list[Record]) -> str:
    """One group's fact: a medicine with its first and last order and its reason."""
    first = _earliest(records)
    if first.resource_type == "Immunization" and len(records) > 1:
        days = sorted({r.day for r in records if r.day})
        shown = ", ".join(days) if len(days) <= SHOWN_DOSES else f"{days[0]} to {days[-1]}"
        return f"{plain_name(first.display)} ({len(records)} doses: {shown})"
    if first.resource_type == "Procedure" and len(records) > 1:
        last = max(records, key=lambda r: r.date or "")
        span = f"on {first.day}" if last.day == first.day else f"{first.day} to {last.day}"
        return f"{plain_name(first.display)} ({len(records)} times, {span})"
    if first.resource_type not in MEDICATION_TYPES:
        return fact_phrase(first)
    last = max(records, key=lambda r: r.date or "")
    status = f", {last.status}" if last.status else ""
    if last.day and first.day and last.day != first.day:
        when = f"first ordered {first.day}, last {last.day}{status}"
    else:
        when = f"prescribed {first.day}{status}" if first.day else status[2:]
    reasons = _reasons(records)
    why = f" for {', '.join(reasons)}" if reasons else ""
    name = plain_name(first.display)
    return f"{name} ({when}){why}" if when else f"{name}{why}"


def _groups(selection: Selection) -> list[list[Record]]:
    """Selected records stating the same fact, grouped (a condition seen at many visits)."""
    groups: dict[str, list[Record]] = {}
    repeats = Counter(
        i.record.display for i in selection.items if i.record.resource_type == "Procedure"
    )
    shots = Counter(
        i.record.display for i in selection.items if i.record.resource_type == "Immunization"
    )
    for item in selection.items:
        record = item.record
        # A procedure done many times (a course of chemotherapy, allergy shots) is one line;
        # a few are listed with their dates ("When did I have colonoscopies?").
        # Doses of one vaccine are one line with their dates ("Influenza (5 doses: …)").
        grouped = (
            record.resource_type in _GROUPED_TYPES
            or (record.resource_type == "Procedure" and repeats[record.display] >= MANY_TIMES)
            or (record.resource_type == "Immunization" and shots[record.display] > 1)
        )
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
    return tuple(dict.fromkeys(u.lower() for u in (unit, readable_unit(unit)) if u))


_SEX_RE = re.compile(
    r"\b(?:sex|gender|male|female|boy\s+or\s+(?:a\s+)?girl|girl\s+or\s+(?:a\s+)?boy)\b",
    re.IGNORECASE,
)
_BIRTH_RE = re.compile(r"\b(?:born|birth|birthday|dob|birthdate)\b", re.IGNORECASE)


def _asked_patient_field(selection: Selection) -> Judgement | None:
    """ "What gender is he?", "when was she born?": the asked Patient field, said as such
    ("Recorded: sex male [Patient/…]."), not the whole Patient line; None for any other
    question (an age is computed elsewhere; a name, an address are listed)."""
    plan = selection.plan
    patients = [i.record for i in selection.items if i.record.resource_type == "Patient"]
    if not patients or _AGE_RE.search(plan.question):
        return None
    record = patients[0]
    said = [f"{label} {value}" for label, value in _asked_fields(record, plan.question)]
    if not said:
        return None
    return Judgement(f"Recorded: {', '.join(said)} [{record.ref}].", (record.ref,))


def _asked_fields(record: Record, question: str) -> list[tuple[str, str]]:
    """The sex and birth date a demographics question asks for, each with its label ("sex",
    "born"; the name is not asked)."""
    fields: list[tuple[str, str]] = []
    gender = record.resource.get("gender")
    if _SEX_RE.search(question) and isinstance(gender, str) and gender:
        fields.append(("sex", gender.lower()))
    birth = record.resource.get("birthDate")
    if _BIRTH_RE.search(question) and isinstance(birth, str) and birth:
        fields.append(("born", birth[:10]))
    return fields


def _patient_facts(record: Record, question: str) -> list[tuple[str, ...]]:
    """The sex or birth date a demographics question asks for, as facts an answer states."""
    return [(value,) for _, value in _asked_fields(record, question)]


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
    yes_no = plan.intent == "exists" or (plan.intent != "trend" and YES_NO_RE.match(plan.question))
    facts: list[tuple[str, ...]] = [("yes",)] if yes_no else []
    groups = _groups(selection)
    firsts = [_earliest(records) for records in groups]
    vocab = [_display_words(first.display) for first in firsts]
    words = [_name_word(first.display, _others(vocab, i)) for i, first in enumerate(firsts)]
    for i, first in enumerate(firsts):
        if first.resource_type == "Patient":
            group = _patient_facts(first, plan.question)
        else:
            # Facts of one name (two Hep B doses, five weights) are told apart by their dates.
            dated = words[i] is not None and words.count(words[i]) > 1
            group = _group_facts(first, plan, words[i], _names(plan, firsts, i), dated)
            if first.resource_type == "Immunization" and len(groups[i]) > 1:
                # A vaccine's doses, one line: each dose is told by its date.
                group += [(day,) for day in sorted({r.day for r in groups[i] if r.day})]
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
        shown_value = show_number(first.value, first.unit)
        facts.append(tuple(dict.fromkeys((shown_value, exact_number(first.value)))))
        if unit := _unit(first.unit):
            facts.append(unit)
    elif first.value_text and (stated := _coded_value(first.value_text)):
        facts.append((stated,))
    shown = [c for c in first.components[:2] if c.value is not None]
    facts.extend(
        tuple(dict.fromkeys((show_number(c.value, c.unit), exact_number(c.value))))
        for c in shown
        if c.value is not None
    )
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
    """The extractive answer for a non-empty selection (abstention text when empty)."""
    return compose_parts(selection)[0]


def compose_parts(selection: Selection) -> tuple[str, tuple[str, ...]]:
    """The extractive answer and the spans it does not take from records: the knowledge
    files' (a range, a target) and the search's own words (its window, "0 found").

    The first sentence answers when code can judge (a trend's direction, a condition's
    control against its target, a value against its reference range: see
    :mod:`ehrqa.answer.judgements`); then the facts, each cited. Records that state the
    same fact (a condition seen at many visits, a medicine at every refill) are listed once,
    with every record cited.
    """
    if not selection.items:
        if selection.nearby:  # what was searched, then the records closest to it
            shown = dataclasses.replace(selection, items=selection.nearby, nearby=[])
            if selection.empty_reason:  # "No hearing test is recorded." and its context
                listed = "; ".join(_group_with_citations(g) for g in _groups(shown))
                # What was searched ("this year (since 2026-01-01) (0 found)") states the
                # question's window, not a record's fact: only the related records are checked.
                searched = selection.empty_reason
                label = "" if searched.endswith(":") else " Related records:"
                return f"{searched}{label} {listed}.", (searched,)
            return compose_parts(shown)
        text = selection.empty_reason or "The record does not contain this information."
        # What was searched and found missing (with a due rule's source) cites no record:
        # in a question of several parts it is not checked against the others' records.
        return text, (text,)
    if selection.facets:  # a question of several parts: each part answered in turn
        answered = [compose_parts(facet) for facet in selection.facets]
        # Each part's count is of its own cited records (checked against the whole answer's
        # records it would not match): "7 found … 5 found".
        counts = tuple(
            f"{len(f.items)} found"
            for f in selection.facets
            if f.plan.intent == "count" and f.items
        )
        spans = tuple(s for _, ss in answered for s in ss)
        return " ".join(text for text, _ in answered), spans + counts
    if (age := _age_phrase(selection)) is not None:
        return age, ()
    leads = lead_judgements(selection)
    covered = {ref for j in leads for ref in j.rests_on}
    # A fact a verdict already states (with one of its records) is not listed again.
    groups = [g for g in _groups(selection) if not any(r.ref in covered for r in g)]
    spans = tuple(span for j in leads for span in j.knowledge)
    if leads and not groups:
        return " ".join(j.sentence for j in leads), spans  # the verdicts state every fact
    if not leads and _only_circumstances(selection.plan, groups):
        # "Active problem list" over "Medication review due", "Stress", "Received higher
        # education": no disease is listed; the circumstances are not problems.
        apart = [_group_with_citations(records) for records in groups]
        current = "current " if "active" in selection.plan.status else ""
        return (
            f"No {current}disease or disorder is on the problem list; social and other "
            f"findings: {'; '.join(apart)}.",
            (),
        )
    social = _social_groups(groups) if len(groups) > 1 else []
    parts = [_group_with_citations(records) for records in groups if records not in social]
    body = f"{_intro(selection, judged=bool(leads))} {'; '.join(parts)}."
    if social:  # circumstances (employment, stress) apart from the problem list
        apart = [_group_with_citations(records) for records in social]
        body = f"{body} Social and other findings: {'; '.join(apart)}."
    if not leads:
        return body, ()
    return " ".join([*(j.sentence for j in leads), body]), spans


def _safety_judgement(finding: SafetyFinding) -> Judgement:
    """What the medication safety checks found for one asked drug (select.default), each
    caution with the records behind it; none said as what was checked."""
    checked, warnings = finding.checked, finding.warnings
    if not warnings:
        return Judgement(no_caution(finding), ())
    cautions = "; ".join(
        f"{w.message.rstrip('.')} {''.join(f'[{ref}]' for ref in w.refs)}".strip() for w in warnings
    )
    refs = tuple(dict.fromkeys(ref for w in warnings for ref in w.refs))
    # The rules' wording (and their thresholds) come from the safety tables, not the record.
    return Judgement(
        f"Cautions for {checked} in the record: {cautions} (medication safety checks; a "
        "clinician decides).",
        refs,
        tuple(w.message.rstrip(".") for w in warnings),
    )


def _survival(selection: Selection) -> Judgement | None:
    """How long the patient lived after the condition the selector chose ("survival")."""
    if (ref := selection.details.get("survival")) is None:
        return None
    records = {item.record.ref: item.record for item in selection.items}
    patient = next((r for r in records.values() if r.resource_type == "Patient"), None)
    if patient is None or ref not in records:
        return None
    return survival(records[ref], patient)


def _progression(selection: Selection, kb: Knowledge) -> Judgement | None:
    """Whether the condition the selector read ("progression") turned into the next one."""
    if (name := selection.details.get("progression")) is None:
        return None
    records = [item.record for item in selection.items]
    entries = [r for r in records if r.resource_type == "Condition"]
    entry = min(entries, key=lambda r: r.date or "") if entries else None  # since when
    for monitor in kb.monitoring(name):
        if monitor.becomes and (
            verdict := progression(entry, records, monitor, selection.plan.question)
        ):
            # Every entry of the condition states it (the first is cited).
            every = tuple(dict.fromkeys((*verdict.refs, *(e.ref for e in entries))))
            return dataclasses.replace(verdict, evidence=every)
    return None


def lead_judgements(selection: Selection, *, asked_only: bool = False) -> list[Judgement]:
    """The computed verdicts that open an answer: control, trend, or a value's range.

    With ``asked_only``, only verdicts the question asks for: a latest value's range flag
    is added to answers unasked, but it does not make the question a judgement.
    """
    plan = selection.plan
    records = [item.record for item in selection.items]
    patient = selection.details.get("patient") or {}
    kb = load_knowledge()
    found: list[Judgement] = []
    if (at := _at_event(selection)) is not None:
        return [at]
    if safety := selection.details.get("safety"):
        return [_safety_judgement(finding) for finding in safety]
    if plan.intent == "demographics" and (field := _asked_patient_field(selection)) is not None:
        return [field]
    if (lived := _survival(selection)) is not None:
        return [lived]
    if (turned := _progression(selection, kb)) is not None:
        return [turned]
    birth = patient.get("birth_date")
    adult = (age_on(birth, plan.now) or 0) >= ADULT_AGE if birth else True
    if not JUDGE_RE.search(plan.question) and asks_current_condition(plan) and adult:
        # "Am I still obese?": a condition defined by a measure is answered by its latest
        # value, not by a problem-list entry that was never closed. The thresholds are
        # adults' (a child's BMI is read against percentiles).
        measures = [r for r in records if r.resource_type == "Observation"]
        conditions = [r for r in records if r.resource_type == "Condition"]
        for concept in (c for c in plan.concepts if c.kind == "condition"):
            listed = [r for r in conditions if {c.code for c in r.codes} & set(concept.codes)]
            newest = max(listed, key=lambda r: r.date or "") if listed else None
            defining = tuple(
                m
                for m in kb.monitoring(concept.name)
                if m.defines and not (m.lasting and newest is not None)
            )
            if defining and (verdict := still_met(newest, measures, defining)) is not None:
                found.append(verdict)
        if found:
            return found
    if JUDGE_RE.search(plan.question):
        measures = [r for r in records if r.resource_type == "Observation"]
        # "Is her A1c under 7?": the asker's own threshold first, then any target.
        measured = [c for c in plan.concepts if c.is_measurement]
        of_asked = [r for r in measures if any(matches_concept(r, c) for c in measured)]
        if THRESHOLD_RE.search(plan.question) and of_asked:
            newest = max(of_asked, key=lambda r: r.date or "")
            if (crossed := threshold_judgement(newest, plan.question)) is not None:
                found.append(crossed)
                # The reading against its reference range too ("HIGH (normal up to 99)"):
                # the asker's number may not be the range ("is his LDL under 70?").
                age = _age_at(birth, newest, plan.now)
                ranged = range_judgement(newest, kb, sex=patient.get("gender"), age=age)
                found += [ranged] if ranged is not None else []
        # Conditions judged by the same readings are one verdict ("disorder of kidney due to
        # diabetes" and "microalbuminuria due to diabetes": the diabetes targets, said once).
        by_readings: dict[str, tuple[tuple[Monitor, ...], list[Record]]] = {}
        for condition in _newest_per_display(r for r in records if r.resource_type == "Condition"):
            monitors = _asked_monitors(plan, _monitors_of(kb, condition))
            if monitors and (readings := control((), measures, monitors)) is not None:
                by_readings.setdefault(readings.sentence, (monitors, []))[1].append(condition)
        for monitors, conditions in by_readings.values():
            if (verdict := control(conditions, measures, monitors)) is not None:
                # Every entry of a judged condition states it (the newest is cited).
                names = {c.display for c in conditions}
                entries = (r.ref for r in records if r.resource_type == "Condition"
                           and r.display in names)  # fmt: skip
                every = tuple(dict.fromkeys((*verdict.refs, *entries)))
                found.append(dataclasses.replace(verdict, evidence=every))
        if len(found) == 1 and found[0].sentence.startswith(("Yes: ", "No: ")):
            return found  # the threshold asked, with no target to add
        if not found and CONTROL_RE.search(plan.question):
            # "Is my blood pressure under control?": the measure against its target.
            codes = {c.code for r in measures for c in r.codes}
            monitors = _own_monitors(kb, tuple(m for m in kb.monitors if codes & set(m.loinc)))
            if monitors and (verdict := control((), measures, monitors)) is not None:
                found.append(verdict)
        if found:
            return found
    if (risk := selection.details.get("risk")) is not None:
        return [_risk_factors(risk, selection)]
    asks_visit = asks_why_visit(plan, selection.items) or DONE_RE.search(plan.question)
    if asks_visit and (visit := _visit_findings(selection)):
        return [visit]
    # "Why am I on lisinopril", not "what problems am I being treated for" (a problem list).
    asks_medicine = any(c.kind in ("drug", "drug_class") for c in plan.concepts) or (
        "Condition" not in plan.resource_types
    )
    # "Any reason she can't take penicillin?" asks for what stands against it, not why it
    # was ordered.
    why = WHY_RE.search(plan.question) and not CONTRA_RE.search(plan.question)
    if why and asks_medicine and (reasons := _medicine_reasons(selection)):
        return reasons
    if AGE_AT_RE.search(plan.question) and (at := _age_at_event(selection)) is not None:
        return [at]
    history = bool(PAYER_HISTORY_RE.search(plan.question))
    if (
        INSURANCE_RE.search(plan.question)
        and (payers := payer_judgement(records, history=history)) is not None
    ):
        return [payers]
    # For a patient who died, nothing is due and nothing lasts after the day of death.
    until = min(plan.now, iso_day(patient.get("deceased")) or plan.now)
    if DUE_RE.search(plan.question):
        born = date.fromisoformat(birth[:10]) if birth else None
        if born and whole_years(born, until) < ADULT_AGE:
            # A child's shots are read against the childhood schedule; yearly ones (flu) as
            # for everyone.
            asked = frozenset(c.name for c in plan.concepts if c.kind == "vaccine")
            if (child := child_vaccines(records, kb, born, until, asked)) is not None:
                return [child, *vaccine_due(records, kb, until, annual_only=True)]
        if due := vaccine_due(records, kb, until):
            return due
        # "Am I due for a colonoscopy?": a screening test by its average-risk interval.
        screenings = [
            verdict
            for concept in plan.concepts
            if (interval := kb.screening_interval(concept.name)) is not None
            and (
                verdict := screening_due(
                    [r for r in records if matches_concept(r, concept)], interval, until
                )
            )
            is not None
        ]
        if screenings:
            return screenings
    if HOW_LONG_RE.search(plan.question) and (lengths := duration(records, until)):
        return lengths
    asks_found = FINDINGS_RE.search(plan.question) or SYMPTOMS_RE.search(plan.question)
    if asks_found and (visit := _visit_findings(selection)) is not None:
        return [visit]
    if (smokes := smoking(records, plan.question, kb)) is not None:
        return [smokes]
    patients = [r for r in records if r.resource_type == "Patient"]
    if patients and (fields := _patient_fields(patients[0], plan.question)) is not None:
        return [fields]
    # "What meds was she on when she died?" asks for medicines, dated by the death.
    about_death = not (set(plan.target_types) - {"Patient", "Observation"})
    if DEATH_RE.search(plan.question) and patients and about_death:
        found_age = _age_at_death(patients[0])
        return [death(patients[0], plan.question, found_age)]
    series = _asked_series(_series(records), plan)
    if EVER_OUT_OF_RANGE_RE.search(plan.question):
        # "Was it ever high?": every reading of each asked measure against its range.
        ever = [
            verdict
            for group in series[:3]
            if (
                verdict := ever_out_of_range(
                    group,
                    kb,
                    plan.question,
                    lambda r: _age_at(birth, r, plan.now),
                    sex=patient.get("gender"),
                )
            )
            is not None
        ]
        if ever:
            return ever
    if TREND_RE.search(plan.question) or plan.intent == "trend":
        found = [
            # The readings before adulthood were read too: the verdict rests on them all.
            trend_answer(
                plan.question,
                dataclasses.replace(t, evidence=tuple(r.ref for r in group)) if scope else t,
            )
            for group in series
            for part, scope in [_adult_part(_last_n(group, plan), plan, birth)]
            for t in [trend(part, _better_way(kb, group, patient, plan.now), scope=scope)]
            if t is not None
        ]
        if found:
            return [*_since_started(selection), *found]
    # "Was his alcohol screen positive?", "was the peanut blood test positive?": a score or
    # a level against its cut-off ("did she test positive for covid?" is not one).
    positive = _POSITIVE_RE.search(plan.question) and any(
        c.is_measurement or c.kind == "allergen" for c in plan.concepts
    )
    if JUDGE_RE.search(plan.question) or positive or (plan.order == "latest" and not asked_only):
        newest_of = [max(group, key=lambda r: r.date or "") for group in series[:3]]
        # A panel's parts recorded apart on its day (systolic and diastolic beside the
        # blood-pressure panel) are said once, in the panel: "149/90 mmHg: high".
        in_panels = {(c.code, r.day) for r in newest_of for c in r.components if c.code is not None}
        for newest in newest_of:
            if any((c.code, newest.day) in in_panels for c in newest.codes):
                continue
            # Read against the ranges of the age the reading was taken at: a BMI of 15.1 at
            # four is no adult's "LOW".
            age = _age_at(birth, newest, plan.now)
            verdict = range_judgement(newest, kb, sex=patient.get("gender"), age=age)
            if verdict is not None:
                found.append(verdict)
    return found


def focus(selection: Selection) -> Selection:
    """The selection narrowed to what the question's verdict rests on.

    When code can answer what was asked (a condition's control, a trend, a value against its
    range, why a medicine, what a visit found, whether a shot is due), the answer is that
    verdict and its records are the relevant ones (Task 1): the other records the search
    brought (older readings of other measures, unrelated orders) are left out of the
    selection, so the answer and its sources hold what answers the question. A question of
    several parts is narrowed part by part. Kept whole when nothing is judged, or when the
    verdicts would read differently from the narrowed records alone.
    """
    if selection.facets:
        facets = [focus(facet) for facet in selection.facets]
        kept = {item.record.ref for facet in facets for item in facet.items}
        nearby = {i.record.ref: i for f in facets for i in f.nearby if i.record.ref not in kept}
        unchanged = all(new is old for new, old in zip(facets, selection.facets, strict=True))
        if unchanged and not nearby:
            return selection
        items = [item for item in selection.items if item.record.ref in kept]
        shown = list(nearby.values())
        return dataclasses.replace(selection, items=items, facets=facets, nearby=shown)
    if not selection.items or _age_phrase(selection) is not None:
        return selection
    if _nothing_asked_found(selection):
        return dataclasses.replace(selection, items=[], nearby=selection.items)
    if (missing := _asked_missing(selection)) is not None:
        reason = f"No {missing} is recorded."
        return dataclasses.replace(
            selection, items=[], nearby=selection.items, empty_reason=reason, negative=True
        )
    leads = lead_judgements(selection, asked_only=True)
    if not leads:
        return _asked_values(selection)
    kept = {ref for verdict in leads for ref in verdict.rests_on}
    # The event a question dates its measures by ("since I started the statin") stays.
    kept |= {i.record.ref for i in selection.items if "the asked event" in i.reasons}
    # A reading filed twice (two records of one code at one time) is one reading.
    readings = {
        (r.codes[0].code, r.date)
        for r in (item.record for item in selection.items if item.record.ref in kept)
        if r.resource_type == "Observation" and r.codes
    }
    items = [
        item
        for item in selection.items
        if item.record.ref in kept
        or (
            item.record.resource_type == "Observation"
            and item.record.codes
            and (item.record.codes[0].code, item.record.date) in readings
        )
    ]
    if not items or len(items) == len(selection.items):
        return selection
    focused = dataclasses.replace(selection, items=items)
    again = lead_judgements(focused, asked_only=True)
    if [j.sentence for j in again] != [j.sentence for j in leads]:
        return selection
    return focused


def _since_started(selection: Selection) -> list[Judgement]:
    """The medicine a trend is read from ("since I started the statin"), as its opening."""
    ref = selection.details.get("since")
    start = next((i.record for i in selection.items if i.record.ref == ref), None)
    if start is None:
        return []
    name = plain_name(start.display)
    return [Judgement(f"{name} was first ordered on {start.day} [{start.ref}].", (start.ref,))]


def _own_monitors(kb: Knowledge, monitors: tuple[Monitor, ...]) -> tuple[Monitor, ...]:
    """Of the targets for a measure asked about alone, those of the condition the measure
    belongs to ("is my blood pressure under control?": hypertension's, not diabetes')."""

    def belongs(monitor: Monitor) -> bool:
        condition = kb.concept(monitor.condition)
        measures = {monitor.measure, *_measure_names(kb, monitor)}
        return condition is not None and bool(measures & set(condition.related))

    return tuple(filter(belongs, monitors)) or monitors


def _asked_monitors(plan: QueryPlan, monitors: tuple[Monitor, ...]) -> tuple[Monitor, ...]:
    """A condition's targets, narrowed to the measures the question names when it names
    some: "is her sugar under control?" is judged by the HbA1c and glucose targets of her
    diabetes, not also by its blood-pressure target."""
    asked = {code for c in plan.concepts if c.is_measurement for code in c.codes}
    named = tuple(m for m in monitors if asked & set(m.loinc))
    return named or monitors


def _measure_names(kb: Knowledge, monitor: Monitor) -> tuple[str, ...]:
    """The concepts a monitor's codes belong to ("blood pressure" for 85354-9)."""
    codes = set(monitor.loinc)
    return tuple(c.name for c in kb.concepts if codes & set(c.codes))


def _only_circumstances(plan: QueryPlan, groups: list[list[Record]]) -> bool:
    """Whether a list of the problems asked as a whole ("active problem list", "what
    conditions does she have?") holds circumstances only (employment, stress)."""
    kb = load_knowledge()
    return (
        bool(groups)
        and not plan.concepts
        and not plan.keywords
        and plan.intent in ("list", "list_active")
        and all(
            r.resource_type == "Condition" and kb.is_social_finding(r.display)
            for g in groups
            for r in g
        )
    )


def _social_groups(groups: list[list[Record]]) -> list[list[Record]]:
    """The Condition groups that record circumstances, when others are diseases."""
    kb = load_knowledge()
    social = [
        g
        for g in groups
        if g[0].resource_type == "Condition" and kb.is_social_finding(g[0].display)
    ]
    return social if len(social) < len(groups) else []


_SUSPECTED_RE = re.compile(r"(?:suspected|possible|probable|rule\s+out)\b", re.IGNORECASE)


def _age_at_event(selection: Selection) -> Judgement | None:
    """The patient's age at the first selected event (birth date from the Patient record)."""
    birth = (selection.details.get("patient") or {}).get("birth_date")
    events = [
        i.record for i in selection.items if i.record.resource_type != "Patient" and i.record.day
    ]
    if not isinstance(birth, str) or not events:
        return None
    # "When was he diagnosed with lung cancer": a suspicion is not the diagnosis.
    confirmed = [r for r in events if not _SUSPECTED_RE.match(plain_name(r.display))]
    first = min(confirmed or events, key=lambda r: r.date or "")
    age = age_on(birth, date.fromisoformat(first.day or ""))
    if age is None:
        return None
    # Computed from the Patient's birth date, which the answer names: checked by code here.
    span = f"at age {age} (born {birth[:10]})"
    patients = [i.record for i in selection.items if i.record.resource_type == "Patient"]
    what = {"Condition": "first recorded", "Immunization": "given", "Encounter": "on"}.get(
        first.resource_type, "done"
    )
    if first.resource_type in MEDICATION_TYPES:
        what = "first prescribed"
    born = f" {cite(patients[:1])}" if patients else ""
    sentence = f"{plain_name(first.display)}: {what} {first.day} [{first.ref}], {span}{born}."
    return Judgement(sentence, (first.ref, *(p.ref for p in patients[:1])), (span,))


def _medicine_reasons(selection: Selection) -> list[Judgement]:
    """Why each selected medicine was ordered (or each asked procedure done: "why did he have
    his prostate taken out?"), as its records say, or that they do not."""
    found = []
    stopped_asked = bool(_WHY_STOPPED_RE.search(selection.plan.question))
    asked_procedure = any(c.kind == "procedure" for c in selection.plan.concepts)
    kinds = (*MEDICATION_TYPES, "Procedure") if asked_procedure else MEDICATION_TYPES
    for records in _groups(selection):
        first = _earliest(records)
        if first.resource_type not in kinds:
            continue
        done = "prescribed" if first.resource_type in MEDICATION_TYPES else "done"
        reasons = _reasons(records)
        cites, name = cite(records[:2]), plain_name(first.display)
        visit = _visit_problems(first, selection)
        refs = tuple(r.ref for r in records)
        if stopped_asked and first.resource_type in MEDICATION_TYPES:
            found.append(_why_stopped(records, name, reasons))
            continue
        if reasons:
            # The conditions the orders name, when they were selected, are cited with them.
            named = {plain_name(reason).lower() for reason in reasons}
            orders = {f"reason for {r.ref}" for r in records}
            conditions = [
                item.record
                for item in selection.items
                if item.record.resource_type == "Condition"
                and (
                    orders.intersection(item.reasons)
                    or plain_name(item.record.display).lower() in named
                )
            ]
            cites += cite(conditions)
            sentence = f"{name} was {done} for {', '.join(reasons)} {cites}."
            if (checked := _purpose_checked(selection.plan, reasons)) is not None:
                sentence = f"{'Yes' if checked else 'No'}: {sentence}"
            refs += tuple(c.ref for c in conditions)
        elif visit:
            problems = "; ".join(f"{plain_name(c.display)} [{c.ref}]" for c in visit)
            sentence = (
                f"{name} was {done} on {first.day} {cites} at the visit that recorded "
                f"{problems}; the {'order' if done == 'prescribed' else 'record'} itself "
                "names no reason."
            )
            refs += tuple(c.ref for c in visit)
        elif uses := _common_uses(records, selection):
            # A lead, said as one: the order names no reason, the drug is used for these.
            held = "; ".join(f"{fact_phrase(c)} [{c.ref}]" for c in uses)
            sentence = (
                f"The record gives no reason for {name} {cites}. It is commonly used for "
                f"conditions the record holds: {held}."
            )
            refs += tuple(c.ref for c in uses)
        else:
            sentence = f"The record gives no reason for {name} {cites}."
        found.append(Judgement(sentence, refs))
    return found


def _open_on(record: Record, day: str) -> bool:
    """Whether a condition had begun by ``day`` and not yet ended."""
    if record.resource_type != "Condition" or not record.day or not day:
        return False
    return record.day <= day and (record.end_date is None or record.end_date[:10] >= day)


def _purpose_checked(plan: QueryPlan, reasons: Sequence[str]) -> bool | None:
    """For "is the propranolol for my blood pressure?", whether the orders' reasons are the
    named purpose (a condition, or one a named measure follows: blood pressure →
    hypertension); None when the question names no purpose to check."""
    if not IS_IT_FOR_RE.search(plan.question):
        return None
    asked = {c.name for c in plan.concepts if c.kind not in ("drug", "drug_class")}
    asked |= {name for c in plan.concepts if c.name in asked for name in c.related}
    if not asked:
        return None
    named = {c.name for reason in reasons for m in scan(reason) for c in m.concepts}
    return bool(named & asked)


# "Why isn't he on a statin anymore?", "why did they stop her metformin?": why it ended.
_WHY_STOPPED_RE = re.compile(
    r"\bwhy\b.{0,60}(?:\b(?:stop(?:ped|s)?|discontinu\w*|quit|(?:come|came|taken|took\s+\w+)"
    r"\s+off|no\s+longer)\b|\b(?:anymore|any\s+more)\b)",
    re.IGNORECASE,
)


def _why_stopped(records: list[Record], name: str, reasons: list[str]) -> Judgement:
    """Why a medicine ended, as its newest order says (``statusReason``), or that the record
    does not say; what it was for comes after, never as the answer to why it was stopped."""
    newest = max(records, key=lambda r: r.date or "")
    refs = (newest.ref,)
    what_for = f"; it was prescribed for {', '.join(reasons)}" if reasons else ""
    if newest.status in ("active", "on-hold", "draft"):
        return Judgement(
            f"{name} is not recorded as stopped: its latest order, on {newest.day}, is "
            f"{newest.status} {cite([newest])}{what_for}.",
            refs,
        )
    if why := plain_name(concept_label(newest.resource.get("statusReason"))):
        return Judgement(
            f"{name} was stopped because of {why} (its latest order, on {newest.day}, is "
            f"{newest.status}) {cite([newest])}{what_for}.",
            refs,
        )
    return Judgement(
        f"The record does not say why {name} was stopped: its latest order, on {newest.day}, "
        f"is {newest.status or 'ended'} and names no reason for stopping {cite([newest])}"
        f"{what_for}.",
        refs,
    )


def _common_uses(orders: Sequence[Record], selection: Selection) -> list[Record]:
    """The selected conditions the knowledge files list as a common use of these orders'
    medicine (selected for an order that names no reason: select.default)."""
    labels = {f"{A_USE_OF}{r.ref}" for r in orders}
    return [i.record for i in selection.items if labels.intersection(i.reasons)]


def _visit_problems(order: Record, selection: Selection) -> list[Record]:
    """The selected conditions recorded at the visit a medicine was ordered at."""
    visit = encounter_id(order)
    if visit is None:
        return []
    found = {
        item.record.ref: item.record
        for item in selection.items
        if item.record.resource_type == "Condition" and encounter_id(item.record) == visit
    }
    return list(found.values())


def _risk_factors(risk: dict[str, Any], selection: Selection) -> Judgement:
    """The risk factors of a disease the record holds, with where the list comes from."""
    factors = {i.record.ref for i in selection.items if "risk factor: " in " ".join(i.reasons)}
    groups = _groups(selection)
    facts = [
        f"{_group_phrase(records)} {cite(records)}"
        for records in groups
        if records[0].ref in factors
    ]
    # The smoking status when it is not current use ("Ex-smoker"): beside the factors.
    beside = [f"{fact_phrase(r[0])} {cite(r)}" for r in groups if r[0].ref not in factors]
    source = f"risk factors as listed by {risk['source']}"
    sentence = f"Risk factors for {risk['disease']} in the record: {'; '.join(facts)} ({source})."
    if beside:
        sentence += f" Also recorded: {'; '.join(beside)}."
    return Judgement(sentence, tuple(selection.refs), (source,))


_VISIT_ORDER = {
    "Condition": 0,
    "AllergyIntolerance": 1,
    "MedicationRequest": 2,
    "MedicationStatement": 2,
    "Procedure": 3,
    "Immunization": 4,
    "DiagnosticReport": 5,
    "Observation": 6,
}


def _visit_findings(selection: Selection) -> Judgement | None:
    """What the newest selected procedure's (or visit's) visit recorded, or that it recorded
    nothing else: the selector adds those records as "same visit as" the anchor."""
    linked: dict[str, list[Record]] = {}
    for item in selection.items:
        for reason in item.reasons:
            if reason.startswith("same visit as "):
                linked.setdefault(reason.removeprefix("same visit as "), []).append(item.record)
    anchors = [
        item.record
        for item in selection.items
        if item.record.ref in linked
        or (
            item.record.resource_type in VISIT_ANCHORS
            and not any(r.startswith("same visit as ") for r in item.reasons)
        )
    ]
    if not anchors:
        return None
    # The visit whose record the question names by a word the others lack ("her rib
    # fracture" among fractures), else the newest.
    asked = set(re.findall(r"[a-z]{3,}", selection.plan.question.lower()))
    words = {r.ref: set(re.findall(r"[a-z]{3,}", r.display.lower())) for r in anchors}
    shared = set.intersection(*words.values())
    # A finding asked by name ("did they find polyps at his colonoscopy?"): the visit that
    # recorded it, if one did.
    sought = [c for c in selection.plan.concepts if c.kind == "condition"]
    holds = {
        ref
        for ref, records in linked.items()
        if any(matches_concept(r, c) for r in records for c in sought)
    }
    anchor = max(
        anchors,
        key=lambda r: (r.ref in holds, bool(asked & (words[r.ref] - shared)), r.date or ""),
    )
    # Diagnoses first, then what was done for them, the tests last: "why was I in hospital"
    # is answered by the first words.
    # What the selector linked to the visit, and what else it chose from the same encounter.
    visit = encounter_id(anchor)
    same = [
        item.record
        for item in selection.items
        if visit is not None
        and item.record.ref != anchor.ref
        and encounter_id(item.record) == visit
        and item.record.resource_type != "Encounter"
    ]
    found = list({r.ref: r for r in [*linked.get(anchor.ref, []), *same]}.values())
    found.sort(key=lambda r: _VISIT_ORDER.get(r.resource_type, 9))
    place = "For" if anchor.resource_type == "Condition" else "At the"
    head = f"{place} {_untagged(anchor.display).strip()} on {anchor.day} [{anchor.ref}]"
    # "Why did she go to the hospital?": the visit's own reason first.
    if anchor.resource_type == "Encounter" and (why := reason_of(anchor)):
        head += f" (the visit's reason: {why})"
    facts = "; ".join(f"{fact_phrase(r)}{_for_reason(r)} [{r.ref}]" for r in found)
    # "Were any polyps found on his colonoscopy?": a finding asked by name that the visit
    # did not record is a "No" for that visit, then what it did record.
    sought = [c for c in sought if not matches_concept(anchor, c)]
    # "When she was admitted with COVID, …": a condition still open on the visit's day is
    # the visit's context, never "No covid was recorded at the admission".
    sought = [
        c
        for c in sought
        if not any(
            matches_concept(i.record, c) and _open_on(i.record, anchor.day or "")
            for i in selection.items
        )
    ]
    if sought and not any(matches_concept(r, c) for r in found for c in sought):
        what = " or ".join(c.name for c in sought)
        name = _untagged(anchor.display).strip()
        said = f"No {what} was recorded at the {name} on {anchor.day} [{anchor.ref}]"
        said += ", nor any other finding" if not found else f"; it recorded: {facts}"
        # The finding recorded on another day is said, never hidden behind that "No".
        elsewhere = [
            i.record
            for i in selection.items
            if i.record.ref not in {r.ref for r in found}
            and any(matches_concept(i.record, c) for c in sought)
        ]
        if elsewhere:
            said += ". Recorded on another day: " + "; ".join(
                f"{fact_phrase(r)} [{r.ref}]" for r in elsewhere
            )
        cited = (anchor.ref, *(r.ref for r in found), *(r.ref for r in elsewhere))
        return Judgement(f"{said}.", cited)
    if not found:
        return Judgement(f"{head}, the record holds no other findings from that visit.", ())
    return Judgement(f"{head}: {facts}.", (anchor.ref, *(r.ref for r in found)))


def _for_reason(record: Record) -> str:
    """ " for Chronic congestive heart failure" when a medicine or procedure names its reason."""
    if record.resource_type not in (*MEDICATION_TYPES, "Procedure"):
        return ""
    reason = reason_of(record)
    return f" for {reason}" if reason else ""


def _at_event(selection: Selection) -> Judgement | None:
    """The readings nearest to the event a question names ("my A1c when I was diagnosed"):
    "At the time of Prediabetes (first recorded 2015-01-05) [Condition/…]: Hemoglobin
    A1c: 6.2% on 2015-01-05 [Observation/…] (the same day)." None without an anchor."""
    anchor = selection.details.get("anchor")
    records = {item.record.ref: item.record for item in selection.items}
    if not isinstance(anchor, str) or anchor not in records:
        return None
    event = records[anchor]
    first = "first recorded" if event.resource_type == "Condition" else "on"
    parts = []
    for record in records.values():
        if record.ref == anchor or not record.day or not event.day:
            continue
        gap = days_between(event.day, record.day)
        when = (
            "the same day"
            if gap == 0
            else f"{abs(gap)} day{'s' if abs(gap) != 1 else ''} {'before' if gap < 0 else 'after'}"
        )
        parts.append(f"{fact_phrase(record)} [{record.ref}] ({when})")
    if not parts:
        return None
    head = f"At the time of {_untagged(event.display).strip()} ({first} {event.day}) [{event.ref}]"
    return Judgement(f"{head}: {'; '.join(parts)}.", tuple(records))


def _patient_fields(patient: Record, question: str) -> Judgement | None:
    """The Patient fields a demographics question names, as its rendered line states them:
    "Ethnicity: Not Hispanic or Latino; race: White [Patient/…]." None when none is asked
    or the line states none of them."""
    stated: list[str] = []
    for pattern, _, _, labels in PATIENT_FIELDS:
        if not pattern.search(question):
            continue
        for label in labels:
            if value := labelled(patient.text, label):
                stated.append(f"{label}: {value}")
    if not stated:
        return None
    sentence = "; ".join(stated)
    return Judgement(f"{sentence[0].upper()}{sentence[1:]} [{patient.ref}].", (patient.ref,))


def _age_at_death(patient: Record) -> int | None:
    birth = patient.resource.get("birthDate")
    died = _death_day(patient)
    if not isinstance(birth, str) or died is None:
        return None
    return age_on(birth, died)


def _newest_per_display(records: Iterable[Record]) -> list[Record]:
    newest: dict[str, Record] = {}
    for record in records:
        known = newest.get(record.display)
        if known is None or (record.date or "") > (known.date or ""):
            newest[record.display] = record
    return list(newest.values())


def _monitors_of(kb: Knowledge, condition: Record) -> tuple[Monitor, ...]:
    for coding in condition.codes:
        if monitors := kb.monitoring(coding.code):
            return monitors
    return ()


# Words after which a yes/no question names its context, not what it asks: "did she have
# her hearing checked after all those ear infections", "a head CT after my concussion".
_CONTEXT_RE = re.compile(
    r"\b(?:after|since|following|before|during|because\s+of|due\s+to|when|while)\b", re.I
)
# "Were any polyps removed at his last colonoscopy?": the colonoscopy is where. (What a
# procedure *found* there is its visit's findings: "did they find polyps at my colonoscopy?")
_AT_RE = re.compile(r"\bat\s+(?:my|his|her|their|the|your)\b", re.I)


def _mention(concept: Concept, text: str) -> int | None:
    """Where ``text`` first names ``concept`` (by any of its phrases), or None."""
    found = [
        m.start()
        for phrase in (concept.name, *concept.synonyms)
        if (m := re.search(rf"\b{re.escape(phrase)}", text)) is not None
    ]
    return min(found) if found else None


def _asked_missing(selection: Selection) -> str | None:
    """The asked thing of a yes/no (or "what did it show") question when the record holds
    only its context.

    "Did she have her hearing checked after all those ear infections?" found the ear
    infections but no hearing test: the answer is about the hearing test ("No hearing test
    is recorded"), the infections are shown beside it, never a "Yes". None otherwise.
    """
    plan = selection.plan
    asks = YES_NO_RE.match(plan.question) or FINDINGS_RE.search(plan.question)
    if len(plan.concepts) < 2 or not asks:
        return None
    text = plan.question.lower()
    cut = _CONTEXT_RE.search(text)
    if cut is None and not FINDINGS_RE.search(text):
        cut = _AT_RE.search(text)
    if cut is None:
        return None
    where = {c.name: _mention(c, text) for c in plan.concepts}
    asked = [c for c in plan.concepts if (w := where[c.name]) is not None and w < cut.start()]
    context = [c for c in plan.concepts if (w := where[c.name]) is not None and w > cut.start()]
    if not asked or not context:
        return None
    records = [item.record for item in selection.items]
    if any(matches_concept(r, c) for r in records for c in asked):
        return None
    return " or ".join(c.name for c in asked)


def _nothing_asked_found(selection: Selection) -> bool:
    """Whether the selected records are only near what was asked, not it: records of the
    asked kind when the words that say which were matched by nothing ("I could not match
    'apgar'"), or medicines none of which is recorded as being for the asked condition."""
    items = selection.items
    if all(NOT_FOR_REASON in item.reasons for item in items):
        return True
    # A yes/no question: its records' kind alone is never a "Yes" (a list question may be
    # answered by the kind: "CV risk factors on his problem list" lists the problems).
    return kind_listing(selection)


def _last_n(series: list[Record], plan: QueryPlan) -> list[Record]:
    """A series cut to the asked number of latest readings ("over my last 3 tests")."""
    if not plan.limit or plan.order == "earliest":
        return series
    days = sorted({r.day for r in series if r.day})[-plan.limit :]
    return [r for r in series if r.day in days]


def _adult_part(
    series: list[Record], plan: QueryPlan, birth: str | None
) -> tuple[list[Record], str]:
    """An adult's series over no asked window, from adulthood on ("has his weight gone up?"
    is not read from his birth weight), with the words that say so; else ``series`` as is."""
    if plan.window is not None or plan.limit or not birth:
        return series, ""
    if (age_on(birth, plan.now) or 0) < ADULT_AGE:
        return series, ""
    adult = [r for r in series if r.day and (_age_at(birth, r, plan.now) or 0) >= ADULT_AGE]
    if len(adult) == len(series) or len({r.day for r in adult}) < 2:
        return series, ""
    return adult, "as an adult"


def _age_at(birth: str | None, record: Record, now: date) -> int | None:
    """The patient's age on the day of ``record`` (on ``now`` when it has none)."""
    if not birth:
        return None
    return age_on(birth, date.fromisoformat(record.day) if record.day else now)


def _better_way(
    kb: Knowledge, series: list[Record], patient: dict[str, Any], now: date
) -> str | None:
    """Which way is better for a series: its monitoring target's, else its reference range's.

    A range open on one side says it ("desirable below 200" → lower; "60 or more" →
    higher); a range with both bounds says it for values outside it (BMI above 24.9 → lower,
    hemoglobin below 12.1 → higher). None when nothing says.
    """
    code = series[0].codes[0].code
    if (way := better_direction(kb, code)) is not None:
        return way
    age = _age_at(patient.get("birth_date"), max(series, key=lambda r: r.date or ""), now)
    rng = kb.reference_range(code, sex=patient.get("gender"), age=age)
    if rng is None:
        return None
    if rng.low is None or rng.high is None:
        return "lower" if rng.low is None else "higher"
    values = [v[0] for r in series if (v := series_value(r)) is not None]
    above = any(v > rng.high for v in values)
    below = any(v < rng.low for v in values)
    if above != below:
        return "lower" if above else "higher"
    return None


def _asked_values(selection: Selection) -> Selection:
    """A latest (or first) value asked of one of several series ("kidney function at his
    last blood test", "peanut IgE"): the records of the series not asked are set aside."""
    plan = selection.plan
    if plan.order not in ("latest", "earliest"):
        return selection
    series = _series([item.record for item in selection.items])
    asked = _asked_series(series, plan)
    if len(asked) == len(series):
        return selection
    kept = {r.ref for group in asked for r in group}
    unasked = {r.ref for group in series for r in group} - kept
    items = [item for item in selection.items if item.record.ref not in unasked]
    return dataclasses.replace(selection, items=items) if items else selection


def _asked_series(series: list[list[Record]], plan: QueryPlan) -> list[list[Record]]:
    """The series the question names, when one concept brought several.

    "Peanut IgE over time?" names the allergy IgE tests, which bring a series per allergen;
    the question's word the other series lack ("peanut") picks its own. Series of different
    concepts ("weight and BMI") are all kept.
    """
    asked = set(re.findall(r"[a-z0-9]{3,}", plan.question.lower()))
    by_concept: dict[str, list[int]] = {}
    for i, group in enumerate(series):
        # A panel ("my cholesterol panel") asks for all its tests: none is set aside.
        matched = [c for c in plan.concepts if matches_concept(group[0], c)]
        if any(c.kind == "panel" for c in matched):
            continue
        concepts = [c.name for c in matched]
        for concept in concepts or [f"#{i}"]:
            by_concept.setdefault(concept, []).append(i)
    dropped: set[int] = set()
    for members in by_concept.values():
        if len(members) < 2:
            continue
        words = {i: set(re.findall(r"[a-z0-9]{3,}", series[i][0].display.lower())) for i in members}
        shared = set.intersection(*words.values())
        named = {i for i in members if asked & (words[i] - shared)}
        if named:
            dropped |= set(members) - named
    # "What's my kidney function?": a group phrase's lead measure answers for the group.
    kb = load_knowledge()
    for phrase in kb.groups_said(plan.question):
        for lead in kb.group_leads.get(phrase, ()):
            first = kb.concept(lead)
            others = [c for n in kb.groups[phrase] if n != lead and (c := kb.concept(n))]
            leading = {i for i, g in enumerate(series) if first and matches_concept(g[0], first)}
            if leading:
                dropped |= {
                    i
                    for i, group in enumerate(series)
                    if i not in leading and any(matches_concept(group[0], c) for c in others)
                }
                break
    return [group for i, group in enumerate(series) if i not in dropped]


def _series(records: list[Record]) -> list[list[Record]]:
    """Measurements with a number, one list per code (blood pressures by their panel)."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        if record.resource_type != "Observation" or not record.codes:
            continue
        if record.value is None and not any(c.value is not None for c in record.components):
            continue
        groups.setdefault(record.codes[0].code, []).append(record)
    return list(groups.values())
