"""The embedded SQLite record store: one file, FTS5 lexical index, forward-only migrations.

Texts rendered by an older version of :mod:`ehrqa.fhir.render` are rendered again when the
store is opened (:mod:`ehrqa.store.rendering`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ehrqa.core.config import private_dir, private_file, warn_if_shared
from ehrqa.core.errors import NotFoundError, StoreError
from ehrqa.fhir.record import Coding, Component, Record
from ehrqa.fhir.render import RENDER_VERSION
from ehrqa.store.base import CodedConcept, PatientSummary, RecordQuery, UpsertStats
from ehrqa.store.lexical import bm25, idf, phrase_count, positions_of, tokenize
from ehrqa.store.migrations import Migration, SqliteDatabase, migrate
from ehrqa.store.rendering import (
    PROGRESS_KEY,
    VERSION_KEY,
    RenderedBatch,
    RenderState,
    StoredText,
    progress,
    rerender,
    update_texts,
)
from ehrqa.store.rows import from_row

HOME_STORE_FILE = "ehrqa.sqlite3"  # the store of a data directory
# Each migration moves the schema one version forward; never edit a released one.
MIGRATIONS: tuple[Migration[sqlite3.Connection], ...] = (
    Migration(
        1,
        "resources, their codes, patients and the FTS5 index",
        """
        CREATE TABLE resources (
            rowid INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            resource_type TEXT NOT NULL,
            patient_id TEXT,
            date TEXT,
            day TEXT,
            end_date TEXT,
            status TEXT,
            categories TEXT NOT NULL DEFAULT '',
            version TEXT,
            last_updated TEXT,
            content_hash TEXT NOT NULL,
            text TEXT NOT NULL,
            record BLOB NOT NULL,
            resource BLOB NOT NULL
        );
        CREATE INDEX ix_resources_patient ON resources(patient_id, resource_type, day);
        CREATE TABLE codes (
            res INTEGER NOT NULL REFERENCES resources(rowid) ON DELETE CASCADE,
            system TEXT NOT NULL,
            code TEXT NOT NULL
        );
        CREATE INDEX ix_codes_code ON codes(code);
        CREATE INDEX ix_codes_res ON codes(res);
        CREATE TABLE patients (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            birth_date TEXT,
            gender TEXT
        );
        CREATE VIRTUAL TABLE fts USING fts5(
            patient, body, tokenize = 'porter unicode61 remove_diacritics 2'
        );
        """,
    ),
    Migration(
        2,
        "store metadata: the render version of the texts (ehrqa.store.rendering)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
)


def content_hash(resource: dict[str, Any]) -> str:
    """A stable hash of a resource's JSON content (key order does not matter)."""
    return hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _record_fields(record: Record) -> bytes:
    return orjson.dumps(
        {
            "codes": [[c.system, c.code, c.display] for c in record.codes],
            "category": list(record.category),
            "value": record.value,
            "value_text": record.value_text,
            "unit": record.unit,
            "components": [
                [c.name, c.value, c.value_text, c.unit, c.code] for c in record.components
            ],
        }
    )


@dataclass(slots=True)  # not frozen: a frozen init costs a µs a row, and rows are many
class ResourceRow:
    """The columns of a ``resources`` row a Record is read back from (both stores)."""

    ref: str
    resource_type: str
    patient_id: str | None
    date: str | None
    end_date: str | None
    status: str | None
    version: str | None
    last_updated: str | None
    text: str
    record: bytes
    resource: bytes

    def to_record(self) -> Record:
        """The Record this row holds (``record`` carries the fields without a column)."""
        fields = orjson.loads(self.record)
        return Record(
            ref=self.ref,
            resource_type=self.resource_type,
            id=self.ref.split("/", 1)[1],
            patient_id=self.patient_id,
            text=self.text,
            date=self.date,
            end_date=self.end_date,
            codes=tuple(Coding(*c) for c in fields["codes"]),
            category=tuple(fields["category"]),
            value=fields["value"],
            value_text=fields["value_text"],
            unit=fields["unit"],
            components=tuple(Component(*c) for c in fields["components"]),
            status=self.status,
            version=self.version,
            last_updated=self.last_updated,
            resource=orjson.loads(self.resource),
        )


def read_record(row: sqlite3.Row | Mapping[str, Any]) -> Record:
    """The Record a stored row holds (a SQLite row, or a PostgreSQL row as a dict)."""
    return from_row(ResourceRow, row).to_record()


# The patient list's columns, named as PatientSummary's fields.
PATIENT_COLUMNS = (
    "p.id, p.name, p.birth_date, p.gender,"
    " (SELECT COUNT(*) FROM resources r WHERE r.patient_id = p.id) AS resource_count"
)


