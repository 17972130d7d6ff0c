"""The hospital document library: documents, chunks, BM25 and vectors in one SQLite file.

Why SQLite FTS5 for BM25: the library is one file (``<home>/docs.sqlite3``) that the user
can copy or delete; chunk rows, their FTS rows and their vectors change in the same
transaction, so a document is either fully searchable or absent; FTS5 ranks with BM25
natively; and the record store already relies on it, so no new dependency.

Why exact numpy search for the vectors: ``benchmarks/bench_vector_index.py`` measured it
(``reports/docs/vector_index.md``): on 100k 384-d chunks one exact query took ~16 ms
(p50, 2 shared cores) and loading the matrix from the SQLite blobs ~1.4 s once per
process; sqlite-vec was ~10x slower per query and needs extension loading, faiss flat was
no faster for single queries, HNSW lost recall; none is worth a dependency at hospital
corpus sizes (thousands to ~100k chunks).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrqa.core.errors import (
    ConfigError,
    EhrqaError,
    NotFoundError,
    StoreError,
)
from ehrqa.docs.chunk import ChunkConfig, chunk_text
from ehrqa.docs.load import READERS, SourceDocument, find_documents, read_document, slugify
from ehrqa.docs.retrieval import fts_query, reciprocal_rank_fusion, top_k
from ehrqa.store.migrations import Migration, SqliteDatabase, migrate
from ehrqa.store.rows import from_row

if TYPE_CHECKING:
    import numpy as np

    from ehrqa.llm.embed import Embedder

__all__ = [
    "Chunk",
    "DocHit",
    "DocsReport",
    "DocumentInfo",
    "DocumentLibrary",
    "FileOutcome",
    "open_library",
]

LIBRARY_FILE = "docs.sqlite3"
SEARCH_MODES = ("hybrid", "bm25", "dense")
EMBED_BATCH = 64  # chunks per embed() call while adding or reindexing
# Dense ranks count half as much as BM25 ranks in the fusion. On the demo corpus's labelled
# questions (reports/docs/retrieval.md) equal weights put hybrid below BM25 alone (recall@5
# 0.851 vs 0.891); dense weights of 0.3-0.7 all put it above. 0.5 was chosen on that same
# set (there is no held-out set yet), so the hybrid figure there is somewhat optimistic.
RETRIEVER_WEIGHTS = {"bm25": 1.0, "dense": 0.5}
RERANK_POOL = 20  # fused candidates a cross-encoder rescores (at least k)

# The library's schema; never edit a released step, add one.
MIGRATIONS: tuple[Migration[sqlite3.Connection], ...] = (
    Migration(
        1,
        "documents, chunks (with their vectors), the FTS5 index and metadata",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE documents (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            doc_type TEXT NOT NULL,
            source TEXT NOT NULL,
            date TEXT,
            version TEXT,
            sha256 TEXT NOT NULL,
            added_at TEXT NOT NULL
        );
        CREATE INDEX ix_documents_source ON documents(source);
        CREATE INDEX ix_documents_sha ON documents(sha256);
        CREATE TABLE chunks (
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            section TEXT NOT NULL,
            text TEXT NOT NULL,
            embedding BLOB
        );
        CREATE INDEX ix_chunks_doc ON chunks(doc_id);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            title, section, text, tokenize = 'porter unicode61 remove_diacritics 2'
        );
        """,
    ),
)
# BM25 column weights (title, section, text): a query word in a heading says more about
# what a chunk is about than the same word in its body.
_BM25 = "bm25(chunks_fts, 2.0, 2.0, 1.0)"


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a document. ``id`` is ``"<doc_id>#<n>"`` (n from 1)."""

    id: str
    doc_id: str
    title: str
    section: str
    text: str
    doc_type: str
    source: str
    date: str | None

    @property
    def citation(self) -> str:
        """How answers cite this chunk: ``"[doc:<id>]"``."""
        return f"[doc:{self.id}]"


@dataclass(frozen=True)
class DocHit:
    """A search result: fused ``score`` (higher is better), the 1-based rank each retriever
    gave it, and the query-chunk cosine ``similarity`` when dense retrieval ran."""

    chunk: Chunk
    score: float
    ranks: dict[str, int]
    similarity: float | None


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document, as listed by :meth:`DocumentLibrary.documents`."""

    id: str
    title: str
    doc_type: str
    source: str
    date: str | None
    chunks: int
    sha256: str
    version: str | None = None


