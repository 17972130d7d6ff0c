"""``POST /v1/patients/{id}/ask``: records QA as JSON, or streamed as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ehrqa.api.audit import note
from ehrqa.api.auth import authenticate, require_patient
from ehrqa.api.generation import OnEvent, event_stream
from ehrqa.api.limits import in_worker
from ehrqa.api.schemas import ERROR_RESPONSES, AskRequest
from ehrqa.api.state import app_state
from ehrqa.api.tokens import Principal

router = APIRouter(prefix="/v1", tags=["ask"], responses=ERROR_RESPONSES)
Auth = Annotated[Principal, Depends(authenticate)]
EVENT_STREAM = "text/event-stream"
STREAM_DOC = {
    "description": "The answer (`ehrqa ask --json`), or with `Accept: text/event-stream` "
    "(or `?stream=true`) Server-Sent Events: `status` `{stage: searching, records}`; "
    "`answer`, the checked answer to show at once (the same JSON); `status` "
    "`{stage: writing}` when a model attempts a rewrite; then one `result` event, the answer "
    "to keep (it may replace the shown one), or one `error` event with `{error, message}` "
    "at any point. Nothing a model writes is streamed before its checks.",
    "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
}


def wants_stream(request: Request, stream: bool) -> bool:
    """Whether the client asked for Server-Sent Events (header or ``?stream=true``)."""
    return stream or EVENT_STREAM in request.headers.get("accept", "")


@router.post(
    "/patients/{patient_id}/ask",
    summary="Ask a question about a patient's record",
    responses={200: STREAM_DOC},
    response_model=None,
)
async def ask(
    patient_id: str,
    body: AskRequest,
    request: Request,
    principal: Auth,
    stream: Annotated[bool, Query(description="Stream Server-Sent Events.")] = False,
) -> dict[str, Any] | StreamingResponse:
    """Select the patient's relevant records and answer from them, citing each fact."""
    state = app_state(request)
    pid = require_patient(request, principal, patient_id)
    store = state.require_store()
    pid = (await run_in_threadpool(store.patient, pid)).id  # 404 before any streaming
    qa = state.qa_system(body.answer_mode or state.config.answer_mode)
    day = body.now or state.today()
    entry = note(request.scope, principal.label, patient=pid, question=body.question)

    def run(on_event: OnEvent | None = None) -> dict[str, Any]:
        if body.conversation_id is None:
            asked = qa.ask(pid, body.question, now=day, on_event=on_event)
        else:
            # Per signed-in user and patient: one user's conversation never resolves another's.
            turns, key = state.conversations(principal.label), body.conversation_id
            asked = qa.ask_in(turns, key, pid, body.question, now=day, on_event=on_event)
        result = asked.to_dict()
        entry.refs.extend(result.get("citations") or [])
        entry.answer = result.get("answer")
        return result

    timeout = state.limits.generation_timeout_s
    if wants_stream(request, stream):
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            event_stream(run, timeout), media_type=EVENT_STREAM, headers=headers
        )
    return await in_worker(run, timeout)
