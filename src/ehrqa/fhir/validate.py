"""Validation of single FHIR R4 resources, behind one small protocol.

Two implementations:

* ``fhirkit`` (default): fhirkit-rs, a Rust implementation of every R4 4.0.1 resource and
  datatype. About 20× faster than pydantic models on Synthea data and reports each problem
  with its element path (``Observation.valueQuantity.value``).
* ``fhir.resources``: the pydantic models of fhir.resources. Version 8 ships R5, R4B and
  STU3 but not R4 itself, so this uses R4B, the closest release (R5 rejects R4 data).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ehrqa.core.errors import BackendUnavailableError
from ehrqa.core.registry import Registry


@dataclass(frozen=True)
class Issue:
    """One validation problem: the element path and what is wrong there."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class Validator(Protocol):
    """Checks one resource (a parsed JSON object) and returns its errors."""

    name: str

    def validate(self, resource: dict[str, Any]) -> list[Issue]:
        """Return the errors of ``resource``; an empty list means it is valid."""
        ...


class FhirkitValidator:
    """Strict R4 4.0.1 validation with fhirkit-rs."""

    name = "fhirkit"

    def __init__(self) -> None:
        try:
            import fhirkit
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise BackendUnavailableError(
                "the fhirkit validator needs fhirkit-rs: pip install fhirkit-rs"
            ) from exc
        self._validate = fhirkit.validate

    def validate(self, resource: dict[str, Any]) -> list[Issue]:
        """Return the errors fhirkit finds (warnings are ignored)."""
        # Serialising with orjson first is ~3x faster than handing fhirkit a dict.
        issues = self._validate(orjson.dumps(resource))
        return [Issue(i.path, i.message) for i in issues if i.severity == "error"]


class FhirResourcesValidator:
    """Validation with the pydantic models of fhir.resources (R4B)."""

    name = "fhir.resources"

    def __init__(self) -> None:
        try:
            from fhir.resources.R4B import get_fhir_model_class
            from pydantic import ValidationError
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise BackendUnavailableError(
                "the fhir.resources validator needs fhir.resources: pip install fhir.resources"
            ) from exc
        self._model_class: Callable[[str], Any] = get_fhir_model_class
        self._error = ValidationError

    def validate(self, resource: dict[str, Any]) -> list[Issue]:
        """Return the errors the R4B pydantic model reports."""
        rtype = str(resource.get("resourceType", ""))
        try:
            model = self._model_class(rtype)
        except (KeyError, ValueError):
            return [Issue(rtype or "resourceType", f"{rtype!r} is not a FHIR resource type")]
        try:
            model.model_validate(resource)
        except self._error as exc:
            return [
                Issue(".".join([rtype, *(str(p) for p in err["loc"])]), err["msg"])
                for err in exc.errors()
            ]
        return []


class NoValidator:
    """Accepts anything with a resourceType and an id (for trusted, pre-validated data)."""

    name = "none"

    def validate(self, resource: dict[str, Any]) -> list[Issue]:
        """Return no errors."""
        return []


VALIDATORS: Registry[type[Validator]] = Registry("validator", "ehrqa.validators")
VALIDATORS.register("fhirkit", FhirkitValidator, "fhirkit-rs, strict R4 4.0.1 (default)")
VALIDATORS.register("fhir.resources", FhirResourcesValidator, "fhir.resources pydantic, R4B")
VALIDATORS.register("none", NoValidator, "no validation beyond resourceType and id")


def get_validator(name: str = "fhirkit") -> Validator:
    """Return a validator instance by registry name."""
    return VALIDATORS.get(name)()


# FHIR R4 id (https://hl7.org/fhir/R4/datatypes.html#id), less ids of dots only ("..")
# that the grammar allows but that read as path steps wherever an id names a file or URL.
_ID = r"(?!\.+(?![A-Za-z0-9\-.]))[A-Za-z0-9\-.]{1,64}"
ID_PATTERN = re.compile(_ID)
_TYPED_ID = rf"[A-Z][A-Za-z]{{1,63}}/{_ID}(?:/_history/{_ID})?"
REFERENCE_PATTERN = re.compile(
    rf"{_TYPED_ID}"  # Patient/abc, Patient/abc/_history/2
    rf"|[a-z][a-z0-9+.\-]*://[^\s/]+(?:/[^\s/]+)*?/{_TYPED_ID}"  # http://host/fhir/Patient/abc
    r"|urn:uuid:[A-Za-z0-9\-]{1,64}|urn:oid:[0-9.]{1,64}"
    rf"|#(?:{_ID})?"  # a contained resource
)
# A date with a day: 2024-02-30, 2024-02-30T10:00:00Z (fhirkit checks the form, not the day).
_DATED = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?")


def grammar_issues(resource: dict[str, Any]) -> list[Issue]:
    """Problems no schema validator reports, found in every ingested resource.

    The resource id follows the FHIR id grammar (no ``/``, ``%`` or ``..``: ids become
    references and citations); every ``reference`` is one ehrqa can resolve (``Type/id``,
    an absolute URL ending in ``Type/id``, ``urn:uuid:``, ``urn:oid:``, ``#id``); every
    date with a day is a real calendar date (``2024-02-30`` is not).
    """
    rtype = str(resource.get("resourceType") or "Resource")
    issues: list[Issue] = []
    rid = resource.get("id")
    if isinstance(rid, str) and not ID_PATTERN.fullmatch(rid):
        issues.append(
            Issue(
                f"{rtype}.id",
                f"{_clip(rid)} is not a FHIR id (1-64 of A-Z a-z 0-9 - ., not only dots)",
            )
        )
    for path, key, value in _strings(resource, rtype):
        if key == "reference" and not REFERENCE_PATTERN.fullmatch(value):
            issues.append(
                Issue(
                    path,
                    f"{_clip(value)} is not a reference ehrqa can resolve "
                    "(Type/id, a URL ending in Type/id, urn:uuid:…, or #id)",
                )
            )
        elif (found := _DATED.fullmatch(value)) and not _real_date(*found.groups()):
            issues.append(Issue(path, f"{_clip(value)} is not a real calendar date"))
    return issues


def _strings(node: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """(element path, key, value) of every string under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                yield f"{path}.{key}", key, value
            elif isinstance(value, dict | list):
                yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                yield from _strings(item, path)


def _real_date(year: str, month: str, day: str) -> bool:
    try:
        dt.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _clip(value: str, limit: int = 80) -> str:
    """A value quoted for a message, cut to ``limit`` characters."""
    text = value if len(value) <= limit else value[:limit] + "…"
    return f'"{text}"'