FILE_STATUSES = ("added", "replaced", "unchanged", "duplicate", "skipped", "error")


@dataclass(frozen=True)
class FileOutcome:
    """What :meth:`DocumentLibrary.add` did with one file; ``status`` is one of
    :data:`FILE_STATUSES` and ``reason`` says why for duplicate, skipped and error."""

    path: str
    status: str
    doc_id: str | None = None
    chunks: int = 0
    reason: str = ""


@dataclass(frozen=True)
class DocsReport:
    """The outcome of one :meth:`DocumentLibrary.add` call, file by file."""

    files: tuple[FileOutcome, ...] = ()
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Files per status (every status present, zeros included)."""
        counts = dict.fromkeys(FILE_STATUSES, 0)
        for outcome in self.files:
            counts[outcome.status] += 1
        return counts

    @property
    def errors(self) -> list[FileOutcome]:
        """The files that failed."""
        return [f for f in self.files if f.status == "error"]

    def summary(self) -> str:
        """One line: the non-zero counts and the time taken."""
        parts = [f"{n} {status}" for status, n in self.counts.items() if n]
        return f"{', '.join(parts) or 'no files'} in {self.seconds:.1f} s"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: counts, seconds and every file's outcome."""
        return {
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
            "files": [asdict(f) for f in self.files],
        }


@dataclass
class _Vectors:
    """The in-memory exact index: chunk rowids (sorted) and their unit vectors."""

    rowids: np.ndarray
    matrix: np.ndarray


