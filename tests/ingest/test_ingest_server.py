"""Ingestion from a FHIR server: the same records as file ingestion, incremental, resumable.

Unit tests use the in-process fake server; the integration test starts a real FHIR server
on loopback (Medplum's FHIR router and in-memory repository under Node.js, installed by
``scripts/fhir_server/install.sh``) and is skipped with the reason when that is missing.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehrqa.core.errors import ConfigError, NotFoundError, StoreError
from ehrqa.fhir.parse import rewrite_references
from ehrqa.fhir.server import BearerToken, FhirClient, FhirServerError, RetryPolicy
from ehrqa.ingest.files import ingest_paths
from ehrqa.ingest.server import (
    MIGRATIONS,
    SYNC_FILE,
    SyncState,
    ingest_from_server,
    open_fhir_client,
    sync_from_server,
)
from ehrqa.store import SqliteStore
from ehrqa.store.base import RecordStore
from fixtures.fhir_server.fake_server import (
    BASE,
    SAMPLE,
    FakeFhirServer,
    sample_patient_id,
    sample_resources,
)

PID = sample_patient_id()
SERVER_DIR = Path(__file__).parents[2] / "scripts" / "fhir_server"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SyncState]:
    s = SyncState.open(tmp_path)
    yield s
    s.close()


def make_client(server: FakeFhirServer, **kwargs: Any) -> FhirClient:
    kwargs.setdefault("page_size", 10)
    kwargs.setdefault("retry", RetryPolicy(attempts=2))
    return FhirClient(
        BASE, transport=server.transport(), sleep=lambda s: None, rng=random.Random(0), **kwargs
    )


def comparable(store: RecordStore, patient_id: str) -> dict[str, dict[str, Any]]:
    """The patient's records by ref, without what a server adds (meta, version)."""
    found = {}
    for record in store.iter_records(patient_id):
        fields = dataclasses.asdict(record)
        for name in ("version", "last_updated"):
            fields.pop(name)
        fields["resource"] = {k: v for k, v in record.resource.items() if k != "meta"}
        found[record.ref] = fields
    return found


# -- unit tests on the fake server ------------------------------------------------------
@pytest.mark.parametrize("everything", ["ok", "404"])
def test_server_ingest_stores_what_file_ingest_stores(
    tmp_path: Path, store: SqliteStore, state: SyncState, everything: str
) -> None:
    server = FakeFhirServer(sample_resources(), everything=everything)
    seen: list[tuple[str, int, str]] = []
    report = ingest_from_server(
        store,
        make_client(server),
        state,
        patient_ids=[PID],
        on_patient=lambda *args: seen.append(args),
    )
    assert not report.issues and report.patients == 1
    assert seen == [(PID, report.resources_read, "everything" if everything == "ok" else "search")]
    with closing(SqliteStore(tmp_path / "files.sqlite3")) as direct:
        ingest_paths(direct, [SAMPLE])
        assert comparable(store, PID) == comparable(direct, PID)


def test_second_sync_asks_only_for_changes(store: SqliteStore, state: SyncState) -> None:
    server = FakeFhirServer(sample_resources())
    client = make_client(server)
    first = ingest_from_server(store, client, state, patient_ids=[PID])
    synced_at = state.last_synced(client.base_url, PID)
    assert synced_at is not None and first.incremental == 0
    condition = next(r for r in server.resources.values() if r["resourceType"] == "Condition")
    server.put({**condition, "clinicalStatus": {"text": "resolved"}})
    second = ingest_from_server(store, client, state, patient_ids=[PID])
    assert second.incremental == 1
    assert second.resources_read == 1 and second.stats.updated == 1
    assert f"_since={synced_at}" in server.urls()[-1]
    full = ingest_from_server(store, client, state, patient_ids=[PID], full=True)
    assert full.incremental == 0 and "_since" not in server.urls()[-1]
    assert full.stats.unchanged == full.resources_read


def test_all_patients_resumes_after_a_failure(store: SqliteStore, state: SyncState) -> None:
    server = FakeFhirServer([*sample_resources(), *sample_resources("-b"), *sample_resources("-c")])
    client = make_client(server, page_size=5)
    # Patient b fails on its third page, after two pages arrived.
    server.fail(f"Patient/{PID}-b/$everything?_count=5&_offset=10", times=2, status=503)
    with pytest.raises(FhirServerError, match="HTTP 503"):
        ingest_from_server(store, client, state, all_patients=True)
    assert comparable(store, PID)
    assert store.type_counts(PID + "-b") == {}  # nothing half-stored
    assert state.last_synced(client.base_url, PID + "-b") is None

    resumed = ingest_from_server(store, client, state, all_patients=True)
    assert resumed.resumed_skipped == 1 and resumed.patients == 2
    assert comparable(store, PID + "-b") and comparable(store, PID + "-c")
    again = ingest_from_server(store, client, state, all_patients=True)
    assert again.resumed_skipped == 0 and again.patients == 3 and again.incremental == 3


