"""Where decision-support evidence comes from: document chunks and patient records.

:class:`Library` is the part of :class:`ehrqa.docs.DocumentLibrary` that the advice tasks
use, so they can be tested with a small in-memory library. The helpers turn chunks and
records into :class:`~ehrqa.cds.base.Source` entries and parse the structure that
protocols and pathways share: headings, and bullets labelled ``Label: a; b; c``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ehrqa.cds.base import Source
from ehrqa.cds.results import result_text
from ehrqa.core.errors import NotFoundError
from ehrqa.fhir.record import Record

if TYPE_CHECKING:
    from ehrqa.docs import Chunk, DocHit, DocumentInfo

HEADING_RE = re.compile(r"^\s*(#{1,6})\s+(.+?)\s*#*\s*$")
BULLET_RE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.*\S)\s*$")
LABELLED_RE = re.compile(r"^(?:\*\*)?([A-Za-z][A-Za-z /-]{1,40}?)(?:\*\*)?\s*:\s*(?:\*\*)?\s*(.+)$")


class Library(Protocol):
    """The document library as the advice tasks use it (see :mod:`ehrqa.docs`)."""

    def search(
        self,
        query: str,
        *,
        k: int = 5,
        mode: str = "hybrid",
        doc_types: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        rerank: str | None = None,
    ) -> list[DocHit]:
        """The ``k`` chunks that best match ``query``, best first."""
        ...

    def chunk(self, chunk_id: str) -> Chunk:
        """The chunk ``DOC#N``; NotFoundError when absent."""
        ...

    def documents(self) -> list[DocumentInfo]:
        """Every document of the library."""
        ...


def chunk_source(chunk: Chunk) -> Source:
    """A document chunk as a cited source (``doc:ID#N``)."""
    title = f"{chunk.title} > {chunk.section}" if chunk.section else chunk.title
    return Source(f"doc:{chunk.id}", "document", title, chunk.text)


def record_source(record: Record) -> Source:
    """A patient resource as a cited source (``Type/id``), shown by its rendering."""
    return Source(record.ref, "record", record.display, record.text)


def result_phrase(record: Record, sex: str | None = None, age: int | None = None) -> str:
    """A result with its rounded value, readable unit, date and High/Low flag:
    "Glomerular filtration rate/1.73 sq M.predicted: 38 mL/min/1.73 m² on … (Low; …)"."""
    return result_text(record, sex, age)


def document_chunks(library: Library, doc_id: str) -> list[Chunk]:
    """Every chunk of the document ``doc_id``, in order."""
    info = next((d for d in library.documents() if d.id == doc_id), None)
    if info is None:
        raise NotFoundError(f"no document {doc_id!r} in the library")
    chunks = []
    for n in range(1, info.chunks + 1):
        try:
            chunks.append(library.chunk(f"{doc_id}#{n}"))
        except NotFoundError:
            continue  # an ordinal left free by a duplicate chunk
    return chunks


@dataclass
class Block:
    """The text under one heading of a chunk: its heading path, labelled bullets, bullets."""

    chunk: Chunk
    path: tuple[str, ...]
    labelled: dict[str, list[str]] = field(default_factory=dict)
    bullets: list[str] = field(default_factory=list)

    @property
    def heading(self) -> str:
        """The innermost heading ("" when the chunk starts before any heading)."""
        return self.path[-1] if self.path else ""

    def under(self, *words: str) -> bool:
        """Whether a heading of the path contains one of ``words`` (case-insensitive)."""
        return any(w in part.lower() for part in self.path for w in words)


def blocks(chunk: Chunk) -> Iterator[Block]:
    """The chunk split at its headings, with each block's bullets.

    Headings are Markdown lines (``### Acute cystitis``); text before the first heading
    belongs to the chunk's own section path. A bullet ``Features for: a; b`` is stored
    under its lower-cased label, split at semicolons.
    """
    path = tuple(p.strip() for p in chunk.section.split(" > ") if p.strip())
    levels: list[tuple[int, str]] = [(i + 2, p) for i, p in enumerate(path)]
    current = Block(chunk, path)
    for line in chunk.text.splitlines():
        heading = HEADING_RE.match(line)
        if heading:
            if current.bullets:
                yield current
            level = len(heading.group(1))
            levels = [(lv, text) for lv, text in levels if lv < level]
            if level > 1:  # a level-1 heading is the document's title, not a section
                levels.append((level, heading.group(2)))
            current = Block(chunk, tuple(text for _, text in levels))
            continue
        bullet = BULLET_RE.match(line)
        if not bullet:
            continue
        current.bullets.append(bullet.group(1))
        labelled = LABELLED_RE.match(bullet.group(1))
        if labelled:
            items = [i.strip(" .*") for i in labelled.group(2).split(";") if i.strip(" .*")]
            current.labelled.setdefault(labelled.group(1).strip().lower(), []).extend(items)
    if current.bullets:
        yield current
