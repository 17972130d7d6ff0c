"""The record-store protocol shared by the SQLite store and later server-backed stores."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ehrqa.fhir.record import Record


@dataclass(frozen=True)
class PatientSummary:
    """One line of the patient list."""

    id: str
    name: str
    birth_date: str | None
    gender: str | None
    resource_count: int


@dataclass
class UpsertStats:
    """What an upsert did to each record it was given."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0

    def add(self, other: UpsertStats) -> None:
        """Add the counts of ``other`` to these."""
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.stale += other.stale


@dataclass(frozen=True)
class CodedConcept:
    """One distinct coding in a patient's records, with the records that carry it.

    A coding of a record's main code (``Condition.code``, ``Immunization.vaccineCode``, the
    medication of a MedicationRequest, ...) keeps its ``system``; an Observation
    component's code (the systolic part of a blood-pressure panel) has ``system`` ``""``,
    as the code index stores it, and the component's name as ``display``. ``refs`` are the
    ``Type/id`` references of the records, sorted.
    """

    resource_type: str
    system: str
    code: str
    display: str
    refs: tuple[str, ...]


@dataclass(frozen=True)
class RecordQuery:
    """A structured filter over one patient's records. Empty tuples mean "any"."""

    patient_id: str
    types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: str | None = None
    end: str | None = None
    order: Literal["newest", "oldest"] = "newest"
    limit: int | None = None
    exclude_types: tuple[str, ...] = field(default=())


class RecordStore(Protocol):
    """Stores normalised records; all reads are per patient or per reference."""

    def transaction(self) -> AbstractContextManager[None]:
        """A context in which all writes commit together or not at all."""
        ...

    def upsert(self, records: Iterable[Record]) -> UpsertStats:
        """Insert new records, replace changed or newer ones, keep the rest."""
        ...

    def get(self, ref: str) -> Record:
        """Return the record ``Type/id``; raise NotFoundError when absent."""
        ...

    def get_many(self, refs: Sequence[str]) -> list[Record]:
        """Return the records that exist among ``refs``, in the given order."""
        ...

    def patients(self, search: str | None = None) -> list[PatientSummary]:
        """List patients, optionally filtered by a name/id substring."""
        ...

    def patient(self, patient_id: str) -> PatientSummary:
        """Return one patient; raise NotFoundError when absent."""
        ...

    def query(self, query: RecordQuery) -> list[Record]:
        """Return the patient's records matching the structured filter."""
        ...

    def search(
        self, patient_id: str, terms: Sequence[str], *, types: Sequence[str] = (), limit: int = 100
    ) -> list[tuple[Record, float]]:
        """Lexical search of the patient's records; higher score = better match."""
        ...

    def type_counts(self, patient_id: str) -> dict[str, int]:
        """Number of records of each resource type for the patient."""
        ...

    def distinct_codes(self, patient_id: str) -> list[CodedConcept]:
        """The patient's distinct (type, system, code, display) codings, each with its records.

        Sorted by resource type, display, system and code.
        """
        ...

    def iter_records(self, patient_id: str | None = None) -> Iterator[Record]:
        """Iterate over all records (of one patient)."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...
