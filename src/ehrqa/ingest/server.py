"""Ingestion from a FHIR R4 server: patients fetched over HTTP → the record store.

Each patient is one unit: all its pages are fetched first, then validated, normalised and
written in one transaction by the same step that ingests a file
(:func:`ehrqa.ingest.ingest_unit`), so a patient is never half-stored.

Sync state lives in ``<home>/fhir_sync.sqlite3``: per server and patient the server time of
the last successful fetch (the next fetch asks only for what changed after it), and the run
of ``--all`` that is in progress, so an interrupted run goes on with the patients it had not
reached.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrqa.core.errors import ConfigError, NotFoundError, StoreError
from ehrqa.fhir.parse import RawEntry, SourceUnit
from ehrqa.fhir.server import Auth, BearerToken, FhirClient, PatientFetch, SmartBackendAuth
from ehrqa.fhir.validate import Validator, get_validator
from ehrqa.ingest.files import IngestReport, ingest_unit
from ehrqa.store.base import RecordStore
from ehrqa.store.migrations import Migration, SqliteDatabase, migrate
from ehrqa.store.rows import from_row

SYNC_FILE = "fhir_sync.sqlite3"
TOKEN_ENV = "EHRQA_FHIR_TOKEN"

# The sync state's schema; never edit a released step. Files made before versions were kept
# hold these tables at version 0, hence IF NOT EXISTS.
MIGRATIONS: tuple[Migration[sqlite3.Connection], ...] = (
    Migration(
        1,
        "synced patients and the --all run in progress",
        """
        CREATE TABLE IF NOT EXISTS synced (
            server TEXT NOT NULL,
            patient TEXT NOT NULL,
            synced_at TEXT NOT NULL,
            run TEXT,
            PRIMARY KEY (server, patient)
        );
        CREATE TABLE IF NOT EXISTS runs (
            server TEXT PRIMARY KEY,
            run TEXT NOT NULL,
            started TEXT NOT NULL
        );
        """,
    ),
)


@dataclass(frozen=True)
class _Synced:
    """A ``synced`` row: the patient's last successful sync, and the run that made it."""

    patient: str
    synced_at: str
    run: str | None


@dataclass(frozen=True)
class _Run:
    """A ``runs`` row: the ``--all`` run in progress on a server."""

    run: str
    started: str


