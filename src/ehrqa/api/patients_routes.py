"""Who am I, the patient list, one patient, a patient's records and lab series (thin over
the store)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ehrqa.api.auth import authenticate, require_patient, visible
from ehrqa.api.schemas import ERROR_RESPONSES, Me, PatientDetail, PatientOut, ResourceOut
from ehrqa.api.state import app_state
from ehrqa.api.tokens import Principal
from ehrqa.fhir.record import Record
from ehrqa.knowledge import load_knowledge
from ehrqa.knowledge.model import ReferenceRange
from ehrqa.store.base import RecordQuery
from ehrqa.text.units import readable_unit

router = APIRouter(prefix="/v1", tags=["patients"], responses=ERROR_RESPONSES)
Auth = Annotated[Principal, Depends(authenticate)]
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


@router.get("/me", summary="The token's name, scope and role", response_model=Me)
def me(principal: Auth) -> Me:
    """The token's label, whether it is admin, its patients (null for admin) and its role."""
    return Me.model_validate(principal.to_dict())


@router.get("/patients", summary="List patients", response_model=list[PatientOut])
def list_patients(
    request: Request,
    principal: Auth,
    search: Annotated[str | None, Query(max_length=200, description="Name or id part.")] = None,
) -> list[PatientOut]:
    """The patients the token may see, optionally filtered by a name or id substring."""
    store = app_state(request).require_store()
    return [PatientOut.of(p) for p in visible(principal, store.patients(search or None))]


@router.get("/patients/{patient_id}", summary="One patient", response_model=PatientDetail)
def get_patient(patient_id: str, request: Request, principal: Auth) -> PatientDetail:
    """One patient with the number of records of each resource type."""
    store = app_state(request).require_store()
    patient = store.patient(require_patient(request, principal, patient_id))
    summary = PatientOut.of(patient).model_dump()
    return PatientDetail(**summary, type_counts=store.type_counts(patient.id))


@router.get(
    "/patients/{patient_id}/resources",
    summary="A patient's records, newest first",
    response_model=list[ResourceOut],
)
def list_resources(
    patient_id: str,
    request: Request,
    principal: Auth,
    type: Annotated[str | None, Query(description="Resource type, e.g. Observation.")] = None,
    category: Annotated[str | None, Query(description="Category code, e.g. laboratory.")] = None,
    code: Annotated[str | None, Query(description="A code, e.g. LOINC 4548-4.")] = None,
    since: Annotated[date | None, Query(description="Earliest day (YYYY-MM-DD).")] = None,
    until: Annotated[date | None, Query(description="Latest day (YYYY-MM-DD).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[ResourceOut]:
    """The patient's records matching every given filter, newest first."""
    store = app_state(request).require_store()
    found = store.patient(require_patient(request, principal, patient_id))
    query = RecordQuery(
        found.id,
        types=(type,) if type else (),
        categories=(category,) if category else (),
        codes=(code,) if code else (),
        start=since.isoformat() if since else None,
        end=until.isoformat() if until else None,
        limit=limit,
    )
    return [ResourceOut.of(record) for record in store.query(query)]


def quantity_value(record: Record) -> float | None:
    """The number of a record's ``valueQuantity``, else None (text, codes, questionnaire
    answers such as an address or a yes/no are never plotted)."""
    quantity = record.resource.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def lab_series(records: list[Record], sex: str | None) -> list[dict[str, Any]]:
    """Numeric Quantity results grouped by their first code, oldest point first: each with
    its name, recorded and readable unit, reference interval and a high/low/normal flag."""
    knowledge = load_knowledge()
    groups: dict[str, dict[str, Any]] = {}
    ranges: dict[str, ReferenceRange | None] = {}
    for record in records:
        value = quantity_value(record)
        if value is None or not record.codes or not record.date:
            continue
        code = record.codes[0].code
        if code not in groups:
            bounds = ranges[code] = knowledge.reference_range(code, sex=sex)
            groups[code] = {
                "code": code,
                "name": record.codes[0].display or record.display,
                "unit": record.unit or "",
                "reader_unit": readable_unit(record.unit),
                "range": None if bounds is None else {"low": bounds.low, "high": bounds.high},
                "points": [],
            }
        bounds = ranges[code]
        flag = bounds.flag(value) if bounds is not None else None
        groups[code]["points"].append(
            {"date": record.date, "value": value, "ref": record.ref, "flag": flag}
        )
    for group in groups.values():
        group["points"].sort(key=lambda point: point["date"])
    return sorted(groups.values(), key=lambda group: str(group["name"]).lower())


@router.get("/patients/{patient_id}/labs", summary="A patient's numeric lab results by test")
def list_labs(patient_id: str, request: Request, principal: Auth) -> list[dict[str, Any]]:
    """Lab results whose value is a number with a unit (``valueQuantity``), grouped by code,
    with readable units and high/low flags against the reference intervals."""
    store = app_state(request).require_store()
    found = store.patient(require_patient(request, principal, patient_id))
    query = RecordQuery(
        found.id, types=("Observation",), categories=("laboratory",), limit=MAX_LIMIT * 5
    )
    return lab_series(list(store.query(query)), found.gender)
