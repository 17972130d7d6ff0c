"""Read-only routes that card links and citations point at: one record, one document chunk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ehrqa.api.auth import authenticate, denied, require_patient
from ehrqa.api.schemas import ERROR_RESPONSES, ChunkOut, RecordOut
from ehrqa.api.state import app_state
from ehrqa.api.tokens import Principal
from ehrqa.core.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["records"], responses=ERROR_RESPONSES)
Auth = Annotated[Principal, Depends(authenticate)]


@router.get(
    "/records/{resource_type}/{resource_id}", summary="One record", response_model=RecordOut
)
def get_record(
    resource_type: str, resource_id: str, request: Request, principal: Auth
) -> RecordOut:
    """One stored record: its normalised fields, rendering and FHIR resource.

    A scoped token gets the same 403 for a record of another patient, a record of no
    patient and a record that does not exist.
    """
    store = app_state(request).store
    if store is None:
        raise NotFoundError("no record store is configured for this service")
    try:
        record = store.get(f"{resource_type}/{resource_id}")
    except NotFoundError:
        if not principal.admin:
            raise denied(principal) from None
        raise
    if record.patient_id is None:
        if not principal.admin:
            raise denied(principal)
    else:
        require_patient(request, principal, record.patient_id)
    return RecordOut(
        ref=record.ref,
        resource_type=record.resource_type,
        id=record.id,
        patient_id=record.patient_id,
        date=record.date,
        status=record.status,
        display=record.display,
        text=record.text,
        resource=record.resource,
    )


@router.get("/docs/chunks/{chunk_id:path}", summary="One document chunk", response_model=ChunkOut)
def get_chunk(chunk_id: str, request: Request, principal: Auth) -> ChunkOut:
    """One chunk of the document library (``DOC#N``, URL-encoded as ``DOC%23N``)."""
    library = app_state(request).library
    if library is None:
        raise NotFoundError("no document library is configured for this service")
    chunk = library.chunk(chunk_id)
    return ChunkOut(
        id=chunk.id,
        ref=f"doc:{chunk.id}",
        title=chunk.title,
        section=chunk.section,
        text=chunk.text,
    )
