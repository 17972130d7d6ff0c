"""The app factory: ``create_app(config)`` wires routers to a store and a library.

There is no global state: the configuration, the record store, the document library and
the feedback store live on ``app.state.ehrqa`` (an :class:`AppState`), which routes reach
through :func:`app_state`. New areas (auth, patients, ask, a web page) add a router module
and one ``include_router`` line in :func:`create_app`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ehrqa.cds.hooks import CdsRequestError, FeedbackStore
from ehrqa.config import EhrqaConfig
from ehrqa.errors import (
    BackendUnavailableError,
    ConfigError,
    EhrqaError,
    FhirValidationError,
    NotFoundError,
)
from ehrqa.store.base import RecordStore

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from ehrqa.cds.sources import Library

# HTTP status of each error class; the first class an error is an instance of wins.
ERROR_STATUS: tuple[tuple[type[EhrqaError], int], ...] = (
    (NotFoundError, 404),
    (ConfigError, 400),
    (FhirValidationError, 400),
    (BackendUnavailableError, 503),
)


@dataclass
class AppState:
    """What the routes share: settings, data and the fixed date for tests (``now``)."""

    config: EhrqaConfig
    store: RecordStore | None
    library: Library | None
    feedback: FeedbackStore
    now: date | None = None

    def today(self) -> date:
        """The date the decision support reasons at: the fixed ``now`` or today."""
        return self.now or date.today()


def app_state(request: Request) -> AppState:
    """The :class:`AppState` of the app serving ``request``."""
    state: AppState = request.app.state.ehrqa
    return state


def error_status(exc: EhrqaError) -> int:
    """The HTTP status for an ehrqa error (500 for an unexpected kind)."""
    if isinstance(exc, CdsRequestError):
        return exc.status_code
    return next((status for cls, status in ERROR_STATUS if isinstance(exc, cls)), 500)


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    from fastapi.responses import JSONResponse

    assert isinstance(exc, EhrqaError)
    body = {"error": type(exc).__name__, "message": str(exc)}
    return JSONResponse(body, status_code=error_status(exc))


def create_app(
    config: EhrqaConfig,
    *,
    store: RecordStore | None = None,
    library: Library | None = None,
    now: date | None = None,
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """Build the HTTP app: ``/healthz``, CDS Hooks, and the record and chunk routes.

    ``store`` is the record store (``None``: CDS Hooks requests must bring a prefetch);
    ``library`` the document library (``None``: no protocol cards); ``now`` fixes the date
    (otherwise today, or a request's ``X-Ehrqa-Now`` header); ``cors_origins`` lists the
    browser origins allowed to call (none by default). Card feedback is stored in
    ``<config.home>/cds_feedback.sqlite3``.
    """
    try:
        from fastapi import FastAPI
        from fastapi.middleware.cors import CORSMiddleware
    except ImportError as exc:
        raise BackendUnavailableError(
            "the HTTP service needs FastAPI: pip install 'ehrqa[serve]'"
        ) from exc
    from ehrqa.api import hooks_routes, records_routes

    app = FastAPI(title="ehrqa", version="0.1.0")
    app.state.ehrqa = AppState(config, store, library, FeedbackStore.in_home(config.home), now)
    app.add_exception_handler(EhrqaError, _error_response)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "X-Ehrqa-Now"],
        )

    @app.get("/healthz")
    def healthz() -> dict[str, object]:
        """Liveness, and which optional parts are configured."""
        state = app.state.ehrqa
        return {
            "status": "ok",
            "store": state.store is not None,
            "library": state.library is not None,
        }

    app.include_router(hooks_routes.router)
    app.include_router(records_routes.router)
    return app


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@contextmanager
def home_app(config: EhrqaConfig, *, cors_origins: Sequence[str] = ()) -> Iterator[FastAPI]:
    """The app over the data directory's record store and (if any) document library.

    Both are opened here and closed when the context ends.
    """
    from ehrqa.docs import open_library
    from ehrqa.docs.library import LIBRARY_FILE
    from ehrqa.store import open_store

    store = open_store(config.home)
    library = None
    if (Path(config.home) / LIBRARY_FILE).is_file():
        library = open_library(config.home, embedder=config.embedder)
    try:
        yield create_app(config, store=store, library=library, cors_origins=cors_origins)
    finally:
        store.close()
        if library is not None:
            library.close()


def serve(
    config: EhrqaConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    cors_origins: Sequence[str] = (),
) -> None:
    """Serve the app with uvicorn on this machine only, until interrupted.

    There is no access control yet, so only loopback addresses are accepted. The access log
    is off: request paths name patients.
    """
    if host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"--host {host!r} would expose patient records without access control, which "
            f"ehrqa serve does not have yet: use one of {', '.join(LOOPBACK_HOSTS)}"
        )
    try:
        import uvicorn
    except ImportError as exc:
        raise BackendUnavailableError("serving needs uvicorn: pip install 'ehrqa[serve]'") from exc
    with home_app(config, cors_origins=cors_origins) as app:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
