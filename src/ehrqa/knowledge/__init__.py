"""Clinical knowledge as reviewable data files, one typed loader and one phrase scanner.

The files in this folder (TOML and CSV, described in README.md) hold the concepts a question
can name with their codes and lay synonyms, drug classes, reference ranges, monitoring
targets, vaccine intervals and encounter classes. :func:`load_knowledge` reads and checks
them once; :mod:`ehrqa.knowledge.scanner` finds their phrases in text. This package sits
below select/, answer/ and cds/ and imports none of them.
"""

from ehrqa.knowledge.exclusions import Exclusion, excluded, load_exclusions
from ehrqa.knowledge.loader import CHILD_SCHEDULE_SOURCE, drug_disagreements, load_knowledge
from ehrqa.knowledge.model import (
    ChildSeries,
    Concept,
    Cue,
    Drug,
    DrugClass,
    EncounterClass,
    Knowledge,
    KnowledgeError,
    Monitor,
    ReferenceRange,
    RiskFactors,
    ScreeningInterval,
    VaccineInterval,
)

__all__ = [
    "CHILD_SCHEDULE_SOURCE",
    "ChildSeries",
    "Concept",
    "Cue",
    "Drug",
    "DrugClass",
    "EncounterClass",
    "Exclusion",
    "Knowledge",
    "KnowledgeError",
    "Monitor",
    "ReferenceRange",
    "RiskFactors",
    "ScreeningInterval",
    "VaccineInterval",
    "drug_disagreements",
    "excluded",
    "load_exclusions",
    "load_knowledge",
]
