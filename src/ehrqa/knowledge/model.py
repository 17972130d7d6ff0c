"""Typed records of the knowledge files: concepts, drugs, ranges, targets, intervals.

Every record is a frozen dataclass built by :mod:`ehrqa.knowledge.loader`; the lookups on
:class:`Knowledge` are pure functions of the loaded tables.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ehrqa.core.errors import EhrqaError


class KnowledgeError(EhrqaError):
    """A knowledge file is missing or malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Concept:
    """One clinical concept a question can name.

    ``codes`` are bare codes of one ``system`` (LOINC, SNOMED, CVX or RxNorm) as they occur
    in ``Coding.code``; ``terms`` are lower-case substrings of code displays and record
    texts; ``synonyms`` are the phrases that name the concept in a question. ``related``
    names concepts that stand in for this one when the question asks for another record
    type ("medication for diabetes" → the diabetes-medicine class). ``procedure_terms``: a
    Procedure record is about the concept only when its display also holds one of them (a
    vaccine recorded as the procedure "Vaccination for diphtheria, pertussis, and tetanus",
    never the test "Measurement of Varicella-zoster virus antibody"). ``diagnostic``: a test
    or scan whose findings are the diagnoses of its visit ("what did the chest x-ray show?"),
    not the other tests drawn that day.
    """

    name: str
    kind: str
    system: str
    codes: frozenset[str]
    terms: tuple[str, ...]
    synonyms: tuple[str, ...]
    resource_types: tuple[str, ...]
    category: str | None = None
    related: tuple[str, ...] = ()
    procedure_terms: tuple[str, ...] = ()
    diagnostic: bool = False

    @property
    def is_measurement(self) -> bool:
        """Whether records of this concept carry values (labs, vitals, scores)."""
        return self.kind in ("lab", "vital", "panel", "survey", "social")


@dataclass(frozen=True)
class Cue:
    """A phrase that names a kind of record: resource types and observation categories."""

    resource_types: tuple[str, ...]
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class CueRule:
    """Question phrases that all name one :class:`Cue`."""

    phrases: tuple[str, ...]
    cue: Cue


