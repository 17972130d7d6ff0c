"""Normalise FHIR R4 resources into :class:`~ehrqa.fhir.record.Record` objects.

Every function here is pure: it reads the resource JSON (a ``dict``) and never changes it.
The element readers it builds on are in :mod:`ehrqa.fhir.elements` (below
:mod:`ehrqa.fhir.render`, which they also serve); only a missing ``resourceType`` or ``id``
is an error, because without them a record cannot be stored or cited.
"""

from __future__ import annotations

from typing import Any

from ehrqa.fhir.elements import (
    Resolver,
    _string_or_none,
    categories,
    components,
    element_value,
    end_date,
    main_codes,
    patient_id_of,
    resource_identity,
    start_date,
    status_of,
)
from ehrqa.fhir.record import Record
from ehrqa.fhir.render import render


def normalize(resource: dict[str, Any], *, resolve: Resolver | None = None) -> Record:
    """Normalise one FHIR R4 resource into a :class:`Record`, including its rendering.

    ``resolve`` looks up referenced resources (a MedicationRequest's Medication, a
    reason Condition); without it references are shown by their display only. Raises
    :class:`FhirValidationError` when ``resourceType`` or ``id`` is missing.
    """
    rtype, rid = resource_identity(resource)
    value, value_text, unit = element_value(resource)
    meta = resource.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    return Record(
        ref=f"{rtype}/{rid}",
        resource_type=rtype,
        id=rid,
        patient_id=patient_id_of(resource),
        text=render(resource, resolve=resolve),
        date=start_date(resource),
        end_date=end_date(resource),
        codes=main_codes(resource, resolve),
        category=categories(resource),
        value=value,
        value_text=value_text,
        unit=unit,
        components=components(resource),
        status=status_of(resource),
        version=_string_or_none(meta.get("versionId")),
        last_updated=_string_or_none(meta.get("lastUpdated")),
        resource=resource,
    )