@dataclass
class _Filters:
    doc_types: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None

    def sql(self) -> tuple[str, list[Any]]:
        """A ``WHERE`` fragment over ``documents d`` (starting with AND) and its params."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.doc_types:
            clauses.append(f"d.doc_type IN ({','.join('?' * len(self.doc_types))})")
            params.extend(self.doc_types)
        if self.since:
            clauses.append("d.date >= ?")
            params.append(self.since)
        if self.until:
            clauses.append("d.date <= ?")
            params.append(self.until)
        return "".join(f" AND {c}" for c in clauses), params

    @property
    def active(self) -> bool:
        return bool(self.doc_types or self.since or self.until)


@dataclass(frozen=True)
class _ChunkText:
    """What embedding a chunk reads of it (:data:`_CHUNK_TEXT` selects it)."""

    rowid: int
    title: str
    text: str


_CHUNK_TEXT = "c.rowid AS rowid, d.title AS title, c.text AS text"


@dataclass
class _Candidates:
    rankings: dict[str, list[str]] = field(default_factory=dict)
    query_vector: np.ndarray | None = None


def open_library(
    home: str | Path, *, embedder: str | None = "minilm", for_reindex: bool = False
) -> DocumentLibrary:
    """Open (creating on first use) the library in ``<home>/docs.sqlite3``.

    ``embedder`` is an embedder spec (:func:`ehrqa.llm.embed.load_embedder`) or ``None``
    for BM25 only. Opening a library embedded with another embedder raises
    :class:`ConfigError`, unless ``for_reindex`` (then only :meth:`reindex` is allowed
    until it has run).
    """
    from ehrqa.llm.embed import load_embedder

    model = load_embedder(embedder) if embedder else None
    return DocumentLibrary(Path(home) / LIBRARY_FILE, model, for_reindex=for_reindex)


class DocumentLibrary:
    """Hospital documents, chunked and indexed for hybrid (BM25 + dense) retrieval.

    One connection is shared behind a lock, so a library can serve several threads.
    """

    def __init__(
        self,
        path: str | Path,
        embedder: Embedder | None = None,
        *,
        chunking: ChunkConfig | None = None,
        for_reindex: bool = False,
    ) -> None:
        self.path = Path(path)
        self.embedder = embedder
        self.chunking = chunking or ChunkConfig()
        self._lock = threading.RLock()
        self._vectors: _Vectors | None = None
        self._cross_encoders: dict[str, Any] = {}
        self._db = _connect(self.path)
        try:
            migrate(SqliteDatabase(self._db, f"the document library {self.path}"), MIGRATIONS)
        except BaseException:
            self._db.close()
            raise
        self._mismatch = self._embedder_mismatch()
        if self._mismatch and not for_reindex:
            self._db.close()
            raise ConfigError(self._mismatch)

    # -- transactions --------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._vectors = None  # the in-memory index is rebuilt on the next dense search

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def _embedder_mismatch(self) -> str:
        stored, dim = self._meta("embedder"), self._meta("dim")
        if self.embedder is None or stored is None:
            return ""
        if stored == self.embedder.name and dim == str(self.embedder.dim):
            return ""
        return (
            f"the document library {self.path} was embedded with {stored!r} ({dim}-d), not "
            f"{self.embedder.name!r} ({self.embedder.dim}-d): pass --embedder {stored}, or run "
            f"`ehrqa docs reindex --embedder {self.embedder.name}` to re-embed it"
        )

    # -- adding ---------------------------------------------------------------------
    def add(
        self,
        paths: Sequence[str | Path],
        *,
        doc_type: str | None = None,
        on_file: Callable[[Path], None] | None = None,
    ) -> DocsReport:
        """Add files and folders (walked recursively); each document in one transaction.

        Unchanged documents are left alone (not re-embedded); a changed one at the same
        source, or with the same front-matter ``id``, is replaced whole; the same content
        at another path is a duplicate. Unsupported and broken files are reported, never
        raised. ``on_file`` is called before each file (for progress bars).
        """
        self._refuse_if_mismatched()
        started = time.perf_counter()
        outcomes: list[FileOutcome] = []
        for path in find_documents(paths):
            if on_file is not None:
                on_file(path)
            outcomes.append(self._add_file(path, doc_type))
        return DocsReport(tuple(outcomes), time.perf_counter() - started)

    def _add_file(self, path: Path, doc_type: str | None) -> FileOutcome:
        if path.suffix.lower() not in READERS:
            reason = f"unsupported file type {path.suffix or '(none)'!r}"
            return FileOutcome(str(path), "skipped", reason=f"{reason}; use {', '.join(READERS)}")
        if not path.exists():
            return FileOutcome(str(path), "error", reason="no such file or folder")
        try:
            return self._add_document(read_document(path), doc_type)
        except (EhrqaError, sqlite3.Error, OSError) as exc:
            return FileOutcome(str(path), "error", reason=str(exc))

    def _add_document(self, doc: SourceDocument, doc_type: str | None) -> FileOutcome:
        source = str(Path(doc.source).resolve())
        if not doc.text.strip():
            reason = "no text found (a scanned PDF needs OCR first)"
            return FileOutcome(doc.source, "skipped", reason=reason)
        kind = doc.doc_type or doc_type or "document"
        digest = document_hash(doc, kind)
        existing = self._existing(doc.doc_id, source)
        if existing is not None and existing["sha256"] == digest:
            if existing["source"] != source:
                reason = f"same content as {existing['id']} ({existing['source']})"
                return FileOutcome(doc.source, "duplicate", existing["id"], reason=reason)
            return FileOutcome(doc.source, "unchanged", existing["id"], existing["n"])
        if existing is None:
            twin = self._db.execute(
                "SELECT id, source FROM documents WHERE sha256 = ?", (digest,)
            ).fetchone()
            if twin is not None:
                reason = f"same content as {twin['id']} ({twin['source']})"
                return FileOutcome(doc.source, "duplicate", twin["id"], reason=reason)
        doc_id = doc.doc_id or (existing["id"] if existing else self._free_id(source))
        texts = chunk_text(doc.text, markdown=doc.markdown, config=self.chunking)
        vectors = self._embed([_embedding_text(doc.title, t.text) for t in texts])
        with self._transaction():
            if existing is not None:
                self._delete(existing["id"])
            self._insert(doc_id, doc, kind, source, digest, texts, vectors)
        status = "replaced" if existing is not None else "added"
        return FileOutcome(doc.source, status, doc_id, len(texts))

    def _existing(self, doc_id: str | None, source: str) -> sqlite3.Row | None:
        """The stored document this one replaces: same front-matter id, else same source."""
        sql = "SELECT d.*, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id) AS n"
        row = None
        if doc_id:
            row = self._db.execute(f"{sql} FROM documents d WHERE d.id = ?", (doc_id,)).fetchone()
        if row is None:
            row = self._db.execute(
                f"{sql} FROM documents d WHERE d.source = ?", (source,)
            ).fetchone()
        return row

    def _free_id(self, source: str) -> str:
        """A slug of the file stem, suffixed ``-2``, ``-3``… when another source has it."""
        base = slugify(Path(source).stem)
        candidate, n = base, 1
        while self._db.execute("SELECT 1 FROM documents WHERE id = ?", (candidate,)).fetchone():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _embed(self, texts: list[str]) -> np.ndarray | None:
        if self.embedder is None or not texts:
            return None
        import numpy as np

        parts = [
            self.embedder.embed(texts[i : i + EMBED_BATCH])
            for i in range(0, len(texts), EMBED_BATCH)
        ]
        vectors = np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
        if vectors.shape != (len(texts), self.embedder.dim):
            raise EhrqaError(
                f"embedder {self.embedder.name!r} returned shape {vectors.shape} for "
                f"{len(texts)} texts, expected ({len(texts)}, {self.embedder.dim})"
            )
        return vectors

    def _insert(
        self,
        doc_id: str,
        doc: SourceDocument,
        kind: str,
        source: str,
        digest: str,
        texts: Sequence[Any],
        vectors: np.ndarray | None,
    ) -> None:
        added_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._db.execute(
            "INSERT INTO documents (id, title, doc_type, source, date, version, sha256, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (doc_id, doc.title, kind, source, doc.date, doc.version, digest, added_at),
        )
        for n, piece in enumerate(texts, start=1):
            blob = vectors[n - 1].tobytes() if vectors is not None else None
            cursor = self._db.execute(
                "INSERT INTO chunks (id, doc_id, ordinal, section, text, embedding)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (f"{doc_id}#{n}", doc_id, n, piece.section, piece.text, blob),
            )
            self._db.execute(
                "INSERT INTO chunks_fts (rowid, title, section, text) VALUES (?, ?, ?, ?)",
                (cursor.lastrowid, doc.title, piece.section, piece.text),
            )
        if vectors is not None:
            self._record_embedder()

    def _record_embedder(self) -> None:
        assert self.embedder is not None
        for key, value in (("embedder", self.embedder.name), ("dim", str(self.embedder.dim))):
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _delete(self, doc_id: str) -> None:
        self._db.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks WHERE doc_id = ?)",
            (doc_id,),
        )
        self._db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self._db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    # -- reading --------------------------------------------------------------------
    def remove(self, doc_id: str) -> None:
        """Remove a document and all its chunks; :class:`NotFoundError` when absent."""
        with self._transaction():
            if not self._db.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone():
                raise NotFoundError(
                    f"no document {doc_id!r} in the library: `ehrqa docs list` shows the ids"
                )
            self._delete(doc_id)

    def documents(self) -> list[DocumentInfo]:
        """Every stored document, by id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.*, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id) AS chunks"
                " FROM documents d ORDER BY d.id"
            ).fetchall()
        return [from_row(DocumentInfo, r) for r in rows]

    def chunk(self, chunk_id: str) -> Chunk:
        """The chunk with ``chunk_id`` (``"<doc_id>#<n>"``); :class:`NotFoundError` if none."""
        found = self._chunks_where("c.id = ?", [chunk_id])
        if not found:
            raise NotFoundError(
                f"no chunk {chunk_id!r} in the library: chunk ids look like 'doc-id#3' "
                "(see `ehrqa docs search`)"
            )
        return next(iter(found.values()))

    def _chunks_where(self, where: str, params: Sequence[Any]) -> dict[int, Chunk]:
        with self._lock:
            rows = self._db.execute(
                "SELECT c.rowid AS rid, c.*, d.title, d.doc_type, d.source, d.date"
                f" FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}",
                list(params),
            ).fetchall()
        return {r["rid"]: from_row(Chunk, r) for r in rows}

    def __len__(self) -> int:
        """The number of chunks."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) AS n FROM chunks").fetchone()["n"])

    # -- searching ------------------------------------------------------------------
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
        """The ``k`` best chunks for ``query``.

        ``mode``: ``"bm25"`` (FTS5), ``"dense"`` (embedding cosine) or ``"hybrid"`` (both,
        fused by reciprocal rank fusion; BM25 alone when the library has no embedder).
        Filters: ``doc_types`` and the document ``date`` within ``since``/``until``
        (``YYYY-MM-DD``, inclusive; undated documents are left out when either is set).
        ``rerank`` names a sentence-transformers CrossEncoder folder that rescores the
        fused top candidates.
        """
        mode = self._check_mode(mode)
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        filters = _Filters(tuple(doc_types), _day(since, "since"), _day(until, "until"))
        pool = max(50, 4 * k)  # candidates per retriever before fusion
        found = self._candidates(query, mode, filters, pool)
        fused = reciprocal_rank_fusion(found.rankings, weights=RETRIEVER_WEIGHTS)
        if rerank:
            fused = self._rerank(rerank, query, fused[: max(RERANK_POOL, k)])
        return self._hits(fused[:k], found.query_vector)

    def _check_mode(self, mode: str) -> str:
        if mode not in SEARCH_MODES:
            raise ConfigError(f"unknown search mode {mode!r}: use {', '.join(SEARCH_MODES)}")
        if self.embedder is None and mode == "dense":
            raise ConfigError(
                "dense search needs an embedder, and this library was opened without one: "
                "pass --embedder minilm (or hash), or use --mode bm25"
            )
        if self.embedder is None:
            return "bm25"
        self._refuse_if_mismatched()
        return mode

    def _candidates(self, query: str, mode: str, filters: _Filters, pool: int) -> _Candidates:
        found = _Candidates()
        if mode in ("bm25", "hybrid"):
            found.rankings["bm25"] = self._bm25(query, filters, pool)
        if mode in ("dense", "hybrid"):
            assert self.embedder is not None
            found.query_vector = self.embedder.embed([query])[0]
            found.rankings["dense"] = self._dense(found.query_vector, filters, pool)
        return found

    def _bm25(self, query: str, filters: _Filters, limit: int) -> list[str]:
        match = fts_query(query)
        if match is None:
            return []
        where, params = filters.sql()
        with self._lock:
            rows = self._db.execute(
                "SELECT c.rowid AS rowid FROM chunks_fts"
                " JOIN chunks c ON c.rowid = chunks_fts.rowid"
                f" JOIN documents d ON d.id = c.doc_id WHERE chunks_fts MATCH ?{where}"
                f" ORDER BY {_BM25} LIMIT ?",
                [match, *params, limit],
            ).fetchall()
        return [str(r["rowid"]) for r in rows]

    def _dense(self, vector: np.ndarray, filters: _Filters, limit: int) -> list[str]:
        import numpy as np

        index = self._vector_index()
        scores = index.matrix @ vector
        if filters.active:
            where, params = filters.sql()
            with self._lock:
                allowed = [
                    r["rowid"]
                    for r in self._db.execute(
                        "SELECT c.rowid AS rowid FROM chunks c JOIN documents d ON d.id = c.doc_id"
                        f" WHERE 1{where}",
                        params,
                    )
                ]
            scores = np.where(np.isin(index.rowids, allowed), scores, -np.inf)
            limit = min(limit, len(allowed))
        return [str(index.rowids[i]) for i in top_k(scores, limit)]

    def _vector_index(self) -> _Vectors:
        """The exact index, loaded from the chunk blobs on first use after a write."""
        import numpy as np

        self._embed_missing()
        with self._lock:
            if self._vectors is None:
                rows = self._db.execute(
                    "SELECT rowid, embedding FROM chunks WHERE embedding IS NOT NULL ORDER BY rowid"
                ).fetchall()
                assert self.embedder is not None
                matrix = np.frombuffer(b"".join(r["embedding"] for r in rows), dtype=np.float32)
                self._vectors = _Vectors(
                    np.array([r["rowid"] for r in rows], dtype=np.int64),
                    matrix.reshape(len(rows), self.embedder.dim),
                )
            return self._vectors

    def _embed_missing(self) -> None:
        """Embed chunks stored without a vector (added while no embedder was in use)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_CHUNK_TEXT} FROM chunks c JOIN documents d"
                " ON d.id = c.doc_id WHERE c.embedding IS NULL"
            ).fetchall()
        if rows:
            self._store_vectors([from_row(_ChunkText, r) for r in rows])

    def _store_vectors(self, chunks: list[_ChunkText]) -> None:
        vectors = self._embed([_embedding_text(c.title, c.text) for c in chunks])
        assert vectors is not None
        with self._transaction():
            self._db.executemany(
                "UPDATE chunks SET embedding = ? WHERE rowid = ?",
                [(v.tobytes(), c.rowid) for v, c in zip(vectors, chunks, strict=True)],
            )
            self._record_embedder()

    def _rerank(
        self, model_path: str, query: str, fused: list[tuple[str, float, dict[str, int]]]
    ) -> list[tuple[str, float, dict[str, int]]]:
        if not fused:
            return fused
        model = self._cross_encoder(model_path)
        chunks = self._chunks_where(
            f"c.rowid IN ({','.join('?' * len(fused))})", [int(i) for i, _, _ in fused]
        )
        pairs = [(query, chunks[int(item)].text) for item, _, _ in fused]
        scores = [float(s) for s in model.predict(pairs)]
        order = sorted(range(len(fused)), key=lambda i: -scores[i])
        return [
            (fused[i][0], scores[i], {**fused[i][2], "rerank": rank})
            for rank, i in enumerate(order, start=1)
        ]

    def _cross_encoder(self, model_path: str) -> Any:
        if model_path not in self._cross_encoders:
            self._cross_encoders[model_path] = load_cross_encoder(model_path)
        return self._cross_encoders[model_path]

    def _hits(
        self, fused: list[tuple[str, float, dict[str, int]]], vector: np.ndarray | None
    ) -> list[DocHit]:
        if not fused:
            return []
        rowids = [int(item) for item, _, _ in fused]
        chunks = self._chunks_where(f"c.rowid IN ({','.join('?' * len(rowids))})", rowids)
        sims = self._similarities(rowids, vector) if vector is not None else [None] * len(rowids)
        return [
            DocHit(chunks[rowid], score, ranks, sim)
            for rowid, (_, score, ranks), sim in zip(rowids, fused, sims, strict=True)
        ]

    def _similarities(self, rowids: list[int], vector: np.ndarray) -> list[float | None]:
        import numpy as np

        index = self._vector_index()
        positions = np.searchsorted(index.rowids, rowids)
        sims: list[float | None] = []
        for rowid, pos in zip(rowids, positions, strict=True):
            present = pos < len(index.rowids) and index.rowids[pos] == rowid
            sims.append(float(index.matrix[pos] @ vector) if present else None)
        return sims

    # -- maintenance ----------------------------------------------------------------
    def reindex(self) -> int:
        """Re-embed every chunk with the current embedder, in one transaction.

        Returns the number of chunks embedded. :class:`ConfigError` without an embedder.
        """
        if self.embedder is None:
            raise ConfigError("reindex needs an embedder: pass --embedder minilm (or hash)")
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_CHUNK_TEXT} FROM chunks c JOIN documents d"
                " ON d.id = c.doc_id ORDER BY c.rowid"
            ).fetchall()
        if rows:
            self._store_vectors([from_row(_ChunkText, r) for r in rows])
        else:
            with self._transaction():
                self._record_embedder()
        self._mismatch = ""
        return len(rows)

    def _refuse_if_mismatched(self) -> None:
        if self._mismatch:
            raise ConfigError(self._mismatch)

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> DocumentLibrary:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot open the document library at {path}: {exc}") from exc
    return db


