"""``POST /v1/ingest`` (admin only): one FHIR Bundle or resource as JSON, or NDJSON."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ehrqa.api.audit import note
from ehrqa.api.auth import authenticate, require_admin
from ehrqa.api.schemas import ERROR_RESPONSES
from ehrqa.api.state import app_state
from ehrqa.api.tokens import Principal
from ehrqa.core.errors import ConfigError, FhirValidationError
from ehrqa.ingest.files import ingest_paths
from ehrqa.store.base import RecordStore

router = APIRouter(prefix="/v1", tags=["ingest"], responses=ERROR_RESPONSES)
Auth = Annotated[Principal, Depends(authenticate)]
# Content type → the file name the upload is read as (the suffix picks the parser).
UPLOAD_NAMES: dict[str, str] = {
    "application/json": "upload.json",
    "application/fhir+json": "upload.json",
    "application/x-ndjson": "upload.ndjson",
    "application/fhir+ndjson": "upload.ndjson",
    "application/ndjson": "upload.ndjson",
}
UPLOAD_DOC = {
    "required": True,
    "content": {
        kind: {"schema": {"type": "object" if name.endswith(".json") else "string"}}
        for kind, name in UPLOAD_NAMES.items()
    },
}


def upload_name(content_type: str | None) -> str:
    """The file name an upload of ``content_type`` is read as; ConfigError (400) if unknown."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in UPLOAD_NAMES:
        raise ConfigError(
            f"cannot ingest Content-Type {kind or '(none)'!r}: send a Bundle or resource as "
            "application/json, or resources one per line as application/x-ndjson"
        )
    return UPLOAD_NAMES[kind]


def ingest_bytes(store: RecordStore, data: bytes, name: str, validator: str) -> dict[str, Any]:
    """Ingest one uploaded file's bytes; the report names the file ``name``.

    Raises FhirValidationError (400) when the upload cannot be read at all.
    """
    with tempfile.TemporaryDirectory(prefix="ehrqa-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        report = ingest_paths(store, [path], validator=validator)
        if report.rejected_files and report.resources_read == 0:
            raise FhirValidationError(
                "; ".join(str(i) for i in report.issues).replace(f"{folder}/", "")
                or "the upload holds no FHIR resources",
            )
        result = report.to_dict()
    result["rejected_files"] = [Path(f).name for f in result["rejected_files"]]
    result["issues"] = [issue.replace(f"{folder}/", "") for issue in result["issues"]]
    return result


@router.post(
    "/ingest",
    summary="Ingest FHIR resources (admin)",
    openapi_extra={"requestBody": UPLOAD_DOC},
)
async def ingest(request: Request, principal: Auth) -> dict[str, Any]:
    """Validate, normalise and store the resources of one upload; the ingest report."""
    require_admin(principal, "ingesting records")
    state = app_state(request)
    store = state.require_store()
    name = upload_name(request.headers.get("content-type"))
    data = await request.body()
    if not data.strip():
        raise ConfigError("the request body is empty: send a FHIR Bundle, resource or NDJSON")
    note(request.scope, principal.label)
    return await run_in_threadpool(ingest_bytes, store, data, name, state.config.validator)
