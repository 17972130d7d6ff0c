"""Ingestion: FHIR files → validated, normalised records in a store.

Each file is written in one transaction: an interrupted ingest, or a file that turns out to
be broken half-way (invalid JSON at byte 150,000,000, past the size cap), leaves every file
either fully stored or not at all. Invalid entries are reported (file, entry, type, element
path) and skipped; with ``strict=True`` a file with any invalid entry is rejected whole.

A file is read twice, entry by entry, and never held whole (see :mod:`ehrqa.fhir.parse`):
the first pass maps ``fullUrl``s and finds the file's patients, the second validates,
normalises and stores. Reported besides invalid entries: two entries with the same id and
different content (the first is kept), and records of patients that are neither in the
ingested files nor in the store (checked once every file is in, so a bulk export's
``Observation.ndjson`` may come before its ``Patient.ndjson``).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from ehrqa.core.errors import FhirValidationError, NotFoundError
from ehrqa.fhir.elements import PATIENT_FIELDS
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.parse import (
    DEFAULT_MAX_BYTES,
    FileEntries,
    FullUrls,
    RawEntry,
    SourceUnit,
    find_files,
    open_unit,
    rewrite_references,
)
from ehrqa.fhir.record import Record
from ehrqa.fhir.render import note_text
from ehrqa.fhir.validate import REFERENCE_PATTERN, Validator, get_validator, grammar_issues
from ehrqa.store.base import RecordStore, UpsertStats

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# How many validation problems of one entry are reported before "and N more".
MAX_ISSUES_PER_ENTRY = 5
# How many problems of one file are kept (a garbage file must not fill memory with them).
MAX_ISSUES_PER_FILE = 200
# Records handed to the store at a time, inside the file's one transaction.
UPSERT_BATCH = 500
# In a file too large to hold, only these types are kept for resolving references (a
# MedicationRequest's Medication, a reason Condition): they are few, and they are what
# rendering looks up. A file held in memory resolves references to any type.
RESOLVED_TYPES = frozenset(
    {"Medication", "Condition", "Procedure", "DiagnosticReport", "AllergyIntolerance"}
)


@dataclass(frozen=True)
class IngestIssue:
    """One invalid entry (or unreadable file): where it is and what is wrong."""

    location: str
    resource_type: str
    path: str
    message: str

    def __str__(self) -> str:
        what = " ".join(p for p in (self.resource_type, self.path) if p)
        text = f"{self.location}: {what + ': ' if what else ''}{self.message}"
        # Paths and values come from the file: a newline in a key must not forge a line.
        return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


@dataclass
class IngestReport:
    """The outcome of one ingest call."""

    files: int = 0
    resources_read: int = 0
    stats: UpsertStats = field(default_factory=UpsertStats)
    issues: list[IngestIssue] = field(default_factory=list)
    rejected_files: list[str] = field(default_factory=list)
    skipped_entries: int = 0
    duplicates: int = 0
    unknown_patients: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def stored(self) -> int:
        """Resources inserted or updated."""
        return self.stats.inserted + self.stats.updated

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "files": self.files,
            "resources_read": self.resources_read,
            "inserted": self.stats.inserted,
            "updated": self.stats.updated,
            "unchanged": self.stats.unchanged,
            "stale": self.stats.stale,
            "invalid": self.skipped_entries,
            "duplicates": self.duplicates,
            "unknown_patients": self.unknown_patients,
            "rejected_files": self.rejected_files,
            "issues": [str(i) for i in self.issues],
            "seconds": round(self.seconds, 3),
        }


# Patient id → (number of records that refer to it, where the first one is).
PatientRefs = dict[str, tuple[int, str]]


def ingest_paths(
    store: RecordStore,
    paths: Iterable[str | Path],
    *,
    validator: str | Validator = "fhirkit",
    strict: bool = False,
    on_file: Callable[[Path, int], None] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IngestReport:
    """Ingest files and folders of FHIR R4 Bundles and ndjson into ``store``.

    ``max_bytes`` caps what one file may hold once decompressed (a larger file is
    rejected, naming the cap). ``on_file(path, n_entries)`` is called after each file
    (for progress bars).
    """
    check = get_validator(validator) if isinstance(validator, str) else validator
    report = IngestReport()
    started = time.perf_counter()
    pending: PatientRefs = {}
    for path in find_files(paths):
        report.files += 1
        n = ingest_unit(store, open_unit(path, max_bytes), check, strict, report, pending)
        if on_file is not None:
            on_file(path, n)
    report_unknown_patients(store, pending, report)
    report.seconds = time.perf_counter() - started
    return report


class _Rejected(Exception):
    """Raised inside a file's transaction to roll it back (``--strict``)."""