def _is_newer(new: Record, old_version: str | None, old_updated: str | None) -> bool:
    """Whether ``new`` supersedes the stored version; without version data, last write wins."""
    if new.last_updated and old_updated:
        return new.last_updated >= old_updated
    if new.version and old_version and new.version.isdigit() and old_version.isdigit():
        return int(new.version) >= int(old_version)
    return True


# A patient's codings and component codes with the refs of their records, read from the
# stored record fields (the code index has no displays). Grouping on the coding's JSON text
# and parsing the few distinct ones in Python is 1.5x faster than json_extract on every row.
_DISTINCT_CODES_SQL = """
SELECT resource_type, c.value AS coding, group_concat(ref, char(31)) AS refs
FROM resources r, json_each(CAST(r.record AS TEXT), '$.codes') c
WHERE r.patient_id = ? GROUP BY resource_type, c.value
UNION ALL
SELECT resource_type, json_array('', json_extract(c.value, '$[4]'), json_extract(c.value, '$[0]')),
       group_concat(ref, char(31))
FROM resources r, json_each(CAST(r.record AS TEXT), '$.components') c
WHERE r.patient_id = ? AND r.resource_type = 'Observation' AND json_extract(c.value, '$[4]') <> ''
GROUP BY 1, 2
"""


def concepts_from_rows(
    rows: Iterable[tuple[str, str | None, str | None, str | None, Iterable[str]]],
) -> list[CodedConcept]:
    """:class:`CodedConcept` s from (type, system, code, display, refs) rows, merged and sorted.

    Rows of the same concept are merged (the SQLite query groups JSON texts, which may
    spell one coding two ways). Both stores sort here rather than in SQL, so that the order
    is bytewise whatever the database's collation.
    """
    merged: dict[tuple[str, str, str, str], set[str]] = {}
    for rtype, system, code, display, refs in rows:
        merged.setdefault((rtype, system or "", code or "", display or ""), set()).update(refs)
    concepts = [CodedConcept(*key, tuple(sorted(refs))) for key, refs in merged.items()]
    concepts.sort(key=lambda c: (c.resource_type, c.display, c.system, c.code))
    return concepts


def _patient_row(record: Record) -> tuple[str, str, str | None, str | None]:
    resource = record.resource
    name = ""
    for entry in resource.get("name") or []:
        if isinstance(entry, dict):
            given = " ".join(str(g) for g in entry.get("given") or [])
            name = entry.get("text") or f"{given} {entry.get('family', '')}".strip()
            if name:
                break
    return record.id, name, resource.get("birthDate"), resource.get("gender")


