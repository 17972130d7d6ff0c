"""The web page: ``GET /`` serves ``static/index.html``; ``GET /static/NAME`` its assets.

The page is plain HTML, CSS and JavaScript modules with no build step and nothing fetched
from elsewhere, so it works offline. It needs no token: it asks for one and then calls the
``/v1`` routes with it. Files are served with an ``ETag`` and ``Cache-Control: no-cache``
(the browser revalidates, so a new release is picked up at once) and a Content Security
Policy that only allows this origin's scripts, styles and API, as a second line of defence
against record text that contains markup.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ehrqa.core.errors import NotFoundError
from ehrqa.text.units import readable_units

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(tags=["web"], include_in_schema=False)
MAX_NAME_CHARS = 200


def static_path(name: str, root: Path = STATIC_DIR) -> Path:
    """The file ``name`` under ``root``, refusing anything outside it or of an unknown type.

    Raises :class:`NotFoundError` for a missing file, a path that leaves ``root`` (``..``,
    absolute paths, links out), a name with control characters (``%00``) and suffixes not
    in :data:`CONTENT_TYPES`. The message never names ``root``: where ehrqa is installed
    is nobody's business.
    """
    missing = NotFoundError(f"no web page file {name[:80]!r}: GET / serves the page")
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or len(name) > MAX_NAME_CHARS:
        raise missing
    base = root.resolve()
    try:
        path = (base / name).resolve()
        if not path.is_relative_to(base) or path.suffix not in CONTENT_TYPES:
            raise missing
        if not path.is_file():
            raise missing
    except (OSError, ValueError) as exc:  # names the file system cannot hold
        raise missing from exc
    return path


@lru_cache(maxsize=64)
def _read(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def file_response(path: Path, request: Request) -> Response:
    """``path`` with its content type, ETag and security headers; 304 when unchanged."""
    body, etag = _read(path, path.stat().st_mtime_ns)
    headers = {"ETag": etag, "Cache-Control": "no-cache", **SECURITY_HEADERS}
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=CONTENT_TYPES[path.suffix], headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


@router.get("/")
def index(request: Request) -> Response:
    """The web page."""
    return file_response(static_path("index.html"), request)


@router.get("/static/units.json")
def units() -> Response:
    """UCUM codes and how a reader writes them (``mm[Hg]`` → ``mmHg``), from the one table
    the answers use, for the patient view of a record."""
    return JSONResponse(readable_units(), headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})


@router.get("/static/{name:path}")
def static(name: str, request: Request) -> Response:
    """One of the page's files (scripts, styles, icons)."""
    return file_response(static_path(name), request)
