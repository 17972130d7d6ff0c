"""Readers of FHIR R4 elements: identity, patient, dates, codes, categories, status,
values and components of a resource.

Every function here is pure: it reads the resource JSON (a ``dict``) and never changes it.
Resources from other systems are messier than Synthea's, so the readers skip elements of an
unexpected shape instead of failing; only a missing ``resourceType`` or ``id`` is an error,
because without them a record cannot be stored or cited. :mod:`ehrqa.fhir.render` and
:func:`ehrqa.fhir.normalize.normalize` build on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ehrqa.core.errors import FhirValidationError
from ehrqa.fhir.record import Coding, Component

Resolver = Callable[[str], dict[str, Any] | None]
"""Maps a reference string (``Medication/1``, ``urn:uuid:…``) to the resource, or ``None``."""

Path = tuple[str, ...]

# Where each type keeps its clinically meaningful start, best first. Only elements that
# hold an ISO date/dateTime are listed: onsetAge or occurrenceString are not dates.
_START_PATHS: dict[str, tuple[Path, ...]] = {
    "Observation": (
        ("effectiveDateTime",),
        ("effectivePeriod", "start"),
        ("effectiveInstant",),
        ("issued",),
    ),
    "Condition": (("onsetDateTime",), ("onsetPeriod", "start"), ("recordedDate",)),
    "AllergyIntolerance": (("onsetDateTime",), ("onsetPeriod", "start"), ("recordedDate",)),
    "MedicationRequest": (("authoredOn",),),
    "MedicationStatement": (
        ("effectiveDateTime",),
        ("effectivePeriod", "start"),
        ("dateAsserted",),
    ),
    "MedicationAdministration": (("effectiveDateTime",), ("effectivePeriod", "start")),
    "Immunization": (("occurrenceDateTime",),),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "Encounter": (("period", "start"),),
    "CarePlan": (("period", "start"), ("created",)),
    "CareTeam": (("period", "start"),),
    "DocumentReference": (("date",), ("context", "period", "start")),
    "Patient": (("birthDate",),),
    "Claim": (("created",), ("billablePeriod", "start")),
    "ExplanationOfBenefit": (("created",), ("billablePeriod", "start")),
    "Goal": (("startDate",),),
    "Device": (("manufactureDate",),),
    "SupplyDelivery": (("occurrenceDateTime",), ("occurrencePeriod", "start")),
    "ImagingStudy": (("started",),),
}
_START_PATHS["DiagnosticReport"] = _START_PATHS["Observation"]

# Tried after the type's own paths, and alone for types not listed above.
_GENERIC_START: tuple[Path, ...] = (
    ("effectiveDateTime",),
    ("effectivePeriod", "start"),
    ("effectiveInstant",),
    ("occurrenceDateTime",),
    ("occurrencePeriod", "start"),
    ("performedDateTime",),
    ("performedPeriod", "start"),
    ("onsetDateTime",),
    ("authoredOn",),
    ("started",),
    ("startDate",),
    ("period", "start"),
    ("billablePeriod", "start"),
    ("created",),
    ("date",),
    ("issued",),
    ("recorded",),
    ("recordedDate",),
    ("dateAsserted",),
    ("manufactureDate",),
)

# Where a resource says it ended. A Condition ends when its abatement begins.
_END_PATHS: dict[str, tuple[Path, ...]] = {
    "Patient": (("deceasedDateTime",),),
    "Condition": (("abatementDateTime",), ("abatementPeriod", "start")),
    "Procedure": (("performedPeriod", "end"),),
    "DocumentReference": (("context", "period", "end"),),
    "Claim": (("billablePeriod", "end"),),
    "ExplanationOfBenefit": (("billablePeriod", "end"),),
    "MedicationRequest": (("dispenseRequest", "validityPeriod", "end"),),
    "SupplyDelivery": (("occurrencePeriod", "end"),),
}
_GENERIC_END: tuple[Path, ...] = (("period", "end"), ("effectivePeriod", "end"))

# The element that says *what* a resource is about, when it is not ``code``.
_CODE_PATHS: dict[str, tuple[Path, ...]] = {
    "Immunization": (("vaccineCode",),),
    "Encounter": (("type",),),
    "DocumentReference": (("type",),),
    "ImagingStudy": (("procedureCode",),),
    "SupplyDelivery": (("suppliedItem", "itemCodeableConcept"),),
    "Goal": (("description",),),
    "CarePlan": (("category",),),
    "CareTeam": (("category",),),
    "Claim": (("type",),),
    "ExplanationOfBenefit": (("type",),),
    "Coverage": (("type",),),
    "Device": (("type",),),
}
_DEFAULT_CODE_PATHS: tuple[Path, ...] = (("code",), ("type",))

_MEDICATION_TYPES = frozenset(
    {"MedicationRequest", "MedicationStatement", "MedicationAdministration", "MedicationDispense"}
)
# The elements that name the patient a resource belongs to.
PATIENT_FIELDS = ("subject", "patient", "beneficiary", "individual")


def resource_identity(resource: Any) -> tuple[str, str]:
    """Return ``(resourceType, id)`` of a resource, or raise :class:`FhirValidationError`."""
    if not isinstance(resource, dict):
        raise FhirValidationError(
            f"expected a JSON object, got {type(resource).__name__}; pass one resource dict"
        )
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise FhirValidationError(
            'resourceType is missing or not a string; add e.g. "resourceType": "Observation"',
            path="resourceType",
        )
    rid = resource.get("id")
    if not isinstance(rid, str) or not rid:
        raise FhirValidationError(
            "id is missing or not a string; give every resource an id (bundles from "
            "Synthea use the entry's urn:uuid)",
            resource_type=rtype,
            path="id",
        )
    return rtype, rid


def patient_ref_id(reference: str | None) -> str | None:
    """Return the Patient id a reference points at, or ``None`` (see :func:`reference_id`)."""
    return reference_id(reference, "Patient")


def reference_id(reference: Any, resource_type: str) -> str | None:
    """Return the id of the ``resource_type`` resource a reference points at, or ``None``.

    Accepts ``Type/abc``, absolute URLs (``http://x/fhir/Type/abc/_history/2``) and
    ``urn:uuid:abc``, which in a transaction bundle stands for the entry's own id. A
    reference to any other type returns ``None``.
    """
    if not isinstance(reference, str):
        return None
    reference = reference.strip()
    if reference.startswith("urn:uuid:"):
        return reference[len("urn:uuid:") :] or None
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def patient_id_of(resource: dict[str, Any]) -> str | None:
    """The id of the Patient a resource belongs to: its own id for a Patient."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    for name in PATIENT_FIELDS:
        ref = resource.get(name)
        if isinstance(ref, dict) and (pid := patient_ref_id(ref.get("reference"))):
            return pid
    return None


def first_string(element: Any, paths: Iterable[Path]) -> str | None:
    """The first non-empty string found along ``paths`` (tuples of keys) in ``element``."""
    for path in paths:
        value = element
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def start_date(resource: dict[str, Any]) -> str | None:
    """The clinically meaningful start of a resource as the ISO string it holds."""
    own = _START_PATHS.get(resource.get("resourceType", ""), ())
    return first_string(resource, own) or first_string(resource, _GENERIC_START)


def end_date(resource: dict[str, Any]) -> str | None:
    """When a resource ended (period end, abatement, death), as an ISO string, or ``None``."""
    own = _END_PATHS.get(resource.get("resourceType", ""))
    return first_string(resource, own if own is not None else _GENERIC_END)


def codings(concept: Any) -> tuple[Coding, ...]:
    """All codings of a CodeableConcept, a bare Coding, or a list of either.

    A concept's ``text`` stands in for a missing coding display, and a text-only concept
    becomes one Coding with an empty system and code, so no human label is lost.
    """
    if isinstance(concept, list):
        return tuple(c for item in concept for c in codings(item))
    if not isinstance(concept, dict):
        return ()
    if "coding" not in concept and ("code" in concept or "system" in concept):
        return _coding(concept, "")
    text = _string_or_none(concept.get("text")) or ""
    found: list[Coding] = []
    for item in concept.get("coding") or ():
        found.extend(_coding(item, text))
    if not found and text:
        found.append(Coding(system="", code="", display=text))
    return tuple(found)


def _coding(item: Any, fallback_display: str) -> tuple[Coding, ...]:
    if not isinstance(item, dict):
        return ()
    system, code, display = item.get("system"), item.get("code"), item.get("display")
    coding = Coding(
        system=system if isinstance(system, str) else "",
        code=str(code) if isinstance(code, str | int) else "",
        display=display if isinstance(display, str) and display else fallback_display,
    )
    return (coding,) if coding.code or coding.display else ()


def concept_label(concept: Any) -> str:
    """The human label of a CodeableConcept: first display, else text, else code."""
    found = codings(concept)
    return next((c.display for c in found if c.display), found[0].code if found else "")


def main_codes(resource: dict[str, Any], resolve: Resolver | None = None) -> tuple[Coding, ...]:
    """All codings of the element that says what a resource is about.

    ``code`` for most types; ``vaccineCode``, ``type``, the medication (resolved through
    ``resolve`` or ``contained`` for a ``medicationReference``) and so on for the others.
    """
    rtype = resource.get("resourceType", "")
    if rtype in _MEDICATION_TYPES:
        return medication_codes(resource, resolve)
    for path in _CODE_PATHS.get(rtype, _DEFAULT_CODE_PATHS):
        element: Any = resource
        for key in path:
            element = element.get(key) if isinstance(element, dict) else None
        if found := codings(element):
            return found
    return ()


def medication_codes(
    resource: dict[str, Any], resolve: Resolver | None = None
) -> tuple[Coding, ...]:
    """Codings of the medication a Medication* resource is about.

    A ``medicationReference`` is looked up in ``contained`` first, then through
    ``resolve``; when neither finds it, the reference's ``display`` is kept as a label.
    """
    if found := codings(resource.get("medicationCodeableConcept")):
        return found
    ref = resource.get("medicationReference")
    if not isinstance(ref, dict):
        return ()
    medication = resolve_reference(resource, ref.get("reference"), resolve)
    if medication and (found := codings(medication.get("code"))):
        return found
    display = ref.get("display")
    return (Coding(system="", code="", display=display),) if isinstance(display, str) else ()


def resolve_reference(
    resource: dict[str, Any], reference: Any, resolve: Resolver | None
) -> dict[str, Any] | None:
    """The resource a reference points at: a ``#id`` in ``contained``, else via ``resolve``."""
    if not isinstance(reference, str) or not reference:
        return None
    if reference.startswith("#"):
        for inner in resource.get("contained") or ():
            if isinstance(inner, dict) and inner.get("id") == reference[1:]:
                return inner
        return None
    return resolve(reference) if resolve is not None else None


def categories(resource: dict[str, Any]) -> tuple[str, ...]:
    """Lower-case category codes; for an Encounter, its class code (``amb``, ``imp``)."""
    if resource.get("resourceType") == "Encounter":
        raw: Any = resource.get("class")
    else:
        raw = resource.get("category")
    found: list[str] = []
    for item in raw if isinstance(raw, list) else [raw]:
        if isinstance(item, str):
            found.append(item.lower())
        else:
            found.extend(c.code.lower() for c in codings(item) if c.code)
    return tuple(dict.fromkeys(found))


def status_of(resource: dict[str, Any]) -> str | None:
    """The status that answers "is it current?": clinicalStatus where a type has one."""
    rtype = resource.get("resourceType")
    if rtype in ("Condition", "AllergyIntolerance"):
        found = codings(resource.get("clinicalStatus"))
        return (found[0].code or None) if found else None
    status = resource.get("lifecycleStatus" if rtype == "Goal" else "status")
    return status if isinstance(status, str) and status else None


def format_number(value: float) -> str:
    """A number as a reader expects it: ``101.0`` → ``101``, ``67.2`` → ``67.2``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def element_value(element: dict[str, Any]) -> tuple[float | None, str | None, str | None]:
    """``(value, value_text, unit)`` of the ``value[x]`` of an Observation or component.

    Numbers go to ``value``; coded, textual and other values to ``value_text``. A quantity
    comparator (``<5``) is kept in ``value_text`` so the bare number is never misread.
    """
    if isinstance(quantity := element.get("valueQuantity"), dict):
        number = _as_number(quantity.get("value"))
        unit = quantity.get("unit") or quantity.get("code")
        comparator = quantity.get("comparator")
        text = f"{comparator}{format_number(number)}" if comparator and number is not None else None
        return number, text, unit if isinstance(unit, str) else None
    if "valueCodeableConcept" in element:
        return None, concept_label(element["valueCodeableConcept"]) or None, None
    if isinstance(boolean := element.get("valueBoolean"), bool):
        return None, "true" if boolean else "false", None
    if (integer := _as_number(element.get("valueInteger"))) is not None:
        return integer, None, None
    for key in ("valueString", "valueDateTime", "valueTime"):
        if isinstance(text := element.get(key), str):
            return None, text, None
    return _range_or_ratio(element)


def _range_or_ratio(element: dict[str, Any]) -> tuple[float | None, str | None, str | None]:
    # Ranges and ratios have no single number; they are kept as text with their unit.
    if isinstance(span := element.get("valueRange"), dict):
        low, high = _as_dict(span.get("low")), _as_dict(span.get("high"))
        unit = low.get("unit") or high.get("unit")
        text = f"{_quantity_number(low)}-{_quantity_number(high)}"
        return None, text, unit if isinstance(unit, str) else None
    if isinstance(ratio := element.get("valueRatio"), dict):
        num, den = _as_dict(ratio.get("numerator")), _as_dict(ratio.get("denominator"))
        return None, f"{_quantity_number(num)}/{_quantity_number(den)}", None
    return None, None, None


def _quantity_number(quantity: dict[str, Any]) -> str:
    number = _as_number(quantity.get("value"))
    return format_number(number) if number is not None else "?"


def _as_number(value: Any) -> float | None:
    # bool is an int in Python; a FHIR boolean is never a number.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def components(resource: dict[str, Any]) -> tuple[Component, ...]:
    """The components of an Observation (e.g. systolic and diastolic blood pressure)."""
    found: list[Component] = []
    for item in resource.get("component") or ():
        if not isinstance(item, dict):
            continue
        codes = codings(item.get("code"))
        value, value_text, unit = element_value(item)
        name = next((c.display for c in codes if c.display), codes[0].code if codes else "")
        found.append(
            Component(
                name=name,
                value=value,
                value_text=value_text,
                unit=unit,
                code=(codes[0].code or None) if codes else None,
            )
        )
    return tuple(found)


def _string_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
