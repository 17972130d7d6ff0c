"""Store fixtures: every store test runs against SQLite and PostgreSQL.

PostgreSQL cases need a server at ``$EHRQA_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``; ``bash scripts/start_postgres.sh`` starts
one) and skip, saying so, when none answers. Each test gets a fresh schema, dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_PATIENT, demo_dir
from ehrqa.store import SqliteStore

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgres")


def postgres_url() -> str:
    """The server the PostgreSQL cases use."""
    return os.environ.get("EHRQA_TEST_POSTGRES") or DEFAULT_URL


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test server's URL; skips the test when psycopg or the server is missing."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    url = postgres_url()
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(
            f"no PostgreSQL server at $EHRQA_TEST_POSTGRES={url} ({type(exc).__name__}); "
            "start one with: bash scripts/start_postgres.sh"
        )
    return url


def drop_schema(url: str, schema: str) -> None:
    """Drop a test schema and everything in it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def pg_schemas(postgres_server: str) -> Iterator[Callable[[], str]]:
    """A maker of fresh schema names; every schema it named is dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(f"ehrqa_test_{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield make
    for schema in made:
        drop_schema(postgres_server, schema)


def open_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """An empty store of the given backend."""
    if backend == "sqlite":
        return SqliteStore(tmp_path / "store.sqlite3")
    from ehrqa.store.postgres import PostgresStore

    url = request.getfixturevalue("postgres_server")
    schema = request.getfixturevalue("pg_schemas")()
    return PostgresStore(url, schema=schema)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An empty store, once per backend (overrides the SQLite-only root fixture)."""
    s = open_backend(request.param, tmp_path, request)
    yield s
    s.close()


@pytest.fixture(scope="session")
def pg_demo_store(postgres_server: str) -> Iterator[Any]:
    """A PostgreSQL store holding the same demo patient as the root ``demo_store``."""
    from ehrqa.store.postgres import PostgresStore

    schema = f"ehrqa_test_demo_{uuid.uuid4().hex[:8]}"
    s = PostgresStore(postgres_server, schema=schema)
    report = ingest_paths(s, [demo_dir() / f"patient-{DEMO_PATIENT}.json.gz"])
    assert not report.issues
    yield s
    s.close()
    drop_schema(postgres_server, schema)
