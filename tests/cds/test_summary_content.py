"""The patient summary holds what the README promises: problems, medicines, allergies,
latest vitals with dates, recent and abnormal labs with dates and High/Low flags, each cited;
values rounded and units written for a reader."""

from __future__ import annotations

from datetime import date
from typing import Any

from conftest import PATIENT_ID, observation, patient
from ehrqa.cds.summarize import latest_vitals, summarize_patient
from ehrqa.fhir.normalize import normalize
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT
from ehrqa.meds.context import context_from_records, context_from_store
from ehrqa.store import SqliteStore

NOW = date(2025, 1, 1)
SERUM_CREATININE = "Creatinine [Mass/volume] in Serum or Plasma"


def vital(oid: str, day: str, code: str, display: str, value: float, unit: str) -> dict[str, Any]:
    res = observation(oid, day, value, code=code, display=display, unit=unit)
    res["category"][0]["coding"][0]["code"] = "vital-signs"
    return res


def sections(resources: list[dict[str, Any]], **kwargs: Any) -> dict[str, list[str]]:
    context = context_from_records([normalize(r) for r in resources], PATIENT_ID, NOW)
    advice = summarize_patient(context, **kwargs)
    return {item.title: [s.render() for s in item.statements] for item in advice.items}


def test_no_allergy_is_said_and_cited() -> None:
    # Before, a record without allergies had no allergy section at all.
    found = sections([patient()])
    assert found["Allergies and intolerances"] == [
        f"No allergy or intolerance recorded [Patient/{PATIENT_ID}]."
    ]


def test_no_recent_lab_is_said() -> None:
    found = sections([patient(), observation("old", "2020-01-01", 6.1)])
    assert found["Latest laboratory results (last 2 years)"] == [
        f"No laboratory result in the last 2 years [Patient/{PATIENT_ID}]."
    ]


def test_labs_are_rounded_in_readable_units_and_flagged_by_the_knowledge_ranges() -> None:
    noisy = observation(
        "cr",
        "2024-10-01",
        1.8575090940655805,
        code="2160-0",
        display=SERUM_CREATININE,
        unit="mg/dL",
    )
    egfr = observation(
        "egfr",
        "2024-10-01",
        45.9,
        code="33914-3",
        display="Glomerular filtration rate/1.73 sq M.predicted",
        unit="mL/min/{1.73_m2}",
    )
    labs = sections([patient(), noisy, egfr])["Latest laboratory results (last 2 years)"]
    assert labs == [
        "Glomerular filtration rate/1.73 sq M.predicted: 45.9 mL/min/1.73 m² on 2024-10-01 "
        "(Low) [Observation/egfr].",
        "Creatinine: 1.9 mg/dL on 2024-10-01 (High) [Observation/cr].",
    ]


def test_flags_use_the_range_for_the_patients_sex() -> None:
    # Serum creatinine 1.2 mg/dL: above the female range (0.6-1.1), within the male one.
    cr = observation("cr", "2024-10-01", 1.2, code="2160-0", display=SERUM_CREATININE, unit="mg/dL")
    woman = sections([patient(), cr])["Latest laboratory results (last 2 years)"]
    man = sections([patient(gender="male"), cr])["Latest laboratory results (last 2 years)"]
    assert woman == ["Creatinine: 1.2 mg/dL on 2024-10-01 (High) [Observation/cr]."]
    assert man == ["Creatinine: 1.2 mg/dL on 2024-10-01 [Observation/cr]."]


def test_one_result_per_test() -> None:
    # Synthea files creatinine in blood and in serum on the same day: one test, shown once.
    serum = observation(
        "s", "2024-10-01", 1.0, code="2160-0", display=SERUM_CREATININE, unit="mg/dL"
    )
    blood = observation(
        "b",
        "2024-10-02",
        1.0,
        code="38483-4",
        display="Creatinine [Mass/volume] in Blood",
        unit="mg/dL",
    )
    labs = sections([patient(), serum, blood])["Latest laboratory results (last 2 years)"]
    assert labs == ["Creatinine: 1 mg/dL on 2024-10-02 [Observation/b]."]


def test_the_latest_vitals_are_shown_with_their_date_however_old(store: SqliteStore) -> None:
    # Before, vitals older than a year were left out, and the section vanished.
    old_bmi = vital("bmi", "2021-03-01", "39156-5", "Body mass index", 27.46, "kg/m2")
    older = vital("bmi0", "2019-03-01", "39156-5", "Body mass index", 22.0, "kg/m2")
    store.upsert(normalize(r) for r in [patient(), old_bmi, older])
    context = context_from_store(store, PATIENT_ID, NOW)
    assert context.vitals == []  # the context's window is one year
    vitals = latest_vitals(store, PATIENT_ID, NOW)
    advice = summarize_patient(context, vitals=vitals)
    shown = {i.title: [s.render() for s in i.statements] for i in advice.items}
    assert shown["Latest vital signs"] == [
        "Body mass index: 27.46 kg/m² on 2021-03-01 (High) [Observation/bmi]."
    ]
    assert "Observation/bmi" in advice.sources


def test_a_patient_who_died_is_described_by_the_age_at_death() -> None:
    # Before: "101-year-old female (born 1924-06-16, deceased 1997-08-05)".
    dead = patient(birthDate="1924-06-16", deceasedDateTime="1997-08-05T10:00:00Z")
    context = context_from_records([normalize(dead)], PATIENT_ID, NOW)
    assert context.age == 73
    details = sections([dead])["Patient details"]
    assert details == [
        f"Female, died aged 73 (born 1924-06-16, deceased 1997-08-05) [Patient/{PATIENT_ID}]."
    ]


def test_the_demo_summary_holds_every_promised_section(demo_store: SqliteStore) -> None:
    from ehrqa.cds.summarize import recent_encounters

    context = context_from_store(demo_store, DEMO_PATIENT, DEMO_NOW)
    advice = summarize_patient(
        context,
        recent=recent_encounters(demo_store, DEMO_PATIENT, DEMO_NOW),
        vitals=latest_vitals(demo_store, DEMO_PATIENT, DEMO_NOW),
    )
    by_title = {i.title: i for i in advice.items}
    assert list(by_title) == [
        "Patient details",
        "Active problems",
        "Current medications",
        "Allergies and intolerances",
        "Latest laboratory results (last 2 years)",
        "Latest vital signs",
        "Recent encounters",
    ]
    vitals = [s.text for s in by_title["Latest vital signs"].statements]
    assert vitals[0].startswith("Blood pressure: ") and " mmHg on 20" in vitals[0]
    labs = " ".join(s.text for s in by_title["Latest laboratory results (last 2 years)"].statements)
    assert "(High)" in labs and "(Low)" in labs
    assert "{" not in advice.text and "mm[Hg]" not in advice.text  # readable units
    for item in advice.items:
        for statement in item.statements:
            assert statement.citations and set(statement.citations) <= set(advice.sources)
