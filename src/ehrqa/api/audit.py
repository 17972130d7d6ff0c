"""The opt-in audit log: one JSON line per request that touches a patient's record.

``ehrqa serve --audit`` appends to ``<home>/audit.jsonl``: the time, the token's label
(never the token), the method and route, the patient id, the resource references the
answer cited, and the response status. The question and answer text are written only with
``--audit-text``. Routes describe what they touched with :func:`note`; the
:class:`AuditMiddleware` writes the line once the response (streamed ones included) has
been sent, so the status is the one the client got.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ehrqa.core.config import private_dir, private_file, warn_if_shared

AUDIT_FILE = "audit.jsonl"
SCOPE_KEY = "ehrqa.audit"


@dataclass
class AuditEntry:
    """What one request touched; filled in by the routes as they learn it."""

    token: str
    patient: str | None = None
    refs: list[str] = field(default_factory=list)
    question: str | None = None
    answer: str | None = None


class AuditLog:
    """Appends audit lines to one JSONL file, a line at a time, flushed, under one lock."""

    def __init__(self, path: str | Path, *, include_text: bool = False) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        if not private_file(self.path):  # 0600: it names patients and what was asked
            warn_if_shared(self.path)
        self.include_text = include_text
        self._lock = threading.Lock()

    @classmethod
    def in_home(cls, home: str | Path, *, include_text: bool = False) -> AuditLog:
        """The audit log of a data directory (``<home>/audit.jsonl``)."""
        return cls(Path(home) / AUDIT_FILE, include_text=include_text)

    def line(self, entry: AuditEntry, *, method: str, route: str, status: int) -> dict[str, Any]:
        """The JSON object written for ``entry`` (text fields only when ``include_text``)."""
        data: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "token": entry.token,
            "method": method,
            "route": route,
            "patient": entry.patient,
            "refs": list(dict.fromkeys(entry.refs)),
            "status": status,
        }
        if self.include_text:
            data["question"] = entry.question
            data["answer"] = entry.answer
        return data

    def write(self, entry: AuditEntry, *, method: str, route: str, status: int) -> None:
        """Append one line and flush it to the file."""
        raw = orjson.dumps(self.line(entry, method=method, route=route, status=status))
        with self._lock:
            # 0600 even when the file was removed while the service runs.
            handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(handle, raw + b"\n")
            finally:
                os.close(handle)


def note(
    scope: Scope,
    token: str,
    *,
    patient: str | None = None,
    refs: Iterable[str] = (),
    question: str | None = None,
    answer: str | None = None,
) -> AuditEntry:
    """Record on the request what it touched (merged with anything noted before)."""
    entry: AuditEntry = scope.setdefault(SCOPE_KEY, AuditEntry(token))
    entry.patient = patient or entry.patient
    entry.refs.extend(refs)
    entry.question = question if question is not None else entry.question
    entry.answer = answer if answer is not None else entry.answer
    return entry


class AuditMiddleware:
    """Writes the audit line of each request that noted a patient (or an ingest)."""

    def __init__(self, app: ASGIApp, log: AuditLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, remembering the status, then write its line."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            entry = scope.get(SCOPE_KEY)
            if isinstance(entry, AuditEntry):
                route = str(getattr(scope.get("route"), "path", scope.get("path", "")))
                self.log.write(entry, method=scope["method"], route=route, status=status)
