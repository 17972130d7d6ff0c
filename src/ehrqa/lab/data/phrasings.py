"""Question and answer templates of the QA generator, and the names things go by.

Everything here is data plus a few pure text helpers. Each intent has question templates
in two voices — ``patient`` ("What was my last A1c?") and ``clinician`` ("What is the
patient's most recent HbA1c?") — and one reference-answer template per voice. Templates
use ``str.format`` slots:

``{name}``   what the question asks about, as the asker says it ("A1c", "a water pill")
``{label}``  the same thing as the answer names it ("HbA1c", "diuretic")
``{value}``  a value with its unit ("7.8 %"); ``{day}`` an ISO date; ``{n}`` a count
``{when}``   a time phrase resolved against ``now`` ("since 2019", "in the past 6 months")
``{When}``   the time phrase with a capital letter, to open a sentence
``{items}``  a joined list

The names a question uses for a concept come from the generator's own value sets
(:mod:`ehrqa.lab.data.value_sets`, ``value_sets.toml``), written in everyday words independently
of the selector's lexicon, so the benchmark can see what the selector does not understand.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

PATIENT: Final = "patient"
CLINICIAN: Final = "clinician"

NOT_RECORDED: Final = "The record does not contain this information."
NONE_RECORDED: Final = "none recorded"

Voices = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Names:
    """How a concept is named: in answers, by patients and by clinicians."""

    label: str
    patient: tuple[str, ...]
    clinician: tuple[str, ...]

    def pick(self, perspective: str, rng: random.Random) -> str:
        """One of the names the asker of ``perspective`` would use."""
        return rng.choice(self.patient if perspective == PATIENT else self.clinician)


# Facts Synthea never records: (words that would show the record holds them, patient
# questions, clinician questions). Blood type is also checked against its lab concept.
UNRECORDED: Final = {
    "blood type": (
        "blood type|blood group|abo",
        "What is my blood type?|What's my blood group?",
        "What is the patient's blood type?|ABO group and Rh type of the patient?",
    ),
    "eye color": (
        "eye color|eye colour|iris",
        "What color are my eyes?",
        "What is the patient's eye color?",
    ),
    "hair color": (
        "hair color|hair colour",
        "What color is my hair?",
        "What is the patient's natural hair color?",
    ),
    "shoe size": (
        "shoe|foot length",
        "What is my shoe size?",
        "What shoe size does the patient wear?",
    ),
    "emergency contact": (
        "emergency contact|next of kin",
        "Who is my emergency contact?",
        "Who is listed as the patient's emergency contact?",
    ),
}

QUESTIONS: Final[dict[str, Voices]] = {
    "latest_lab": {
        PATIENT: (
            "What was my last {name}?",
            "What was my most recent {name} result?",
            "What did my latest {name} test show?",
            "What was my {name} the last time it was checked?",
        ),
        CLINICIAN: (
            "What is the patient's most recent {name}?",
            "Most recent {name} result for this patient?",
            "What was the last recorded {name}?",
        ),
    },
    "latest_lab_group": {
        PATIENT: (
            "What were the results of my last {name}?",
            "How did my most recent {name} come out?",
        ),
        CLINICIAN: (
            "What are the patient's most recent {name} results?",
            "Latest {name} values for this patient?",
        ),
    },
    "first_lab": {
        PATIENT: (
            "What was my very first {name} result?",
            "When was my {name} first checked, and what was it?",
        ),
        CLINICIAN: (
            "What was the patient's first recorded {name}?",
            "Earliest {name} value on record?",
        ),
    },
    "latest_vital": {
        PATIENT: (
            "What was my last {name}?",
            "What was my most recent {name} reading?",
            "What was my {name} at my last measurement?",
        ),
        CLINICIAN: (
            "What is the patient's most recent {name}?",
            "Last recorded {name} for this patient?",
        ),
    },
    "vital_trend": {
        PATIENT: (
            "What were my last {n} {name} readings?",
            "How has my {name} changed over my last {n} measurements?",
        ),
        CLINICIAN: (
            "List the patient's last {n} {name} values, oldest to newest.",
            "Show the {n} most recent {name} readings in chronological order.",
        ),
    },
    "lab_trend": {
        PATIENT: (
            "What were my last {n} {name} results?",
            "How has my {name} changed over my last {n} tests?",
        ),
        CLINICIAN: (
            "List the patient's last {n} {name} results, oldest to newest.",
            "Show the {n} most recent {name} values in chronological order.",
        ),
    },
    "count_labs_in_period": {
        PATIENT: (
            "How many {name} tests have I had {when}?",
            "How many times was my {name} checked {when}?",
        ),
        CLINICIAN: (
            "How many {name} results are on file {when}?",
            "Number of {name} measurements {when}?",
        ),
    },
    "active_conditions": {
        PATIENT: (
            "What are my active conditions?",
            "What health problems do I currently have?",
            "Which diagnoses are active on my record?",
        ),
        CLINICIAN: (
            "List the patient's active problems.",
            "What are the patient's current active conditions?",
            "Active problem list for this patient?",
        ),
    },
    "condition_onset": {
        PATIENT: ("When was I diagnosed with {name}?", "When did I first get {name}?"),
        CLINICIAN: (
            "When was the patient first diagnosed with {name}?",
            "What is the onset date of the patient's {name}?",
        ),
    },
    "has_condition_yes": {
        PATIENT: ("Do I have {name}?", "Is {name} one of my current health problems?"),
        CLINICIAN: (
            "Does the patient currently have {name}?",
            "Is {name} an active problem for this patient?",
        ),
    },
    "has_condition_ever": {
        PATIENT: ("Have I ever been diagnosed with {name}?", "Have I ever had {name}?"),
        CLINICIAN: (
            "Does the patient have a history of {name}?",
            "Has the patient ever been diagnosed with {name}?",
        ),
    },
    "resolved_conditions": {
        PATIENT: (
            "Which of my health problems have resolved?",
            "What conditions have I recovered from?",
        ),
        CLINICIAN: (
            "List the patient's resolved conditions.",
            "Which of the patient's problems are resolved?",
        ),
    },
    "resolved_conditions_in": {
        PATIENT: ("Which of my conditions resolved {when}?", "What did I recover from {when}?"),
        CLINICIAN: (
            "Which of the patient's conditions resolved {when}?",
            "List the problems that were resolved {when}.",
        ),
    },
    "current_medications": {
        PATIENT: (
            "What medications am I currently taking?",
            "What meds am I on right now?",
            "What are my current prescriptions?",
        ),
        CLINICIAN: (
            "What are the patient's active medications?",
            "Current medication list for this patient?",
        ),
    },
    "past_medications": {
        PATIENT: (
            "Which medications have I stopped taking?",
            "What medicines did I take in the past that I no longer take?",
        ),
        CLINICIAN: (
            "Which of the patient's medications have been discontinued?",
            "List the patient's past, no longer active medications.",
        ),
    },
    "past_medications_in": {
        PATIENT: (
            "What medications was I prescribed {when}?",
            "Which prescriptions did I get {when}?",
        ),
        CLINICIAN: (
            "What medications were prescribed to the patient {when}?",
            "List the patient's prescriptions {when}.",
        ),
    },
    "on_drug_class": {
        PATIENT: ("Am I on {name}?", "Am I currently taking {name}?", "Do I take {name}?"),
        CLINICIAN: ("Is the patient on {name}?", "Is the patient currently taking {name}?"),
    },
    "allergies": {
        PATIENT: (
            "What am I allergic to?",
            "Do I have any allergies?",
            "What allergies do I have?",
        ),
        CLINICIAN: (
            "List the patient's allergies.",
            "Does the patient have any known allergies?",
            "What allergies are documented for this patient?",
        ),
    },
    "immunizations_in_year": {
        PATIENT: ("Which vaccines did I get {when}?", "What shots did I have {when}?"),
        CLINICIAN: (
            "Which immunizations were given {when}?",
            "List the patient's immunizations {when}.",
        ),
    },
    "last_immunization_of_type": {
        PATIENT: ("When was my last {name}?", "What was the date of my most recent {name}?"),
        CLINICIAN: (
            "When was the patient's most recent {name} given?",
            "Date of the patient's last {name}?",
        ),
    },
    "count_immunizations": {
        PATIENT: ("How many {name} have I had {when}?", "How many {name} did I get {when}?"),
        CLINICIAN: (
            "How many {name} has the patient received {when}?",
            "Number of {name} {when}?",
        ),
    },
    "last_encounter": {
        PATIENT: ("When was my last {name}?", "When did I have my most recent {name}?"),
        CLINICIAN: (
            "When was the patient's most recent {name}?",
            "Date of the patient's last {name}?",
        ),
    },
    "encounters_in_period": {
        PATIENT: ("What visits did I have {when}?", "When did I see the doctor {when}?"),
        CLINICIAN: (
            "List the patient's encounters {when}.",
            "Which encounters does the patient have {when}?",
        ),
    },
    "count_encounters_in_period": {
        PATIENT: (
            "How many times did I see the doctor {when}?",
            "How many visits did I have {when}?",
        ),
        CLINICIAN: (
            "How many encounters does the patient have {when}?",
            "Number of patient encounters {when}?",
        ),
    },
    "procedures_in_period": {
        PATIENT: ("What procedures did I have {when}?", "Which procedures were done on me {when}?"),
        CLINICIAN: (
            "List the procedures performed on the patient {when}.",
            "Which procedures did the patient undergo {when}?",
        ),
    },
    "last_procedure": {
        PATIENT: ("What was my most recent procedure?", "What was the last procedure I had?"),
        CLINICIAN: (
            "What was the patient's most recent procedure?",
            "Last procedure performed on the patient?",
        ),
    },
    "last_procedure_of_type": {
        PATIENT: ("When was my last {name}?", "When did I last have a {name}?"),
        CLINICIAN: (
            "When was the patient's most recent {name}?",
            "Date of the patient's last {name}?",
        ),
    },
    "care_plans_active": {
        PATIENT: ("What care plans am I on?", "What is my current care plan?"),
        CLINICIAN: (
            "Which care plans are active for this patient?",
            "List the patient's active care plans.",
        ),
    },
    "diagnostic_report_latest": {
        PATIENT: (
            "What did my last {name} show?",
            "What were the results of my most recent {name}?",
        ),
        CLINICIAN: (
            "Summarize the patient's most recent {name}.",
            "Results of the patient's latest {name}?",
        ),
    },
    "demographics_birthdate": {
        PATIENT: ("When was I born?", "What is my date of birth?"),
        CLINICIAN: ("What is the patient's date of birth?", "Patient's birth date?"),
    },
    "demographics_age": {
        PATIENT: ("How old am I?", "What is my age?"),
        CLINICIAN: ("How old is the patient?", "What is the patient's age?"),
    },
    "demographics_gender": {
        PATIENT: ("What gender is listed on my record?", "What sex does my record list?"),
        CLINICIAN: ("What is the patient's gender?", "What sex is recorded for the patient?"),
    },
    "smoking_status": {
        PATIENT: ("Do I smoke?", "What is my smoking status?", "Am I listed as a smoker?"),
        CLINICIAN: ("What is the patient's smoking status?", "Tobacco use status of the patient?"),
    },
    "unrecorded_lab": {
        PATIENT: ("What was my last {name} result?", "What did my last {name} show?"),
        CLINICIAN: ("What is the patient's most recent {name}?", "Latest {name} for the patient?"),
    },
}

# Answer templates: (patient voice, clinician voice).
ANSWERS: Final[dict[str, tuple[str, str]]] = {
    "latest": (
        "Your most recent {label} was {value} on {day}.",
        "The patient's most recent {label} was {value} on {day}.",
    ),
    "latest_group": (
        "Your most recent {label}: {items}.",
        "The patient's most recent {label}: {items}.",
    ),
    "first": (
        "Your first recorded {label} was {value} on {day}.",
        "The patient's first recorded {label} was {value} on {day}.",
    ),
    "trend": (
        "Your last {n} {label} values, oldest to newest, were {items}.",
        "The patient's last {n} {label} values, oldest to newest, were {items}.",
    ),
    "count_labs": (
        "You had {n} {label} {tests} {when}: {items}.",
        "The patient had {n} {label} {results} {when}: {items}.",
    ),
    "active_conditions": (
        "Your active conditions are: {items}.",
        "The patient's active conditions are: {items}.",
    ),
    "condition_onset": (
        "You were first diagnosed with {label} on {day}.",
        "The patient was first diagnosed with {label} on {day}.",
    ),
    "has_condition_yes": (
        "Yes, {label} is an active condition on your record, recorded since {day}.",
        "Yes, the patient has {label}, an active condition recorded since {day}.",
    ),
    "has_condition_ever": (
        "Yes, {label} is on your record, first recorded on {day}.",
        "Yes, the patient has a history of {label}, first recorded on {day}.",
    ),
    "has_condition_no": (
        "No, there is no record of {label} on your record.",
        "No, there is no record of {label} for the patient.",
    ),
    "resolved_conditions": (
        "Your resolved conditions are: {items}.",
        "The patient's resolved conditions are: {items}.",
    ),
    "resolved_conditions_in": (
        "The conditions that resolved {when} are: {items}.",
        "The patient's conditions that resolved {when} are: {items}.",
    ),
    "current_medications": (
        "Your current medications are: {items}.",
        "The patient's active medications are: {items}.",
    ),
    "current_medications_none": (
        "Active medications on your record: none recorded.",
        "Active medications for the patient: none recorded.",
    ),
    "past_medications": (
        "Your past medications, no longer active, are: {items}.",
        "The patient's discontinued medications are: {items}.",
    ),
    "past_medications_in": (
        "{When}, you were prescribed: {items}.",
        "{When}, the patient was prescribed: {items}.",
    ),
    "on_drug_class_yes": (
        "Yes, you are currently taking {items} ({label}).",
        "Yes, the patient is currently taking {items} ({label}).",
    ),
    "on_drug_class_no": (
        "No, there is no {label} among your medications.",
        "No, there is no {label} among the patient's medications.",
    ),
    "allergies": (
        "Your recorded allergies are: {items}.",
        "The patient's documented allergies are: {items}.",
    ),
    "allergies_none": (
        "Allergies on your record: none recorded.",
        "Documented allergies for the patient: none recorded.",
    ),
    "immunizations_in_year": (
        "{When}, you received: {items}.",
        "{When}, the patient received: {items}.",
    ),
    "last_immunization_of_type": (
        "Your last {label} ({items}) was on {day}.",
        "The patient's last {label} ({items}) was given on {day}.",
    ),
    "count_immunizations": (
        "You have had {n} {label} {when}: {items}.",
        "The patient has received {n} {label} {when}: {items}.",
    ),
    "last_encounter": (
        "Your last {label} was on {day} ({items}).",
        "The patient's most recent {label} was on {day} ({items}).",
    ),
    "encounters_in_period": (
        "{When}, you had {n} {visits}: {items}.",
        "{When}, the patient had {n} {encounters}: {items}.",
    ),
    "count_encounters_in_period": (
        "You had {n} {visits} {when}: {items}.",
        "The patient had {n} {encounters} {when}: {items}.",
    ),
    "procedures_in_period": (
        "{When}, you had these procedures: {items}.",
        "{When}, the patient underwent: {items}.",
    ),
    "last_procedure": (
        "Your most recent procedure was on {day}: {items}.",
        "The patient's most recent procedure was on {day}: {items}.",
    ),
    "last_procedure_of_type": (
        "Your last {label} was on {day}.",
        "The patient's last {label} was on {day}.",
    ),
    "care_plans_active": (
        "Your active care plans are: {items}.",
        "The patient's active care plans are: {items}.",
    ),
    "diagnostic_report_latest": (
        "Your most recent {label} was on {day}: {items}.",
        "The patient's most recent {label} was on {day}: {items}.",
    ),
    "demographics_birthdate": (
        "You were born on {day}.",
        "The patient was born on {day}.",
    ),
    "demographics_age": (
        "You are {n} years old (born {day}).",
        "The patient is {n} years old (born {day}).",
    ),
    "demographics_gender": (
        "Your record lists your gender as {label}.",
        "The patient's recorded gender is {label}.",
    ),
    "smoking_status": (
        "Your most recent smoking status, recorded on {day}, is: {label}.",
        "The patient's most recent smoking status, recorded on {day}, is: {label}.",
    ),
}


_COUNTED = ("test", "result", "visit", "encounter")


def question(key: str, perspective: str, rng: random.Random, **slots: object) -> str:
    """A question for ``key`` in the voice of ``perspective``, with its slots filled."""
    return rng.choice(QUESTIONS[key][perspective]).format(**slots)


def answer(key: str, perspective: str, **slots: object) -> str:
    """The reference answer sentence for ``key`` in the voice of ``perspective``."""
    template = ANSWERS[key][0 if perspective == PATIENT else 1]
    when = str(slots.get("when", ""))
    # Counted nouns agree with the count: "1 visit", "3 visits".
    nouns = {f"{w}s": w if slots.get("n") == 1 else f"{w}s" for w in _COUNTED}
    return template.format(When=when[:1].upper() + when[1:], **nouns, **slots)


def join(items: Sequence[str]) -> str:
    """``a, b and c``; items are kept in the given order."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# SNOMED semantic tags at the end of displays: "Prediabetes (finding)".