def _docsize(blob: bytes) -> int:
    """The tokens of a row, both columns together, from FTS5's ``docsize`` varints."""
    total = value = 0
    for byte in blob:
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            total, value = total + value, 0
    return total


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class SqliteStore:
    """A :class:`~ehrqa.store.base.RecordStore` in one SQLite file.

    One connection is shared; a lock serialises access so the store can be used from
    several threads (e.g. an HTTP server).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            _prepare_file(self.path)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        self._schema = SqliteDatabase(self._db, f"the store at {path}")
        self._lock = threading.RLock()
        self._depth = 0
        try:
            # Checked before anything is written: a foreign file is never changed.
            self._check_is_record_store()
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            migrate(self._schema, MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"{path} is not an ehrqa record store ({exc}): give --store an ehrqa store, "
                "a data directory or a new .sqlite3 path"
            ) from exc
        except StoreError:
            self._db.close()
            raise
        try:
            self._update_texts()
        except BaseException:
            self._db.close()
            raise
        if str(path) != ":memory:":
            warn_if_shared(self.path)

    def _check_is_record_store(self) -> None:
        """StoreError for a SQLite file of another program (reading it raises for a non-SQLite
        file): a new file has no tables, an ehrqa store has a schema version and ``resources``."""
        version = self._schema.read_version()
        tables = {
            row["name"]
            for row in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            )
        }
        if (version == 0 and tables) or (version > 0 and "resources" not in tables):
            shown = ", ".join(sorted(tables)[:5]) or "none"
            raise StoreError(
                f"{self.path} is a SQLite database of another program (tables: {shown}), not "
                "an ehrqa record store: give --store a new .sqlite3 path or a data directory"
            )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the lock; a damaged or vanished file raises StoreError, not sqlite3's error."""
        with self._lock:
            try:
                yield
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                    raise
                raise StoreError(
                    f"the store at {self.path} cannot be read ({exc}): restore it from a "
                    "backup, or ingest the records again into a new store"
                ) from exc

    # -- schema -----------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self._locked():
            return self._schema.read_version()

    @property
    def render_version(self) -> int:
        """The render version of the stored texts (:mod:`ehrqa.store.rendering`)."""
        with self._locked():
            return self._render_state().version

    def _render_state(self) -> RenderState:
        rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        return RenderState.from_meta({row["key"]: row["value"] for row in rows})

    def _update_texts(self) -> None:
        """Re-render the texts if an older rendering made them; resumes a run cut short."""
        with self._locked():
            state = self._render_state()
        update_texts(f"the store at {self.path}", state, self._rerender_batch)

    def _rerender_batch(self, after: int, limit: int) -> RenderedBatch | None:
        """Re-render the texts of up to ``limit`` rows after row ``after``, in one transaction."""
        with self.transaction():
            if self._render_state().current:  # another process finished meanwhile
                return None
            rows = [
                from_row(StoredText, row)
                for row in self._db.execute(
                    "SELECT r.rowid AS id, r.patient_id, r.text, r.resource,"
                    " f.body FROM resources r LEFT JOIN fts f ON f.rowid = r.rowid"
                    " WHERE r.rowid > ? ORDER BY r.rowid LIMIT ?",
                    (after, limit),
                )
            ]
            if not rows:
                self._set_meta(VERSION_KEY, str(RENDER_VERSION))
                self._db.execute("DELETE FROM meta WHERE key = ?", (PROGRESS_KEY,))
                return None
            changed = rerender(rows, self._stored_resources)
            self._db.executemany(
                "UPDATE resources SET text = ? WHERE rowid = ?", [(r.text, r.id) for r in changed]
            )
            self._db.executemany("DELETE FROM fts WHERE rowid = ?", [(r.id,) for r in changed])
            self._db.executemany(
                "INSERT INTO fts (rowid, patient, body) VALUES (?, ?, ?)",
                [(r.id, r.patient_id or "", r.body) for r in changed],
            )
            self._set_meta(PROGRESS_KEY, progress(rows[-1].id))
        return RenderedBatch(rows[-1].id, len(rows), len(changed))

    def _stored_resources(self, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self._db.execute(
            "SELECT ref, resource FROM resources WHERE ref IN (SELECT value FROM json_each(?))",
            (orjson.dumps(list(refs)).decode(),),
        )
        return {row["ref"]: orjson.loads(row["resource"]) for row in rows}

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- writing ----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together, or roll back together on an exception."""
        with self._locked():
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def upsert(self, records: Iterable[Record]) -> UpsertStats:
        """Insert new records; replace changed ones unless the stored version is newer."""
        stats = UpsertStats()
        with self.transaction():
            for record in records:
                self._upsert_one(record, stats)
        return stats

    def _upsert_one(self, record: Record, stats: UpsertStats) -> None:
        digest = content_hash(record.resource)
        old = self._db.execute(
            "SELECT rowid, content_hash, version, last_updated FROM resources WHERE ref = ?",
            (record.ref,),
        ).fetchone()
        if old is not None:
            if old["content_hash"] == digest:
                stats.unchanged += 1
                return
            if not _is_newer(record, old["version"], old["last_updated"]):
                stats.stale += 1
                return
            self._delete_rowid(old["rowid"])
            stats.updated += 1
        else:
            stats.inserted += 1
        self._insert(record, digest, None if old is None else old["rowid"])

    def _delete_rowid(self, rowid: int) -> None:
        self._db.execute("DELETE FROM codes WHERE res = ?", (rowid,))
        self._db.execute("DELETE FROM fts WHERE rowid = ?", (rowid,))
        self._db.execute("DELETE FROM resources WHERE rowid = ?", (rowid,))

    def _insert(self, record: Record, digest: str, rowid: int | None) -> None:
        cursor = self._db.execute(
            "INSERT INTO resources (rowid, ref, resource_type, patient_id, date, day, end_date,"
            " status, categories, version, last_updated, content_hash, text, record, resource)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rowid,
                record.ref,
                record.resource_type,
                record.patient_id,
                record.date,
                record.day,
                record.end_date,
                record.status,
                " ".join(record.category),
                record.version,
                record.last_updated,
                digest,
                record.text,
                _record_fields(record),
                orjson.dumps(record.resource),
            ),
        )
        new_rowid = cursor.lastrowid
        codes = {(c.system, c.code) for c in record.codes}
        codes.update(("", c.code) for c in record.components if c.code)
        self._db.executemany(
            "INSERT INTO codes (res, system, code) VALUES (?, ?, ?)",
            [(new_rowid, system, code) for system, code in sorted(codes)],
        )
        body = f"{record.text} {record.search_text}".strip()
        self._db.execute(
            "INSERT INTO fts (rowid, patient, body) VALUES (?, ?, ?)",
            (new_rowid, record.patient_id or "", body),
        )
        if record.resource_type == "Patient":
            self._db.execute(
                "INSERT OR REPLACE INTO patients (id, name, birth_date, gender) VALUES (?,?,?,?)",
                _patient_row(record),
            )

    # -- reading ----------------------------------------------------------------
    def get(self, ref: str) -> Record:
        """Return the record ``Type/id``; raise NotFoundError when absent."""
        records = self.get_many([ref])
        if not records:
            raise NotFoundError(f"no resource {ref!r} in the store (expected Type/id)")
        return records[0]

    def get_many(self, refs: Sequence[str]) -> list[Record]:
        """Return the records that exist among ``refs``, in the given order."""
        if not refs:
            return []
        marks = ",".join("?" * len(refs))
        with self._locked():
            rows = self._db.execute(
                f"SELECT * FROM resources WHERE ref IN ({marks})", list(refs)
            ).fetchall()
        by_ref = {row["ref"]: read_record(row) for row in rows}
        return [by_ref[ref] for ref in refs if ref in by_ref]

    def patients(self, search: str | None = None) -> list[PatientSummary]:
        """List patients with their resource counts, optionally filtered by name or id."""
        sql = f"SELECT {PATIENT_COLUMNS} FROM patients p"
        params: list[str] = []
        if search:
            sql += " WHERE p.name LIKE ? OR p.id LIKE ?"
            params = [f"%{search}%", f"%{search}%"]
        with self._locked():
            rows = self._db.execute(sql + " ORDER BY p.name, p.id", params).fetchall()
        return [from_row(PatientSummary, row) for row in rows]

    def patient(self, patient_id: str) -> PatientSummary:
        """Return one patient; raise NotFoundError (naming how to list them) when absent."""
        patient_id = patient_id.removeprefix("Patient/")
        with self._locked():
            row = self._db.execute(
                f"SELECT {PATIENT_COLUMNS} FROM patients p WHERE p.id = ?", (patient_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(
                f"no patient {patient_id!r} in the store: 'ehrqa patients' lists the ids"
            )
        return from_row(PatientSummary, row)

    def query(self, query: RecordQuery) -> list[Record]:
        """Return the patient's records that match every given filter."""
        sql = ["SELECT * FROM resources WHERE patient_id = ?"]
        params: list[Any] = [query.patient_id]
        for column, values in (("resource_type", query.types), ("status", query.statuses)):
            if values:
                sql.append(f"AND {column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if query.exclude_types:
            sql.append(f"AND resource_type NOT IN ({','.join('?' * len(query.exclude_types))})")
            params.extend(query.exclude_types)
        if query.categories:
            sql.append(
                "AND ("
                + " OR ".join("(' ' || categories || ' ') LIKE ?" for _ in query.categories)
                + ")"
            )
            params.extend(f"% {c} %" for c in query.categories)
        if query.codes:
            marks = ",".join("?" * len(query.codes))
            sql.append(f"AND rowid IN (SELECT res FROM codes WHERE code IN ({marks}))")
            params.extend(query.codes)
        if query.start:
            sql.append("AND COALESCE(end_date, day) >= ?")
            params.append(query.start)
        if query.end:
            sql.append("AND day <= ?")
            params.append(query.end)
        direction = "DESC" if query.order == "newest" else "ASC"
        sql.append(f"ORDER BY date IS NULL, date {direction}, ref")
        if query.limit is not None:
            sql.append("LIMIT ?")
            params.append(query.limit)
        with self._locked():
            rows = self._db.execute(" ".join(sql), params).fetchall()
        return [read_record(row) for row in rows]

    def search(
        self, patient_id: str, terms: Sequence[str], *, types: Sequence[str] = (), limit: int = 100
    ) -> list[tuple[Record, float]]:
        """BM25 search over the patient's record texts; each term is matched as a phrase.

        FTS5 finds the rows; they are scored by FTS5's BM25 formula over the patient's own
        statistics (:mod:`ehrqa.store.lexical`), as in the PostgreSQL store. FTS5's
        ``bm25()`` would count every patient's rows, so one patient's ranking would shift
        as others are stored, and the two stores would rank differently.
        """
        kept = [t for t in terms if t.strip()]
        phrases = tokenize(kept)
        matched = [_fts_phrase(t) for t, p in zip(kept, phrases, strict=True) if p]
        phrases = [p for p in phrases if p]
        if not phrases or limit == 0:
            return []
        match = f"patient : {_fts_phrase(patient_id)} AND body : ({' OR '.join(matched)})"
        with self._locked():
            found = self._db.execute(
                # Matching first: joined, the planner would run the match once per row.
                "WITH hits AS MATERIALIZED (SELECT rowid AS id, body FROM fts WHERE fts MATCH ?)"
                " SELECT hits.id, hits.body, d.sz, r.resource_type AS type FROM hits"
                " JOIN resources r ON r.rowid = hits.id JOIN fts_docsize d ON d.id = hits.id"
                " WHERE r.patient_id = ?",
                [match, patient_id],
            ).fetchall()
            if not found:
                return []
            sizes = self._db.execute(
                "SELECT d.sz FROM resources r JOIN fts_docsize d ON d.id = r.rowid"
                " WHERE r.patient_id = ?",
                [patient_id],
            ).fetchall()
        n_rows = len(sizes)
        avgdl = sum(_docsize(row["sz"]) for row in sizes) / n_rows
        bodies = tokenize([row["body"] for row in found])
        freqs = [
            [float(phrase_count(p, positions)) for p in phrases]
            for positions in map(positions_of, bodies)
        ]
        idfs = [idf(n_rows, sum(1 for f in freqs if f[i])) for i in range(len(phrases))]
        wanted = set(types)
        scored = sorted(
            (
                (bm25(f, idfs, _docsize(row["sz"]), avgdl), row["id"])
                for row, f in zip(found, freqs, strict=True)
                if any(f) and (not wanted or row["type"] in wanted)
            ),
            key=lambda hit: (-hit[0], hit[1]),  # ties in insertion order, as in FTS5
        )[: limit if limit > 0 else None]
        ids = [row_id for _, row_id in scored]
        with self._locked():
            rows = self._db.execute(
                f"SELECT rowid AS id, * FROM resources WHERE rowid IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
        by_id = {row["id"]: read_record(row) for row in rows}
        return [(by_id[row_id], score) for score, row_id in scored]

    def type_counts(self, patient_id: str) -> dict[str, int]:
        """Number of records of each resource type for the patient."""
        with self._locked():
            rows = self._db.execute(
                "SELECT resource_type, COUNT(*) AS n FROM resources WHERE patient_id = ?"
                " GROUP BY resource_type",
                (patient_id,),
            ).fetchall()
        return {row["resource_type"]: row["n"] for row in rows}

    def distinct_codes(self, patient_id: str) -> list[CodedConcept]:
        """The patient's distinct (type, system, code, display) codings, each with its records.

        Component codes of Observations come with ``system`` ``""`` and the component's
        name as display. Sorted by resource type, display, system and code.
        """
        with self._locked():
            rows = self._db.execute(_DISTINCT_CODES_SQL, (patient_id, patient_id)).fetchall()
        return concepts_from_rows(
            (row["resource_type"], *orjson.loads(row["coding"]), row["refs"].split("\x1f"))
            for row in rows
        )

    def iter_records(self, patient_id: str | None = None) -> Iterator[Record]:
        """Iterate over all records, or one patient's, in reference order."""
        sql, params = "SELECT * FROM resources", []
        if patient_id is not None:
            sql, params = sql + " WHERE patient_id = ?", [patient_id]
        with self._locked():
            rows = self._db.execute(sql + " ORDER BY ref", params).fetchall()
        for row in rows:
            yield read_record(row)

    def count(self) -> int:
        """Total number of stored resources."""
        with self._locked():
            return int(self._db.execute("SELECT COUNT(*) FROM resources").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()


def _prepare_file(path: Path) -> None:
    """Check that the store's folder exists and create the file private (0600) if new.

    A missing folder is an error, not created: a mistyped ``--store`` must not leave an
    empty store somewhere unexpected.
    """
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(
            f"the folder {folder} of the store {path} does not exist: create it first "
            f"(mkdir -p {folder}) or give --store an existing folder"
        )
    if path.is_dir():
        raise StoreError(f"the store {path} is a folder: give --store a .sqlite3 file in it")
    try:
        private_file(path)
    except OSError as exc:
        raise StoreError(f"cannot create the store at {path}: {exc.strerror or exc}") from exc


def open_store(home: str | Path) -> SqliteStore:
    """Open (creating if needed) the SQLite store in the data directory ``home``.

    A new data directory is created readable by its owner only (0700).
    """
    try:
        folder = private_dir(home)
    except OSError as exc:
        raise StoreError(f"cannot create the data directory {home}: {exc.strerror or exc}") from exc
    return SqliteStore(folder / HOME_STORE_FILE)