@dataclass
class _UnitIndex:
    """What the first pass over a unit learns."""

    entries: int = 0
    full_urls: FullUrls = field(default_factory=FullUrls)
    by_ref: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _FileOutcome:
    """One unit's counts and problems, added to the report only once it is decided."""

    location: str
    stats: UpsertStats = field(default_factory=UpsertStats)
    issues: list[IngestIssue] = field(default_factory=list)
    more_issues: int = 0
    invalid: int = 0
    duplicates: int = 0
    patients: set[str] = field(default_factory=set)
    patient_refs: PatientRefs = field(default_factory=dict)

    def problem(self, issues: list[IngestIssue]) -> None:
        """Count one invalid entry and keep its issues (up to the file's limit)."""
        self.invalid += 1
        room = max(MAX_ISSUES_PER_FILE - len(self.issues), 0)
        self.issues.extend(issues[:room])
        self.more_issues += len(issues) - min(room, len(issues))

    def all_issues(self) -> list[IngestIssue]:
        """The kept issues, and a line counting the rest."""
        more = [IngestIssue(self.location, "", "", f"and {self.more_issues} more problems")]
        return self.issues + (more if self.more_issues else [])


def ingest_unit(
    store: RecordStore,
    unit: SourceUnit,
    check: Validator,
    strict: bool,
    report: IngestReport,
    pending: PatientRefs | None = None,
) -> int:
    """Validate, normalise and store one unit in one transaction, adding to ``report``.

    The step shared by file ingestion and server ingestion (one unit = one file or one
    patient fetched from a FHIR server). References to patients outside the unit are
    added to ``pending`` for the caller to check once everything is in; without
    ``pending`` they are checked against the store at once. Returns the number of entries.
    """
    location = str(unit.path)
    if unit.error is not None:
        _reject(report, location, [_file_issue(unit.error, location)])
        return 0
    outcome = _FileOutcome(location)
    index = _UnitIndex()
    try:
        index = _index_unit(unit)
        with store.transaction():
            records = _records(unit, index, check, outcome)
            while batch := list(islice(records, UPSERT_BATCH)):
                outcome.stats.add(store.upsert(batch))
            if strict and outcome.invalid:
                raise _Rejected
    except _Rejected:
        report.resources_read += index.entries
        report.skipped_entries += index.entries
        _reject(report, location, outcome.all_issues())
        return index.entries
    except FhirValidationError as exc:  # the file broke off: nothing of it was stored
        _reject(report, location, [_file_issue(exc, location)])
        return index.entries
    report.resources_read += index.entries
    report.skipped_entries += outcome.invalid
    report.duplicates += outcome.duplicates
    report.issues.extend(outcome.all_issues())
    report.stats.add(outcome.stats)
    refs = {p: ref for p, ref in outcome.patient_refs.items() if p not in outcome.patients}
    if pending is None:
        report_unknown_patients(store, refs, report)
    else:
        _merge_refs(pending, refs)
    return index.entries


def report_unknown_patients(store: RecordStore, refs: PatientRefs, report: IngestReport) -> None:
    """Report each patient that records refer to but that is not in the store."""
    for pid, (count, first) in sorted(refs.items()):
        try:
            store.get(f"Patient/{pid}")
        except NotFoundError:
            report.unknown_patients.append(pid)
            what = "1 record refers" if count == 1 else f"{count} records refer"
            report.issues.append(
                IngestIssue(
                    first,
                    "",
                    "",
                    f"{what} to Patient/{pid}, which is neither in the ingested files nor "
                    "in the store (stored; ingest the patient to link them)",
                )
            )


def _reject(report: IngestReport, location: str, issues: list[IngestIssue]) -> None:
    report.issues.extend(issues)
    report.rejected_files.append(location)


def _file_issue(exc: FhirValidationError, location: str) -> IngestIssue:
    return IngestIssue(exc.location or location, exc.resource_type, exc.path, exc.message)


def _merge_refs(into: PatientRefs, refs: PatientRefs) -> None:
    for pid, (count, first) in refs.items():
        before = into.get(pid)
        into[pid] = (count, first) if before is None else (before[0] + count, before[1])


def _index_unit(unit: SourceUnit) -> _UnitIndex:
    """First pass: ``fullUrl`` → ``Type/id`` and the resources to resolve references to."""
    index = _UnitIndex(full_urls=FullUrls(unit.full_urls))
    held: list[tuple[str, dict[str, Any]]] = []
    for entry in unit.entries:
        index.entries += 1
        res = entry.resource
        if not isinstance(res, dict):
            continue
        rtype, rid = res.get("resourceType"), res.get("id")
        if not isinstance(rtype, str) or not isinstance(rid, str):
            continue
        ref = f"{rtype}/{rid}"
        if entry.full_url:
            index.full_urls.add(entry.full_url, rtype, rid)
        if _in_memory(unit):
            held.append((ref, res))
        elif rtype in RESOLVED_TYPES:
            # Rendering reads only a referenced resource's code: keep no more of it.
            index.by_ref[ref] = {k: res[k] for k in ("resourceType", "id", "code") if k in res}
    index.by_ref.update(held)
    return index


