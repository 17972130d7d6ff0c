"""Request guards against web pages: a Host allow-list and JSON-only state changes.

A web page open in the user's browser can reach a service on loopback in two ways. DNS
rebinding: ``evil.example`` resolves to 127.0.0.1, and the page's scripts read the answers,
with ``Host: evil.example``. A cross-site "simple" request: a POST of ``text/plain`` or a
form, which the browser sends without asking the service first. Without tokens
(``--no-auth``) nothing else stands in the way, so :class:`RequestGuardMiddleware` refuses,
before any route runs:

- a Host that is not a loopback name or one of the configured ``allowed_hosts`` (400;
  always without tokens, with tokens only when ``allowed_hosts`` is set);
- a state-changing request (POST, PUT, PATCH, DELETE) with a body that is not JSON (415;
  NDJSON too on ``/v1/ingest``): a browser sends JSON cross-site only after a CORS
  preflight, which the service grants to ``--cors-origin`` alone;
- without tokens, a state-changing request from a foreign ``Origin``: neither this service
  nor a ``--cors-origin`` (403).

So the service is CSRF-safe by construction, not by each route remembering to check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ehrqa.api.limits import INGEST_PATH

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
INGEST_TYPES = frozenset({"application/x-ndjson", "application/fhir+ndjson", "application/ndjson"})
SHOWN_CHARS = 80  # of a refused Host or Origin, quoted in the message


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused before any route sees it."""

    status: int
    error: str
    message: str

    def response(self) -> JSONResponse:
        """The JSON error body every refusal answers with."""
        return JSONResponse({"error": self.error, "message": self.message}, self.status)


@dataclass(frozen=True)
class RequestGuard:
    """What the guard checks: ``hosts`` (None: any Host), and whether Origins are checked."""

    hosts: frozenset[str] | None = None
    check_origin: bool = False
    cors_origins: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls, *, no_auth: bool, allowed_hosts: Iterable[str] = (), cors_origins: Iterable[str] = ()
    ) -> RequestGuard:
        """The guard of a service: the Host list is on without tokens or when configured."""
        extra = [host_name(h) for h in allowed_hosts if h.strip()]
        hosts = frozenset((*LOOPBACK_HOSTS, *extra)) if no_auth or extra else None
        origins = frozenset(o.strip().rstrip("/").lower() for o in cors_origins)
        return cls(hosts, no_auth, origins)

    def refusal(self, method: str, path: str, headers: dict[str, str]) -> Refusal | None:
        """Why the request is refused, or None when it may go on (a pure function)."""
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return Refusal(
                400,
                "HostNotAllowedError",
                f"this service does not answer to Host {_shown(host)}: open it at "
                f"http://127.0.0.1 (or localhost), or add the name to allowed_hosts "
                f"(EHRQA_ALLOWED_HOSTS)",
            )
        if method.upper() in SAFE_METHODS:
            return None
        if _has_body(headers) and not _accepted_type(headers.get("content-type", ""), path):
            kinds = "application/json" + (" or application/x-ndjson" if path == INGEST_PATH else "")
            return Refusal(
                415,
                "UnsupportedMediaTypeError",
                f"{method} {path[:SHOWN_CHARS]} takes {kinds}, not "
                f"{_shown(headers.get('content-type', '(none)'))}: send the body with "
                "'Content-Type: application/json'",
            )
        origin = headers.get("origin")
        if self.check_origin and origin is not None and not self._own_origin(origin, host):
            return Refusal(
                403,
                "CrossSiteRequestError",
                f"a request from the web page at {_shown(origin)} may not change anything "
                "on this service: serve with tokens, or allow that page with --cors-origin",
            )
        return None

    def _own_origin(self, origin: str, host: str) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self.cors_origins:
            return True
        scheme, _, netloc = origin.partition("://")
        return scheme in ("http", "https") and bool(netloc) and netloc == host.strip().lower()


def host_name(host: str) -> str:
    """The name of a ``Host`` header value: lower-case, without port, brackets or final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length", "").strip()
    return "transfer-encoding" in headers or (length != "" and length != "0")


def _accepted_type(content_type: str, path: str) -> bool:
    kind = content_type.partition(";")[0].strip().lower()
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return True
    return path == INGEST_PATH and kind in INGEST_TYPES


def _shown(value: str) -> str:
    return repr(value[:SHOWN_CHARS] + ("…" if len(value) > SHOWN_CHARS else ""))


class RequestGuardMiddleware:
    """Answers a refused request (see :class:`RequestGuard`) before the app sees it."""

    def __init__(self, app: ASGIApp, guard: RequestGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request line and headers; answer the refusal or pass the request on."""
        if scope["type"] == "http":
            headers: dict[str, str] = {}
            for name, value in scope.get("headers", ()):
                # The first of repeated headers, as Starlette's ``request.headers`` reads them.
                headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
            refusal = self.guard.refusal(scope["method"], scope.get("path", ""), headers)
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
