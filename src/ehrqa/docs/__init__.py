"""Hospital documents: read (Markdown, text, HTML, PDF), chunk by structure, and search with
BM25 (SQLite FTS5) and dense vectors fused by reciprocal rank fusion.

Typical use::

    from ehrqa.docs import open_library

    library = open_library(home)                       # <home>/docs.sqlite3
    report = library.add(["guidelines/"], doc_type="guideline")
    for hit in library.search("first-line treatment of cystitis", k=5):
        print(hit.chunk.citation, hit.chunk.section, hit.score)
"""

from __future__ import annotations

from ehrqa.docs.chunk import ChunkConfig, TextChunk, chunk_text, count_tokens
from ehrqa.docs.library import (
    Chunk,
    DocHit,
    DocsReport,
    DocumentInfo,
    DocumentLibrary,
    FileOutcome,
    open_library,
)
from ehrqa.docs.load import DocumentError, SourceDocument, read_document
from ehrqa.docs.retrieval import RRF_K, fts_query, reciprocal_rank_fusion

__all__ = [
    "RRF_K",
    "Chunk",
    "ChunkConfig",
    "DocHit",
    "DocsReport",
    "DocumentError",
    "DocumentInfo",
    "DocumentLibrary",
    "FileOutcome",
    "SourceDocument",
    "TextChunk",
    "chunk_text",
    "count_tokens",
    "fts_query",
    "open_library",
    "read_document",
    "reciprocal_rank_fusion",
]
