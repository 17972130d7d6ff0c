"""The app factory: ``create_app(config)`` wires routers to a store and a library.

There is no global state: the configuration, the record store, the document library, the
token store, the audit log, the shared chat model and the feedback store live on
``app.state.ehrqa`` (an :class:`~ehrqa.api.state.AppState`), which routes reach through
:func:`~ehrqa.api.state.app_state`; routers import that module, not this one.
New areas add a router module and one ``include_router`` line in :func:`create_app`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrqa.api.audit import AuditLog
from ehrqa.api.errors import (
    AuthenticationError,
    GenerationTimeoutError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from ehrqa.api.generation import shared_model
from ehrqa.api.guard import LOOPBACK_HOSTS
from ehrqa.api.limits import ApiLimits
from ehrqa.api.state import AppState
from ehrqa.api.tokens import TokenStore
from ehrqa.cds.hooks import CdsRequestError, FeedbackStore
from ehrqa.core.config import EhrqaConfig
from ehrqa.core.errors import (
    BackendUnavailableError,
    ConfigError,
    EhrqaError,
    FhirValidationError,
    NotFoundError,
    StoreError,
)
from ehrqa.store.base import RecordStore

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ehrqa.cds.sources import Library
    from ehrqa.llm.base import ChatModel

logger = logging.getLogger(__name__)

# HTTP status of each error class; the first class an error is an instance of wins.
ERROR_STATUS: tuple[tuple[type[EhrqaError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (PayloadTooLargeError, 413),
    (ConfigError, 400),
    (FhirValidationError, 400),
    (BackendUnavailableError, 503),
    (StoreError, 503),
    (GenerationTimeoutError, 504),
)
# The error name of a plain HTTP error (an unknown route, a wrong method…).
HTTP_ERROR_NAMES: dict[int, str] = {
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
}


def error_status(exc: EhrqaError) -> int:
    """The HTTP status for an ehrqa error (500 for an unexpected kind)."""
    if isinstance(exc, CdsRequestError):
        return exc.status_code
    return next((status for cls, status in ERROR_STATUS if isinstance(exc, cls)), 500)


def _json_error(error: str, message: str, status: int, **extra: Any) -> JSONResponse:
    from fastapi.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error, "message": message, **extra}, status, headers=headers)


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EhrqaError)
    return _json_error(type(exc).__name__, str(exc), error_status(exc))


def _http_error_response(request: Request, exc: Exception) -> JSONResponse:
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    name = HTTP_ERROR_NAMES.get(exc.status_code, "HTTPError")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        path = request.url.path
        message = f"no route {request.method} {path}: GET /openapi.json lists the routes"
    return _json_error(name, message, exc.status_code)


def _internal_error_response(request: Request, exc: Exception) -> JSONResponse:
    # The type and route template only: messages and paths may name patients or quote
    # record text, which must never reach the logs.
    route = getattr(request.scope.get("route"), "path", "?")
    logger.error("unexpected %s on %s %s", type(exc).__name__, request.method, route)
    message = "the server failed unexpectedly; its log names the error type"
    return _json_error("InternalError", message, 500)


class QuietErrorsMiddleware:
    """Answers an unexpected exception with a JSON 500 and does not re-raise it.

    Starlette re-raises after its own error handler, and the server then logs the full
    message and traceback, which may quote a question or record text. Caught here, only
    :func:`_internal_error_response` logs: the error type and the route template.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; on an escaped exception, answer 500 if nothing was sent yet."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            from starlette.requests import Request as StarletteRequest

            response = _internal_error_response(StarletteRequest(scope), exc)
            if not started:
                await response(scope, receive, send)


