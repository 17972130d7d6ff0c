"""Who am I, the patient list, one patient, and a patient's records (thin over the store)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ehrqa.api.app import app_state
from ehrqa.api.auth import authenticate, require_patient, visible
from ehrqa.api.schemas import ERROR_RESPONSES, Me, PatientDetail, PatientOut, ResourceOut
from ehrqa.api.tokens import Principal
from ehrqa.store.base import RecordQuery

router = APIRouter(prefix="/v1", tags=["patients"], responses=ERROR_RESPONSES)
Auth = Annotated[Principal, Depends(authenticate)]
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


@router.get("/me", summary="The token's name and scope", response_model=Me)
def me(principal: Auth) -> Me:
    """The token's label, whether it is admin, and its patients (null for admin)."""
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
