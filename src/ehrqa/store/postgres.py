"""The PostgreSQL record store: the SQLite store's behaviour on a shared database server.

Records, codes and patients live in one schema (``public`` unless told otherwise), created
and migrated forward on first use; a ``schema_version`` table plays SQLite's ``user_version``.

Lexical search gives the same hits and the same scores as the SQLite store's FTS5 index:
texts are split into lexemes by the very tokenizer the SQLite store uses (FTS5's
``porter unicode61 remove_diacritics 2``, run in an in-memory SQLite database), stored as a
``tsvector`` with a GIN index, matched with ``@@`` phrase queries, and ranked by FTS5's
BM25 formula over the positions PostgreSQL keeps. ``ts_rank_cd`` would rank differently,
and the selectors scale lexical scores by the best one, so their choices would change.

Texts rendered by an older version of :mod:`ehrqa.fhir.render` are rendered again, with
their ``tsvector``, when the store is opened (:mod:`ehrqa.store.rendering`).

Connections come from a ``psycopg_pool`` pool, so threads read and write concurrently;
:meth:`PostgresStore.transaction` pins one connection to the calling thread until it ends.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ehrqa.core.errors import BackendUnavailableError, NotFoundError, StoreError
from ehrqa.fhir.record import Record
from ehrqa.fhir.render import RENDER_VERSION
from ehrqa.store.base import CodedConcept, PatientSummary, RecordQuery, UpsertStats
from ehrqa.store.lexical import FTS_TOKENIZE as FTS_TOKENIZE
from ehrqa.store.lexical import bm25, idf, phrase_count, tokenize
from ehrqa.store.migrations import Migration, PostgresSchema, migrate
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
from ehrqa.store.sqlite import (
    PATIENT_COLUMNS,
    _is_newer,
    _patient_row,
    _record_fields,
    concepts_from_rows,
    content_hash,
    read_record,
)

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool

INSTALL_HINT = "pip install 'ehrqa[postgres]' (or: pip install 'psycopg[binary,pool]>=3.2')"

# PostgreSQL refuses lexemes of 2 KiB or more; such tokens are left out of the index.
MAX_LEXEME_BYTES = 2046
# Advisory-lock namespace of upserts (first key of pg_advisory_xact_lock(int, int)); that of
# migrations is ehrqa.store.migrations.LOCK_MIGRATE.
LOCK_REF = 0x65687272
# Advisory-lock namespace of re-rendering (second key: the hashed schema name), so that
# processes opening a stale store take turns instead of rendering the same rows.
LOCK_RENDER = 0x65687273
# A re-render batch that deadlocks with an upsert (their row locks meet in another order)
# is rolled back by the server; it is tried again this many times in all.
RENDER_TRIES = 3
# The patient's rows first, then full-text matching over them alone. Left to itself the
# planner ANDs the patient index with the GIN index, whose scan covers every patient's
# matches (17 ms for "the" with 1,000 patients against 2 ms this way).
PATIENT_ROWS = (
    "WITH mine AS MATERIALIZED (SELECT id, doc_len, tsv, resource_type FROM resources"
    " WHERE patient_id = %s)"
)
LOCK_BUCKETS = 256  # advisory locks an upsert takes at most (a power of two)

# Each migration moves the schema one version forward; never edit a released one.
# Text columns use the "C" collation so that ordering and comparisons are bytewise, as in
# SQLite, whatever the database's locale.
MIGRATIONS: tuple[Migration[Connection[Any]], ...] = (
    Migration(
        1,
        "resources (with their tsvector), their codes and patients",
        """
        CREATE TABLE resources (
            id BIGSERIAL PRIMARY KEY,
            doc_len INTEGER NOT NULL,
            ref TEXT COLLATE "C" NOT NULL UNIQUE,
            resource_type TEXT COLLATE "C" NOT NULL,
            patient_id TEXT COLLATE "C",
            date TEXT COLLATE "C",
            day TEXT COLLATE "C",
            end_date TEXT COLLATE "C",
            status TEXT COLLATE "C",
            categories TEXT COLLATE "C" NOT NULL DEFAULT '',
            version TEXT,
            last_updated TEXT COLLATE "C",
            content_hash TEXT NOT NULL,
            text TEXT NOT NULL,
            record BYTEA NOT NULL,
            resource BYTEA NOT NULL,
            tsv TSVECTOR NOT NULL
        );
        CREATE INDEX ix_resources_patient ON resources(patient_id, resource_type, day);
        CREATE INDEX ix_resources_tsv ON resources USING GIN (tsv);
        CREATE TABLE codes (
            res BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
            system TEXT COLLATE "C" NOT NULL,
            code TEXT COLLATE "C" NOT NULL
        );
        CREATE INDEX ix_codes_code ON codes(code);
        CREATE INDEX ix_codes_res ON codes(res);
        CREATE TABLE patients (
            id TEXT COLLATE "C" PRIMARY KEY,
            name TEXT COLLATE "C" NOT NULL,
            birth_date TEXT,
            gender TEXT
        );
        """,
    ),
    Migration(
        2,
        "store metadata: the render version of the texts (ehrqa.store.rendering)",
        'CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)',
    ),
)

# A patient's codings and component codes, read from the stored record fields (the code
# index has no displays), as the SQLite store reads them.
_DISTINCT_CODES_SQL = """
SELECT resource_type, system, code, display, array_agg(ref) AS refs FROM (
  SELECT r.resource_type, c ->> 0 AS system, c ->> 1 AS code, c ->> 2 AS display, r.ref
  FROM resources r, json_array_elements(convert_from(r.record, 'UTF8')::json -> 'codes') c
  WHERE r.patient_id = %s
  UNION ALL
  SELECT r.resource_type, '', c ->> 4, c ->> 0, r.ref
  FROM resources r, json_array_elements(convert_from(r.record, 'UTF8')::json -> 'components') c
  WHERE r.patient_id = %s AND COALESCE(c ->> 4, '') <> ''
) t GROUP BY resource_type, system, code, display
"""

_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([^\s,]+)")


def _drivers() -> tuple[Any, Any]:
    """Import psycopg and psycopg_pool, or say how to install them."""
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the PostgreSQL store needs psycopg 3 and psycopg_pool ({exc.name} is missing): "
            + INSTALL_HINT
        ) from exc
    return psycopg, psycopg_pool


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def to_tsvector_text(lexemes: Sequence[str]) -> str:
    """The ``tsvector`` literal holding ``lexemes`` at positions 1, 2, …"""
    positions: dict[str, list[str]] = {}
    for position, lexeme in enumerate(lexemes, start=1):
        if len(lexeme.encode()) <= MAX_LEXEME_BYTES:
            positions.setdefault(lexeme, []).append(str(position))
    return " ".join(f"{_quote(lex)}:{','.join(pos)}" for lex, pos in positions.items())


def phrase_tsquery(lexemes: Sequence[str]) -> str:
    """The ``tsquery`` literal matching ``lexemes`` as one phrase."""
    return " <-> ".join(_quote(lexeme) for lexeme in lexemes)


def schema_from_conninfo(conninfo: str) -> str | None:
    """The first schema of a ``-c search_path=…`` option in a connection string, if any."""
    psycopg, _ = _drivers()
    try:
        options = psycopg.conninfo.conninfo_to_dict(conninfo).get("options") or ""
    except psycopg.ProgrammingError:
        return None  # the connection attempt reports the bad string
    match = _SEARCH_PATH.search(str(options))
    return match.group(1).strip("\"'") if match else None


def describe(conninfo: str) -> str:
    """The server a connection string points at, without its password (for messages)."""
    psycopg, _ = _drivers()
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "an invalid connection string"
    host, port = parts.get("host") or "localhost", parts.get("port") or 5432
    return f"{parts.get('user') or ''}@{host}:{port}/{parts.get('dbname') or ''}"


# -- rows ---------------------------------------------------------------------------
def _no_nul(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters; drop them."""
    return value.replace("\x00", "") if value else value