class SyncState:
    """Per server and patient: when it was last synced, and the ``--all`` run in progress."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.row_factory = sqlite3.Row
        try:
            migrate(SqliteDatabase(self._db, f"the FHIR sync state {self.path}"), MIGRATIONS)
        except StoreError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(
                f"cannot open the FHIR sync state {self.path} ({exc}): move the damaged file "
                "away (a new one is made; the next sync fetches each patient whole)"
            ) from exc

    @classmethod
    def open(cls, home: str | Path) -> SyncState:
        """The sync state in the data directory ``home``."""
        return cls(Path(home) / SYNC_FILE)

    def close(self) -> None:
        """Close the database file."""
        self._db.close()

    def last_synced(self, server: str, patient_id: str) -> str | None:
        """The server time of the patient's last successful sync, or None."""
        row = self._db.execute(
            "SELECT patient, synced_at, run FROM synced WHERE server = ? AND patient = ?",
            (server, patient_id),
        ).fetchone()
        return None if row is None else from_row(_Synced, row).synced_at

    def mark_synced(
        self, server: str, patient_id: str, synced_at: str, run: str | None = None
    ) -> None:
        """Record a successful sync of the patient (committed at once)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO synced (server, patient, synced_at, run) VALUES (?,?,?,?)",
                (server, patient_id, synced_at, run),
            )

    def begin_run(self, server: str) -> tuple[str, bool]:
        """The id of the ``--all`` run to do, and whether it resumes an interrupted one."""
        row = self._db.execute(
            "SELECT run, started FROM runs WHERE server = ?", (server,)
        ).fetchone()
        if row is not None:
            return from_row(_Run, row).run, True
        run = uuid.uuid4().hex
        with self._db:
            self._db.execute(
                "INSERT INTO runs (server, run, started) VALUES (?, ?, ?)",
                (server, run, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            )
        return run, False

    def done_in_run(self, server: str, run: str) -> set[str]:
        """The patients that run ``run`` has already synced."""
        rows = self._db.execute(
            "SELECT patient, synced_at, run FROM synced WHERE server = ? AND run = ?", (server, run)
        ).fetchall()
        return {from_row(_Synced, r).patient for r in rows}

    def finish_run(self, server: str) -> None:
        """Forget the run in progress: the next ``--all`` starts afresh."""
        with self._db:
            self._db.execute("DELETE FROM runs WHERE server = ?", (server,))


@dataclass
class ServerIngestReport(IngestReport):
    """An :class:`IngestReport` with the patients synced from a server."""

    server: str = ""
    patients: int = 0
    incremental: int = 0
    resumed_skipped: int = 0
    missing_patients: list[str] = field(default_factory=list)
    methods: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        data = super().to_dict()
        data.update(
            server=self.server,
            patients=self.patients,
            incremental=self.incremental,
            resumed_skipped=self.resumed_skipped,
            missing_patients=self.missing_patients,
            methods=self.methods,
            requests=self.requests,
        )
        return data


# on_patient(patient_id, resources_fetched, method) after each patient is stored.
PatientCallback = Callable[[str, int, str], None]


def ingest_from_server(
    store: RecordStore,
    client: FhirClient,
    state: SyncState,
    *,
    patient_ids: Sequence[str] = (),
    all_patients: bool = False,
    full: bool = False,
    validator: str | Validator = "fhirkit",
    strict: bool = False,
    on_patient: PatientCallback | None = None,
) -> ServerIngestReport:
    """Fetch patients from ``client``'s server and store them, one transaction per patient.

    ``patient_ids`` names the patients; ``all_patients`` lists every patient on the server
    (an interrupted ``--all`` run resumes where it stopped). A patient synced before is
    asked only for changes since then, unless ``full``. Raises :class:`FhirServerError`
    when the server fails after retries; what was stored by then stays stored.
    """
    if bool(patient_ids) == all_patients:
        raise ConfigError("name patients with --patient ID (repeatable) or pass --all, not both")
    check = get_validator(validator) if isinstance(validator, str) else validator
    report = ServerIngestReport(server=client.base_url)
    started = time.perf_counter()
    requests_before = client.requests
    try:
        if all_patients:
            _sync_all(store, client, state, check, strict, full, report, on_patient)
        else:
            for pid in dict.fromkeys(patient_ids):
                fetched = _sync_patient(store, client, state, pid, check, strict, full, report)
                _notify(on_patient, fetched)
    finally:
        report.requests = client.requests - requests_before
        report.seconds = time.perf_counter() - started
    return report


def _sync_all(
    store: RecordStore,
    client: FhirClient,
    state: SyncState,
    check: Validator,
    strict: bool,
    full: bool,
    report: ServerIngestReport,
    on_patient: PatientCallback | None,
) -> None:
    server = client.base_url
    run, resumed = state.begin_run(server)
    done = state.done_in_run(server, run) if resumed else set()
    for pid in _unique(client.patient_ids()):
        if pid in done:
            report.resumed_skipped += 1
            continue
        try:
            fetched = _sync_patient(store, client, state, pid, check, strict, full, report, run)
        except NotFoundError:
            # Deleted between the listing and the fetch: nothing to store.
            report.missing_patients.append(pid)
            continue
        _notify(on_patient, fetched)
    state.finish_run(server)


def _sync_patient(
    store: RecordStore,
    client: FhirClient,
    state: SyncState,
    pid: str,
    check: Validator,
    strict: bool,
    full: bool,
    report: ServerIngestReport,
    run: str | None = None,
) -> PatientFetch:
    since = None if full else state.last_synced(client.base_url, pid)
    fetched = client.fetch_patient(pid, since=since)
    rejected_before = len(report.rejected_files)
    ingest_unit(store, patient_unit(client.base_url, fetched), check, strict, report)
    report.patients += 1
    report.incremental += since is not None
    report.methods[fetched.method] = report.methods.get(fetched.method, 0) + 1
    if len(report.rejected_files) > rejected_before:
        # SourceUnit.path is a Path, which folds "//": report the patient's real URL. A
        # patient rejected by --strict is not marked: the next sync fetches it whole again.
        report.rejected_files[-1] = f"{client.base_url}Patient/{pid}"
    else:
        state.mark_synced(client.base_url, pid, fetched.requested_at, run)
    return fetched


def _notify(on_patient: PatientCallback | None, fetched: PatientFetch) -> None:
    if on_patient is not None:
        on_patient(fetched.patient_id, len(fetched.resources), fetched.method)


def _unique(ids: Iterable[str]) -> Iterator[str]:
    seen: set[str] = set()
    for pid in ids:
        if pid not in seen:
            seen.add(pid)
            yield pid


def patient_unit(server: str, fetched: PatientFetch) -> SourceUnit:
    """One patient's fetched resources as a unit for :func:`ehrqa.ingest.ingest_unit`.

    An entry's location is the resource's URL on the server (never its content), e.g.
    ``http://h/fhir/Condition/abc``.
    """
    entries = []
    for index, resource in enumerate(fetched.resources):
        rtype, rid = resource.get("resourceType"), resource.get("id")
        where = f"{rtype}/{rid}" if isinstance(rtype, str) and isinstance(rid, str) else "?"
        entries.append(RawEntry(f"{server}{where}", index, resource, "PUT"))
    return SourceUnit(
        Path(f"{server}Patient/{fetched.patient_id}"), entries, dict(fetched.full_urls)
    )


def open_fhir_client(
    url: str,
    *,
    token: str | None = None,
    smart_client_id: str | None = None,
    smart_key: str | Path | None = None,
    smart_token_url: str | None = None,
    timeout: float = 30.0,
) -> FhirClient:
    """A :class:`FhirClient` for the CLI flags; the token falls back to ``$EHRQA_FHIR_TOKEN``.

    SMART needs all three of client id, key and token URL; it cannot be combined with a
    token.
    """
    smart = (smart_client_id, smart_key, smart_token_url)
    auth: Auth | None = None
    if any(smart):
        if not all(smart):
            raise ConfigError(
                "SMART backend auth needs --smart-client-id, --smart-key and --smart-token-url"
            )
        if token:
            raise ConfigError("pass either --token or the --smart-* options, not both")
        auth = SmartBackendAuth.from_key_file(
            str(smart_client_id), str(smart_key), str(smart_token_url)
        )
    elif token := token or os.environ.get(TOKEN_ENV):
        auth = BearerToken(token)
    return FhirClient(url, auth=auth, timeout=timeout)


def sync_from_server(
    store: RecordStore,
    home: str | Path,
    url: str,
    **options: Any,
) -> ServerIngestReport:
    """Open the client and sync state for ``url`` and run :func:`ingest_from_server`.

    ``options`` are those of :func:`open_fhir_client` (token, smart_*, timeout) and of
    :func:`ingest_from_server` (patient_ids, all_patients, full, validator, strict,
    on_patient).
    """
    client_keys = ("token", "smart_client_id", "smart_key", "smart_token_url", "timeout")
    client_opts = {k: options.pop(k) for k in client_keys if k in options}
    with (
        open_fhir_client(url, **client_opts) as client,
        closing(SyncState.open(home)) as state,
    ):
        return ingest_from_server(store, client, state, **options)


__all__ = [
    "ServerIngestReport",
    "SyncState",
    "ingest_from_server",
    "open_fhir_client",
    "patient_unit",
    "sync_from_server",
]
