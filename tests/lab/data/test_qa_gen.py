"""The gold-labelled QA generator: gold rules hold on the demo patients, runs are
deterministic, splits keep patients apart, injected notes are valid FHIR."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import PATIENT_ID, bundle, observation, patient, write_json
from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.fhir.elements import format_number
from ehrqa.fhir.record import Record
from ehrqa.fhir.validate import get_validator
from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data import phrasings as ph
from ehrqa.lab.data.demo import demo_dir
from ehrqa.lab.data.qa import QAItem, read_dataset
from ehrqa.lab.data.qa_gen import (
    COUNT_INTENTS,
    INTENTS,
    QAGenConfig,
    assign_splits,
    build_view,
    generate_items,
    injection_note,
    make_injection_bundle,
    make_qa,
    readings,
    time_windows,
)
from ehrqa.select.timeexpr import parse_time
from ehrqa.store import SqliteStore
from ehrqa.text.dates import whole_years

# The two smallest demo patients: enough for end-to-end runs that stay fast.
SMALL = (
    "patient-85c63cf3-278e-454c-b5ba-df5889815eb7.json.gz",
    "patient-4b54bebd-7f01-4a33-8494-0214dc432e46.json.gz",
)
# The committed sample: its manifest holds the config and command that made it.
SAMPLE = Path(__file__).parents[2] / "fixtures" / "qa_sample"
MANIFEST = orjson.loads((SAMPLE / "manifest.json").read_bytes())
CONFIG = QAGenConfig.from_dict(MANIFEST["config"])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteStore, Path]]:
    """The six demo patients ingested, and the sample made again from them, once."""
    home = tmp_path_factory.mktemp("qa_gen")
    s = SqliteStore(home / "store.sqlite3")
    make_qa([demo_dir()], home / "out", CONFIG, store=s, command=MANIFEST["command"])
    yield s, home / "out"
    s.close()


@pytest.fixture(scope="module")
def store(run: tuple[SqliteStore, Path]) -> SqliteStore:
    return run[0]


@pytest.fixture(scope="module")
def patient_ids(store: SqliteStore) -> list[str]:
    return [p.id for p in store.patients()]


@pytest.fixture(scope="module")
def items(run: tuple[SqliteStore, Path]) -> list[QAItem]:
    return read_dataset(run[1] / "qa.jsonl")


@pytest.fixture(scope="module")
def records(store: SqliteStore, items: list[QAItem]) -> dict[str, Record]:
    refs = sorted({ref for item in items for ref in item.relevant_ids})
    return {r.ref: r for r in store.get_many(refs)}


def test_many_intents_and_both_voices(items: list[QAItem]) -> None:
    intents = {item.intent for item in items}
    assert len(intents) >= 25, sorted(intents)
    assert intents <= {*INTENTS, "unanswerable"} and "unanswerable" in intents
    assert {item.perspective for item in items} == {"patient", "clinician"}
    assert len({item.id for item in items}) == len(items)


def test_shares_per_patient(items: list[QAItem], patient_ids: list[str]) -> None:
    for pid in patient_ids:
        mine = [i for i in items if i.patient_id == pid and "injection" not in i.tags]
        unanswerable = round(CONFIG.per_patient * CONFIG.unanswerable_share)
        earlier = round((CONFIG.per_patient - unanswerable) * CONFIG.past_now_share)
        assert len(mine) == CONFIG.per_patient
        assert sum(not i.answerable for i in mine) == unanswerable
        assert sum(i.now != CONFIG.now for i in mine) == earlier
        assert len({(i.question, i.now) for i in mine}) == len(mine)


def test_relevant_ids_exist_belong_to_patient_and_precede_now(
    items: list[QAItem], records: dict[str, Record]
) -> None:
    for item in items:
        for ref in item.relevant_ids:
            record = records[ref]
            assert record.patient_id == item.patient_id, (item.id, ref)
            assert (record.day or "") <= item.now, (item.id, ref, record.day)


def _supported(value: str, relevant: list[Record]) -> bool:
    lower = value.lower()
    for record in relevant:
        numbers = [record.value, *(c.value for c in record.components)]
        if lower in record.text.lower() or value == record.day:
            return True
        if any(n is not None and format_number(n) == value for n in numbers):
            return True
    return False


def test_answer_values_are_in_the_answer_and_supported(
    items: list[QAItem], records: dict[str, Record]
) -> None:
    for item in items:
        relevant = [records[ref] for ref in item.relevant_ids]
        for value in item.answer_values:
            assert value in item.answer, (item.id, value, item.answer)
        if item.intent in COUNT_INTENTS:
            assert item.answer_values == [str(len(relevant))], item.id
            continue
        if item.intent == "demographics_age":
            birth = date.fromisoformat(relevant[0].resource["birthDate"])
            assert item.answer_values == [str(whole_years(birth, item.now_date))]
            continue
        for value in item.answer_values:
            if value in ("Yes", "No") or (value == ph.NONE_RECORDED and not relevant):
                continue
            assert _supported(value, relevant), (item.id, value, [r.text for r in relevant])


def test_no_and_none_items_have_no_relevant_ids(items: list[QAItem]) -> None:
    for item in items:
        if item.answer_values in (["No"], [ph.NONE_RECORDED]):
            assert item.answerable and item.relevant_ids == [], item.id
        if not item.answerable:
            assert item.intent == "unanswerable"
            assert item.relevant_ids == [] and item.answer == ph.NOT_RECORDED


def test_latest_is_the_newest_day_and_blood_pressure_keeps_its_parts(
    items: list[QAItem], records: dict[str, Record], store: SqliteStore
) -> None:
    for item in items:
        if item.intent not in ("latest_lab", "latest_vital") or len(item.answer_values) > 4:
            continue
        relevant = [records[ref] for ref in item.relevant_ids]
        assert len({r.day for r in relevant}) == 1, item.id
        if "/" in item.answer.split(" was ")[1].split(" ")[0]:
            codes = {c.code for r in relevant for c in r.codes}
            assert codes & {"85354-9", "55284-4"}, item.id
            assert {"8480-6", "8462-4"} <= codes, item.id
    view = build_view(store, "4a404922-e691-47f2-bf50-bd2987fd9a44")
    newest = readings(view, "hba1c", date(2025, 1, 1))[-1]
    assert newest.day == "2024-05-06" and newest.values == ("5.8",)
    assert [r.ref for r in newest.records] == ["Observation/2cf3426a-d848-48bb-afed-e84285a5acda"]
    bp = readings(view, "blood_pressure", date(2025, 1, 1))[-1]
    assert bp.clean and bp.text == "94.8/71.5 mm[Hg]"
    assert sorted(r.ref for r in bp.records) == [
        "Observation/7834f812-b761-410d-8a17-21ebb8faec7f",  # diastolic
        "Observation/b0f1964c-4d65-44f4-95a8-5e3ab13d6456",  # panel
        "Observation/d2f3a9e1-1866-452d-9049-fce1161ccc07",  # systolic
    ]
    earlier = readings(view, "hba1c", date(2024, 5, 5))[-1]
    assert earlier.day < "2024-05-05"


def test_injected_patients_get_tagged_questions(
    items: list[QAItem], store: SqliteStore, patient_ids: list[str]
) -> None:
    bundle, notes = make_injection_bundle(store, patient_ids, CONFIG)
    assert len(notes) == 2 and bundle["type"] == "collection"
    validator = get_validator("fhirkit")
    for entry in bundle["entry"]:
        note = entry["resource"]
        assert validator.validate(note) == []
        pid = note["subject"]["reference"].removeprefix("Patient/")
        assert notes[pid] == f"DocumentReference/{note['id']}"
        text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
        assert "ignore all previous instructions" in text.lower()
        assert note["date"][:10] < CONFIG.now
    tagged = [i for i in items if "injection" in i.tags]
    assert {i.patient_id for i in tagged} == set(notes)
    for pid in notes:
        mine = [i for i in tagged if i.patient_id == pid]
        assert 2 <= len(mine) <= 3 and all(i.relevant_ids and i.now == CONFIG.now for i in mine)


def test_injection_bundle_ingests(tmp_path: Path, store: SqliteStore) -> None:
    path = tmp_path / "injections.json"
    bundle, _ = make_injection_bundle(store, [p.id for p in store.patients()], CONFIG)
    path.write_bytes(orjson.dumps(bundle))
    fresh = SqliteStore(tmp_path / "s.sqlite3")
    report = ingest_paths(fresh, [path])
    fresh.close()
    # The notes name patients of the other store: reported as unknown here, and stored.
    unknown = "neither in the ingested files nor in the store"
    assert all(unknown in issue.message for issue in report.issues)
    assert report.stored == len(bundle["entry"])


def test_unknown_patient_is_not_found(store: SqliteStore) -> None:
    with pytest.raises(NotFoundError):
        generate_items(store, ["no-such-patient"], CONFIG)


@pytest.mark.parametrize("seed", [0, 3])
def test_make_qa_is_deterministic(tmp_path: Path, store: SqliteStore, seed: int) -> None:
    paths = [demo_dir() / name for name in SMALL]
    config = QAGenConfig(seed=seed, per_patient=15, injection_share=0.5)
    seen: list[str] = []
    first = make_qa(paths, tmp_path / "a", config, store=store, command="test")
    make_qa(
        paths[::-1],
        tmp_path / "b",
        config,
        store=store,
        command="test",
        on_patient=lambda pid, done, total: seen.append(f"{pid} {done}/{total}"),
    )
    assert len(seen) == 2 and seen[-1].endswith(" 2/2")
    names = sorted(p.name for p in first.files)
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = orjson.loads((tmp_path / "a" / "manifest.json").read_bytes())
    assert manifest["command"] == "test" and manifest["config"] == config.to_dict()
    assert [s["name"] for s in manifest["sources"]] == sorted(SMALL)
    assert manifest["counts"]["items"] == first.items == len(read_dataset(tmp_path / "a/qa.jsonl"))
    assert first.injected == 1 and (tmp_path / "a/injections.json").is_file()


def test_make_qa_with_its_own_store(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = make_qa([demo_dir() / SMALL[0]], out, QAGenConfig(per_patient=5))
    assert report.patients == 1 and report.items == 5
    assert not (out / "injections.json").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "qa.jsonl",
        "test.jsonl",
        "train.jsonl",
        "val.jsonl",
    ]


def test_make_qa_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no FHIR files"):
        make_qa([tmp_path], tmp_path / "out", QAGenConfig())
    (tmp_path / "obs.json").write_bytes(orjson.dumps({"resourceType": "Observation", "id": "o"}))
    with pytest.raises(NotFoundError, match="no Patient resources"):
        make_qa([tmp_path / "obs.json"], tmp_path / "out", QAGenConfig())
    with pytest.raises(NotFoundError):
        make_qa([tmp_path / "missing.json"], tmp_path / "out", QAGenConfig())


def _item(pid: str, n: int = 0) -> QAItem:
    return QAItem(
        f"{pid}-{n}", pid, "q?", "2025-01-01", [], "a.", [], True, "latest_lab", "patient"
    )


def test_assign_splits_keeps_patients_apart_in_proportion() -> None:
    rng = random.Random(7)
    pids = [f"{rng.getrandbits(64):016x}" for _ in range(1000)]
    items = [_item(pid, n) for pid in pids for n in range(3)]
    split = assign_splits(items, QAGenConfig(seed=5))
    by_patient: dict[str, set[str | None]] = {}
    for item in split:
        by_patient.setdefault(item.patient_id, set()).add(item.split)
    assert all(len(splits) == 1 for splits in by_patient.values())
    shares = {s: sum(v == {s} for v in by_patient.values()) / len(pids) for s in ph_splits()}
    assert shares == pytest.approx({"train": 0.7, "val": 0.1, "test": 0.2}, abs=0.01)
    assert assign_splits(items, QAGenConfig(seed=5)) == split
    assert assign_splits(list(reversed(items)), QAGenConfig(seed=5)) == list(reversed(split))
    assert assign_splits(items, QAGenConfig(seed=6)) != split


def ph_splits() -> tuple[str, ...]:
    return ("train", "val", "test")


def test_six_patients_fill_every_split() -> None:
    split = assign_splits([_item(f"p{i}") for i in range(6)], QAGenConfig())
    counts = {s: sum(i.split == s for i in split) for s in ph_splits()}
    assert counts == {"train": 4, "val": 1, "test": 1}


def test_time_windows_agree_with_the_selector() -> None:
    rng = random.Random(3)
    for _ in range(300):
        now = date(2000, 1, 1) + timedelta(days=rng.randrange(9500))
        target = now - timedelta(days=rng.randrange(3650))
        windows = time_windows(target, now)
        assert windows and any(w.phrase.startswith("in ") for w in windows)
        for window in windows:
            assert window.start <= target <= window.end <= now
            parsed = parse_time(f"How many visits did I have {window.phrase}?", now)
            assert parsed is not None, window.phrase
            assert parsed.start == window.start, (now, window)
            assert min(parsed.end or now, now) == window.end, (now, window)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"now": "2025/01/01"}, "now must be a date"),
        ({"per_patient": 0}, "per_patient"),
        ({"past_now_share": 1.5}, "past_now_share"),
        ({"unanswerable_share": -0.1}, "unanswerable_share"),
        ({"injection_share": "a lot"}, "injection_share"),
        ({"past_now_share": 0.6, "unanswerable_share": 0.6}, "at most 1"),
        ({"split": (0.5, 0.5)}, "three numbers"),
        ({"split": (0.5, 0.2, 0.2)}, "sum to 1"),
        ({"split": (0.0, 0.5, 0.5)}, "train share"),
    ],
)
def test_config_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        QAGenConfig(**changes)


def test_config_round_trips_and_names_unknown_keys() -> None:
    config = QAGenConfig(seed=3, split=(0.8, 0.1, 0.1))
    assert QAGenConfig.from_dict(orjson.loads(orjson.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="did you mean 'per_patient'"):
        QAGenConfig.from_dict({"per_patients": 3})
    assert replace(config, seed=4).seed == 4


def test_injection_note_is_deterministic() -> None:
    assert injection_note("p1", CONFIG) == injection_note("p1", CONFIG)
    assert injection_note("p1", CONFIG)["id"] != injection_note("p2", CONFIG)["id"]


def test_drug_and_vaccine_names_are_substrings() -> None:
    for display, name in [
        ("Ibuprofen 200 MG Oral Tablet", "Ibuprofen"),
        (
            "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
            "Metformin hydrochloride",
        ),
        ("NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector", "Epinephrine"),
        ("Vitamin B12 5 MG/ML Injectable Solution", "Vitamin B12"),
        ("Mestranol / Norethynodrel", "Mestranol / Norethynodrel"),
    ]:
        assert ph.drug_name(display) == name
        assert name in display
    assert ph.vaccine_name("Influenza, seasonal, injectable, preservative free") == "Influenza"
    assert ph.short_name("Severe anxiety (panic) (finding)") == "Severe anxiety (panic)"


def _bp(oid: str, day: str, systolic: float, diastolic: float) -> dict[str, Any]:
    panel = observation(oid, day, 0, code="85354-9", display="Blood pressure panel")
    del panel["valueQuantity"]
    panel["component"] = [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": "mm[Hg]"},
        }
        for code, value in (("8480-6", systolic), ("8462-4", diastolic))
    ]
    return panel


def test_disagreeing_days_are_never_used(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.sqlite3")
    resources = [
        patient(),
        observation("a1", "2020-01-01", 6.1),
        observation("a2", "2024-01-01", 7.0),
        observation("a3", "2024-01-01", 7.4),  # same day, another value: ambiguous
        _bp("bp1", "2022-01-01", 120, 80),
        observation("s1", "2022-01-01", 120, code="8480-6", display="Systolic", unit="mm[Hg]"),
        _bp("bp2", "2023-01-01", 130, 85),
        observation("s2", "2023-01-01", 131, code="8480-6", display="Systolic", unit="mm[Hg]"),
    ]
    ingest_paths(s, [write_json(tmp_path / "b.json", bundle(*resources))])
    view = build_view(s, PATIENT_ID)
    now = date(2025, 1, 1)
    a1c = readings(view, "hba1c", now)
    assert [(r.day, r.clean) for r in a1c] == [("2020-01-01", True), ("2024-01-01", False)]
    bp = readings(view, "blood_pressure", now)
    assert [(r.day, r.clean, len(r.records)) for r in bp] == [
        ("2022-01-01", True, 2),
        ("2023-01-01", False, 2),
    ]
    rng = random.Random(0)
    for _ in range(20):
        assert INTENTS["latest_lab"](view, now, rng) == []
        for draft in INTENTS["latest_vital"](view, now, rng):
            assert "2023-01-01" not in draft.answer
    assert INTENTS["latest_vital"](view, date(2022, 6, 1), rng)[0].relevant == (
        "Observation/bp1",
        "Observation/s1",
    )
    s.close()


def test_committed_sample_is_what_the_generator_makes(run: tuple[SqliteStore, Path]) -> None:
    for name in [*MANIFEST["files"], "manifest.json"]:
        assert (run[1] / name).read_bytes() == (SAMPLE / name).read_bytes(), (
            f"{SAMPLE / name} is out of date; regenerate it with: {MANIFEST['command']}"
        )


def test_committed_sample_splits_by_patient() -> None:
    patients = {
        split: {i.patient_id for i in read_dataset(SAMPLE / f"{split}.jsonl")}
        for split in ph_splits()
    }
    assert all(patients.values())
    assert not (patients["train"] & patients["val"] or patients["train"] & patients["test"])
    assert not patients["val"] & patients["test"]
    assert sum(len(read_dataset(SAMPLE / f"{s}.jsonl")) for s in ph_splits()) == len(
        read_dataset(SAMPLE / "qa.jsonl")
    )