def validation_message(errors: Sequence[Any]) -> str:
    """One line naming every invalid field and what is wrong with it."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _validation_response(request: Request, exc: Exception) -> JSONResponse:
    from fastapi.exceptions import RequestValidationError

    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()
    ]
    return _json_error("ValidationError", validation_message(exc.errors()), 422, details=details)


def create_app(
    config: EhrqaConfig,
    *,
    store: RecordStore | None = None,
    library: Library | None = None,
    now: date | None = None,
    cors_origins: Sequence[str] = (),
    auth: TokenStore | None = None,
    audit: AuditLog | None = None,
    limits: ApiLimits | None = None,
    model: ChatModel | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """Build the HTTP app: ``/healthz``, the ``/v1`` API, CDS Hooks and the web page.

    ``store`` is the record store (``None``: CDS Hooks requests must bring a prefetch);
    ``library`` the document library (``None``: no protocol cards, 503 for advice);
    ``now`` fixes the date (otherwise today, or a request's ``X-Ehrqa-Now`` header);
    ``cors_origins`` lists the browser origins allowed to call (none by default). ``auth``
    is the token store (``None``: no access control, every request acts as admin);
    ``audit`` the audit log (``None``: none kept); ``limits`` the request limits;
    ``model`` a chat model to use instead of loading ``config.model`` (tests). Card
    feedback is stored in ``<config.home>/cds_feedback.sqlite3``. ``allowed_hosts`` (default:
    ``config.allowed_hosts``) are the Host names answered besides loopback: without ``auth``
    every other Host is refused, and state changes from foreign web pages too (see
    :mod:`ehrqa.api.guard`).
    """
    try:
        from fastapi import FastAPI
        from fastapi.exceptions import RequestValidationError
        from fastapi.middleware.cors import CORSMiddleware
        from starlette.exceptions import HTTPException
    except ImportError as exc:
        raise BackendUnavailableError(
            "the HTTP service needs FastAPI: pip install 'ehrqa[serve]'"
        ) from exc
    from ehrqa.api.audit import AuditMiddleware
    from ehrqa.api.guard import RequestGuard, RequestGuardMiddleware
    from ehrqa.api.limits import BodyLimitMiddleware
    from ehrqa.cds.tasks import model_factory

    app = FastAPI(
        title="ehrqa",
        version="0.1.0",
        summary="Question answering and decision support over FHIR health records, offline.",
        # Swagger UI and ReDoc load their scripts from a CDN, which an offline hospital
        # network cannot reach: the schema itself is served at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    shared = shared_model((lambda: model) if model is not None else model_factory(config))
    limits = limits or ApiLimits()
    app.state.ehrqa = AppState(
        config, store, library, FeedbackStore.in_home(config.home), now, auth, audit, limits, shared
    )
    app.add_exception_handler(EhrqaError, _error_response)
    app.add_exception_handler(HTTPException, _http_error_response)
    app.add_exception_handler(RequestValidationError, _validation_response)
    app.add_exception_handler(Exception, _internal_error_response)
    app.add_middleware(BodyLimitMiddleware, limits=limits)
    if audit is not None:
        app.add_middleware(AuditMiddleware, log=audit)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "X-Ehrqa-Now", "Accept"],
        )
    guard = RequestGuard.build(
        no_auth=auth is None,
        allowed_hosts=config.host_names() if allowed_hosts is None else allowed_hosts,
        cors_origins=cors_origins,
    )
    app.add_middleware(RequestGuardMiddleware, guard=guard)
    app.add_middleware(QuietErrorsMiddleware)  # added last: the outermost of ours

    @app.get("/healthz", tags=["service"], summary="Liveness")
    def healthz() -> dict[str, object]:
        """Liveness, and which optional parts are configured."""
        state = app.state.ehrqa
        return {
            "status": "ok",
            "store": state.store is not None,
            "library": state.library is not None,
        }

    _include_routers(app)
    return app


def _include_routers(app: FastAPI) -> None:
    from ehrqa.api import (
        ask_routes,
        cds_routes,
        hooks_routes,
        ingest_routes,
        patients_routes,
        records_routes,
        web_routes,
    )

    for module in (
        patients_routes,
        records_routes,
        ask_routes,
        cds_routes,
        ingest_routes,
        hooks_routes,
        web_routes,
    ):
        app.include_router(module.router)


@contextmanager
def home_app(
    config: EhrqaConfig,
    *,
    cors_origins: Sequence[str] = (),
    auth: TokenStore | None = None,
    audit: AuditLog | None = None,
) -> Iterator[FastAPI]:
    """The app over the data directory's record store and (if any) document library.

    Both are opened here and closed when the context ends.
    """
    from ehrqa.docs import open_library
    from ehrqa.docs.library import LIBRARY_FILE
    from ehrqa.store import open_store

    store = open_store(config.store or config.home)
    library = None
    if (Path(config.home) / LIBRARY_FILE).is_file():
        library = open_library(config.home, embedder=config.embedder)
    try:
        yield create_app(
            config,
            store=store,
            library=library,
            cors_origins=cors_origins,
            auth=auth,
            audit=audit,
        )
    finally:
        store.close()
        if library is not None:
            library.close()


def check_serve_options(host: str, *, no_auth: bool, audit: bool, audit_text: bool) -> None:
    """ConfigError for a combination of ``ehrqa serve`` options that is unsafe or unclear."""
    if no_auth and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"--no-auth with --host {host!r} would expose patient records without access "
            f"control: drop --no-auth (and create tokens with `ehrqa tokens create`), or "
            f"listen on one of {', '.join(LOOPBACK_HOSTS)}"
        )
    if audit_text and not audit:
        raise ConfigError("--audit-text only adds text to the audit log: add --audit")


def serve(
    config: EhrqaConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    cors_origins: Sequence[str] = (),
    no_auth: bool = False,
    audit: bool = False,
    audit_text: bool = False,
) -> None:
    """Serve the app with uvicorn until interrupted.

    Requests need a bearer token from ``<home>/auth.sqlite3`` (``ehrqa tokens create``),
    unless ``no_auth``, which is allowed on loopback addresses only. ``audit`` appends a
    line per patient request to ``<home>/audit.jsonl`` (with the question and answer text
    when ``audit_text``). The access log is off: request paths name patients.
    """
    check_serve_options(host, no_auth=no_auth, audit=audit, audit_text=audit_text)
    try:
        import uvicorn
    except ImportError as exc:
        raise BackendUnavailableError("serving needs uvicorn: pip install 'ehrqa[serve]'") from exc
    tokens = None if no_auth else TokenStore.in_home(config.home)
    if tokens is not None and tokens.active_count() == 0:
        tokens.close()
        raise ConfigError(
            f"no active token in {tokens.path}: create one first, e.g. "
            "`ehrqa tokens create --label admin --admin` (or serve on loopback with --no-auth)"
        )
    log = AuditLog.in_home(config.home, include_text=audit_text) if audit else None
    try:
        with home_app(config, cors_origins=cors_origins, auth=tokens, audit=log) as app:
            # Models load while the server starts taking requests (no first question waits).
            threading.Thread(target=app.state.ehrqa.warm, name="ehrqa-warm", daemon=True).start()
            uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    finally:
        if tokens is not None:
            tokens.close()