def test_all_patients_skips_a_patient_deleted_meanwhile(
    store: SqliteStore, state: SyncState
) -> None:
    server = FakeFhirServer([*sample_resources(), *sample_resources("-b")])
    server.fail(f"Patient/{PID}-b/$everything", times=1, status=404)
    server.fail(f"Patient/{PID}-b", times=99, status=404)
    report = ingest_from_server(store, make_client(server), state, all_patients=True)
    assert report.patients == 1 and report.missing_patients == [PID + "-b"]


def test_a_missing_named_patient_is_an_error(store: SqliteStore, state: SyncState) -> None:
    server = FakeFhirServer(sample_resources())
    with pytest.raises(NotFoundError, match="nobody"):
        ingest_from_server(store, make_client(server), state, patient_ids=["nobody"])


def test_invalid_resources_are_reported_and_skipped(store: SqliteStore, state: SyncState) -> None:
    resources = sample_resources()
    bad = next(r for r in resources if r["resourceType"] == "Observation")
    bad["status"] = 42
    server = FakeFhirServer(resources)
    report = ingest_from_server(store, make_client(server), state, patient_ids=[PID])
    assert report.skipped_entries == 1
    assert str(report.issues[0]).startswith(
        f"{BASE}Observation/{bad['id']}: Observation Observation.status"
    )


