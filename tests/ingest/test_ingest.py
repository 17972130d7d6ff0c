"""Ingestion: valid, invalid, duplicate, newer versions, strict mode, huge bundles."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from conftest import PATIENT_ID, bundle, observation, patient, write_json
from ehrqa.core.errors import NotFoundError
from ehrqa.ingest.files import ingest_paths
from ehrqa.store import SqliteStore


def test_bundle_is_stored_with_urn_references_rewritten(store: SqliteStore, tmp_path: Path) -> None:
    obs = observation("o1", "2024-11-02", 7.8)
    obs["subject"] = {"reference": f"urn:uuid:{PATIENT_ID}"}
    path = write_json(tmp_path / "b.json", bundle(patient(), obs, urn=True))

    report = ingest_paths(store, [path])

    assert (report.files, report.stats.inserted, report.issues) == (1, 2, [])
    record = store.get("Observation/o1")
    assert record.patient_id == PATIENT_ID
    assert record.resource["subject"]["reference"] == f"Patient/{PATIENT_ID}"
    assert store.patient(PATIENT_ID).resource_count == 2


def test_reingesting_the_same_bundle_changes_nothing(store: SqliteStore, tmp_path: Path) -> None:
    path = write_json(tmp_path / "b.json", bundle(patient(), observation("o1", "2024-11-02", 7.8)))
    ingest_paths(store, [path])
    before = [(r.ref, r.text) for r in store.iter_records()]

    again = ingest_paths(store, [path])

    assert (again.stats.inserted, again.stats.updated, again.stats.unchanged) == (0, 0, 2)
    assert [(r.ref, r.text) for r in store.iter_records()] == before


def test_newer_version_replaces_and_older_is_kept_out(store: SqliteStore, tmp_path: Path) -> None:
    v1 = observation(
        "o1", "2024-11-02", 7.8, meta={"versionId": "1", "lastUpdated": "2024-11-02T10:00:00Z"}
    )
    v2 = observation(
        "o1", "2024-11-02", 6.9, meta={"versionId": "2", "lastUpdated": "2024-11-03T10:00:00Z"}
    )
    ingest_paths(store, [write_json(tmp_path / "v1.json", bundle(patient(), v1))])

    newer = ingest_paths(store, [write_json(tmp_path / "v2.json", bundle(v2))])
    older = ingest_paths(store, [write_json(tmp_path / "v1again.json", bundle(v1))])

    assert newer.stats.updated == 1 and older.stats.stale == 1
    assert store.get("Observation/o1").value == 6.9
    assert store.search(PATIENT_ID, ["6.9"]) and not store.search(PATIENT_ID, ["7.8"])


def test_invalid_entry_is_reported_with_location_type_and_path(
    store: SqliteStore, tmp_path: Path
) -> None:
    bad = observation("bad", "2024-11-02", 7.8)
    bad["valueQuantity"]["value"] = "seven"
    path = write_json(
        tmp_path / "b.json", bundle(patient(), bad, observation("o2", "2024-10-01", 7.1))
    )

    report = ingest_paths(store, [path])

    assert report.stats.inserted == 2 and report.skipped_entries == 1
    issue = report.issues[0]
    assert issue.location == f"{path} entry[1]"
    assert issue.resource_type == "Observation"
    assert issue.path == "Observation.valueQuantity.value"
    with pytest.raises(NotFoundError):
        store.get("Observation/bad")


def test_strict_rejects_the_whole_bundle_and_keeps_what_was_stored(
    store: SqliteStore, tmp_path: Path
) -> None:
    ingest_paths(
        store,
        [
            write_json(
                tmp_path / "first.json", bundle(patient(), observation("o1", "2024-01-01", 7.0))
            )
        ],
    )
    bad = observation("bad", "2024-11-02", 7.8)
    del bad["status"]
    changed = observation("o1", "2024-01-01", 9.9)
    path = write_json(
        tmp_path / "b.json", bundle(changed, observation("o2", "2024-10-01", 7.1), bad)
    )

    report = ingest_paths(store, [path], strict=True)

    assert report.rejected_files == [str(path)]
    assert store.get("Observation/o1").value == 7.0
    assert [r.ref for r in store.iter_records()] == ["Observation/o1", "Patient/p1"]


def test_a_failure_mid_file_writes_nothing_of_that_file(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_json(tmp_path / "b.json", bundle(patient(), observation("o1", "2024-01-01", 7.0)))
    original = store._insert
    calls = {"n": 0}

    def failing_insert(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "_insert", failing_insert)
    with pytest.raises(RuntimeError):
        ingest_paths(store, [path])
    assert store.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.json", b"{not json", "invalid JSON"),
        ("list.json", b"[1, 2]", "expected a JSON object"),
        ("broken.json.gz", b"not gzip at all", "not a valid gzip file"),
        ("cut.ndjson.gz", gzip.compress(b'{"resourceType": "Patient"}\n')[:-9], "gzip"),
    ],
)
def test_unreadable_files_are_reported_and_the_batch_goes_on(
    store: SqliteStore, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    good = write_json(tmp_path / "good.json", bundle(patient("p2")))

    report = ingest_paths(store, [tmp_path / name, good])

    assert report.rejected_files == [str(tmp_path / name)]
    assert message in str(report.issues[0])
    assert store.patient("p2").id == "p2"


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        ({"resource": {"id": "x"}}, "resourceType", "missing resourceType"),
        ({"resource": {"resourceType": "Observation"}}, "Observation.id", "missing id"),
        ({"fullUrl": "x"}, "", "no resource object"),
        (
            {"resource": {"resourceType": "Patient", "id": "p9"}, "request": {"method": "DELETE"}},
            "request.method",
            "not applied",
        ),
        (
            {"resource": {"resourceType": "Nonsense", "id": "n1"}},
            "Nonsense",
            "not a FHIR R4 resource type",
        ),
    ],
)
def test_bad_entries_are_named(
    store: SqliteStore, tmp_path: Path, entry: dict, path: str, message: str
) -> None:
    data = {"resourceType": "Bundle", "type": "collection", "entry": [entry]}
    report = ingest_paths(store, [write_json(tmp_path / "b.json", data)])
    assert report.skipped_entries == 1
    assert report.issues[0].path == path
    assert message in report.issues[0].message


def test_ndjson_gz_and_folders(store: SqliteStore, tmp_path: Path) -> None:
    folder = tmp_path / "bulk"
    folder.mkdir()
    lines = [orjson.dumps(r) for r in (patient(), observation("o1", "2024-11-02", 7.8))]
    (folder / "data.ndjson.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    (folder / "README.txt").write_text("ignored")

    report = ingest_paths(store, [folder])

    assert (report.files, report.stats.inserted) == (1, 2)


def test_missing_path_is_a_clear_error(store: SqliteStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        ingest_paths(store, [tmp_path / "nope"])


def test_huge_bundle(store: SqliteStore, tmp_path: Path) -> None:
    n = 20_000
    obs = [observation(f"o{i}", f"20{10 + i % 15}-01-{1 + i % 28:02d}", i / 10) for i in range(n)]
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(bundle(patient(), *obs)))

    report = ingest_paths(store, [path])

    assert report.stats.inserted == n + 1 and not report.issues
    assert store.patient(PATIENT_ID).resource_count == n + 1
