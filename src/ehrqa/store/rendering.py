"""Stored record texts kept current with the code that renders them.

A record keeps the line :func:`~ehrqa.fhir.render.render` made of it when it was stored,
and upserting an unchanged resource leaves it alone, so a change to the rendering would
never reach the records stored before it. Each store therefore keeps, in its ``meta``
table, the :data:`~ehrqa.fhir.render.RENDER_VERSION` its texts were rendered with (none
stored: version 1, the texts from before versions were kept), and when the code's version
is later :func:`update_texts` renders every record again from its stored resource JSON,
with its lexical index entry.

It goes in batches of :data:`RENDER_BATCH` rows in row-id order, each in one transaction
that also notes how far it got (``render_progress``); the new version is stored only by
the transaction that finds no row left. A run cut short leaves the old version stored, and
the next open goes on after the last batch that committed. A store that is up to date
costs one read of its ``meta`` table when opened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from ehrqa.core.errors import FhirValidationError
from ehrqa.fhir.render import RENDER_VERSION, note_text, render

logger = logging.getLogger(__name__)

RENDER_BATCH = 500  # rows re-rendered per transaction
VERSION_KEY = "render_version"
PROGRESS_KEY = "render_progress"  # "<version>:<last row id>" while a re-render is unfinished
UNVERSIONED = 1  # the render version of texts stored before versions were kept

#: Stored resources by reference (``Medication/m1``), for the references a rendering resolves.
Fetch = Callable[[Sequence[str]], Mapping[str, dict[str, Any]]]


@dataclass(frozen=True)
class RenderState:
    """What a store's ``meta`` table says of its texts.

    ``version`` is the render version every text has (at least); ``resume_after`` the last
    row id an unfinished re-render to the code's version got to (0: start from the first).
    """

    version: int = UNVERSIONED
    resume_after: int = 0

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> RenderState:
        """The state stored as ``meta`` rows; progress towards another version is ignored."""
        version = int(meta.get(VERSION_KEY, UNVERSIONED))
        target, _, after = meta.get(PROGRESS_KEY, "").partition(":")
        resume = int(after) if target == str(RENDER_VERSION) and after.isdigit() else 0
        return cls(version, resume)

    @property
    def current(self) -> bool:
        """Whether the texts are rendered by this code's version (or a later one)."""
        return self.version >= RENDER_VERSION


def progress(after: int) -> str:
    """The ``render_progress`` value of a re-render that has done the rows up to ``after``."""
    return f"{RENDER_VERSION}:{after}"


@dataclass(slots=True)
class StoredText:
    """A stored record as a re-render reads it, or as re-rendered.

    ``body`` is what the lexical index holds for it: its text and a note's full text
    (None where the store keeps no copy, as the PostgreSQL store keeps only lexemes).
    """

    id: int
    patient_id: str | None
    text: str
    resource: bytes
    body: str | None = None


@dataclass(frozen=True)
class RenderedBatch:
    """One batch of a re-render: the last row id it read, rows read, texts changed."""

    last_id: int
    rows: int
    changed: int


@dataclass(frozen=True)
class Rerendered:
    """What :func:`update_texts` did: from which version, rows read, texts changed, time."""

    from_version: int
    rows: int
    changed: int
    seconds: float


def index_body(text: str, resource: dict[str, Any]) -> str:
    """What the lexical index holds for a record: its text and a note's full text."""
    return f"{text} {note_text(resource) or ''}".strip()


def rerender(rows: Sequence[StoredText], fetch: Fetch) -> list[StoredText]:
    """The rows whose text or index body this code renders differently, re-rendered.

    Rows with an unknown ``body`` are always returned. References are resolved as ingestion
    resolves them, against stored resources: a first pass notes the references each
    rendering asks for, they are fetched in one call, and the rows that asked are rendered
    again, until no rendering asks for one not yet fetched. A resource that no longer
    renders (:class:`FhirValidationError`) keeps its stored text.
    """
    resources = [orjson.loads(row.resource) for row in rows]
    known: dict[str, dict[str, Any] | None] = {}
    rendered: dict[int, tuple[str, str]] = {}
    pending = list(range(len(rows)))
    while pending:
        asked: dict[int, set[str]] = {}
        for i in pending:
            missing: set[str] = set()
            try:
                text = render(resources[i], resolve=_resolver(known, missing))
                rendered[i] = (text, index_body(text, resources[i]))
            except FhirValidationError:
                rendered.pop(i, None)
                continue
            if missing:
                asked[i] = missing
        wanted = sorted(set().union(*asked.values()))
        if wanted:
            found = fetch(wanted)
            known.update((ref, found.get(ref)) for ref in wanted)
        pending = list(asked)
    changed = []
    for i, row in enumerate(rows):
        if i in rendered and (row.body is None or rendered[i] != (row.text, row.body)):
            text, body = rendered[i]
            changed.append(replace(row, text=text, body=body))
    return changed


def _resolver(
    known: dict[str, dict[str, Any] | None], missing: set[str]
) -> Callable[[str], dict[str, Any] | None]:
    """Look references up in ``known``; note in ``missing`` those not fetched yet."""

    def resolve(ref: str) -> dict[str, Any] | None:
        if ref in known:
            return known[ref]
        missing.add(ref)
        return None

    return resolve


def update_texts(
    where: str, state: RenderState, batch: Callable[[int, int], RenderedBatch | None]
) -> Rerendered | None:
    """Re-render a store's texts unless ``state`` is current; None when it was.

    ``batch(after, limit)`` is the store's: in one transaction, re-render up to ``limit``
    rows with ids after ``after`` and store :func:`progress`; when no row is left, store
    the code's version and return None (also when another process stored it meanwhile).
    Logs one line naming the store (never a record) when texts were re-rendered.
    """
    if state.current:
        return None
    started = time.perf_counter()
    after, rows, changed = state.resume_after, 0, 0
    while (done := batch(after, RENDER_BATCH)) is not None:
        after, rows, changed = done.last_id, rows + done.rows, changed + done.changed
    result = Rerendered(state.version, rows, changed, time.perf_counter() - started)
    if rows:
        resumed = f", resuming after row {state.resume_after}" if state.resume_after else ""
        logger.warning(
            "re-rendered the record texts of %s for render version %d (they had %d%s): "
            "%d records read, %d changed, in %.1f s",
            where,
            RENDER_VERSION,
            state.version,
            resumed,
            rows,
            changed,
            result.seconds,
        )
    return result
