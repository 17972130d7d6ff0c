"""Ingestion: FHIR files → validated, normalised records in a store.

Each file is written in one transaction: an interrupted ingest leaves every file either
fully stored or not at all. Invalid entries are reported (file, entry, type, element path)
and skipped; with ``strict=True`` a file with any invalid entry is rejected whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrqa.errors import FhirValidationError
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.parse import RawEntry, SourceUnit, find_files, read_unit, rewrite_references
from ehrqa.fhir.record import Record
from ehrqa.fhir.render import note_text
from ehrqa.fhir.validate import Validator, get_validator
from ehrqa.store.base import RecordStore, UpsertStats

# How many validation problems of one entry are reported before "and N more".
MAX_ISSUES_PER_ENTRY = 5


@dataclass(frozen=True)
class IngestIssue:
    """One invalid entry (or unreadable file): where it is and what is wrong."""

    location: str
    resource_type: str
    path: str
    message: str

    def __str__(self) -> str:
        what = " ".join(p for p in (self.resource_type, self.path) if p)
        return f"{self.location}: {what + ': ' if what else ''}{self.message}"


@dataclass
class IngestReport:
    """The outcome of one ingest call."""

    files: int = 0
    resources_read: int = 0
    stats: UpsertStats = field(default_factory=UpsertStats)
    issues: list[IngestIssue] = field(default_factory=list)
    rejected_files: list[str] = field(default_factory=list)
    skipped_entries: int = 0
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
            "rejected_files": self.rejected_files,
            "issues": [str(i) for i in self.issues],
            "seconds": round(self.seconds, 3),
        }


def ingest_paths(
    store: RecordStore,
    paths: Iterable[str | Path],
    *,
    validator: str | Validator = "fhirkit",
    strict: bool = False,
    on_file: Callable[[Path, int], None] | None = None,
) -> IngestReport:
    """Ingest files and folders of FHIR R4 Bundles and ndjson into ``store``.

    ``on_file(path, n_entries)`` is called after each file (for progress bars).
    """
    check = get_validator(validator) if isinstance(validator, str) else validator
    report = IngestReport()
    started = time.perf_counter()
    for path in find_files(paths):
        unit = read_unit(path)
        report.files += 1
        ingest_unit(store, unit, check, strict, report)
        if on_file is not None:
            on_file(path, len(unit.entries))
    report.seconds = time.perf_counter() - started
    return report


def ingest_unit(
    store: RecordStore, unit: SourceUnit, check: Validator, strict: bool, report: IngestReport
) -> None:
    """Validate, normalise and store one unit in one transaction, adding to ``report``.

    The step shared by file ingestion and server ingestion (one unit = one file or one
    patient fetched from a FHIR server).
    """
    if unit.error is not None:
        err = unit.error
        report.issues.append(IngestIssue(err.location or str(unit.path), "", err.path, err.message))
        report.rejected_files.append(str(unit.path))
        return
    report.resources_read += len(unit.entries)
    by_ref = _index_unit(unit)
    records: list[Record] = []
    invalid = 0
    for entry in unit.entries:
        problems = _entry_problems(entry, check)
        if problems:
            invalid += 1
            report.issues.extend(problems)
            continue
        try:
            records.append(_to_record(entry.resource, unit, by_ref))
        except FhirValidationError as exc:
            invalid += 1
            report.issues.append(
                IngestIssue(entry.location, exc.resource_type, exc.path, exc.message)
            )
    if strict and invalid:
        report.rejected_files.append(str(unit.path))
        report.skipped_entries += len(unit.entries)
        return
    report.skipped_entries += invalid
    report.stats.add(store.upsert(records))


def _index_unit(unit: SourceUnit) -> dict[str, dict[str, Any]]:
    """Map ``Type/id`` and ``fullUrl`` to the unit's resources, for resolving references."""
    by_ref: dict[str, dict[str, Any]] = {}
    for entry in unit.entries:
        res = entry.resource
        if isinstance(res, dict) and isinstance(res.get("id"), str):
            by_ref[f"{res.get('resourceType')}/{res['id']}"] = res
    for full_url, ref in unit.full_urls.items():
        if ref in by_ref:
            by_ref[full_url] = by_ref[ref]
    return by_ref


def _entry_problems(entry: RawEntry, check: Validator) -> list[IngestIssue]:
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
    issues = check.validate(res)
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


def _to_record(
    resource: dict[str, Any], unit: SourceUnit, by_ref: dict[str, dict[str, Any]]
) -> Record:
    rewrite_references(resource, unit.full_urls)
    record = normalize(resource, resolve=by_ref.get)
    record.search_text = note_text(resource) or ""
    return record