def _in_memory(unit: SourceUnit) -> bool:
    """Whether the unit's entries are held in memory (every reference can be resolved)."""
    entries = unit.entries
    return entries.in_memory if isinstance(entries, FileEntries) else True


def _records(
    unit: SourceUnit, index: _UnitIndex, check: Validator, outcome: _FileOutcome
) -> Iterator[Record]:
    """Second pass: the unit's valid records; problems go to ``outcome``."""
    seen: dict[str, tuple[bytes, int]] = {}
    for entry in unit.entries:
        problems = _entry_problems(entry, check)
        if not problems:
            try:
                record = _to_record(entry.resource, index)
            except FhirValidationError as exc:
                problems = [IngestIssue(entry.location, exc.resource_type, exc.path, exc.message)]
            else:
                problems = _patient_link_problems(entry, record) or _duplicate_problems(
                    entry, record, seen, outcome
                )
        if problems:
            outcome.problem(problems)
            continue
        pid = record.patient_id
        if record.resource_type == "Patient":
            outcome.patients.add(record.id)
        elif pid is not None:
            count, first = outcome.patient_refs.get(pid, (0, entry.location))
            outcome.patient_refs[pid] = (count + 1, first)
        yield record


def _entry_problems(entry: RawEntry, check: Validator) -> list[IngestIssue]:
    if entry.error is not None:
        return [IngestIssue(entry.location, "", "", entry.error)]
    res = entry.resource
    if not isinstance(res, dict):
        return [IngestIssue(entry.location, "", "", "entry has no resource object")]
    rtype = res.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return [IngestIssue(entry.location, "", "resourceType", "missing resourceType")]
    if entry.method not in ("POST", "PUT"):
        return [
            IngestIssue(
                entry.location, rtype, "request.method", f"{entry.method} entries are not applied"
            )
        ]
    if not isinstance(res.get("id"), str) or not res["id"]:
        return [
            IngestIssue(
                entry.location,
                rtype,
                f"{rtype}.id",
                "missing id (ehrqa needs resource ids to cite them)",
            )
        ]
    issues = grammar_issues(res) + check.validate(res)
    found = [
        IngestIssue(entry.location, rtype, i.path, i.message) for i in issues[:MAX_ISSUES_PER_ENTRY]
    ]
    if len(issues) > MAX_ISSUES_PER_ENTRY:
        found.append(
            IngestIssue(
                entry.location, rtype, "", f"and {len(issues) - MAX_ISSUES_PER_ENTRY} more problems"
            )
        )
    return found


def _patient_link_problems(entry: RawEntry, record: Record) -> list[IngestIssue]:
    """A record that names a patient it cannot be linked to is invalid, never unowned.

    A subject that is another kind of resource (a Group, a Device, a Location) is fine.
    """
    if record.patient_id is not None:
        return []
    for name in PATIENT_FIELDS:
        ref = record.resource.get(name)
        if not isinstance(ref, dict):
            continue
        reference = ref.get("reference")
        target = _reference_type(reference)
        if target is None or target == "Patient":
            shown = f'"{reference}"' if isinstance(reference, str) else "no reference"
            return [
                IngestIssue(
                    entry.location,
                    record.resource_type,
                    f"{record.resource_type}.{name}",
                    f"{shown}: cannot tell which patient this record belongs to "
                    "(give a literal reference such as Patient/<id>)",
                )
            ]
    return []


def _reference_type(reference: Any) -> str | None:
    """The resource type a well-formed ``Type/id`` or URL reference points at."""
    if not isinstance(reference, str) or not REFERENCE_PATTERN.fullmatch(reference):
        return None
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-2] if len(parts) >= 2 else None


def _duplicate_problems(
    entry: RawEntry, record: Record, seen: dict[str, tuple[bytes, int]], outcome: _FileOutcome
) -> list[IngestIssue]:
    """Two entries of one file with the same id and different content: keep the first."""
    digest = hashlib.blake2b(
        orjson.dumps(record.resource, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()
    first = seen.setdefault(record.ref, (digest, entry.index))
    if first[0] == digest:
        return []
    outcome.duplicates += 1
    # The first one's location, told by its index (kept as an int: a file has 100,000s).
    where = f"entry[{first[1]}]" if entry.location.endswith("]") else f"line {first[1]}"
    return [
        IngestIssue(
            entry.location,
            record.resource_type,
            f"{record.resource_type}.id",
            f"{record.ref} is also at {where}, with different content: the first is kept",
        )
    ]


def _to_record(resource: dict[str, Any], index: _UnitIndex) -> Record:
    rewrite_references(resource, index.full_urls)
    record = normalize(resource, resolve=index.by_ref.get)
    record.search_text = note_text(resource) or ""
    return record
