"""Read-only routes that card links point at: one patient record, one document chunk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ehrqa.api.app import app_state
from ehrqa.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["records"])


@router.get("/records/{resource_type}/{resource_id}")
def get_record(resource_type: str, resource_id: str, request: Request) -> dict[str, Any]:
    """One stored record: its normalised fields, rendering and FHIR resource."""
    store = app_state(request).store
    if store is None:
        raise NotFoundError("no record store is configured for this service")
    record = store.get(f"{resource_type}/{resource_id}")
    return {
        "ref": record.ref,
        "resourceType": record.resource_type,
        "id": record.id,
        "patientId": record.patient_id,
        "date": record.date,
        "status": record.status,
        "display": record.display,
        "text": record.text,
        "resource": record.resource,
    }


@router.get("/docs/chunks/{chunk_id:path}")
def get_chunk(chunk_id: str, request: Request) -> dict[str, Any]:
    """One chunk of the document library (``DOC#N``, URL-encoded as ``DOC%23N``)."""
    library = app_state(request).library
    if library is None:
        raise NotFoundError("no document library is configured for this service")
    chunk = library.chunk(chunk_id)
    return {
        "id": chunk.id,
        "ref": f"doc:{chunk.id}",
        "title": chunk.title,
        "section": chunk.section,
        "text": chunk.text,
    }
