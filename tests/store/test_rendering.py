"""Texts rendered by an older ehrqa are rendered again when a store is opened.

Each backend test makes a store stale as an older ehrqa would have left it: texts (and
their lexical index entries) as the older rendering made them, and no render version
stored (version 1). The ``store`` fixture runs each test against SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import PATIENT_ID, bundle, observation, patient, write_json
from ehrqa.fhir import render as render_module
from ehrqa.fhir.render import RENDER_VERSION, render
from ehrqa.ingest.files import ingest_paths
from ehrqa.store import SqliteStore, rendering
from ehrqa.store.rendering import (
    PROGRESS_KEY,
    VERSION_KEY,
    RenderState,
    StoredText,
    progress,
    rerender,
)

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"
PERSON = patient(
    extension=[
        {
            "url": f"{US_CORE}race",
            "extension": [
                {"url": "ombCategory", "valueCoding": {"code": "2106-3", "display": "White"}},
                {"url": "text", "valueString": "White"},
            ],
        },
        {
            "url": f"{US_CORE}ethnicity",
            "extension": [{"url": "text", "valueString": "Not Hispanic or Latino"}],
        },
    ]
)
# The Patient line of the rendering before version 2, which named neither.
OLD_PATIENT_TEXT = render({k: v for k, v in PERSON.items() if k != "extension"})
NOTICE = "re-rendered the record texts"


def reopen(store: Any) -> Any:
    """A second store object on the same file or schema."""
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path)
    from ehrqa.store.postgres import PostgresStore

    return PostgresStore(store.conninfo, schema=store.schema)


def make_stale(store: Any, texts: dict[str, str]) -> None:
    """Store ``texts`` (by ref) with their index entries, and forget the render version,
    as an ehrqa from before render versions left its stores."""
    if isinstance(store, SqliteStore):
        db = store._db
        with store.transaction():
            for ref, text in texts.items():
                rowid = db.execute("SELECT rowid FROM resources WHERE ref = ?", (ref,)).fetchone()
                db.execute("UPDATE resources SET text = ? WHERE rowid = ?", (text, rowid[0]))
                db.execute("UPDATE fts SET body = ? WHERE rowid = ?", (text, rowid[0]))
            db.execute("DELETE FROM meta")
        return
    from ehrqa.store import postgres as pg

    with store.transaction(), store._connection() as conn:
        for ref, text in texts.items():
            body, who = pg.tokenize([text, PATIENT_ID])
            conn.execute(
                "UPDATE resources SET text = %s, doc_len = %s, tsv = %s::tsvector WHERE ref = %s",
                [text, len(body) + len(who), pg.to_tsvector_text(body), ref],
            )
        conn.execute("DELETE FROM meta")


def notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(NOTICE)]


def test_a_stale_patient_line_is_rendered_again_once(
    store: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = [PERSON, observation("a1", "2024-11-02", 7.8)]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(*resources))])
    current = {r.ref: r.text for r in store.iter_records()}
    assert "race White; ethnicity Not Hispanic or Latino" in current["Patient/p1"]
    make_stale(store, {"Patient/p1": OLD_PATIENT_TEXT})
    assert store.get("Patient/p1").text == OLD_PATIENT_TEXT
    assert store.search(PATIENT_ID, ["hispanic"]) == []
    assert store.render_version == 1

    caplog.set_level(logging.WARNING, logger="ehrqa.store.rendering")
    upgraded = reopen(store)
    try:
        assert {r.ref: r.text for r in upgraded.iter_records()} == current
        assert [r.ref for r, _ in upgraded.search(PATIENT_ID, ["hispanic"])] == ["Patient/p1"]
        assert [r.ref for r, _ in upgraded.search(PATIENT_ID, ["white"])] == ["Patient/p1"]
        assert upgraded.render_version == RENDER_VERSION
    finally:
        upgraded.close()
    [notice] = notices(caplog)
    assert f"for render version {RENDER_VERSION} (they had 1): 2 records read, 1 changed" in notice
    assert "Ada" not in notice and PATIENT_ID not in notice

    def no_work(*_: Any) -> None:
        raise AssertionError("an up-to-date store was re-rendered")

    monkeypatch.setattr(type(store), "_rerender_batch", no_work)
    caplog.clear()
    reopen(store).close()
    assert notices(caplog) == []


def test_a_reference_is_resolved_as_ingestion_resolves_it(store: Any, tmp_path: Path) -> None:
    medication = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {"coding": [{"system": "x", "code": "1", "display": "metformin 500 MG"}]},
    }
    order = {
        "resourceType": "MedicationRequest",
        "id": "r1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "authoredOn": "2024-01-02",
        "medicationReference": {"reference": "Medication/m1"},
    }
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(PERSON, medication, order))])
    ingested = store.get("MedicationRequest/r1").text
    assert "metformin 500 MG" in ingested
    make_stale(store, {"MedicationRequest/r1": "[MedicationRequest/r1] stale"})
    upgraded = reopen(store)
    try:
        assert upgraded.get("MedicationRequest/r1").text == ingested
        assert upgraded.search(PATIENT_ID, ["metformin"])[0][0].ref == "MedicationRequest/r1"
    finally:
        upgraded.close()


def test_an_interrupted_rerender_keeps_the_old_version_and_resumes(
    store: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = [PERSON, *(observation(f"o{n}", "2024-01-01", n) for n in range(5))]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(*resources))])
    current = {r.ref: r.text for r in store.iter_records()}
    make_stale(store, {ref: f"[{ref}] stale" for ref in current})
    monkeypatch.setattr(rendering, "RENDER_BATCH", 2)
    calls: list[str] = []
    crash = [True]

    def crash_on_the_third(resource: dict[str, Any], **kwargs: Any) -> str:
        calls.append(resource["id"])
        if crash[0] and len(calls) == 3:
            raise RuntimeError("killed")
        return render_module.render(resource, **kwargs)

    monkeypatch.setattr(rendering, "render", crash_on_the_third)
    with pytest.raises(RuntimeError, match="killed"):
        reopen(store)
    assert store.render_version == 1  # the first batch committed, the version did not
    texts = [r.text for r in store.iter_records()]
    assert sum(text.endswith("stale") for text in texts) == len(texts) - 2

    calls.clear()
    crash[0] = False
    caplog.set_level(logging.WARNING, logger="ehrqa.store.rendering")
    resumed = reopen(store)
    try:
        assert len(calls) == len(current) - 2  # the committed batch is not rendered again
        assert {r.ref: r.text for r in resumed.iter_records()} == current
        assert resumed.render_version == RENDER_VERSION
    finally:
        resumed.close()
    [notice] = notices(caplog)
    assert "resuming after row" in notice and f"{len(current) - 2} records read" in notice


def test_a_new_store_is_current_without_any_work(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    try:
        assert store.render_version == RENDER_VERSION
        rows = store._db.execute("SELECT key, value FROM meta").fetchall()
        assert {row["key"]: row["value"] for row in rows} == {VERSION_KEY: str(RENDER_VERSION)}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({}, RenderState(1, 0)),
        ({VERSION_KEY: "1", PROGRESS_KEY: progress(40)}, RenderState(1, 40)),
        # Progress towards another version says nothing of this one's.
        ({VERSION_KEY: "1", PROGRESS_KEY: f"{RENDER_VERSION + 1}:40"}, RenderState(1, 0)),
        ({VERSION_KEY: str(RENDER_VERSION + 1)}, RenderState(RENDER_VERSION + 1, 0)),
    ],
)
def test_render_state_from_meta(meta: dict[str, str], expected: RenderState) -> None:
    assert RenderState.from_meta(meta) == expected
    assert expected.current == (expected.version >= RENDER_VERSION)


def test_rerender_returns_only_what_changed() -> None:
    person, lab = PERSON, observation("a1", "2024-11-02", 7.8)

    def stored(row_id: int, resource: dict[str, Any], text: str) -> StoredText:
        return StoredText(row_id, PATIENT_ID, text, orjson.dumps(resource), text)

    rows = [stored(1, person, OLD_PATIENT_TEXT), stored(2, lab, render(lab))]
    [changed] = rerender(rows, lambda refs: {})
    assert changed.id == 1 and changed.text == render(person) == changed.body