_TAG_RE = re.compile(
    r"\s*\((?:disorder|finding|situation|procedure|substance|regime/therapy|record artifact"
    r"|observable entity|person|event|morphologic abnormality|qualifier value|product"
    r"|physical object|body structure|environment)\)$"
)
# Leading tokens of drug displays that are not names: doses, packs and NDA numbers.
_DRUG_NOISE_RE = re.compile(r"^(?:[\d./]+|[A-Z]+|NDA\d+|[A-Z]+\d+)$")


def short_name(display: str) -> str:
    """A display without its SNOMED semantic tag: "Prediabetes (finding)" → "Prediabetes"."""
    return _TAG_RE.sub("", display).strip() or display


def drug_name(display: str) -> str:
    """The name part of an RxNorm display, a substring of it.

    "Ibuprofen 200 MG Oral Tablet" → "Ibuprofen"; "24 HR Metformin hydrochloride 500 MG"
    → "Metformin hydrochloride"; "NDA020800 0.3 ML Epinephrine 1 MG/ML" → "Epinephrine".
    """
    tokens = display.split(" ")
    start = 0
    while start < len(tokens) - 1 and _DRUG_NOISE_RE.match(tokens[start]):
        start += 1
    end = start
    while end < len(tokens) and not tokens[end][:1].isdigit():
        end += 1
    return " ".join(tokens[start:end]).strip(" ,/") or display


def vaccine_name(display: str) -> str:
    """The first part of a CVX display: "Influenza, seasonal, injectable" → "Influenza"."""
    return display.split(",")[0].strip() or display


def lower_first(name: str) -> str:
    """ "Viral sinusitis" → "viral sinusitis"; acronyms ("COPD", "HbA1c") keep their case."""
    if len(name) > 1 and name[0].isupper() and name[1].islower():
        return name[0].lower() + name[1:]
    return name