def test_strict_rejects_the_patient_and_does_not_mark_it_synced(
    store: SqliteStore, state: SyncState
) -> None:
    resources = sample_resources()
    next(r for r in resources if r["resourceType"] == "Observation")["status"] = 42
    client = make_client(FakeFhirServer(resources))
    report = ingest_from_server(store, client, state, patient_ids=[PID], strict=True)
    assert report.rejected_files == [f"{BASE}Patient/{PID}"]
    assert store.type_counts(PID) == {}
    assert state.last_synced(client.base_url, PID) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "--patient ID"),
        ({"patient_ids": ["a"], "all_patients": True}, "not both"),
    ],
)
def test_patients_or_all(
    store: SqliteStore, state: SyncState, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        ingest_from_server(store, make_client(FakeFhirServer()), state, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"smart_client_id": "a"}, "needs --smart-client-id, --smart-key and --smart-token-url"),
        (
            {"smart_client_id": "a", "smart_key": "k", "smart_token_url": "t", "token": "x"},
            "not both",
        ),
        ({"smart_client_id": "a", "smart_key": "/no/key.pem", "smart_token_url": "t"}, "key"),
    ],
)
def test_open_fhir_client_checks_the_auth_flags(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises((ConfigError, NotFoundError), match=match):
        open_fhir_client(BASE, **kwargs)


def test_open_fhir_client_takes_the_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EHRQA_FHIR_TOKEN", "from-env")
    with open_fhir_client(BASE) as client:
        assert client.auth == BearerToken("from-env")
    with open_fhir_client(BASE, token="flag") as client:
        assert client.auth == BearerToken("flag")


def test_sync_state_survives_reopening(tmp_path: Path) -> None:
    with closing(SyncState.open(tmp_path)) as first:
        first.mark_synced("http://s/", "p", "2025-01-01T00:00:00Z")
        run, resumed = first.begin_run("http://s/")
        assert not resumed
    with closing(SyncState.open(tmp_path)) as second:
        assert second.last_synced("http://s/", "p") == "2025-01-01T00:00:00Z"
        assert second.begin_run("http://s/") == (run, True)
        second.finish_run("http://s/")
        assert second.begin_run("http://s/")[1] is False
    assert (tmp_path / SYNC_FILE).is_file()


def test_a_sync_state_of_the_old_code_opens_in_place(tmp_path: Path) -> None:
    # The tables as the code before versioned migrations made them (user_version 0).
    with closing(sqlite3.connect(tmp_path / SYNC_FILE)) as db, db:
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS synced (
                server TEXT NOT NULL, patient TEXT NOT NULL, synced_at TEXT NOT NULL, run TEXT,
                PRIMARY KEY (server, patient)
            );
            CREATE TABLE IF NOT EXISTS runs (
                server TEXT PRIMARY KEY, run TEXT NOT NULL, started TEXT NOT NULL
            );
            INSERT INTO synced VALUES ('http://s/', 'p', '2025-01-01T00:00:00Z', 'r1');
            INSERT INTO runs VALUES ('http://s/', 'r1', '2025-01-01T00:00:00Z');
            """
        )
    with closing(SyncState.open(tmp_path)) as state:
        assert state.last_synced("http://s/", "p") == "2025-01-01T00:00:00Z"
        assert state.begin_run("http://s/") == ("r1", True)
        assert state.done_in_run("http://s/", "r1") == {"p"}
        state.mark_synced("http://s/", "q", "2025-02-01T00:00:00Z", "r1")
        assert state.done_in_run("http://s/", "r1") == {"p", "q"}
    with closing(sqlite3.connect(tmp_path / SYNC_FILE)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_sync_state_of_a_newer_ehrqa_is_refused(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / SYNC_FILE)) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer than this ehrqa"):
        SyncState.open(tmp_path)


# -- integration: a real FHIR server on loopback --------------------------------------------
# The smallest demo patient (572 resources) keeps the load short.
INTEGRATION_PATIENT = "85c63cf3-278e-454c-b5ba-df5889815eb7"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def real_server() -> Iterator[str]:
    """Medplum's FHIR router + in-memory repository on a free loopback port; its base URL."""
    node = shutil.which("node")
    if node is None or not (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        pytest.skip("the loopback FHIR server is not installed: run scripts/fhir_server/install.sh")
    port = _free_port()
    proc = subprocess.Popen(
        [node, str(SERVER_DIR / "server.mjs"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server prints one line once it listens
        if "listening on" not in line:
            pytest.fail(f"the FHIR server did not start: {line}{proc.stdout.read(2000)}")
        yield line.split("listening on ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def load_demo_patient(base_url: str, patient_id: str) -> Path:
    """PUT the demo patient's resources, ids kept, as batches; return the bundle's path."""
    from ehrqa.lab.data.demo import demo_dir

    path = demo_dir() / f"patient-{patient_id}.json.gz"
    bundle = json.loads(gzip.decompress(path.read_bytes()))
    full_urls = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
    }
    entries = [
        {
            "resource": rewrite_references(e["resource"], full_urls),
            "request": {"method": "PUT", "url": full_urls[e["fullUrl"]]},
        }
        for e in bundle["entry"]
    ]
    with httpx.Client(base_url=base_url.rstrip("/") + "/", timeout=60) as http:
        for start in range(0, len(entries), 200):
            batch = {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": entries[start : start + 200],
            }
            response = http.post("", json=batch, headers={"Content-Type": "application/fhir+json"})
            response.raise_for_status()
            statuses = {e["response"]["status"][:3] for e in response.json()["entry"]}
            assert statuses <= {"200", "201"}, statuses
    return path


def test_real_server_ingest_matches_file_ingest(real_server: str, tmp_path: Path) -> None:
    path = load_demo_patient(real_server, INTEGRATION_PATIENT)
    home = tmp_path / "home"
    # The sync time is the server's Date header, in whole seconds, and the next sync asks
    # for _lastUpdated=gt<it>: wait a second so that the load itself is not "changed".
    time.sleep(1.1)
    with closing(SqliteStore(tmp_path / "server.sqlite3")) as store:
        report = sync_from_server(store, home, real_server, patient_ids=[INTEGRATION_PATIENT])
        assert not report.issues
        # Medplum's router has no $everything: this also proves the per-type fallback.
        assert report.methods == {"search": 1}
        with closing(SqliteStore(tmp_path / "files.sqlite3")) as direct:
            ingest_paths(direct, [path])
            from_server = comparable(store, INTEGRATION_PATIENT)
            assert from_server == comparable(direct, INTEGRATION_PATIENT)
        assert len(from_server) > 400

        # A change on the server arrives with the next, incremental, sync.
        observation = next(
            r for r in store.iter_records(INTEGRATION_PATIENT) if r.resource_type == "Observation"
        )
        changed = {k: v for k, v in observation.resource.items() if k != "meta"}
        changed["status"] = "amended"
        time.sleep(1.1)  # _lastUpdated=gt<synced second>: let the server's clock pass it
        httpx.put(f"{real_server}/{observation.ref}", json=changed).raise_for_status()
        again = sync_from_server(store, home, real_server, patient_ids=[INTEGRATION_PATIENT])
        assert again.incremental == 1
        assert (again.resources_read, again.stats.updated) == (1, 1)
        assert store.get(observation.ref).status == "amended"
