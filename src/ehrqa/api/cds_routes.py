"""Decision-support routes: differential, treatment, summary and document questions.

Each runs one task of :mod:`ehrqa.cds.tasks` in a worker thread (the model, when the
answer mode needs it, is the app's shared one) and returns ``Advice.to_dict()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from ehrqa.api.audit import note
from ehrqa.api.auth import authenticate_clinician, require_patient
from ehrqa.api.limits import in_worker
from ehrqa.api.schemas import (
    ERROR_RESPONSES,
    CdsAskRequest,
    DifferentialRequest,
    SummarizeRequest,
    TreatRequest,
)
from ehrqa.api.state import AppState, app_state
from ehrqa.api.tokens import Principal
from ehrqa.cds import tasks
from ehrqa.cds.base import Advice
from ehrqa.cds.narrate import check_mode

router = APIRouter(prefix="/v1", tags=["decision support"], responses=ERROR_RESPONSES)
Auth = Annotated[Principal, Depends(authenticate_clinician)]  # patients' tokens: 403
NO_LIBRARY: dict[int | str, dict[str, Any]] = {
    503: {"description": "The document library is missing or empty"}
}


async def advise(
    request: Request, principal: Principal, patient_id: str | None, run: Callable[[], Advice]
) -> dict[str, Any]:
    """Run an advice task within the time limit and note what it cited for the audit log."""
    state = app_state(request)
    advice = await in_worker(run, state.limits.generation_timeout_s)
    if patient_id is not None:
        note(
            request.scope,
            principal.label,
            patient=patient_id,
            refs=advice.citations(),
            question=advice.query,
            answer=advice.text,
        )
    return advice.to_dict()


def _mode(state: AppState, requested: str | None) -> str:
    return check_mode(requested or state.config.answer_mode)


@router.post(
    "/patients/{patient_id}/cds/differential",
    summary="Differential diagnosis for symptoms",
    responses=NO_LIBRARY,
)
async def differential(
    patient_id: str, body: DifferentialRequest, request: Request, principal: Auth
) -> dict[str, Any]:
    """Diagnoses ranked by the local pathways, weighed against the patient's record."""
    state = app_state(request)
    pid = require_patient(request, principal, patient_id)
    library, store, mode = (
        state.require_library(),
        state.require_store(),
        _mode(state, body.answer_mode),
    )
    day = body.now or state.today()
    return await advise(
        request,
        principal,
        pid,
        lambda: tasks.run_differential(
            library, body.symptoms, day, store=store, patient_id=pid, model=state.model, mode=mode
        ),
    )


@router.post(
    "/patients/{patient_id}/cds/treat",
    summary="Treatment options for a condition",
    responses=NO_LIBRARY,
)
async def treat(
    patient_id: str, body: TreatRequest, request: Request, principal: Auth
) -> dict[str, Any]:
    """The local protocol's options for the condition, checked against the record."""
    state = app_state(request)
    pid = require_patient(request, principal, patient_id)
    library, store, mode = (
        state.require_library(),
        state.require_store(),
        _mode(state, body.answer_mode),
    )
    day = body.now or state.today()
    return await advise(
        request,
        principal,
        pid,
        lambda: tasks.run_treat(
            library, store, pid, body.condition, day, model=state.model, mode=mode
        ),
    )


@router.post("/patients/{patient_id}/cds/summarize", summary="Summary of a patient's record")
async def summarize(
    patient_id: str, body: SummarizeRequest, request: Request, principal: Auth
) -> dict[str, Any]:
    """Problems, medicines, allergies, key results and recent visits, each cited."""
    state = app_state(request)
    pid = require_patient(request, principal, patient_id)
    store, mode = state.require_store(), _mode(state, body.answer_mode)
    day = body.now or state.today()
    return await advise(
        request,
        principal,
        pid,
        lambda: tasks.run_summarize_patient(store, pid, day, model=state.model, mode=mode),
    )


@router.post("/cds/ask", summary="Ask the hospital's documents", responses=NO_LIBRARY)
async def ask_documents(body: CdsAskRequest, request: Request, principal: Auth) -> dict[str, Any]:
    """A question over the documents, and over a patient's record when ``patient_id`` is set."""
    state = app_state(request)
    pid = None
    if body.patient_id is not None:
        pid = require_patient(request, principal, body.patient_id)
    library, mode = state.require_library(), _mode(state, body.answer_mode)
    store = state.require_store() if pid is not None else None
    day = body.now or state.today()
    return await advise(
        request,
        principal,
        pid,
        lambda: tasks.run_ask(
            library,
            body.question,
            day,
            store=store,
            patient_id=pid,
            model=state.model,
            mode=mode,
        ),
    )
