"""The SQLite and PostgreSQL stores choose the same records with many patients stored.

BM25's statistics used to differ: FTS5's ``bm25()`` counted every patient's rows, the
PostgreSQL store the patient's own, so selections parted once a second patient arrived.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_QUESTIONS, demo_dir
from ehrqa.select import get_selector
from ehrqa.store import SqliteStore
from store.conftest import drop_schema

JAVA_SYNTHEA = Path("/work/shared/data/java-synthea")
QUESTIONS = (
    *DEMO_QUESTIONS,
    "What was my last blood pressure?",
    "What vaccines have I had?",
    "Do I have any allergies?",
    "What was my cholesterol?",
)


def bundles() -> list[Path]:
    """The 6 demo patients and the 14 smallest Java-Synthea patients: 20 in all."""
    java = sorted(
        (p for p in JAVA_SYNTHEA.glob("*_*.json.gz") if "Information" not in p.name),
        key=lambda p: (p.stat().st_size, p.name),
    )
    if len(java) < 14:
        pytest.skip(f"needs the Java-Synthea sample patients in {JAVA_SYNTHEA}")
    return sorted(demo_dir().glob("patient-*.json.gz")) + java[:14]


@pytest.fixture(scope="module")
def stores(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SqliteStore, Any]]:
    from ehrqa.store.postgres import PostgresStore

    files = bundles()
    sqlite = SqliteStore(tmp_path_factory.mktemp("many") / "store.sqlite3")
    schema = f"ehrqa_test_many_{uuid.uuid4().hex[:8]}"
    postgres = PostgresStore(postgres_server, schema=schema)
    try:
        for store in (sqlite, postgres):
            ingest_paths(store, files)
        yield sqlite, postgres
    finally:
        sqlite.close()
        postgres.close()
        drop_schema(postgres_server, schema)


def test_twenty_patients_are_stored(stores: tuple[SqliteStore, Any]) -> None:
    sqlite, postgres = stores
    assert len(sqlite.patients()) >= 20
    assert postgres.patients() == sqlite.patients()


@pytest.mark.parametrize("name", ["default", "bm25"])
def test_selectors_choose_the_same_records_for_every_patient(
    stores: tuple[SqliteStore, Any], name: str
) -> None:
    sqlite, postgres = stores
    selector = get_selector(name)
    differing = []
    chosen = 0
    for summary in sqlite.patients():
        for question in QUESTIONS:
            want = selector.select(sqlite, summary.id, question, DEMO_NOW)
            got = selector.select(postgres, summary.id, question, DEMO_NOW)
            chosen += bool(want.items)
            same = [i.record.ref for i in got.items] == [i.record.ref for i in want.items]
            if not same or got.candidates != want.candidates:
                differing.append((summary.id, question))
            else:
                assert [i.score for i in got.items] == pytest.approx(
                    [i.score for i in want.items], rel=1e-6
                )
    assert differing == []
    assert chosen >= len(QUESTIONS)  # not all abstentions


def test_search_scores_are_equal_for_every_patient(stores: tuple[SqliteStore, Any]) -> None:
    sqlite, postgres = stores
    for summary in sqlite.patients():
        for terms in (["glucose"], ["blood pressure", "systolic"], ["influenza", "vaccine"]):
            want = sqlite.search(summary.id, terms)
            got = postgres.search(summary.id, terms)
            assert [r.ref for r, _ in got] == [r.ref for r, _ in want], (summary.id, terms)
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-9)
