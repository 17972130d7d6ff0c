"""CDS Hooks 2.0 routes: discovery, service calls and feedback (thin: see ehrqa.cds.hooks)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ehrqa.api.auth import authenticate_clinician, require_patient
from ehrqa.api.state import AppState, app_state
from ehrqa.api.tokens import Principal
from ehrqa.cds import hooks
from ehrqa.cds.hooks import CdsRequestError, HookRequest
from ehrqa.core.config import check_day

router = APIRouter(tags=["cds-hooks"])
NOW_HEADER = "X-Ehrqa-Now"
Auth = Annotated[Principal, Depends(authenticate_clinician)]  # patients' tokens: 403


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON; CdsRequestError (400) when it is not."""
    raw = await request.body()
    if not raw.strip():
        raise CdsRequestError("the request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CdsRequestError(f"the request body is not valid JSON ({exc})") from exc


def request_day(request: Request, state: AppState) -> date:
    """The date to reason at: the ``X-Ehrqa-Now`` header (1900-2200), else the app's date."""
    header = request.headers.get(NOW_HEADER)
    if not header:
        return state.today()
    try:
        day = date.fromisoformat(header)
    except ValueError as exc:
        raise CdsRequestError(f"{NOW_HEADER} must be a YYYY-MM-DD date, got {header!r}") from exc
    return check_day(day, NOW_HEADER)


@router.get("/cds-services", summary="CDS Hooks discovery (no token needed)")
def discovery() -> dict[str, Any]:
    """The CDS Hooks discovery document."""
    return hooks.discovery()


def _answer(state: AppState, checked: HookRequest, day: date, base: str) -> dict[str, Any]:
    """Gather the context and build the cards (runs in a worker thread)."""
    context, from_store = hooks.hook_context(checked, state.store, day)
    linkable = [r.ref for r in context.records()] if from_store else []
    found = hooks.cards(checked, context, state.library, base_url=base, linkable=linkable)
    return {"cards": found}


@router.post("/cds-services/{service_id}", summary="Call a CDS service")
async def call_service(service_id: str, request: Request, principal: Auth) -> dict[str, Any]:
    """Call a CDS service: ``{"cards": [...]}``. The token must cover ``context.patientId``."""
    state = app_state(request)
    hooks.get_service(service_id)  # 404 before reading the body
    checked = hooks.parse_request(service_id, await json_body(request))
    require_patient(request, principal, checked.patient_id)
    day = request_day(request, state)
    base = str(request.base_url).rstrip("/")
    return await run_in_threadpool(_answer, state, checked, day, base)


@router.post("/cds-services/{service_id}/feedback", summary="Feedback on cards")
async def feedback(service_id: str, request: Request, principal: Auth) -> dict[str, Any]:
    """Record what the clinician did with cards: ``{"stored": N}``."""
    state = app_state(request)
    hooks.get_service(service_id)
    items = hooks.parse_feedback(await json_body(request))
    stored = await run_in_threadpool(state.feedback.save, service_id, items)
    return {"stored": stored}
