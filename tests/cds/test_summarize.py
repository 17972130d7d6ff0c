"""Cited summaries of a patient, a diagnostic report and a clinical note."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import PATIENT_ID, observation, patient
from ehrqa.answer.verify import check_facts, check_facts_in_texts
from ehrqa.cds.base import Advice
from ehrqa.cds.results import flag
from ehrqa.cds.summarize import (
    citation_name,
    key_labs,
    pick_sentences,
    recent_encounters,
    result_refs,
    split_units,
    summarize_patient,
    summarize_report,
    summarize_text,
)
from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.record import Record
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT
from ehrqa.meds.context import PatientContext, context_from_records, context_from_store
from ehrqa.store import SqliteStore

NOW = date(2025, 1, 1)
NOTE = Path(__file__).parent.parent / "fixtures" / "cds" / "clinic_note.md"
SUBJECT = {"reference": f"Patient/{PATIENT_ID}"}
HIGH = {"coding": [{"code": "H", "display": "High"}]}
NORMAL = {"coding": [{"code": "N", "display": "Normal"}]}


def _range(low: float, high: float) -> list[dict[str, Any]]:
    return [{"low": {"value": low}, "high": {"value": high}}]


def condition(cid: str, onset: str, display: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {"coding": [{"code": status}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": cid, "display": display}]},
        "subject": SUBJECT,
        "onsetDateTime": onset,
    }


def medication(mid: str, day: str, display: str, dosage: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"code": mid, "display": display}]},
        "subject": SUBJECT,
        "authoredOn": day,
        "dosageInstruction": [{"text": dosage}],
    }


def allergy() -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": "al1",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "type": "allergy",
        "criticality": "high",
        "code": {"coding": [{"code": "7980", "display": "Penicillin G"}]},
        "patient": SUBJECT,
        "recordedDate": "2010-03-01",
        "reaction": [{"manifestation": [{"coding": [{"display": "Hives"}]}]}],
    }


def vital(oid: str, day: str, code: str, display: str, value: float, unit: str) -> dict[str, Any]:
    res = observation(oid, day, value, code=code, display=display, unit=unit)
    res["category"][0]["coding"][0]["code"] = "vital-signs"
    return res


def blood_pressure(oid: str, day: str, systolic: float, diastolic: float) -> dict[str, Any]:
    res = vital(oid, day, "85354-9", "Blood pressure panel", 0, "")
    del res["valueQuantity"]
    res["component"] = [
        {
            "code": {"coding": [{"code": "8480-6", "display": "Systolic blood pressure"}]},
            "valueQuantity": {"value": systolic, "unit": "mm[Hg]"},
            "interpretation": [HIGH],
        },
        {
            "code": {"coding": [{"code": "8462-4", "display": "Diastolic blood pressure"}]},
            "valueQuantity": {"value": diastolic, "unit": "mm[Hg]"},
            "interpretation": [NORMAL],
        },
    ]
    return res


def resources() -> list[dict[str, Any]]:
    """A small record: three problems, two medicines, an allergy, labs and vitals."""
    return [
        patient(),
        condition("c1", "2015-02-01", "Type 2 diabetes mellitus"),
        condition("c2", "2021-06-10", "Chronic kidney disease stage 3"),
        condition("c3", "2023-09-01", "Essential hypertension"),
        condition("c4", "2012-01-01", "Acute bronchitis", status="resolved"),
        medication("m1", "2015-02-01", "Metformin 500 MG Oral Tablet", "500 mg twice daily"),
        medication("m2", "2023-09-01", "Lisinopril 10 MG Oral Tablet", "10 mg once daily"),
        allergy(),
        observation("hba1c", "2024-11-01", 8.1, referenceRange=_range(4.0, 5.6)),
        observation("hba1c-old", "2024-05-01", 7.4, referenceRange=_range(4.0, 5.6)),
        observation(
            "egfr",
            "2024-11-01",
            48,
            code="33914-3",
            display="Glomerular filtration rate/1.73 sq M.predicted",
            unit="mL/min/{1.73_m2}",
            interpretation=[{"coding": [{"code": "L", "display": "Low"}]}],
        ),
        observation("k", "2024-11-01", 4.6, code="6298-4", display="Potassium", unit="mmol/L"),
        observation("phq", "2024-11-01", 3, code="55758-7", display="PHQ-2 total", unit="{score}"),
        blood_pressure("bp", "2024-11-01", 152, 84),
        vital("bmi", "2024-11-01", "39156-5", "Body mass index", 31.2, "kg/m2"),
        vital("hr", "2024-11-01", "8867-4", "Heart rate", 72, "/min"),
        vital("temp", "2024-11-01", "8310-5", "Body temperature", 36.8, "Cel"),
    ]


@pytest.fixture
def records() -> dict[str, Record]:
    return {r.ref: r for r in map(normalize, resources())}


@pytest.fixture
def context(records: dict[str, Record]) -> PatientContext:
    return context_from_records(records.values(), PATIENT_ID, NOW)


def assert_grounded(advice: Advice, records: dict[str, Record], now: date | None) -> None:
    """Every statement cites a source, every source is given, every fact is in it."""
    assert advice.source == "extractive"
    assert advice.items
    for item in advice.items:
        for statement in item.all_statements():
            assert statement.citations, statement.text
            assert all(ref in advice.sources for ref in statement.citations)
            if all(ref in records for ref in statement.citations):
                cited = [records[ref] for ref in statement.citations]
                assert check_facts(statement.text, cited, now) == [], statement.text
            texts = [advice.sources[ref].text for ref in statement.citations]
            assert check_facts_in_texts(statement.text, texts) == [], statement.text
            assert statement.render() in advice.text


# --- patient ---------------------------------------------------------------------------


def test_patient_summary_has_the_sections_in_order(context: PatientContext) -> None:
    advice = summarize_patient(context)
    assert advice.task == "summarize"
    assert advice.patient_id == PATIENT_ID
    assert [item.title for item in advice.items] == [
        "Patient details",
        "Active problems",
        "Current medications",
        "Allergies and intolerances",
        "Latest laboratory results (last 2 years)",
        "Latest vital signs",
    ]
    # Each section's list is headed by what it holds, never a generic "What it is".
    assert [item.headings["statements"] for item in advice.items] == [
        item.title for item in advice.items
    ]
    assert advice.items[0].statements[0].text == "54-year-old female (born 1970-05-01)."
    problems = [s.citations[0] for s in advice.items[1].statements]
    assert problems == ["Condition/c3", "Condition/c2", "Condition/c1"]  # newest first
    assert "Acute bronchitis" not in advice.text


def test_patient_summary_statements_are_grounded(
    context: PatientContext, records: dict[str, Record]
) -> None:
    assert_grounded(summarize_patient(context), records, NOW)


def test_patient_summary_states_values_flags_and_dates(context: PatientContext) -> None:
    by_title = {item.title: item for item in summarize_patient(context).items}
    labs = [s.text for s in by_title["Latest laboratory results (last 2 years)"].statements]
    assert labs == [
        "Hemoglobin A1c/Hemoglobin.total: 8.1% on 2024-11-01 (High).",
        "Glomerular filtration rate/1.73 sq M.predicted: 48 mL/min/1.73 m² on 2024-11-01 (Low).",
        "Potassium: 4.6 mmol/L on 2024-11-01.",
    ]
    vitals = [s.text for s in by_title["Latest vital signs"].statements]
    # The BMI has no range of its own: it is flagged against knowledge/reference_ranges.csv.
    assert vitals == [
        "Blood pressure: 152/84 mmHg on 2024-11-01 (systolic High).",
        "Body mass index: 31.2 kg/m² on 2024-11-01 (High).",
        "Heart rate: 72 /min on 2024-11-01.",
    ]
    meds = by_title["Current medications"].statements
    assert (
        meds[0].text
        == "Lisinopril 10 MG Oral Tablet (dosage 10 mg once daily), prescribed 2023-09-01."
    )
    assert by_title["Allergies and intolerances"].statements[0].text == (
        "Allergy to Penicillin G (criticality high; reactions Hives)."
    )


def test_patient_summary_caps_lists_with_a_cited_count(
    context: PatientContext, records: dict[str, Record]
) -> None:
    advice = summarize_patient(context, max_items=1)
    problems = advice.items[1].statements
    assert [s.text for s in problems] == [
        "Essential hypertension, since 2023-09-01.",
        "And 2 more active problems.",
    ]
    assert problems[1].citations == ["Condition/c2", "Condition/c1"]
    assert_grounded(advice, records, NOW)


def test_patient_summary_lists_recent_encounters(context: PatientContext) -> None:
    visit = normalize(
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB", "display": "ambulatory"},
            "type": [{"coding": [{"code": "185349003", "display": "Check up"}]}],
            "subject": SUBJECT,
            "period": {"start": "2024-11-01T09:00:00Z", "end": "2024-11-01T09:30:00Z"},
        }
    )
    advice = summarize_patient(context, recent=[visit])
    assert advice.items[-1].title == "Recent encounters"
    assert advice.items[-1].statements[0].text == "2024-11-01 ambulatory encounter: Check up."
    assert "Encounter/e1" in advice.sources


@pytest.mark.parametrize(
    "context",
    [
        PatientContext(PATIENT_ID, NOW),
        context_from_records([normalize(condition("c9", "2030-01-01", "Future"))], PATIENT_ID, NOW),
    ],
    ids=["empty", "only-future-records"],
)
def test_patient_summary_abstains_without_records(context: PatientContext) -> None:
    advice = summarize_patient(context)
    assert advice.abstained
    assert advice.items == [] and advice.sources == {}
    assert advice.abstain_reason and "nothing to summarise" in advice.abstain_reason


def test_key_labs_leave_out_scores_and_rank_key_codes_first(context: PatientContext) -> None:
    ranked = [r.id for r in key_labs(context.labs)]
    assert ranked == ["hba1c", "egfr", "k"]


@pytest.mark.parametrize(
    ("extra", "value", "expected"),
    [
        ({"interpretation": [HIGH]}, 5.0, "high"),
        ({"interpretation": [{"coding": [{"code": "LL"}]}]}, 5.0, "critically low"),
        ({"interpretation": [NORMAL], "referenceRange": _range(1, 2)}, 5.0, None),
        ({"referenceRange": _range(4.0, 5.6)}, 6.0, "high"),
        ({"referenceRange": _range(4.0, 5.6)}, 3.9, "low"),
        ({"referenceRange": _range(4.0, 5.6)}, 5.6, None),
        ({"referenceRange": [{"high": {"value": 3}}]}, 3.5, "high"),
        ({"referenceRange": [{"text": "see lab"}]}, 9.0, None),
        ({}, 9.0, None),
    ],
    ids=[
        "interpretation-high",
        "interpretation-critical",
        "interpretation-wins-over-range",
        "above-range",
        "below-range",
        "on-the-bound",
        "high-bound-only",
        "range-without-bounds",
        "nothing-to-go-by",
    ],
)
def test_flag(extra: dict[str, Any], value: float, expected: str | None) -> None:
    assert flag(normalize(observation("o", "2024-01-01", value, **extra))) == expected


# --- report ----------------------------------------------------------------------------


def report(rid: str = "r1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "24323-8", "display": "Metabolic panel"}
            ]
        },
        "subject": SUBJECT,
        "effectiveDateTime": "2024-11-01",
        **extra,
    }


@pytest.fixture
def report_store(store: SqliteStore) -> SqliteStore:
    results = [
        observation("na", "2024-11-01", 139, code="2951-2", display="Sodium", unit="mmol/L"),
        observation(
            "k",
            "2024-11-01",
            5.9,
            code="6298-4",
            display="Potassium",
            unit="mmol/L",
            referenceRange=_range(3.5, 5.1),
        ),
        observation("cr", "2024-11-01", 1.1, code="2160-0", display="Creatinine", unit="mg/dL"),
    ]
    note = "Potassium is raised at 5.9 mmol/L. Repeat the sample to exclude haemolysis."
    form = {"contentType": "text/plain", "data": base64.b64encode(note.encode()).decode()}
    reports = [
        report(
            result=[{"reference": f"Observation/{r['id']}"} for r in results],
            conclusion="Hyperkalaemia.",
            presentedForm=[form],
        ),
        report("empty"),
        report("only-conclusion", conclusion="No abnormality detected."),
    ]
    store.upsert(normalize(r) for r in [patient(), *results, *reports])
    return store


def test_report_summary_puts_abnormal_results_first(report_store: SqliteStore) -> None:
    advice = summarize_report(report_store, "DiagnosticReport/r1", NOW)
    assert advice.query == "DiagnosticReport/r1"
    assert advice.patient_id == PATIENT_ID
    titles = [item.title for item in advice.items]
    assert titles == ["Report details", "Report results", "Conclusion", "Report text"]
    assert advice.items[0].statements[0].text == "Metabolic panel on 2024-11-01, final: 3 results."
    results = [s.text for s in advice.items[1].statements]
    assert results == [
        "Potassium: 5.9 mmol/L on 2024-11-01 (High).",
        "Sodium: 139 mmol/L on 2024-11-01.",
        "Creatinine: 1.1 mg/dL on 2024-11-01.",
    ]
    assert advice.items[2].statements[0].text == "Conclusion: Hyperkalaemia."
    assert advice.items[3].statements[0].text == "Potassium is raised at 5.9 mmol/L."


def test_report_summary_statements_are_grounded(report_store: SqliteStore) -> None:
    advice = summarize_report(report_store, "r1", NOW)  # a bare id names a report
    records = {r.ref: r for r in report_store.get_many(list(advice.sources))}
    assert_grounded(advice, records, NOW)


def test_report_summary_leaves_out_results_after_now(report_store: SqliteStore) -> None:
    advice = summarize_report(report_store, "DiagnosticReport/r1", date(2024, 10, 1))
    assert "Report results" not in [item.title for item in advice.items]


def test_report_with_only_a_conclusion_is_summarised(report_store: SqliteStore) -> None:
    advice = summarize_report(report_store, "DiagnosticReport/only-conclusion", NOW)
    assert [s.text for s in advice.items[-1].statements] == ["Conclusion: No abnormality detected."]


def test_report_without_content_abstains(report_store: SqliteStore) -> None:
    advice = summarize_report(report_store, "DiagnosticReport/empty", NOW)
    assert advice.abstained
    assert "nothing to summarise" in (advice.abstain_reason or "")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("Observation/k", "not a DiagnosticReport"),
        ("Patient/p1", "not a DiagnosticReport"),
        ("DiagnosticReport/missing", "not in the store"),
        ("missing", "not in the store"),
    ],
)
def test_report_ref_errors(report_store: SqliteStore, ref: str, message: str) -> None:
    with pytest.raises(NotFoundError, match=message):
        summarize_report(report_store, ref, NOW)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Observation/a", ["Observation/a"]),
        ("urn:uuid:abc-1", ["Observation/abc-1"]),
        ("http://x/fhir/Observation/a/_history/2", ["Observation/a"]),
        ("", []),
        (None, []),
    ],
)
def test_result_refs(reference: str | None, expected: list[str]) -> None:
    record = normalize(report(result=[{"reference": reference}, {"display": "no reference"}]))
    assert result_refs(record) == expected


# --- text ------------------------------------------------------------------------------


def test_text_summary_keeps_document_order_and_cites_paragraphs() -> None:
    text = NOTE.read_text()
    advice = summarize_text(text, str(NOTE), max_sentences=5)
    statements = [s for item in advice.items for s in item.statements]
    assert len(statements) == 5
    paragraphs = [int(s.citations[0].rsplit("#", 1)[1]) for s in statements]
    assert paragraphs == sorted(paragraphs)
    assert [text.index(s.text) for s in statements] == sorted(
        text.index(s.text) for s in statements
    )
    for statement in statements:
        (ref,) = statement.citations
        assert ref.startswith("file:clinic_note.md#")
        source = advice.sources[ref]
        assert source.kind == "file"
        assert statement.text in source.text
        assert check_facts_in_texts(statement.text, [source.text]) == []
    titles = [item.title for item in advice.items]
    assert titles[0] == "Chief Complaint"
    assert len(titles) == len(set(titles))


def test_text_summary_is_deterministic() -> None:
    text = NOTE.read_text()
    assert summarize_text(text, "a").text == summarize_text(text, "a").text


@pytest.mark.parametrize(
    "text", ["", "  \n\n \t", "# Heading only\n\nPlan:\n", "2024-11-02\n\n---"]
)
def test_text_summary_abstains_without_sentences(text: str) -> None:
    advice = summarize_text(text, "empty.txt")
    assert advice.abstained
    assert advice.abstain_reason == "empty.txt holds no text to summarise."


def test_split_units_reads_headings_lists_and_sentences() -> None:
    units = split_units("# Plan\nStart insulin. Review in 2 weeks.\n- check glucose\n\nLater text.")
    assert [(u.text, u.paragraph, u.heading, u.lead) for u in units] == [
        ("Start insulin.", 1, "Plan", True),
        ("Review in 2 weeks.", 1, "Plan", False),
        ("check glucose", 1, "Plan", False),
        ("Later text.", 2, "Plan", True),
    ]


def test_pick_sentences_skips_repeats() -> None:
    units = split_units(
        "Heart failure with fluid overload. Heart failure with fluid overload again."
    )
    assert [u.text for u in pick_sentences(units, 2)] == ["Heart failure with fluid overload."]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes/clinic note.txt", "clinic_note.txt"),
        ("a[1].md", "a_1_.md"),
        ("", "text"),
        ("  ", "text"),
    ],
)
def test_citation_name(name: str, expected: str) -> None:
    assert citation_name(name) == expected


# --- options and narration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "poetic"}, "unknown summary mode"),
        ({"mode": "model"}, "needs a model"),
        ({"max_sentences": 0}, "at least 1"),
    ],
)
def test_bad_options_raise(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        summarize_text("Some text.", "a.txt", **kwargs)


def test_bad_max_items_raises(context: PatientContext) -> None:
    with pytest.raises(ConfigError, match="max_items"):
        summarize_patient(context, max_items=0)


def test_hybrid_mode_hands_the_summary_to_narrate(
    context: PatientContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ehrqa.cds.narrate

    calls: list[dict[str, Any]] = []

    def fake_narrate(advice: Advice, model: Any, **kwargs: Any) -> Advice:
        calls.append({"text": advice.text, "model": model, **kwargs})
        advice.text, advice.source = "Narrated.", "model"
        return advice

    monkeypatch.setattr(ehrqa.cds.narrate, "narrate", fake_narrate)
    model: Any = object()
    advice = summarize_patient(context, model=model, mode="hybrid")
    assert advice.text == "Narrated."
    (call,) = calls
    assert call["model"] is model and call["mode"] == "hybrid"
    assert call["instruction"].startswith("Summarise")
    assert "Active problems:" in call["text"]
    calls.clear()
    assert summarize_patient(context, model=model).source == "extractive"  # extractive mode
    assert summarize_patient(context, mode="hybrid").source == "extractive"  # no model
    assert calls == []


# --- the demo patient --------------------------------------------------------------------


def test_demo_patient_summary_cites_real_records(demo_store: SqliteStore) -> None:
    context = context_from_store(demo_store, DEMO_PATIENT, DEMO_NOW)
    recent = recent_encounters(demo_store, DEMO_PATIENT, DEMO_NOW)
    advice = summarize_patient(context, recent=recent)
    refs = advice.citations()
    records = {r.ref: r for r in demo_store.get_many(refs)}
    assert set(records) == set(refs) == set(advice.sources)
    assert all(r.patient_id == DEMO_PATIENT for r in records.values())
    titles = [item.title for item in advice.items]
    assert titles[:2] == ["Patient details", "Active problems"]
    assert {
        "Latest laboratory results (last 2 years)",
        "Latest vital signs",
        "Recent encounters",
    } <= set(titles)
    assert "Hemoglobin A1c" in advice.text
    assert_grounded(advice, records, DEMO_NOW)
