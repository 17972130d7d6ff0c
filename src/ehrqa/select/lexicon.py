"""The vocabulary of patient questions: resource-type cue words and clinical concepts.

The vocabulary itself lives in the reviewable data files of :mod:`ehrqa.knowledge` (one file
per concept kind; see ``src/ehrqa/knowledge/README.md``). This module keeps the names that
select/, answer/ and the QA generator use — the tables as tuples of rows, the concept list,
the scanner — and adds how a question's matches resolve to resource types and categories.

A *concept* is one clinical thing a question can name — a lab, a vital sign, a condition, a
vaccine, a drug class, a single drug, an allergen, a procedure — with the codes that identify
it in Synthea-style FHIR data and the lower-case ``terms`` to look for in code displays when
the codes differ. A *cue* is a word that names a kind of record ("labs", "vaccines", "visit")
and so a FHIR resource type and, for observations, a category. Matching is word-based and
longest-first (:mod:`ehrqa.knowledge.scanner`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Final

from ehrqa.core.errors import NotFoundError
from ehrqa.knowledge import Concept, Cue, load_knowledge
from ehrqa.knowledge.scanner import Match, find_concepts, fold, phrase_key, scan, words

__all__ = [
    "CONCEPTS",
    "CONCEPTS_BY_NAME",
    "Concept",
    "Cue",
    "Match",
    "find_categories",
    "find_concepts",
    "find_resource_types",
    "fold",
    "get_concept",
    "phrase_key",
    "resolve_categories",
    "resolve_types",
    "scan",
    "words",
]

# --- resource types ------------------------------------------------------------------------

OBSERVATION: Final = ("Observation",)
MEDICATION_TYPES: Final = ("MedicationRequest", "MedicationStatement")
LAB_CATEGORY: Final = "laboratory"
VITAL_CATEGORY: Final = "vital-signs"
SOCIAL_CATEGORY: Final = "social-history"
SURVEY_CATEGORY: Final = "survey"

# --- the tables, read from the knowledge files ------------------------------------------------

_KB: Final = load_knowledge()
CONCEPTS: Final = _KB.concepts
CONCEPTS_BY_NAME: Final = {c.name: c for c in CONCEPTS}


def _rows(kind: str) -> tuple[tuple[str, ...], ...]:
    """Concepts of ``kind`` as the old table rows: (name, codes, phrases, terms[, related])."""
    rows = []
    for c in _KB.concepts_of(kind):
        row = (c.name, " ".join(sorted(c.codes)), "|".join(c.synonyms[1:]), "|".join(c.terms))
        rows.append((*row, "|".join(c.related)) if c.related else row)
    return tuple(rows)


LABS: Final = _rows("lab")
PANELS: Final = _rows("panel")
VITALS: Final = _rows("vital")
SURVEYS: Final = _rows("survey")
SOCIAL: Final = _rows("social")
CONDITIONS: Final = _rows("condition")
VACCINES: Final = _rows("vaccine")
ALLERGENS: Final = _rows("allergen")
PROCEDURES: Final = _rows("procedure")
ENCOUNTERS: Final = _rows("encounter")
# Drug classes: (name, lay phrases, members as they appear in RxNorm displays), "|"-joined.
DRUG_CLASSES: Final = tuple(
    (c.name, "|".join(c.synonyms), "|".join(c.members)) for c in _KB.drug_classes
)
# Brand names that name one ingredient: folded into that ingredient's concept.
BRANDS: Final = dict(_KB.brands)
NOT_INGREDIENTS: Final = _KB.not_ingredients
# Lay phrases that name several concepts at once.
GROUP_PHRASES: Final = dict(_KB.groups)
# Cue phrases: (phrases, resource types, categories).
RESOURCE_CUES: Final = tuple(
    ("|".join(r.phrases), r.cue.resource_types, r.cue.categories) for r in _KB.cues
)
# Concept phrases that also name a record kind (smoking is asked about as a kind).
CONCEPT_CUES: Final = dict(_KB.concept_cues)
ORGAN_GROUPS: Final = _KB.organ_groups


# --- resolving types and categories ------------------------------------------------------------

# Cue types that only set the scene ("my A1c at my last visit"): concepts keep their types.
CONTEXT_TYPES: Final = frozenset(
    {
        "Encounter",
        "Patient",
        "DocumentReference",
        "CareTeam",
        "Practitioner",
        "Coverage",
        "Claim",
        "ExplanationOfBenefit",
    }
)
_OBSERVATION_TYPES: Final = frozenset({"Observation", "DiagnosticReport"})


def _ordered_union(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group))


def resolve_types(matches: Sequence[Match]) -> tuple[str, ...]:
    """The resource types that ``matches`` ask for, cue types first.

    A cue names the kind of record and overrides the types its concepts would imply
    ("allergic to penicillin" asks for allergies, not prescriptions), unless every cue only
    gives context ("my A1c at my last visit" still asks for the A1c observation). Concepts
    that fit a cued type bring their sibling types (lipid panel → reports as well).
    """
    # "What care plans am I on?": "am I on" asks for medicines only when no other kind of
    # record is named.
    named = [m for m in matches if m.cue and not set(m.cue.resource_types) <= set(MEDICATION_TYPES)]
    matches = [
        m for m in matches if not (named and m.cue and m.phrase.endswith(" on") and not m.concepts)
    ]
    cue_types = _ordered_union(m.cue.resource_types for m in matches if m.cue)
    concept_types = _ordered_union(c.resource_types for m in matches for c in m.concepts)
    if not cue_types:
        return concept_types
    if all(t in CONTEXT_TYPES for t in cue_types):
        return _ordered_union((cue_types, concept_types))
    shot_of = [
        c for m in matches for c in m.concepts if set(c.resource_types) <= set(MEDICATION_TYPES)
    ]
    vaccine = any(c.kind == "vaccine" for m in matches for c in m.concepts)
    if set(cue_types) == {"Immunization"} and shot_of and not vaccine:
        # "B12 shots", "insulin injections": a medicine given as a shot is a prescription
        # ("when she got the B12 shot, what was her blood count?": and the count).
        return concept_types
    fitting = [
        c.resource_types
        for m in matches
        for c in m.concepts
        if set(c.resource_types) & set(cue_types)
    ]
    return _ordered_union((cue_types, *fitting))


def resolve_categories(
    matches: Sequence[Match], concepts: Iterable[Concept], types: Sequence[str]
) -> tuple[str, ...]:
    """Observation categories from cues and concepts; none when no observations are asked."""
    if types and not _OBSERVATION_TYPES & set(types):
        return ()
    cues = (m.cue.categories for m in matches if m.cue)
    own = ((c.category,) for c in concepts if c.category and "Observation" in c.resource_types)
    return _ordered_union((*cues, *own))


# --- lookups ---------------------------------------------------------------------------------


def get_concept(name: str) -> Concept:
    """The concept called ``name``; :class:`NotFoundError` names close matches otherwise."""
    try:
        return CONCEPTS_BY_NAME[name]
    except KeyError:
        close = difflib.get_close_matches(name, CONCEPTS_BY_NAME, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFoundError(f"unknown concept {name!r}{hint}") from None


def find_resource_types(text: str) -> tuple[str, ...]:
    """FHIR resource types ``text`` asks for ("vaccines" → Immunization, "BMI" → Observation)."""
    return resolve_types(scan(text))


def find_categories(text: str) -> tuple[str, ...]:
    """Observation categories ``text`` asks for ("labs" → laboratory, "BMI" → vital-signs)."""
    matches = scan(text)
    concepts = [c for m in matches for c in m.concepts]
    return resolve_categories(matches, concepts, resolve_types(matches))
