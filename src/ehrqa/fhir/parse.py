"""Reading FHIR R4 data from files: Bundles (.json, .json.gz) and bulk ndjson (.ndjson[.gz]).

Each file is one *unit*: the ingester writes a unit in one transaction, so a unit is never
half-written, and ``--strict`` rejects a unit whole when one of its entries is invalid.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ehrqa.errors import FhirValidationError, NotFoundError

SUFFIXES = (".json", ".json.gz", ".ndjson", ".ndjson.gz")


@dataclass
class RawEntry:
    """One resource as read from a file, before validation."""

    location: str
    index: int
    resource: Any
    method: str = "POST"


@dataclass
class SourceUnit:
    """The entries of one file, and the map of its ``fullUrl``s to ``Type/id``."""

    path: Path
    entries: list[RawEntry]
    full_urls: dict[str, str] = field(default_factory=dict)
    error: FhirValidationError | None = None


def find_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into the FHIR data files they hold, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise NotFoundError(f"{path}: no such file or folder")
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if _is_data_file(p))
        elif _is_data_file(path):
            found.append(path)
        else:
            raise FhirValidationError(
                f"unsupported file type; expected one of {', '.join(SUFFIXES)}",
                location=str(path),
            )
    return found


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(SUFFIXES)


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise FhirValidationError(f"not a valid gzip file ({exc})", location=str(path)) from exc
    return data


def read_unit(path: Path) -> SourceUnit:
    """Read one file into a :class:`SourceUnit`.

    A file that cannot be read as JSON at all gives a unit with ``error`` set and no
    entries, so that a batch can report it and go on.
    """
    try:
        data = _read_bytes(path)
        if path.name.lower().endswith((".ndjson", ".ndjson.gz")):
            return SourceUnit(path, list(_ndjson_entries(path, data)))
        return _json_unit(path, data)
    except FhirValidationError as exc:
        return SourceUnit(path, [], error=exc)


def _ndjson_entries(path: Path, data: bytes) -> Iterator[RawEntry]:
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        location = f"{path}:line {number}"
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise FhirValidationError(f"invalid JSON ({exc})", location=location) from exc
        yield RawEntry(location, number, resource)


def _json_unit(path: Path, data: bytes) -> SourceUnit:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FhirValidationError(f"invalid JSON ({exc})", location=str(path)) from exc
    if not isinstance(document, dict):
        raise FhirValidationError(
            "expected a JSON object (a Bundle or a resource)", location=str(path)
        )
    if document.get("resourceType") != "Bundle":
        return SourceUnit(path, [RawEntry(str(path), 0, document)])
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise FhirValidationError(
            "Bundle.entry must be a list", location=str(path), path="Bundle.entry"
        )
    unit = SourceUnit(path, [])
    for index, entry in enumerate(entries):
        location = f"{path} entry[{index}]"
        if not isinstance(entry, dict):
            unit.entries.append(RawEntry(location, index, None))
            continue
        method = str((entry.get("request") or {}).get("method") or "POST").upper()
        resource = entry.get("resource")
        unit.entries.append(RawEntry(location, index, resource, method))
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and isinstance(resource, dict):
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(rtype, str) and isinstance(rid, str):
                unit.full_urls[full_url] = f"{rtype}/{rid}"
    return unit


def rewrite_references(node: Any, full_urls: dict[str, str]) -> Any:
    """Replace ``urn:uuid:`` references with ``Type/id``, as a FHIR server does on a transaction.

    Works in place on dicts and lists and returns ``node``.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in full_urls:
                node[key] = full_urls[value]
            elif isinstance(value, dict | list):
                rewrite_references(value, full_urls)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                rewrite_references(item, full_urls)
    return node
