"""The normalised form of one FHIR resource, as the store keeps it and prompts show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Short names for the code systems that appear in prompts and renderings.
SYSTEM_NAMES: dict[str, str] = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "http://unitsofmeasure.org": "UCUM",
}


@dataclass(frozen=True)
class Coding:
    """One code of a resource: system URI, code and human-readable display."""

    system: str
    code: str
    display: str = ""

    @property
    def system_name(self) -> str:
        """Short name of the code system (``LOINC``), or the URI when unknown."""
        return SYSTEM_NAMES.get(self.system, self.system)


@dataclass(frozen=True)
class Component:
    """One component of an Observation (e.g. systolic blood pressure)."""

    name: str
    value: float | None = None
    value_text: str | None = None
    unit: str | None = None
    code: str | None = None


@dataclass
class Record:
    """A normalised FHIR resource.

    ``date`` is the clinically meaningful start (effective/onset/authored/occurrence/period
    start) as an ISO 8601 string; ``day`` is its ``YYYY-MM-DD`` prefix. ``text`` is the
    compact one-line rendering used in prompts, starting with ``[Type/id]``.
    """

    ref: str
    resource_type: str
    id: str
    patient_id: str | None
    text: str
    date: str | None = None
    end_date: str | None = None
    codes: tuple[Coding, ...] = ()
    category: tuple[str, ...] = ()
    value: float | None = None
    value_text: str | None = None
    unit: str | None = None
    components: tuple[Component, ...] = ()
    status: str | None = None
    version: str | None = None
    last_updated: str | None = None
    resource: dict[str, Any] = field(default_factory=dict, repr=False)
    # Extra text for the lexical index only (e.g. a note's full decoded text).
    search_text: str = field(default="", repr=False)

    @property
    def day(self) -> str | None:
        """The ``YYYY-MM-DD`` part of :attr:`date`, or ``None``."""
        return self.date[:10] if self.date else None

    @property
    def display(self) -> str:
        """The first non-empty code display, or the resource type."""
        for coding in self.codes:
            if coding.display:
                return coding.display
        return self.resource_type
