"""Hostile and bad input files at ingest (issue 17): bombs, huge files, bad data stored silently."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import PATIENT_ID, bundle, observation, patient, write_json
from ehrqa.fhir import parse
from ehrqa.ingest import files as ingest
from ehrqa.ingest.files import ingest_paths
from ehrqa.store import SqliteStore

MIB = 1 << 20


def _refs(store: SqliteStore) -> list[str]:
    return sorted(r.ref for r in store.iter_records())


# --- size cap, gzip bombs, streaming ----------------------------------------------------


def test_a_gzip_bomb_is_refused_by_its_trailer_naming_the_file_and_cap(
    store: SqliteStore, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * (8 * MIB)))
    good = write_json(tmp_path / "good.json", bundle(patient()))

    report = ingest_paths(store, [bomb, good], max_bytes=1 * MIB)

    assert report.rejected_files == [str(bomb)]
    message = str(report.issues[0])
    assert message.startswith(str(bomb)) and "1 MiB limit per file" in message
    assert _refs(store) == ["Patient/p1"]


def test_a_gzip_bomb_with_a_forged_trailer_is_refused_by_its_ratio(
    store: SqliteStore, tmp_path: Path
) -> None:
    data = bytearray(gzip.compress(b"[" + b" " * (40 * MIB)))
    data[-4:] = (10).to_bytes(4, "little")  # claims 10 bytes
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(bytes(data))

    report = ingest_paths(store, [bomb])

    assert report.rejected_files == [str(bomb)]
    assert "gzip bomb" in str(report.issues[0])


def test_a_plain_file_over_the_cap_is_refused(store: SqliteStore, tmp_path: Path) -> None:
    path = write_json(tmp_path / "big.json", bundle(patient(), observation("o1", "2024-01-01", 1)))

    report = ingest_paths(store, [path], max_bytes=100)

    assert report.rejected_files == [str(path)]
    assert "100 bytes limit per file" in str(report.issues[0])
    assert store.count() == 0


def _medication_bundle() -> dict[str, Any]:
    medication = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "860975",
                    "display": "Metformin 500 MG",
                }
            ]
        },
    }
    request = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"urn:uuid:{PATIENT_ID}"},
        "medicationReference": {"reference": "urn:uuid:m1"},
        "authoredOn": "2024-01-02",
    }
    obs = [observation(f"o{i}", "2024-01-01", i, note=[{"text": "x" * 200}]) for i in range(50)]
    # The request comes before its Medication: the first pass must map it.
    return bundle(request, patient(), *obs, medication, urn=True)


def test_a_large_bundle_is_streamed_and_stored_like_a_small_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _medication_bundle()
    small = SqliteStore(tmp_path / "small.sqlite3")
    ingest_paths(small, [write_json(tmp_path / "a.json", data)])
    monkeypatch.setattr(parse, "IN_MEMORY_BYTES", 2000)
    streamed = SqliteStore(tmp_path / "streamed.sqlite3")

    report = ingest_paths(streamed, [write_json(tmp_path / "b.json.gz", data, gz=True)])

    assert (report.stats.inserted, report.issues) == (53, [])
    assert [(r.ref, r.text, r.patient_id) for r in streamed.iter_records()] == [
        (r.ref, r.text, r.patient_id) for r in small.iter_records()
    ]
    assert "Metformin" in streamed.get("MedicationRequest/mr1").text


def test_a_large_bundle_broken_half_way_stores_nothing_of_itself(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse, "IN_MEMORY_BYTES", 2000)
    raw = json.dumps(_medication_bundle()).encode()
    broken = tmp_path / "broken.json"
    broken.write_bytes(raw[: len(raw) * 2 // 3])
    good = write_json(tmp_path / "good.json", bundle(patient("p2")))

    report = ingest_paths(store, [broken, good])

    assert report.rejected_files == [str(broken)]
    assert "invalid JSON" in str(report.issues[0]) and "\n" not in str(report.issues[0])
    assert _refs(store) == ["Patient/p2"]


def test_a_large_single_resource_file_is_read(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse, "IN_MEMORY_BYTES", 100)
    path = write_json(tmp_path / "p.json", patient(address=[{"text": "x" * 500}]))

    report = ingest_paths(store, [path])

    assert (report.stats.inserted, report.issues) == (1, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"resourceType": "Bundle"}]', "expected a JSON object"),
        ('{"resourceType": "Bundle", "entry": {"a": 1}}', "Bundle.entry must be a list"),
    ],
)
def test_a_large_file_of_the_wrong_shape_is_named(
    store: SqliteStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str,
) -> None:
    monkeypatch.setattr(parse, "IN_MEMORY_BYTES", 60)
    path = tmp_path / "x.json"
    path.write_text(text + " " * 100)

    report = ingest_paths(store, [path])

    assert report.rejected_files == [str(path)] and message in str(report.issues[0])


def test_streamed_ingest_memory_stays_well_below_the_file_size(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse, "IN_MEMORY_BYTES", 64 * 1024)
    monkeypatch.setattr(ingest, "UPSERT_BATCH", 50)
    obs = [
        observation(f"o{i}", "2024-01-01", i, note=[{"text": f"note {i} " + "y" * 8000}])
        for i in range(1000)
    ]
    path = write_json(tmp_path / "big.json", bundle(patient(), *obs))
    size = path.stat().st_size  # about 8 MB; the parsed dicts would take more

    tracemalloc.start()
    report = ingest_paths(store, [path], validator="none")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert report.stats.inserted == 1001
    assert peak < size / 4, f"peak {peak / MIB:.1f} MiB for a {size / MIB:.1f} MiB file"


# --- bad data that used to be stored silently ----------------------------------------


def test_two_entries_with_one_id_and_different_content_are_reported(
    store: SqliteStore, tmp_path: Path
) -> None:
    first, second = observation("o1", "2024-01-01", 1.0), observation("o1", "2024-01-01", 2.0)
    path = write_json(tmp_path / "b.json", bundle(patient(), first, second, dict(first)))

    report = ingest_paths(store, [path])

    assert (report.stats.inserted, report.stats.updated, report.skipped_entries) == (2, 0, 1)
    assert report.duplicates == 1
    assert "Observation/o1 is also at" in str(report.issues[0])
    assert str(report.issues[0]).startswith(f"{path} entry[2]: Observation Observation.id: ")
    assert "also at entry[1], with different content" in str(report.issues[0])
    assert store.get("Observation/o1").value == 1.0


def test_strict_rejects_a_file_with_conflicting_duplicates(
    store: SqliteStore, tmp_path: Path
) -> None:
    dup = (observation("o1", "2024-01-01", 1.0), observation("o1", "2024-01-01", 2.0))
    path = write_json(tmp_path / "b.json", bundle(patient(), *dup))

    report = ingest_paths(store, [path], strict=True)

    assert report.rejected_files == [str(path)] and store.count() == 0


@pytest.mark.parametrize(
    ("resource", "path", "message"),
    [
        (patient(birthDate="1999-02-30"), "Patient.birthDate", "not a real calendar date"),
        (
            observation("o1", "2024-02-30T10:00:00Z", 1.0),
            "Observation.effectiveDateTime",
            "not a real calendar date",
        ),
        (observation("..%2F..%2Fx", "2024-01-01", 1.0), "Observation.id", "not a FHIR id"),
        (observation("..", "2024-01-01", 1.0), "Observation.id", "not a FHIR id"),
        (
            observation("o1", "2024-01-01", 1.0, subject={"reference": "Patient/../../etc/passwd"}),
            "Observation.subject.reference",
            "not a reference ehrqa can resolve",
        ),
        (
            observation("o1", "2024-01-01", 1.0, subject={"display": "Ada"}),
            "Observation.subject",
            "cannot tell which patient",
        ),
        (
            observation("o1", "2024-01-01", 1.0, subject={"reference": "#p"}),
            "Observation.subject",
            "cannot tell which patient",
        ),
    ],
)
def test_bad_ids_dates_and_patient_links_are_invalid(
    store: SqliteStore, tmp_path: Path, resource: dict[str, Any], path: str, message: str
) -> None:
    report = ingest_paths(store, [write_json(tmp_path / "b.json", bundle(resource))])

    assert report.skipped_entries == 1 and store.count() == 0
    assert (report.issues[0].path, message in report.issues[0].message) == (path, True)


def test_nothing_patient_scoped_is_stored_without_its_patient(
    store: SqliteStore, tmp_path: Path
) -> None:
    group = observation("o2", "2024-01-01", 1.0, subject={"reference": "Group/g1"})
    path = write_json(tmp_path / "b.json", bundle(patient(), group))

    report = ingest_paths(store, [path])

    assert report.issues == [] and store.get("Observation/o2").patient_id is None


def test_records_of_unknown_patients_are_reported(store: SqliteStore, tmp_path: Path) -> None:
    obs = [observation(f"o{i}", "2024-01-01", i, pid="nobody") for i in range(3)]
    path = write_json(tmp_path / "b.json", bundle(patient(), *obs))

    report = ingest_paths(store, [path])

    assert report.stats.inserted == 4 and report.unknown_patients == ["nobody"]
    assert str(report.issues[0]) == (
        f"{path} entry[1]: 3 records refer to Patient/nobody, which is neither in the "
        "ingested files nor in the store (stored; ingest the patient to link them)"
    )


def test_a_patient_in_a_later_file_or_in_the_store_is_known(
    store: SqliteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "bulk"
    folder.mkdir()
    lines = [orjson.dumps(observation("o1", "2024-01-01", 1.0, pid="p7"))]
    (folder / "Observation.ndjson").write_bytes(b"\n".join(lines))
    (folder / "Patient.ndjson").write_bytes(orjson.dumps(patient("p7")))
    ingest_paths(store, [write_json(tmp_path / "p1.json", patient())])

    report = ingest_paths(
        store, [folder, write_json(tmp_path / "o.json", observation("o2", "2024-01-01", 2))]
    )

    assert (report.issues, report.unknown_patients, report.stats.inserted) == ([], [], 3)


def test_bad_ndjson_lines_are_skipped_one_by_one_with_their_numbers(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "lines.ndjson"
    path.write_bytes(
        b'{"resourceType": "Patient", "id": "p5"}\n{oops\n\n[1]\n'
        b'{"resourceType": "Patient", "id": "p6"}'
    )

    report = ingest_paths(store, [path])

    assert report.rejected_files == [] and report.skipped_entries == 2
    assert len(report.issues) == 2
    assert str(report.issues[0]).startswith(f"{path}:line 2: invalid JSON (")
    assert str(report.issues[1]) == f"{path}:line 4: entry has no resource object"
    assert _refs(store) == ["Patient/p5", "Patient/p6"]


def test_an_over_long_ndjson_line_is_skipped(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse, "MAX_LINE_BYTES", 64)
    path = tmp_path / "lines.ndjson.gz"
    long = orjson.dumps(patient("p5", address=[{"text": "x" * 300}]))
    path.write_bytes(
        gzip.compress(long + b"\n" + orjson.dumps({"resourceType": "Patient", "id": "p6"}))
    )

    report = ingest_paths(store, [path])

    assert str(report.issues[0]) == f"{path}:line 1: line longer than 64 bytes"
    assert _refs(store) == ["Patient/p6"]


def test_a_garbage_file_keeps_a_bounded_number_of_issues(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "junk.ndjson"
    path.write_bytes(b"nope\n" * 1000)

    report = ingest_paths(store, [path])

    assert report.skipped_entries == 1000 and len(report.issues) == 201
    assert str(report.issues[-1]) == f"{path}: and 800 more problems"


def test_a_patient_whose_entry_is_invalid_is_unknown_to_its_records(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = write_json(
        tmp_path / "b.json",
        bundle(patient(birthDate="1999-02-30"), observation("o1", "2024-01-01", 1.0)),
    )

    report = ingest_paths(store, [path])

    assert report.unknown_patients == [PATIENT_ID] and _refs(store) == ["Observation/o1"]


def test_the_cli_cap_and_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrqa.cli.main import main

    dup = (observation("o1", "2024-01-01", 1.0), observation("o1", "2024-01-01", 2.0))
    path = write_json(tmp_path / "b.json", bundle(patient(), *dup))
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * (3 * MIB)))
    home = str(tmp_path / "home")

    with pytest.raises(SystemExit) as exit_info:
        main(["--home", home, "ingest", "--max-file-mb", "2", str(path), str(bomb)])

    out, err = capsys.readouterr()
    assert exit_info.value.code == 1
    assert "2 new, 0 updated" in out and "1 invalid (1 duplicate ids)" in out
    assert f"invalid: {bomb}: larger than the 2 MiB limit per file" in err
    assert "Traceback" not in out + err


def test_an_issue_is_one_line_whatever_the_file_holds(store: SqliteStore, tmp_path: Path) -> None:
    # Found by benchmarks/fuzz_ingest.py: a key with a newline in it forged a second line.
    bad = patient(**{"x\ninvalid: forged\x1b[31m": 1})
    report = ingest_paths(store, [write_json(tmp_path / "b.json", bundle(bad))])

    text = str(report.issues[0])
    assert "\n" not in text and "\x1b" not in text and "x\\ninvalid: forged\\x1b[31m" in text
