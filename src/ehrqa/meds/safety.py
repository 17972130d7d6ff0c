"""Medication safety: a drug against the patient's allergies, medicines, kidneys and problems.

:func:`check_medication` checks a proposed drug; :func:`check_current_medications` checks
what the patient already takes. Both return :class:`SafetyWarning` objects, most severe
first, each naming the patient resources behind it and the rule that fired. The knowledge
lives in :mod:`ehrqa.meds.drugs` as tables; this module only matches drugs to rows.

Drugs are recognised by generic and brand name in code displays and text
(:func:`find_drugs`), so the checks work on Synthea's RxNorm displays ("lisinopril 10 MG
Oral Tablet"), on allergy displays ("Penicillin V") and on free text ("start Augmentin").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, cast

from ehrqa.core.errors import NotFoundError
from ehrqa.fhir.record import Record
from ehrqa.knowledge.scanner import fold
from ehrqa.meds.context import PatientContext
from ehrqa.meds.drugs import (
    ALLERGY_CLASS_NAMES,
    ALLERGY_CROSS,
    BRANDS,
    CLASS_PARENTS,
    CONDITION_RULES,
    DRUGS,
    DUPLICATE_CLASSES,
    EGFR_LOINCS,
    INTERACTIONS,
    LOW_DOSE_ASPIRIN_MG,
    RENAL,
    SAME_DRUG_BASIS,
    TRIPLE_WHAMMY,
    TRIPLE_WHAMMY_PAIRS,
)

Kind = Literal["allergy", "interaction", "renal", "condition", "duplicate"]
Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement")
# Allergy records that say the allergy is not real.
NOT_AN_ALLERGY = ("refuted", "entered-in-error")


@dataclass(frozen=True)
class Drug:
    """One drug as named somewhere: its generic name, its classes and the text found."""

    name: str
    classes: tuple[str, ...]
    mention: str


@dataclass(frozen=True)
class SafetyWarning:
    """One safety problem: what it is, how bad, the resources behind it and the rule."""

    kind: Kind
    severity: Severity
    message: str
    refs: tuple[str, ...]
    basis: str


# --- recognising drugs ---------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[a-z]+|\d+(?:\.\d+)?", re.IGNORECASE)


def _expand(classes: Iterable[str]) -> tuple[str, ...]:
    """The classes with all their ancestors, in order, each once."""
    found: list[str] = []
    stack = list(classes)[::-1]
    while stack:
        cls = stack.pop()
        if cls not in found:
            found.append(cls)
            stack.extend(reversed(CLASS_PARENTS.get(cls, ())))
    return tuple(found)


def _key(phrase: str) -> tuple[str, ...]:
    return tuple(fold(t.lower()) for t in _TOKEN_RE.findall(phrase))


def _build_index() -> tuple[dict[tuple[str, ...], str], dict[str, tuple[str, ...]]]:
    """Phrase (folded tokens) → generic name, and generic name → expanded classes."""
    classes = {name: _expand(own.split("|")) for name, own, _ in DRUGS}
    index: dict[tuple[str, ...], str] = {}
    for name, _, others in DRUGS:
        for phrase in (name, *others.split("|")):
            if phrase:
                index.setdefault(_key(phrase), name)
    for brand, generic in BRANDS.items():
        if generic in classes:
            index.setdefault(_key(brand), generic)
    return index, classes


_INDEX, DRUG_CLASSES = _build_index()
_MAX_WORDS = max(len(k) for k in _INDEX)
_CLASS_INDEX = {_key(phrase): cls for phrase, cls in ALLERGY_CLASS_NAMES.items()}


def _low_dose_aspirin(tokens: Sequence[str], start: int, end: int) -> bool:
    """Whether "aspirin" at ``tokens[start:end]`` is a low (antiplatelet) dose."""
    if tokens[max(0, start - 2) : start] == ["low", "dose"]:
        return True
    for token in tokens[end : end + 3]:
        if token[0].isdigit():
            return float(token) <= LOW_DOSE_ASPIRIN_MG
    return False


def _scan(text: str, index: dict[tuple[str, ...], str]) -> Iterator[tuple[str, str, bool]]:
    """(name, mention, low-dose-aspirin) for each phrase of ``index`` in ``text``, longest first."""
    matches = list(_TOKEN_RE.finditer(text))
    tokens = [fold(m.group().lower()) for m in matches]
    i = 0
    while i < len(tokens):
        for width in range(min(_MAX_WORDS, len(tokens) - i), 0, -1):
            name = index.get(tuple(tokens[i : i + width]))
            if name is not None:
                mention = text[matches[i].start() : matches[i + width - 1].end()]
                yield name, mention, name == "aspirin" and _low_dose_aspirin(tokens, i, i + width)
                i += width
                break
        else:
            i += 1


def find_drugs(text: str) -> list[Drug]:
    """Every known drug named in ``text`` (generic or brand), in order, each once.

    Aspirin with a dose of at most 150 mg ("Aspirin 81 MG", "low dose aspirin") is an
    antiplatelet only; otherwise it is an NSAID as well.
    """
    found: dict[str, Drug] = {}
    for name, mention, low_dose in _scan(text, _INDEX):
        if name not in found:
            classes = ("antiplatelet",) if low_dose else DRUG_CLASSES[name]
            found[name] = Drug(name, classes, mention)
    return list(found.values())


def _allergens(text: str) -> list[Drug]:
    """The drugs and drug classes an allergy text names ("Allergy to cephalosporins")."""
    found = {d.name: d for d in find_drugs(text)}
    for cls, mention, _ in _scan(text, _CLASS_INDEX):
        if not any(cls in d.classes for d in found.values()):
            found.setdefault(cls, Drug(cls, _expand([cls]), mention))
    return list(found.values())


def _concept_texts(record: Record) -> list[str]:
    """Code displays and the CodeableConcept texts of a medication or allergy resource."""
    texts = [c.display for c in record.codes if c.display]
    resource = record.resource
    for key in ("medicationCodeableConcept", "code"):
        concept = resource.get(key)
        if isinstance(concept, dict) and isinstance(concept.get("text"), str):
            texts.append(concept["text"])
    for reaction in resource.get("reaction") or ():
        substance = reaction.get("substance") if isinstance(reaction, dict) else None
        if isinstance(substance, dict):
            texts += [c.get("display", "") for c in substance.get("coding") or () if c]
            texts.append(substance.get("text") or "")
    return [t for t in texts if isinstance(t, str) and t]


def drugs_of(record: Record) -> list[Drug]:
    """The drugs of a MedicationRequest, MedicationStatement or AllergyIntolerance record.

    Read from the code displays and texts (and an allergy's reaction substances); an
    allergy may also name a class ("cephalosporins"), returned as a drug of that class.
    """
    finder = _allergens if record.resource_type == "AllergyIntolerance" else find_drugs
    found: dict[str, Drug] = {}
    for text in _concept_texts(record):
        for drug in finder(text):
            found.setdefault(drug.name, drug)
    return list(found.values())


def resolve_drug(drug: Drug | str) -> Drug:
    """A :class:`Drug` for a drug or a drug's name; NotFoundError naming close known names."""
    if isinstance(drug, Drug):
        return drug
    found = find_drugs(drug)
    if found:
        return found[0]
    close = difflib.get_close_matches(drug.lower().strip(), list(DRUG_CLASSES), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise NotFoundError(f"{drug!r} names no drug known to the safety checks{hint}")


def matches(drug: Drug, target: str) -> bool:
    """Whether ``drug`` meets a rule target: generic names or classes joined by "|"."""
    return any(t == drug.name or t in drug.classes for t in target.split("|"))


# --- the checks ------------------------------------------------------------------------------

Item = tuple[Drug, Record | None]  # a drug and the record it comes from (None: proposed)


def _warn(
    kind: Kind, severity: str, message: str, refs: tuple[str, ...], basis: str
) -> SafetyWarning:
    """A warning from a table row (the tables' severities are checked by the tests)."""
    if severity not in SEVERITY_RANK:
        raise ValueError(f"unknown severity {severity!r} in a safety rule")
    return SafetyWarning(kind, cast(Severity, severity), message, refs, basis)


def _refs(*records: Record | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.ref for r in records if r is not None))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _label(record: Record) -> str:
    """A condition's display without its SNOMED tag: "Asthma (disorder)" → "Asthma"."""
    return _cap(re.sub(r"\s*\([^)]*\)\s*$", "", record.display))


def _allergy_warnings(item: Item, allergies: Sequence[Record]) -> list[SafetyWarning]:
    drug, source = item
    found = []
    for allergy in allergies:
        verification = allergy.resource.get("verificationStatus") or {}
        codes = {c.get("code") for c in verification.get("coding") or () if isinstance(c, dict)}
        if codes & set(NOT_AN_ALLERGY):
            continue
        # One warning per allergy record: Synthea codes a class allergy with every member
        # ("Lisinopril", "Captopril", …); the drug itself, else the most severe, speaks.
        ruled = [(a, r) for a in drugs_of(allergy) if (r := _allergy_rule(a, drug)) is not None]
        if not ruled:
            continue
        allergen, (severity, relation, basis) = min(
            ruled, key=lambda pair: (SEVERITY_RANK[pair[1][0]], pair[0].name != drug.name)
        )
        message = f"{_cap(allergen.mention)} allergy recorded: {drug.name} {relation}."
        found.append(_warn("allergy", severity, message, _refs(allergy, source), basis))
    return found


def _allergy_rule(allergen: Drug, drug: Drug) -> tuple[str, str, str] | None:
    """(severity, relation, basis) of giving ``drug`` to someone allergic to ``allergen``."""
    if allergen.name == drug.name:
        basis = "A recorded allergy to a drug means the drug must not be given again."
        return "critical", "is the recorded allergen", basis
    rules = [
        (severity, relation, basis)
        for allergen_class, drug_class, severity, relation, basis in ALLERGY_CROSS
        if allergen_class in allergen.classes and drug_class in drug.classes
    ]
    return min(rules, key=lambda rule: SEVERITY_RANK[rule[0]], default=None)


def _pair_warnings(a: Item, b: Item, skip: frozenset[tuple[str, str]]) -> list[SafetyWarning]:
    """Interactions and duplicate therapy between two drugs of different records."""
    (x, x_source), (y, y_source) = a, b
    refs = _refs(x_source, y_source)
    found = []
    for first, second, severity, effect, basis in INTERACTIONS:
        if (first, second) in skip:
            continue
        if (matches(x, first) and matches(y, second)) or (matches(x, second) and matches(y, first)):
            message = f"{_cap(x.name)} with {y.name}: {effect}."
            found.append(_warn("interaction", severity, message, refs, basis))
    duplicate = _duplicate(x, y, proposed=x_source is None)
    if duplicate is not None:
        severity, message, basis = duplicate
        found.append(_warn("duplicate", severity, message, refs, basis))
    return found


def _duplicate(x: Drug, y: Drug, *, proposed: bool) -> tuple[str, str, str] | None:
    """(severity, message, basis) when ``x`` and ``y`` duplicate each other."""
    if x.name == y.name:
        where = "is already prescribed" if proposed else "appears in two active prescriptions"
        return "warning", f"Duplicate therapy: {x.name} {where}.", SAME_DRUG_BASIS
    for cls, label, severity, basis in DUPLICATE_CLASSES:
        if cls in x.classes and cls in y.classes:
            return severity, f"Duplicate therapy: {x.name} and {y.name} are both {label}.", basis
    return None


def _triple_whammy(items: Sequence[Item], must_include: Item | None) -> SafetyWarning | None:
    """The triple-whammy warning when the items hold all three classes."""
    classes, severity, _, basis = TRIPLE_WHAMMY
    chosen: list[Item] = []
    for cls in classes:
        # The proposed drug fills its class first, so the warning is about it.
        pool = [must_include, *items] if must_include is not None else list(items)
        item = next((i for i in pool if i is not None and cls in i[0].classes), None)
        if item is None:
            return None
        chosen.append(item)
    if must_include is not None and must_include not in chosen:
        return None
    chosen.sort(key=lambda item: item is not must_include)  # the proposed drug named first
    names = list(dict.fromkeys(d.name for d, _ in chosen))
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    message = f"Triple whammy: {listed} together risk acute kidney injury."
    refs = _refs(*(source for _, source in chosen))
    return _warn("interaction", severity, message, refs, basis)


def latest_egfr(context: PatientContext) -> Record | None:
    """The newest eGFR result with a value in the context's labs, or ``None``."""
    results = [
        r
        for r in context.labs
        if r.value is not None and any(c.code in EGFR_LOINCS for c in r.codes)
    ]
    return max(results, key=lambda r: r.date or "", default=None)


def _renal_warnings(item: Item, egfr: Record | None) -> list[SafetyWarning]:
    drug, source = item
    if egfr is None or egfr.value is None:
        return []
    for target, low, high, severity, advice, basis in RENAL:
        if matches(drug, target) and low <= egfr.value < high:
            when = f" on {egfr.day}" if egfr.day else ""
            message = f"eGFR is {egfr.value:g}{when}: {advice.format(drug=drug.name)}."
            refs = _refs(egfr, source)
            return [_warn("renal", severity, message, refs, basis)]
    return []


def condition_matches(record: Record, terms: str) -> bool:
    """Whether a condition's displays contain one of the "|"-separated terms, un-negated."""
    displays = [c.display.lower() for c in record.codes if c.display] or [record.display.lower()]
    for term in terms.split("|"):
        negated = re.compile(rf"\b(?:no|not|non)[\s-]+{re.escape(term)}")
        if any(term in d and not negated.search(d) for d in displays):
            return True
    return False


def _condition_warnings(item: Item, conditions: Sequence[Record]) -> list[SafetyWarning]:
    drug, source = item
    found = []
    for target, terms, severity, effect, basis in CONDITION_RULES:
        if not matches(drug, target):
            continue
        hits = [c for c in conditions if condition_matches(c, terms)]
        if hits:
            more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
            message = f"{_label(hits[0])}{more} recorded: {drug.name} {effect}."
            refs = _refs(*hits, source)
            found.append(_warn("condition", severity, message, refs, basis))
    return found


def _single_drug_warnings(item: Item, context: PatientContext) -> list[SafetyWarning]:
    """Allergy, renal and condition warnings of one drug."""
    return [
        *_allergy_warnings(item, context.allergies),
        *_renal_warnings(item, latest_egfr(context)),
        *_condition_warnings(item, context.conditions),
    ]


def _finish(warnings: Iterable[SafetyWarning]) -> list[SafetyWarning]:
    """Each warning once, most severe first (otherwise in the order found)."""
    unique = dict.fromkeys(warnings)
    return sorted(unique, key=lambda w: SEVERITY_RANK[w.severity])


def current_drugs(context: PatientContext) -> list[Item]:
    """Every drug of the patient's active medication records, with its record."""
    return [
        (drug, record)
        for record in context.medications
        if record.resource_type in MEDICATION_TYPES
        for drug in drugs_of(record)
    ]


def check_medication(drug: Drug | str, context: PatientContext) -> list[SafetyWarning]:
    """Check a proposed drug against the patient's allergies, medicines, eGFR and problems.

    A string is read with :func:`find_drugs` (its first drug); NotFoundError when it names
    no known drug. Warnings come most severe first; each names the resources behind it.
    """
    proposed: Item = (resolve_drug(drug), None)
    current = current_drugs(context)
    found = _single_drug_warnings(proposed, context)
    triple = _triple_whammy(current, proposed)
    skip = TRIPLE_WHAMMY_PAIRS if triple is not None else frozenset()
    found += [triple] if triple is not None else []
    for item in current:
        found += _pair_warnings(proposed, item, skip)
    return _finish(found)


def check_current_medications(context: PatientContext) -> list[SafetyWarning]:
    """The same checks over what the patient already takes.

    Interactions and duplicates once per pair of drugs from different records; allergy,
    renal and condition problems once per drug.
    """
    current = current_drugs(context)
    found: list[SafetyWarning] = []
    for item in current:
        found += _single_drug_warnings(item, context)
    triple = _triple_whammy(current, None)
    skip = TRIPLE_WHAMMY_PAIRS if triple is not None else frozenset()
    found += [triple] if triple is not None else []
    for a, b in combinations(current, 2):
        if a[1] is not b[1]:
            found += _pair_warnings(a, b, skip)
    return _finish(found)