@dataclass(frozen=True)
class DrugClass:
    """A drug class a question can name, with the members found in RxNorm displays."""

    name: str
    synonyms: tuple[str, ...]
    members: tuple[str, ...]
    covers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Drug:
    """One ingredient with its own pharmacological classes and other names (brands)."""

    name: str
    classes: tuple[str, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class ReferenceRange:
    """An adult reference interval for one LOINC code: normal when ``low <= value <= high``."""

    loinc: str
    low: float | None
    high: float | None
    unit: str
    label: str
    source: str
    sex: str | None = None
    age_min: float | None = None
    age_max: float | None = None
    # Other spellings records use for the same measure (Java-Synthea writes eGFR in "mL/min").
    also_units: tuple[str, ...] = ()

    def measures(self, unit: str | None) -> bool:
        """Whether a value recorded in ``unit`` can be read against this range (no unit: yes)."""
        return not unit or unit == self.unit or unit in self.also_units

    def flag(self, value: float) -> str:
        """ "low", "high" or "normal" for ``value`` (in this range's unit)."""
        if self.low is not None and value < self.low:
            return "low"
        if self.high is not None and value > self.high:
            return "high"
        return "normal"

    def fits(self, sex: str | None, age: float | None) -> bool:
        """Whether this row applies to a patient of ``sex`` and ``age`` (None: unknown)."""
        if self.sex is not None and sex is not None and self.sex != sex:
            return False
        if age is None:
            return True
        low_ok = self.age_min is None or age >= self.age_min
        return low_ok and (self.age_max is None or age <= self.age_max)


# The states a smoking-status value answers with, in the order they are checked.
SMOKING_STATES = ("never", "former", "current")
COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Monitor:
    """A measure to follow for a condition and its usual adult target."""

    condition: str
    measure: str
    loinc: tuple[str, ...]
    comparator: str
    target: float
    unit: str
    source: str
    component: str | None = None
    # True when the target is the condition's own definition (obesity is BMI >= 30), so a
    # latest value at target means the condition is no longer met, not that it is treated.
    defines: bool = False
    # True when a recorded diagnosis stands whatever later measures say (osteoporosis).
    lasting: bool = False
    # The condition this one turns into when the measure reaches ``becomes_at`` (prediabetes
    # becomes diabetes at an HbA1c of 6.5 %), with the source of that threshold.
    becomes: str | None = None
    becomes_at: float | None = None
    becomes_source: str | None = None

    def met(self, value: float) -> bool:
        """Whether ``value`` (in :attr:`unit`) meets the target."""
        return COMPARATORS[self.comparator](value, self.target)

    @property
    def text(self) -> str:
        """The target as a reader sees it: "< 7 %"."""
        return f"{self.comparator} {self.target:g} {self.unit}"


@dataclass(frozen=True)
class VaccineInterval:
    """How often a vaccine is repeated: every ``years``, yearly, or never (a series)."""

    vaccine: str
    years: float | None
    annual: bool
    source: str


@dataclass(frozen=True)
class ScreeningInterval:
    """How often a screening test (a procedure concept) is repeated at average risk."""

    screening: str
    years: float
    source: str
    # Who the recommendation is for: ages (inclusive, None = open) and sex ("" = any).
    min_age: float | None = None
    max_age: float | None = None
    sex: str = ""

    def applies(self, age: float | None, sex: str | None) -> bool:
        """Whether the recommendation covers a patient of this age and sex (unknown: no)."""
        if age is None or (self.sex and self.sex != (sex or "").lower()):
            return False
        low = self.min_age if self.min_age is not None else 0
        high = self.max_age if self.max_age is not None else float("inf")
        return low <= age <= high


@dataclass(frozen=True)
class ChildSeries:
    """How many doses of a vaccine a child should have had by each age (months)."""

    vaccine: str
    due: tuple[tuple[int, int], ...]  # (age in months, cumulative doses), ascending
    label: str = ""  # how an answer names it ("MMR"); the concept name when empty

    def doses_due(self, months: int) -> int:
        """The doses due by ``months`` of age."""
        return max((doses for age, doses in self.due if age <= months), default=0)

    def next_step(self, months: int) -> tuple[int, int] | None:
        """The next (age in months, doses) step after ``months``, if any."""
        return next(((age, doses) for age, doses in self.due if age > months), None)


@dataclass(frozen=True)
class RiskFactors:
    """What raises the risk of a disease: condition concepts (and smoking), with a source."""

    disease: str
    also: tuple[str, ...]
    factors: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class EncounterClass:
    """An Encounter.class code with the reader's words and the lay phrases that ask for it."""

    code: str
    label: str
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class OrganGroups:
    """Group phrases that are an organ said alone ("kidneys": its function tests), and the
    words after them that keep that reading ("kidney function", "kidneys doing"). Before any
    other word the organ names a thing of its own ("a kidney transplant", "kidney stones")."""

    phrases: tuple[str, ...]
    tests_before: tuple[str, ...]


@dataclass(frozen=True)
class Knowledge:
    """Everything in the knowledge files, checked and cross-referenced. Build with
    :func:`ehrqa.knowledge.load_knowledge`."""

    concepts: tuple[Concept, ...]
    cues: tuple[CueRule, ...]
    groups: Mapping[str, tuple[str, ...]]
    concept_cues: Mapping[str, Cue]
    drug_classes: tuple[DrugClass, ...]
    drugs: tuple[Drug, ...]
    brands: Mapping[str, str]
    class_parents: Mapping[str, tuple[str, ...]]
    not_ingredients: frozenset[str]
    drug_indications: Mapping[str, tuple[str, ...]]
    reference_ranges: tuple[ReferenceRange, ...]
    monitors: tuple[Monitor, ...]
    vaccine_intervals: tuple[VaccineInterval, ...]
    encounter_classes: tuple[EncounterClass, ...]
    social_findings: tuple[str, ...] = ()
    # never / former / current: display phrases of smoking-status values, checked in order.
    smoking_states: dict[str, tuple[str, ...]] = field(default_factory=dict)
    risks: tuple[RiskFactors, ...] = ()
    child_schedule: tuple[ChildSeries, ...] = ()
    # A group phrase's lead concept: the one measure that answers for the whole group when
    # one value or verdict is asked ("what's my kidney function?" → eGFR).
    group_leads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    screening_intervals: tuple[ScreeningInterval, ...] = ()
    # A body site's lay word -> display substrings that place a record there ("hip" -> femur).
    body_sites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A concept that is always at a site ("contraceptive implant": the arm) -> those sites.
    implied_sites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # What a yes/no may ask of a recorded thing that no record states ("was it an accident?").
    unrecorded_properties: tuple[str, ...] = ()
    # An organ said alone asks for its tests; said before another word it names a thing.
    organ_groups: OrganGroups = field(default_factory=lambda: OrganGroups((), ()))
    _by_name: dict[str, Concept] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update((c.name, c) for c in self.concepts)

    # --- concepts -------------------------------------------------------------------------

    @property
    def by_name(self) -> Mapping[str, Concept]:
        """Concepts by name."""
        return self._by_name

    def concept(self, name: str) -> Concept | None:
        """The concept called ``name`` (exact), or None."""
        return self._by_name.get(name)

    def concepts_of(self, kind: str) -> tuple[Concept, ...]:
        """All concepts of one kind ("lab", "condition", "drug_class", …) in file order."""
        return tuple(c for c in self.concepts if c.kind == kind)

    def _resolve(self, key: str, kind: str) -> tuple[str, ...]:
        """Concept names of ``kind`` that ``key`` names: a name, a synonym or a code."""
        key = key.strip()
        low = key.lower()
        if (c := self._by_name.get(low)) is not None and c.kind == kind:
            return (c.name,)
        kinds = self.concepts_of(kind)
        by_code = tuple(c.name for c in kinds if key in c.codes or key.lstrip("0") in c.codes)
        if by_code:
            return by_code
        padded = key.zfill(2)
        by_code = tuple(c.name for c in kinds if padded in c.codes)
        return by_code or tuple(c.name for c in kinds if low in c.synonyms)

    # --- the lookups the answer and cds layers use -----------------------------------------

    def reference_range(
        self, loinc: str, *, sex: str | None = None, age: float | None = None
    ) -> ReferenceRange | None:
        """The adult reference interval for ``loinc``, preferring a row for the patient's sex.

        ``sex`` is "male"/"female" (FHIR ``Patient.gender``; anything else counts as unknown);
        ``age`` in years. None when no row applies (e.g. children: rows are adult).
        """
        sex = sex.lower() if sex and sex.lower() in ("male", "female") else None
        rows = [r for r in self.reference_ranges if r.loinc == loinc and r.fits(sex, age)]
        own = [r for r in rows if sex is not None and r.sex == sex]
        generic = [r for r in rows if r.sex is None]
        best = own or generic or rows
        return best[0] if best else None

    def monitoring(self, condition: str) -> tuple[Monitor, ...]:
        """Measures to follow for ``condition`` (concept name, synonym or SNOMED code)."""
        names = self._resolve(condition, "condition")
        return tuple(m for m in self.monitors if m.condition in names)

    def indications(self, drug: str) -> tuple[str, ...]:
        """Condition concepts ``drug`` (ingredient, synonym or brand) is commonly used for."""
        name = drug.strip().lower()
        name = self.brands.get(name, name)
        if name not in self.drug_indications:
            name = next((d.name for d in self.drugs if name in d.names), name)
        return self.drug_indications.get(name, ())

    def vaccine_interval(self, key: str) -> VaccineInterval | None:
        """The booster interval of a vaccine: CVX code ("113", "03"), concept name or synonym."""
        names = self._resolve(key, "vaccine")
        return next((v for v in self.vaccine_intervals if v.vaccine in names), None)

    def groups_said(self, text: str) -> list[str]:
        """The ``[groups]`` phrases ``text`` says as whole words ("kidney function")."""
        said = text.lower()
        return [p for p in self.groups if re.search(rf"\b{re.escape(p)}\b", said)]

    def screening_interval(self, concept: str) -> ScreeningInterval | None:
        """How often the screening ``concept`` (a procedure concept name) is repeated."""
        return next((i for i in self.screening_intervals if i.screening == concept), None)

    def child_series(self, key: str) -> ChildSeries | None:
        """A vaccine's childhood series: CVX code, concept name or synonym."""
        names = self._resolve(key, "vaccine")
        return next((s for s in self.child_schedule if s.vaccine in names), None)

    def risk_factors(self, disease: str) -> RiskFactors | None:
        """The risk factors of ``disease`` (a condition concept name, or one of its ``also``)."""
        return next((r for r in self.risks if disease == r.disease or disease in r.also), None)

    def is_social_finding(self, display: str) -> bool:
        """Whether a Condition's display records circumstances (employment, stress…), not a
        disease (``social_findings.toml``)."""
        text = display.lower()
        if "disorder" in text:  # "Post-traumatic stress disorder" is a disease
            return False
        return any(phrase in text for phrase in self.social_findings)

    def smoking_state(self, value: str) -> str | None:
        """ "never", "former" or "current" for a smoking-status value's display, else None."""
        text = value.lower()
        for state in SMOKING_STATES:
            if any(phrase in text for phrase in self.smoking_states.get(state, ())):
                return state
        return None

    def encounter_class(self, code: str) -> EncounterClass | None:
        """The Encounter.class code ``code`` ("EMER", "amb"), or None when unknown."""
        code = code.strip().upper()
        return next((e for e in self.encounter_classes if e.code == code), None)

    def class_ancestors(self, classes: tuple[str, ...]) -> tuple[str, ...]:
        """``classes`` with every wider class of :attr:`class_parents`, in order, each once."""
        found: list[str] = []
        stack = list(classes)[::-1]
        while stack:
            cls = stack.pop()
            if cls not in found:
                found.append(cls)
                stack.extend(reversed(self.class_parents.get(cls, ())))
        return tuple(found)