def _code_pairs(record: Record) -> list[tuple[str, str]]:
    """The (system, code) pairs a record is found by, as the SQLite store indexes them."""
    codes = {(c.system, c.code) for c in record.codes}
    codes.update(("", c.code) for c in record.components if c.code)
    return sorted(codes)


def _resource_row(
    row_id: int, record: Record, digest: str, body: list[str], patient: list[str]
) -> tuple[Any, ...]:
    """The ``resources`` row of a record whose body and patient id have these lexemes."""
    return (
        row_id,
        len(body) + len(patient),  # FTS5 counts the tokens of both columns
        record.ref,
        record.resource_type,
        record.patient_id,
        record.date,
        record.day,
        record.end_date,
        record.status,
        _no_nul(" ".join(record.category)),
        record.version,
        record.last_updated,
        digest,
        _no_nul(record.text),
        _record_fields(record),
        orjson.dumps(record.resource),
        to_tsvector_text(body),
    )


@dataclass(frozen=True)
class _Stored:
    """What an upsert needs to know of a stored version."""

    id: int
    content_hash: str
    version: str | None
    last_updated: str | None


_COLUMNS = (
    "id, doc_len, ref, resource_type, patient_id, date, day, end_date, status, categories,"
    " version, last_updated, content_hash, text, record, resource, tsv"
)
_RECORD_COLUMNS = (
    "ref, resource_type, patient_id, date, end_date, status, version, last_updated, text,"
    " record, resource"
)