def document_hash(doc: SourceDocument, doc_type: str) -> str:
    """sha256 of a document's normalised text and its own metadata (front matter, HTML
    meta, PDF info). A title that merely repeats the file name is left out, so the same
    text at another path hashes the same and is reported as a duplicate."""
    title = "" if doc.title == Path(doc.source).stem else doc.title
    fields = [doc.doc_id or "", title, doc_type, doc.date or "", doc.version or ""]
    header = "\x1f".join(fields)
    return hashlib.sha256(f"{header}\x1e{doc.text}".encode()).hexdigest()


def _embedding_text(title: str, text: str) -> str:
    """What is embedded for a chunk: its text, led by the document title when the text's
    own context lines do not already name it."""
    first_line = text.split("\n", 1)[0]
    return text if title.lower() in first_line.lower() else f"{title}\n\n{text}"


def _day(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise ConfigError(f"{name} must be a date like 2024-11-02, got {value!r}") from exc


def load_cross_encoder(model_path: str) -> Any:
    """A sentence-transformers CrossEncoder from a local folder, offline."""
    from ehrqa.llm.embed import load_st_model

    if not Path(model_path).is_dir():
        raise NotFoundError(f"reranker folder {model_path} does not exist: give a CrossEncoder")
    return load_st_model(model_path, cross=True, needs="reranking")