class PostgresStore:
    """A :class:`~ehrqa.store.base.RecordStore` in a PostgreSQL database.

    ``conninfo`` is a libpq URL or key/value string. ``schema`` (default: the first entry
    of a ``-c search_path=…`` option in ``conninfo``, else ``public``) is created when
    missing. ``max_connections`` bounds the pool shared by the calling threads.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        max_connections: int = 8,
        connect_timeout: float = 10.0,
    ) -> None:
        psycopg, psycopg_pool = _drivers()
        self.conninfo = conninfo
        self.where = describe(conninfo)
        self.schema = schema or schema_from_conninfo(conninfo) or "public"
        self._local = threading.local()
        self._check_connection(psycopg, connect_timeout)
        self._pool: ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "row_factory": psycopg.rows.dict_row},
            configure=self._configure,
            check=psycopg_pool.ConnectionPool.check_connection,  # survive server restarts
            timeout=connect_timeout * 3,
            name="ehrqa-store",
            open=False,
        )
        self._pool.open(wait=True, timeout=connect_timeout)
        try:
            self._migrate()
            self._update_texts()
        except BaseException:
            self._pool.close()
            raise

    def _check_connection(self, psycopg: Any, timeout: float) -> None:
        """Fail fast, with a fix-it message, when the server cannot be reached."""
        try:
            psycopg.connect(self.conninfo, connect_timeout=max(1, int(timeout))).close()
        except psycopg.Error as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = lines[0] if lines else type(exc).__name__
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.where} ({reason}): start the server "
                "(for tests: bash scripts/start_postgres.sh) or fix the store URL "
                "(--store, EHRQA_STORE or 'store' in the config file)"
            ) from exc

    def _configure(self, conn: Connection[Any]) -> None:
        from psycopg import sql

        conn.execute(
            "SELECT set_config('search_path', %s, false)",
            [sql.Identifier(self.schema).as_string(conn)],
        )

    # -- connections -----------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Connection[Any]]:
        """The thread's transaction connection, or one borrowed from the pool."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        with self._pool.connection() as conn:
            yield conn

    def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._connection() as conn:
            return conn.execute(query, params).fetchall()

    # -- schema ----------------------------------------------------------------------
    def _schema_of(self, conn: Connection[Any]) -> PostgresSchema:
        return PostgresSchema(
            conn, f"the store at {self.where} (schema {self.schema})", self.schema
        )

    def _migrate(self) -> None:
        with self._pool.connection() as conn:
            migrate(self._schema_of(conn), MIGRATIONS)

    @property
    def schema_version(self) -> int:
        """The schema version of the store's schema."""
        with self._connection() as conn:
            return self._schema_of(conn).read_version()

    @property
    def render_version(self) -> int:
        """The render version of the stored texts (:mod:`ehrqa.store.rendering`)."""
        with self._connection() as conn:
            return self._render_state(conn).version

    @staticmethod
    def _render_state(conn: Connection[Any]) -> RenderState:
        rows = conn.execute("SELECT key, value FROM meta").fetchall()
        return RenderState.from_meta({row["key"]: row["value"] for row in rows})

    def _update_texts(self) -> None:
        """Re-render the texts if an older rendering made them; resumes a run cut short."""
        with self._connection() as conn:
            state = self._render_state(conn)
        where = f"the store at {self.where} (schema {self.schema})"
        update_texts(where, state, self._rerender_batch)

    def _rerender_batch(self, after: int, limit: int) -> RenderedBatch | None:
        """Re-render the texts of up to ``limit`` rows after row ``after``, in one transaction.

        The rows are locked in id order as they are read, and only those whose text or
        lexemes change are written.
        """
        psycopg, _ = _drivers()
        for _ in range(RENDER_TRIES - 1):
            with suppress(psycopg.errors.DeadlockDetected):
                return self._rerender_rows(after, limit)
        return self._rerender_rows(after, limit)

    def _rerender_rows(self, after: int, limit: int) -> RenderedBatch | None:
        with self.transaction(), self._connection() as conn:
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_RENDER, self.schema]
            )
            if self._render_state(conn).current:  # another process finished meanwhile
                return None
            rows = [
                from_row(StoredText, row)
                for row in conn.execute(
                    "SELECT id, patient_id, text, resource FROM resources"
                    " WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE",
                    [after, limit],
                )
            ]
            if not rows:
                self._set_meta(conn, VERSION_KEY, str(RENDER_VERSION))
                conn.execute("DELETE FROM meta WHERE key = %s", [PROGRESS_KEY])
                return None
            changed = self._write_texts(conn, rerender(rows, self._fetcher(conn)))
            self._set_meta(conn, PROGRESS_KEY, progress(rows[-1].id))
        return RenderedBatch(rows[-1].id, len(rows), changed)

    @staticmethod
    def _fetcher(conn: Connection[Any]) -> Callable[[Sequence[str]], dict[str, dict[str, Any]]]:
        def fetch(refs: Sequence[str]) -> dict[str, dict[str, Any]]:
            rows = conn.execute(
                "SELECT ref, resource FROM resources WHERE ref = ANY(%s)", [list(refs)]
            )
            return {row["ref"]: orjson.loads(row["resource"]) for row in rows}

        return fetch

    @staticmethod
    def _write_texts(conn: Connection[Any], rows: list[StoredText]) -> int:
        """Write re-rendered texts and their lexemes where they differ; how many were written."""
        if not rows:
            return 0
        lexemes = tokenize([row.body or "" for row in rows] + [r.patient_id or "" for r in rows])
        bodies, patients = lexemes[: len(rows)], lexemes[len(rows) :]
        cursor = conn.execute(
            "UPDATE resources r SET text = v.text, doc_len = v.doc_len, tsv = v.tsv::tsvector"
            " FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::text[])"
            " AS v(id, text, doc_len, tsv) WHERE r.id = v.id"
            " AND (r.text, r.doc_len, r.tsv) IS DISTINCT FROM (v.text, v.doc_len, v.tsv::tsvector)",
            [
                [row.id for row in rows],
                [_no_nul(row.text) for row in rows],
                [len(b) + len(p) for b, p in zip(bodies, patients, strict=True)],
                [to_tsvector_text(b) for b in bodies],
            ],
        )
        return cursor.rowcount

    @staticmethod
    def _set_meta(conn: Connection[Any], key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [key, value],
        )

    # -- writing ---------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together, or roll back together on an exception.

        Nested calls join the outer transaction, as in the SQLite store.
        """
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._local.conn = None

    def upsert(self, records: Iterable[Record]) -> UpsertStats:
        """Insert new records; replace changed ones unless the stored version is newer."""
        batch = list(records)
        stats = UpsertStats()
        with self.transaction(), self._connection() as conn:
            refs = sorted({r.ref for r in batch})
            # Writers of the same references queue up instead of failing on the unique key.
            # One lock per hash bucket, not per reference: a bulk file of 100,000 resources
            # would overflow the server's lock table (max_locks_per_transaction). Buckets
            # are taken in order, so two writers never wait on each other in a cycle.
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, bucket) FROM (SELECT DISTINCT"
                " hashtext(ref) & %s AS bucket FROM unnest(%s::text[]) AS ref) AS buckets"
                " ORDER BY bucket",
                [LOCK_REF, LOCK_BUCKETS - 1, refs],
            )
            stored = self._stored(conn, refs)
            writes: list[tuple[Record, str, int | None]] = []
            for record in batch:
                write = self._decide(record, stored, stats)
                if write is not None:
                    writes.append(write)
            self._write(conn, writes)
        return stats

    def _stored(self, conn: Connection[Any], refs: list[str]) -> dict[str, _Stored]:
        rows = conn.execute(
            "SELECT id, ref, content_hash, version, last_updated FROM resources"
            " WHERE ref = ANY(%s)",
            [refs],
        ).fetchall()
        return {row["ref"]: from_row(_Stored, row) for row in rows}

    @staticmethod
    def _decide(
        record: Record, stored: dict[str, _Stored], stats: UpsertStats
    ) -> tuple[Record, str, int | None] | None:
        """Count what happens to ``record``; return (record, hash, stored id) to write it."""
        digest = content_hash(record.resource)
        old = stored.get(record.ref)
        if old is not None:
            if old.content_hash == digest:
                stats.unchanged += 1
                return None
            if not _is_newer(record, old.version, old.last_updated):
                stats.stale += 1
                return None
            stats.updated += 1
        else:
            stats.inserted += 1
        # A later duplicate in the same batch compares against this version.
        old_id = old.id if old else None
        stored[record.ref] = _Stored(old_id or 0, digest, record.version, record.last_updated)
        return record, digest, old_id

    def _write(self, conn: Connection[Any], writes: list[tuple[Record, str, int | None]]) -> None:
        """Replace or insert the rows; an updated row keeps its id, like SQLite's rowid."""
        if not writes:
            return
        ids: dict[str, int | None] = {}
        last: dict[str, tuple[Record, str]] = {}
        for record, digest, old_id in writes:
            ids.setdefault(record.ref, old_id)
            last[record.ref] = (record, digest)
        new = [ref for ref, row_id in ids.items() if row_id is None]
        fresh = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('resources', 'id')) AS id"
            " FROM generate_series(1, %s)",
            [len(new)],
        ).fetchall()
        ids.update(zip(new, (row["id"] for row in fresh), strict=True))
        replaced = [row_id for ref, row_id in ids.items() if ref not in new]
        if replaced:
            conn.execute("DELETE FROM resources WHERE id = ANY(%s)", [replaced])
        final = [(int(ids[ref] or 0), record, digest) for ref, (record, digest) in last.items()]
        self._insert(conn, final)

    def _insert(self, conn: Connection[Any], rows: list[tuple[int, Record, str]]) -> None:
        """Insert resource rows with their codes and patient lines."""
        records = [record for _, record, _ in rows]
        texts = [f"{r.text} {r.search_text}".strip() for r in records]
        lexemes = tokenize(texts + [r.patient_id or "" for r in records])
        conn.cursor().executemany(
            f"INSERT INTO resources ({_COLUMNS}) VALUES ("
            + ", ".join(["%s"] * 16)
            + ", %s::tsvector)",
            [
                _resource_row(row_id, record, digest, lexemes[i], lexemes[len(rows) + i])
                for i, (row_id, record, digest) in enumerate(rows)
            ],
        )
        codes = [
            (row_id, _no_nul(system), _no_nul(code))
            for row_id, record, _ in rows
            for system, code in _code_pairs(record)
        ]
        if codes:
            conn.cursor().executemany(
                "INSERT INTO codes (res, system, code) VALUES (%s, %s, %s)", codes
            )
        people = [_patient_row(r) for r in records if r.resource_type == "Patient"]
        if people:
            conn.cursor().executemany(
                "INSERT INTO patients (id, name, birth_date, gender) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
                " birth_date = EXCLUDED.birth_date, gender = EXCLUDED.gender",
                [tuple(_no_nul(v) for v in person) for person in people],
            )

    # -- reading ---------------------------------------------------------------------
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
        rows = self._fetch(
            f"SELECT {_RECORD_COLUMNS} FROM resources WHERE ref = ANY(%s)", [list(refs)]
        )
        by_ref = {row["ref"]: read_record(row) for row in rows}
        return [by_ref[ref] for ref in refs if ref in by_ref]

    def patients(self, search: str | None = None) -> list[PatientSummary]:
        """List patients with their resource counts, optionally filtered by name or id."""
        sql = f"SELECT {PATIENT_COLUMNS} FROM patients p"
        params: list[str] = []
        if search:
            # ILIKE without an escape character: SQLite's LIKE (case-insensitive, no escapes).
            sql += " WHERE p.name ILIKE %s ESCAPE '' OR p.id ILIKE %s ESCAPE ''"
            params = [f"%{search}%", f"%{search}%"]
        rows = self._fetch(sql + " ORDER BY p.name, p.id", params)
        return [from_row(PatientSummary, row) for row in rows]

    def patient(self, patient_id: str) -> PatientSummary:
        """Return one patient; raise NotFoundError (naming how to list them) when absent."""
        patient_id = patient_id.removeprefix("Patient/")
        rows = self._fetch(
            f"SELECT {PATIENT_COLUMNS} FROM patients p WHERE p.id = %s", [patient_id]
        )
        if not rows:
            raise NotFoundError(
                f"no patient {patient_id!r} in the store: 'ehrqa patients' lists the ids"
            )
        return from_row(PatientSummary, rows[0])

    def query(self, query: RecordQuery) -> list[Record]:
        """Return the patient's records that match every given filter."""
        sql = [f"SELECT {_RECORD_COLUMNS} FROM resources WHERE patient_id = %s"]
        params: list[Any] = [query.patient_id]
        for column, values in (("resource_type", query.types), ("status", query.statuses)):
            if values:
                sql.append(f"AND {column} = ANY(%s)")
                params.append(list(values))
        if query.exclude_types:
            sql.append("AND resource_type <> ALL(%s)")
            params.append(list(query.exclude_types))
        if query.categories:
            sql.append(
                "AND ("
                + " OR ".join(
                    "(' ' || categories || ' ') ILIKE %s ESCAPE ''" for _ in query.categories
                )
                + ")"
            )
            params.extend(f"% {c} %" for c in query.categories)
        if query.codes:
            sql.append("AND id IN (SELECT res FROM codes WHERE code = ANY(%s))")
            params.append(list(query.codes))
        if query.start:
            sql.append("AND COALESCE(end_date, day) >= %s")
            params.append(query.start)
        if query.end:
            sql.append("AND day <= %s")
            params.append(query.end)
        direction = "DESC" if query.order == "newest" else "ASC"
        sql.append(f"ORDER BY date IS NULL, date {direction}, ref")
        if query.limit is not None and query.limit >= 0:  # SQLite: a negative limit is none
            sql.append("LIMIT %s")
            params.append(query.limit)
        return [read_record(row) for row in self._fetch(" ".join(sql), params)]

    def search(
        self, patient_id: str, terms: Sequence[str], *, types: Sequence[str] = (), limit: int = 100
    ) -> list[tuple[Record, float]]:
        """BM25 search over the patient's record texts; each term is matched as a phrase.

        BM25's statistics (record count, mean length, each phrase's document frequency)
        are the patient's own: counted over every patient's records, as FTS5 does in the
        SQLite store, they cost a scan that grew with the store (465 ms per search with
        1,000 patients against 5 ms with one; benchmarks/scale_run.py). With one patient
        stored, the scores equal the SQLite store's exactly.
        """
        phrases = [p for p in tokenize([t for t in terms if t.strip()]) if p]
        if not phrases or limit == 0:
            return []
        queries = [phrase_tsquery(p) for p in phrases]
        either = " | ".join(f"({q})" for q in queries)
        with self._connection() as conn:
            hits = self._search_hits(conn, patient_id, phrases, either, types)
            if not hits:
                return []
            totals = conn.execute(
                "SELECT count(*) AS n, COALESCE(sum(doc_len), 0) AS tokens FROM resources"
                " WHERE patient_id = %s",
                [patient_id],
            ).fetchone()
            assert totals is not None
            n_rows = int(totals["n"])
            idfs = self._idfs(conn, patient_id, queries, either, n_rows)
            avgdl = float(totals["tokens"]) / float(n_rows)
            scored = sorted(
                (
                    (bm25(freqs, idfs, doc_len, avgdl), row_id)
                    for row_id, (doc_len, freqs) in hits.items()
                ),
                key=lambda hit: (-hit[0], hit[1]),  # ties in insertion order, as in FTS5
            )[: limit if limit > 0 else None]
            rows = conn.execute(
                f"SELECT id, {_RECORD_COLUMNS} FROM resources WHERE id = ANY(%s)",
                [[row_id for _, row_id in scored]],
            ).fetchall()
        by_id = {row["id"]: read_record(row) for row in rows}
        return [(by_id[row_id], score) for score, row_id in scored if row_id in by_id]

    @staticmethod
    def _search_hits(
        conn: Connection[Any],
        patient_id: str,
        phrases: list[list[str]],
        either: str,
        types: Sequence[str],
    ) -> dict[int, tuple[int, list[float]]]:
        """Matching rows of the patient: id → (length in tokens, frequency of each phrase)."""
        sql = (
            f"{PATIENT_ROWS} SELECT r.id, r.doc_len, u.lexeme, u.positions FROM mine r,"
            " unnest(r.tsv) AS u WHERE r.tsv @@ %s::tsquery AND u.lexeme = ANY(%s)"
        )
        params: list[Any] = [patient_id, either, sorted({lex for p in phrases for lex in p})]
        if types:
            sql += " AND r.resource_type = ANY(%s)"
            params.append(list(types))
        lengths: dict[int, int] = {}
        positions: dict[int, dict[str, Sequence[int]]] = {}
        for row in conn.execute(sql, params):
            lengths[row["id"]] = row["doc_len"]
            positions.setdefault(row["id"], {})[row["lexeme"]] = row["positions"]
        hits: dict[int, tuple[int, list[float]]] = {}
        for row_id, found in positions.items():
            freqs = [float(phrase_count(p, found)) for p in phrases]
            if any(freqs):
                hits[row_id] = (lengths[row_id], freqs)
        return hits

    @staticmethod
    def _idfs(
        conn: Connection[Any], patient_id: str, queries: list[str], either: str, n_rows: int
    ) -> list[float]:
        """FTS5's IDF formula for each phrase, over the patient's records."""
        counts = ", ".join(
            f"count(*) FILTER (WHERE tsv @@ %s::tsquery) AS c{i}" for i in range(len(queries))
        )
        row = conn.execute(
            f"{PATIENT_ROWS} SELECT {counts} FROM mine WHERE tsv @@ %s::tsquery",
            [patient_id, *queries, either],
        ).fetchone()
        assert row is not None
        return [idf(n_rows, int(row[f"c{i}"])) for i in range(len(queries))]

    def type_counts(self, patient_id: str) -> dict[str, int]:
        """Number of records of each resource type for the patient."""
        rows = self._fetch(
            "SELECT resource_type, COUNT(*) AS n FROM resources WHERE patient_id = %s"
            " GROUP BY resource_type ORDER BY resource_type",
            [patient_id],
        )
        return {row["resource_type"]: int(row["n"]) for row in rows}

    def distinct_codes(self, patient_id: str) -> list[CodedConcept]:
        """The patient's distinct (type, system, code, display) codings, each with its records.

        Component codes of Observations come with ``system`` ``""`` and the component's
        name as display. Sorted by resource type, display, system and code.
        """
        rows = self._fetch(_DISTINCT_CODES_SQL, [patient_id, patient_id])
        return concepts_from_rows(
            (r["resource_type"], r["system"], r["code"], r["display"], r["refs"]) for r in rows
        )

    def iter_records(self, patient_id: str | None = None) -> Iterator[Record]:
        """Iterate over all records, or one patient's, in reference order."""
        sql, params = f"SELECT {_RECORD_COLUMNS} FROM resources", []
        if patient_id is not None:
            sql, params = sql + " WHERE patient_id = %s", [patient_id]
        rows = self._fetch(sql + " ORDER BY ref", params)
        for row in rows:
            yield read_record(row)

    def count(self) -> int:
        """Total number of stored resources."""
        return int(self._fetch("SELECT COUNT(*) AS n FROM resources")[0]["n"])

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()
